// NT time: 100 ns units. A negative LARGE_INTEGER is relative to now; a
// positive one is absolute, counted from 1601-01-01 UTC [ddi:kewaitforsingleobject].
#pragma once

#include <chrono>

#include <kmlab/kernel/ntdef.hpp>
#include <kmlab/platform/deadline.hpp>

namespace kmlab::kernel {

using nt_duration = std::chrono::duration<std::int64_t, std::ratio<1, 10'000'000>>;

// Seconds between 1601-01-01 and 1970-01-01, in 100 ns units.
inline constexpr std::int64_t kEpochDelta1601 = 116'444'736'000'000'000LL;

// Converts an NT timeout to a Deadline, once, on entry to a KeWait routine:
// NULL is never(), zero poll(), a negative count relative to now, a positive
// one absolute; one beyond the steady clock's range is never(). An absolute
// time is converted on entry: a change of the system clock during the wait
// is not tracked (a documented difference from Windows).
Deadline deadline_from(const nt::LARGE_INTEGER* timeout);

// Relative NT interval for a C++ duration (negative 100 ns count), rounded up.
template <class Rep, class Period>
constexpr nt::LARGE_INTEGER relative_timeout(std::chrono::duration<Rep, Period> d) {
    nt::LARGE_INTEGER li{};
    li.QuadPart = -std::chrono::ceil<nt_duration>(d).count();
    return li;
}

}  // namespace kmlab::kernel

namespace kmlab::nt {
// KeQuerySystemTime: the current system time in 100 ns units since 1601.
void KeQuerySystemTime(PLARGE_INTEGER CurrentTime);
}  // namespace kmlab::nt
