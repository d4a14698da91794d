// KSPIN_LOCK and in-stack queued spin locks: the routines of
// kmlab/kernel/spin_lock.hpp, ported from ReactOS's kmtest
// ntos_ke/KeSpinLock.c [kmt-KeSpinLock] (its single-thread state checks, in
// the checked-build layout kmlab keeps: the owner's KTHREAD | 1 in the word),
// plus each rule of kmlab/kernel/rules_spin_lock.hpp in both flavours, the
// queue's FIFO hand-off, and mutual exclusion under stress.
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <kmlab/kernel/rules_spin_lock.hpp>
#include "support.hpp"

using namespace kmlab::nt;
using kmlab::Flavor;
namespace bugcheck = kmlab::bugcheck;

namespace {

// Runs each test in the flavour it names and restores the process's flavour.
using SpinLockTest = kmlab::test::FlavorRestoringNt;
using SpinLock = SpinLockTest;
using SpinLockChecked = SpinLockTest;
// Driver Verifier's 0xC4 subcodes: the verifier flavour (rules_spin_lock.hpp).
using SpinLockVerifier = SpinLockTest;
using SpinLockFree = SpinLockTest;
using QueuedSpinLock = SpinLockTest;

ULONG_PTR word(const KSPIN_LOCK& l) {
    return std::atomic_ref<KSPIN_LOCK>(const_cast<KSPIN_LOCK&>(l)).load();
}
ULONG_PTR tag() {
    return reinterpret_cast<ULONG_PTR>(KeGetCurrentThread()) | 1;
}
ULONG_PTR address(const void* p) {
    return reinterpret_cast<ULONG_PTR>(p);
}
void set_irql(KIRQL irql) {
    // KeRaiseIrql/KeLowerIrql in whichever direction (kmtest's KmtSetIrql).
    kmlab::kernel::set_irql(KeGetCurrentThread(), irql);
}

constexpr KIRQL kIrqls[] = {PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL};

}  // namespace

// ---- KeInitializeSpinLock, KeTestSpinLock [kmt-KeSpinLock] ----

TEST_F(SpinLock, InitializeClearsTheWord) {
    KSPIN_LOCK l;
    std::memset(&l, 0x55, sizeof l);
    KeInitializeSpinLock(&l);
    EXPECT_EQ(l, 0u);
}

TEST_F(SpinLock, TestSpinLockIsTrueOnlyForZero) {
    KSPIN_LOCK l = 0;
    EXPECT_TRUE(KeTestSpinLock(&l));
    for (ULONG_PTR v : {ULONG_PTR{1}, ULONG_PTR{2}, ~ULONG_PTR{0}, ULONG_PTR{1} << 63}) {
        l = v;
        EXPECT_FALSE(KeTestSpinLock(&l)) << v;
    }
    l = 0;
    EXPECT_TRUE(KeTestSpinLock(&l));
}

// ---- the state each pair leaves, at every IRQL a checked build allows ----

TEST_F(SpinLock, AcquireRaisesToDispatchAndReleaseRestores) {
    for (KIRQL irql : kIrqls) {
        set_irql(irql);
        KSPIN_LOCK l;
        KeInitializeSpinLock(&l);
        KIRQL old = 0x55;
        KeAcquireSpinLock(&l, &old);
        EXPECT_EQ(old, irql);
        EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
        EXPECT_EQ(word(l), tag()) << "a checked build keeps the owner [kmt-KeSpinLock]";
        EXPECT_FALSE(KeTestSpinLock(&l));
        EXPECT_FALSE(KeAreApcsDisabled()) << "a spin lock is no critical region";
        KeReleaseSpinLock(&l, old);
        EXPECT_EQ(KeGetCurrentIrql(), irql);
        EXPECT_EQ(word(l), 0u);
        EXPECT_TRUE(KeTestSpinLock(&l));

        EXPECT_EQ(KeAcquireSpinLockRaiseToDpc(&l), irql);
        EXPECT_EQ(word(l), tag());
        KeReleaseSpinLock(&l, irql);
        EXPECT_EQ(KeGetCurrentIrql(), irql);
    }
    set_irql(PASSIVE_LEVEL);
}

