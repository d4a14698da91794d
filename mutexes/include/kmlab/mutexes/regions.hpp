// RAII critical and guarded regions (KeEnter/LeaveCriticalRegion,
// KeEnter/LeaveGuardedRegion). Entering is checked like the idiomatic mutexes
// (IRQL <= APC_LEVEL, else an Error carrying bug check 0xA); the region is
// left when the guard is destroyed, on the thread that entered it.
#pragma once

#include <expected>
#include <utility>

#include <kmlab/kernel/thread.hpp>
#include <kmlab/mutexes/error.hpp>

namespace kmlab {

namespace detail {
template <void (*Enter)(), void (*Leave)()>
class Region {
  public:
    static std::expected<Region, Error> enter() {
        nt::PKTHREAD t = kernel::current_thread();
        // The ceiling KeEnterCriticalRegion and KeEnterGuardedRegion enforce.
        if (auto v = kernel::check_irql_at_most(nt::APC_LEVEL, t->Irql, nullptr))
            return std::unexpected(from_violation(Errc::irql_too_high, *v, t->Irql));
        Enter();
        return Region(t);
    }
    Region(Region&& o) noexcept : thread_(std::exchange(o.thread_, nullptr)) {}
    Region& operator=(Region&&) = delete;
    Region(const Region&) = delete;
    ~Region() {
        if (thread_ == nullptr) return;
        try {
            Leave();
        } catch (const BugCheck& bc) {
            report_fatal_bug_check(bc);
        }
    }

  private:
    explicit Region(nt::PKTHREAD t) : thread_(t) {}
    nt::PKTHREAD thread_;
};
}  // namespace detail

using CriticalRegion = detail::Region<&nt::KeEnterCriticalRegion, &nt::KeLeaveCriticalRegion>;
using GuardedRegion = detail::Region<&nt::KeEnterGuardedRegion, &nt::KeLeaveGuardedRegion>;

}  // namespace kmlab
