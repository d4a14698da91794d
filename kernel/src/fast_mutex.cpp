// FAST_MUTEX and KGUARDED_MUTEX over the lock-bit algorithm of
// kmlab/kernel/lock_bit.hpp, with the mutex's KEVENT / KGATE as the gate. The two
// differ only in what surrounds the algorithm: a fast mutex raises the IRQL
// to APC_LEVEL and saves OldIrql, a guarded mutex enters a guarded region.
//
// ExAcquireFastMutex / ExReleaseFastMutex and KeAcquireGuardedMutex /
// KeReleaseGuardedMutex are inline (kmlab/kernel/fast_mutex_inline.hpp, issue
// 20): here are their whole routines (gate_lock::*_out_of_line), which the
// inline tests fail into, and their contended continuations. Measured
// (callgrind --toggle-collect='*kmlab_measure_pairs*' on
// benchmarks/instructions, (count at 2000 pairs - count at 1000) / 1000, the
// measuring loop's 3 instructions included; g++ 12 -O2 Release, 2026-12-07,
// the same tree before and after): ExAcquireFastMutex + ExReleaseFastMutex
// 53 -> 32, KeAcquireGuardedMutex + KeReleaseGuardedMutex 50 -> 33 (the
// out-of-line pairs paid two calls, two frames and the stack frame their
// cold paths reserved; inline, 14 instructions acquire and 15 release, of
// which the TLS load and its null test are 3 per routine).
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <kmlab/kernel/dispatcher.hpp>
#include <kmlab/kernel/lock_bit.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/rules.hpp>
#include <kmlab/kernel/verifier.hpp>
#include "dispatcher_core.hpp"

namespace kmlab::dispatcher {

void ObjectGate::wait() {
    wait_internal(object);
}
void ObjectGate::signal() {
    signal_internal(object);
}

}  // namespace kmlab::dispatcher

