// The kernel's rules for ERESOURCE, in the pattern of rules.hpp: each a pure
// check returning the kernel's answer (a Violation) or nothing. The NT
// routines (kernel/src/resource.cpp) enforce them; kmlab::Resource<T>
// (mutexes/resource.hpp) returns them as Errors before anything happens.
//
// Flavours: today `checked` is "checked build + Driver Verifier"; each rule
// says which of the two reports it, for the `verifier` flavour to come.
#pragma once

#include <optional>

#include <kmlab/kernel/resource.hpp>
#include <kmlab/kernel/rules.hpp>

namespace kmlab::kernel {

namespace detail {
// Normal kernel APCs are disabled: a critical or guarded region, or IRQL
// APC_LEVEL or above [ddi:exacquireresourcesharedlite] ("Normal kernel APC
// delivery must be disabled before calling this routine").
inline bool resource_apcs_disabled(nt::PKTHREAD t) noexcept {
    return t->Irql >= nt::APC_LEVEL || t->CombinedApcDisable != 0;
}
// Driver Verifier's report on a resource: (subcode, IRQL, thread APC
// disable count, resource) [bc:0xC4].
inline Violation resource_verifier(nt::ULONG_PTR subcode, nt::PKTHREAD t,
                                   const void* resource) noexcept {
    return Violation::bug_check(bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, resource, subcode,
                                t->Irql, t->CombinedApcDisable, parameter(resource));
}
}  // namespace detail

// Every acquire (the four ExAcquireXxx and the idiomatic lock()s and
// try_lock()s): IRQL <= APC_LEVEL, Wait = TRUE or FALSE alike: each routine's
// page lists IRQL <= APC_LEVEL and names no exception for Wait = FALSE
// [ddi:exacquireresourceexclusivelite][ddi:exacquireresourcesharedlite] (an
// earlier kmlab allowed DISPATCH_LEVEL for Wait = FALSE; no source says so).
// Above that: IRQL_NOT_LESS_OR_EQUAL (resource, IRQL, 0, 0). Flavour:
// checked only, a checked build's ASSERT (ReactOS has only
// ASSERT(KeIsExecutingDpc() == FALSE) [ros-resource]). In the free flavour an
// acquire above APC_LEVEL is granted if it need not block, and one that has
// to block bug checks as a wait there (check_wait_irql, every flavour) before
// the resource changes; `wait` is kept for that caller.
inline std::optional<Violation> check_resource_acquire_irql(nt::PKTHREAD t, const void* resource,
                                                            bool /*wait*/) noexcept {
    return check_irql_at_most(nt::APC_LEVEL, t->Irql, resource).transform([](const Violation& v) {
        return v.checked_build_only();
    });
}

// Every acquire below APC_LEVEL with normal kernel APCs enabled (outside a
// critical region): DRIVER_VERIFIER_DETECTED_VIOLATION (0x37, IRQL, APC
// disable count, resource) [bc:0xC4]. Flavour: Driver Verifier (a checked
// ReactOS build breaks into the debugger instead, and not for system
// threads [ros-resource]; kmlab follows the verifier and exempts none).
inline std::optional<Violation> check_resource_acquire_region(nt::PKTHREAD t,
                                                              const void* resource) noexcept {
    if (!detail::resource_apcs_disabled(t)) [[unlikely]]
        return detail::resource_verifier(bugcheck::VERIFIER_RESOURCE_ACQUIRE_APCS_ENABLED, t,
                                         resource)
            .verifier_only();
    return std::nullopt;
}

// Every release (ExReleaseResourceLite, ExReleaseResourceForThreadLite,
// ExConvertExclusiveToSharedLite): IRQL <= DISPATCH_LEVEL
// [ddi:exreleaseresourcelite]: 0xA otherwise, checked only (an ASSERT).
inline std::optional<Violation> check_resource_release_irql(nt::PKTHREAD t,
                                                            const void* resource) noexcept {
    return check_irql_at_most(nt::DISPATCH_LEVEL, t->Irql, resource)
        .transform([](const Violation& v) { return v.checked_build_only(); });
}

// A release with normal kernel APCs enabled: 0xC4/0x38 (IRQL, APC disable
// count, resource) [bc:0xC4]. Flavour: Driver Verifier.
inline std::optional<Violation> check_resource_release_region(nt::PKTHREAD t,
                                                              const void* resource) noexcept {
    if (!detail::resource_apcs_disabled(t)) [[unlikely]]
        return detail::resource_verifier(bugcheck::VERIFIER_RESOURCE_RELEASE_APCS_ENABLED, t,
                                         resource)
            .verifier_only();
    return std::nullopt;
}

// A release by a thread (or for an owner) that owns nothing of it:
// RESOURCE_NOT_OWNED (resource, thread, owner table, 3), as ReactOS bug
// checks a shared release it cannot find [ros-resource][bc:0xE3]. Every
// flavour. Decision, kmlab: ReactOS only ASSERTs the owner of an exclusive
// release (a free build would release another thread's ownership); the
// emulator bug checks that one too, in every flavour, since going on would
// corrupt the resource.
inline std::optional<Violation> check_resource_owner(bool owns, const nt::ERESOURCE* resource,
                                                     nt::ERESOURCE_THREAD thread) noexcept {
    if (!owns) [[unlikely]]
        return Violation::bug_check(bugcheck::RESOURCE_NOT_OWNED, resource,
                                    detail::parameter(resource), thread,
                                    detail::parameter(resource->OwnerTable), 3);
    return std::nullopt;
}

// An exclusive acquire with Wait = TRUE by a thread that owns the resource
// shared: the kernel waits for itself forever (ReactOS has no check
// [ros-resource]; the kmtest says "TRUE would deadlock" [kmt-ExResource]),
// which Driver Verifier's deadlock detection reports as 0xC4/0x1001
// [bc:0xC4]. Parameters (0x1001, resource, thread, 0): decision, kmlab (the
// page does not list this subcode's parameters). Every flavour: the emulator
// answers where Windows would hang, as it does for a recursive FAST_MUTEX
// (rules.hpp check_not_recursive). With Wait = FALSE the acquire returns
// FALSE [kmt-ExResource].
inline std::optional<Violation> check_resource_upgrade(bool owns_shared, bool wait, nt::PKTHREAD t,
                                                       const void* resource) noexcept {
    if (owns_shared && wait) [[unlikely]]
        return Violation::bug_check(bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, resource,
                                    bugcheck::VERIFIER_DEADLOCK_DETECTED,
                                    detail::parameter(resource), detail::parameter(t), 0);
    return std::nullopt;
}

// ExAcquireSharedWaitForExclusive with Wait = TRUE by a thread that owns
// the resource shared while an exclusive acquirer waits: the routine waits
// behind that acquirer [ddi:exacquiresharedwaitforexclusive], which waits
// for the caller's own hold, so Windows hangs. Decision, kmlab: answered as
// the upgrade is (check_resource_upgrade: 0xC4/0x1001, every flavour), with
// nothing changed. Limit: a program in which another thread would release
// the caller's hold for it (ExReleaseResourceForThreadLite) and so end the
// wait is refused too.
inline Violation check_resource_shared_reacquire(nt::PKTHREAD t, const void* resource) noexcept {
    return *check_resource_upgrade(true, true, t, resource);
}

// ExConvertExclusiveToSharedLite by a thread that is not the exclusive
// owner: the kernel ASSERTs (ReactOS [ros-resource]; the kmtest calls it on
// a shared resource only on free builds, where it changes nothing
// [kmt-ExResource]). Flavour: checked only, the failed ASSERT:
// KMODE_EXCEPTION_NOT_HANDLED (STATUS_BREAKPOINT) [bc:0x1E]; the free flavour
// returns without changing anything.
inline std::optional<Violation> check_resource_convert(bool owns_exclusive,
                                                       const void* resource) noexcept {
    if (!owns_exclusive) [[unlikely]]
        return Violation::bug_check(bugcheck::KMODE_EXCEPTION_NOT_HANDLED, resource,
                                    static_cast<nt::ULONG>(nt::STATUS_BREAKPOINT))
            .checked_build_only();
    return std::nullopt;
}

// ExDeleteResourceLite (or ExReinitializeResourceLite) on a resource that
// is owned or waited for: the checked build's ASSERTs (ReactOS asserts no
// waiters [ros-resource]; kmlab asserts no owner either),
// KMODE_EXCEPTION_NOT_HANDLED (STATUS_BREAKPOINT). Flavour: checked only. In
// the free flavour the delete goes on, but leaves the waiter objects that
// threads still wait on allocated (decision, kmlab: a leak, not a
// use-after-free in the emulator).
inline std::optional<Violation> check_resource_delete(bool in_use, const void* resource) noexcept {
    if (in_use) [[unlikely]]
        return Violation::bug_check(bugcheck::KMODE_EXCEPTION_NOT_HANDLED, resource,
                                    static_cast<nt::ULONG>(nt::STATUS_BREAKPOINT))
            .checked_build_only();
    return std::nullopt;
}

}  // namespace kmlab::kernel
