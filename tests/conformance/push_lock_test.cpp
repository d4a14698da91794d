// EX_PUSH_LOCK routines (kernel/push_lock.hpp). Sources: the WDK pages
// [ddi:exinitializepushlock], [ddi:exacquirepushlockexclusive],
// [ddi:exacquirepushlockshared], [ddi:extryacquirepushlockexclusive],
// [ddi:fltacquirepushlockexclusive], [ddi:fltreleasepushlock]; the word's
// states and the release ASSERTs from ReactOS's inlines [ros-ex-h]. No
// kmtest covers push locks. The rules: kernel/rules_rw_lock.hpp.
#include <atomic>
#include <thread>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using PushLock = Nt;
namespace bugcheck = kmlab::bugcheck;

namespace {

ULONG_PTR word(EX_PUSH_LOCK& l) {
    return std::atomic_ref<ULONG_PTR>(l).load();
}

// Restores the flavour a test changed.
class FlavorScope {
  public:
    explicit FlavorScope(kmlab::Flavor f) : saved_(kmlab::flavor()) { kmlab::set_flavor(f); }
    ~FlavorScope() { kmlab::set_flavor(saved_); }

  private:
    kmlab::Flavor saved_;
};

}  // namespace

TEST_F(PushLock, TypeIsAPointerSizedWordThatInitializesToZero) {
    static_assert(sizeof(EX_PUSH_LOCK) == sizeof(void*), "wdm.h: #define EX_PUSH_LOCK ULONG_PTR");
    EX_PUSH_LOCK l = 0x5555;
    ExInitializePushLock(&l);
    EXPECT_EQ(l, 0u);
    l = 0x77;
    FltInitializePushLock(&l);
    EXPECT_EQ(l, 0u);
    FltDeletePushLock(&l);
    EXPECT_EQ(l, 0u);
}

// The uncontended states are the kernel's: Locked (bit 0), and the share
// count from bit 4 with Locked set [ros-ex-h].
TEST_F(PushLock, ExclusiveAndSharedHoldsHaveTheKernelsEncoding) {
    EX_PUSH_LOCK l;
    ExInitializePushLock(&l);
    KeEnterCriticalRegion();
    ExAcquirePushLockExclusive(&l);
    EXPECT_EQ(word(l), 0x1u);
    ExReleasePushLockExclusive(&l);
    EXPECT_EQ(word(l), 0u);
    ExAcquirePushLockShared(&l);
    EXPECT_EQ(word(l), 0x11u);
    // A second shared hold (here the same thread's, which the lock cannot
    // tell from another's): granted because no thread waits for exclusive
    // access ("If the push lock has already been acquired for shared access
    // by another thread and no thread is waiting for exclusive access to
    // the push lock, shared access is granted to the caller immediately"
    // [ddi:exacquirepushlockshared]); with an exclusive waiter it would wait,
    // and a recursive reader would hang.
    ExAcquirePushLockShared(&l);
    EXPECT_EQ(word(l), 0x21u);
    ExReleasePushLockShared(&l);
    ExReleasePushLock(&l);  // either mode
    EXPECT_EQ(word(l), 0u);
    KeLeaveCriticalRegion();
}

TEST_F(PushLock, TryAcquires) {
    EX_PUSH_LOCK l;
    ExInitializePushLock(&l);
    KeEnterCriticalRegion();
    ASSERT_TRUE(ExTryAcquirePushLockShared(&l));
    EXPECT_TRUE(ExTryAcquirePushLockShared(&l)) << "readers share";
    EXPECT_FALSE(ExTryAcquirePushLockExclusive(&l)) << "a writer waits for readers";
    ExReleasePushLockShared(&l);
    ExReleasePushLockShared(&l);
    ASSERT_TRUE(ExTryAcquirePushLockExclusive(&l));
    EXPECT_FALSE(ExTryAcquirePushLockExclusive(&l)) << "not recursive; a try does not hang";
    EXPECT_FALSE(ExTryAcquirePushLockShared(&l));
    ExReleasePushLock(&l);
    EXPECT_EQ(word(l), 0u);
    KeLeaveCriticalRegion();
}

// "If the push lock has already been acquired for exclusive or shared access
// by another thread, the current thread is put into a wait state until the
// push lock can be acquired" [ddi:exacquirepushlockexclusive].
TEST_F(PushLock, ExclusiveWaiterSleepsUntilTheReadersLeave) {
    EX_PUSH_LOCK l;
    ExInitializePushLock(&l);
    KeEnterCriticalRegion();
    ExAcquirePushLockShared(&l);
    std::atomic<bool> got{false};
    std::thread writer([&] {
        KeEnterCriticalRegion();
        ExAcquirePushLockExclusive(&l);
        got = true;
        ExReleasePushLockExclusive(&l);
        KeLeaveCriticalRegion();
    });
    // The writer marks itself waiting: Waiting, and one exclusive waiter
    // counted in bits 40..63 (rw_lock_algorithm.hpp).
    ASSERT_TRUE(
        kmlab::test::eventually([&] { return (word(l) & 0x2) != 0 && (word(l) >> 40) == 1; }));
    EXPECT_FALSE(got.load());
    // "The caller is put into a wait state if there is an exclusive waiter"
    // [ddi:exacquirepushlockshared]: a new reader's try fails.
    kmlab::test::on_new_thread([&] {
        KeEnterCriticalRegion();
        EXPECT_FALSE(ExTryAcquirePushLockShared(&l));
        KeLeaveCriticalRegion();
    });
    ExReleasePushLockShared(&l);
    writer.join();
    EXPECT_TRUE(got.load());
    EXPECT_EQ(word(l), 0u);
    KeLeaveCriticalRegion();
}

