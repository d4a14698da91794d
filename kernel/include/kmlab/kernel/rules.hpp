// The kernel's rules for its mutexes, each written once as a pure check: it
// reads the caller's state and the object's, changes nothing, and returns
// what the kernel does when the rule is broken (a Violation), or nothing.
//
// Two callers, one answer:
//  * the NT routines act on it: `enforce(check_...(...));` bug checks or raises;
//  * the idiomatic types return it as an Error (mutexes/error.hpp,
//    detail::from_violation), with the same code, parameters or status.
//
// Each check is inline and its condition one or two compares, so a lock's
// fast path pays for a rule what it paid when the rule was written into it.
// A check does not decide in what order a routine applies several rules;
// the routine does, and says so where the order matters.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include <kmlab/kernel/bugcheck.hpp>
#include <kmlab/kernel/ntstatus.hpp>
#include <kmlab/kernel/objects.hpp>

namespace kmlab::kernel {

// What the kernel does about a broken rule: stop the system with a bug check,
// or raise a status the caller may handle (SEMANTICS.md "Emulation decisions":
// two kinds of failure, kept apart).
struct Violation {
    enum class Kind : std::uint8_t { bug_check, raised_status };
    Kind kind = Kind::bug_check;
    // Only the verifier flavour enforces it: a rule of Driver Verifier's, not
    // of a checked build (checked and free let the call proceed). Kept in
    // kind's padding: a field at the end changed the code the spin lock
    // routines' fast paths inline around a Violation (4 instructions a pair).
    bool verifier_flavor_only = false;
    nt::ULONG code = 0;                            // bug_check: the code
    std::array<nt::ULONG_PTR, 4> parameters = {};  // bug_check: parameters 1 to 4
    nt::NTSTATUS status = nt::STATUS_SUCCESS;      // raised_status: the status
    const void* object = nullptr;                  // the object whose rule it is
    // Only the checked flavour enforces it (through enforce_in_flavor); a free
    // build lets the call proceed.
    bool checked_only = false;

