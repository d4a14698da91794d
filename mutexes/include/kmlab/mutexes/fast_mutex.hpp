// FastMutex<T, Backend>: a FAST_MUTEX that owns the value it guards.
//
// Kernel semantics (SEMANTICS.md 2): not recursive; acquiring raises the
// IRQL to APC_LEVEL and the guard restores the caller's IRQL on release.
// Count reads 1 when free and 0 when held without waiters, as the kernel's
// does; with backends::Dispatcher it keeps the kernel's whole lock-bit
// encoding and waiters block on a SynchronizationEvent, as a FAST_MUTEX's do
// (kmlab/mutexes/raw.hpp says what the other backends do with waiters).
//
// IRQL rules: lock() and try_lock() at IRQL <= APC_LEVEL (else 0xC4/0x33);
// release at exactly APC_LEVEL (else Errc::wrong_release_irql, 0xC4/0x34).
//
// Illegal uses, and what they return:
//   lock() by the owner         Errc::recursive_acquire (bug check 0xBF; Windows deadlocks)
//   try_lock() by the owner     Errc::busy (ExTryToAcquireFastMutex returns FALSE)
//   release by another thread   Errc::not_owner (bug check 0x11)
//   into_inner() while held     Errc::guard_alive (the owner's guard too)
#pragma once

#include <kmlab/mutexes/lock_bit_mutex.hpp>

namespace kmlab {

namespace detail {
struct FastMutexRules {
    static constexpr std::string_view kind = "FastMutex";
    static constexpr bool raises_irql = true;
    static std::optional<kernel::Violation> check_acquire(nt::PKTHREAD t, const void* m) noexcept {
        return kernel::check_fast_mutex_acquire(t, m);
    }
    // Raise to APC_LEVEL; the token is the IRQL to restore.
    static nt::KIRQL enter(nt::PKTHREAD t) noexcept {
        const nt::KIRQL old = t->Irql;
        t->Irql = nt::APC_LEVEL;
        return old;
    }
    static void leave(nt::PKTHREAD t, nt::KIRQL old) noexcept { t->Irql = old; }
    // check_release's compare through the gate word: also true with the
    // verifier on (kernel/verifier.hpp).
    static bool release_gate(nt::PKTHREAD t) noexcept { return t->IrqlGate != nt::APC_LEVEL; }
    static std::optional<kernel::Violation> check_release(nt::PKTHREAD t, const void* m) noexcept {
        return kernel::check_fast_mutex_release(t, m);
    }
    // Ownership first, where ExReleaseFastMutex checks the IRQL first: a guard
    // moved to another thread is released at that thread's IRQL, which is not
    // the one its acquisition raised, so the error names the cause.
    static Error release_error(nt::PKTHREAD t, nt::PKTHREAD owner, const void* m) noexcept {
        if (auto v = kernel::check_owner(t, m, owner))
            return from_violation(Errc::not_owner, *v, t->Irql);
        return from_violation(Errc::wrong_release_irql, check_release(t, m).value(), t->Irql);
    }
};
}  // namespace detail

template <class T = std::monostate, backends::WaitBackend Backend = backends::Futex>
using FastMutex = detail::LockBitMutex<T, Backend, detail::FastMutexRules>;

}  // namespace kmlab
