// The platform seam: how a lock algorithm touches the memory that threads
// race on, reads the clock and spins. (Fields that only the owner writes,
// before the operation that frees the lock, such as the owner and
// contention fields, stay plain std::atomic; explore/include/kmlab/explore.hpp says
// what that leaves unexplored.)
//
// A lock algorithm (backends/lock_bit.hpp, mutexes/raw.hpp) names its atomics,
// fences, clock and spin loop through a Platform type P instead of calling
// std:: directly:
//
//   P::atomic<T>            a std::atomic<T> look-alike (load, store, exchange,
//                           compare_exchange_*, fetch_add/sub/and/or)
//   P::atomic_ref<T>        likewise over a plain T (the kernel's LONG Count)
//   P::now()                steady_clock time
//   P::spin_until(done, dl) spin, then yield, until done() or the deadline
//
// Production code uses Native, whose members are the std:: types and inline
// functions themselves, so the seam costs nothing (benchmarks/instructions
// counts are unchanged by it). The schedule explorer (explore/) supplies a
// Platform whose every operation first hands control to its scheduler, and
// whose memory is x86-TSO: that is how each algorithm is run schedule by
// schedule. A backend names its platform as `using platform = P;`; a backend
// that names none runs on Native.
#pragma once

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#include <kmlab/platform/deadline.hpp>
#include <kmlab/platform/membarrier.hpp>  // onelock: the asymmetric fence pair

namespace kmlab::platform {

struct Native {
    template <class T>
    using atomic = std::atomic<T>;
    template <class T>
    using atomic_ref = std::atomic_ref<T>;

    static std::chrono::steady_clock::time_point now() noexcept {
        return std::chrono::steady_clock::now();
    }

    static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
    }

    // Tuning: spinning stops after kSpinBudget (4 us); each round doubles its
    // PAUSE burst up to kMaxBurst (64). The backoff is measured in time, not
    // PAUSE counts, because PAUSE costs from ~10 to ~140 cycles across
    // microarchitectures (BENCHMARKING.md rule 5). On the 2-core VM of
    // BENCHMARKING.md a futex wake-up round trip costs a few microseconds, so
    // spinning much longer than that cannot beat parking; past the budget
    // every round calls sched_yield(), which is what keeps 16 threads on 2
    // cores from burning their quanta (a plain TAS spinlock falls to ~0.1x
    // std::mutex there).
    static constexpr auto kSpinBudget = std::chrono::microseconds(4);
    static constexpr int kMaxBurst = 64;

    // Spins, then yields, until `done()`; false if `deadline` passed first.
    template <class Done>
    static bool spin_until(Done&& done, Deadline deadline) noexcept {
        const auto start = now();
        int burst = 1;
        while (!done()) {
            const auto t = now();
            if (deadline.expired(t)) return false;
            if (t - start < kSpinBudget) {
                for (int i = 0; i < burst; ++i) pause();
                if (burst < kMaxBurst) burst *= 2;
            } else {
                sched_yield();
            }
        }
        return true;
    }

    // onelock: the asymmetric fence pair (membarrier.hpp); the explorer's
    // Platform models both (explore.hpp, set_heavy_fence).
    static bool heavy_fence() noexcept {
        return sys::heavy_fence();
    }
    static void light_fence() noexcept {
        sys::light_fence();
    }
};

// The emulated dispatcher is not a template, so the explorer reaches its
// lock and its parking through this table instead, in a copy of the
// dispatcher compiled for the explorer alone (KMLAB_DISPATCHER_SEAM, a link
// seam: see kernel/src/dispatcher.cpp). Production never reads it.
struct DispatcherSeam {
    // The dispatcher's locks (kernel/fair_lock.hpp, a layer above), by address.
    void (*lock)(const void*);
    void (*unlock)(const void*);
    std::uint32_t (*load)(std::atomic<std::uint32_t>&);
    void (*store)(std::atomic<std::uint32_t>&, std::uint32_t);
    // As platform::sys::futex_wait / futex_wake (one waiter).
    bool (*futex_wait)(std::atomic<std::uint32_t>&, std::uint32_t, Deadline);
    void (*futex_wake)(std::atomic<std::uint32_t>&);
};
inline const DispatcherSeam* g_dispatcher_seam = nullptr;

namespace detail {
template <class B>
struct platform_of {
    using type = Native;
};
template <class B>
requires requires {
    typename B::platform;
}
struct platform_of<B> {
    using type = typename B::platform;
};
}  // namespace detail

// The platform a backend (or a gate) runs on: B::platform, else Native.
template <class B>
using platform_of = typename detail::platform_of<B>::type;

// How long a lock over B (or over a lock_bit gate, which names its own)
// spins before it parks (zero: it parks at once).
template <class B>
constexpr std::chrono::nanoseconds spin_before_park() noexcept {
    if constexpr (requires { B::kSpinBeforePark; })
        return B::kSpinBeforePark;
    else
        return std::chrono::nanoseconds::zero();
}

}  // namespace kmlab::platform
