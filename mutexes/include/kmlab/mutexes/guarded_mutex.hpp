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
#pragma once

#include <kmlab/mutexes/lock_bit_mutex.hpp>

namespace kmlab {

namespace detail {
struct GuardedMutexRules {
    static constexpr std::string_view kind = "GuardedMutex";
    static constexpr bool raises_irql = false;
    static Error acquire_irql_error(nt::KIRQL irql, const void* m) noexcept {
        return make_error(Errc::irql_too_high, irql, m, 0, bugcheck::IRQL_NOT_LESS_OR_EQUAL);
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
    static bool release_allowed(nt::PKTHREAD t) noexcept { return t->Irql <= nt::APC_LEVEL; }
    static Error release_error(nt::PKTHREAD t, nt::PKTHREAD owner, const void* m) noexcept {
        if (t->Irql > nt::APC_LEVEL) return acquire_irql_error(t->Irql, m);
        return make_error(Errc::not_owner, t->Irql, m, 0, bugcheck::THREAD_NOT_MUTEX_OWNER,
                          reinterpret_cast<nt::ULONG_PTR>(owner));
    }
};
}  // namespace detail

template <class T = std::monostate, backends::WaitBackend Backend = backends::Futex>
using GuardedMutex = detail::LockBitMutex<T, Backend, detail::GuardedMutexRules>;

}  // namespace kmlab
