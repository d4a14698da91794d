// The idiomatic layer's error: what went wrong, and what the real kernel
// would have produced for the same call (an NTSTATUS it returns or raises, or
// a bug check with its code and parameters). Where a kernel rule was broken,
// the kernel's answer comes from that rule's check (kernel/rules.hpp), the
// one the NT routines enforce; the Errc is the idiomatic layer's name for it.
#pragma once

#include <optional>
#include <string_view>

#include <kmlab/kernel/bugcheck.hpp>
#include <kmlab/kernel/ntstatus.hpp>
#include <kmlab/kernel/rules.hpp>

namespace kmlab {

enum class Errc {
    irql_too_high,       // acquire or release above the routine's IRQL ceiling
    wrong_release_irql,  // FastMutex released at an IRQL other than APC_LEVEL
    busy,                // try_lock found it held; lock_for timed out
    recursive_acquire,   // FastMutex / GuardedMutex acquired again by its owner
    not_owner,           // released by a thread that does not own it
    recursion_limit,     // KMutex acquired MINLONG times (SEMANTICS.md 1.4)
    nested_guard_alive,  // a KMutex guard unlocked while a later guard is still alive
    already_released,    // unlock() on a guard that no longer holds the mutex
    guard_alive,         // into_inner() while a guard, this thread's or another's, holds the mutex
    alerted,             // an alertable KMutex wait ended by an alert (STATUS_ALERTED)
    user_apc,            // an alertable UserMode KMutex wait ended by a user APC (STATUS_USER_APC)
    // SpinLock, QueuedSpinLock:
    spin_lock_release_irql,  // a spin lock released at IRQL != DISPATCH_LEVEL
    // Resource:
    resource_apcs_enabled,  // Resource acquired/released with kernel APCs enabled (0xC4/0x37, 0x38)
    resource_upgrade,       // Resource lock() by a shared holder: a deadlock (0xC4/0x1001)
    // PushLock, RwSpinLock:
    apcs_enabled,  // PushLock acquired with normal kernel APCs enabled (no critical region)
    // The verifier flavour (kernel/verifier.hpp):
    deadlock,  // Deadlock Detection (0xC4, parameter 1 = 0x1000..0x100B; 0x1001 a lock-order
               // cycle, parameter 2 the lock): kernel::verifier::last_report() names the cycle
};

struct Error {
    Errc code;
    nt::KIRQL irql = 0;  // the caller's IRQL when the error was detected
    const void* mutex = nullptr;
    nt::NTSTATUS status = nt::STATUS_SUCCESS;  // the kernel's status, if it returns or raises one
    nt::ULONG bug_check = 0;                   // the kernel's bug-check code, if it bug checks
    nt::ULONG_PTR bug_check_parameter1 = 0;    // its parameters, numbered as BugCheck's
    nt::ULONG_PTR bug_check_parameter2 = 0;    // (parameter 1 of 0xC4 is the subcode)
    nt::ULONG_PTR bug_check_parameter3 = 0;
    nt::ULONG_PTR bug_check_parameter4 = 0;

    bool is_bug_check() const noexcept { return bug_check != 0; }
    // The bug check the kernel would raise, with the parameters kmlab's NT face
    // uses; for a raised status, the KMODE_EXCEPTION_NOT_HANDLED it ends in
    // when nobody handles it.
    BugCheck to_bug_check() const;
    // One line naming the cause, e.g. "FastMutex acquired at IRQL 2 (above APC_LEVEL)".
    std::string_view message() const noexcept;
};

namespace detail {
// The error for a broken kernel rule: the kernel's answer `v`, named `code`.
Error from_violation(Errc code, const kernel::Violation& v, nt::KIRQL irql) noexcept;
// An error of the idiomatic API's own, which no kernel rule answers (busy,
// nested_guard_alive, already_released, guard_alive, alerted, user_apc).
Error make_error(Errc code, nt::KIRQL irql, const void* mutex, nt::NTSTATUS status) noexcept;
// into_inner()'s answer when its try_lock() did not give it the mutex's only
// hold: the try_lock's own error if it broke a kernel rule, else guard_alive.
Error into_inner_error(const Error* try_lock_error, const void* mutex) noexcept;
// A guard's destructor cannot return an error; it reports what the kernel
// would have done (a bug check, or an unhandled raised status) to the fatal
// bug-check handler.
void report_from_destructor(const Error& e) noexcept;
}  // namespace detail

}  // namespace kmlab
