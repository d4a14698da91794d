// The explorer's copy of platform/src/futex.cpp (a link seam, as the kernel's
// copies are: kernel_seam.hpp). It defines both symbols of libkmlab_platform's
// futex.o, and DispatcherUnderModel's constructor references its marker, so
// a program that links kmlab::explore gets this copy. Inside a model thread a
// futex wait or wake is the model's (a wait blocks the fiber, its deadline
// passes only as a scheduling choice, a wake picks waiters FIFO); elsewhere
// it is the system call, as production's.
//
// Why: the idiomatic types over the futex backend (KMutex<T>, FastMutex<T>,
// GuardedMutex<T>, whose default backend it is) and the futex gate park
// through platform::sys. Their code is inline in the test's own translation
// unit, out of any link seam's reach, but their parking is not: without this
// copy a contended idiomatic lock inside explore::run() parked the only OS
// thread in the kernel for good. Their lock words stay native atomics (no
// scheduling point at each operation: explore.hpp lists it as a limit); a
// fiber switches only at the futex calls and at the model operations around
// them, which keeps every such lock correct under the model, if less
// interleaved than its own model tests explore it.
#include <kmlab/explore.hpp>
#include <kmlab/platform/futex.hpp>
#include "futex_calls.hpp"
#include "kernel_seam.hpp"

namespace kmlab::explore::kernel_seam {
void futex_seam_marker() noexcept {}
}  // namespace kmlab::explore::kernel_seam

namespace kmlab::platform::sys {

bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                Deadline deadline) noexcept {
    if (explore::active())
        return explore::detail::futex_wait(calls::addr(word), expected, !deadline.is_never());
    return calls::futex_wait(word, expected, deadline);
}

// Under the model the count woken is not reported (the model's wake does
// not say); every caller in kmlab ignores it.
int futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
    if (explore::active()) {
        explore::detail::futex_wake(calls::addr(word), count);
        return 0;
    }
    return calls::futex_wake(word, count);
}

}  // namespace kmlab::platform::sys
