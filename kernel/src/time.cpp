#include <kmlab/kernel/time.hpp>

#include <limits>

namespace kmlab::kernel {

namespace {
using steady = std::chrono::steady_clock;

// now + d (d >= 0, in 100 ns units), saturated at the clock's maximum: a
// timeout too long for the clock to represent is an infinite wait in practice.
steady::time_point saturating_add(steady::time_point now, std::int64_t d) {
    const auto room = std::chrono::floor<nt_duration>(steady::time_point::max() - now).count();
    if (d >= room) return steady::time_point::max();
    return now + std::chrono::duration_cast<steady::duration>(nt_duration(d));
}
}  // namespace

std::optional<steady::time_point> deadline_from(const nt::LARGE_INTEGER* timeout) {
    if (timeout == nullptr) return std::nullopt;
    const auto now = steady::now();
    const std::int64_t q = timeout->QuadPart;
    if (q <= 0) {
        // -INT64_MIN does not exist: the longest interval is INT64_MAX either way.
        return saturating_add(now, q == std::numeric_limits<std::int64_t>::min()
                                       ? std::numeric_limits<std::int64_t>::max()
                                       : -q);
    }
    const auto sys_now = std::chrono::system_clock::now().time_since_epoch();
    const std::int64_t now_nt =
        std::chrono::duration_cast<nt_duration>(sys_now).count() + kEpochDelta1601;
    return saturating_add(now, q > now_nt ? q - now_nt : 0);
}

}  // namespace kmlab::kernel

namespace kmlab::nt {
void KeQuerySystemTime(PLARGE_INTEGER CurrentTime) {
    const auto sys_now = std::chrono::system_clock::now().time_since_epoch();
    CurrentTime->QuadPart =
        std::chrono::duration_cast<kmlab::kernel::nt_duration>(sys_now).count() +
        kmlab::kernel::kEpochDelta1601;
}
}  // namespace kmlab::nt
