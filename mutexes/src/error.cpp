#include <kmlab/mutexes/error.hpp>

namespace kmlab {

BugCheck Error::to_bug_check() const {
    const auto m = reinterpret_cast<nt::ULONG_PTR>(mutex);
    switch (bug_check) {
        case bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION:
            return BugCheck(bug_check, bug_check_parameter1, irql, m, 0);
        case bugcheck::IRQL_NOT_LESS_OR_EQUAL:
            return BugCheck(bug_check, m, irql, 0, 0);
        case bugcheck::MUTEX_ALREADY_OWNED:
            return BugCheck(bug_check, m, bug_check_parameter1);
        case bugcheck::THREAD_NOT_MUTEX_OWNER:
            return BugCheck(bug_check, m, bug_check_parameter1);
        case 0:
            return BugCheck(bugcheck::KMODE_EXCEPTION_NOT_HANDLED, static_cast<nt::ULONG>(status));
        default:
            return BugCheck(bug_check, bug_check_parameter1);
    }
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
    }
    return "unknown error";
}

namespace detail {
Error make_error(Errc code, nt::KIRQL irql, const void* mutex, nt::NTSTATUS status,
                 nt::ULONG bug_check, nt::ULONG_PTR parameter1) noexcept {
    return Error{code, irql, mutex, status, bug_check, parameter1};
}

void report_from_destructor(const Error& e) noexcept {
    report_fatal_bug_check(e.to_bug_check());
}
}  // namespace detail

}  // namespace kmlab
