// The two reader/writer lock algorithms of the lock family, written once as
// templates over a Platform P (platform/platform.hpp), so that production
// (platform::Native, at zero cost) and the schedule explorer (tests/model,
// model_rw_lock_test.cpp) run the same code:
//
//  * ex_spin: EX_SPIN_LOCK, a 32-bit reader/writer spin lock
//    [ddi:reader-writer-spin-locks];
//  * push: EX_PUSH_LOCK, a pointer-sized reader/writer lock whose waiters
//    sleep [ddi:exinitializepushlock][ros-ex-h][ros-pushlock].
//
// Both keep the uncontended paths to one atomic read-modify-write per
// acquire and one per release. Every shared field goes through
// P::atomic_ref and every wait through P::spin_until or the push lock's
// Park, so nothing the threads race on is outside the explorer's view.
//
// `Mutant` breaks an algorithm on purpose; only the explorer's must-find
// tests instantiate anything but Mutant::none.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>

#include <kmlab/kernel/ntdef.hpp>
#include <kmlab/platform/futex.hpp>
#include <kmlab/platform/platform.hpp>

namespace kmlab::rw_lock {

using nt::LONG;
using nt::ULONG_PTR;

enum class Mutant : std::uint8_t {
    none,
    // A shared acquire that takes the lock while a writer holds it (or, for
    // EX_SPIN_LOCK, waits for it).
    shared_ignores_exclusive,
    // The push lock's releases free the lock but never wake a sleeper.
    release_forgets_wake,
    // A reader joins other readers although a writer waits (EX_SPIN_LOCK: a
    // writer that has claimed the lock; EX_PUSH_LOCK: a counted exclusive
    // waiter). No writer preference; exclusion still holds.
    readers_pass_waiting_writer,
    // The push lock's park_once reads the park's ticket after the
    // compare-exchange that sets kWaiting (a lost wake-up).
    ticket_after_mark,
    // The push lock's releases free the lock but leave kWaiting set (the
    // word never returns to 0).
    release_keeps_waiting,
};

// =====================================================================
// EX_SPIN_LOCK
// =====================================================================
//
// The LONG word:
//   bit 31 (kExclusive)   a writer owns the lock, or has claimed it and waits
//                         for the readers to drain
//   bits 0..30            the number of readers holding it
// 0 is free [ddi:exacquirespinlockexclusive: "initialize the spin lock to
// zero"]. Legal states: 0; n (n readers); kExclusive | n (a writer waits for
// n readers to leave); kExclusive (a writer owns it).
//
// Writer preference: "While the writer waits, no new reader threads can
// acquire the lock. Instead, a reader ... must first wait for the writer to
// acquire and release the lock" [ddi:reader-writer-spin-locks]. That
// sentence is about a writer waiting for the readers inside to drain. A
// writer therefore claims bit 31 first (from then on no reader enters:
// readers add themselves only by a compare-exchange from a value with bit 31
// clear), then waits for the count to drain. Decision, kmlab: readers are
// held back once a writer has claimed the lock, not before: a writer
// queued behind another writer (spinning for bit 31 to clear) holds back
// no one, and when the owner releases, the new readers and the queued
// writers race for the word. (The word has no room to count queued
// writers, and the documentation says nothing about them.) A reader that
// holds the lock and acquires it again while a writer waits deadlocks,
// which is why the documentation forbids recursion.
//
// Memory order: a reader's entering compare-exchange and the writer's
// drain load are acquire, the reader's decrement and the writer's clearing
// store are release: each critical section happens before the next
// conflicting one. The writer's claim is acquire too, for the previous
// writer's release store.
//
// Waiting in user mode: P::spin_until spins briefly, then yields
// (Native::spin_until), so a waiter never burns a core forever; under the
// explorer it blocks on what it read.
namespace ex_spin {

inline constexpr LONG kExclusive = INT32_MIN;  // bit 31
inline constexpr LONG kReaders = INT32_MAX;    // bits 0..30

// Must a reader that sees v wait? While bit 31 is set, yes.
template <Mutant M>
constexpr bool reader_must_wait(LONG v) noexcept {
    if (M == Mutant::shared_ignores_exclusive) return false;
    if (M == Mutant::readers_pass_waiting_writer && (v & kReaders) != 0) return false;
    return (v & kExclusive) != 0;
}

// One compare-exchange from the value expected (0: free) upward; false when
// a writer holds or waits. (ExTryAcquireSpinLockSharedAtDpcLevel.)
template <class P = platform::Native, Mutant M = Mutant::none>
inline bool try_acquire_shared(LONG& lock) noexcept {
    typename P::template atomic_ref<LONG> a(lock);
    LONG v = 0;
    for (;;) {
        if (reader_must_wait<M>(v)) return false;
        if (a.compare_exchange_weak(v, v + 1, std::memory_order_acquire, std::memory_order_relaxed))
            return true;
    }
}

template <class P = platform::Native, Mutant M = Mutant::none>
[[gnu::noinline]] void acquire_shared_slow(LONG& lock, LONG v) {
    typename P::template atomic_ref<LONG> a(lock);
    for (;;) {
        if (reader_must_wait<M>(v)) {
            // A writer holds it or waits for it: wait until it is gone.
            P::spin_until(
                [&] {
                    v = a.load(std::memory_order_relaxed);
                    return !reader_must_wait<M>(v);
                },
                Deadline::never());
        }
        if (a.compare_exchange_weak(v, v + 1, std::memory_order_acquire, std::memory_order_relaxed))
            return;
    }
}

// Uncontended: one compare-exchange (0 -> 1). A second reader pays one
// failed compare-exchange, which returns the value to retry from.
template <class P = platform::Native, Mutant M = Mutant::none>
inline void acquire_shared(LONG& lock) {
    LONG v = 0;
    if (!typename P::template atomic_ref<LONG>(lock).compare_exchange_strong(
            v, 1, std::memory_order_acquire, std::memory_order_relaxed)) [[unlikely]]
        acquire_shared_slow<P, M>(lock, v);
}

// One decrement; a writer draining the readers sees it.
template <class P = platform::Native>
inline void release_shared(LONG& lock) noexcept {
    typename P::template atomic_ref<LONG>(lock).fetch_sub(1, std::memory_order_release);
}

// Only from free: a try never claims bit 31 and then backs out, so it never
// holds readers back. (ExTryAcquireSpinLockExclusiveAtDpcLevel.)
template <class P = platform::Native>
inline bool try_acquire_exclusive(LONG& lock) noexcept {
    LONG v = 0;
    return typename P::template atomic_ref<LONG>(lock).compare_exchange_strong(
        v, kExclusive, std::memory_order_acquire, std::memory_order_relaxed);
}

struct NoHook {
    void operator()() const noexcept {}
};

template <class P, class Claimed>
[[gnu::noinline]] void acquire_exclusive_slow(LONG& lock, LONG v, Claimed& claimed) {
    typename P::template atomic_ref<LONG> a(lock);
    // Claim bit 31 (another writer may hold it: wait for it to go).
    for (;;) {
        if ((v & kExclusive) != 0) {
            P::spin_until(
                [&] {
                    v = a.load(std::memory_order_relaxed);
                    return (v & kExclusive) == 0;
                },
                Deadline::never());
        }
        if (a.compare_exchange_weak(v, v | kExclusive, std::memory_order_acquire,
                                    std::memory_order_relaxed))
            break;
    }
    claimed();
    // From here no reader enters; wait for those inside to leave.
    if (v != 0)
        P::spin_until([&] { return a.load(std::memory_order_acquire) == kExclusive; },
                      Deadline::never());
}

// Uncontended: one compare-exchange (0 -> bit 31). `claimed` runs right
// after bit 31 is ours, before the readers drain: the explorer's
// writer-preference check hooks in there; production passes nothing.
template <class P = platform::Native, class Claimed = NoHook>
inline void acquire_exclusive(LONG& lock, Claimed claimed = {}) {
    LONG v = 0;
    if (typename P::template atomic_ref<LONG>(lock).compare_exchange_strong(
            v, kExclusive, std::memory_order_acquire, std::memory_order_relaxed)) [[likely]] {
        claimed();
        return;
    }
    acquire_exclusive_slow<P>(lock, v, claimed);
}

// The owner's word is exactly kExclusive (readers add themselves only when
// bit 31 is clear, writers only claim it when clear): one store frees it.
template <class P = platform::Native>
inline void release_exclusive(LONG& lock) noexcept {
    typename P::template atomic_ref<LONG>(lock).store(0, std::memory_order_release);
}

// The sole reader, with no writer waiting, becomes the writer: 1 -> bit 31.
// Any other reader (count > 1) or a waiting writer (bit 31) makes it fail
// and the caller keeps its shared hold [ddi:extryconvertsharedspinlockexclusive].
template <class P = platform::Native>
inline bool try_convert_shared_to_exclusive(LONG& lock) noexcept {
    LONG v = 1;
    return typename P::template atomic_ref<LONG>(lock).compare_exchange_strong(
        v, kExclusive, std::memory_order_acquire, std::memory_order_relaxed);
}

// What the word says about a hold, for the routines' checks.
constexpr bool held_exclusive(LONG v) noexcept {
    return v == kExclusive;
}
constexpr LONG readers(LONG v) noexcept {
    return v & kReaders;
}

}  // namespace ex_spin

// =====================================================================
// EX_PUSH_LOCK
// =====================================================================
//
// The ULONG_PTR word, in the kernel's bit positions where the states agree
// (the EX_PUSH_LOCK union of ntoskrnl's symbols: Locked:1, Waiting:1,
// Waking:1, MultipleShared:1, Shared:60 [ros-ex-h]):
//   bit 0        kLocked   held, shared or exclusive
//   bit 1        kWaiting  a thread sleeps, or is about to, until a release
//   bits 2, 3              unused (Waking, MultipleShared)
//   bits 4..39   the share count, kShareInc per reader
//   bits 40..63  the exclusive waiters: writers that have parked and do not
//                own the lock yet, kExclusiveWaiterInc each (kmlab's, see
//                below; the kernel finds them in its wait-block chain)
// So the uncontended states are the kernel's: 0 free, 0x1 exclusive,
// 0x11 one reader, 0x21 two [ros-ex-h: ExAcquirePushLockShared sets
// EX_PUSH_LOCK_LOCK | EX_PUSH_LOCK_SHARE_INC]. Invariants: kWaiting is set
// only on a held word or on a free word with exclusive waiters; a release
// that frees the lock clears kLocked, the shares and kWaiting and keeps the
// exclusive waiters' count. So the word is exactly 0 when free and nobody
// waits, and it always returns to 0 once every acquire has been released.
//
// Writer preference [ddi:exacquirepushlockshared: "The caller is put into a
// wait state if there is an exclusive waiter"]: a writer counts itself as an
// exclusive waiter in the compare-exchange that marks its first park, and
// uncounts itself in the one that takes the lock. While the count is not 0
// no reader enters: not while the lock is held, nor once it is freed (the
// free word keeps the count, and only a writer may take it). Any writer may
// take a word that has no kLocked and no shares (exclusive grants are not
// fair [ddi:exinitializepushlock]); a counted one subtracts itself. A
// single "exclusive waiter" bit cannot do this: the release that frees the
// lock wakes every sleeper, and once one writer had taken the lock and
// cleared the bit, nothing would hold readers back from the other woken
// writers until each had parked again. The count is exact, so the last
// counted writer's take returns the lock to reader-enterable, and a lock
// that no one waits for again ends at 0. Decision, kmlab: 24 bits of count
// (16M parked writers) and 36 bits of shares, on a 64-bit word only.
//
// Decision, kmlab: where Windows chains its waiters' wait blocks through
// the word (the upper bits become a pointer to the newest, each block with
// its own event, ExfAcquirePushLockExclusive / ExfWakePushLock
// [ros-pushlock]), the emulator parks them on a futex sequence word found
// by the lock's address (Park, below): the word keeps its counts while
// contended, and a release that clears kWaiting wakes every sleeper, which
// then competes again. The wake-all costs a herd on a contended release;
// the uncontended paths are the kernel's single compare-exchange.
//
// Sleeping without a lost wake-up: a thread reads the park's ticket
// (seq_cst), then sets kWaiting with a compare-exchange on a word it may not
// take, then sleeps while the ticket is unchanged. The next release reads
// kWaiting in its own read-modify-write (every take keeps kWaiting, only a
// release clears it), which comes after the sleeper's, and only then bumps
// the ticket and wakes: the sleeper either sees the new ticket or is woken.
// Every step is seq_cst so that the ticket read cannot move after the
// compare-exchange (Mutant::ticket_after_mark: the explorer finds the lost
// wake-up). A reader may park on a free word held for the exclusive
// waiters: the writer that takes it keeps kWaiting, so its release wakes
// the reader.
//
// Memory safety: once a release has freed the word it touches only the
// park (a global table in production), never the lock, so the last owner
// may free the lock right after its release.
namespace push {

static_assert(sizeof(ULONG_PTR) == 8, "the push lock's word layout needs 64 bits");

inline constexpr ULONG_PTR kLocked = 0x1;
inline constexpr ULONG_PTR kWaiting = 0x2;
inline constexpr ULONG_PTR kShareInc = 0x10;
inline constexpr ULONG_PTR kShareMask = 0x000000FFFFFFFFF0;  // bits 4..39
inline constexpr ULONG_PTR kExclusiveWaiterInc = ULONG_PTR{1} << 40;
inline constexpr ULONG_PTR kExclusiveWaiterMask = ~ULONG_PTR{0} << 40;  // bits 40..63

constexpr ULONG_PTR shares(ULONG_PTR v) noexcept {
    return (v & kShareMask) / kShareInc;
}
constexpr ULONG_PTR exclusive_waiters(ULONG_PTR v) noexcept {
    return v >> 40;
}
constexpr bool has_shares(ULONG_PTR v) noexcept {
    return (v & kShareMask) != 0;
}
constexpr bool held_exclusive(ULONG_PTR v) noexcept {
    return (v & kLocked) != 0 && !has_shares(v);
}
// A writer may take v: not held (the exclusive waiters' count and kWaiting
// may be set, and the taker keeps kWaiting for the sleepers).
constexpr bool exclusive_grantable(ULONG_PTR v) noexcept {
    return (v & (kLocked | kShareMask)) == 0;
}

// Production park: 64 futex sequence words, chosen by the lock's address,
// each on its own cache line. Collisions only cost spurious wake-ups.
struct NativePark {
    using platform = platform::Native;
    // Spin this long for the lock before sleeping (the kernel's push lock
    // spins ExPushLockSpinCount times on a multiprocessor [ros-pushlock]).
    static constexpr std::chrono::nanoseconds kSpinBeforePark = std::chrono::microseconds(2);

