// SEMANTICS.md 1: KMUTEX and mutants.
#include <atomic>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using KMutex = Nt;
using Mutant = Nt;
namespace bugcheck = kmlab::bugcheck;

namespace {
LARGE_INTEGER zero_timeout() {
    LARGE_INTEGER li;
    li.QuadPart = 0;
    return li;
}
NTSTATUS acquire(PKMUTEX m) {
    return KeWaitForSingleObject(m, Executive, KernelMode, FALSE, nullptr);
}
NTSTATUS try_acquire(PKMUTEX m) {
    LARGE_INTEGER zero = zero_timeout();
    return KeWaitForSingleObject(m, Executive, KernelMode, FALSE, &zero);
}
}  // namespace

TEST_F(KMutex, InitializeSetsTheDocumentedFields) {
    KMUTEX m;
    std::memset(&m, 0x55, sizeof m);
    KeInitializeMutex(&m, 0);
    EXPECT_EQ(m.Header.Type, MutantObject);
    EXPECT_EQ(m.Header.Size, sizeof(KMUTEX) / sizeof(ULONG));
    EXPECT_EQ(m.Header.SignalState, 1);
    EXPECT_TRUE(IsListEmpty(&m.Header.WaitListHead));
    EXPECT_EQ(m.OwnerThread, nullptr);
    EXPECT_EQ(m.Abandoned, FALSE);
    EXPECT_EQ(m.ApcDisable, 1);
    KMUTEX m2;
    KeInitializeMutex(&m2, 123);  // Level is ignored [kmt-KeMutex]
    EXPECT_EQ(m2.Header.SignalState, 1);
    EXPECT_EQ(m2.ApcDisable, 1);
    EXPECT_EQ(KeReadStateMutex(&m), 1);
}

// Windows writes Type and Size only: kmtest fills the mutex with 0x55 and
// reads Abandoned and DpcActive (header bytes 1 and 3) and the unowned
// mutex's MutantListEntry back unchanged [kmt-KeMutex].
TEST_F(KMutex, InitializeLeavesHeaderBytesOneAndThreeAndTheListEntryAlone) {
    const auto fill = reinterpret_cast<PLIST_ENTRY>(static_cast<ULONG_PTR>(0x5555555555555555ull));
    KMUTEX m;
    std::memset(&m, 0x55, sizeof m);
    KeInitializeMutex(&m, 0);
    EXPECT_EQ(m.Header.Abandoned, 0x55);
    EXPECT_EQ(m.Header.DpcActive, 0x55);
    EXPECT_EQ(m.Header.Hand, sizeof(KMUTEX) / sizeof(ULONG)) << "Hand is byte 2, the Size";
    EXPECT_EQ(static_cast<ULONG>(m.Header.Lock) & 0xFF00FF00u, 0x55005500u);
    EXPECT_EQ(m.MutantListEntry.Flink, fill);
    EXPECT_EQ(m.MutantListEntry.Blink, fill);

    KMUTANT mutant;
    std::memset(&mutant, 0x55, sizeof mutant);
    KeInitializeMutant(&mutant, FALSE);
    EXPECT_EQ(mutant.Header.Abandoned, 0x55);
    EXPECT_EQ(mutant.Header.DpcActive, 0x55);
    EXPECT_EQ(mutant.MutantListEntry.Flink, fill);
    EXPECT_EQ(mutant.ApcDisable, 0);
}

TEST_F(KMutex, AnInitiallyOwnedMutantIsLinkedIntoTheOwnersList) {
    KMUTANT mutant;
    std::memset(&mutant, 0x55, sizeof mutant);
    KeInitializeMutant(&mutant, TRUE);
    EXPECT_EQ(mutant.Header.DpcActive, 0x55);
    EXPECT_EQ(mutant.OwnerThread, KeGetCurrentThread());
    EXPECT_EQ(mutant.MutantListEntry.Flink, &KeGetCurrentThread()->MutantListHead);
    EXPECT_EQ(KeReleaseMutant(&mutant, MUTANT_INCREMENT, FALSE, FALSE), 0);
    EXPECT_EQ(KeReadStateMutant(&mutant), 1);
}

TEST_F(KMutex, RecursiveOwnershipDisablesApcsOnce) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    PKTHREAD me = KeGetCurrentThread();
    for (int i = 1; i <= 8; ++i) {
        ASSERT_EQ(acquire(&m), STATUS_SUCCESS);
        EXPECT_EQ(m.Header.SignalState, 1 - i);
        EXPECT_EQ(m.OwnerThread, me);
        EXPECT_EQ(me->KernelApcDisable, -1) << "only the first acquisition disables APCs";
        EXPECT_TRUE(KeAreApcsDisabled());
    }
    EXPECT_EQ(KeReadStateMutex(&m), -7);
    for (int i = 8; i >= 1; --i) {
        // The previous SignalState is returned; 0 means the mutex became free.
        EXPECT_EQ(KeReleaseMutex(&m, FALSE), 1 - i);
    }
    EXPECT_EQ(m.Header.SignalState, 1);
    EXPECT_EQ(m.OwnerThread, nullptr);
    EXPECT_EQ(me->KernelApcDisable, 0);
}

