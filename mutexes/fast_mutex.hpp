// FastMutex<T, Backend>: a FAST_MUTEX that owns the value it guards.
//
// Kernel semantics (SEMANTICS.md 2): not recursive; acquiring raises the
// IRQL to APC_LEVEL and the guard restores the caller's IRQL on release. The
// Count word keeps the kernel's lock-bit encoding on every backend; with
// backends::Dispatcher the waiters block on a SynchronizationEvent exactly
// as a FAST_MUTEX's do.
//
// IRQL rules: lock() and try_lock() at IRQL <= APC_LEVEL (else 0xC4/0x33);
// release at exactly APC_LEVEL (else Errc::wrong_release_irql, 0xC4/0x34).
//
// Illegal uses, and what they return:
//   lock() by the owner         Errc::recursive_acquire (bug check 0xBF; Windows deadlocks)
//   try_lock() by the owner     Errc::busy (ExTryToAcquireFastMutex returns FALSE)
//   release by another thread   Errc::not_owner (bug check 0x11)
#pragma once

#include <expected>
#include <variant>

#include "mutexes/guard.hpp"
#include "mutexes/raw.hpp"

namespace kmlab {

template <class T = std::monostate, backends::WaitBackend Backend = backends::Futex>
class FastMutex {
  public:
    using value_type = T;
    using backend = Backend;
    using Guard = detail::Guard<FastMutex>;
    using guard_token = nt::KIRQL;  // the IRQL to restore
    static constexpr std::string_view kind() { return "FastMutex"; }

    template <class... Args>
    explicit FastMutex(Args&&... args) : value_(std::forward<Args>(args)...) {}
    FastMutex(const FastMutex&) = delete;
    FastMutex& operator=(const FastMutex&) = delete;

    std::expected<Guard, Error> lock() {
        nt::PKTHREAD t = kernel::current_thread();
        const nt::KIRQL irql = t->Irql;
        if (irql > nt::APC_LEVEL) [[unlikely]]
            return std::unexpected(too_high(irql));
        t->Irql = nt::APC_LEVEL;
        // A recursive acquisition always fails the fast path, so ownership is
        // checked only there: the uncontended path pays nothing for it.
        if (!raw_.try_lock()) [[unlikely]] {
            if (auto e = lock_slow(t, irql)) return std::unexpected(*e);
        }
        raw_.set_owner(t);
        return Guard(this, irql);
    }

    std::expected<Guard, Error> try_lock() {
        nt::PKTHREAD t = kernel::current_thread();
        const nt::KIRQL irql = t->Irql;
        if (irql > nt::APC_LEVEL) [[unlikely]]
            return std::unexpected(too_high(irql));
        if (!raw_.try_lock())
            return std::unexpected(detail::make_error(Errc::busy, irql, this, nt::STATUS_TIMEOUT));
        t->Irql = nt::APC_LEVEL;
        raw_.set_owner(t);
        return Guard(this, irql);
    }

    nt::PKTHREAD owner() const noexcept { return raw_.owner(); }
    nt::LONG count() const noexcept { return raw_.count(); }
    nt::ULONG contention() const noexcept { return raw_.contention(); }
    bool is_initial_state() const noexcept { return raw_.debug_is_free(); }

  private:
    friend Guard;

    Error too_high(nt::KIRQL irql) const noexcept {
        return detail::make_error(Errc::irql_too_high, irql, this, 0,
                                  bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                                  bugcheck::VERIFIER_FAST_MUTEX_ACQUIRE_IRQL);
    }

    [[gnu::noinline]] std::optional<Error> lock_slow(nt::PKTHREAD t, nt::KIRQL irql) {
        if (raw_.owner() == t) {
            t->Irql = irql;
            return detail::make_error(Errc::recursive_acquire, irql, this, 0,
                                      bugcheck::MUTEX_ALREADY_OWNED,
                                      reinterpret_cast<nt::ULONG_PTR>(t));
        }
        raw_.lock_contended();
        return std::nullopt;
    }

    // Checks, then releases; on error releases nothing. One function, so the
    // thread pointer read for the check stays in a register for the release.
    T& value_for(nt::KIRQL) noexcept { return value_; }

    std::optional<Error> release_checked(nt::KIRQL saved_irql, bool) {
        // A thread that never called into the emulator owns nothing: no need
        // to create its KTHREAD just to find that out.
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (raw_.owner() != t || t->Irql != nt::APC_LEVEL) [[unlikely]]
            return release_error();
        raw_.set_owner(nullptr);
        raw_.unlock();
        t->Irql = saved_irql;
        return std::nullopt;
    }

    [[gnu::noinline]] Error release_error() const noexcept {
        nt::PKTHREAD t = kernel::current_thread();
        if (raw_.owner() != t)
            return detail::make_error(Errc::not_owner, t->Irql, this, 0,
                                      bugcheck::THREAD_NOT_MUTEX_OWNER,
                                      reinterpret_cast<nt::ULONG_PTR>(raw_.owner()));
        return detail::make_error(Errc::wrong_release_irql, t->Irql, this, 0,
                                  bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                                  bugcheck::VERIFIER_FAST_MUTEX_RELEASE_IRQL);
    }

    detail::RawLockBit<Backend> raw_;
    T value_;
};

}  // namespace kmlab
