// The rules of EX_PUSH_LOCK and EX_SPIN_LOCK, each a pure check in the
// pattern of rules.hpp: it reads the caller's state and the lock word,
// changes nothing, and returns what the kernel does when the rule is broken.
// The NT routines (push_lock.cpp, ex_spin_lock.cpp) enforce them; the
// idiomatic PushLock and RwSpinLock return them as Errors.
//
// Flavours: every rule here is `checked` today. Each says which part of a
// checked system reports it: "checked build" (an ASSERT or check in the
// checked kernel or HAL) or "verifier" (Driver Verifier's checks), for the
// issue that splits a verifier flavour off. A free build lets the call
// proceed, except where it would block or spin at an IRQL where nothing
// could release it: that stays a bug check in every flavour (check_wait_irql).
//
// Neither lock keeps an owner [ddi:exinitializepushlock: "no support
// routines for determining the current owner"], so recursion cannot be
// checked: a recursive exclusive acquire hangs, as the documentation says
// it does [ddi:exacquirepushlockexclusive][ddi:exacquirespinlockexclusive].
#pragma once

#include <optional>

#include <kmlab/kernel/rules.hpp>
#include <kmlab/kernel/rw_lock_algorithm.hpp>

namespace kmlab::kernel {

namespace detail {
// A failed ASSERT of a checked build with no debugger attached:
// KMODE_EXCEPTION_NOT_HANDLED with STATUS_BREAKPOINT [bc:0x1E] (as
// check_unwait_increment in rules.hpp).
inline Violation failed_assert(const void* object) noexcept {
    return Violation::bug_check(bugcheck::KMODE_EXCEPTION_NOT_HANDLED, object,
                                static_cast<nt::ULONG>(nt::STATUS_BREAKPOINT))
        .checked_build_only();
}
}  // namespace detail

// ---- EX_PUSH_LOCK ----

// Every Ex...PushLock acquire and release: IRQL <= APC_LEVEL [ros-ex-h:
// "Callers ... must be running at IRQL <= APC_LEVEL"], else
// IRQL_NOT_LESS_OR_EQUAL (lock,
// IRQL, 0, 0). Flavour: checked (verifier: Driver Verifier's IRQL checking;
// the free kernel's fast path is one compare-exchange that checks nothing).
// Contended there, an acquire would sleep at that IRQL: every flavour bug
// checks that as a wait (check_wait_irql, 0xC4/0x3B) before the lock changes.
inline std::optional<Violation> check_push_lock_irql(nt::PKTHREAD t, const void* lock) noexcept {
    if (t->Irql > nt::APC_LEVEL) [[unlikely]]
        return check_irql_at_most(nt::APC_LEVEL, t->Irql, lock)->checked_build_only();
    return std::nullopt;
}

// Ex...PushLock acquires need normal kernel APCs disabled: "Before calling
// this routine, the driver must disable normal kernel APC delivery by
// calling KeEnterCriticalRegion" [ddi:exacquirepushlockexclusive]
// [ddi:exacquirepushlockshared] (a guarded region, or APC_LEVEL, disables
// them too). Decision, kmlab: no Windows source shows who reports it; the
// checked flavour answers as a checked build's failed ASSERT (0x1E,
// STATUS_BREAKPOINT). Flavour: checked (checked build). (The Flt routines
// enter a critical region themselves [ddi:fltacquirepushlockexclusive].)
inline std::optional<Violation> check_push_lock_apcs(nt::PKTHREAD t, const void* lock) noexcept {
    if (t->CombinedApcDisable == 0 && t->Irql < nt::APC_LEVEL) [[unlikely]]
        return detail::failed_assert(lock);
    return std::nullopt;
}

// A release must find the lock held, and an exclusive release must find no
// reader: ReactOS's inlines ASSERT(PushLock->Locked) and, for the exclusive
// release, ASSERT(OldValue.Waiting || OldValue.Shared == 0) [ros-ex-h].
// Decision, kmlab: a shared release of an exclusively held lock is refused
// the same way. Flavour: checked (checked build). A free build goes on; the
// algorithm leaves a free lock free.
inline std::optional<Violation> check_push_lock_release(nt::ULONG_PTR word, bool exclusive,
                                                        const void* lock) noexcept {
    namespace push = rw_lock::push;
    const bool held = (word & push::kLocked) != 0;
    const bool shared = push::has_shares(word);
    if (!held || shared == exclusive) [[unlikely]]
        return detail::failed_assert(lock);
    return std::nullopt;
}

// ---- the idiomatic types' guards (PushLock, RwSpinLock) ----

// A guard released on a thread other than the one that acquired it (the
// guard was moved there). Neither kernel lock keeps an owner, so Windows
// checks nothing; but RwSpinLock's guard restores the IRQL saved on the
// acquiring thread, which on another thread would raise or lower the wrong
// thread, and PushLock's recursion check names the acquiring thread as the
// owner. Decision, kmlab: guards are bound to their thread, as SpinLock's
// are (there SPIN_LOCK_NOT_OWNED); the release is refused before anything
// changes and answered as a checked build's failed ASSERT (0x1E,
// STATUS_BREAKPOINT). Flavour: checked (checked build).
inline std::optional<Violation> check_rw_guard_thread(nt::PKTHREAD t, nt::PKTHREAD acquirer,
                                                      const void* lock) noexcept {
    if (t != acquirer) [[unlikely]]
        return detail::failed_assert(lock);
    return std::nullopt;
}

// ---- EX_SPIN_LOCK ----

// ExAcquireSpinLockShared / ...Exclusive: "On entry to this routine, the
// caller must be running at IRQL <= DISPATCH_LEVEL" [ddi:exacquirespinlockexclusive]
// [ddi:exacquirespinlockshared]. Above it, the raise to DISPATCH_LEVEL is a
// raise to a lower IRQL, which the checked HAL reports as
// IRQL_NOT_GREATER_OR_EQUAL (current, DISPATCH_LEVEL, 0, 9) [ros-apic]
// (rules.hpp check_raise_irql). Flavour: checked (checked build: the HAL).
inline std::optional<Violation> check_ex_spin_raise(nt::PKTHREAD t) noexcept {
    return check_raise_irql(t->Irql, nt::DISPATCH_LEVEL);
}

// The ...AtDpcLevel and ...FromDpcLevel forms, the tries and the convert:
// the caller runs at IRQL >= DISPATCH_LEVEL
// [ddi:exacquirespinlockexclusiveatdpclevel][ddi:extryconvertsharedspinlockexclusive].
// Decision, kmlab: below it, IRQL_NOT_GREATER_OR_EQUAL (IRQL,
// DISPATCH_LEVEL, lock, 0): the IRQL is not greater or equal to the one the
// routine needs (no Windows source shows a check). Flavour: checked
// (verifier: Driver Verifier's IRQL checking).
inline std::optional<Violation> check_ex_spin_at_dpc(nt::PKTHREAD t, const void* lock) noexcept {
    if (t->Irql < nt::DISPATCH_LEVEL) [[unlikely]]
        return Violation::bug_check(bugcheck::IRQL_NOT_GREATER_OR_EQUAL, lock, t->Irql,
                                    nt::DISPATCH_LEVEL, detail::parameter(lock), 0)
            .checked_build_only();
    return std::nullopt;
}

// ExReleaseSpinLockShared / ...Exclusive lower the IRQL to OldIrql, so they
// take KeLowerIrql's rule: lowering to a higher IRQL is IRQL_NOT_LESS_OR_EQUAL
// (current, new, 0, 9) [ros-apic] (rules.hpp check_lower_irql). Flavour:
// checked (checked build: the HAL).
inline std::optional<Violation> check_ex_spin_lower(nt::PKTHREAD t, nt::KIRQL old_irql) noexcept {
    return check_lower_irql(t->Irql, old_irql);
}

// A release must find the lock held in its mode: exclusive, the word is the
// writer's alone; shared, at least one reader. ExTryConvertSharedSpinLockExclusive
// needs a shared hold ("The caller must already own this spin lock for
// shared access" [ddi:extryconvertsharedspinlockexclusive]). Decision,
// kmlab: a checked build's failed ASSERT (0x1E, STATUS_BREAKPOINT). Flavour:
// checked (checked build). The free flavour proceeds as a free build would:
// a shared release of a free lock corrupts the word, as Windows' would.
inline std::optional<Violation> check_ex_spin_held(nt::LONG word, bool exclusive,
                                                   const void* lock) noexcept {
    const bool ok =
        exclusive ? rw_lock::ex_spin::held_exclusive(word) : rw_lock::ex_spin::readers(word) != 0;
    if (!ok) [[unlikely]]
        return detail::failed_assert(lock);
    return std::nullopt;
}

}  // namespace kmlab::kernel