TEST_F(SpinLock, AtDpcLevelFormsLeaveTheIrqlAndMixWithTheOthers) {
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    set_irql(DISPATCH_LEVEL);
    KeAcquireSpinLockAtDpcLevel(&l);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    EXPECT_EQ(word(l), tag());
    KeReleaseSpinLockFromDpcLevel(&l);
    EXPECT_EQ(word(l), 0u);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);

    // Acquire without raise, then the normal release; and the reverse
    // [kmt-KeSpinLock].
    KeAcquireSpinLockAtDpcLevel(&l);
    KeReleaseSpinLock(&l, DISPATCH_LEVEL);
    EXPECT_EQ(word(l), 0u);
    KIRQL old;
    KeAcquireSpinLock(&l, &old);
    KeReleaseSpinLockFromDpcLevel(&l);
    EXPECT_EQ(word(l), 0u);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    set_irql(PASSIVE_LEVEL);
}

TEST_F(SpinLock, TryToAcquireAtDpcLevel) {
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    set_irql(DISPATCH_LEVEL);
    ASSERT_TRUE(KeTryToAcquireSpinLockAtDpcLevel(&l));
    EXPECT_EQ(word(l), tag());
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    kmlab::test::on_new_thread([&] {
        set_irql(DISPATCH_LEVEL);
        EXPECT_FALSE(KeTryToAcquireSpinLockAtDpcLevel(&l)) << "held by another thread";
        set_irql(PASSIVE_LEVEL);
    });
    KeReleaseSpinLockFromDpcLevel(&l);
    EXPECT_EQ(word(l), 0u);
    set_irql(PASSIVE_LEVEL);
}

TEST_F(SpinLockChecked, TryByTheOwnerBugChecksAlreadyOwned) {
    kmlab::set_flavor(Flavor::checked);
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    set_irql(DISPATCH_LEVEL);
    ASSERT_TRUE(KeTryToAcquireSpinLockAtDpcLevel(&l));
    auto bc =
        EXPECT_BUG_CHECK(KeTryToAcquireSpinLockAtDpcLevel(&l), bugcheck::SPIN_LOCK_ALREADY_OWNED);
    EXPECT_EQ(bc.parameter(1), address(&l)) << "[kmt-KeSpinLock]: checked builds";
    EXPECT_EQ(word(l), tag());
    KeReleaseSpinLockFromDpcLevel(&l);
    set_irql(PASSIVE_LEVEL);
}

TEST_F(SpinLockFree, TryByTheOwnerReturnsFalse) {
    kmlab::set_flavor(Flavor::free);
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    set_irql(DISPATCH_LEVEL);
    ASSERT_TRUE(KeTryToAcquireSpinLockAtDpcLevel(&l));
    EXPECT_FALSE(KeTryToAcquireSpinLockAtDpcLevel(&l)) << "[kmt-KeSpinLock]: free MP builds";
    EXPECT_EQ(word(l), tag());
    KeReleaseSpinLockFromDpcLevel(&l);
    set_irql(PASSIVE_LEVEL);
}

TEST_F(QueuedSpinLock, HandleAndWordAsKmtestReadsThem) {
    for (KIRQL irql : kIrqls) {
        set_irql(irql);
        KSPIN_LOCK l;
        KeInitializeSpinLock(&l);
        KLOCK_QUEUE_HANDLE h;
        std::memset(&h, 0x55, sizeof h);
        KeAcquireInStackQueuedSpinLock(&l, &h);
        EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
        EXPECT_EQ(h.OldIrql, irql);
        EXPECT_EQ(word(l), address(&h)) << "the word is the queue's tail [kmt-KeSpinLock]";
        EXPECT_EQ(h.LockQueue.Next, nullptr);
        EXPECT_EQ(address(h.LockQueue.Lock), address(&l) | 2) << "LOCK_QUEUE_OWNER";
        EXPECT_FALSE(KeTestSpinLock(&l));
        KeReleaseInStackQueuedSpinLock(&h);
        EXPECT_EQ(KeGetCurrentIrql(), irql);
        EXPECT_EQ(word(l), 0u);
        EXPECT_EQ(h.LockQueue.Next, nullptr);
        EXPECT_EQ(h.LockQueue.Lock, &l);
        EXPECT_EQ(h.OldIrql, irql);
    }
    set_irql(PASSIVE_LEVEL);
}

