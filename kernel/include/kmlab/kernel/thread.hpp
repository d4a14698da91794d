// Per-thread kernel state: every OS thread that calls into the emulator (a
// std::thread, a oneTBB worker, a PsCreateSystemThread thread) gets its
// emulated KTHREAD on first use. Also the IRQL routines, critical and guarded
// regions, and the APC-state queries.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>

#include <kmlab/kernel/bugcheck.hpp>
#include <kmlab/kernel/objects.hpp>

namespace kmlab::kernel {

namespace detail {
using UserApcRoutine = void (*)(void* NormalContext, void* SystemArgument1, void* SystemArgument2);
struct UserApc {
    UserApcRoutine routine;
    void* context;
    void* argument1;
    void* argument2;
};

// Emulator-only thread state, behind KTHREAD::Extra so that KTHREAD keeps a
// standard layout.
struct ThreadExtra {
    // Parking word of a blocked wait: 0 while waiting, 1 once the dispatcher
    // has unwaited the thread. Stored with release by the waker (which filled in
    // WaitStatus first) and loaded with acquire by the waiter.
    std::atomic<std::uint32_t> wake{0};
    // Object references: the running thread holds one, each handle one, each
    // ObReferenceObject one. The KTHREAD is freed when the last goes.
    std::atomic<int> references{1};
    std::deque<UserApc> user_apcs;  // guarded by the dispatcher lock
    bool waiting = false;           // guarded by the dispatcher lock
    // The next thread on the list of wakes its waker publishes after
    // unlocking (owned by that waker between unwait and publication).
    nt::PKTHREAD next_pending_wake = nullptr;
    // KernelApcDisable at thread start: system threads start inside a critical
    // region [ddi:pscreatesystemthread], so they must leave with -1, not 0.
    nt::SHORT base_kernel_apc_disable = 0;
    std::uint64_t id = 0;
};
}  // namespace detail

namespace detail {
// The calling thread's KTHREAD, or nullptr before its first call into the
// emulator. Inline so that a lock's fast path reads it with one TLS load.
inline thread_local nt::PKTHREAD tls_current_thread = nullptr;
nt::PKTHREAD adopt_current_thread();
}  // namespace detail

// The calling thread's KTHREAD, created on first use.
inline nt::PKTHREAD current_thread() {
    nt::PKTHREAD t = detail::tls_current_thread;
    if (t == nullptr) [[unlikely]]
        t = detail::adopt_current_thread();
    return t;
}
// A new, unstarted thread object with one reference (for system threads).
nt::PKTHREAD create_thread_object(bool system_thread);
// Makes `thread` the calling OS thread's KTHREAD (system-thread start-up).
void attach_current_thread(nt::PKTHREAD thread);
// Runs the thread-exit checks and signals the thread object
// (dispatcher::rundown_thread, called directly), then drops the running
// thread's reference and detaches it from the OS thread.
void exit_current_thread();
void reference_thread(nt::PKTHREAD thread) noexcept;
void dereference_thread(nt::PKTHREAD thread) noexcept;

// A KMUTEX-semantics lock that is not a dispatcher mutant (the generic
// RawKMutex, over Futex or Spin) derives from this link. Its owner links it
// into KTHREAD::OwnedKMutexListHead on the first acquisition and unlinks it on
// the last release; only the owner thread touches its own list, so no lock is
// needed. Thread rundown reports the first one still linked, as the kernel
// reports the first KMUTEX on the thread's mutant list [ros-thrd], and
// abandons each one through `abandon` (on the exiting owner's thread), so
// that when the bug-check handler returns no waiter is stranded and no stale
// owner is left to match a later KTHREAD at the same address.
struct OwnedKMutexLink {
    nt::LIST_ENTRY entry;
    void (*abandon)(OwnedKMutexLink* self, nt::PKTHREAD owner) noexcept;
};
inline void link_owned_kmutex(nt::PKTHREAD t, OwnedKMutexLink* m) noexcept {
    nt::InsertTailList(&t->OwnedKMutexListHead, &m->entry);
}
inline void unlink_owned_kmutex(OwnedKMutexLink* m) noexcept {
    nt::RemoveEntryList(&m->entry);
}

// Work done by the dispatcher layer before a raise or bug check unwinds a
// thread that holds the dispatcher lock for its next wait (Wait = TRUE): the
// lock is given back and the IRQL restored, or every other thread would
// deadlock. raise_status() and bug_check() call before_unwind() first.
void before_unwind() noexcept;

// Bug checks IRQL_NOT_LESS_OR_EQUAL (parameters: object, IRQL, 0, 0) when the
// caller's IRQL is above `max` (kernel/rules.hpp, check_irql_at_most). NT
// routines whose ceiling is no rule of their own call this.
void require_irql_at_most(nt::KIRQL max, const void* object = nullptr);
// The same for a routine whose documented ceiling is below the IRQL Windows
// accepts (rules.hpp check_irql_documented: the free flavour accepts up to
// `windows`).
void require_irql_documented(nt::KIRQL documented, nt::KIRQL windows, const void* object = nullptr);

// KeEnterGuardedRegion / KeLeaveGuardedRegion without their IRQL check, for
// the guarded mutex routines, whose IRQL rule is their own (rules.hpp,
// check_guarded_mutex_irql). Leaving a region never entered bug checks
// APC_INDEX_MISMATCH as KeLeaveGuardedRegion does (in the checked flavour:
// rules.hpp check_region_leave).
namespace detail {
[[gnu::cold]] void guarded_region_mismatch(nt::PKTHREAD t);
}
inline void enter_guarded_region(nt::PKTHREAD t) noexcept {
    --t->SpecialApcDisable;
}
inline void leave_guarded_region(nt::PKTHREAD t) {
    if (t->SpecialApcDisable >= 0) [[unlikely]]
        detail::guarded_region_mismatch(t);
    ++t->SpecialApcDisable;
}

// Internal IRQL change without the ordering checks (used by routines that
// raise and restore on the caller's behalf, such as ExAcquireFastMutex).
inline void set_irql(nt::PKTHREAD t, nt::KIRQL irql) noexcept {
    t->Irql = irql;
}

}  // namespace kmlab::kernel

