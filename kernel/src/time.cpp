#include <kmlab/kernel/time.hpp>

#include <limits>

namespace kmlab::kernel {

namespace {
// The two clocks: the steady one (deadlines) and the system time (100 ns
// since 1601). In the explorer's copy (explore/src/time_seam.cpp) both are
// virtual under the model and stand still (lock_seam.hpp): a timeout passes
// only as a scheduling choice, and KeQuerySystemTime returns one fixed time.
#ifdef KMLAB_DISPATCHER_SEAM
Deadline::clock::time_point steady_now() noexcept {
    return explore::kernel_seam::steady_now();
}
std::int64_t system_now() noexcept {
    return explore::kernel_seam::system_time_now();
}
#else
Deadline::clock::time_point steady_now() noexcept {
    return Deadline::clock::now();
}
std::int64_t system_now() noexcept {
    const auto sys_now = std::chrono::system_clock::now().time_since_epoch();
    return std::chrono::duration_cast<nt_duration>(sys_now).count() + kEpochDelta1601;
}
#endif
}  // namespace

Deadline deadline_from(const nt::LARGE_INTEGER* timeout) {
    if (timeout == nullptr) return Deadline::never();
    const std::int64_t q = timeout->QuadPart;
    // Only an exact zero is a poll, as only it is legal at DISPATCH_LEVEL;
    // an absolute time already past is an at() that has expired.
    if (q == 0) return Deadline::poll();
    const auto now = steady_now();
    if (q < 0) {
        // -INT64_MIN does not exist: the longest interval is INT64_MAX either way.
        return Deadline::after(now, nt_duration(q == std::numeric_limits<std::int64_t>::min()
                                                    ? std::numeric_limits<std::int64_t>::max()
                                                    : -q));
    }
    const std::int64_t now_nt = system_now();
    return Deadline::after(now, nt_duration(q > now_nt ? q - now_nt : 0));
}

}  // namespace kmlab::kernel

namespace kmlab::nt {
void KeQuerySystemTime(PLARGE_INTEGER CurrentTime) {
    CurrentTime->QuadPart = kmlab::kernel::system_now();
}
}  // namespace kmlab::nt