// The exclusive waiter keeps its place when the readers leave: the release
// that frees the lock leaves the waiter's count in the word, so a reader
// arriving before the woken writer has run still waits ("The caller is put
// into a wait state if there is an exclusive waiter"
// [ddi:exacquirepushlockshared]). Deterministic: whether or not the writer
// has run yet, the try below finds it counted or owning the lock (it stays
// inside until `go`).
TEST_F(PushLock, AWokenWriterKeepsItsPlaceAheadOfNewReaders) {
    EX_PUSH_LOCK l;
    ExInitializePushLock(&l);
    KeEnterCriticalRegion();
    ExAcquirePushLockShared(&l);
    std::atomic<bool> inside{false}, go{false};
    std::thread writer([&] {
        KeEnterCriticalRegion();
        ExAcquirePushLockExclusive(&l);
        inside = true;
        while (!go.load()) std::this_thread::yield();
        ExReleasePushLockExclusive(&l);
        KeLeaveCriticalRegion();
    });
    ASSERT_TRUE(kmlab::test::eventually([&] { return (word(l) >> 40) == 1; }));
    ExReleasePushLockShared(&l);
    // The same thread, at once: the writer may not even have woken.
    EXPECT_FALSE(ExTryAcquirePushLockShared(&l)) << "a reader passed the waiting writer";
    go = true;
    writer.join();
    EXPECT_TRUE(inside.load());
    EXPECT_EQ(word(l), 0u);
    KeLeaveCriticalRegion();
}

TEST_F(PushLock, SharedWaitersSleepUntilTheWriterLeaves) {
    EX_PUSH_LOCK l;
    ExInitializePushLock(&l);
    KeEnterCriticalRegion();
    ExAcquirePushLockExclusive(&l);
    std::atomic<int> readers{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < 3; ++i) {
        pool.emplace_back([&] {
            KeEnterCriticalRegion();
            ExAcquirePushLockShared(&l);
            readers.fetch_add(1);
            ExReleasePushLockShared(&l);
            KeLeaveCriticalRegion();
        });
    }
    ASSERT_TRUE(kmlab::test::eventually([&] { return (word(l) & 0x2) != 0; }));
    EXPECT_EQ(readers.load(), 0);
    ExReleasePushLockExclusive(&l);
    for (auto& t : pool) t.join();
    EXPECT_EQ(readers.load(), 3);
    EXPECT_EQ(word(l), 0u);
    KeLeaveCriticalRegion();
}

// Readers and writers with 3 and 5 threads; the lock back at 0 after.
TEST_F(PushLock, StressWith3And5Threads) {
    for (int threads : {3, 5}) {
        EX_PUSH_LOCK l;
        ExInitializePushLock(&l);
        long a = 0, b = 0;
        std::atomic<int> bad{0};
        std::vector<std::thread> pool;
        for (int i = 0; i < threads; ++i) {
            pool.emplace_back([&, i] {
                for (int k = 0; k < 20000; ++k) {
                    if ((k + i) % 4 == 0) {
                        FltAcquirePushLockExclusive(&l);
                        ++a;
                        ++b;
                        FltReleasePushLock(&l);
                    } else {
                        FltAcquirePushLockShared(&l);
                        if (a != b) ++bad;
                        FltReleasePushLock(&l);
                    }
                }
            });
        }
        for (auto& t : pool) t.join();
        EXPECT_EQ(bad.load(), 0);
        EXPECT_EQ(a, b);
        EXPECT_EQ(word(l), 0u) << threads << " threads";
    }
}

// The Flt routines enter the critical region themselves and
// FltReleasePushLock leaves it [ddi:fltacquirepushlockexclusive][ddi:fltreleasepushlock].
TEST_F(PushLock, FltRoutinesEnterAndLeaveTheCriticalRegion) {
    EX_PUSH_LOCK l;
    FltInitializePushLock(&l);
    ASSERT_FALSE(KeAreApcsDisabled());
    FltAcquirePushLockExclusive(&l);
    EXPECT_TRUE(KeAreApcsDisabled());
    EXPECT_EQ(word(l), 0x1u);
    FltReleasePushLock(&l);
    EXPECT_FALSE(KeAreApcsDisabled());
    FltAcquirePushLockShared(&l);
    EXPECT_TRUE(KeAreApcsDisabled());
    EXPECT_EQ(word(l), 0x11u);
    FltReleasePushLock(&l);
    EXPECT_FALSE(KeAreApcsDisabled());
    EXPECT_EQ(word(l), 0u);
    FltDeletePushLock(&l);
}

