// The idiomatic layer's error: what went wrong, and what the real kernel
// would have produced for the same call (an NTSTATUS it returns or raises, or
// a bug check with its code and first parameter).
#pragma once

#include <optional>
#include <string_view>

#include <kmlab/kernel/bugcheck.hpp>
#include <kmlab/kernel/ntstatus.hpp>

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
};

struct Error {
    Errc code;
    nt::KIRQL irql = 0;  // the caller's IRQL when the error was detected
    const void* mutex = nullptr;
    nt::NTSTATUS status = nt::STATUS_SUCCESS;  // the kernel's status, if it returns or raises one
    nt::ULONG bug_check = 0;                   // the kernel's bug-check code, if it bug checks
    nt::ULONG_PTR bug_check_parameter1 = 0;    // e.g. the 0xC4 subcode

    bool is_bug_check() const noexcept { return bug_check != 0; }
    // The bug check the kernel would raise, with the parameters kmlab's NT face uses.
    BugCheck to_bug_check() const;
    // One line naming the cause, e.g. "FastMutex acquired at IRQL 2 (above APC_LEVEL)".
    std::string_view message() const noexcept;
};

namespace detail {
Error make_error(Errc code, nt::KIRQL irql, const void* mutex, nt::NTSTATUS status,
                 nt::ULONG bug_check = 0, nt::ULONG_PTR parameter1 = 0) noexcept;
// A guard's destructor cannot return an error; it reports what the kernel
// would have done (a bug check, or an unhandled raised status) to the fatal
// bug-check handler.
void report_from_destructor(const Error& e) noexcept;
}  // namespace detail

}  // namespace kmlab