    static Violation bug_check(nt::ULONG code, const void* object, nt::ULONG_PTR p1,
                               nt::ULONG_PTR p2 = 0, nt::ULONG_PTR p3 = 0,
                               nt::ULONG_PTR p4 = 0) noexcept {
        return {Kind::bug_check, false, code, {p1, p2, p3, p4}, nt::STATUS_SUCCESS, object, false};
    }
    static Violation raised(nt::NTSTATUS status, const void* object) noexcept {
        return {Kind::raised_status, false, 0, {}, status, object, false};
    }
    Violation checked_build_only(bool only = true) const noexcept {
        Violation v = *this;
        v.checked_only = only;
        return v;
    }
    // Driver Verifier's rule: enforced in the verifier flavour only.
    Violation verifier_only(bool only = true) const noexcept {
        Violation v = *this;
        v.checked_only = only;
        v.verifier_flavor_only = only;
        return v;
    }
    bool is_bug_check() const noexcept { return kind == Kind::bug_check; }
    friend bool operator==(const Violation&, const Violation&) = default;
};

// Bug checks or raises as `v` says, on the caller's stack (a BugCheck or an
// NtException, see bugcheck.hpp).
[[noreturn, gnu::cold]] void bug_check_or_raise(const Violation& v);
// The same, unless `v` is checked_only and the flavour is free, or
// verifier_only and the flavour is not verifier: then it returns and the
// routine goes on as a free (or checked) build would.
[[gnu::cold]] void bug_check_or_raise_in_flavor(const Violation& v);

// What an NT routine does with a check's answer: `enforce(check_...(...));`.
// A routine with several rules applies them in the order it lists them.
// For rules every flavour enforces: the failure path does not return, which
// keeps the lock routines' fast paths as short as before flavours existed
// (a returning call there cost ExAcquireFastMutex 6 instructions a pair).
inline void enforce(const std::optional<Violation>& v) {
    if (v) [[unlikely]]
        bug_check_or_raise(*v);
}
// For rules that may be checked_only: the call returns in the free flavour.
inline void enforce_in_flavor(const std::optional<Violation>& v) {
    if (v) [[unlikely]]
        bug_check_or_raise_in_flavor(*v);
}

namespace detail {
inline nt::ULONG_PTR parameter(const void* p) noexcept {
    return reinterpret_cast<nt::ULONG_PTR>(p);
}
// Driver Verifier's reports on a mutex: (subcode, IRQL, mutex, 0) [bc:0xC4].
inline Violation mutex_verifier(nt::ULONG_PTR subcode, nt::KIRQL irql, const void* mutex) noexcept {
    return Violation::bug_check(bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, mutex, subcode, irql,
                                parameter(mutex));
}
}  // namespace detail

// ---- IRQL ceilings (SEMANTICS.md 5.4) ----

// A routine called above its ceiling: IRQL_NOT_LESS_OR_EQUAL (object, IRQL,
// 0, 0), unless the routine names a more specific check below.
inline std::optional<Violation> check_irql_at_most(nt::KIRQL ceiling, nt::KIRQL irql,
                                                   const void* object) noexcept {
    if (irql > ceiling) [[unlikely]]
        return Violation::bug_check(bugcheck::IRQL_NOT_LESS_OR_EQUAL, object,
                                    detail::parameter(object), irql);
    return std::nullopt;
}

// A routine whose documentation forbids an IRQL that Windows accepts: above
// `windows` every flavour bug checks as check_irql_at_most; between the two
// ceilings only the checked flavour does, where a checked build stops there
// too (an ASSERT: KeEnterGuardedRegion [ros-kex], KeInitializeTimer
// [kmt-KeTimer]); the free flavour follows Windows.
inline std::optional<Violation> check_irql_documented(nt::KIRQL documented, nt::KIRQL windows,
                                                      nt::KIRQL irql, const void* object) noexcept {
    if (irql > documented) [[unlikely]]
        return check_irql_at_most(documented, irql, object)->checked_build_only(irql <= windows);
    return std::nullopt;
}

// The same where a checked build accepts the IRQL too: between the two
// ceilings only the verifier flavour reports it, as Driver Verifier's IRQL
// checks do ([bc:0xC4] 0xE5, "a call was made to a Kernel API at the
// incorrect IRQL"; the code stays IRQL_NOT_LESS_OR_EQUAL, decision, kmlab:
// the one tests already name). kmtest's checked-build runs call
// KeInitializeGuardedMutex at DISPATCH_LEVEL [kmt-KeGuardedMutex],
// KeEnterCriticalRegion at HIGH_LEVEL [kmt-KeApc], PsCreateSystemThread,
// ObReferenceObjectByHandle and ZwClose at APC_LEVEL, and expect them to
// return.
inline std::optional<Violation> check_irql_documented_verifier(nt::KIRQL documented,
                                                               nt::KIRQL windows, nt::KIRQL irql,
                                                               const void* object) noexcept {
    if (irql > documented) [[unlikely]]
        return check_irql_at_most(documented, irql, object)->verifier_only(irql <= windows);
    return std::nullopt;
}

// KfRaiseIrql to a lower IRQL: IRQL_NOT_GREATER_OR_EQUAL (current, new, 0, 9)
// as the checked HAL reports it [ros-apic]. Flavour: checked only; a free HAL
// does not check [kmt-KeIrql].
inline std::optional<Violation> check_raise_irql(nt::KIRQL current, nt::KIRQL irql) noexcept {
    if (irql < current) [[unlikely]]
        return Violation::bug_check(bugcheck::IRQL_NOT_GREATER_OR_EQUAL, nullptr, current, irql, 0,
                                    9)
            .checked_build_only();
    return std::nullopt;
}

// KfLowerIrql to a higher IRQL: IRQL_NOT_LESS_OR_EQUAL (current, new, 0, 9)
// [ros-apic]. Flavour: checked only [kmt-KeIrql].
inline std::optional<Violation> check_lower_irql(nt::KIRQL current, nt::KIRQL irql) noexcept {
    if (irql > current) [[unlikely]]
        return Violation::bug_check(bugcheck::IRQL_NOT_LESS_OR_EQUAL, nullptr, current, irql, 0, 9)
            .checked_build_only();
    return std::nullopt;
}

// ---- Priority increments ----

// A negative priority increment (KeSetEvent, KePulseEvent, KeReleaseSemaphore,
// KeReleaseMutant) that readied a thread below the real-time range: the
// kernel keeps the increment in a SCHAR and ASSERTs it is not negative as it
// readies the thread [ros-thrdschd]; kmtest skips negative increments on
// checked builds [kmt-KeEvent]. A failed ASSERT with no debugger attached is
// KMODE_EXCEPTION_NOT_HANDLED with STATUS_BREAKPOINT [bc:0x1E]. Reported once
// the routine has done its work (the thread is woken: the kernel had readied
// it when it broke in), after the routine's own checks. Flavour: checked
// only; a free build applies the boost rule as it is (a thread at its base
// gains nothing).
inline std::optional<Violation> check_unwait_increment(bool readied_with_negative_increment,
                                                       const void* object) noexcept {
    if (readied_with_negative_increment) [[unlikely]]
        return Violation::bug_check(bugcheck::KMODE_EXCEPTION_NOT_HANDLED, object,
                                    static_cast<nt::ULONG>(nt::STATUS_BREAKPOINT))
            .checked_build_only();
    return std::nullopt;
}

// ---- Critical and guarded regions ----

// Leaving a critical or guarded region never entered: APC_INDEX_MISMATCH with
// parameter 3 the CombinedApcDisable the leave would produce [bc:0x1], at
// the leave itself (decision, kmlab: Windows finds the mismatch only at a
// system call's return or at thread exit, which the emulator's thread exit
// reports as 0x20). Flavour: checked only; kmtest's free-build run leaves a
// region never entered and sees the count reach 1 [kmt-KeApc].
inline std::optional<Violation> check_region_leave(nt::SHORT count, nt::SHORT kernel_after,
                                                   nt::SHORT special_after) noexcept {
    if (count >= 0) [[unlikely]] {
        const nt::ULONG combined =
            (static_cast<nt::ULONG>(static_cast<nt::USHORT>(special_after)) << 16) |
            static_cast<nt::USHORT>(kernel_after);
        return Violation::bug_check(bugcheck::APC_INDEX_MISMATCH, nullptr, 0, 0, combined, 0)
            .checked_build_only();
    }
    return std::nullopt;
}

// ---- FAST_MUTEX (SEMANTICS.md 2.2) ----

// ExAcquireFastMutex, ExTryToAcquireFastMutex: IRQL <= APC_LEVEL, else 0xC4/0x33.
// Flavour: checked only. A free build has only an ASSERT [ros-exh], and
// kmtest's free-build run acquires, tries and releases at DISPATCH_LEVEL and
// HIGH_LEVEL [kmt-ExFastMutex].
inline std::optional<Violation> check_fast_mutex_acquire(nt::PKTHREAD t,
                                                         const void* mutex) noexcept {
    if (t->Irql > nt::APC_LEVEL) [[unlikely]]
        return detail::mutex_verifier(bugcheck::VERIFIER_FAST_MUTEX_ACQUIRE_IRQL, t->Irql, mutex)
            .checked_build_only();
    return std::nullopt;
}

// ExReleaseFastMutex: exactly APC_LEVEL, else 0xC4/0x34. Flavour: checked
// only, as check_fast_mutex_acquire.
inline std::optional<Violation> check_fast_mutex_release(nt::PKTHREAD t,
                                                         const void* mutex) noexcept {
    if (t->Irql != nt::APC_LEVEL) [[unlikely]]
        return detail::mutex_verifier(bugcheck::VERIFIER_FAST_MUTEX_RELEASE_IRQL, t->Irql, mutex)
            .checked_build_only();
    return std::nullopt;
}

namespace detail {
// The Unsafe variants of both mutexes need APC_LEVEL, or a lower IRQL with
// APCs disabled by a critical or guarded region [ddi:exacquirefastmutexunsafe].
inline bool unsafe_irql_allowed(nt::PKTHREAD t) noexcept {
    return t->Irql == nt::APC_LEVEL || (t->Irql < nt::APC_LEVEL && t->CombinedApcDisable != 0);
}
}  // namespace detail

// ExAcquireFastMutexUnsafe, KeAcquireGuardedMutexUnsafe: else 0xC4/0x39.
// Flavour: checked only. A free build has only ASSERTs here [ros-exh], and
// kmtest's free-build run acquires and releases Unsafe below APC_LEVEL
// outside a region and at DISPATCH_LEVEL and HIGH_LEVEL [kmt-ExFastMutex].
// Contended above APC_LEVEL, the acquire would block at that IRQL: every
// flavour bug checks it as a wait there (check_wait_irql, 0xC4/0x3B) before
// the mutex changes, where Windows would hang or crash the processor.
inline std::optional<Violation> check_unsafe_acquire(nt::PKTHREAD t, const void* mutex) noexcept {
    if (!detail::unsafe_irql_allowed(t)) [[unlikely]]
        return detail::mutex_verifier(bugcheck::VERIFIER_UNSAFE_ACQUIRE_IRQL, t->Irql, mutex)
            .checked_build_only();
    return std::nullopt;
}

// ExReleaseFastMutexUnsafe, KeReleaseGuardedMutexUnsafe: else 0xC4/0x3A.
// Flavour: as check_unsafe_acquire.
inline std::optional<Violation> check_unsafe_release(nt::PKTHREAD t, const void* mutex) noexcept {
    if (!detail::unsafe_irql_allowed(t)) [[unlikely]]
        return detail::mutex_verifier(bugcheck::VERIFIER_UNSAFE_RELEASE_IRQL, t->Irql, mutex)
            .checked_build_only();
    return std::nullopt;
}

// ---- KGUARDED_MUTEX (SEMANTICS.md 3.1) ----

// Every KeXxxGuardedMutex: IRQL <= APC_LEVEL, else 0xA. Flavour: checked
// only. A free build has only ASSERTs [ros-gmutex], and kmtest's free-build
// run acquires, tries and releases at DISPATCH_LEVEL and HIGH_LEVEL
// [kmt-KeGuardedMutex]. Contended there, the acquire would block at that
// IRQL: every flavour bug checks it as a wait there (check_wait_irql).
inline std::optional<Violation> check_guarded_mutex_irql(nt::PKTHREAD t,
                                                         const void* mutex) noexcept {
    if (t->Irql > nt::APC_LEVEL) [[unlikely]]
        return check_irql_at_most(nt::APC_LEVEL, t->Irql, mutex)->checked_build_only();
    return std::nullopt;
}

// ---- Ownership of a FAST_MUTEX or KGUARDED_MUTEX ----

// Acquired again by its owner: MUTEX_ALREADY_OWNED (mutex, thread), where
// Windows deadlocks [bc:0xBF].
inline std::optional<Violation> check_not_recursive(nt::PKTHREAD t, const void* mutex,
                                                    nt::PKTHREAD owner) noexcept {
    if (owner == t) [[unlikely]]
        return Violation::bug_check(bugcheck::MUTEX_ALREADY_OWNED, mutex, detail::parameter(mutex),
                                    detail::parameter(t));
    return std::nullopt;
}

// Released by a thread that does not own it: THREAD_NOT_MUTEX_OWNER (mutex,
// owner, caller, 0), where a free build would corrupt Count (SEMANTICS.md 2.2).
inline std::optional<Violation> check_owner(nt::PKTHREAD t, const void* mutex,
                                            nt::PKTHREAD owner) noexcept {
    if (owner != t) [[unlikely]]
        return Violation::bug_check(bugcheck::THREAD_NOT_MUTEX_OWNER, mutex,
                                    detail::parameter(mutex), detail::parameter(owner),
                                    detail::parameter(t));
    return std::nullopt;
}

// ---- KMUTEX and mutants (SEMANTICS.md 1, 4.4) ----

// The IRQL a KeWaitXxx allows: DISPATCH_LEVEL with a zero timeout, else
// APC_LEVEL [ddi:kewaitforsingleobject].
constexpr nt::KIRQL wait_irql_ceiling(bool zero_timeout) noexcept {
    return zero_timeout ? nt::DISPATCH_LEVEL : nt::APC_LEVEL;
}

// A wait above its ceiling: DRIVER_VERIFIER_DETECTED_VIOLATION (0x3B, IRQL,
// object, timeout pointer), above DISPATCH_LEVEL too.
inline std::optional<Violation> check_wait_irql(nt::KIRQL irql, nt::KIRQL ceiling,
                                                const void* object,
                                                const void* timeout = nullptr) noexcept {
    if (irql > ceiling) [[unlikely]]
        return Violation::bug_check(bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, object,
                                    bugcheck::VERIFIER_WAIT_AT_DISPATCH, irql,
                                    detail::parameter(object), detail::parameter(timeout));
    return std::nullopt;
}

// The answer to a wait that would acquire a mutant once more than MINLONG
// times: STATUS_MUTANT_LIMIT_EXCEEDED is raised, nothing changes (SEMANTICS.md 1.4).
inline Violation mutant_limit_exceeded(const void* mutant) noexcept {
    return Violation::raised(nt::STATUS_MUTANT_LIMIT_EXCEEDED, mutant);
}

// The owner of a mutant at SignalState MINLONG may not acquire it again [ros-wait].
inline std::optional<Violation> check_mutant_limit(nt::PKTHREAD t, const void* mutant,
                                                   nt::PKTHREAD owner,
                                                   nt::LONG signal_state) noexcept {
    if (owner == t && signal_state == nt::MINLONG) [[unlikely]]
        return mutant_limit_exceeded(mutant);
    return std::nullopt;
}

// KeReleaseMutex, KeReleaseMutant: IRQL <= DISPATCH_LEVEL, else 0xA.
inline std::optional<Violation> check_mutant_release_irql(nt::PKTHREAD t,
                                                          const void* mutant) noexcept {
    return check_irql_at_most(nt::DISPATCH_LEVEL, t->Irql, mutant);
}

// Released by a thread that does not own it: raises STATUS_MUTANT_NOT_OWNED,
// or STATUS_ABANDONED for an abandoned mutant, and changes nothing
// (SEMANTICS.md 1.3 step 2).
inline std::optional<Violation> check_mutant_owner(nt::PKTHREAD t, const void* mutant,
                                                   nt::PKTHREAD owner,
                                                   bool abandoned = false) noexcept {
    if (owner != t) [[unlikely]]
        return Violation::raised(abandoned ? nt::STATUS_ABANDONED : nt::STATUS_MUTANT_NOT_OWNED,
                                 mutant);
    return std::nullopt;
}

}  // namespace kmlab::kernel
