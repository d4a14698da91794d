#include "kernel/time.hpp"

namespace kmlab::kernel {

std::optional<std::chrono::steady_clock::time_point> deadline_from(
    const nt::LARGE_INTEGER* timeout) {
    if (timeout == nullptr) return std::nullopt;
    const auto now = std::chrono::steady_clock::now();
    const std::int64_t q = timeout->QuadPart;
    if (q <= 0) return now + nt_duration(-q);
    const auto sys_now = std::chrono::system_clock::now().time_since_epoch();
    const std::int64_t now_nt =
        std::chrono::duration_cast<nt_duration>(sys_now).count() + kEpochDelta1601;
    return now + nt_duration(q > now_nt ? q - now_nt : 0);
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
