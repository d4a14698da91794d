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
// Enter / Leave: the kernel's inline region operations (kernel/thread.hpp),
// after this type's own IRQL check, so that a region costs a decrement and
// an increment, not two out-of-line NT calls. A leave above APC_LEVEL
// (the IRQL raised inside the region and not restored) goes through the NT
// routine `NtLeave`, whose IRQL rule reports it as the kernel would.
template <void (*Enter)(nt::PKTHREAD), void (*Leave)(nt::PKTHREAD), void (*NtLeave)()>
class Region {
  public:
    static std::expected<Region, Error> enter() {
        nt::PKTHREAD t = kernel::current_thread();
        // The ceiling KeEnterCriticalRegion and KeEnterGuardedRegion enforce.
        if (auto v = kernel::check_irql_at_most(nt::APC_LEVEL, t->Irql, nullptr)) [[unlikely]]
            return std::unexpected(from_violation(Errc::irql_too_high, *v, t->Irql));
        Enter(t);
        return Region(t);
    }
    Region(Region&& o) noexcept : thread_(std::exchange(o.thread_, nullptr)) {}
    Region& operator=(Region&&) = delete;
    Region(const Region&) = delete;
    ~Region() {
        if (thread_ == nullptr) return;
        try {
            if (thread_->Irql > nt::APC_LEVEL) [[unlikely]]
                NtLeave();
            else
                Leave(thread_);
        } catch (const BugCheck& bc) {
            report_fatal_bug_check(bc);
        }
    }

  private:
    explicit Region(nt::PKTHREAD t) : thread_(t) {}
    nt::PKTHREAD thread_;
};
}  // namespace detail

using CriticalRegion = detail::Region<&kernel::enter_critical_region,
                                      &kernel::leave_critical_region, &nt::KeLeaveCriticalRegion>;
using GuardedRegion = detail::Region<&kernel::enter_guarded_region, &kernel::leave_guarded_region,
                                     &nt::KeLeaveGuardedRegion>;

}  // namespace kmlab