namespace kmlab::nt {
using kernel::current_thread;

namespace {

using dispatcher::load_owner;
using kernel::enforce;

// The gate, and the platform that Count's compare-exchanges go through. In the
// explorer's copy (explore/src/fast_mutex_seam.cpp) the gate names
// kernel_seam::Platform, so inside explore::run() every Count operation is a
// scheduling point over model memory; production's gate names none (Native).
#ifdef KMLAB_DISPATCHER_SEAM
// Its wait and signal also tell the explorer's trace and deadlock report
// which mutex they serve (the KEVENT / KGATE inside it).
struct Gate : dispatcher::ObjectGate {
    using platform = explore::kernel_seam::Platform;
    void wait() {
        explore::kernel_seam::mutex_gate(object, true);
        ObjectGate::wait();
        explore::kernel_seam::mutex_gate(object, false);
    }
    void signal() {
        explore::kernel_seam::mutex_gate_signal(object);
        ObjectGate::signal();
    }
};
#else
using Gate = dispatcher::ObjectGate;
#endif
using CountPlatform = platform::platform_of<Gate>;

#ifdef KMLAB_DISPATCHER_SEAM
void unlock(LONG& count, PVOID gate) {
    Gate g{{gate}};
    if (explore::kernel_seam::fast_mutex_release_mutant()) [[unlikely]] {
        // The explorer's must-find mutant (kmlab/explore/dispatcher.hpp): the
        // release's compare-exchange as a load and a plain store, which loses
        // a waiter that registers in between.
        explore::kernel_seam::AtomicRef<LONG> c(count);
        const LONG old = c.load(std::memory_order_relaxed);
        const bool wake = old >= FM_LOCK_WAITER_INC && (old & FM_LOCK_WAITER_WOKEN) == 0;
        c.store(old + FM_LOCK_BIT + (wake ? FM_LOCK_WAITER_WOKEN - FM_LOCK_WAITER_INC : 0),
                std::memory_order_release);
        if (wake) g.signal();
        return;
    }
    lock_bit::release(count, g);
}
#else
void unlock(LONG& count, PVOID gate) {
    Gate g{{gate}};
    lock_bit::release(count, g);
}
#endif

// ---- Owner ----
// Owner is written after the Count acquire and cleared before the Count
// release, by the owner alone, with one exception: a mutex whose owner exited
// holding it is claimed by the thread that releases it on that owner's behalf
// (below). Through the Count's platform, so that the explorer interleaves it.
// Production: relaxed stores and loads, plain moves, as before. The
// explorer's copy stores with seq_cst, so an Owner store never waits in a
// TSO store buffer: the owner's own checks (check_not_recursive, check_owner:
// does Owner name me?) then read it natively, without a scheduling point of
// their own, and every other reader's load is a step. What that leaves out:
// another thread seeing an Owner store late, which only makes it see the
// older value (the thread not yet named, or still named): the claims below
// treat both as "not orphaned", as they must for a live owner.
constexpr std::memory_order kOwnerStore = std::is_same_v<CountPlatform, platform::Native>
                                              ? std::memory_order_relaxed
                                              : std::memory_order_seq_cst;
template <class M>
[[gnu::always_inline]] inline void own(PKTHREAD t, M* m) noexcept {
    typename CountPlatform::template atomic_ref<PKTHREAD>(m->Owner).store(t, kOwnerStore);
}
template <class M>
[[gnu::always_inline]] inline void disown(PKTHREAD, M* m) noexcept {
    typename CountPlatform::template atomic_ref<PKTHREAD>(m->Owner).store(nullptr, kOwnerStore);
}
// Owner as another thread reads it.
template <class M>
PKTHREAD shared_owner(M* m) {
    return typename CountPlatform::template atomic_ref<PKTHREAD>(m->Owner).load(
        std::memory_order_relaxed);
}

// ---- A mutex held by a thread that exits ----
// A FAST_MUTEX or KGUARDED_MUTEX still owned when its owner exits is
// reported by thread rundown as KERNEL_APC_PENDING_DURING_EXIT (0x20,
// dispatcher.cpp). When the handler returns, thread exit goes on, and the
// mutex must not strand its waiters behind a dead owner, as a KMUTEX held at
// exit is abandoned to the next acquirer. Decision, kmlab: Windows keeps no
// per-thread record of fast mutexes, and ReactOS's PspExitThread lowers the
// IRQL and leaves the mutex owned [ros-kill]: its waiters hang. The emulator
// lets a test whose handler returns go on, as it does for KMUTEX.
//
// No acquire or release pays for it: nothing records which mutexes a thread
// owns. Instead the exiting thread D (rundown, once the handler returned, and
// only when it exits at a raised IRQL or with APCs disabled, as every holder
// of one does) is recorded as exited and its KTHREAD is never freed
// (thread.cpp, retire_gate_lock_holder), so an Owner naming D keeps naming
// D; and every mutex whose Owner is D is released on D's behalf by whoever
// meets it first:
//  (b) the threads already waiting for it: D walks the live threads and
//      releases the mutex each one is acquiring (ThreadExtra::
//      gate_lock_wanted) if its Owner is D;
//  (c) the threads that come after: an acquirer on its contended path,
//      before it blocks, releases the mutex if its Owner is an exited thread
//      (a try-acquire that fails, likewise, then tries once more).
// A release on D's behalf first claims it: Owner compare-exchanged from D
// to null. Invariants:
//  I1 Owner names a thread only while that thread holds the Count's lock bit
//     (stored after its Count acquire, cleared before its Count release), or
//     after it exited holding it;
//  I2 an exited thread never writes a Count or an Owner again, and only it
//     ever wrote its name there: so once one claim of a mutex from D
//     succeeds, Owner never names D again, and D's hold of that mutex is
//     released exactly once (mutant 1 below drops the compare-exchange,
//     and the explorer finds the double release);
//  I3 a reader that sees Owner null, or naming a live thread, does nothing:
//     that is a live thread's hold, or one that is starting or ending (the
//     windows between Count and Owner), and it is right to leave it.
// The race between (b) and (c): an acquirer W publishes gate_lock_wanted
// (seq_cst) and then reads g_exited_holders (seq_cst); D increments that
// count (seq_cst) and then reads every gate_lock_wanted. In the single
// order of those four, either W reads D's increment and does (c) itself
// (the recording in thread.cpp, made before the increment, is visible then),
// or D reads W's gate_lock_wanted and does (b): no acquirer is missed. A
// waiter that D releases its mutex for may not have blocked yet; the lock-bit
// release then leaves the lock free for it, or wakes it, as for any release.
// The race between (b) and the mutex's end: D reads a mutex address from a
// thread that may be leaving its acquire, after which the mutex may be freed.
// So D pins the word (adds 1 to its low bits with a compare-exchange from
// the address it read) before it reads the mutex, and unpins it after; W
// clears the word only by a compare-exchange from the bare address, waiting
// out the pins: while pinned, W is still inside its acquire of the mutex,
// which therefore exists (mutant 2 reads it unpinned, and the explorer finds
// the access to a destroyed mutex). A mutex is 8-byte aligned, so 7 exiting
// threads may pin one word at once (an eighth waits for one to finish).
// Decision, kmlab: a thread that exits at a raised IRQL or with APCs
// disabled without holding a gate lock is recorded and kept as well (a
// KTHREAD's memory, in a program whose 0x20 handler returned), since nothing
// tells the two apart.
constexpr std::uintptr_t kPins = 7;
// Threads that ever exited holding a gate lock (never decreases): while 0,
// as in every program whose handler never returns from a 0x20, the
// contended path does nothing more than publish what it acquires. Native in
// both copies: the explorer's never reads it (holders_have_exited).
LONG g_exited_holders = 0;

// The explorer's mutants of this protocol (model_defects_test.cpp sets one
// through dispatcher::testing::set_gate_lock_mutant; the explorer's copy
// alone has them, production's `mutated` is constant false):
//  1 the claim is a load and a plain store, not the compare-exchange, so two
//    threads may both release the dead owner's hold;
//  2 the rundown reads a waiter's mutex without pinning the word;
//  3 the rundown releases nothing (no (b));
//  4 no acquirer releases for an exited owner (no (c)).
#ifdef KMLAB_DISPATCHER_SEAM
int g_gate_lock_mutant = 0;
bool mutated(int mutant) noexcept {
    return g_gate_lock_mutant == mutant;
}
#else
constexpr bool mutated(int) noexcept {
    return false;
}
#endif
template <class M>
bool claim(M* m, PKTHREAD dead) {
    typename CountPlatform::template atomic_ref<PKTHREAD> owner(m->Owner);
    if (mutated(1)) {
        if (owner.load(std::memory_order_relaxed) != dead) return false;
        owner.store(nullptr, std::memory_order_relaxed);
        return true;
    }
    // Relaxed: D's writes are already visible (the claimer learnt that D
    // exited through g_threads_lock or through g_exited_holders), and the
    // release on D's behalf that follows orders the hold's end for the next
    // owner as D's own release would.
    return owner.compare_exchange_strong(dead, nullptr, std::memory_order_relaxed,
                                         std::memory_order_relaxed);
}

template <class M>
PVOID gate_of(M* m) noexcept {
    if constexpr (std::is_same_v<M, FAST_MUTEX>) {
        return &m->Event;
    } else {
        return &m->Gate;
    }
}

// (c), and (b) for one mutex: releases `m` on behalf of `dead` if its Owner
// names that exited thread (`dead` null: whichever exited thread it names).
template <class M>
bool release_for_exited_owner(M* m, PKTHREAD dead) {
    const PKTHREAD o = shared_owner(m);
    if (o == nullptr ||
        (dead != nullptr ? o != dead : !kernel::detail::exited_holding_gate_locks(o)))
        return false;
    if (!claim(m, o)) return false;
    unlock(m->Count, gate_of(m));
    return true;
}

// The gate of (c). In the explorer's copy it is always open: g_exited_holders
// outlives a run, so a gate read from it would make a run depend on the runs
// before it, and a schedule would not replay alone; every contended acquire
// there does (c), and the gate's pairing with the rundown's increment is
// argued above rather than explored.
[[gnu::always_inline]] inline bool holders_have_exited() {
#ifdef KMLAB_DISPATCHER_SEAM
    return !mutated(4);
#else
    return std::atomic_ref<LONG>(g_exited_holders).load(std::memory_order_seq_cst) != 0;
#endif
}

// The contended acquire: publishes the mutex in gate_lock_wanted for (b),
// does (c), then the lock-bit slow path; clears the word after, waiting out
// any exiting thread that pinned it.
template <class M>
[[gnu::cold, gnu::noinline]] void lock_contended(PKTHREAD t, M* m) {
    using P = CountPlatform;
    const auto self = reinterpret_cast<std::uintptr_t>(m);
    typename P::template atomic_ref<std::uintptr_t> wanted(t->Extra->gate_lock_wanted);
    wanted.store(self, std::memory_order_seq_cst);
    struct Clear {
        decltype(wanted)& w;
        std::uintptr_t self;
        ~Clear() {
            for (std::uintptr_t expected = self; !w.compare_exchange_strong(
                     expected, 0, std::memory_order_seq_cst, std::memory_order_relaxed);
                 expected = self)
                P::spin_until([&] { return w.load(std::memory_order_relaxed) == self; },
                              Deadline::never());
        }
    } clear{wanted, self};
    if (holders_have_exited()) [[unlikely]]
        release_for_exited_owner(m, nullptr);
    Gate g{{gate_of(m)}};
    lock_bit::acquire_slow(m->Count, m->Contention, g);
}

// (c) for a try-acquire that failed: true if it released the mutex on an
// exited owner's behalf (the caller tries once more).
template <class M>
[[gnu::cold, gnu::noinline]] bool released_for_exited_owner(M* m) {
    return holders_have_exited() && release_for_exited_owner(m, nullptr);
}

// Two acquires on purpose: `lock` for the safe routines at or below
// APC_LEVEL, whose fast path is the lock bit alone, and `lock_unsafe`, which
// checks the IRQL before blocking. Folding the check into one (with the
// guarded acquire's region left on a throw) measured ExAcquireFastMutex 53 ->
// 54 and KeAcquireGuardedMutex 51 -> 54 instructions a pair.
template <class M>
[[gnu::always_inline]] inline void lock(PKTHREAD t, M* m) {
    if (!lock_bit::try_acquire<CountPlatform>(m->Count)) [[unlikely]]
        lock_contended(t, m);
}
// The Unsafe acquires check no IRQL in the free flavour (rules.hpp,
// check_unsafe_acquire), so they may arrive here above APC_LEVEL. Uncontended
// that is what a free build does; contended, the thread would have to block
// at that IRQL, which no flavour lets a wait do: bug check as
// KeWaitForSingleObject there (0xC4/0x3B, timeout pointer 0 for an infinite
// wait), before the mutex is changed.
template <class M>
void lock_unsafe(PKTHREAD t, M* m) {
    if (lock_bit::try_acquire<CountPlatform>(m->Count)) return;
    enforce(kernel::check_wait_irql(t->Irql, APC_LEVEL, gate_of(m)));
    lock_contended(t, m);
}

// The safe routines' IRQL rules are checked_only (rules.hpp): in the free
// flavour a routine called above APC_LEVEL goes on as a free build does. That
// path leaves the fast path here, through a call it does not come back from
// (a returning check on the fast path cost ExAcquireFastMutex 6 instructions
// a pair): `body` is the routine's own, inlined into both.
template <class Body>
[[gnu::cold, gnu::noinline]] auto above_ceiling(const kernel::Violation& v, Body body) {
    kernel::bug_check_or_raise_in_flavor(v);  // returns in the free flavour only
    return body();
}

// The slow path of a routine whose fast path compared KTHREAD::IrqlGate with
// its ceiling (kernel/verifier.hpp): above the ceiling, or the verifier on.
// `v` is the routine's IRQL rule, applied as above_ceiling does; `body` runs
// the routine with the verifier's hooks around it.
// `check` and `body` are captureless, so the fast path passes only t and
// the mutex, and tail-calls (a Violation built in the fast path's frame cost
// KeAcquireGuardedMutex 4 instructions).
template <class M, class Check, class Body>
[[gnu::cold, gnu::noinline]] auto gate_slow(PKTHREAD t, M* m, Check check, Body body) {
    if (const auto v = check(t, m)) kernel::bug_check_or_raise_in_flavor(*v);
    return body(t, m);
}
namespace verifier = kernel::verifier;
using verifier::LockType;

// The Unsafe routines' IRQL rule (rules.hpp, detail::unsafe_irql_allowed)
// read through the gate word: false when the verifier is on.
[[gnu::always_inline]] inline bool unsafe_gate_allowed(PKTHREAD t) noexcept {
    return t->IrqlGate == APC_LEVEL || (t->IrqlGate < APC_LEVEL && t->CombinedApcDisable != 0);
}

[[gnu::always_inline]] inline void acquire_fast_mutex(PKTHREAD t, PFAST_MUTEX m) {
    const KIRQL old_irql = t->Irql;
    enforce(kernel::check_not_recursive(t, m, load_owner(m->Owner)));
    // KfRaiseIrql(APC_LEVEL): from above APC_LEVEL (the free flavour) this
    // lowers, as a free HAL lets it [kmt-ExFastMutex].
    kernel::set_irql(t, APC_LEVEL);
    lock(t, m);
    own(t, m);
    m->OldIrql = old_irql;
}

[[gnu::always_inline]] inline BOOLEAN try_acquire_fast_mutex(PKTHREAD t, PFAST_MUTEX m) {
    const KIRQL old_irql = t->Irql;
    kernel::set_irql(t, APC_LEVEL);
    // [ros-exh]: InterlockedCompareExchange(&Count, 0, 1); the owner gets FALSE.
    if (!lock_bit::try_acquire_uncontended<CountPlatform>(m->Count) &&
        !(released_for_exited_owner(m) &&
          lock_bit::try_acquire_uncontended<CountPlatform>(m->Count))) {
        kernel::set_irql(t, old_irql);
        return FALSE;
    }
    own(t, m);
    m->OldIrql = old_irql;
    return TRUE;
}

[[gnu::always_inline]] inline void release_fast_mutex(PKTHREAD t, PFAST_MUTEX m) {
    enforce(kernel::check_owner(t, m, load_owner(m->Owner)));
    // OldIrql belongs to this owner: read it before the next owner may write it.
    const auto old_irql = static_cast<KIRQL>(m->OldIrql);
    disown(t, m);
    unlock(m->Count, &m->Event);
    kernel::set_irql(t, old_irql);
}

[[gnu::always_inline]] inline void acquire_guarded_mutex(PKTHREAD t, PKGUARDED_MUTEX m) {
    enforce(kernel::check_not_recursive(t, m, load_owner(m->Owner)));
    kernel::enter_guarded_region(t);
    lock(t, m);
    own(t, m);
}

// The free flavour's KeAcquireGuardedMutex above APC_LEVEL: the IRQL stays
// where it is, so a contended acquire would block there; it bug checks first
// (lock_unsafe), with the guarded region left as it was.
void acquire_guarded_mutex_above_apc_level(PKTHREAD t, PKGUARDED_MUTEX m) {
    enforce(kernel::check_not_recursive(t, m, load_owner(m->Owner)));
    kernel::enter_guarded_region(t);
    try {
        lock_unsafe(t, m);
    } catch (...) {
        kernel::leave_guarded_region(t);
        throw;
    }
    own(t, m);
}

[[gnu::always_inline]] inline BOOLEAN try_acquire_guarded_mutex(PKTHREAD t, PKGUARDED_MUTEX m) {
    kernel::enter_guarded_region(t);
    if (!lock_bit::try_acquire<CountPlatform>(m->Count) &&
        !(released_for_exited_owner(m) && lock_bit::try_acquire<CountPlatform>(m->Count))) {
        kernel::leave_guarded_region(t);
        return FALSE;
    }
    own(t, m);
    return TRUE;
}

[[gnu::always_inline]] inline void release_guarded_mutex(PKTHREAD t, PKGUARDED_MUTEX m) {
    enforce(kernel::check_owner(t, m, load_owner(m->Owner)));
    disown(t, m);
    unlock(m->Count, &m->Gate);
    kernel::leave_guarded_region(t);
}

}  // namespace

// ---- The inline routines (fast_mutex_inline.hpp) ----
// Lets the calling thread's inline routines run their fast paths from now on
// (kernel::detail::tls_gate_lock_thread): production's copy only. The
// explorer's copy leaves it null, so that every call of a program linking it
// comes here, where Count and Owner go through the model.
namespace {
#ifdef KMLAB_DISPATCHER_SEAM
void enable_inline(PKTHREAD) noexcept {}
#else
void enable_inline(PKTHREAD t) noexcept {
    kernel::detail::tls_gate_lock_thread = t;
}
#endif
}  // namespace

// The contended continuations: the same steps as acquire_fast_mutex /
// acquire_guarded_mutex after their failed try_acquire, and as `unlock`
// after a failed uncontended compare-exchange. Reached from the inline fast
// paths only, so never in a program that links the explorer's copy (its
// threads never pass the inline null test).

void gate_lock::acquire_fast_mutex_contended(PKTHREAD t, PFAST_MUTEX m, KIRQL old_irql) {
    lock_contended(t, m);
    own(t, m);
    m->OldIrql = old_irql;
}

void gate_lock::acquire_guarded_mutex_contended(PKTHREAD t, PKGUARDED_MUTEX m) {
    lock_contended(t, m);
    own(t, m);
}

void gate_lock::release_contended(LONG& count, LONG old, PVOID gate) {
    Gate g{{gate}};
    lock_bit::release_slow(count, old, g);
}

// ---- FAST_MUTEX ----

void ExInitializeFastMutex(PFAST_MUTEX FastMutex) {
    kernel::require_irql_at_most(DISPATCH_LEVEL, FastMutex);
    if (PKTHREAD t = verifier::initializing_thread(); verifier::on(t)) [[unlikely]]
        verifier::on_initialize(t, FastMutex, LockType::fast_mutex, __builtin_return_address(0));
    FastMutex->Count = FM_LOCK_BIT;
    FastMutex->Owner = nullptr;
    FastMutex->Contention = 0;
    KeInitializeEvent(&FastMutex->Event, SynchronizationEvent, FALSE);
    // OldIrql is deliberately left alone, as the WDK inline does [kmt-ExFastMutex].
}

// Each routine's IRQL compare reads KTHREAD::IrqlGate (kernel/verifier.hpp):
// the same one instruction as a compare of Irql, failing into gate_slow when
// the verifier is on.
//
// ExAcquireFastMutex / ExReleaseFastMutex and the guarded pair are inline
// (kmlab/kernel/fast_mutex_inline.hpp); these are the whole routines, which
// their inline tests fail into: the thread's first call (and every call in
// a program linking the explorer's copy), a raised IRQL, the verifier, a
// recursion, a release by a thread that is not the owner.
void gate_lock::acquire_fast_mutex_out_of_line(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    enable_inline(t);
    if (t->IrqlGate > APC_LEVEL) [[unlikely]]
        return gate_slow(
            t, FastMutex,
            [](PKTHREAD th, auto* mx) { return kernel::check_fast_mutex_acquire(th, mx); },
            [](PKTHREAD th, auto* mx) {
                verifier::on_acquire(th, mx, LockType::fast_mutex);
                acquire_fast_mutex(th, mx);
                verifier::on_acquired(th, mx, LockType::fast_mutex);
            });
    acquire_fast_mutex(t, FastMutex);
}

BOOLEAN ExTryToAcquireFastMutex(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    if (t->IrqlGate > APC_LEVEL) [[unlikely]]
        return gate_slow(
            t, FastMutex,
            [](PKTHREAD th, auto* mx) { return kernel::check_fast_mutex_acquire(th, mx); },
            [](PKTHREAD th, auto* mx) {
                const BOOLEAN got = try_acquire_fast_mutex(th, mx);
                if (got) verifier::on_acquired(th, mx, LockType::fast_mutex, false, true);
                return got;
            });
    return try_acquire_fast_mutex(t, FastMutex);
}

void gate_lock::release_fast_mutex_out_of_line(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    enable_inline(t);
    if (t->IrqlGate != APC_LEVEL) [[unlikely]]
        return gate_slow(
            t, FastMutex,
            [](PKTHREAD th, auto* mx) { return kernel::check_fast_mutex_release(th, mx); },
            [](PKTHREAD th, auto* mx) {
                verifier::on_release(th, mx, LockType::fast_mutex);
                release_fast_mutex(th, mx);
            });
    release_fast_mutex(t, FastMutex);
}

namespace {
void acquire_fast_mutex_unsafe(PKTHREAD t, PFAST_MUTEX m) {
    enforce(kernel::check_not_recursive(t, m, load_owner(m->Owner)));
    lock_unsafe(t, m);
    own(t, m);
}
void release_fast_mutex_unsafe(PKTHREAD t, PFAST_MUTEX m) {
    enforce(kernel::check_owner(t, m, load_owner(m->Owner)));
    disown(t, m);
    unlock(m->Count, &m->Event);
}
}  // namespace

void ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    if (!unsafe_gate_allowed(t)) [[unlikely]]
        return gate_slow(
            t, FastMutex,
            [](PKTHREAD th, auto* mx) { return kernel::check_unsafe_acquire(th, mx); },
            [](PKTHREAD th, auto* mx) {
                verifier::on_acquire(th, mx, LockType::fast_mutex);
                acquire_fast_mutex_unsafe(th, mx);
                verifier::on_acquired(th, mx, LockType::fast_mutex);
            });
    acquire_fast_mutex_unsafe(t, FastMutex);
}

void ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    if (!unsafe_gate_allowed(t)) [[unlikely]]
        return gate_slow(
            t, FastMutex,
            [](PKTHREAD th, auto* mx) { return kernel::check_unsafe_release(th, mx); },
            [](PKTHREAD th, auto* mx) {
                verifier::on_release(th, mx, LockType::fast_mutex);
                release_fast_mutex_unsafe(th, mx);
            });
    release_fast_mutex_unsafe(t, FastMutex);
}

void ExEnterCriticalRegionAndAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    KeEnterCriticalRegion();
    try {
        ExAcquireFastMutexUnsafe(FastMutex);
    } catch (...) {
        ++current_thread()->KernelApcDisable;  // the region entered above, left
        throw;
    }
}

void ExReleaseFastMutexUnsafeAndLeaveCriticalRegion(PFAST_MUTEX FastMutex) {
    ExReleaseFastMutexUnsafe(FastMutex);
    KeLeaveCriticalRegion();
}

// ---- KGUARDED_MUTEX ----

void KeInitializeGuardedMutex(PKGUARDED_MUTEX Mutex) {
    // Documented for IRQL <= APC_LEVEL [ddi:keinitializeguardedmutex]; Windows
    // initializes at any IRQL [kmt-KeGuardedMutex]: the free flavour follows it.
    kernel::require_irql_documented_verifier(APC_LEVEL, HIGH_LEVEL, Mutex);
    if (PKTHREAD t = verifier::initializing_thread(); verifier::on(t)) [[unlikely]]
        verifier::on_initialize(t, Mutex, LockType::guarded_mutex, __builtin_return_address(0));
    Mutex->Count = GM_LOCK_BIT;
    Mutex->Owner = nullptr;
    Mutex->Contention = 0;
    // The gate behaves as a synchronization event (one waiter per signal).
    dispatcher::init_header(&Mutex->Gate.Header, GateObject, sizeof(KGATE), 0);
    // KernelApcDisable / SpecialApcDisable are not touched [kmt-KeGuardedMutex].
}

