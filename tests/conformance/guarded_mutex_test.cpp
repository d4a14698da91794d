// SEMANTICS.md 3: KGUARDED_MUTEX and guarded regions.
#include <atomic>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using GuardedMutex = Nt;
namespace bugcheck = kmlab::bugcheck;

TEST_F(GuardedMutex, InitializeLeavesTheApcDisableFieldsAlone) {
    KGUARDED_MUTEX m;
    std::memset(&m, 0x55, sizeof m);
    KeInitializeGuardedMutex(&m);
    EXPECT_EQ(m.Count, GM_LOCK_BIT);
    EXPECT_EQ(m.Owner, nullptr);
    EXPECT_EQ(m.Contention, 0u);
    EXPECT_EQ(m.Gate.Header.Type, GateObject);
    EXPECT_EQ(static_cast<USHORT>(m.KernelApcDisable), 0x5555) << "[kmt-KeGuardedMutex]";
    EXPECT_EQ(static_cast<USHORT>(m.SpecialApcDisable), 0x5555);
}

TEST_F(GuardedMutex, AcquireEntersAGuardedRegionAndLeavesTheIrqlAlone) {
    KGUARDED_MUTEX m;
    KeInitializeGuardedMutex(&m);
    PKTHREAD t = KeGetCurrentThread();
    KeAcquireGuardedMutex(&m);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    EXPECT_EQ(t->SpecialApcDisable, -1);
    EXPECT_TRUE(KeAreAllApcsDisabled());
    EXPECT_TRUE(KeAreApcsDisabled());
    EXPECT_EQ(m.Count, 0);
    EXPECT_EQ(m.Owner, t);
    KeReleaseGuardedMutex(&m);
    EXPECT_EQ(t->SpecialApcDisable, 0);
    EXPECT_EQ(m.Count, GM_LOCK_BIT);
    EXPECT_EQ(m.Owner, nullptr);
}

TEST_F(GuardedMutex, TryToAcquire) {
    KGUARDED_MUTEX m;
    KeInitializeGuardedMutex(&m);
    ASSERT_TRUE(KeTryToAcquireGuardedMutex(&m));
    EXPECT_FALSE(KeTryToAcquireGuardedMutex(&m)) << "the owner gets FALSE [kmt-KeGuardedMutex]";
    EXPECT_EQ(KeGetCurrentThread()->SpecialApcDisable, -1)
        << "a failed try leaves its guarded region";
    kmlab::test::on_new_thread([&] {
        EXPECT_FALSE(KeTryToAcquireGuardedMutex(&m));
        EXPECT_FALSE(KeAreAllApcsDisabled());
    });
    KeReleaseGuardedMutex(&m);
}

TEST_F(GuardedMutex, ContentionMatchesKmtestsCountTable) {
    KGUARDED_MUTEX m;
    KeInitializeGuardedMutex(&m);
    auto count = [&] { return std::atomic_ref<LONG>(m.Count).load(); };
    auto contention = [&] { return std::atomic_ref<ULONG>(m.Contention).load(); };
    KeAcquireGuardedMutex(&m);
    std::atomic<int> done{0};
    auto contender = [&] {
        KeAcquireGuardedMutex(&m);
        done.fetch_add(1);
        KeReleaseGuardedMutex(&m);
    };
    std::thread a(contender);
    ASSERT_TRUE(kmlab::test::eventually([&] { return count() == 4; })) << "held, 1 waiter";
    EXPECT_EQ(contention(), 1u);
    std::thread b(contender);
    ASSERT_TRUE(kmlab::test::eventually([&] { return count() == 8; })) << "held, 2 waiters";
    EXPECT_EQ(contention(), 2u);
    KeReleaseGuardedMutex(&m);
    a.join();
    b.join();
    EXPECT_EQ(done.load(), 2);
    EXPECT_EQ(count(), GM_LOCK_BIT);
    EXPECT_EQ(contention(), 2u);
}

TEST_F(GuardedMutex, UnsafeVariantsNeedAGuardedRegionOrApcLevel) {
    KGUARDED_MUTEX m;
    KeInitializeGuardedMutex(&m);
    auto bc = EXPECT_BUG_CHECK(KeAcquireGuardedMutexUnsafe(&m),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_UNSAFE_ACQUIRE_IRQL);
    KeEnterGuardedRegion();
    KeAcquireGuardedMutexUnsafe(&m);
    EXPECT_EQ(KeGetCurrentThread()->SpecialApcDisable, -1) << "Unsafe enters no region of its own";
    KeReleaseGuardedMutexUnsafe(&m);
    KeLeaveGuardedRegion();
    EXPECT_EQ(m.Count, GM_LOCK_BIT);
}

TEST_F(GuardedMutex, MisuseBugChecks) {
    KGUARDED_MUTEX m;
    KeInitializeGuardedMutex(&m);
    KIRQL old = KeRaiseIrqlToDpcLevel();
    EXPECT_BUG_CHECK(KeAcquireGuardedMutex(&m), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
    KeAcquireGuardedMutex(&m);
    EXPECT_BUG_CHECK(KeAcquireGuardedMutex(&m), bugcheck::MUTEX_ALREADY_OWNED);
    kmlab::test::on_new_thread(
        [&] { EXPECT_BUG_CHECK(KeReleaseGuardedMutex(&m), bugcheck::THREAD_NOT_MUTEX_OWNER); });
    KeReleaseGuardedMutex(&m);
}
