// The spin backend: busy-wait with bounded exponential backoff, then yield
// (platform::Native::spin_until says how long and why).
//
// Waiters never sleep in the kernel, so wake_one has nothing to do:
// a waiter notices the word change by itself.
#pragma once

#include <kmlab/backends/backend.hpp>

namespace kmlab::backends {

struct Spin {
    static constexpr std::string_view name() { return "spin"; }

    static bool wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     Deadline deadline) noexcept {
        return platform::Native::spin_until(
            [&] { return word.load(std::memory_order_acquire) != expected; }, deadline);
    }
    // Waiters never sleep, so a lock may release with a plain store.
    static constexpr bool kNeverSleeps = true;
    static void wake_one(std::atomic<std::uint32_t>&) noexcept {}
};
static_assert(WaitBackend<Spin>);

}  // namespace kmlab::backends
