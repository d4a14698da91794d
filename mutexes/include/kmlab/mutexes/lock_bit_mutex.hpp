// The non-recursive kernel mutexes, written once: FastMutex and GuardedMutex
// are LockBitMutex with different Rules (fast_mutex.hpp, guarded_mutex.hpp).
//
// A Rules type says what surrounds the lock and which of the kernel's rules
// (kernel/rules.hpp) it answers to; recursion (0xBF) and release by a
// non-owner (0x11) are the same for both and checked here:
//   kind                            printable type name
//   raises_irql                     true if holding it raises the IRQL to APC_LEVEL
//   check_acquire(t, m)             the IRQL rule of lock() and try_lock()
//   enter(t) -> KIRQL token         before acquiring (raise IRQL / enter region);
//                                   the token goes to the guard
//   leave(t, token)                 after releasing, or after a failed acquire
//   check_release(t, m)             the IRQL rule of the release
//   release_error(t, owner, m)      the Error for an illegal release: the first
//                                   rule it breaks, in the type's order
#pragma once

#include <expected>
#include <string_view>
#include <variant>

#include <kmlab/kernel/verifier.hpp>
#include <kmlab/mutexes/guard.hpp>
#include <kmlab/mutexes/raw.hpp>

namespace kmlab::detail {

template <class T, backends::WaitBackend Backend, class Rules>
class LockBitMutex {
  public:
    using value_type = T;
    using backend = Backend;
    using Guard = detail::Guard<LockBitMutex>;
    using guard_token = nt::KIRQL;  // what Rules::enter returned, for Rules::leave
    static constexpr std::string_view kind() { return Rules::kind; }
    // Traits (tests and benchmarks branch on these, never on kind()).
    static constexpr bool recursive = false;
    static constexpr bool raises_irql = Rules::raises_irql;  // to APC_LEVEL while held

    template <class... Args>
    explicit LockBitMutex(Args&&... args) : value_(std::forward<Args>(args)...) {}
    LockBitMutex(const LockBitMutex&) = delete;
    LockBitMutex& operator=(const LockBitMutex&) = delete;
    // A new lock at this address starts with no verifier history (kernel/verifier.hpp).
    ~LockBitMutex() { kernel::verifier::forget_if_known(this); }

