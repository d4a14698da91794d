// The word the dispatcher's fast paths and its busy mark share (see
// dispatcher_core.hpp, "The fast paths"), and the release fast paths
// themselves, inline in their routines (objects.cpp). Private to
// kernel/src. Everything here has internal linkage: the explorer's copies
// of dispatcher.cpp and objects.cpp compile it with KMLAB_DISPATCHER_SEAM,
// production's without, and a program may link both translations.
#pragma once

#include <cstddef>
#include <cstdint>

#include <kmlab/platform/deadline.hpp>
#include <kmlab/platform/platform.hpp>

#include "dispatcher_core.hpp"

namespace kmlab::dispatcher {
namespace {

// An object's first eight bytes (DISPATCHER_HEADER's Lock word, then
// SignalState) as one word, for the fast paths and the busy mark
// (dispatcher_core.hpp, "The fast paths"). Little-endian: SignalState is
// the high half. In the explorer's copy every access is a model operation
// of the same size (the mark's too), so the explorer interleaves the fast
// paths with the sections at each of them; the sections' own reads and
// writes of SignalState happen while the mark excludes every fast path.
constexpr std::uint64_t kBusyBit = static_cast<std::uint32_t>(kObjectBusy);
static_assert(offsetof(DISPATCHER_HEADER, SignalState) == 4);
inline LONG state_of(std::uint64_t w) noexcept {
    return static_cast<LONG>(static_cast<std::uint32_t>(w >> 32));
}
inline std::uint64_t with_state(std::uint64_t w, LONG state) noexcept {
    return (w & 0xFFFFFFFFu) | (std::uint64_t{static_cast<std::uint32_t>(state)} << 32);
}
#ifdef KMLAB_DISPATCHER_SEAM
inline explore::kernel_seam::AtomicRef<std::uint64_t> word(DISPATCHER_HEADER* h) noexcept {
    return explore::kernel_seam::AtomicRef<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(h));
}
inline std::uint64_t load_word(DISPATCHER_HEADER* h) noexcept {
    return word(h).load(std::memory_order_acquire);
}
inline bool cas_word(DISPATCHER_HEADER* h, std::uint64_t expected, std::uint64_t desired) noexcept {
    return word(h).compare_exchange_strong(expected, desired, std::memory_order_acq_rel,
                                           std::memory_order_relaxed);
}
inline void mark_busy(DISPATCHER_HEADER* h) noexcept {
    word(h).fetch_or(kBusyBit, std::memory_order_acq_rel);
}
inline void clear_busy(DISPATCHER_HEADER* h) noexcept {
    word(h).fetch_and(~kBusyBit, std::memory_order_release);
}
#else
// GCC's atomic built-ins over a may_alias type: the word overlaps fields of
// other types.
typedef std::uint64_t __attribute__((may_alias)) HeaderWord;
inline HeaderWord* word(DISPATCHER_HEADER* h) noexcept {
    return reinterpret_cast<HeaderWord*>(h);
}
inline std::uint64_t load_word(DISPATCHER_HEADER* h) noexcept {
    return __atomic_load_n(word(h), __ATOMIC_ACQUIRE);
}
// Acquire and release both: a fast path's compare-exchange publishes its
// effect to the next one (release) and sees the last one's (acquire), and a
// section's mark (an RMW reading this store) is then ordered after it, so
// that the section's plain reads of the object follow every completed fast
// path in happens-before, not only in x86's order (one instruction either
// way: lock cmpxchg).
inline bool cas_word(DISPATCHER_HEADER* h, std::uint64_t expected, std::uint64_t desired) noexcept {
    return __atomic_compare_exchange_n(word(h), &expected, desired, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED);
}
// The mark is an RMW (not a store) on the word the fast paths compare: it
// orders the section after every fast path that completed, and fails
// every one that has not.
inline void mark_busy(DISPATCHER_HEADER* h) noexcept {
    __atomic_fetch_or(word(h), kBusyBit, __ATOMIC_ACQ_REL);
}
// Release: what the section wrote is visible to the next fast path that
// succeeds (its compare-exchange reads this store or a later one).
inline void clear_busy(DISPATCHER_HEADER* h) noexcept {
    __atomic_fetch_and(word(h), ~kBusyBit, __ATOMIC_RELEASE);
}
#endif

#ifdef KMLAB_DISPATCHER_SEAM
inline bool fast_mutated(testing::Mutant m) noexcept {
    return testing::mutant_is(m);
}
// The routine's trace line (explore/src/kernel_seam.hpp), as a section
// writes it once it holds the lock: a fast path's effect is ordered at its
// compare-exchange.
inline void trace_fast_path() noexcept {
    explore::kernel_seam::section_entered();
}
// A fast path's write of KMUTANT.OwnerThread: a model operation, so that
// the explorer interleaves other threads between it and the fast path's
// compare-exchange. Seq_cst in the model only (production's is a plain
// store): the owner's own later checks and the sections read the field
// natively, and under tso a native read cannot forward from the model's
// store buffer as the hardware would. Visible at once, it hides only a late
// owner store from other threads, which compare the field with themselves
// and never equal a stale value (wait_at_once, dispatcher.cpp).
inline void store_owner_seen(PKMUTANT m, PKTHREAD t) noexcept {
    explore::kernel_seam::AtomicRef<PKTHREAD>(m->OwnerThread).store(t, std::memory_order_seq_cst);
}
#else
inline void store_owner_seen(PKMUTANT m, PKTHREAD t) noexcept {
    store_owner(m, t);
}
constexpr bool fast_mutated(testing::Mutant) noexcept {
    return false;
}
inline void trace_fast_path() noexcept {}
#endif

// Under a section's mark, before KeReleaseMutant(Abandon = TRUE) reads the
// owner: a mutant held (state <= 0) with no owner is in a fast path's
// window (an acquisition between its compare-exchange and its owner store,
// or a release between clearing the owner and its compare-exchange, which
// the mark makes fail and undo). Wait for the owner to settle: the fast
// path writes the owner field last, after its list edit, and needs no lock
// to get there (Native: spin, then yield).
inline void settle_owner(PKMUTANT m) noexcept {
#ifdef KMLAB_DISPATCHER_SEAM
    using P = explore::kernel_seam::Platform;
    auto owner = [m] {
        return explore::kernel_seam::AtomicRef<PKTHREAD>(m->OwnerThread)
            .load(std::memory_order_relaxed);
    };
#else
    using P = platform::Native;
    auto owner = [m] { return load_owner(m); };
#endif
    P::spin_until([&] { return state_of(load_word(&m->Header)) > 0 || owner() != nullptr; },
                  Deadline::never());
}

inline bool release_mutant_at_once(PKTHREAD t, PKMUTANT m, LONG& previous) noexcept {
    if (t->WaitNext) return false;
    DISPATCHER_HEADER* h = &m->Header;
    const std::uint64_t w = load_word(h);
    if ((w & kBusyBit) != 0 && !fast_mutated(testing::Mutant::fast_path_ignores_busy)) return false;
    // Not the owner: the slow path raises STATUS_MUTANT_NOT_OWNED.
    if (load_owner(m) != t) return false;
    const LONG state = state_of(w);
    if (state < 0) {
        // A recursive hold: only the count changes (release: the caller's
        // writes precede its last release's, which publishes them).
        if (!cas_word(h, w, with_state(w, state + 1))) return false;
    } else if (state == 0) {
        // The last release. The owner leaves the owner field and its list
        // before the compare-exchange frees the mutant: once free, another
        // thread may acquire it at once and write both. A waiter that marked
        // it busy in between fails the compare-exchange; both are then put
        // back and the slow path hands the mutant to it.
        //
        // Only while it is the thread's one mutant: KeReleaseMutant(Abandon =
        // TRUE) by another thread (ExpDeleteMutant's path [ros-exmutant])
        // unlinks a mutant from its owner's list under the lock, which a
        // lock-free edit of a longer list would race (an abandoned neighbour
        // leaves a stale link behind). With one entry, the only foreign edit
        // is of this very mutant, and the abandoner waits while the owner
        // field is empty and the state held (settle_owner): the field is
        // cleared first here and restored last by the undo, so it never sees
        // the list mid-edit.
        // Read before the compare-exchange: once the mutant is free, its
        // next owner may release and destroy it at once.
        const UCHAR apc_disable = m->ApcDisable;
        PLIST_ENTRY entry = &m->MutantListEntry;
        PLIST_ENTRY head = &t->MutantListHead;
        if (head->Flink != entry || entry->Flink != head) return false;
        if (fast_mutated(testing::Mutant::fast_release_frees_first)) {
            if (!cas_word(h, w, with_state(w, 1))) return false;
            RemoveEntryList(entry);
            store_owner_seen(m, nullptr);
        } else {
            store_owner_seen(m, nullptr);
            RemoveEntryList(entry);
            if (!cas_word(h, w, with_state(w, 1))) {
                InsertTailList(head, entry);
                store_owner_seen(m, t);
                return false;
            }
        }
        // KeLeaveCriticalRegion for the APCs the mutex disabled (step 6 of
        // KeReleaseMutant [ros-mutex]).
        t->KernelApcDisable = static_cast<SHORT>(t->KernelApcDisable + apc_disable);
    } else {
        return false;  // not held (the slow path raises)
    }
    previous = state;
    trace_fast_path();
    return true;
}

inline bool set_event_at_once(PKTHREAD t, PKEVENT e, LONG state, LONG& previous) noexcept {
    if (t->WaitNext) return false;
    DISPATCHER_HEADER* h = &e->Header;
    const std::uint64_t w = load_word(h);
    if ((w & kBusyBit) != 0 && !fast_mutated(testing::Mutant::fast_path_ignores_busy)) return false;
    // Release: a waiter that sees the event signaled sees what preceded the set.
    if (!cas_word(h, w, with_state(w, state))) return false;
    previous = state_of(w);
    trace_fast_path();
    return true;
}

inline bool release_semaphore_at_once(PKTHREAD t, PKSEMAPHORE s, LONG adjustment,
                                      LONG& previous) noexcept {
    if (t->WaitNext) return false;
    DISPATCHER_HEADER* h = &s->Header;
    const std::uint64_t w = load_word(h);
    if ((w & kBusyBit) != 0 && !fast_mutated(testing::Mutant::fast_path_ignores_busy)) return false;
    const LONG initial = state_of(w);
    const LONGLONG state = static_cast<LONGLONG>(initial) + adjustment;
    // Over the limit or not an increase: the slow path raises.
    if (state > s->Limit || state < initial) return false;
    if (!cas_word(h, w, with_state(w, static_cast<LONG>(state)))) return false;
    previous = initial;
    trace_fast_path();
    return true;
}

}  // namespace
}  // namespace kmlab::dispatcher