namespace kmlab::nt {

PKTHREAD KeGetCurrentThread();
PETHREAD PsGetCurrentThread();
BOOLEAN PsIsSystemThread(PETHREAD Thread);

KIRQL KeGetCurrentIrql();
// Raising to a lower IRQL bug checks IRQL_NOT_GREATER_OR_EQUAL (0x9) and
// lowering to a higher one IRQL_NOT_LESS_OR_EQUAL (0xA), parameters
// (current, new, 0, 9) as the checked HAL reports them [ros-apic]. Free builds
// do not check [kmt-KeIrql]: in kmlab's free flavour (kmlab::set_flavor) both
// succeed and set the IRQL asked for.
KIRQL KfRaiseIrql(KIRQL NewIrql);
void KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql);
void KfLowerIrql(KIRQL NewIrql);
void KeLowerIrql(KIRQL NewIrql);
KIRQL KeRaiseIrqlToDpcLevel();
KIRQL KeRaiseIrqlToSynchLevel();

// Regions nest; APCs come back when the outermost is left. Leaving a region
// that was never entered bug checks APC_INDEX_MISMATCH (0x1) with parameter 3
// the CombinedApcDisable the leave would have produced [bc:0x1], in the
// checked flavour; in the free one the count goes positive and thread exit
// reports it (0x20). Documented for IRQL <= APC_LEVEL: the checked flavour
// checks it, the free one does not (rules.hpp, thread.cpp).
void KeEnterCriticalRegion();
void KeLeaveCriticalRegion();
void KeEnterGuardedRegion();
void KeLeaveGuardedRegion();
BOOLEAN KeAreApcsDisabled();     // inside a critical or guarded region [ros-apc]
BOOLEAN KeAreAllApcsDisabled();  // inside a guarded region or at IRQL >= APC_LEVEL

}  // namespace kmlab::nt
