// GuardedMutex<T, Backend>: a KGUARDED_MUTEX that owns the value it guards.
//
// Kernel semantics (SEMANTICS.md 3): not recursive; acquiring enters a guarded
// region (SpecialApcDisable) and leaves the IRQL alone; releasing leaves it.
// Same lock-bit Count as FastMutex.
//
// IRQL rules: everything at IRQL <= APC_LEVEL (else bug check 0xA).
//
// Illegal uses, and what they return:
//   lock() by the owner         Errc::recursive_acquire (bug check 0xBF; Windows deadlocks)
//   try_lock() by the owner     Errc::busy (KeTryToAcquireGuardedMutex returns FALSE)
//   release by another thread   Errc::not_owner (bug check 0x11)
#pragma once

#include <expected>
#include <variant>

#include "mutexes/guard.hpp"
#include "mutexes/raw.hpp"

namespace kmlab {

template <class T = std::monostate, backends::WaitBackend Backend = backends::Futex>
class GuardedMutex {
  public:
    using value_type = T;
    using backend = Backend;
    using Guard = detail::Guard<GuardedMutex>;
    using guard_token = nt::KIRQL;  // unused: a guarded region leaves the IRQL alone
    static constexpr std::string_view kind() { return "GuardedMutex"; }

    template <class... Args>
    explicit GuardedMutex(Args&&... args) : value_(std::forward<Args>(args)...) {}
    GuardedMutex(const GuardedMutex&) = delete;
    GuardedMutex& operator=(const GuardedMutex&) = delete;

    std::expected<Guard, Error> lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->Irql > nt::APC_LEVEL) [[unlikely]]
            return std::unexpected(too_high(t->Irql));
        t->SpecialApcDisable =
            static_cast<nt::SHORT>(t->SpecialApcDisable - 1);  // KeEnterGuardedRegion
        // Ownership is checked only when the fast path fails (see FastMutex).
        if (!raw_.try_lock()) [[unlikely]] {
            if (auto e = lock_slow(t)) return std::unexpected(*e);
        }
        raw_.set_owner(t);
        return Guard(this, t->Irql);
    }

    std::expected<Guard, Error> try_lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->Irql > nt::APC_LEVEL) [[unlikely]]
            return std::unexpected(too_high(t->Irql));
        if (!raw_.try_lock())
            return std::unexpected(
                detail::make_error(Errc::busy, t->Irql, this, nt::STATUS_TIMEOUT));
        t->SpecialApcDisable = static_cast<nt::SHORT>(t->SpecialApcDisable - 1);
        raw_.set_owner(t);
        return Guard(this, t->Irql);
    }

    nt::PKTHREAD owner() const noexcept { return raw_.owner(); }
    nt::LONG count() const noexcept { return raw_.count(); }
    nt::ULONG contention() const noexcept { return raw_.contention(); }
    bool is_initial_state() const noexcept { return raw_.debug_is_free(); }

  private:
    friend Guard;

    Error too_high(nt::KIRQL irql) const noexcept {
        return detail::make_error(Errc::irql_too_high, irql, this, 0,
                                  bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    }

    [[gnu::noinline]] std::optional<Error> lock_slow(nt::PKTHREAD t) {
        if (raw_.owner() == t) {
            t->SpecialApcDisable = static_cast<nt::SHORT>(t->SpecialApcDisable + 1);
            return detail::make_error(Errc::recursive_acquire, t->Irql, this, 0,
                                      bugcheck::MUTEX_ALREADY_OWNED,
                                      reinterpret_cast<nt::ULONG_PTR>(t));
        }
        raw_.lock_contended();
        return std::nullopt;
    }

    // Checks, then releases; on error releases nothing. One function, so the
    // thread pointer read for the check stays in a register for the release.
    T& value_for(nt::KIRQL) noexcept { return value_; }

    std::optional<Error> release_checked(nt::KIRQL, bool) {
        // A thread that never called into the emulator owns nothing: no need
        // to create its KTHREAD just to find that out.
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (raw_.owner() != t || t->Irql > nt::APC_LEVEL) [[unlikely]]
            return release_error();
        raw_.set_owner(nullptr);
        raw_.unlock();
        t->SpecialApcDisable =
            static_cast<nt::SHORT>(t->SpecialApcDisable + 1);  // KeLeaveGuardedRegion
        return std::nullopt;
    }

    [[gnu::noinline]] Error release_error() const noexcept {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->Irql > nt::APC_LEVEL) return too_high(t->Irql);
        return detail::make_error(Errc::not_owner, t->Irql, this, 0,
                                  bugcheck::THREAD_NOT_MUTEX_OWNER,
                                  reinterpret_cast<nt::ULONG_PTR>(raw_.owner()));
    }

    detail::RawLockBit<Backend> raw_;
    T value_;
};

}  // namespace kmlab
