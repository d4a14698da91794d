// The spin backend: busy-wait with bounded exponential backoff, then yield.
//
// Waiters never sleep in the kernel, so wake_one/wake_all have nothing to do:
// a waiter notices the word change by itself. The backoff is measured in
// nanoseconds, not PAUSE counts, because PAUSE costs from ~10 to ~140 cycles
// across microarchitectures (BENCHMARKING.md rule 5).
//
// Tuning: spinning stops after kSpinBudget (4 us); each round doubles its
// PAUSE burst up to kMaxBurst (64). On the 2-core VM of BENCHMARKING.md a
// futex wake-up round trip costs a few microseconds, so spinning much longer
// than that cannot beat parking; past the budget every round calls
// sched_yield(), which is what keeps 16 threads on 2 cores from burning their
// quanta (a plain TAS spinlock falls to ~0.1x std::mutex there).
#pragma once

#include <sched.h>

#include "backends/backend.hpp"

namespace kmlab::backends {

struct Spin {
    static constexpr auto kSpinBudget = std::chrono::microseconds(4);
    static constexpr int kMaxBurst = 64;

    static constexpr std::string_view name() { return "spin"; }

    static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
    }

    // Spins, then yields, until `done()`; false if `deadline` passed first.
    template <class Done>
    static bool spin_until(Done&& done, const deadline_t* deadline) noexcept {
        const auto start = std::chrono::steady_clock::now();
        int burst = 1;
        while (!done()) {
            const auto now = std::chrono::steady_clock::now();
            if (deadline != nullptr && now >= *deadline) return false;
            if (now - start < kSpinBudget) {
                for (int i = 0; i < burst; ++i) pause();
                if (burst < kMaxBurst) burst *= 2;
            } else {
                sched_yield();
            }
        }
        return true;
    }

    static bool wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     const deadline_t* deadline) noexcept {
        return spin_until([&] { return word.load(std::memory_order_acquire) != expected; },
                          deadline);
    }
    // Waiters never sleep, so a lock may release with a plain store.
    static constexpr bool kNeverSleeps = true;
    static void wake_one(std::atomic<std::uint32_t>&) noexcept {}
    static void wake_all(std::atomic<std::uint32_t>&) noexcept {}
};
static_assert(WaitBackend<Spin>);

}  // namespace kmlab::backends
