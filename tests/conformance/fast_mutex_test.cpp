// SEMANTICS.md 2: FAST_MUTEX.
#include <atomic>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using FastMutex = Nt;
namespace bugcheck = kmlab::bugcheck;

namespace {
LONG count_of(FAST_MUTEX& m) {
    return std::atomic_ref<LONG>(m.Count).load();
}
}  // namespace

TEST_F(FastMutex, InitializeLeavesOldIrqlAlone) {
    FAST_MUTEX m;
    std::memset(&m, 0x55, sizeof m);
    ExInitializeFastMutex(&m);
    EXPECT_EQ(m.Count, FM_LOCK_BIT);
    EXPECT_EQ(m.Owner, nullptr);
    EXPECT_EQ(m.Contention, 0u);
    EXPECT_EQ(m.Event.Header.Type, EventSynchronizationObject);
    EXPECT_EQ(m.Event.Header.SignalState, 0);
    EXPECT_EQ(m.OldIrql, 0x55555555u) << "[kmt-ExFastMutex]";
}

TEST_F(FastMutex, AcquireRaisesToApcLevelAndReleaseRestores) {
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    ExAcquireFastMutex(&m);
    EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
    EXPECT_EQ(m.OldIrql, PASSIVE_LEVEL);
    EXPECT_EQ(m.Count, 0);
    EXPECT_EQ(m.Owner, KeGetCurrentThread());
    EXPECT_FALSE(KeAreApcsDisabled()) << "a fast mutex is no critical region [kmt-ExFastMutex]";
    EXPECT_TRUE(KeAreAllApcsDisabled());
    ExReleaseFastMutex(&m);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    EXPECT_EQ(m.Count, FM_LOCK_BIT);
    EXPECT_EQ(m.Owner, nullptr);
    EXPECT_EQ(m.Contention, 0u);

    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    ExAcquireFastMutex(&m);
    EXPECT_EQ(m.OldIrql, APC_LEVEL);
    ExReleaseFastMutex(&m);
    EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
    KeLowerIrql(old);
}

TEST_F(FastMutex, TryToAcquire) {
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    ASSERT_TRUE(ExTryToAcquireFastMutex(&m));
    EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
    EXPECT_FALSE(ExTryToAcquireFastMutex(&m))
        << "the owner gets FALSE, not a bug check [kmt-ExFastMutex]";
    EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
    kmlab::test::on_new_thread([&] {
        EXPECT_FALSE(ExTryToAcquireFastMutex(&m));
        EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL) << "a failed try restores the IRQL";
    });
    ExReleaseFastMutex(&m);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

TEST_F(FastMutex, IrqlViolationsBugCheckWithVerifierSubcodes) {
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    KIRQL old = KeRaiseIrqlToDpcLevel();
    auto bc =
        EXPECT_BUG_CHECK(ExAcquireFastMutex(&m), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_FAST_MUTEX_ACQUIRE_IRQL);
    EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
    EXPECT_EQ(bc.parameter(3), reinterpret_cast<ULONG_PTR>(&m));
    KeLowerIrql(old);
    EXPECT_EQ(m.Count, FM_LOCK_BIT) << "nothing acquired";

    KeEnterCriticalRegion();
    ExAcquireFastMutexUnsafe(&m);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL) << "Unsafe does not change the IRQL";
    bc = EXPECT_BUG_CHECK(ExReleaseFastMutex(&m), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_FAST_MUTEX_RELEASE_IRQL);
    ExReleaseFastMutexUnsafe(&m);
    KeLeaveCriticalRegion();

    bc = EXPECT_BUG_CHECK(ExAcquireFastMutexUnsafe(&m),
                          bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_UNSAFE_ACQUIRE_IRQL)
        << "PASSIVE_LEVEL outside any region";
    KeRaiseIrql(APC_LEVEL, &old);
    ExAcquireFastMutexUnsafe(&m);
    KeLowerIrql(old);
    bc = EXPECT_BUG_CHECK(ExReleaseFastMutexUnsafe(&m),
                          bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_UNSAFE_RELEASE_IRQL);
    KeRaiseIrql(APC_LEVEL, &old);
    ExReleaseFastMutexUnsafe(&m);
    KeLowerIrql(old);
    EXPECT_EQ(m.Count, FM_LOCK_BIT);
}

TEST_F(FastMutex, RecursiveAcquisitionAndForeignReleaseBugCheck) {
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    ExAcquireFastMutex(&m);
    auto bc = EXPECT_BUG_CHECK(ExAcquireFastMutex(&m), bugcheck::MUTEX_ALREADY_OWNED);
    EXPECT_EQ(bc.parameter(1), reinterpret_cast<ULONG_PTR>(&m));
    EXPECT_EQ(bc.parameter(2), reinterpret_cast<ULONG_PTR>(KeGetCurrentThread()));
    EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
    kmlab::test::on_new_thread([&] {
        KIRQL old;
        KeRaiseIrql(APC_LEVEL, &old);
        EXPECT_BUG_CHECK(ExReleaseFastMutex(&m), bugcheck::THREAD_NOT_MUTEX_OWNER);
        KeLowerIrql(old);
    });
    ExReleaseFastMutex(&m);
    EXPECT_EQ(m.Count, FM_LOCK_BIT);
}

TEST_F(FastMutex, WaitersAreCountedInCountAndContention) {
    // Lock-bit encoding: held = 0, +4 per blocked waiter (SEMANTICS.md 2.3(b)).
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    ExAcquireFastMutex(&m);
    std::atomic<int> inside{0};
    auto contender = [&] {
        ExAcquireFastMutex(&m);
        inside.fetch_add(1);
        ExReleaseFastMutex(&m);
    };
    std::thread a(contender);
    ASSERT_TRUE(kmlab::test::eventually([&] { return count_of(m) == 4; }));
    EXPECT_EQ(std::atomic_ref<ULONG>(m.Contention).load(), 1u);
    std::thread b(contender);
    ASSERT_TRUE(kmlab::test::eventually([&] { return count_of(m) == 8; }));
    EXPECT_EQ(std::atomic_ref<ULONG>(m.Contention).load(), 2u);
    EXPECT_EQ(inside.load(), 0);
    ExReleaseFastMutex(&m);
    a.join();
    b.join();
    EXPECT_EQ(inside.load(), 2);
    EXPECT_EQ(m.Count, FM_LOCK_BIT);
    EXPECT_EQ(m.Owner, nullptr);
    EXPECT_EQ(m.Event.Header.SignalState, 0);
}

TEST_F(FastMutex, MutualExclusionWithOddThreadCounts) {
    for (int threads : {3, 5}) {
        FAST_MUTEX m;
        ExInitializeFastMutex(&m);
        long counter = 0;
        std::vector<std::thread> pool;
        for (int i = 0; i < threads; ++i) {
            pool.emplace_back([&] {
                for (int k = 0; k < 3000; ++k) {
                    ExAcquireFastMutex(&m);
                    ++counter;
                    ExReleaseFastMutex(&m);
                }
            });
        }
        for (auto& th : pool) th.join();
        EXPECT_EQ(counter, threads * 3000L);
        EXPECT_EQ(m.Count, FM_LOCK_BIT) << "back to the initial state";
        EXPECT_EQ(m.Owner, nullptr);
        EXPECT_EQ(m.Event.Header.SignalState, 0);
        EXPECT_TRUE(IsListEmpty(&m.Event.Header.WaitListHead));
    }
}