    // Both Rules' acquire ceiling is APC_LEVEL; the fast paths compare it
    // with KTHREAD::IrqlGate (kernel/verifier.hpp), so that the verifier
    // flavour fails into the slow path at no cost to the others.
    std::expected<Guard, Error> lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::APC_LEVEL) [[unlikely]]
            return lock_gate(t, false);
        const nt::KIRQL token = Rules::enter(t);
        // A recursive acquisition always fails the fast path, so ownership is
        // checked only there: the uncontended path pays nothing for it.
        if (!raw_.try_lock()) [[unlikely]] {
            if (auto e = lock_slow(t, token)) return std::unexpected(*e);
        }
        raw_.set_owner(t);
        return Guard(this, token);
    }

    std::expected<Guard, Error> try_lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::APC_LEVEL) [[unlikely]]
            return lock_gate(t, true);
        return try_lock_at(t);
    }

  private:
    std::expected<Guard, Error> try_lock_at(nt::PKTHREAD t) {
        // The owner fails here too, as the kernel's try routines return FALSE to it.
        if (!raw_.try_lock())
            return std::unexpected(make_error(Errc::busy, t->Irql, this, nt::STATUS_TIMEOUT));
        const nt::KIRQL token = Rules::enter(t);
        raw_.set_owner(t);
        return Guard(this, token);
    }
    std::expected<Guard, Error> lock_at(nt::PKTHREAD t) {
        const nt::KIRQL token = Rules::enter(t);
        if (!raw_.try_lock()) [[unlikely]] {
            if (auto e = lock_slow(t, token)) return std::unexpected(*e);
        }
        raw_.set_owner(t);
        return Guard(this, token);
    }
    // Above the IRQL ceiling, or the verifier on: the IRQL rule, then the
    // verifier's check (Errc::deadlock; a try closes no cycle) and the
    // acquisition with its record.
    [[gnu::noinline, gnu::cold]] std::expected<Guard, Error> lock_gate(nt::PKTHREAD t, bool tried) {
        if (auto v = Rules::check_acquire(t, this))
            return std::unexpected(from_violation(Errc::irql_too_high, *v, t->Irql));
        namespace verifier = kernel::verifier;
        if (!tried && verifier::on(t)) {
            if (auto v = verifier::check_acquire(t, this, lock_type()))
                return std::unexpected(from_violation(Errc::deadlock, *v, t->Irql));
        }
        auto g = tried ? try_lock_at(t) : lock_at(t);
        if (g) verifier::on_acquired(t, this, lock_type(), false, tried);
        return g;
    }
    static constexpr kernel::verifier::LockType lock_type() {
        return Rules::raises_irql ? kernel::verifier::LockType::idiomatic_fast_mutex
                                  : kernel::verifier::LockType::idiomatic_guarded_mutex;
    }

  public:
    // The value, moved out as Rust's Mutex::into_inner consumes the mutex:
    // `std::move(m).into_inner()`. Checked as try_lock() is (its IRQL rule)
    // and refused with Errc::guard_alive while a guard holds the mutex, the
    // caller's included. It takes the mutex for the move, which orders it
    // after the last holder's writes. The mutex is left free, holding a
    // moved-from T.
    std::expected<T, Error> into_inner() && requires std::move_constructible<T> {
        auto g = try_lock();
        if (g) return std::move(**g);
        return std::unexpected(detail::into_inner_error(&g.error(), this));
    }
    // A copy of the value, taken under the lock: lock()'s rules and errors.
    std::expected<T, Error> to_owned() requires std::copy_constructible<T> {
        auto g = lock();
        if (!g) return std::unexpected(g.error());
        return **g;
    }

    nt::PKTHREAD owner() const noexcept { return raw_.owner(); }
    nt::LONG count() const noexcept { return raw_.count(); }
    nt::ULONG contention() const noexcept { return raw_.contention(); }
    bool is_initial_state() const noexcept { return raw_.debug_is_free(); }

  private:
    friend Guard;

    [[gnu::noinline]] std::optional<Error> lock_slow(nt::PKTHREAD t, nt::KIRQL token) {
        if (auto v = kernel::check_not_recursive(t, this, raw_.owner())) {
            Rules::leave(t, token);
            return from_violation(Errc::recursive_acquire, *v, t->Irql);
        }
        raw_.lock_contended();
        return std::nullopt;
    }

    T& value_for(nt::KIRQL) noexcept { return value_; }

    // Checks, then releases; on error releases nothing. One function, so the
    // thread pointer read for the check stays in a register for the release.
    std::optional<Error> release_checked(nt::KIRQL token, bool) {
        // A thread that never called into the emulator owns nothing: no need
        // to create its KTHREAD just to find that out (the owner check comes
        // first, so the IRQL is read only from the owner's, which exists).
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (kernel::check_owner(t, this, raw_.owner()) || Rules::release_gate(t)) {
            [[unlikely]] return release_gate(t, token);
        }
        raw_.set_owner(nullptr);
        raw_.unlock();
        Rules::leave(t, token);
        return std::nullopt;
    }
    // Not the owner, the IRQL rule broken, or the verifier on (the release
    // rule's compare reads KTHREAD::IrqlGate: Rules::release_gate).
    [[gnu::noinline, gnu::cold]] std::optional<Error> release_gate(nt::PKTHREAD t,
                                                                   nt::KIRQL token) {
        if (kernel::check_owner(t, this, raw_.owner()) || Rules::check_release(t, this))
            return release_error();
        if (kernel::verifier::on(t)) kernel::verifier::note_release(t, this);
        raw_.set_owner(nullptr);
        raw_.unlock();
        Rules::leave(t, token);
        return std::nullopt;
    }

    [[gnu::noinline]] Error release_error() const noexcept {
        return Rules::release_error(kernel::current_thread(), raw_.owner(), this);
    }

    detail::RawLockBit<Backend> raw_;
    T value_;
};

}  // namespace kmlab::detail
