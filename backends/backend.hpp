// How a thread that cannot proceed waits, and how it is woken.
//
// A backend is a stateless type with four static members:
//
//   name()                          printable name used in test and benchmark names
//   wait(word, expected, deadline)  block while `word == expected`; returns false
//                                   only if `deadline` (nullptr = none) passed.
//                                   May return early (spuriously): callers re-check.
//   wake_one(word) / wake_all(word) wake one / every thread blocked in wait(word, ...)
//
// The contract is the futex contract: the check of `word` against `expected`
// and the decision to sleep are atomic with respect to wake_*(), so a waker
// that changes `word` and then calls wake_*() can never be missed.
// Mutex algorithms are written once against this concept (backends/lock_bit.hpp,
// mutexes/); each backend lives in its own header.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <string_view>

namespace kmlab::backends {

using deadline_t = std::chrono::steady_clock::time_point;

template <class B>
concept WaitBackend = requires(std::atomic<std::uint32_t>& word, std::uint32_t v,
                               const deadline_t* dl) {
    { B::name() } -> std::convertible_to<std::string_view>;
    { B::wait(word, v, dl) } -> std::same_as<bool>;
    { B::wake_one(word) } -> std::same_as<void>;
    { B::wake_all(word) } -> std::same_as<void>;
};

// True for backends whose waiters poll instead of sleeping (kNeverSleeps):
// a lock over them may release with a plain store and skip the wake.
template <class B>
inline constexpr bool never_sleeps = requires {
    requires B::kNeverSleeps;
};

}  // namespace kmlab::backends
