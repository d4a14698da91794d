// The futex backend: Linux futex syscalls, private to the process. The default.
#pragma once

#include <kmlab/backends/backend.hpp>
#include <kmlab/platform/futex.hpp>

namespace kmlab::backends {

struct Futex {
    static constexpr std::string_view name() { return "futex"; }
    // Spin before parking: about one futex sleep/wake round trip on the
    // 2-core VM of BENCHMARKING.md, so a waiter never spins much longer than
    // parking would have cost it. 1 us measured best of 0.5, 1 and 4 us at 2
    // threads (cs_ns:50) and made no difference at 16 (2026-11-20).
    static constexpr std::chrono::nanoseconds kSpinBeforePark = std::chrono::microseconds(1);
    static bool wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     Deadline deadline) noexcept {
        return platform::sys::futex_wait(word, expected, deadline);
    }
    static void wake_one(std::atomic<std::uint32_t>& word) noexcept {
        platform::sys::futex_wake(word, 1);
    }
};
static_assert(WaitBackend<Futex>);

}  // namespace kmlab::backends
