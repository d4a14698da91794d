// GuardedMutex<T, Backend>: a KGUARDED_MUTEX that owns the value it guards.
//
// Kernel semantics (SEMANTICS.md 3): not recursive; acquiring enters a guarded
// region (SpecialApcDisable) and leaves the IRQL alone; releasing leaves it.
// Same Count as FastMutex.
//
// IRQL rules: everything at IRQL <= APC_LEVEL (else bug check 0xA).
//
// Illegal uses, and what they return:
//   lock() by the owner         Errc::recursive_acquire (bug check 0xBF; Windows deadlocks)
//   try_lock() by the owner     Errc::busy (KeTryToAcquireGuardedMutex returns FALSE)
//   release by another thread   Errc::not_owner (bug check 0x11)
//   into_inner() while held     Errc::guard_alive (the owner's guard too)
#pragma once

#include <kmlab/mutexes/lock_bit_mutex.hpp>

namespace kmlab {

namespace detail {
struct GuardedMutexRules {
    static constexpr std::string_view kind = "GuardedMutex";
    static constexpr bool raises_irql = false;
    static std::optional<kernel::Violation> check_acquire(nt::PKTHREAD t, const void* m) noexcept {
        return kernel::check_guarded_mutex_irql(t, m);
    }
    // KeEnterGuardedRegion; the token is unused (the IRQL is left alone).
    static nt::KIRQL enter(nt::PKTHREAD t) noexcept {
        t->SpecialApcDisable = static_cast<nt::SHORT>(t->SpecialApcDisable - 1);
        return t->Irql;
    }
    // KeLeaveGuardedRegion.
    static void leave(nt::PKTHREAD t, nt::KIRQL) noexcept {
        t->SpecialApcDisable = static_cast<nt::SHORT>(t->SpecialApcDisable + 1);
    }
    // check_release's compare through the gate word: also true with the
    // verifier on (kernel/verifier.hpp).
    static bool release_gate(nt::PKTHREAD t) noexcept { return t->IrqlGate > nt::APC_LEVEL; }
    static std::optional<kernel::Violation> check_release(nt::PKTHREAD t, const void* m) noexcept {
        return kernel::check_guarded_mutex_irql(t, m);
    }
    // In KeReleaseGuardedMutex's order: the IRQL, then ownership.
    static Error release_error(nt::PKTHREAD t, nt::PKTHREAD owner, const void* m) noexcept {
        if (auto v = check_release(t, m)) return from_violation(Errc::irql_too_high, *v, t->Irql);
        return from_violation(Errc::not_owner, kernel::check_owner(t, m, owner).value(), t->Irql);
    }
};
}  // namespace detail

template <class T = std::monostate, backends::WaitBackend Backend = backends::Futex>
using GuardedMutex = detail::LockBitMutex<T, Backend, detail::GuardedMutexRules>;

}  // namespace kmlab
