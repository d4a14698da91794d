// The futex backend: Linux futex syscalls, private to the process. The default.
#pragma once

#include "backends/backend.hpp"
#include "backends/futex.hpp"

namespace kmlab::backends {

struct Futex {
    static constexpr std::string_view name() { return "futex"; }
    static bool wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     const deadline_t* deadline) noexcept {
        return sys::futex_wait(word, expected, deadline);
    }
    static void wake_one(std::atomic<std::uint32_t>& word) noexcept { sys::futex_wake(word, 1); }
    static void wake_all(std::atomic<std::uint32_t>& word) noexcept {
        sys::futex_wake(word, INT32_MAX);
    }
};
static_assert(WaitBackend<Futex>);

}  // namespace kmlab::backends
