// The two kinds of failure the emulated kernel reports, kept apart as
// SEMANTICS.md's "Emulation decisions" require:
//
//  * NtException: an NT routine *raised* a status (ExRaiseStatus). The caller
//    may catch it, as a driver's __try/__except would. Example: KeReleaseMutex
//    by a non-owner raises STATUS_MUTANT_NOT_OWNED.
//  * BugCheck: the system would stop. Thrown where the offending call is on the
//    stack, so tests can assert the exact code and parameters. Where no caller
//    can receive an exception (a thread exits holding a KMUTEX) the emulator
//    calls the replaceable bug-check handler instead; the default one prints a
//    stop message in the kernel's style and aborts.
#pragma once

#include <array>
#include <cstdint>
#include <exception>
#include <string>

#include <kmlab/kernel/ntdef.hpp>
#include <kmlab/kernel/ntstatus.hpp>

namespace kmlab {

namespace bugcheck {
// Codes from SEMANTICS.md section 6.3.
inline constexpr nt::ULONG APC_INDEX_MISMATCH = 0x1;
inline constexpr nt::ULONG IRQL_NOT_DISPATCH_LEVEL = 0x8;
inline constexpr nt::ULONG IRQL_NOT_GREATER_OR_EQUAL = 0x9;
inline constexpr nt::ULONG IRQL_NOT_LESS_OR_EQUAL = 0xA;
inline constexpr nt::ULONG MAXIMUM_WAIT_OBJECTS_EXCEEDED = 0xC;
inline constexpr nt::ULONG THREAD_NOT_MUTEX_OWNER = 0x11;
inline constexpr nt::ULONG KMODE_EXCEPTION_NOT_HANDLED = 0x1E;
inline constexpr nt::ULONG KERNEL_APC_PENDING_DURING_EXIT = 0x20;
inline constexpr nt::ULONG SYSTEM_THREAD_EXCEPTION_NOT_HANDLED = 0x7E;
inline constexpr nt::ULONG MUTEX_ALREADY_OWNED = 0xBF;
inline constexpr nt::ULONG DRIVER_VERIFIER_DETECTED_VIOLATION = 0xC4;
inline constexpr nt::ULONG THREAD_TERMINATE_HELD_MUTEX = 0x4000008A;
// KSPIN_LOCK and queued spin locks: add codes here.
inline constexpr nt::ULONG SPIN_LOCK_ALREADY_OWNED = 0xF;
inline constexpr nt::ULONG SPIN_LOCK_NOT_OWNED = 0x10;
// Resources: add codes here.
inline constexpr nt::ULONG RESOURCE_NOT_OWNED = 0xE3;  // [bc:0xE3]
// Push locks and EX_SPIN_LOCK: add codes here.
// Timers: add codes here.

// Driver Verifier (0xC4) subcodes, parameter 1 [bc:0xC4].
inline constexpr nt::ULONG_PTR VERIFIER_RAISE_IRQL_INVALID = 0x30;
inline constexpr nt::ULONG_PTR VERIFIER_LOWER_IRQL_INVALID = 0x31;
inline constexpr nt::ULONG_PTR VERIFIER_FAST_MUTEX_ACQUIRE_IRQL = 0x33;
inline constexpr nt::ULONG_PTR VERIFIER_FAST_MUTEX_RELEASE_IRQL = 0x34;
inline constexpr nt::ULONG_PTR VERIFIER_UNSAFE_ACQUIRE_IRQL = 0x39;
inline constexpr nt::ULONG_PTR VERIFIER_UNSAFE_RELEASE_IRQL = 0x3A;
inline constexpr nt::ULONG_PTR VERIFIER_WAIT_AT_DISPATCH = 0x3B;
// KSPIN_LOCK and queued spin locks: add subcodes here.
inline constexpr nt::ULONG_PTR VERIFIER_SPIN_LOCK_RELEASE_IRQL = 0x32;
inline constexpr nt::ULONG_PTR VERIFIER_KERNEL_SPIN_LOCK_RELEASE_IRQL = 0x35;
inline constexpr nt::ULONG_PTR VERIFIER_SPIN_LOCK_AT_DPC_ACQUIRE_IRQL = 0x40;
inline constexpr nt::ULONG_PTR VERIFIER_SPIN_LOCK_FROM_DPC_RELEASE_IRQL = 0x41;
inline constexpr nt::ULONG_PTR VERIFIER_SPIN_LOCK_ACQUIRE_IRQL = 0x42;
// Resources: add subcodes here.
inline constexpr nt::ULONG_PTR VERIFIER_RESOURCE_ACQUIRE_APCS_ENABLED = 0x37;  // [bc:0xC4]
inline constexpr nt::ULONG_PTR VERIFIER_RESOURCE_RELEASE_APCS_ENABLED = 0x38;  // [bc:0xC4]
// ExFreePool of a block holding an ERESOURCE not deleted (ERESOURCE, block,
// size) [bc:0xC4] (kernel/verifier.hpp, check_free).
inline constexpr nt::ULONG_PTR VERIFIER_FREE_ACTIVE_RESOURCE = 0xD2;
// The deadlock detector's report [bc:0xC4] ("Debugging deadlocks: C4: 0x1001").
inline constexpr nt::ULONG_PTR VERIFIER_DEADLOCK_DETECTED = 0x1001;
// The rest of Deadlock Detection's subcodes [bc:0xC4] (kernel/verifier.hpp).
inline constexpr nt::ULONG_PTR VERIFIER_DEADLOCK_SELF = 0x1000;
inline constexpr nt::ULONG_PTR VERIFIER_DEADLOCK_UNINITIALIZED = 0x1002;
inline constexpr nt::ULONG_PTR VERIFIER_DEADLOCK_UNEXPECTED_RELEASE = 0x1003;
inline constexpr nt::ULONG_PTR VERIFIER_DEADLOCK_UNEXPECTED_THREAD = 0x1004;
inline constexpr nt::ULONG_PTR VERIFIER_DEADLOCK_MULTIPLE_INITIALIZATION = 0x1005;
inline constexpr nt::ULONG_PTR VERIFIER_DEADLOCK_UNACQUIRED_RESOURCE = 0x1007;
inline constexpr nt::ULONG_PTR VERIFIER_DEADLOCK_THREAD_EXIT_HOLDING = 0x100A;
inline constexpr nt::ULONG_PTR VERIFIER_DEADLOCK_DELETED_WHILE_HELD = 0x100B;
// Push locks and EX_SPIN_LOCK: add subcodes here.
// Timers: add subcodes here.

// The bug check's symbolic name ("IRQL_NOT_LESS_OR_EQUAL"), or "UNKNOWN".
const char* name(nt::ULONG code) noexcept;
}  // namespace bugcheck

class BugCheck : public std::exception {
  public:
    BugCheck(nt::ULONG code, nt::ULONG_PTR p1 = 0, nt::ULONG_PTR p2 = 0, nt::ULONG_PTR p3 = 0,
             nt::ULONG_PTR p4 = 0);
    nt::ULONG code() const noexcept { return code_; }
    // Parameter i, 1-based as in "Parameter 1" of the bug-check pages.
    nt::ULONG_PTR parameter(int i) const noexcept { return params_.at(static_cast<size_t>(i - 1)); }
    const std::array<nt::ULONG_PTR, 4>& parameters() const noexcept { return params_; }
    // "*** STOP: 0x0000000A (0x..., 0x..., 0x..., 0x...)\nIRQL_NOT_LESS_OR_EQUAL"
    const char* what() const noexcept override { return message_.c_str(); }