// ---- rules ----

// "Before calling this routine, the driver must disable normal kernel APC
// delivery" [ddi:exacquirepushlockexclusive]: checked flavour, a failed
// ASSERT (0x1E, STATUS_BREAKPOINT), before the lock changes.
TEST_F(PushLock, AcquireWithNormalKernelApcsEnabledBugChecksInTheCheckedFlavour) {
    FlavorScope checked(kmlab::Flavor::checked);
    EX_PUSH_LOCK l;
    ExInitializePushLock(&l);
    auto bc =
        EXPECT_BUG_CHECK(ExAcquirePushLockExclusive(&l), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_EQ(bc.parameter(1), static_cast<ULONG_PTR>(static_cast<ULONG>(STATUS_BREAKPOINT)));
    EXPECT_BUG_CHECK(ExAcquirePushLockShared(&l), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_BUG_CHECK(ExTryAcquirePushLockShared(&l), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_EQ(word(l), 0u) << "nothing changed";
    // A guarded region disables them too, and so does APC_LEVEL.
    KeEnterGuardedRegion();
    ExAcquirePushLockExclusive(&l);
    ExReleasePushLockExclusive(&l);
    KeLeaveGuardedRegion();
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    ExAcquirePushLockShared(&l);
    ExReleasePushLockShared(&l);
    KeLowerIrql(old);
}

TEST_F(PushLock, AcquireWithNormalKernelApcsEnabledProceedsInTheFreeFlavour) {
    FlavorScope free_flavor(kmlab::Flavor::free);
    EX_PUSH_LOCK l;
    ExInitializePushLock(&l);
    ExAcquirePushLockExclusive(&l);
    EXPECT_EQ(word(l), 0x1u);
    ExReleasePushLockExclusive(&l);
    EXPECT_EQ(word(l), 0u);
}

// IRQL <= APC_LEVEL [ros-ex-h]: above it,
// IRQL_NOT_LESS_OR_EQUAL (lock, IRQL, 0, 0) in the checked flavour.
TEST_F(PushLock, AcquireAboveApcLevelBugChecks) {
    FlavorScope checked(kmlab::Flavor::checked);
    EX_PUSH_LOCK l;
    ExInitializePushLock(&l);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    auto bc = EXPECT_BUG_CHECK(ExAcquirePushLockShared(&l), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(bc.parameter(1), reinterpret_cast<ULONG_PTR>(&l));
    EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
    KeLowerIrql(old);
    EXPECT_EQ(word(l), 0u);
}

// In the free flavour an uncontended acquire above APC_LEVEL goes on, as a
// free build's compare-exchange would; a contended one would sleep there,
// which every flavour bug checks as a wait at DISPATCH_LEVEL (0xC4/0x3B).
TEST_F(PushLock, ContendedAcquireAboveApcLevelIsAWaitAtDispatchInEveryFlavour) {
    FlavorScope free_flavor(kmlab::Flavor::free);
    EX_PUSH_LOCK l;
    ExInitializePushLock(&l);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ExAcquirePushLockShared(&l);
    EXPECT_EQ(word(l), 0x11u);
    auto bc = EXPECT_BUG_CHECK(ExAcquirePushLockExclusive(&l),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_WAIT_AT_DISPATCH);
    EXPECT_EQ(word(l), 0x11u) << "the lock did not change";
    ExReleasePushLockShared(&l);
    KeLowerIrql(old);
    EXPECT_EQ(word(l), 0u);
}

// ReactOS's release inlines ASSERT(PushLock->Locked), and the exclusive
// release ASSERT(OldValue.Waiting || OldValue.Shared == 0) [ros-ex-h]:
// checked flavour, a failed ASSERT; nothing changes.
TEST_F(PushLock, ReleaseOfAFreeLockOrInTheWrongModeBugChecksInTheCheckedFlavour) {
    FlavorScope checked(kmlab::Flavor::checked);
    EX_PUSH_LOCK l;
    ExInitializePushLock(&l);
    KeEnterCriticalRegion();
    EXPECT_BUG_CHECK(ExReleasePushLockExclusive(&l), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_BUG_CHECK(ExReleasePushLockShared(&l), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    ExAcquirePushLockShared(&l);
    EXPECT_BUG_CHECK(ExReleasePushLockExclusive(&l), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_EQ(word(l), 0x11u);
    ExReleasePushLockShared(&l);
    ExAcquirePushLockExclusive(&l);
    EXPECT_BUG_CHECK(ExReleasePushLockShared(&l), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_EQ(word(l), 0x1u);
    ExReleasePushLockExclusive(&l);
    EXPECT_EQ(word(l), 0u);
    KeLeaveCriticalRegion();
}