TEST_F(QueuedSpinLock, AtDpcLevelAndForDpcFormsLeaveTheIrqlAndOldIrql) {
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    set_irql(DISPATCH_LEVEL);
    KLOCK_QUEUE_HANDLE h;
    std::memset(&h, 0x55, sizeof h);
    KeAcquireInStackQueuedSpinLockAtDpcLevel(&l, &h);
    EXPECT_EQ(word(l), address(&h));
    EXPECT_EQ(address(h.LockQueue.Lock), address(&l) | 2);
    EXPECT_EQ(h.OldIrql, 0x55) << "not written [wrk-queuelock]";
    KeReleaseInStackQueuedSpinLockFromDpcLevel(&h);
    EXPECT_EQ(word(l), 0u);
    EXPECT_EQ(h.LockQueue.Lock, &l);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);

    KeAcquireInStackQueuedSpinLockForDpc(&l, &h);
    EXPECT_EQ(word(l), address(&h));
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeReleaseInStackQueuedSpinLockForDpc(&h);
    EXPECT_EQ(word(l), 0u);

    // Acquire without raise, then the normal release (which lowers to the
    // handle's OldIrql) [kmt-KeSpinLock].
    KeAcquireInStackQueuedSpinLockAtDpcLevel(&l, &h);
    h.OldIrql = DISPATCH_LEVEL;
    KeReleaseInStackQueuedSpinLock(&h);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    EXPECT_EQ(word(l), 0u);
    set_irql(PASSIVE_LEVEL);
}

TEST_F(SpinLock, ForDpcFormsAreTheAtDpcLevelOnes) {
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    set_irql(DISPATCH_LEVEL);
    EXPECT_EQ(KeAcquireSpinLockForDpc(&l), DISPATCH_LEVEL) << "no threaded DPC [wrk-ki]";
    EXPECT_EQ(word(l), tag());
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeReleaseSpinLockForDpc(&l, DISPATCH_LEVEL);
    EXPECT_EQ(word(l), 0u);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    set_irql(PASSIVE_LEVEL);
}

// ---- IRQL rules: Driver Verifier / checked build in `checked`, none in `free` ----

TEST_F(SpinLockVerifier, AcquireAboveDispatchIsVerifier0x42) {
    kmlab::set_flavor(Flavor::verifier);
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    set_irql(HIGH_LEVEL);
    KIRQL old = 0;
    auto bc =
        EXPECT_BUG_CHECK(KeAcquireSpinLock(&l, &old), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_SPIN_LOCK_ACQUIRE_IRQL);
    EXPECT_EQ(bc.parameter(2), HIGH_LEVEL);
    EXPECT_EQ(bc.parameter(3), address(&l));
    EXPECT_EQ(word(l), 0u) << "nothing acquired";
    EXPECT_EQ(KeGetCurrentIrql(), HIGH_LEVEL);
    set_irql(PASSIVE_LEVEL);
}

