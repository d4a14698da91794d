// RwSpinLock<T>: an EX_SPIN_LOCK that owns the value it guards.
//
// Kernel semantics [ddi:reader-writer-spin-locks]: shared or exclusive;
// not recursive; once a writer has claimed the lock (it waits for the
// readers inside to drain) no new reader enters (writer preference; a writer
// still queued behind another writer holds back no one: decision, kmlab,
// kernel/rw_lock_algorithm.hpp); waiters spin (in user mode: spin, then
// yield, never burning a core forever). Holding it, shared or exclusive, raises the
// IRQL to DISPATCH_LEVEL, as ExAcquireSpinLockShared / ...Exclusive do; the
// guard restores the IRQL it saved, exactly once. The word has the
// kernel's encoding and algorithm (kernel/rw_lock_algorithm.hpp, ex_spin).
//
//   lock()            -> ExclusiveGuard (mutable access)
//   lock_shared()     -> SharedGuard (const access)
//   try_lock(), try_lock_shared(): never spin; Errc::busy when not granted
//     (ExTryAcquireSpinLock...AtDpcLevel's answer); the IRQL is left as found
//
// Errors, returned before anything changes (kernel/rules_rw_lock.hpp):
//   IRQL above DISPATCH_LEVEL        Errc::irql_too_high (bug check 0x9, the raise)
//   lock() / lock_shared() by the exclusive owner
//                                    Errc::recursive_acquire (0xBF; Windows deadlocks)
//   release on another thread (a guard moved there)
//                                    Errc::not_owner (a checked build's failed ASSERT,
//                                    0x1E); the guard keeps the lock, no IRQL changes
//   release where restoring the saved IRQL would raise it
//                                    Errc::irql_too_high (0xA); the guard keeps the lock
#pragma once

#include <atomic>
#include <expected>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <kmlab/kernel/rules_rw_lock.hpp>
#include <kmlab/kernel/rw_lock_algorithm.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/kernel/verifier.hpp>
#include <kmlab/mutexes/error.hpp>
#include <kmlab/mutexes/rw_guard.hpp>

namespace kmlab {

template <class T = std::monostate>
class RwSpinLock {
  public:
    using value_type = T;
    // The IRQL to restore, and the thread it belongs to: a guard releases
    // only there (kernel/rules_rw_lock.hpp, check_rw_guard_thread).
    struct guard_token {
        nt::KIRQL old_irql;
        nt::PKTHREAD thread;
    };
    using ExclusiveGuard = detail::RwGuard<RwSpinLock, true>;
    using SharedGuard = detail::RwGuard<RwSpinLock, false>;
    static constexpr std::string_view kind() { return "RwSpinLock"; }
    static constexpr bool recursive = false;
    static constexpr bool raises_irql = true;  // to DISPATCH_LEVEL while held

    template <class... Args>
    explicit RwSpinLock(Args&&... args) : value_(std::forward<Args>(args)...) {}
    RwSpinLock(const RwSpinLock&) = delete;
    RwSpinLock& operator=(const RwSpinLock&) = delete;
    // A new lock at this address starts with no verifier history (kernel/verifier.hpp).
    ~RwSpinLock() { kernel::verifier::forget_if_known(this); }

