// The lock-bit mutex algorithm shared by FAST_MUTEX, KGUARDED_MUTEX and the
// idiomatic FastMutex / GuardedMutex over every sleeping backend. It follows
// ReactOS's KiAcquireGuardedMutex / KeReleaseGuardedMutex [ros-kex][ros-wait],
// so the Count word has the kernel's encoding (SEMANTICS.md 2.3(b)):
//
//   bit 0 (FM_LOCK_BIT)            1 = free, 0 = held
//   bit 1 (FM_LOCK_WAITER_WOKEN)   a waiter has been woken and is on its way
//   bits 2..31 (FM_LOCK_WAITER_INC) number of blocked waiters, 4 per waiter
//
// Legal states: 1 free; 0 held, no waiters; 4k held with k waiters; 4k+2 or
// 4k+3 while one woken waiter races for the lock. Invariant: at most one
// woken waiter at a time, so a release wakes at most one thread, and a
// waiter that loses the race turns WOKEN back into a waiter (+WOKEN, because
// 2 * WOKEN == INC).
//
// A Gate is anything with wait() (block until signalled, consuming one signal)
// and signal() (release one waiter, or let the next wait() pass): the
// FAST_MUTEX's KEVENT or the KGUARDED_MUTEX's KGATE (dispatcher/gate.hpp), or
// a futex word holding a count of signals (backends::FutexGate,
// <kmlab/backends/futex_gate.hpp>). A gate may name its platform
// (<kmlab/platform/platform.hpp>) and a spin-before-park time.
//
// One departure from the kernel's instruction sequence, for memory safety:
// the release decides whether to wake in the same compare-exchange that frees
// the lock (ReactOS adds the lock bit, then converts a waiter with a second
// compare-exchange). After the lock is visibly free the releaser touches the
// mutex only through gate.signal(), and only when it has converted a waiter
// into the woken mark: that waiter cannot leave before the signal, so the
// mutex still has a user and cannot have been destroyed. With the two-step
// release, a thread that freed the lock and was preempted before its second
// compare-exchange wrote to a mutex that its next owner had already unlocked
// and destroyed, which std::mutex and POSIX allow (tests/model explores it).
// The encoding, the states and what each waiter sees are the kernel's.
#pragma once

#include <atomic>
#include <chrono>

#include <kmlab/kernel/ntdef.hpp>
#include <kmlab/platform/platform.hpp>

namespace kmlab::lock_bit {

using nt::FM_LOCK_BIT;
using nt::FM_LOCK_WAITER_INC;
using nt::FM_LOCK_WAITER_WOKEN;
using nt::LONG;
using nt::ULONG;

// InterlockedBitTestAndReset(&Count, 0): true if the lock was free and is now
// ours. Acquire ordering makes the previous owner's critical section visible.
template <class P = platform::Native>
inline bool try_acquire(LONG& count) noexcept {
    return (typename P::template atomic_ref<LONG>(count).fetch_and(~FM_LOCK_BIT,
                                                                   std::memory_order_acquire) &
            FM_LOCK_BIT) != 0;
}

// InterlockedCompareExchange(&Count, 0, 1): succeeds only when free with no
// waiters, as ExTryToAcquireFastMutex does [ros-exh].
template <class P = platform::Native>
inline bool try_acquire_uncontended(LONG& count) noexcept {
    LONG expected = FM_LOCK_BIT;
    return typename P::template atomic_ref<LONG>(count).compare_exchange_strong(
        expected, 0, std::memory_order_acquire, std::memory_order_relaxed);
}

template <class Gate>
[[gnu::noinline, gnu::cold]] void acquire_slow(LONG& count, ULONG& contention, Gate& gate) {
    using P = platform::platform_of<Gate>;
    std::atomic_ref<ULONG>(contention).fetch_add(1, std::memory_order_relaxed);
    typename P::template atomic_ref<LONG> c(count);
    if constexpr (platform::spin_before_park<Gate>() > std::chrono::nanoseconds::zero()) {
        // A holder that is running releases within a critical section's time:
        // test, then test-and-set, before paying for a sleep and a wake.
        const auto until = Deadline::at(P::now() + platform::spin_before_park<Gate>());
        if (P::spin_until(
                [&] {
                    return (c.load(std::memory_order_relaxed) & FM_LOCK_BIT) != 0 &&
                           try_acquire<P>(count);
                },
                until))
            return;
    }
    LONG bits_to_remove = FM_LOCK_BIT;
    LONG bits_to_add = FM_LOCK_WAITER_INC;
    LONG old = c.load(std::memory_order_relaxed);
    for (;;) {
        if (old & FM_LOCK_BIT) {
            if (c.compare_exchange_weak(old, old ^ bits_to_remove, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
                return;
            }
        } else if (c.compare_exchange_weak(old, old + bits_to_add, std::memory_order_relaxed,
                                           std::memory_order_relaxed)) {
            gate.wait();
            // We are the woken waiter: take LOCK and WOKEN together, or put
            // WOKEN back as a waiter mark if someone barged in first.
            bits_to_remove = FM_LOCK_BIT | FM_LOCK_WAITER_WOKEN;
            bits_to_add = FM_LOCK_WAITER_WOKEN;
            old = c.load(std::memory_order_relaxed);
        }
    }
}

template <class Gate>
inline void acquire(LONG& count, ULONG& contention, Gate& gate) {
    if (!try_acquire<platform::platform_of<Gate>>(count)) [[unlikely]]
        acquire_slow(count, contention, gate);
}

// `old` is Count as last seen, held with waiters or a woken mark: free the
// lock and, when there are waiters and none is woken yet, turn one into the
// woken mark, in one compare-exchange; then signal the gate for it.
template <class Gate>
[[gnu::noinline, gnu::cold]] void release_slow(LONG& count, LONG old, Gate& gate) {
    typename platform::platform_of<Gate>::template atomic_ref<LONG> c(count);
    for (;;) {
        const bool wake = old >= FM_LOCK_WAITER_INC && (old & FM_LOCK_WAITER_WOKEN) == 0;
        const LONG desired =
            old + FM_LOCK_BIT + (wake ? FM_LOCK_WAITER_WOKEN - FM_LOCK_WAITER_INC : 0);
        if (c.compare_exchange_weak(old, desired, std::memory_order_release,
                                    std::memory_order_relaxed)) {
            if (wake) gate.signal();
            return;
        }
    }
}

// Release ordering publishes the critical section to the next owner. The
// common case (held, nobody waiting) is one compare-exchange.
template <class Gate>
inline void release(LONG& count, Gate& gate) {
    LONG old = 0;
    if (!typename platform::platform_of<Gate>::template atomic_ref<LONG>(count)
             .compare_exchange_strong(old, FM_LOCK_BIT, std::memory_order_release,
                                      std::memory_order_relaxed)) [[unlikely]]
        release_slow(count, old, gate);
}

}  // namespace kmlab::lock_bit
