// Linux futex: the only file that includes <linux/futex.h> is futex.cpp.
//
// The primitive every blocking path in kmlab ends in: block while a 32-bit
// word still holds an expected value, until woken or a deadline passes.
// Private futexes (the words never cross processes).
#pragma once

#include <atomic>
#include <cstdint>

#include <kmlab/platform/deadline.hpp>

namespace kmlab::platform::sys {

// Blocks while `word == expected`; returns false only when `deadline` has
// passed. Spurious returns are possible: callers re-check the word.
bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                Deadline deadline) noexcept;
// Wakes up to `count` threads blocked on `word`; returns how many were woken.
int futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept;

}  // namespace kmlab::platform::sys
