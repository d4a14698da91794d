#include <kmlab/mutexes/error.hpp>

#include <kmlab/kernel/thread.hpp>

namespace kmlab {

BugCheck Error::to_bug_check() const {
    if (bug_check != 0)
        return BugCheck(bug_check, bug_check_parameter1, bug_check_parameter2, bug_check_parameter3,
                        bug_check_parameter4);
    return BugCheck(bugcheck::KMODE_EXCEPTION_NOT_HANDLED, static_cast<nt::ULONG>(status));
}

std::string_view Error::message() const noexcept {
    switch (code) {
        case Errc::irql_too_high:
            return "acquired or released above the IRQL the kernel allows";
        case Errc::wrong_release_irql:
            return "fast mutex released at an IRQL other than APC_LEVEL";
        case Errc::busy:
            return "mutex is held (try_lock failed or lock_for timed out)";
        case Errc::recursive_acquire:
            return "non-recursive mutex acquired again by its owner";
        case Errc::not_owner:
            return "mutex released by a thread that does not own it";
        case Errc::recursion_limit:
            return "KMUTEX recursion limit (MINLONG acquisitions) reached";
        case Errc::nested_guard_alive:
            return "guard unlocked while a later guard of the same KMutex is alive";
        case Errc::already_released:
            return "guard already released";
        case Errc::guard_alive:
            return "into_inner() on a mutex that a guard still holds";
        case Errc::alerted:
            return "alertable wait ended by an alert before the mutex was acquired";
        case Errc::user_apc:
            return "alertable wait ended by a user APC (which ran) before the mutex was acquired";
            // SpinLock, QueuedSpinLock:
        case Errc::spin_lock_release_irql:
            return "spin lock released at an IRQL other than DISPATCH_LEVEL";
            // Resource:
        case Errc::resource_apcs_enabled:
            return "resource acquired or released with normal kernel APCs enabled (no critical "
                   "region)";
        case Errc::resource_upgrade:
            return "resource locked exclusive by a thread that holds it shared (deadlock)";
            // PushLock, RwSpinLock:
        case Errc::apcs_enabled:
            return "push lock acquired with normal kernel APCs enabled (enter a critical region "
                   "first)";
        case Errc::deadlock:
            return "Driver Verifier's Deadlock Detection: this acquisition closes a lock-order "
                   "cycle (kernel::verifier::last_report() names it)";
    }
    return "unknown error";
}

namespace detail {
Error from_violation(Errc code, const kernel::Violation& v, nt::KIRQL irql) noexcept {
    if (!v.is_bug_check()) return Error{code, irql, v.object, v.status};
    const auto& p = v.parameters;
    return Error{code, irql, v.object, nt::STATUS_SUCCESS, v.code, p[0], p[1], p[2], p[3]};
}

Error make_error(Errc code, nt::KIRQL irql, const void* mutex, nt::NTSTATUS status) noexcept {
    return Error{code, irql, mutex, status};
}

Error into_inner_error(const Error* try_lock_error, const void* mutex) noexcept {
    if (try_lock_error != nullptr && try_lock_error->code != Errc::busy) return *try_lock_error;
    const nt::KIRQL irql =
        try_lock_error != nullptr ? try_lock_error->irql : kernel::current_thread()->Irql;
    return Error{Errc::guard_alive, irql, mutex};
}

void report_from_destructor(const Error& e) noexcept {
    report_fatal_bug_check(e.to_bug_check());
}
}  // namespace detail

}  // namespace kmlab