TEST_F(SpinLockFree, AcquireAboveDispatchLowersToDispatchAndReleaseRestores) {
    kmlab::set_flavor(Flavor::free);
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    set_irql(HIGH_LEVEL);
    KIRQL old = 0;
    KeAcquireSpinLock(&l, &old);
    EXPECT_EQ(old, HIGH_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL) << "[kmt-KeSpinLock]: free build at HIGH_LEVEL";
    KeReleaseSpinLock(&l, old);
    EXPECT_EQ(KeGetCurrentIrql(), HIGH_LEVEL);
    EXPECT_EQ(word(l), 0u);

    KLOCK_QUEUE_HANDLE h;
    KeAcquireInStackQueuedSpinLock(&l, &h);
    EXPECT_EQ(h.OldIrql, HIGH_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeReleaseInStackQueuedSpinLock(&h);
    EXPECT_EQ(KeGetCurrentIrql(), HIGH_LEVEL);
    set_irql(PASSIVE_LEVEL);
}

TEST_F(SpinLockVerifier, ReleaseBelowDispatchIsVerifier0x32) {
    kmlab::set_flavor(Flavor::verifier);
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KIRQL old;
    KeAcquireSpinLock(&l, &old);
    set_irql(APC_LEVEL);
    auto bc =
        EXPECT_BUG_CHECK(KeReleaseSpinLock(&l, old), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_SPIN_LOCK_RELEASE_IRQL);
    EXPECT_EQ(bc.parameter(2), APC_LEVEL);
    EXPECT_EQ(bc.parameter(3), address(&l));
    EXPECT_EQ(word(l), tag()) << "still held";
    set_irql(DISPATCH_LEVEL);
    KeReleaseSpinLock(&l, old);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

TEST_F(SpinLockVerifier, AtDpcLevelFormsBelowDispatchAreVerifier0x40And0x41) {
    kmlab::set_flavor(Flavor::verifier);
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    auto bc = EXPECT_BUG_CHECK(KeAcquireSpinLockAtDpcLevel(&l),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_SPIN_LOCK_AT_DPC_ACQUIRE_IRQL);
    EXPECT_EQ(bc.parameter(2), PASSIVE_LEVEL);
    EXPECT_EQ(bc.parameter(3), address(&l));
    bc = EXPECT_BUG_CHECK(KeTryToAcquireSpinLockAtDpcLevel(&l),
                          bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_SPIN_LOCK_AT_DPC_ACQUIRE_IRQL);
    KLOCK_QUEUE_HANDLE h;
    bc = EXPECT_BUG_CHECK(KeAcquireInStackQueuedSpinLockAtDpcLevel(&l, &h),
                          bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_SPIN_LOCK_AT_DPC_ACQUIRE_IRQL);
    EXPECT_EQ(word(l), 0u) << "nothing acquired";

    set_irql(DISPATCH_LEVEL);
    KeAcquireSpinLockAtDpcLevel(&l);
    set_irql(APC_LEVEL);
    bc = EXPECT_BUG_CHECK(KeReleaseSpinLockFromDpcLevel(&l),
                          bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_SPIN_LOCK_FROM_DPC_RELEASE_IRQL);
    EXPECT_EQ(bc.parameter(2), APC_LEVEL);
    EXPECT_EQ(word(l), tag()) << "still held";
    set_irql(DISPATCH_LEVEL);
    KeReleaseSpinLockFromDpcLevel(&l);

    KeAcquireInStackQueuedSpinLockAtDpcLevel(&l, &h);
    set_irql(PASSIVE_LEVEL);
    bc = EXPECT_BUG_CHECK(KeReleaseInStackQueuedSpinLockFromDpcLevel(&h),
                          bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_SPIN_LOCK_FROM_DPC_RELEASE_IRQL);
    EXPECT_EQ(word(l), address(&h)) << "still held";
    set_irql(DISPATCH_LEVEL);
    KeReleaseInStackQueuedSpinLockFromDpcLevel(&h);
    EXPECT_EQ(word(l), 0u);
    set_irql(PASSIVE_LEVEL);
}

TEST_F(SpinLockFree, AtDpcLevelFormsRunAtPassive) {
    kmlab::set_flavor(Flavor::free);
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    // [kmt-KeSpinLock]: a free build acquires without raise at PASSIVE_LEVEL
    // and releases with KeReleaseSpinLock there.
    KeAcquireSpinLockAtDpcLevel(&l);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    KeReleaseSpinLock(&l, PASSIVE_LEVEL);
    EXPECT_EQ(word(l), 0u);
    ASSERT_TRUE(KeTryToAcquireSpinLockAtDpcLevel(&l));
    KeReleaseSpinLockFromDpcLevel(&l);
    KLOCK_QUEUE_HANDLE h;
    KeAcquireInStackQueuedSpinLockForDpc(&l, &h);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    KeReleaseInStackQueuedSpinLockForDpc(&h);
    EXPECT_EQ(word(l), 0u);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

TEST_F(SpinLockVerifier, QueuedIrqlRules) {
    kmlab::set_flavor(Flavor::verifier);
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KLOCK_QUEUE_HANDLE h;
    set_irql(HIGH_LEVEL);
    auto bc = EXPECT_BUG_CHECK(KeAcquireInStackQueuedSpinLock(&l, &h),
                               bugcheck::IRQL_NOT_GREATER_OR_EQUAL);
    EXPECT_EQ(bc.parameter(1), HIGH_LEVEL) << "the checked HAL's KfRaiseIrql [ros-apic]";
    EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
    EXPECT_EQ(word(l), 0u);
    set_irql(PASSIVE_LEVEL);

    KeAcquireInStackQueuedSpinLock(&l, &h);
    set_irql(APC_LEVEL);
    bc = EXPECT_BUG_CHECK(KeReleaseInStackQueuedSpinLock(&h),
                          bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_KERNEL_SPIN_LOCK_RELEASE_IRQL);
    EXPECT_EQ(bc.parameter(2), APC_LEVEL);
    EXPECT_EQ(bc.parameter(3), address(&l));
    EXPECT_EQ(bc.parameter(4), PASSIVE_LEVEL) << "the handle's OldIrql";
    EXPECT_EQ(word(l), address(&h)) << "still held";
    set_irql(DISPATCH_LEVEL);
    KeReleaseInStackQueuedSpinLock(&h);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);

    // The ...ForDpc routines ASSERT DISPATCH_LEVEL [wrk-ki].
    bc = EXPECT_BUG_CHECK(KeAcquireInStackQueuedSpinLockForDpc(&l, &h),
                          bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_EQ(bc.parameter(1), static_cast<ULONG_PTR>(static_cast<ULONG>(STATUS_BREAKPOINT)));
    EXPECT_BUG_CHECK(KeAcquireSpinLockForDpc(&l), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_EQ(word(l), 0u);
}

// ---- ownership: every flavour ----

TEST_F(SpinLock, RecursiveAcquireBugChecksAlreadyOwnedInEveryFlavour) {
    for (Flavor f : {Flavor::checked, Flavor::free}) {
        kmlab::set_flavor(f);
        KSPIN_LOCK l;
        KeInitializeSpinLock(&l);
        KIRQL old;
        KeAcquireSpinLock(&l, &old);
        KIRQL again = 0x55;
        auto bc =
            EXPECT_BUG_CHECK(KeAcquireSpinLock(&l, &again), bugcheck::SPIN_LOCK_ALREADY_OWNED);
        EXPECT_EQ(bc.parameter(1), address(&l)) << "[ros-spinlock-h]";
        EXPECT_EQ(bc.parameter(2), 0u);
        EXPECT_BUG_CHECK(KeAcquireSpinLockAtDpcLevel(&l), bugcheck::SPIN_LOCK_ALREADY_OWNED);
        EXPECT_EQ(word(l), tag());
        EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
        KeReleaseSpinLock(&l, old);
    }
}

TEST_F(SpinLock, ReleaseByANonOwnerBugChecksNotOwnedInEveryFlavour) {
    for (Flavor f : {Flavor::checked, Flavor::free}) {
        kmlab::set_flavor(f);
        KSPIN_LOCK l;
        KeInitializeSpinLock(&l);
        set_irql(DISPATCH_LEVEL);
        auto bc =
            EXPECT_BUG_CHECK(KeReleaseSpinLockFromDpcLevel(&l), bugcheck::SPIN_LOCK_NOT_OWNED);
        EXPECT_EQ(bc.parameter(1), address(&l)) << "a free lock [ros-spinlock-h]";
        KeAcquireSpinLockAtDpcLevel(&l);
        kmlab::test::on_new_thread([&] {
            set_irql(DISPATCH_LEVEL);
            EXPECT_BUG_CHECK(KeReleaseSpinLock(&l, PASSIVE_LEVEL), bugcheck::SPIN_LOCK_NOT_OWNED);
            set_irql(PASSIVE_LEVEL);
        });
        EXPECT_EQ(word(l), tag()) << "another thread's release changed nothing";
        KeReleaseSpinLockFromDpcLevel(&l);
        EXPECT_BUG_CHECK(KeReleaseSpinLockFromDpcLevel(&l),
                         bugcheck::SPIN_LOCK_NOT_OWNED);  // a double release
        set_irql(PASSIVE_LEVEL);
    }
}

TEST_F(QueuedSpinLock, RecursiveAcquireAndForeignReleaseBugCheck) {
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KLOCK_QUEUE_HANDLE h, h2;
    KeAcquireInStackQueuedSpinLock(&l, &h);
    auto bc = EXPECT_BUG_CHECK(KeAcquireInStackQueuedSpinLock(&l, &h2),
                               bugcheck::SPIN_LOCK_ALREADY_OWNED);
    EXPECT_EQ(bc.parameter(1), address(&l));
    EXPECT_EQ(word(l), address(&h)) << "nothing queued";
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    kmlab::test::on_new_thread([&] {
        set_irql(DISPATCH_LEVEL);
        auto b = EXPECT_BUG_CHECK(KeReleaseInStackQueuedSpinLockFromDpcLevel(&h),
                                  bugcheck::SPIN_LOCK_NOT_OWNED);
        EXPECT_EQ(b.parameter(2), address(&h));
        set_irql(PASSIVE_LEVEL);
    });
    KeReleaseInStackQueuedSpinLock(&h);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    set_irql(DISPATCH_LEVEL);
    EXPECT_BUG_CHECK(KeReleaseInStackQueuedSpinLockFromDpcLevel(&h),
                     bugcheck::SPIN_LOCK_NOT_OWNED);  // a double release
    EXPECT_EQ(word(l), 0u);
    set_irql(PASSIVE_LEVEL);
}

// Mixing ordinary and queued acquisition on one lock is forbidden
// [ddi:keacquireinstackqueuedspinlock]; kmlab stops either kind of acquire
// that finds the other kind's holder with 0xF, before it changes anything
// (rules_spin_lock.hpp).
TEST_F(QueuedSpinLock, QueuedAcquireOfAnOrdinaryHoldBugChecksAndChangesNothing) {
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KIRQL old;
    KeAcquireSpinLock(&l, &old);
    kmlab::test::on_new_thread([&] {
        KLOCK_QUEUE_HANDLE h;
        std::memset(&h, 0, sizeof h);
        auto bc = EXPECT_BUG_CHECK(KeAcquireInStackQueuedSpinLock(&l, &h),
                                   bugcheck::SPIN_LOCK_ALREADY_OWNED);
        EXPECT_EQ(bc.parameter(1), address(&l));
        EXPECT_EQ(bc.parameter(2), word(l)) << "the ordinary holder's word";
        EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
        EXPECT_EQ(kmlab::kernel::detail::tls_queued_holds.count, 0);
    });
    EXPECT_EQ(word(l), tag()) << "the holder's word was never replaced";
    KeReleaseSpinLock(&l, old);
    EXPECT_EQ(word(l), 0u);
}

// Review finding: two queued acquirers racing onto an ordinary hold. Before
// the fix the first swapped itself in and put the word back, and the second,
// linked into the first's unwound handle in between, spun forever (a hang
// within a few hundred rounds). Now neither replaces the word.
TEST_F(QueuedSpinLock, QueuedAcquirersRacingOntoAnOrdinaryHoldAllBugCheck) {
    constexpr int kRounds = 1000;
    constexpr int kThreads = 3;
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KIRQL old;
    KeAcquireSpinLock(&l, &old);
    std::atomic<int> caught{0};
    for (int round = 0; round < kRounds; ++round) {
        std::atomic<int> ready{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < kThreads; ++i)
            threads.emplace_back([&] {
                ready.fetch_add(1);
                while (ready.load() < kThreads) {
                }
                KLOCK_QUEUE_HANDLE h;
                try {
                    KeAcquireInStackQueuedSpinLock(&l, &h);
                    KeReleaseInStackQueuedSpinLock(&h);
                } catch (const kmlab::BugCheck& b) {
                    if (b.code() == bugcheck::SPIN_LOCK_ALREADY_OWNED) caught.fetch_add(1);
                }
            });
        for (auto& t : threads) t.join();
        ASSERT_EQ(word(l), tag()) << "round " << round;
    }
    EXPECT_EQ(caught.load(), kRounds * kThreads);
    KeReleaseSpinLock(&l, old);
    EXPECT_EQ(word(l), 0u);
}

// The other direction: an ordinary acquire that finds a queue tail (nonzero,
// bit 0 clear) bug checks at once rather than waiting for the queue
// (decision, kmlab; rules_spin_lock.hpp), and an ordinary release of a queued
// hold is a foreign release.
TEST_F(QueuedSpinLock, OrdinaryAcquireOfAQueuedHoldBugChecksAtOnce) {
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KLOCK_QUEUE_HANDLE h;
    KeAcquireInStackQueuedSpinLock(&l, &h);
    const ULONG_PTR held = word(l);
    kmlab::test::on_new_thread([&] {
        KIRQL o = PASSIVE_LEVEL;
        auto bc = EXPECT_BUG_CHECK(KeAcquireSpinLock(&l, &o), bugcheck::SPIN_LOCK_ALREADY_OWNED);
        EXPECT_EQ(bc.parameter(1), address(&l));
        EXPECT_EQ(bc.parameter(2), held) << "the queue's tail";
        EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
        set_irql(DISPATCH_LEVEL);
        EXPECT_BUG_CHECK(KeAcquireSpinLockAtDpcLevel(&l), bugcheck::SPIN_LOCK_ALREADY_OWNED);
        EXPECT_FALSE(KeTryToAcquireSpinLockAtDpcLevel(&l)) << "a try only sees it held";
        set_irql(PASSIVE_LEVEL);
    });
    EXPECT_BUG_CHECK(KeAcquireSpinLockAtDpcLevel(&l), bugcheck::SPIN_LOCK_ALREADY_OWNED);
    EXPECT_EQ(word(l), held);
    EXPECT_BUG_CHECK(KeReleaseSpinLock(&l, PASSIVE_LEVEL),
                     bugcheck::SPIN_LOCK_NOT_OWNED);  // an ordinary release of a queued hold
    KeReleaseInStackQueuedSpinLock(&h);
    EXPECT_EQ(word(l), 0u);
}

// Review finding: past the 32 inline entries of the thread's list of queued
// holds, the extra holds were counted, not listed. Now each of 40 nested
// holds is tracked: a recursive acquire of the 33rd or a later one bug checks
// (it would queue behind itself), and the holds release in either order.
TEST_F(QueuedSpinLock, FortyNestedHoldsAreEachTracked) {
    constexpr int kLocks = 40;
    std::vector<KSPIN_LOCK> locks(kLocks);
    std::vector<KLOCK_QUEUE_HANDLE> handles(kLocks);
    for (auto& l : locks) KeInitializeSpinLock(&l);
    set_irql(DISPATCH_LEVEL);
    for (int order = 0; order < 2; ++order) {
        for (int i = 0; i < kLocks; ++i)
            KeAcquireInStackQueuedSpinLockAtDpcLevel(&locks[static_cast<size_t>(i)],
                                                     &handles[static_cast<size_t>(i)]);
        for (size_t i : {0u, 31u, 32u, 33u, 39u}) {
            KLOCK_QUEUE_HANDLE again;
            auto bc = EXPECT_BUG_CHECK(KeAcquireInStackQueuedSpinLockAtDpcLevel(&locks[i], &again),
                                       bugcheck::SPIN_LOCK_ALREADY_OWNED);
            EXPECT_EQ(bc.parameter(1), address(&locks[i])) << "hold " << i + 1;
            EXPECT_EQ(word(locks[i]), address(&handles[i]));
        }
        for (int k = 0; k < kLocks; ++k) {
            const size_t i = static_cast<size_t>(order == 0 ? kLocks - 1 - k : k);
            KeReleaseInStackQueuedSpinLockFromDpcLevel(&handles[i]);
        }
        EXPECT_EQ(kmlab::kernel::detail::tls_queued_holds.count, 0);
        for (auto& l : locks) EXPECT_EQ(word(l), 0u);
    }
    set_irql(PASSIVE_LEVEL);
}

// ---- a blocking wait while holding a spin lock ----

TEST_F(SpinLock, WaitingWhileHoldingIsAWaitAtDispatchLevel) {
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    for (int queued = 0; queued < 2; ++queued) {
        KIRQL old = PASSIVE_LEVEL;
        KLOCK_QUEUE_HANDLE h;
        if (queued)
            KeAcquireInStackQueuedSpinLock(&l, &h);
        else
            KeAcquireSpinLock(&l, &old);
        LARGE_INTEGER timeout;
        timeout.QuadPart = -10000;
        auto bc =
            EXPECT_BUG_CHECK(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &timeout),
                             bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
        EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_WAIT_AT_DISPATCH);
        EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
        EXPECT_BUG_CHECK(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nullptr),
                         bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);  // an infinite wait too
        timeout.QuadPart = 0;
        EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &timeout), STATUS_TIMEOUT)
            << "a zero timeout is allowed at DISPATCH_LEVEL [ddi:kewaitforsingleobject]";
        if (queued)
            KeReleaseInStackQueuedSpinLock(&h);
        else
            KeReleaseSpinLock(&l, old);
    }
    EXPECT_EQ(word(l), 0u);
}