TEST_F(KMutex, ReleasingAnUnownedMutexRaisesMutantNotOwned) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    EXPECT_RAISES(KeReleaseMutex(&m, FALSE), STATUS_MUTANT_NOT_OWNED);
    EXPECT_EQ(m.Header.SignalState, 1) << "nothing is modified [kmt-KeMutex]";
    ASSERT_EQ(acquire(&m), STATUS_SUCCESS);
    kmlab::test::on_new_thread(
        [&] { EXPECT_RAISES(KeReleaseMutex(&m, FALSE), STATUS_MUTANT_NOT_OWNED); });
    EXPECT_EQ(m.Header.SignalState, 0);
    EXPECT_EQ(KeReleaseMutex(&m, FALSE), 0);
    EXPECT_RAISES(KeReleaseMutex(&m, FALSE), STATUS_MUTANT_NOT_OWNED);
    EXPECT_EQ(m.Header.SignalState, 1);
}

TEST_F(KMutex, RecursionStopsAtMinlong) {
    // kmtest's sequence: force MINLONG + 1, one more wait reaches MINLONG, the
    // next raises STATUS_MUTANT_LIMIT_EXCEEDED and changes nothing.
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    ASSERT_EQ(acquire(&m), STATUS_SUCCESS);
    m.Header.SignalState = MINLONG + 1;
    EXPECT_EQ(acquire(&m), STATUS_SUCCESS);
    EXPECT_EQ(m.Header.SignalState, MINLONG);
    EXPECT_RAISES(acquire(&m), STATUS_MUTANT_LIMIT_EXCEEDED);
    EXPECT_EQ(m.Header.SignalState, MINLONG);
    EXPECT_EQ(KeReleaseMutex(&m, FALSE), MINLONG);
    EXPECT_EQ(m.Header.SignalState, MINLONG + 1);
    m.Header.SignalState = 0;
    EXPECT_EQ(KeReleaseMutex(&m, FALSE), 0);
}

TEST_F(KMutex, ZeroTimeoutWaitOnAnOwnedMutexTimesOut) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    ASSERT_EQ(acquire(&m), STATUS_SUCCESS);
    kmlab::test::on_new_thread([&] {
        EXPECT_EQ(try_acquire(&m), STATUS_TIMEOUT);
        EXPECT_EQ(KeGetCurrentThread()->KernelApcDisable, 0) << "a failed wait has no side effect";
    });
    EXPECT_EQ(KeReleaseMutex(&m, FALSE), 0);
    kmlab::test::on_new_thread([&] {
        EXPECT_EQ(try_acquire(&m), STATUS_SUCCESS);
        EXPECT_EQ(KeReleaseMutex(&m, FALSE), 0);
    });
}

TEST_F(KMutex, ReleaseHandsTheMutexToTheFirstWaiter) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    ASSERT_EQ(acquire(&m), STATUS_SUCCESS);
    std::thread waiter([&] {
        EXPECT_EQ(acquire(&m), STATUS_SUCCESS);
        EXPECT_EQ(m.OwnerThread, KeGetCurrentThread())
            << "the release handed ownership to the waiter";
        EXPECT_EQ(KeGetCurrentThread()->KernelApcDisable, -1);
        EXPECT_EQ(KeReleaseMutex(&m, FALSE), 0);
    });
    ASSERT_TRUE(kmlab::test::waiters_reach(&m, 1));
    EXPECT_EQ(KeReleaseMutex(&m, FALSE), 0);
    waiter.join();
    EXPECT_EQ(m.Header.SignalState, 1);
}

