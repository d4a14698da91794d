// Build flavours (kernel/rules.hpp): what the checked flavour bug checks and
// the free flavour lets through, each rule tried in both.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::Flavor;
namespace bugcheck = kmlab::bugcheck;

namespace {
// Runs each test in the flavour it names and restores the process's flavour.
using FlavorTest = kmlab::test::FlavorRestoringNt;
using Checked = FlavorTest;
using Free = FlavorTest;
using Verifier = FlavorTest;  // Driver Verifier's rules (verifier_only)

void worker(PVOID context) {
    static_cast<std::atomic<int>*>(context)->fetch_add(1);
}
}  // namespace

// ---- IRQL changes the wrong way [kmt-KeIrql] ----

TEST_F(Checked, RaisingToALowerLevelBugChecks) {
    kmlab::set_flavor(Flavor::checked);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    EXPECT_BUG_CHECK(KeRaiseIrql(APC_LEVEL, &old), bugcheck::IRQL_NOT_GREATER_OR_EQUAL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    EXPECT_BUG_CHECK(KeLowerIrql(HIGH_LEVEL), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(PASSIVE_LEVEL);
}

TEST_F(Free, RaisingToALowerLevelAndLoweringToAHigherOneReturnNormally) {
    kmlab::set_flavor(Flavor::free);
    KIRQL old = HIGH_LEVEL;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    EXPECT_EQ(old, PASSIVE_LEVEL);
    KeRaiseIrql(APC_LEVEL, &old);  // lower: a free HAL just sets it
    EXPECT_EQ(old, DISPATCH_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
    KeLowerIrql(DISPATCH_LEVEL);  // higher
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    EXPECT_EQ(KfRaiseIrql(PASSIVE_LEVEL), DISPATCH_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

// ---- ExAcquireFastMutexUnsafe outside a critical region [kmt-ExFastMutex] ----

TEST_F(Checked, UnsafeAcquireOutsideACriticalRegionBugChecks) {
    kmlab::set_flavor(Flavor::checked);
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    auto bc = EXPECT_BUG_CHECK(ExAcquireFastMutexUnsafe(&m),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_UNSAFE_ACQUIRE_IRQL);
    EXPECT_EQ(m.Count, FM_LOCK_BIT) << "nothing acquired";
}

TEST_F(Free, UnsafeAcquireAndReleaseOutsideACriticalRegionReturnNormally) {
    kmlab::set_flavor(Flavor::free);
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    ExAcquireFastMutexUnsafe(&m);
    EXPECT_EQ(m.Owner, KeGetCurrentThread());
    EXPECT_EQ(m.Count, 0) << "held";
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL) << "Unsafe leaves the IRQL alone";
    ExReleaseFastMutexUnsafe(&m);
    EXPECT_EQ(m.Owner, nullptr);
    EXPECT_EQ(m.Count, FM_LOCK_BIT);
}

// A free build acquires Unsafe at DISPATCH_LEVEL too [kmt-ExFastMutex].
TEST_F(Free, UncontendedUnsafeAcquireAtDispatchLevelReturnsNormally) {
    kmlab::set_flavor(Flavor::free);
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ExAcquireFastMutexUnsafe(&m);
    EXPECT_EQ(m.Owner, KeGetCurrentThread());
    ExReleaseFastMutexUnsafe(&m);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(old);
    EXPECT_EQ(m.Count, FM_LOCK_BIT);
}

// Contended, the same acquire would have to block at DISPATCH_LEVEL, which
// no flavour lets a wait do: it bug checks as KeWaitForSingleObject there
// (0xC4/0x3B), before it changes the mutex, instead of blocking unseen.
namespace {
// The mutex is held by the caller. A contender at DISPATCH_LEVEL calls
// `acquire` (and `release` if it got the mutex). Returns 1 for the expected
// bug check, 2 if it acquired, 3 for another bug check, 0 if it blocked;
// `count` must be back to `free_count` with no contention counted.
template <class Acquire, class Release, class Holder>
int contend_at_dispatch_level(Acquire acquire, Release release, Holder release_held,
                              const LONG& count, LONG free_count, const ULONG& contention) {
    std::atomic<int> outcome{0};
    std::thread contender([&] {
        KIRQL old;
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        try {
            acquire();
            outcome = 2;
            release();
        } catch (const kmlab::BugCheck& bc) {
            outcome = bc.code() == bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION &&
                              bc.parameter(1) == bugcheck::VERIFIER_WAIT_AT_DISPATCH &&
                              bc.parameter(2) == DISPATCH_LEVEL
                          ? 1
                          : 3;
        }
        EXPECT_EQ(KeGetCurrentThread()->CombinedApcDisable, 0u) << "a region was left entered";
        KeLowerIrql(old);
    });
    const bool reported =
        kmlab::test::eventually([&] { return outcome.load() != 0; }, std::chrono::seconds(2));
    release_held();  // lets a contender that blocked anyway go
    contender.join();
    EXPECT_TRUE(reported) << "the contended acquire blocked at DISPATCH_LEVEL";
    EXPECT_EQ(count, free_count) << "the refused acquire left the mutex as it was";
    EXPECT_EQ(contention, 0u);
    return reported ? outcome.load() : 0;
}
}  // namespace

TEST_F(Free, ContendedUnsafeAcquireAtDispatchLevelBugChecksInsteadOfBlocking) {
    kmlab::set_flavor(Flavor::free);
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    ExAcquireFastMutex(&m);
    EXPECT_EQ(contend_at_dispatch_level(
                  [&] { ExAcquireFastMutexUnsafe(&m); }, [&] { ExReleaseFastMutexUnsafe(&m); },
                  [&] { ExReleaseFastMutex(&m); }, m.Count, FM_LOCK_BIT, m.Contention),
              1);
}

TEST_F(Checked, UnsafeAcquireAtDispatchLevelBugChecks) {
    kmlab::set_flavor(Flavor::checked);
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    auto bc = EXPECT_BUG_CHECK(ExAcquireFastMutexUnsafe(&m),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
    KeLowerIrql(old);
}

// ---- Routines Windows accepts above their documented IRQL ----

// ---- The safe fast and guarded mutex routines above APC_LEVEL ----
// Their IRQL checks are ASSERTs [ros-exh][ros-gmutex]: kmtest's free-build
// runs acquire, try and release at DISPATCH_LEVEL and HIGH_LEVEL. A fast mutex
// "raises" to APC_LEVEL, which from above lowers (a free HAL does not check),
// keeps the IRQL it found in OldIrql and restores it on release
// [kmt-ExFastMutex]; a guarded mutex leaves the IRQL alone [kmt-KeGuardedMutex].
TEST_F(Checked, SafeFastAndGuardedMutexRoutinesAboveApcLevelBugCheck) {
    FAST_MUTEX f;
    KGUARDED_MUTEX g;
    ExInitializeFastMutex(&f);
    KeInitializeGuardedMutex(&g);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    EXPECT_BUG_CHECK(ExAcquireFastMutex(&f), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_BUG_CHECK(ExTryToAcquireFastMutex(&f), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_BUG_CHECK(KeAcquireGuardedMutex(&g), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_BUG_CHECK(KeTryToAcquireGuardedMutex(&g), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(old);
    EXPECT_EQ(f.Count, FM_LOCK_BIT);
    EXPECT_EQ(g.Count, GM_LOCK_BIT);
}

TEST_F(Free, SafeFastMutexRoutinesAboveApcLevelWorkAsKmtestsFreeBuildExpects) {
    kmlab::set_flavor(Flavor::free);
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    PKTHREAD self = KeGetCurrentThread();
    for (KIRQL irql : {DISPATCH_LEVEL, HIGH_LEVEL}) {
        KIRQL old;
        KeRaiseIrql(irql, &old);
        ExAcquireFastMutex(&m);
        EXPECT_EQ(m.Owner, self);
        EXPECT_EQ(m.OldIrql, irql);
        EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
        EXPECT_FALSE(ExTryToAcquireFastMutex(&m));
        EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
        ExReleaseFastMutex(&m);
        EXPECT_EQ(KeGetCurrentIrql(), irql);
        EXPECT_EQ(m.Count, FM_LOCK_BIT);
        EXPECT_TRUE(ExTryToAcquireFastMutex(&m));
        EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
        ExReleaseFastMutex(&m);
        EXPECT_EQ(KeGetCurrentIrql(), irql);
        KeLowerIrql(old);
    }
    // Released at the wrong IRQL (0xC4/0x34 when checked): goes on.
    ExAcquireFastMutex(&m);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ExReleaseFastMutex(&m);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL) << "OldIrql is restored";
    EXPECT_EQ(m.Count, FM_LOCK_BIT);
}

TEST_F(Free, SafeGuardedMutexRoutinesAboveApcLevelWorkAsKmtestsFreeBuildExpects) {
    kmlab::set_flavor(Flavor::free);
    KGUARDED_MUTEX m;
    KeInitializeGuardedMutex(&m);
    PKTHREAD self = KeGetCurrentThread();
    for (KIRQL irql : {DISPATCH_LEVEL, HIGH_LEVEL}) {
        KIRQL old;
        KeRaiseIrql(irql, &old);
        KeAcquireGuardedMutex(&m);
        EXPECT_EQ(m.Owner, self);
        EXPECT_EQ(self->SpecialApcDisable, -1);
        EXPECT_EQ(KeGetCurrentIrql(), irql);
        EXPECT_FALSE(KeTryToAcquireGuardedMutex(&m));
        KeReleaseGuardedMutex(&m);
        EXPECT_EQ(self->SpecialApcDisable, 0);
        EXPECT_TRUE(KeTryToAcquireGuardedMutex(&m));
        KeReleaseGuardedMutex(&m);
        EXPECT_EQ(m.Count, GM_LOCK_BIT);
        EXPECT_EQ(KeGetCurrentIrql(), irql);
        KeLowerIrql(old);
    }
}

// Contended at DISPATCH_LEVEL a guarded acquire would block there: bug
// checked as a wait there, before the mutex or the region changes.
TEST_F(Free, ContendedGuardedAcquireAtDispatchLevelBugChecksInsteadOfBlocking) {
    kmlab::set_flavor(Flavor::free);
    KGUARDED_MUTEX m;
    KeInitializeGuardedMutex(&m);
    KeAcquireGuardedMutex(&m);
    EXPECT_EQ(contend_at_dispatch_level(
                  [&] { KeAcquireGuardedMutex(&m); }, [&] { KeReleaseGuardedMutex(&m); },
                  [&] { KeReleaseGuardedMutex(&m); }, m.Count, GM_LOCK_BIT, m.Contention),
              1);
}

// A release above DISPATCH_LEVEL that has a waiter to wake: a free build
// wakes it (the kernel's internal set has only ASSERTs), so must the free
// flavour, without a report halfway through that leaves the waiter stranded.
namespace {
// `acquire` enters the region the Unsafe routines need and acquires;
// `release` releases only; `leave` leaves the region (at PASSIVE_LEVEL).
template <class Acquire, class Release, class Leave>
void release_at_high_level_wakes_the_waiter(Acquire acquire, Release release, Leave leave,
                                            LONG free_count, const LONG& count) {
    kmlab::set_flavor(Flavor::free);
    acquire();
    std::atomic<bool> acquired{false};
    std::thread waiter([&] {
        acquire();
        acquired = true;
        release();
        leave();
    });
    ASSERT_TRUE(kmlab::test::eventually([&] {
        return (std::atomic_ref<const LONG>(count).load() & ~FM_LOCK_BIT) != 0;
    })) << "the waiter never queued";
    KIRQL old;
    KeRaiseIrql(HIGH_LEVEL, &old);
    try {
        release();
    } catch (const kmlab::BugCheck& bc) {
        ADD_FAILURE() << "the release reported " << bc.what();
    }
    KeLowerIrql(old);
    leave();
    const bool woken =
        kmlab::test::eventually([&] { return acquired.load(); }, std::chrono::seconds(2));
    EXPECT_TRUE(woken) << "the waiter was never woken";
    if (!woken) {
        // Stranded for good: the test has failed; do not hang on the join.
        waiter.detach();
        return;
    }
    waiter.join();
    EXPECT_EQ(count, free_count);
}
}  // namespace

TEST_F(Free, UnsafeReleasesAtHighLevelWakeTheirWaiter) {
    FAST_MUTEX f;
    ExInitializeFastMutex(&f);
    release_at_high_level_wakes_the_waiter(
        [&] {
            KeEnterCriticalRegion();
            ExAcquireFastMutexUnsafe(&f);
        },
        [&] { ExReleaseFastMutexUnsafe(&f); }, [] { KeLeaveCriticalRegion(); }, FM_LOCK_BIT,
        f.Count);
    KGUARDED_MUTEX g;
    KeInitializeGuardedMutex(&g);
    release_at_high_level_wakes_the_waiter(
        [&] {
            KeEnterGuardedRegion();
            KeAcquireGuardedMutexUnsafe(&g);
        },
        [&] { KeReleaseGuardedMutexUnsafe(&g); }, [] { KeLeaveGuardedRegion(); }, GM_LOCK_BIT,
        g.Count);
}

// The same through the safe routines, which the free flavour also runs above
// APC_LEVEL.
TEST_F(Free, SafeReleasesAtHighLevelWakeTheirWaiter) {
    FAST_MUTEX f;
    ExInitializeFastMutex(&f);
    // ExReleaseFastMutex restores OldIrql (PASSIVE_LEVEL) from HIGH_LEVEL; the
    // KeLowerIrql back to the APC_LEVEL the raise saved then "lowers" to a
    // higher level, which the free flavour allows: back to PASSIVE_LEVEL.
    release_at_high_level_wakes_the_waiter(
        [&] { ExAcquireFastMutex(&f); }, [&] { ExReleaseFastMutex(&f); },
        [] { KeLowerIrql(PASSIVE_LEVEL); }, FM_LOCK_BIT, f.Count);
    KGUARDED_MUTEX g;
    KeInitializeGuardedMutex(&g);
    release_at_high_level_wakes_the_waiter([&] { KeAcquireGuardedMutex(&g); },
                                           [&] { KeReleaseGuardedMutex(&g); }, [] {}, GM_LOCK_BIT,
                                           g.Count);
}

// ---- Critical and guarded regions ----
// Documented for IRQL <= APC_LEVEL; the kernel has at most an ASSERT
// [ros-apc], and kmtest's free-build runs enter and leave them at
// DISPATCH_LEVEL and HIGH_LEVEL, through the fast-mutex shortcuts too
// [kmt-ExFastMutex][kmt-KeGuardedMutex]. Driver Verifier reports a critical
// region's (0xC4/0x11A in its table [bc:0xC4]; kmlab keeps 0xA): the verifier
// flavour, which has the checked build's guarded-region ASSERT too.
TEST_F(Verifier, RegionsAboveApcLevelBugCheck) {
    kmlab::set_flavor(Flavor::verifier);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    EXPECT_BUG_CHECK(KeEnterCriticalRegion(), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_BUG_CHECK(KeEnterGuardedRegion(), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
}

TEST_F(Free, RegionsAndTheShortcutsWorkAboveApcLevel) {
    kmlab::set_flavor(Flavor::free);
    PKTHREAD self = KeGetCurrentThread();
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    for (KIRQL irql : {DISPATCH_LEVEL, HIGH_LEVEL}) {
        KIRQL old;
        KeRaiseIrql(irql, &old);
        KeEnterCriticalRegion();
        KeEnterGuardedRegion();
        EXPECT_EQ(self->KernelApcDisable, -1);
        EXPECT_EQ(self->SpecialApcDisable, -1);
        KeLeaveGuardedRegion();
        KeLeaveCriticalRegion();
        ExEnterCriticalRegionAndAcquireFastMutexUnsafe(&m);
        EXPECT_EQ(self->KernelApcDisable, -1);
        EXPECT_EQ(m.Owner, self);
        ExReleaseFastMutexUnsafeAndLeaveCriticalRegion(&m);
        EXPECT_EQ(self->CombinedApcDisable, 0u);
        EXPECT_EQ(KeGetCurrentIrql(), irql);
        KeLowerIrql(old);
    }
}

// Leaving a region never entered: the checked flavour reports it at once
// (APC_INDEX_MISMATCH); Windows reports it only at a system call's return
// or the thread's exit, and kmtest's free-build run sees the count go to 1
// [kmt-KeApc] (a guarded mutex acquired Unsafe and released safe likewise
// [kmt-KeGuardedMutex]).
TEST_F(Free, LeavingARegionNeverEnteredCountsUpAsKmtestsFreeBuildExpects) {
    kmlab::set_flavor(Flavor::free);
    PKTHREAD self = KeGetCurrentThread();
    KeLeaveCriticalRegion();
    EXPECT_EQ(self->KernelApcDisable, 1);
    KeEnterCriticalRegion();
    EXPECT_EQ(self->KernelApcDisable, 0);
    KeLeaveGuardedRegion();
    EXPECT_EQ(self->SpecialApcDisable, 1);
    KeEnterGuardedRegion();
    EXPECT_EQ(self->SpecialApcDisable, 0);
    KGUARDED_MUTEX g;
    KeInitializeGuardedMutex(&g);
    KeAcquireGuardedMutexUnsafe(&g);
    KeReleaseGuardedMutex(&g);
    EXPECT_EQ(self->SpecialApcDisable, 1);
    KeEnterGuardedRegion();
    EXPECT_EQ(g.Count, GM_LOCK_BIT);
}

TEST_F(Checked, LeavingARegionNeverEnteredBugChecks) {
    EXPECT_BUG_CHECK(KeLeaveCriticalRegion(), bugcheck::APC_INDEX_MISMATCH);
    EXPECT_BUG_CHECK(KeLeaveGuardedRegion(), bugcheck::APC_INDEX_MISMATCH);
    EXPECT_EQ(KeGetCurrentThread()->CombinedApcDisable, 0u) << "nothing changed";
}

// The shortcut leaves the region it entered when its acquire bug checks.
TEST_F(Checked, TheShortcutLeavesItsRegionWhenTheAcquireBugChecks) {
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    ExEnterCriticalRegionAndAcquireFastMutexUnsafe(&m);
    EXPECT_BUG_CHECK(ExEnterCriticalRegionAndAcquireFastMutexUnsafe(&m),
                     bugcheck::MUTEX_ALREADY_OWNED);
    EXPECT_EQ(KeGetCurrentThread()->KernelApcDisable, -1) << "only the first region is entered";
    ExReleaseFastMutexUnsafeAndLeaveCriticalRegion(&m);
}

// Documented for IRQL <= APC_LEVEL [ddi:keinitializeguardedmutex]; a checked
// build initializes at DISPATCH_LEVEL too [kmt-KeGuardedMutex]: only the
// verifier flavour reports it.
TEST_F(Verifier, KeInitializeGuardedMutexAboveApcLevelBugChecks) {
    kmlab::set_flavor(Flavor::verifier);
    KGUARDED_MUTEX m;
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    EXPECT_BUG_CHECK(KeInitializeGuardedMutex(&m), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
}

TEST_F(Free, KeInitializeGuardedMutexAboveApcLevelInitializes) {
    kmlab::set_flavor(Flavor::free);
    KGUARDED_MUTEX m;
    std::memset(&m, 0x55, sizeof m);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeInitializeGuardedMutex(&m);
    KeLowerIrql(old);
    EXPECT_EQ(m.Count, GM_LOCK_BIT);
    EXPECT_EQ(m.Owner, nullptr);
    KeAcquireGuardedMutex(&m);
    KeReleaseGuardedMutex(&m);
}

TEST_F(Checked, KeInitializeGuardedMutexAboveApcLevelReturnsNormally) {
    kmlab::set_flavor(Flavor::checked);
    KGUARDED_MUTEX m;
    std::memset(&m, 0x55, sizeof m);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeInitializeGuardedMutex(&m);
    KeLowerIrql(old);
    EXPECT_EQ(m.Count, GM_LOCK_BIT);
    EXPECT_EQ(m.Owner, nullptr);
}

// A checked build enters a critical region at any IRQL (kmtest does at
// HIGH_LEVEL [kmt-KeApc]); a guarded region it ASSERTs [ros-kex].
TEST_F(Checked, CriticalRegionsAboveApcLevelReturnNormallyGuardedOnesBugCheck) {
    kmlab::set_flavor(Flavor::checked);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeEnterCriticalRegion();
    KeLeaveCriticalRegion();
    EXPECT_BUG_CHECK(KeEnterGuardedRegion(), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
    EXPECT_EQ(KeGetCurrentThread()->CombinedApcDisable, 0u);
}

// Documented for PASSIVE_LEVEL [ddi:pscreatesystemthread]; Windows accepts
// APC_LEVEL, and a checked build too: only the verifier flavour reports it.
TEST_F(Verifier, SystemThreadRoutinesAtApcLevelBugCheck) {
    kmlab::set_flavor(Flavor::verifier);
    std::atomic<int> ran{0};
    HANDLE h = nullptr;
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    EXPECT_BUG_CHECK(
        PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, nullptr, worker, &ran),
        bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_BUG_CHECK(ZwClose(h), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
    EXPECT_EQ(h, nullptr);
}

TEST_F(Free, SystemThreadRoutinesAtApcLevelSucceed) {
    kmlab::set_flavor(Flavor::free);
    std::atomic<int> ran{0};
    HANDLE h = nullptr;
    PVOID thread = nullptr;
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    ASSERT_EQ(PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, nullptr, worker, &ran),
              STATUS_SUCCESS);
    EXPECT_EQ(ObReferenceObjectByHandle(h, THREAD_ALL_ACCESS, *PsThreadType, KernelMode, &thread,
                                        nullptr),
              STATUS_SUCCESS);
    EXPECT_EQ(ZwClose(h), STATUS_SUCCESS);
    KeLowerIrql(old);
    ASSERT_NE(thread, nullptr);
    EXPECT_EQ(KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    ObDereferenceObject(thread);
    EXPECT_EQ(ran.load(), 1);
}

// As on a checked build: PsCreateSystemThread at APC_LEVEL returns normally.
TEST_F(Checked, SystemThreadRoutinesAtApcLevelSucceed) {
    kmlab::set_flavor(Flavor::checked);
    std::atomic<int> ran{0};
    HANDLE h = nullptr;
    PVOID thread = nullptr;
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    ASSERT_EQ(PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, nullptr, worker, &ran),
              STATUS_SUCCESS);
    EXPECT_EQ(ObReferenceObjectByHandle(h, THREAD_ALL_ACCESS, *PsThreadType, KernelMode, &thread,
                                        nullptr),
              STATUS_SUCCESS);
    EXPECT_EQ(ZwClose(h), STATUS_SUCCESS);
    KeLowerIrql(old);
    ASSERT_NE(thread, nullptr);
    EXPECT_EQ(KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    ObDereferenceObject(thread);
    EXPECT_EQ(ran.load(), 1);
}

TEST_F(Free, SystemThreadRoutinesAtDispatchLevelStillBugCheck) {
    kmlab::set_flavor(Flavor::free);
    std::atomic<int> ran{0};
    HANDLE h = nullptr;
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    EXPECT_BUG_CHECK(
        PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, nullptr, worker, &ran),
        bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
}

// ---- Rules every flavour enforces ----

TEST_F(Free, ReleasingAFastMutexNotOwnedStillBugChecks) {
    kmlab::set_flavor(Flavor::free);
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    KeEnterCriticalRegion();
    EXPECT_BUG_CHECK(ExReleaseFastMutexUnsafe(&m), bugcheck::THREAD_NOT_MUTEX_OWNER);
    KeLeaveCriticalRegion();
}

// KMLAB_FLAVOR sets the flavour a test binary starts in (CTest runs this
// test once more with KMLAB_FLAVOR=free).
TEST(FlavorFromEnvironment, MatchesKmlabFlavor) {
    const char* v = std::getenv("KMLAB_FLAVOR");
    const Flavor expected =
        v != nullptr && std::strcmp(v, "free") == 0 ? Flavor::free : Flavor::checked;
    EXPECT_EQ(kmlab::flavor(), expected);
}
