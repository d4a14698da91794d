// The futex system calls themselves, private to platform/src: futex.cpp's
// functions are these, and the schedule explorer's copy of them
// (explore/src/futex_seam.cpp, a link seam) falls back to these outside a
// run, so the two never drift apart.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

#include <kmlab/platform/deadline.hpp>

namespace kmlab::platform::sys::calls {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

inline std::uint32_t* addr(std::atomic<std::uint32_t>& word) noexcept {
    // The kernel reads the word itself; atomic<uint32_t> is layout-compatible.
    return reinterpret_cast<std::uint32_t*>(&word);
}

inline bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       Deadline deadline) noexcept {
    if (deadline.is_never()) {
        syscall(SYS_futex, addr(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
        return true;
    }
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, which is what
    // steady_clock reads on Linux: no drift from recomputing relative timeouts.
    // poll() is the clock's minimum, so it has passed here too.
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        deadline.time_point().time_since_epoch())
                        .count();
    if (ns <= 0) return false;
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    long rc = syscall(SYS_futex, addr(word), FUTEX_WAIT_BITSET_PRIVATE, expected, &ts, nullptr,
                      FUTEX_BITSET_MATCH_ANY);
    return !(rc == -1 && errno == ETIMEDOUT);
}

inline int futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
    return static_cast<int>(
        syscall(SYS_futex, addr(word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0));
}

}  // namespace kmlab::platform::sys::calls
