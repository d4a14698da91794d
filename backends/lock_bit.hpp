// The lock-bit mutex algorithm shared by FAST_MUTEX, KGUARDED_MUTEX and the
// idiomatic FastMutex / GuardedMutex over every backend. It follows ReactOS's
// KiAcquireGuardedMutex / KeReleaseGuardedMutex [ros-kex][ros-wait], so the
// Count word has the kernel's encoding (SEMANTICS.md 2.3(b)):
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
// FAST_MUTEX's KEVENT or the KGUARDED_MUTEX's KGATE (dispatcher/gate.hpp).
#pragma once

#include <atomic>

#include "backends/backend.hpp"
#include "kernel/ntdef.hpp"

namespace kmlab::backends::lock_bit {

using nt::FM_LOCK_BIT;
using nt::FM_LOCK_WAITER_INC;
using nt::FM_LOCK_WAITER_WOKEN;
using nt::LONG;
using nt::ULONG;

// InterlockedBitTestAndReset(&Count, 0): true if the lock was free and is now
// ours. Acquire ordering makes the previous owner's critical section visible.
inline bool try_acquire(LONG& count) noexcept {
    return (std::atomic_ref<LONG>(count).fetch_and(~FM_LOCK_BIT, std::memory_order_acquire) &
            FM_LOCK_BIT) != 0;
}

// InterlockedCompareExchange(&Count, 0, 1): succeeds only when free with no
// waiters, as ExTryToAcquireFastMutex does [ros-exh].
inline bool try_acquire_uncontended(LONG& count) noexcept {
    LONG expected = FM_LOCK_BIT;
    return std::atomic_ref<LONG>(count).compare_exchange_strong(
        expected, 0, std::memory_order_acquire, std::memory_order_relaxed);
}

template <class Gate>
[[gnu::noinline, gnu::cold]] void acquire_slow(LONG& count, ULONG& contention, Gate& gate) {
    std::atomic_ref<ULONG>(contention).fetch_add(1, std::memory_order_relaxed);
    std::atomic_ref<LONG> c(count);
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
    if (!try_acquire(count)) [[unlikely]]
        acquire_slow(count, contention, gate);
}

// `old` is Count before the release added the lock bit: there are waiters
// and none is woken yet, so convert one waiter into the woken mark and signal.
template <class Gate>
[[gnu::noinline, gnu::cold]] void release_slow(LONG& count, LONG old, Gate& gate) {
    old += FM_LOCK_BIT;
    const LONG desired = old + FM_LOCK_WAITER_WOKEN - FM_LOCK_WAITER_INC;
    if (std::atomic_ref<LONG>(count).compare_exchange_strong(
            old, desired, std::memory_order_relaxed, std::memory_order_relaxed)) {
        gate.signal();
    }
}

// Release ordering publishes the critical section to the next owner.
template <class Gate>
inline void release(LONG& count, Gate& gate) {
    const LONG old = std::atomic_ref<LONG>(count).fetch_add(FM_LOCK_BIT, std::memory_order_release);
    if (old != 0 && (old & FM_LOCK_WAITER_WOKEN) == 0) [[unlikely]]
        release_slow(count, old, gate);
}

}  // namespace kmlab::backends::lock_bit