    std::expected<ExclusiveGuard, Error> lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::DISPATCH_LEVEL) [[unlikely]]
            return acquire_gate<ExclusiveGuard>(t, false, false);
        return lock_at(t);
    }

  private:
    [[gnu::always_inline]] std::expected<ExclusiveGuard, Error> lock_at(nt::PKTHREAD t) {
        const nt::KIRQL old = raise(t);
        nt::LONG v = 0;
        if (!std::atomic_ref<nt::LONG>(word_).compare_exchange_strong(
                v, rw_lock::ex_spin::kExclusive, std::memory_order_acquire,
                std::memory_order_relaxed)) [[unlikely]] {
            if (auto e = lock_slow(t, old, v)) return std::unexpected(*e);
        }
        owner_.store(t, std::memory_order_relaxed);
        return ExclusiveGuard(this, {old, t});
    }

  public:
    std::expected<SharedGuard, Error> lock_shared() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::DISPATCH_LEVEL) [[unlikely]]
            return acquire_gate<SharedGuard>(t, true, false);
        return lock_shared_at(t);
    }

  private:
    [[gnu::always_inline]] std::expected<SharedGuard, Error> lock_shared_at(nt::PKTHREAD t) {
        const nt::KIRQL old = raise(t);
        nt::LONG v = 0;
        if (!std::atomic_ref<nt::LONG>(word_).compare_exchange_strong(
                v, 1, std::memory_order_acquire, std::memory_order_relaxed)) [[unlikely]] {
            if (auto e = lock_shared_slow(t, old, v)) return std::unexpected(*e);
        }
        return SharedGuard(this, {old, t});
    }

  public:
    std::expected<ExclusiveGuard, Error> try_lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::DISPATCH_LEVEL) [[unlikely]]
            return acquire_gate<ExclusiveGuard>(t, false, true);
        return try_lock_at(t);
    }

  private:
    [[gnu::always_inline]] std::expected<ExclusiveGuard, Error> try_lock_at(nt::PKTHREAD t) {
        if (!rw_lock::ex_spin::try_acquire_exclusive(word_)) return std::unexpected(busy(t));
        const nt::KIRQL old = raise(t);
        owner_.store(t, std::memory_order_relaxed);
        return ExclusiveGuard(this, {old, t});
    }

  public:
    std::expected<SharedGuard, Error> try_lock_shared() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::DISPATCH_LEVEL) [[unlikely]]
            return acquire_gate<SharedGuard>(t, true, true);
        return try_lock_shared_at(t);
    }

  private:
    [[gnu::always_inline]] std::expected<SharedGuard, Error> try_lock_shared_at(nt::PKTHREAD t) {
        if (!rw_lock::ex_spin::try_acquire_shared(word_)) return std::unexpected(busy(t));
        return SharedGuard(this, {raise(t), t});
    }

  public:
    // The EX_SPIN_LOCK word (0 free, n readers, bit 31 a writer).
    nt::LONG word() const noexcept {
        return std::atomic_ref<const nt::LONG>(word_).load(std::memory_order_relaxed);
    }
    nt::PKTHREAD owner() const noexcept { return owner_.load(std::memory_order_relaxed); }
    bool is_initial_state() const noexcept { return word() == 0 && owner() == nullptr; }

  private:
    friend ExclusiveGuard;
    friend SharedGuard;

    static std::optional<Error> check_acquire(nt::PKTHREAD t) noexcept {
        if (auto v = kernel::check_ex_spin_raise(t)) [[unlikely]]
            return detail::from_violation(Errc::irql_too_high, *v, t->Irql);
        return std::nullopt;
    }
    // Above DISPATCH_LEVEL, or the verifier on (kernel/verifier.hpp): the
    // IRQL rule, the verifier's check (Errc::deadlock; a try closes no
    // cycle), the acquisition and its record. A verified guard's token names
    // its thread with the low bit set, so that release_checked's thread
    // compare, which the release already makes, fails into wrong_thread,
    // where the verifier's release is: the release's IRQL rule compares the
    // IRQL it lowers to with the current one and has no gate-word form.
    template <class G>
    [[gnu::noinline, gnu::cold]] std::expected<G, Error> acquire_gate(nt::PKTHREAD t, bool shared,
                                                                      bool tried) {
        if (auto e = check_acquire(t)) return std::unexpected(*e);
        namespace verifier = kernel::verifier;
        constexpr auto type = verifier::LockType::idiomatic_rw_spin_lock;
        const bool on = verifier::on(t);
        if (!tried && on) {
            if (auto v = verifier::check_acquire(t, this, type))
                return std::unexpected(detail::from_violation(Errc::deadlock, *v, t->Irql));
        }
        std::expected<G, Error> g = [&] {
            if constexpr (std::is_same_v<G, SharedGuard>)
                return tried ? try_lock_shared_at(t) : lock_shared_at(t);
            else
                return tried ? try_lock_at(t) : lock_at(t);
        }();
        if (g && on) {
            verifier::note_acquire(t, this, type, shared, tried);
            g->token_.thread = tagged(t);
        }
        return g;
    }
    static nt::PKTHREAD tagged(nt::PKTHREAD t) noexcept {
        return reinterpret_cast<nt::PKTHREAD>(reinterpret_cast<std::uintptr_t>(t) | 1);
    }
    static nt::PKTHREAD untagged(nt::PKTHREAD t) noexcept {
        return reinterpret_cast<nt::PKTHREAD>(reinterpret_cast<std::uintptr_t>(t) &
                                              ~std::uintptr_t{1});
    }

    static nt::KIRQL raise(nt::PKTHREAD t) noexcept {
        const nt::KIRQL old = t->Irql;
        kernel::set_irql(t, nt::DISPATCH_LEVEL);
        return old;
    }

    // The contended paths, out of line so that the fast paths stay small.
    // The exclusive owner would spin forever: refuse, and put the IRQL back.
    std::optional<Error> check_recursion(nt::PKTHREAD t, nt::KIRQL old) const noexcept {
        if (auto v = kernel::check_not_recursive(t, this, owner())) {
            kernel::set_irql(t, old);
            return detail::from_violation(Errc::recursive_acquire, *v, t->Irql);
        }
        return std::nullopt;
    }
    [[gnu::noinline]] std::optional<Error> lock_slow(nt::PKTHREAD t, nt::KIRQL old, nt::LONG v) {
        if (auto e = check_recursion(t, old)) return e;
        rw_lock::ex_spin::NoHook none;
        rw_lock::ex_spin::acquire_exclusive_slow<platform::Native>(word_, v, none);
        return std::nullopt;
    }
    [[gnu::noinline]] std::optional<Error> lock_shared_slow(nt::PKTHREAD t, nt::KIRQL old,
                                                            nt::LONG v) {
        if (auto e = check_recursion(t, old)) return e;
        rw_lock::ex_spin::acquire_shared_slow<platform::Native>(word_, v);
        return std::nullopt;
    }

    Error busy(nt::PKTHREAD t) const noexcept {
        return detail::make_error(Errc::busy, t->Irql, this, nt::STATUS_TIMEOUT);
    }

    T& value_ref() noexcept { return value_; }

    [[gnu::noinline]] Error wrong_thread(nt::PKTHREAD acquirer) const noexcept {
        nt::PKTHREAD t = kernel::current_thread();
        return detail::from_violation(Errc::not_owner,
                                      *kernel::check_rw_guard_thread(t, acquirer, this), t->Irql);
    }

    template <bool Exclusive>
    // The thread check comes first and reads the thread pointer as it is
    // (a thread that never called into the emulator has none, and owns no
    // guard), so it replaces current_thread()'s own test.
    std::optional<Error> release_checked(guard_token token) {
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (t != token.thread) [[unlikely]]
            return release_other<Exclusive>(token);
        const nt::KIRQL old = token.old_irql;
        if (auto v = kernel::check_ex_spin_lower(t, old)) [[unlikely]]
            return detail::from_violation(Errc::irql_too_high, *v, t->Irql);
        if constexpr (Exclusive) {
            owner_.store(nullptr, std::memory_order_relaxed);
            rw_lock::ex_spin::release_exclusive(word_);
        } else {
            rw_lock::ex_spin::release_shared(word_);
        }
        kernel::set_irql(t, old);
        return std::nullopt;
    }

    // Not the guard's thread, or a guard the verifier tracks (acquire_gate).
    template <bool Exclusive>
    [[gnu::noinline, gnu::cold]] std::optional<Error> release_other(guard_token token) {
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (untagged(token.thread) == token.thread || t != untagged(token.thread))
            return wrong_thread(untagged(token.thread));
        const nt::KIRQL old = token.old_irql;
        if (auto v = kernel::check_ex_spin_lower(t, old))
            return detail::from_violation(Errc::irql_too_high, *v, t->Irql);
        kernel::verifier::note_release(t, this);
        if constexpr (Exclusive) {
            owner_.store(nullptr, std::memory_order_relaxed);
            rw_lock::ex_spin::release_exclusive(word_);
        } else {
            rw_lock::ex_spin::release_shared(word_);
        }
        kernel::set_irql(t, old);
        return std::nullopt;
    }

    alignas(4) nt::LONG word_ = 0;  // EX_SPIN_LOCK
    // Emulator-only: the exclusive owner, written by it alone, for the
    // recursion check (the kernel keeps none).
    std::atomic<nt::PKTHREAD> owner_{nullptr};
    T value_;
};

}  // namespace kmlab
