#include <kmlab/kernel/time.hpp>

#include <limits>

namespace kmlab::kernel {

Deadline deadline_from(const nt::LARGE_INTEGER* timeout) {
    if (timeout == nullptr) return Deadline::never();
    const std::int64_t q = timeout->QuadPart;
    // Only an exact zero is a poll, as only it is legal at DISPATCH_LEVEL;
    // an absolute time already past is an at() that has expired.
    if (q == 0) return Deadline::poll();
    const auto now = Deadline::clock::now();
    if (q < 0) {
        // -INT64_MIN does not exist: the longest interval is INT64_MAX either way.
        return Deadline::after(now, nt_duration(q == std::numeric_limits<std::int64_t>::min()
                                                    ? std::numeric_limits<std::int64_t>::max()
                                                    : -q));
    }
    const auto sys_now = std::chrono::system_clock::now().time_since_epoch();
    const std::int64_t now_nt =
        std::chrono::duration_cast<nt_duration>(sys_now).count() + kEpochDelta1601;
    return Deadline::after(now, nt_duration(q > now_nt ? q - now_nt : 0));
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