// ---- the queue: FIFO hand-off ----

TEST_F(QueuedSpinLock, HandOffIsInEnqueueOrder) {
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KLOCK_QUEUE_HANDLE h;
    KeAcquireInStackQueuedSpinLock(&l, &h);
    constexpr int kWaiters = 5;
    std::vector<int> order;
    std::vector<std::thread> threads;
    std::vector<KLOCK_QUEUE_HANDLE> handles(kWaiters);
    for (int i = 0; i < kWaiters; ++i) {
        threads.emplace_back([&, i] {
            KeAcquireInStackQueuedSpinLock(&l, &handles[static_cast<size_t>(i)]);
            order.push_back(i);  // under the lock
            KeReleaseInStackQueuedSpinLock(&handles[static_cast<size_t>(i)]);
        });
        // Each waiter is the queue's tail before the next one starts.
        ASSERT_TRUE(kmlab::test::eventually(
            [&] { return word(l) == address(&handles[static_cast<size_t>(i)]); }));
    }
    KeReleaseInStackQueuedSpinLock(&h);
    for (auto& t : threads) t.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(word(l), 0u);
}

// ---- mutual exclusion under stress, 3 and 5 threads ----

namespace {
template <class Body>
void stress(int threads, Body body) {
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i) ts.emplace_back(body);
    for (auto& t : ts) t.join();
}
}  // namespace

TEST_F(SpinLock, StressOrdinaryAndQueued) {
    for (int queued = 0; queued < 2; ++queued) {  // one kind per lock: never mixed
        for (int threads : {3, 5}) {
            KSPIN_LOCK l;
            KeInitializeSpinLock(&l);
            constexpr int kIterations = 20000;
            long counter = 0;
            std::atomic<int> inside{0};
            std::atomic<int> overlaps{0};
            stress(threads, [&] {
                for (int i = 0; i < kIterations; ++i) {
                    KIRQL old = PASSIVE_LEVEL;
                    KLOCK_QUEUE_HANDLE h;
                    if (queued)
                        KeAcquireInStackQueuedSpinLock(&l, &h);
                    else
                        KeAcquireSpinLock(&l, &old);
                    if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
                    ++counter;
                    inside.fetch_sub(1);
                    if (queued)
                        KeReleaseInStackQueuedSpinLock(&h);
                    else
                        KeReleaseSpinLock(&l, old);
                }
                EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
            });
            EXPECT_EQ(overlaps.load(), 0);
            EXPECT_EQ(counter, static_cast<long>(threads) * kIterations);
            EXPECT_EQ(word(l), 0u) << "back in its initial state";
        }
    }
}
