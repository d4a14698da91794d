// The uncontended FAST_MUTEX and KGUARDED_MUTEX routines inline (issue 20):
// ExAcquireFastMutex / ExReleaseFastMutex and KeAcquireGuardedMutex /
// KeReleaseGuardedMutex, over the lock-bit code the idiomatic types use
// (kmlab/kernel/lock_bit.hpp), with the mutex's KEVENT / KGATE reached only on
// contention. Included by kmlab/kernel/routines.hpp, which declares them.
//
// Each inline routine is one test of what it can do here, then the lock bit:
//  * the calling thread's KTHREAD from kernel::detail::tls_gate_lock_thread
//    (one TLS load; below), null before the out-of-line routine ran once;
//  * KTHREAD::IrqlGate, the IRQL and the verifier gate byte compared as one
//    word with the routine's ceiling (kmlab/kernel/verifier.hpp): a raised
//    IRQL or the verifier on fails the compare;
//  * Owner against the caller: the acquire's recursion (MUTEX_ALREADY_OWNED,
//    0xBF) and the release's owner rule (THREAD_NOT_MUTEX_OWNER, 0x11).
// Anything else goes to the whole routine out of line (kernel/src/
// fast_mutex.cpp, *_out_of_line), which applies every rule and hook as the
// routines did before they were inline: the IRQL rules of each flavour
// (0xC4/0x33, 0xC4/0x34, 0xA for the guarded mutex in checked), the
// verifier's hooks, the bug checks above; it adopts a thread on its first
// call. The lock bit taken by another thread goes to the contended
// continuation out of line: the waiter registration on the mutex's gate, and
// the release on behalf of an exited holder ("A mutex held by a thread that
// exits", fast_mutex.cpp); a release that finds waiters converts one and
// signals the gate out of line as well.
//
// The explorer. Inline code is compiled into the caller's translation unit,
// where no link seam reaches it: its Count operations would be native
// atomics the explorer never interleaves. So the inline routines take their
// KTHREAD from a thread-local of their own, tls_gate_lock_thread, which only
// production's out-of-line routines set (to current_thread()); the
// explorer's copy of fast_mutex.cpp (explore/src/fast_mutex_seam.cpp), which
// replaces production's in every program that links the explorer's kernel
// copies, never sets it. In such a program every call fails the null test
// into the out-of-line routines, whose Count and Owner go through the model;
// in production the null test is the one current_thread() made before, and
// nothing is paid. Decision, kmlab: a thread-local rather than a bit in the
// KTHREAD's gate byte, which every lock routine compares, so the bit would
// have moved every other fast path (the dispatcher's among them) off the
// explorer's view. tests/model/model_fast_mutex_inline_test.cpp shows Count
// and Owner still interleaved through these routines, and that its
// must-find test fails for the mutant that reads tls_current_thread
// instead.
//
// Measured (callgrind --toggle-collect on benchmarks/instructions, lock +
// unlock pairs, the difference of 2000 and 1000 pairs over 1000, the
// measuring loop's 3 instructions included; g++ 12 -O2, 2026-12-07): see
// kernel/src/fast_mutex.cpp's header for the numbers.

#pragma once

#include <atomic>

#include <kmlab/kernel/lock_bit.hpp>
#include <kmlab/kernel/objects.hpp>
#include <kmlab/kernel/thread.hpp>

namespace kmlab::kernel::detail {
// The calling thread's KTHREAD for the inline routines below, or null: set
// by production's out-of-line routines (fast_mutex.cpp, enable_inline) to
// current_thread(), cleared with tls_current_thread when the thread detaches
// its KTHREAD (exit_current_thread, kernel/src/thread.cpp), so that it is
// null or equal to tls_current_thread. Never set in a program that links the
// explorer's copy of fast_mutex.cpp (above).
inline thread_local nt::PKTHREAD tls_gate_lock_thread = nullptr;
}  // namespace kmlab::kernel::detail

