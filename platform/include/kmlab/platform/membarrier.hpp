// The asymmetric fence pair on Linux: a heavy fence (membarrier) that a rare
// path pays so that a frequent path may get by with a compiler-only light
// fence. Used by the one-locked-instruction lock-bit release
// (mutexes/raw.hpp, OneLockBit): its releaser stores the free lock with a
// plain store and then reads a waiter count, and a waiter, after counting
// itself, makes the heavy fence so that the pair cannot both miss (an
// asymmetric Dekker pairing, as folly's asymmetricThreadFenceHeavy /
// asymmetricThreadFenceLight [folly-amb]).
//
// MEMBARRIER_CMD_PRIVATE_EXPEDITED makes every other running thread of this
// process execute a full memory barrier before the call returns; a thread not
// running has passed a context switch, itself a full barrier [man-membarrier].
// So once it returns, every store another thread of this process made before
// its (virtual) barrier point is visible to the caller, and every load another
// thread makes after that point sees what the caller stored before the call.
#pragma once

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace kmlab::platform::sys {

// The heavy side: true if every thread's stores are now visible (the
// membarrier ran), false if the kernel refused it (older than 4.14, or a
// seccomp filter): the caller then has only a fence of its own, and must not
// rely on the pairing (OneLockBit then bounds its sleeps).
// The process registers its intent once (the expedited command requires it);
// the registration is kept for the process's life.
inline bool heavy_fence() noexcept {
    static const bool registered =
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return registered && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
}

// The light side: only the compiler may not move memory accesses across it;
// the hardware may, and the heavy fence is what covers that.
inline void light_fence() noexcept {
    std::atomic_signal_fence(std::memory_order_seq_cst);
}

}  // namespace kmlab::platform::sys