void gate_lock::acquire_guarded_mutex_out_of_line(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    enable_inline(t);
    if (t->IrqlGate > APC_LEVEL) [[unlikely]]
        return gate_slow(
            t, Mutex,
            [](PKTHREAD th, auto* mx) { return kernel::check_guarded_mutex_irql(th, mx); },
            [](PKTHREAD th, auto* mx) {
                verifier::on_acquire(th, mx, LockType::guarded_mutex);
                if (th->Irql > APC_LEVEL) {
                    acquire_guarded_mutex_above_apc_level(th, mx);
                } else {
                    acquire_guarded_mutex(th, mx);
                }
                verifier::on_acquired(th, mx, LockType::guarded_mutex);
            });
    acquire_guarded_mutex(t, Mutex);
}

BOOLEAN KeTryToAcquireGuardedMutex(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    if (t->IrqlGate > APC_LEVEL) [[unlikely]]
        return gate_slow(
            t, Mutex,
            [](PKTHREAD th, auto* mx) { return kernel::check_guarded_mutex_irql(th, mx); },
            [](PKTHREAD th, auto* mx) {
                const BOOLEAN got = try_acquire_guarded_mutex(th, mx);
                if (got) verifier::on_acquired(th, mx, LockType::guarded_mutex, false, true);
                return got;
            });
    return try_acquire_guarded_mutex(t, Mutex);
}