    struct alignas(64) Bucket {
        std::atomic<std::uint32_t> seq{0};
    };
    static Bucket& bucket(const void* lock) noexcept {
        static Bucket table[64];
        const auto a = reinterpret_cast<std::uintptr_t>(lock);
        return table[(a >> 3 ^ a >> 9) & 63];
    }
    static std::uint32_t ticket(const void* lock) noexcept {
        return bucket(lock).seq.load(std::memory_order_seq_cst);
    }
    static void wait(const void* lock, std::uint32_t ticket) noexcept {
        ::kmlab::platform::sys::futex_wait(bucket(lock).seq, ticket, Deadline::never());
    }
    static void wake_all(const void* lock) noexcept {
        Bucket& b = bucket(lock);
        b.seq.fetch_add(1, std::memory_order_seq_cst);
        ::kmlab::platform::sys::futex_wake(b.seq, INT_MAX);
    }
};

template <class Park>
using platform_of = platform::platform_of<Park>;

// Can a reader enter from v right now? Free or shared, and no exclusive
// waiter ([ddi:exacquirepushlockshared]: "The caller is put into a wait
// state if there is an exclusive waiter").
template <Mutant M>
constexpr bool shared_grantable(ULONG_PTR v) noexcept {
    if (v == 0) return true;
    if (M == Mutant::shared_ignores_exclusive) return true;
    const bool free_or_shared = (v & kLocked) == 0 || has_shares(v);
    if (M == Mutant::readers_pass_waiting_writer) return free_or_shared;
    return free_or_shared && exclusive_waiters(v) == 0;
}
// From 0 (the only free word a reader may enter) or a shared hold.
constexpr ULONG_PTR shared_next(ULONG_PTR v) noexcept {
    return (v | kLocked) + kShareInc;
}
// What a release that frees the lock leaves: the exclusive waiters' count.
template <Mutant M = Mutant::none>
constexpr ULONG_PTR freed(ULONG_PTR v) noexcept {
    if (M == Mutant::release_keeps_waiting) return v & (kExclusiveWaiterMask | kWaiting);
    return v & kExclusiveWaiterMask;
}

// Sleeps once until a release, or returns at once when the word turns
// `ready` (grantable) before the thread could mark itself waiting. `marks`
// is added with kWaiting in the marking compare-exchange (a writer's first
// park: kExclusiveWaiterInc). `v` is the word as last seen; on return it is
// the word as seen last. Returns whether the marks went in.
template <Mutant M = Mutant::none, class Park, class Ready>
bool park_once(ULONG_PTR& lock, ULONG_PTR& v, ULONG_PTR marks, Park& park, Ready ready) {
    typename platform_of<Park>::template atomic_ref<ULONG_PTR> a(lock);
    std::uint32_t t = 0;
    if constexpr (M != Mutant::ticket_after_mark) t = park.ticket(&lock);
    for (;;) {
        if (ready(v)) return false;  // grantable meanwhile: go and compete
        if (a.compare_exchange_weak(v, (v | kWaiting) + marks, std::memory_order_seq_cst,
                                    std::memory_order_seq_cst))
            break;
    }
    if constexpr (M == Mutant::ticket_after_mark) t = park.ticket(&lock);
    park.wait(&lock, t);
    v = a.load(std::memory_order_relaxed);
    return true;
}

template <class Park, class Ready>
bool spin_a_while(ULONG_PTR& lock, ULONG_PTR& v, Ready ready) {
    using P = platform_of<Park>;
    if constexpr (platform::spin_before_park<Park>() > std::chrono::nanoseconds::zero()) {
        typename P::template atomic_ref<ULONG_PTR> a(lock);
        return P::spin_until(
            [&] {
                v = a.load(std::memory_order_relaxed);
                return ready(v);
            },
            Deadline::at(P::now() + platform::spin_before_park<Park>()));
    } else {
        (void)lock, (void)v, (void)ready;
        return false;
    }
}

template <Mutant M = Mutant::none, class Park>
[[gnu::noinline]] void acquire_exclusive_slow(ULONG_PTR& lock, ULONG_PTR v, Park& park) {
    typename platform_of<Park>::template atomic_ref<ULONG_PTR> a(lock);
    const auto ready = [](ULONG_PTR x) { return exclusive_grantable(x); };
    bool spun = false;
    ULONG_PTR counted = 0;  // kExclusiveWaiterInc once this writer is counted
    for (;;) {
        if (exclusive_grantable(v)) {
            // Keeps kWaiting and the other waiters' count; uncounts itself.
            if (a.compare_exchange_weak(v, (v | kLocked) - counted, std::memory_order_acquire,
                                        std::memory_order_relaxed))
                return;
            continue;
        }
        if (!spun) {
            spun = true;
            if (spin_a_while<Park>(lock, v, ready)) continue;
        }
        const ULONG_PTR marks = counted == 0 ? kExclusiveWaiterInc : 0;
        if (park_once<M>(lock, v, marks, park, ready)) counted = kExclusiveWaiterInc;
    }
}

// Uncontended: one compare-exchange (0 -> kLocked).
template <Mutant M = Mutant::none, class Park>
inline void acquire_exclusive(ULONG_PTR& lock, Park& park) {
    ULONG_PTR v = 0;
    if (!typename platform_of<Park>::template atomic_ref<ULONG_PTR>(lock).compare_exchange_strong(
            v, kLocked, std::memory_order_acquire, std::memory_order_relaxed)) [[unlikely]]
        acquire_exclusive_slow<M>(lock, v, park);
}

template <class P>
[[gnu::noinline]] bool try_acquire_exclusive_slow(ULONG_PTR& lock, ULONG_PTR v) noexcept {
    typename P::template atomic_ref<ULONG_PTR> a(lock);
    while (exclusive_grantable(v)) {
        if (a.compare_exchange_weak(v, v | kLocked, std::memory_order_acquire,
                                    std::memory_order_relaxed))
            return true;
    }
    return false;
}

// Never waits: takes any word a writer may take, ahead of the counted
// waiters, as an unfair grant may. Uncontended: one compare-exchange from 0;
// a free word that keeps exclusive waiters is the out-of-line case.
template <class P = platform::Native>
inline bool try_acquire_exclusive(ULONG_PTR& lock) noexcept {
    ULONG_PTR v = 0;
    if (typename P::template atomic_ref<ULONG_PTR>(lock).compare_exchange_strong(
            v, kLocked, std::memory_order_acquire, std::memory_order_relaxed)) [[likely]]
        return true;
    return exclusive_grantable(v) && try_acquire_exclusive_slow<P>(lock, v);
}

template <Mutant M = Mutant::none, class Park>
[[gnu::noinline]] void acquire_shared_slow(ULONG_PTR& lock, ULONG_PTR v, Park& park) {
    typename platform_of<Park>::template atomic_ref<ULONG_PTR> a(lock);
    const auto grantable = [](ULONG_PTR x) { return shared_grantable<M>(x); };
    bool spun = false;
    for (;;) {
        if (shared_grantable<M>(v)) {
            if (a.compare_exchange_weak(v, shared_next(v), std::memory_order_acquire,
                                        std::memory_order_relaxed))
                return;
            continue;
        }
        if (!spun) {
            spun = true;
            if (spin_a_while<Park>(lock, v, grantable)) continue;
        }
        park_once<M>(lock, v, 0, park, grantable);
    }
}

// Uncontended: one compare-exchange (0 -> kLocked | kShareInc), as the
// kernel's inline fast path [ros-ex-h]; a second reader pays one failed
// compare-exchange, which returns the value to retry from.
template <Mutant M = Mutant::none, class Park>
inline void acquire_shared(ULONG_PTR& lock, Park& park) {
    ULONG_PTR v = 0;
    if (!typename platform_of<Park>::template atomic_ref<ULONG_PTR>(lock).compare_exchange_strong(
            v, kLocked | kShareInc, std::memory_order_acquire, std::memory_order_relaxed))
        [[unlikely]]
        acquire_shared_slow<M>(lock, v, park);
}

template <class P = platform::Native, Mutant M = Mutant::none>
inline bool try_acquire_shared(ULONG_PTR& lock) noexcept {
    typename P::template atomic_ref<ULONG_PTR> a(lock);
    ULONG_PTR v = 0;
    for (;;) {
        if (!shared_grantable<M>(v)) return false;
        if (a.compare_exchange_weak(v, shared_next(v), std::memory_order_acquire,
                                    std::memory_order_relaxed))
            return true;
    }
}

template <Mutant M = Mutant::none, class Park>
[[gnu::noinline]] void release_exclusive_slow(ULONG_PTR& lock, Park& park) {
    // Held exclusive, only kWaiting and the waiters' count can have been
    // added: free the lock, keeping the count, in one read-modify-write,
    // then wake the sleepers.
    const ULONG_PTR old =
        typename platform_of<Park>::template atomic_ref<ULONG_PTR>(lock).fetch_and(
            freed<M>(~ULONG_PTR{0}), std::memory_order_seq_cst);
    if ((old & kWaiting) != 0 && M != Mutant::release_forgets_wake) park.wake_all(&lock);
}

// Uncontended: one compare-exchange (kLocked -> 0).
template <Mutant M = Mutant::none, class Park>
inline void release_exclusive(ULONG_PTR& lock, Park& park) {
    ULONG_PTR v = kLocked;
    if (!typename platform_of<Park>::template atomic_ref<ULONG_PTR>(lock).compare_exchange_strong(
            v, 0, std::memory_order_release, std::memory_order_relaxed)) [[unlikely]]
        release_exclusive_slow<M>(lock, park);
}

template <Mutant M = Mutant::none, class Park>
[[gnu::noinline]] void release_shared_slow(ULONG_PTR& lock, ULONG_PTR v, Park& park) {
    typename platform_of<Park>::template atomic_ref<ULONG_PTR> a(lock);
    for (;;) {
        if (shares(v) > 1) {
            if (a.compare_exchange_weak(v, v - kShareInc, std::memory_order_release,
                                        std::memory_order_relaxed))
                return;
            continue;
        }
        // The last reader frees the lock (keeping the waiters' count) and
        // takes kWaiting.
        if (a.compare_exchange_weak(v, freed<M>(v), std::memory_order_seq_cst,
                                    std::memory_order_relaxed)) {
            if ((v & kWaiting) != 0 && M != Mutant::release_forgets_wake) park.wake_all(&lock);
            return;
        }
    }
}

// Uncontended: one compare-exchange (kLocked | kShareInc -> 0) [ros-ex-h].
template <Mutant M = Mutant::none, class Park>
inline void release_shared(ULONG_PTR& lock, Park& park) {
    ULONG_PTR v = kLocked | kShareInc;
    if (!typename platform_of<Park>::template atomic_ref<ULONG_PTR>(lock).compare_exchange_strong(
            v, 0, std::memory_order_release, std::memory_order_relaxed)) [[unlikely]]
        release_shared_slow<M>(lock, v, park);
}

}  // namespace push

}  // namespace kmlab::rw_lock