  private:
    nt::ULONG code_;
    std::array<nt::ULONG_PTR, 4> params_;
    std::string message_;
};

class NtException : public std::exception {
  public:
    explicit NtException(nt::NTSTATUS status);
    nt::NTSTATUS status() const noexcept { return status_; }
    const char* what() const noexcept override { return message_.c_str(); }

  private:
    nt::NTSTATUS status_;
    std::string message_;
};

// Build flavours: which rules a broken call answers with a bug check.
//  * checked (the default): the rules a checked build of Windows enforces
//    (its ASSERTs and DBG-only bug checks), and every rule of the free one;
//  * free: the rules marked `checked_only` in rules.hpp are not enforced, because a
//    free (retail) Windows build does not check them (kmtest runs the same
//    calls on both and expects them to return normally on a free build
//    [kmt-KeIrql][kmt-ExFastMutex]), or because Windows accepts the call at
//    an IRQL its documentation forbids [kmt-KeGuardedMutex].
//  * verifier: checked, plus the rules Driver Verifier adds (marked
//    `verifier_only` in the rules headers: an IRQL the documentation forbids
//    but Windows accepts, Verifier's 0xC4 subcodes) and its lock checks and
//    Deadlock Detection (kernel/verifier.hpp).
// Chosen at run time and process-wide. The environment variable
// KMLAB_FLAVOR=free (or checked, or verifier) sets the initial flavour, so a
// test binary can run any way unchanged. Only the NT routines consult it, and
// only after a rule has already failed: no fast path reads it (the verifier
// flavour reaches the routines through each thread's KTHREAD::VerifierGate,
// which the fast paths' IRQL compare already reads; kernel/verifier.hpp).
enum class Flavor : std::uint8_t { checked, free, verifier };
Flavor flavor() noexcept;
void set_flavor(Flavor f) noexcept;

// Raise a status (throws NtException), as ExRaiseStatus does.
[[noreturn]] void raise_status(nt::NTSTATUS status);
// A bug check detected on the caller's stack: throws BugCheck.
[[noreturn]] void bug_check(nt::ULONG code, nt::ULONG_PTR p1 = 0, nt::ULONG_PTR p2 = 0,
                            nt::ULONG_PTR p3 = 0, nt::ULONG_PTR p4 = 0);

// Handler for bug checks that no caller can catch (thread exit paths). If it
// returns, the emulator carries on as best it can and says what it did.
using BugCheckHandler = void (*)(const BugCheck&);
// Installs `handler` (nullptr restores the default) and returns the previous one.
BugCheckHandler set_bug_check_handler(BugCheckHandler handler) noexcept;
// Calls the installed handler; the default prints the stop message and aborts.
void report_fatal_bug_check(const BugCheck& bc) noexcept;

}  // namespace kmlab
