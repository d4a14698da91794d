// The gate a lock-bit mutex (<kmlab/kernel/lock_bit.hpp>) sleeps on over a
// parking backend: a wait word that counts signals not yet consumed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <kmlab/backends/backend.hpp>

namespace kmlab::backends {

// A gate over a backend's wait word: the word counts signals not yet
// consumed (a semaphore), so a signal sent before its waiter sleeps is not
// lost. The lock's WOKEN mark allows at most one signal in flight.
// signal() makes its last access to the gate's memory with the RMW that adds
// the signal; the wake after it is Backend::wake_one, which may be given a
// freed word (backend.hpp).
template <ParkingBackend Backend>
struct FutexGate {
    using platform = platform::platform_of<Backend>;
    static constexpr std::chrono::nanoseconds kSpinBeforePark = spin_before_park<Backend>();

    void wait() {
        std::uint32_t g = word.load(std::memory_order_relaxed);
        for (;;) {
            if (g == 0) {
                Backend::wait(word, 0, Deadline::never());
                g = word.load(std::memory_order_relaxed);
            } else if (word.compare_exchange_weak(g, g - 1, std::memory_order_acquire,
                                                  std::memory_order_relaxed)) {
                return;
            }
        }
    }
    void signal() {
        word.fetch_add(1, std::memory_order_release);
        Backend::wake_one(word);
    }

    wait_word<Backend> word{0};
};

}  // namespace kmlab::backends
