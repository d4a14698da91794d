#include <kmlab/platform/futex.hpp>

#include "futex_calls.hpp"

namespace kmlab::platform::sys {

bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                Deadline deadline) noexcept {
    return calls::futex_wait(word, expected, deadline);
}

int futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
    return calls::futex_wake(word, count);
}

}  // namespace kmlab::platform::sys