TEST_F(KMutex, ReleaseWithWaitTrueKeepsTheDispatcherLockForTheNextWait) {
    KMUTEX m;
    KEVENT e;
    KeInitializeMutex(&m, 0);
    KeInitializeEvent(&e, NotificationEvent, TRUE);
    ASSERT_EQ(acquire(&m), STATUS_SUCCESS);
    PKTHREAD t = KeGetCurrentThread();
    EXPECT_EQ(KeReleaseMutex(&m, TRUE), 0);
    EXPECT_TRUE(t->WaitNext);
    EXPECT_EQ(t->WaitIrql, PASSIVE_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL) << "the IRQL stays raised until the wait";
    EXPECT_EQ(t->KernelApcDisable, 0);
    EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    EXPECT_FALSE(t->WaitNext);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

TEST_F(KMutex, MutualExclusionUnderContention) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    long counter = 0;  // deliberately plain: the mutex must order the accesses
    constexpr int kThreads = 5, kIters = 2000;
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&] {
            for (int k = 0; k < kIters; ++k) {
                ASSERT_EQ(acquire(&m), STATUS_SUCCESS);
                ++counter;
                KeReleaseMutex(&m, FALSE);
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(counter, kThreads * kIters);
    EXPECT_EQ(m.Header.SignalState, 1);
    EXPECT_EQ(m.OwnerThread, nullptr);
    EXPECT_TRUE(IsListEmpty(&m.Header.WaitListHead));
}

TEST_F(KMutex, ThreadExitWhileHoldingAKmutexBugChecks) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    PKTHREAD dead = nullptr;
    kmlab::test::on_new_thread([&] {
        dead = KeGetCurrentThread();
        ASSERT_EQ(acquire(&m), STATUS_SUCCESS);
    });
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u);
    EXPECT_EQ(fatal[0].code(), bugcheck::THREAD_TERMINATE_HELD_MUTEX);
    EXPECT_EQ(fatal[0].parameter(1), reinterpret_cast<ULONG_PTR>(dead));
    EXPECT_EQ(fatal[0].parameter(2), reinterpret_cast<ULONG_PTR>(&m));
}

TEST_F(Mutant, InitialOwnerMakesTheCallerOwnerWithoutDisablingApcs) {
    KMUTANT m;
    KeInitializeMutant(&m, TRUE);
    EXPECT_EQ(m.Header.SignalState, 0);
    EXPECT_EQ(m.OwnerThread, KeGetCurrentThread());
    EXPECT_EQ(m.ApcDisable, 0);
    EXPECT_EQ(KeGetCurrentThread()->KernelApcDisable, 0);
    EXPECT_EQ(KeReleaseMutant(&m, MUTANT_INCREMENT, FALSE, FALSE), 0);
    EXPECT_EQ(m.Header.SignalState, 1);
}

TEST_F(Mutant, AnOwnerThatExitsAbandonsTheMutant) {
    KMUTANT m;
    KeInitializeMutant(&m, FALSE);
    kmlab::test::on_new_thread([&] { ASSERT_EQ(acquire(&m), STATUS_SUCCESS); });
    EXPECT_EQ(m.Abandoned, TRUE);
    EXPECT_EQ(m.Header.SignalState, 1);
    EXPECT_EQ(m.OwnerThread, nullptr);
    // A non-owner's release of an abandoned mutant raises STATUS_ABANDONED.
    EXPECT_RAISES(KeReleaseMutant(&m, MUTANT_INCREMENT, FALSE, FALSE), STATUS_ABANDONED);
    // The next acquirer owns it, learns it was abandoned, and clears the flag.
    EXPECT_EQ(acquire(&m), STATUS_ABANDONED);
    EXPECT_TRUE(NT_SUCCESS(STATUS_ABANDONED));
    EXPECT_EQ(m.Abandoned, FALSE);
    EXPECT_EQ(m.OwnerThread, KeGetCurrentThread());
    EXPECT_EQ(KeReleaseMutant(&m, MUTANT_INCREMENT, FALSE, FALSE), 0);
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty()) << "a mutant is abandoned, not fatal";
}

TEST_F(Mutant, AbandonmentWakesAWaiterWithAbandonedWaitN) {
    KMUTANT m;
    KEVENT never;
    KeInitializeMutant(&m, FALSE);
    KeInitializeEvent(&never, NotificationEvent, FALSE);
    std::atomic<bool> owner_ready{false}, owner_may_exit{false};
    std::thread owner([&] {
        ASSERT_EQ(acquire(&m), STATUS_SUCCESS);
        owner_ready = true;
        while (!owner_may_exit) std::this_thread::yield();
    });
    while (!owner_ready) std::this_thread::yield();
    NTSTATUS status = STATUS_PENDING;
    std::thread waiter([&] {
        PVOID objects[2] = {&never, &m};
        status = KeWaitForMultipleObjects(2, objects, WaitAny, Executive, KernelMode, FALSE,
                                          nullptr, nullptr);
        if (NT_SUCCESS(status)) KeReleaseMutant(&m, MUTANT_INCREMENT, FALSE, FALSE);
    });
    ASSERT_TRUE(kmlab::test::waiters_reach(&m, 1));
    owner_may_exit = true;
    owner.join();
    waiter.join();
    EXPECT_EQ(status, STATUS_ABANDONED_WAIT_0 + 1);
    EXPECT_EQ(m.Abandoned, FALSE);
}
