// Linux futex: the only file that includes <linux/futex.h> is futex.cpp.
//
// The primitive every blocking path in kmlab ends in: block while a 32-bit
// word still holds an expected value, until woken or a deadline passes.
// Private futexes (the words never cross processes).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace kmlab::backends::sys {

using deadline_t = std::chrono::steady_clock::time_point;

// Blocks while `word == expected`; returns false only when `deadline` (if not
// null) has passed. Spurious returns are possible: callers re-check the word.
bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                const deadline_t* deadline) noexcept;
// Wakes up to `count` threads blocked on `word`; returns how many were woken.
int futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept;

// Asymmetric fence, heavy side: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
// makes every other running thread of the process execute a full barrier, so
// a lock's hot path may pair it with a compiler-only fence (folly's
// asymmetric_thread_fence_heavy/light). Returns false where the kernel refuses
// membarrier; it then issues a seq_cst fence, which does NOT pair with a
// light fence, and callers must bound their sleeps instead.
bool heavy_fence() noexcept;
inline void light_fence() noexcept {
    std::atomic_signal_fence(std::memory_order_seq_cst);
}

}  // namespace kmlab::backends::sys