namespace kmlab::nt::gate_lock {

// ---- out of line (kernel/src/fast_mutex.cpp) ----
// The whole routine: the inline test failed.
void acquire_fast_mutex_out_of_line(PFAST_MUTEX m);
void release_fast_mutex_out_of_line(PFAST_MUTEX m);
void acquire_guarded_mutex_out_of_line(PKGUARDED_MUTEX m);
void release_guarded_mutex_out_of_line(PKGUARDED_MUTEX m);
// The acquire found the lock bit taken: wait for it (the IRQL already raised
// to APC_LEVEL, or the guarded region entered), then own it.
[[gnu::cold]] void acquire_fast_mutex_contended(PKTHREAD t, PFAST_MUTEX m, KIRQL old_irql);
[[gnu::cold]] void acquire_guarded_mutex_contended(PKTHREAD t, PKGUARDED_MUTEX m);
// The release found Count != 0 (waiters, or a woken one on its way), Owner
// already cleared: free the lock and wake one waiter through `gate` (the
// mutex's KEVENT or KGATE), lock_bit::release_slow.
[[gnu::cold]] void release_contended(LONG& count, LONG old, PVOID gate);

// A test-only template flag (tests/model/model_fast_mutex_inline_test.cpp):
// `no_model_escape` takes the KTHREAD from tls_current_thread, which the
// explorer sets for each model thread, so that a model thread runs the
// inline lock bit natively, unseen by the explorer. The public routines use
// `faithful`; nothing else instantiates the mutant.
enum class Escape : unsigned char { faithful, no_model_escape };

template <Escape E>
[[gnu::always_inline]] inline PKTHREAD inline_thread() noexcept {
    if constexpr (E == Escape::faithful) {
        return kernel::detail::tls_gate_lock_thread;
    } else {
        return kernel::detail::tls_current_thread;
    }
}

// Owner as the inline paths read and write it: relaxed, plain moves, as
// dispatcher::load_owner and fast_mutex.cpp's own / disown in production.
// Only the owner writes it, after its Count acquire and before its Count
// release (fast_mutex.cpp, invariant I1), so a caller asking "is it mine?"
// finds its own name exactly when it holds the mutex, whatever order other
// threads' stores reach it in.
[[gnu::always_inline]] inline PKTHREAD owner_of(PKTHREAD& field) noexcept {
    return std::atomic_ref<PKTHREAD>(field).load(std::memory_order_relaxed);
}
[[gnu::always_inline]] inline void set_owner(PKTHREAD& field, PKTHREAD t) noexcept {
    std::atomic_ref<PKTHREAD>(field).store(t, std::memory_order_relaxed);
}

// The release's uncontended case: held (0), nobody waiting, to free (1) in
// one compare-exchange with release ordering, as lock_bit::release; anything
// else (waiters, a woken mark) is the contended release out of line.
[[gnu::always_inline]] inline void release_count(LONG& count, PVOID gate) {
    LONG old = 0;
    if (!std::atomic_ref<LONG>(count).compare_exchange_strong(
            old, FM_LOCK_BIT, std::memory_order_release, std::memory_order_relaxed)) [[unlikely]]
        release_contended(count, old, gate);
}

template <Escape E = Escape::faithful>
[[gnu::always_inline]] inline void fast_mutex_acquire(PFAST_MUTEX m) {
    PKTHREAD t = inline_thread<E>();
    if (t == nullptr || t->IrqlGate > APC_LEVEL || owner_of(m->Owner) == t) [[unlikely]]
        return acquire_fast_mutex_out_of_line(m);
    const KIRQL old_irql = t->Irql;
    // KfRaiseIrql(APC_LEVEL) from at most APC_LEVEL: no check, no APC to deliver.
    kernel::set_irql(t, APC_LEVEL);
    if (!lock_bit::try_acquire(m->Count)) [[unlikely]]
        return acquire_fast_mutex_contended(t, m, old_irql);
    set_owner(m->Owner, t);
    m->OldIrql = old_irql;
}

template <Escape E = Escape::faithful>
[[gnu::always_inline]] inline void fast_mutex_release(PFAST_MUTEX m) {
    PKTHREAD t = inline_thread<E>();
    if (t == nullptr || t->IrqlGate != APC_LEVEL || owner_of(m->Owner) != t) [[unlikely]]
        return release_fast_mutex_out_of_line(m);
    // OldIrql belongs to this owner: read it before the next owner may write it.
    const auto old_irql = static_cast<KIRQL>(m->OldIrql);
    set_owner(m->Owner, nullptr);
    release_count(m->Count, &m->Event);
    // Lowering from APC_LEVEL as KfLowerIrql would, without its ordering check
    // (the acquire saved an IRQL at most APC_LEVEL): what release_fast_mutex
    // in fast_mutex.cpp does (kernel::set_irql).
    kernel::set_irql(t, old_irql);
}

template <Escape E = Escape::faithful>
[[gnu::always_inline]] inline void guarded_mutex_acquire(PKGUARDED_MUTEX m) {
    PKTHREAD t = inline_thread<E>();
    if (t == nullptr || t->IrqlGate > APC_LEVEL || owner_of(m->Owner) == t) [[unlikely]]
        return acquire_guarded_mutex_out_of_line(m);
    kernel::enter_guarded_region(t);
    if (!lock_bit::try_acquire(m->Count)) [[unlikely]]
        return acquire_guarded_mutex_contended(t, m);
    set_owner(m->Owner, t);
}

template <Escape E = Escape::faithful>
[[gnu::always_inline]] inline void guarded_mutex_release(PKGUARDED_MUTEX m) {
    PKTHREAD t = inline_thread<E>();
    if (t == nullptr || t->IrqlGate > APC_LEVEL || owner_of(m->Owner) != t) [[unlikely]]
        return release_guarded_mutex_out_of_line(m);
    set_owner(m->Owner, nullptr);
    release_count(m->Count, &m->Gate);
    kernel::leave_guarded_region(t);
}

}  // namespace kmlab::nt::gate_lock

namespace kmlab::nt {

inline void ExAcquireFastMutex(PFAST_MUTEX FastMutex) {
    gate_lock::fast_mutex_acquire(FastMutex);
}
inline void ExReleaseFastMutex(PFAST_MUTEX FastMutex) {
    gate_lock::fast_mutex_release(FastMutex);
}
inline void KeAcquireGuardedMutex(PKGUARDED_MUTEX Mutex) {
    gate_lock::guarded_mutex_acquire(Mutex);
}
inline void KeReleaseGuardedMutex(PKGUARDED_MUTEX Mutex) {
    gate_lock::guarded_mutex_release(Mutex);
}

}  // namespace kmlab::nt
