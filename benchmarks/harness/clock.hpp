// Busy work measured in nanoseconds (BENCHMARKING.md rule 5): PAUSE costs
// from ~10 to ~140 cycles depending on the microarchitecture, so loop counts
// mean nothing across machines. The TSC is calibrated once against
// steady_clock (20 ms), then a busy wait spins on the TSC alone, which costs
// ~10-25 ns a read instead of clock_gettime's ~20-60 ns in a VM.
#pragma once

#include <x86intrin.h>

#include <cstdint>

namespace kmlab::bench {

// TSC ticks per nanosecond, measured on first use.
double tsc_per_ns();

inline std::uint64_t now_ticks() noexcept {
    return __rdtsc();
}

inline std::uint64_t ticks_for_ns(std::int64_t ns) noexcept {
    return static_cast<std::uint64_t>(static_cast<double>(ns) * tsc_per_ns());
}

inline std::uint64_t ticks_to_ns(std::uint64_t ticks) noexcept {
    return static_cast<std::uint64_t>(static_cast<double>(ticks) / tsc_per_ns());
}

// Spins for `ticks` TSC ticks (precomputed with ticks_for_ns).
inline void spin_ticks(std::uint64_t ticks) noexcept {
    if (ticks == 0) return;
    const std::uint64_t end = __rdtsc() + ticks;
    while (__rdtsc() < end) {
    }
}

}  // namespace kmlab::bench