void gate_lock::release_guarded_mutex_out_of_line(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    enable_inline(t);
    if (t->IrqlGate > APC_LEVEL) [[unlikely]]
        return gate_slow(
            t, Mutex,
            [](PKTHREAD th, auto* mx) { return kernel::check_guarded_mutex_irql(th, mx); },
            [](PKTHREAD th, auto* mx) {
                verifier::on_release(th, mx, LockType::guarded_mutex);
                release_guarded_mutex(th, mx);
            });
    release_guarded_mutex(t, Mutex);
}

namespace {
void acquire_guarded_mutex_unsafe(PKTHREAD t, PKGUARDED_MUTEX m) {
    enforce(kernel::check_not_recursive(t, m, load_owner(m->Owner)));
    lock_unsafe(t, m);
    own(t, m);
}
void release_guarded_mutex_unsafe(PKTHREAD t, PKGUARDED_MUTEX m) {
    enforce(kernel::check_owner(t, m, load_owner(m->Owner)));
    disown(t, m);
    unlock(m->Count, &m->Gate);
}
}  // namespace

void KeAcquireGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    if (!unsafe_gate_allowed(t)) [[unlikely]]
        return gate_slow(
            t, Mutex, [](PKTHREAD th, auto* mx) { return kernel::check_unsafe_acquire(th, mx); },
            [](PKTHREAD th, auto* mx) {
                verifier::on_acquire(th, mx, LockType::guarded_mutex);
                acquire_guarded_mutex_unsafe(th, mx);
                verifier::on_acquired(th, mx, LockType::guarded_mutex);
            });
    acquire_guarded_mutex_unsafe(t, Mutex);
}

void KeReleaseGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    if (!unsafe_gate_allowed(t)) [[unlikely]]
        return gate_slow(
            t, Mutex, [](PKTHREAD th, auto* mx) { return kernel::check_unsafe_release(th, mx); },
            [](PKTHREAD th, auto* mx) {
                verifier::on_release(th, mx, LockType::guarded_mutex);
                release_guarded_mutex_unsafe(th, mx);
            });
    release_guarded_mutex_unsafe(t, Mutex);
}

}  // namespace kmlab::nt

namespace kmlab::nt {
namespace {
// (b) for one thread `w`: pins its gate_lock_wanted, releases the mutex
// there if `dead` owns it, unpins.
void release_wanted_by(PKTHREAD w, PKTHREAD dead) {
    using P = CountPlatform;
    typename P::template atomic_ref<std::uintptr_t> wanted(w->Extra->gate_lock_wanted);
    // The first read is native in both copies. Every write to the word is
    // seq_cst or a read-modify-write, which the explorer writes through to
    // memory at once, so it reads what a model load would read, without a
    // step: a thread that acquires nothing (nearly every one) costs the walk
    // no scheduling point, and a run's schedule does not depend on how many
    // other threads the process has (a schedule replays alone).
    std::uintptr_t v =
        std::atomic_ref<std::uintptr_t>(w->Extra->gate_lock_wanted).load(std::memory_order_seq_cst);
    if (v == 0) return;
    for (;;) {
        if (mutated(2)) {
            release_for_exited_owner(reinterpret_cast<PFAST_MUTEX>(v), dead);
            return;
        }
        if ((v & ~kPins) == 0) return;
        if ((v & kPins) == kPins) {
            P::spin_until([&] { return wanted.load(std::memory_order_relaxed) != v; },
                          Deadline::never());
            v = wanted.load(std::memory_order_seq_cst);
            continue;
        }
        if (wanted.compare_exchange_strong(v, v + 1, std::memory_order_seq_cst,
                                           std::memory_order_seq_cst))
            break;
    }
    // Pinned: `w` is still inside its acquire of the mutex, which exists.
    static_assert(offsetof(FAST_MUTEX, Count) == offsetof(KGUARDED_MUTEX, Count) &&
                  offsetof(FAST_MUTEX, Owner) == offsetof(KGUARDED_MUTEX, Owner) &&
                  offsetof(FAST_MUTEX, Event) == offsetof(KGUARDED_MUTEX, Gate));
    void* p = reinterpret_cast<void*>(v & ~kPins);
    // Both start their gate with a DISPATCHER_HEADER at one offset, whose
    // Type (set at initialization, never changed) tells them apart.
    const auto* gate = reinterpret_cast<const DISPATCHER_HEADER*>(static_cast<const char*>(p) +
                                                                  offsetof(FAST_MUTEX, Event));
    if (gate->Type == GateObject) {
        release_for_exited_owner(static_cast<PKGUARDED_MUTEX>(p), dead);
    } else {
        release_for_exited_owner(static_cast<PFAST_MUTEX>(p), dead);
    }
    wanted.fetch_sub(1, std::memory_order_seq_cst);
}
}  // namespace
}  // namespace kmlab::nt

namespace kmlab::dispatcher {

// Thread rundown, once the bug-check handler has returned from the report of
// a thread exiting at a raised IRQL or with APCs disabled
// (KERNEL_APC_PENDING_DURING_EXIT, dispatcher.cpp), as one holding a
// FAST_MUTEX or KGUARDED_MUTEX does: (a) and (b) of "A mutex held by a
// thread that exits" above. The thread's IRQL and regions are left as they
// are (it is ending).
void release_gate_locks_at_exit(PKTHREAD t) {
    kernel::detail::retire_gate_lock_holder(t);
    std::atomic_ref<LONG>(nt::g_exited_holders).fetch_add(1, std::memory_order_seq_cst);
    for (PKTHREAD w : kernel::detail::reference_live_threads(t)) {
        if (!nt::mutated(3)) nt::release_wanted_by(w, t);
        kernel::dereference_thread(w);
    }
}

#ifdef KMLAB_DISPATCHER_SEAM
namespace testing {
// The mutants above (model_defects_test.cpp declares it): 0 none.
void set_gate_lock_mutant(int mutant) noexcept {
    nt::g_gate_lock_mutant = mutant;
}
}  // namespace testing
#endif

}  // namespace kmlab::dispatcher
