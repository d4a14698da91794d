// The dispatcher backend: threads wait in the emulated NT dispatcher.
//
// For the mutex types this backend means "use the real NT objects": a
// KMutex<T, Dispatcher> is a KMUTEX acquired with KeWaitForSingleObject, a
// FastMutex<T, Dispatcher> a FAST_MUTEX whose waiters block on its KEVENT.
// The generic wait/wake below is a parking lot built from dispatcher pieces
// (in the spirit of folly's EmulatedFutex and WebKit's ParkingLot): each
// address has a gate object with a FIFO wait list, and the word is compared
// under the dispatcher lock, so no wake is lost.
#pragma once

#include "backends/backend.hpp"

namespace kmlab::backends {

struct Dispatcher {
    static constexpr std::string_view name() { return "dispatcher"; }
    static bool wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     const deadline_t* deadline);
    static void wake_one(std::atomic<std::uint32_t>& word);
    static void wake_all(std::atomic<std::uint32_t>& word);
};
static_assert(WaitBackend<Dispatcher>);

}  // namespace kmlab::backends
