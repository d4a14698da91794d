// The KSPIN_LOCK algorithms, written once over a Platform P
// (<kmlab/platform/platform.hpp>) so that the NT routines (kernel/src/
// spin_lock.cpp), the idiomatic SpinLock / QueuedSpinLock
// (mutexes/spin_lock.hpp) and the schedule explorer (tests/model) run the same
// code. Production instantiates them with platform::Native.
//
// The lock word (KSPIN_LOCK, one ULONG_PTR) is shared by both kinds of
// acquisition:
//
//   0                       free
//   KTHREAD address | 1     held by an ordinary acquire (KeAcquireSpinLock and
//                           kin). A free MP build stores 1 (`lock bts`), a
//                           checked one the owner's KTHREAD | 1 [ros-spinlock-h]
//                           [kmt-KeSpinLock]; kmlab always keeps the owner,
//                           which makes the ownership rules (recursion, release
//                           by a non-owner) a compare with a word the fast
//                           path reads anyway.
//   KSPIN_LOCK_QUEUE*       held by in-stack queued acquires: the tail of the
//                           queue, the last entry to enqueue (the word IS the
//                           MCS tail pointer [wrk-queuelock][kmt-KeSpinLock]:
//                           kmtest reads the handle's address there). Entries
//                           are pointer-aligned, so bit 0 is clear.
//
// KSPIN_LOCK_QUEUE::Lock holds the lock's address with two flag bits:
//   LOCK_QUEUE_WAIT  (1)  the entry waits for its predecessor's hand-off
//                         [wrk-queuelock][ros-spinlock]
//   LOCK_QUEUE_OWNER (2)  the entry holds the lock. WRK's hand-off only
//                         clears WAIT and never sets OWNER [wrk-queuelock];
//                         kmlab follows ReactOS, whose acquire sets LQ_OWN
//                         (2) and whose hand-off toggles WAIT off and OWN on
//                         [ros-spinlock], and kmtest, which reads
//                         `SpinLock | 2` in a held handle and SpinLock after
//                         the release [kmt-KeSpinLock]
// and KSPIN_LOCK_QUEUE::Next the successor, once it has linked itself.
//
// Ordinary acquire: a compare-exchange 0 -> tag, then test (read-only spin)
// and test-and-set again, as ReactOS's KxAcquireSpinLock spins on the word
// before its next bit-test-and-set [ros-spinlock-h]. The compare-exchange
// (rather than Windows' `lock bts` of bit 0) also refuses a word that holds a
// queue tail: it never writes over a queue.
//
// Queued acquire (MCS [Mellor-Crummey & Scott, TOCS 1991], as the kernel's
// KxAcquireQueuedSpinLock / KxReleaseQueuedSpinLock [wrk-queuelock]):
//   acquire: Next = 0, Lock = &lock; tail = swap(word, &entry) (a
//            compare-exchange from the word read; see enqueue()). No
//            predecessor: owned. Else set WAIT in our entry, link
//            predecessor->Next = &entry, spin until WAIT clears.
//   release: no successor linked yet: compare-exchange word &entry -> 0;
//            that fails only when a successor has swapped itself in but
//            not linked yet: wait for the link (KxWaitForLockChainValid).
//            Then hand off: successor->Lock = lock | OWNER (clears its WAIT).
// Acquisitions are granted in the order of the swaps (FIFO).
//
// Mixing both kinds on one lock is forbidden: "Drivers must not combine calls
// to KeAcquireSpinLock and KeAcquireInStackQueuedSpinLock on the same spin
// lock" [ddi:keacquireinstackqueuedspinlock]. Decision, kmlab: either kind
// that finds the other kind's holder stops with SPIN_LOCK_ALREADY_OWNED
// (rules_spin_lock.hpp) without changing the word, where Windows would
// corrupt memory (a queued acquire writes through the tag as if it were an
// entry; an ordinary `lock bts` sets bit 0 of the tail pointer). A queued
// acquire never replaces a word with bit 0 set (enqueue()'s compare-exchange);
// an ordinary acquire's first attempt reports a queue tail at once, and while
// it spins its compare-exchange takes only a free word (a queue that appears
// during the spin is waited for, never written over: no corruption either
// way).
//
// User mode: the holder is a Linux thread that can be preempted while it
// holds the lock (Windows cannot preempt a holder at DISPATCH_LEVEL), so
// every wait goes through P::spin_until, which spins and then yields: it
// never burns a core for a preempted holder's whole time slice.
//
// Memory orders: the acquiring RMW (a compare-exchange) is acquire;
// the release store / compare-exchange is release; a queued hand-off is a
// release store of the successor's Lock read with acquire by the successor.
// The link store is release so that the predecessor, which reads Next with
// acquire before it hands off, makes its hand-off write after our WAIT one.
#pragma once

#include <atomic>

#include <kmlab/kernel/spin_lock.hpp>
#include <kmlab/platform/platform.hpp>

namespace kmlab::spin_lock {

using nt::KSPIN_LOCK;
using nt::KSPIN_LOCK_QUEUE;
using nt::ULONG_PTR;

inline constexpr ULONG_PTR kHeldBit = 1;  // an ordinary holder's tag has bit 0 set
inline constexpr ULONG_PTR LOCK_QUEUE_WAIT = 1;
inline constexpr ULONG_PTR LOCK_QUEUE_OWNER = 2;
inline constexpr ULONG_PTR kQueueFlags = LOCK_QUEUE_WAIT | LOCK_QUEUE_OWNER;

// Deliberate breakages for the explorer's must-find tests (tests/model); never
// used elsewhere.
enum class Mutant {
    none,
    load_then_store,   // ordinary acquire as a load then a plain store (no RMW)
    no_wait_for_link,  // queued release does not wait for its successor's link
    // The three below are the reviewer's; each is a classic MCS slip.
    next_after_exchange,  // queued acquire clears Next after the exchange published it
    wait_after_link,      // queued acquire sets WAIT after the link published it
    skip_successor,       // queued release hands the lock past its successor
};

// The word an ordinary acquire stores: the owner's KTHREAD | 1.
inline KSPIN_LOCK owner_tag(const void* thread) noexcept {
    return reinterpret_cast<ULONG_PTR>(thread) | kHeldBit;
}

// ---- ordinary acquisition ----

// One attempt. On failure `seen` is the word found (the caller compares it
// with its own tag for the recursion rule).
template <class P = platform::Native, Mutant M = Mutant::none>
inline bool try_acquire(KSPIN_LOCK& lock, KSPIN_LOCK tag, KSPIN_LOCK& seen) noexcept {
    typename P::template atomic_ref<KSPIN_LOCK> word(lock);
    if constexpr (M == Mutant::load_then_store) {
        seen = word.load(std::memory_order_relaxed);
        if (seen != 0) return false;
        word.store(tag, std::memory_order_relaxed);
        return true;
    } else {
        seen = 0;
        return word.compare_exchange_strong(seen, tag, std::memory_order_acquire,
                                            std::memory_order_relaxed);
    }
}

// Spins (read-only) until the word is 0, then tries again; P::spin_until
// yields once its spin budget is spent.
template <class P = platform::Native, Mutant M = Mutant::none>
[[gnu::noinline, gnu::cold]] void acquire_contended(KSPIN_LOCK& lock, KSPIN_LOCK tag) noexcept {
    typename P::template atomic_ref<KSPIN_LOCK> word(lock);
    KSPIN_LOCK seen = 0;
    P::spin_until(
        [&] {
            return word.load(std::memory_order_relaxed) == 0 && try_acquire<P, M>(lock, tag, seen);
        },
        Deadline::never());
}

template <class P = platform::Native, Mutant M = Mutant::none>
inline void acquire(KSPIN_LOCK& lock, KSPIN_LOCK tag) noexcept {
    KSPIN_LOCK seen;
    if (!try_acquire<P, M>(lock, tag, seen)) [[unlikely]]
        acquire_contended<P, M>(lock, tag);
}

template <class P = platform::Native>
inline KSPIN_LOCK load(const KSPIN_LOCK& lock) noexcept {
    return typename P::template atomic_ref<KSPIN_LOCK>(const_cast<KSPIN_LOCK&>(lock))
        .load(std::memory_order_relaxed);
}

// ReactOS clears the word with an interlocked AND [ros-spinlock-h]; a release
// store orders the critical section as well and is all x86 needs.
template <class P = platform::Native>
inline void release(KSPIN_LOCK& lock) noexcept {
    typename P::template atomic_ref<KSPIN_LOCK>(lock).store(0, std::memory_order_release);
}

// ---- in-stack queued acquisition (MCS) ----
//
// Every access to an entry's Next and Lock goes through the seam, private
// ones included: relaxed loads and stores through P::atomic_ref, which are
// the plain `mov`s of before with platform::Native (the uncontended pair's
// instruction count did not change), but points where the explorer may
// switch threads. The explorer schedules only before a seam access, so a
// plain write after the exchange or the link ran in the same step as it and
// the explorer could not see it race (review finding: the classic MCS bug,
// Next cleared after the exchange, and WAIT set after the link, went
// unreported; both are must-find mutants now, tests/model). The orders that
// matter are the publishing ones: the swap (acq_rel) and the link
// (release) publish the writes made before them.

namespace detail {
inline nt::PKSPIN_LOCK with_flags(nt::PKSPIN_LOCK lock, ULONG_PTR flags) noexcept {
    return reinterpret_cast<nt::PKSPIN_LOCK>(reinterpret_cast<ULONG_PTR>(lock) | flags);
}
inline nt::PKSPIN_LOCK without_flags(nt::PKSPIN_LOCK lock) noexcept {
    return reinterpret_cast<nt::PKSPIN_LOCK>(reinterpret_cast<ULONG_PTR>(lock) & ~kQueueFlags);
}
template <class P>
inline nt::PKSPIN_LOCK load_lock(KSPIN_LOCK_QUEUE& q) noexcept {
    return typename P::template atomic_ref<nt::PKSPIN_LOCK>(q.Lock).load(std::memory_order_relaxed);
}
template <class P>
inline void store_lock(KSPIN_LOCK_QUEUE& q, nt::PKSPIN_LOCK v) noexcept {
    typename P::template atomic_ref<nt::PKSPIN_LOCK>(q.Lock).store(v, std::memory_order_relaxed);
}
template <class P>
inline void store_next(KSPIN_LOCK_QUEUE& q, KSPIN_LOCK_QUEUE* v) noexcept {
    typename P::template atomic_ref<KSPIN_LOCK_QUEUE*>(q.Next).store(v, std::memory_order_relaxed);
}
}  // namespace detail

inline KSPIN_LOCK entry_word(const KSPIN_LOCK_QUEUE& q) noexcept {
    return reinterpret_cast<ULONG_PTR>(&q);
}

// Step 1 of a queued acquire: initialises the entry and swaps it into the
// tail. Returns the previous tail word: 0 (the lock is ours: the entry is
// marked OWNER), a queue entry (call wait_for_handoff), or an ordinary
// holder's tag (bit 0 set; mixing: the caller stops). `exchanged` runs right
// after the swap, before any other shared access (the explorer's tests
// record the order of the swaps there; production passes none).
//
// The swap is a compare-exchange from the word just read, retried with the
// word it finds, rather than the kernel's exchange [wrk-queuelock]: it
// replaces only a word seen to be free or a queue tail, and returns an
// ordinary holder's tag without having changed anything. Review finding
// (mixing race): an exchange that found a tag had already replaced it, and a
// second queued acquirer could link into the entry before the first put the
// tag back, then spin on it forever. A load then an exchange would leave the
// same race open between the two (the queue drains and an ordinary acquire
// takes the word); the compare-exchange closes it. Cost: a load before the
// locked instruction; under contention a failed compare-exchange retries
// (lock-free rather than wait-free; the hand-off order is the order of the
// successful swaps, FIFO as before).
struct NoHook {
    void operator()() const noexcept {}
};
template <class P = platform::Native, Mutant M = Mutant::none, class Hook = NoHook>
inline KSPIN_LOCK enqueue(KSPIN_LOCK& lock, KSPIN_LOCK_QUEUE& q, Hook&& exchanged = {}) noexcept {
    if constexpr (M != Mutant::next_after_exchange) detail::store_next<P>(q, nullptr);
    detail::store_lock<P>(q, &lock);
    typename P::template atomic_ref<KSPIN_LOCK> word(lock);
    KSPIN_LOCK prev = word.load(std::memory_order_relaxed);
    // acq_rel: acquire pairs with the last owner's releasing compare-exchange
    // (no predecessor); release publishes the entry's initialisation to the
    // thread that will link itself behind it.
    do {
        if ((prev & kHeldBit) != 0) [[unlikely]]
            return prev;  // an ordinary holder: nothing changed
    } while (!word.compare_exchange_weak(prev, entry_word(q), std::memory_order_acq_rel,
                                         std::memory_order_relaxed));
    exchanged();
    if constexpr (M == Mutant::next_after_exchange) detail::store_next<P>(q, nullptr);
    if (prev == 0) detail::store_lock<P>(q, detail::with_flags(&lock, LOCK_QUEUE_OWNER));
    return prev;
}

// Step 2 when enqueue() returned a predecessor entry: WAIT goes into our
// entry before the link publishes it, so the predecessor's hand-off (which
// it can make only after it has read the link) is the last write to it.
template <class P = platform::Native, Mutant M = Mutant::none>
[[gnu::noinline]] void wait_for_handoff(KSPIN_LOCK_QUEUE& q, KSPIN_LOCK prev) noexcept {
    if constexpr (M != Mutant::wait_after_link)
        detail::store_lock<P>(q, detail::with_flags(detail::load_lock<P>(q), LOCK_QUEUE_WAIT));
    auto* pred = reinterpret_cast<KSPIN_LOCK_QUEUE*>(prev);
    typename P::template atomic_ref<KSPIN_LOCK_QUEUE*>(pred->Next)
        .store(&q, std::memory_order_release);
    if constexpr (M == Mutant::wait_after_link)
        detail::store_lock<P>(q, detail::with_flags(detail::load_lock<P>(q), LOCK_QUEUE_WAIT));
    typename P::template atomic_ref<nt::PKSPIN_LOCK> own(q.Lock);
    P::spin_until(
        [&] {
            return (reinterpret_cast<ULONG_PTR>(own.load(std::memory_order_acquire)) &
                    LOCK_QUEUE_WAIT) == 0;
        },
        Deadline::never());
}

// Both steps, for callers whose lock word never holds an ordinary tag
// (QueuedSpinLock's private word).
template <class P = platform::Native>
inline void acquire_queued(KSPIN_LOCK& lock, KSPIN_LOCK_QUEUE& q) noexcept {
    if (const KSPIN_LOCK prev = enqueue<P>(lock, q); prev != 0) [[unlikely]]
        wait_for_handoff<P>(q, prev);
}

// The kernel's KxTryToAcquireQueuedSpinLock [wrk-queuelock]: test, then
// compare-exchange 0 -> &entry; never waits. `exchanged` as enqueue's, after
// a successful compare-exchange.
template <class P = platform::Native, class Hook = NoHook>
inline bool try_acquire_queued(KSPIN_LOCK& lock, KSPIN_LOCK_QUEUE& q,
                               Hook&& exchanged = {}) noexcept {
    typename P::template atomic_ref<KSPIN_LOCK> word(lock);
    if (word.load(std::memory_order_relaxed) != 0) return false;
    detail::store_next<P>(q, nullptr);
    detail::store_lock<P>(q, &lock);
    KSPIN_LOCK expected = 0;
    // acq_rel, as enqueue's: a successor links itself into q.Next, after our
    // initialisation of it.
    if (!word.compare_exchange_strong(expected, entry_word(q), std::memory_order_acq_rel,
                                      std::memory_order_relaxed))
        return false;
    exchanged();
    detail::store_lock<P>(q, detail::with_flags(&lock, LOCK_QUEUE_OWNER));
    return true;
}

// `lock` is the entry's lock (its Lock without the flags), which a caller
// that has read it for its own checks passes rather than read it again.
template <class P = platform::Native, Mutant M = Mutant::none>
inline void release_queued(KSPIN_LOCK_QUEUE& q, nt::PKSPIN_LOCK lock) noexcept {
    auto load_next = [&q] {
        return typename P::template atomic_ref<KSPIN_LOCK_QUEUE*>(q.Next).load(
            std::memory_order_acquire);
    };
    KSPIN_LOCK_QUEUE* next = load_next();
    if (next == nullptr) {
        // Our entry is still the tail: free the lock. OWNER is cleared
        // first, because after a successful compare-exchange the lock may be
        // taken, released and destroyed at once: nothing here touches it
        // again (the entry is ours and lives on).
        detail::store_lock<P>(q, lock);
        KSPIN_LOCK expected = entry_word(q);
        if (typename P::template atomic_ref<KSPIN_LOCK>(*lock).compare_exchange_strong(
                expected, 0, std::memory_order_release, std::memory_order_relaxed))
            return;
        // A successor has swapped itself in but not linked yet
        // (KxWaitForLockChainValid [wrk-queuelock]).
        if constexpr (M == Mutant::no_wait_for_link) {
            next = load_next();
            if (next == nullptr) return;  // the hand-off is lost
        } else {
            P::spin_until([&] { return (next = load_next()) != nullptr; }, Deadline::never());
        }
    }
    if constexpr (M == Mutant::skip_successor) {
        if (KSPIN_LOCK_QUEUE* after = typename P::template atomic_ref<KSPIN_LOCK_QUEUE*>(next->Next)
                                          .load(std::memory_order_acquire))
            next = after;
    }
    // Hand off: the successor's WAIT clears and OWNER is set in one store.
    typename P::template atomic_ref<nt::PKSPIN_LOCK>(next->Lock)
        .store(detail::with_flags(lock, LOCK_QUEUE_OWNER), std::memory_order_release);
    // Unlinked now; leave the entry as kmtest reads a released handle (Next
    // NULL, Lock the lock's address) [kmt-KeSpinLock].
    detail::store_next<P>(q, nullptr);
    detail::store_lock<P>(q, lock);
}

template <class P = platform::Native, Mutant M = Mutant::none>
inline void release_queued(KSPIN_LOCK_QUEUE& q) noexcept {
    release_queued<P, M>(q, detail::without_flags(detail::load_lock<P>(q)));
}

// The entry holds the lock (OWNER set, WAIT clear).
inline bool entry_owns(const KSPIN_LOCK_QUEUE& q) noexcept {
    return (reinterpret_cast<ULONG_PTR>(q.Lock) & kQueueFlags) == LOCK_QUEUE_OWNER;
}

}  // namespace kmlab::spin_lock
