// PushLock<T>: an EX_PUSH_LOCK that owns the value it guards.
//
// Kernel semantics [ddi:exinitializepushlock][ddi:exacquirepushlockexclusive]
// [ddi:exacquirepushlockshared]: shared or exclusive; not recursive; waiters
// sleep; a shared acquire waits behind an exclusive waiter; the caller runs
// at IRQL <= APC_LEVEL with normal kernel APCs disabled (a
// kmlab::CriticalRegion, a GuardedRegion, or APC_LEVEL). The lock word has
// the kernel's encoding and algorithm (kernel/rw_lock_algorithm.hpp, push).
//
//   lock()            -> ExclusiveGuard (mutable access)
//   lock_shared()     -> SharedGuard (const access)
//   try_lock(), try_lock_shared(): never wait; Errc::busy when not granted
//
// Errors, returned before anything changes (kernel/rules_rw_lock.hpp):
//   IRQL above APC_LEVEL             Errc::irql_too_high (bug check 0xA)
//   normal kernel APCs enabled       Errc::apcs_enabled (a checked build's failed ASSERT)
//   lock() / lock_shared() by the exclusive owner
//                                    Errc::recursive_acquire (0xBF; Windows hangs)
//   release on another thread (a guard moved there)
//                                    Errc::not_owner (a checked build's failed ASSERT,
//                                    0x1E); the guard keeps the lock
//   release above APC_LEVEL          Errc::irql_too_high; the guard keeps the lock
// A reader that acquires again while a writer waits hangs, as in Windows:
// the lock keeps no readers' identities.
#pragma once

#include <atomic>
#include <expected>
#include <string_view>
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
class PushLock {
  public:
    using value_type = T;
    // The acquiring thread: a guard releases only there
    // (kernel/rules_rw_lock.hpp, check_rw_guard_thread). Decision, kmlab:
    // the guard is bound to its thread (as SpinLock's and RwSpinLock's)
    // rather than carrying its ownership along when it moves: a move
    // runs on whichever thread performs it (often the old one, handing the
    // guard over through a queue), so it cannot say who holds the lock next;
    // bound, the hold stays the acquirer's until the acquirer releases it,
    // so owner_ and the recursion check stay true.
    using guard_token = nt::PKTHREAD;
    using ExclusiveGuard = detail::RwGuard<PushLock, true>;
    using SharedGuard = detail::RwGuard<PushLock, false>;
    static constexpr std::string_view kind() { return "PushLock"; }
    static constexpr bool recursive = false;
    static constexpr bool raises_irql = false;

    template <class... Args>
    explicit PushLock(Args&&... args) : value_(std::forward<Args>(args)...) {}
    PushLock(const PushLock&) = delete;
    PushLock& operator=(const PushLock&) = delete;
    // A new lock at this address starts with no verifier history (kernel/verifier.hpp).
    ~PushLock() { kernel::verifier::forget_if_known(this); }

    // The IRQL rule's compare reads KTHREAD::IrqlGate (kernel/verifier.hpp):
    // with the verifier on, every acquire and release fails into *_gate.
    std::expected<ExclusiveGuard, Error> lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::APC_LEVEL) [[unlikely]]
            return acquire_gate<ExclusiveGuard>(t, false, false,
                                                [this](nt::PKTHREAD th) { return lock_at(th); });
        if (auto e = check_apcs(t)) [[unlikely]]
            return std::unexpected(*e);
        return lock_at(t);
    }

    std::expected<SharedGuard, Error> lock_shared() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::APC_LEVEL) [[unlikely]]
            return acquire_gate<SharedGuard>(
                t, true, false, [this](nt::PKTHREAD th) { return lock_shared_at(th); });
        if (auto e = check_apcs(t)) [[unlikely]]
            return std::unexpected(*e);
        return lock_shared_at(t);
    }

    std::expected<ExclusiveGuard, Error> try_lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::APC_LEVEL) [[unlikely]]
            return acquire_gate<ExclusiveGuard>(
                t, false, true, [this](nt::PKTHREAD th) { return try_lock_at(th); });
        if (auto e = check_apcs(t)) [[unlikely]]
            return std::unexpected(*e);
        return try_lock_at(t);
    }

    std::expected<SharedGuard, Error> try_lock_shared() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::APC_LEVEL) [[unlikely]]
            return acquire_gate<SharedGuard>(
                t, true, true, [this](nt::PKTHREAD th) { return try_lock_shared_at(th); });
        if (auto e = check_apcs(t)) [[unlikely]]
            return std::unexpected(*e);
        return try_lock_shared_at(t);
    }

  private:
    std::optional<Error> check_apcs(nt::PKTHREAD t) const noexcept {
        if (auto v = kernel::check_push_lock_apcs(t, this)) [[unlikely]]
            return detail::from_violation(Errc::apcs_enabled, *v, t->Irql);
        return std::nullopt;
    }
    // Above APC_LEVEL, or the verifier on: both rules, the verifier's check
    // (Errc::deadlock; a try closes no cycle), the acquisition and its record.
    template <class G, class Body>
    [[gnu::noinline, gnu::cold]] std::expected<G, Error> acquire_gate(nt::PKTHREAD t, bool shared,
                                                                      bool tried, Body body) {
        if (auto e = check_acquire(t)) return std::unexpected(*e);
        namespace verifier = kernel::verifier;
        constexpr auto type = verifier::LockType::idiomatic_push_lock;
        if (!tried && verifier::on(t)) {
            if (auto v = verifier::check_acquire(t, this, type))
                return std::unexpected(detail::from_violation(Errc::deadlock, *v, t->Irql));
        }
        std::expected<G, Error> g = body(t);
        if (g) verifier::on_acquired(t, this, type, shared, tried);
        return g;
    }

    [[gnu::always_inline]] std::expected<ExclusiveGuard, Error> lock_at(nt::PKTHREAD t) {
        // The exclusive owner's recursion fails the fast path, so it is
        // checked only there.
        if (!rw_lock::push::try_acquire_exclusive(word_)) [[unlikely]] {
            if (auto e = lock_slow(t)) return std::unexpected(*e);
        }
        owner_.store(t, std::memory_order_relaxed);
        return ExclusiveGuard(this, t);
    }

    [[gnu::always_inline]] std::expected<SharedGuard, Error> lock_shared_at(nt::PKTHREAD t) {
        nt::ULONG_PTR v = 0;
        if (!std::atomic_ref<nt::ULONG_PTR>(word_).compare_exchange_strong(
                v, rw_lock::push::kLocked | rw_lock::push::kShareInc, std::memory_order_acquire,
                std::memory_order_relaxed)) [[unlikely]] {
            if (auto e = lock_shared_slow(t, v)) return std::unexpected(*e);
        }
        return SharedGuard(this, t);
    }

    [[gnu::always_inline]] std::expected<ExclusiveGuard, Error> try_lock_at(nt::PKTHREAD t) {
        if (!rw_lock::push::try_acquire_exclusive(word_)) return std::unexpected(busy(t));
        owner_.store(t, std::memory_order_relaxed);
        return ExclusiveGuard(this, t);
    }

    [[gnu::always_inline]] std::expected<SharedGuard, Error> try_lock_shared_at(nt::PKTHREAD t) {
        if (!rw_lock::push::try_acquire_shared(word_)) return std::unexpected(busy(t));
        return SharedGuard(this, t);
    }

  public:
    // The lock word, in the kernel's encoding (0 free, 0x1 exclusive,
    // 0x11 one reader, ...).
    nt::ULONG_PTR word() const noexcept { return load(); }
    nt::PKTHREAD owner() const noexcept { return owner_.load(std::memory_order_relaxed); }
    bool is_initial_state() const noexcept { return load() == 0 && owner() == nullptr; }

  private:
    friend ExclusiveGuard;
    friend SharedGuard;

    nt::ULONG_PTR load() const noexcept {
        return std::atomic_ref<const nt::ULONG_PTR>(word_).load(std::memory_order_relaxed);
    }

    std::optional<Error> check_acquire(nt::PKTHREAD t) const noexcept {
        if (auto v = kernel::check_push_lock_irql(t, this)) [[unlikely]]
            return detail::from_violation(Errc::irql_too_high, *v, t->Irql);
        if (auto v = kernel::check_push_lock_apcs(t, this)) [[unlikely]]
            return detail::from_violation(Errc::apcs_enabled, *v, t->Irql);
        return std::nullopt;
    }

    // The contended paths, out of line so that the fast paths stay small.
    [[gnu::noinline]] std::optional<Error> lock_slow(nt::PKTHREAD t) {
        if (auto v = kernel::check_not_recursive(t, this, owner()))
            return detail::from_violation(Errc::recursive_acquire, *v, t->Irql);
        rw_lock::push::acquire_exclusive_slow(word_, load(), park_);
        return std::nullopt;
    }
    [[gnu::noinline]] std::optional<Error> lock_shared_slow(nt::PKTHREAD t, nt::ULONG_PTR v) {
        if (auto e = kernel::check_not_recursive(t, this, owner()))
            return detail::from_violation(Errc::recursive_acquire, *e, t->Irql);
        rw_lock::push::acquire_shared_slow(word_, v, park_);
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
    std::optional<Error> release_checked(nt::PKTHREAD acquirer) {
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (t != acquirer) [[unlikely]]
            return wrong_thread(acquirer);
        // The IRQL rule's compare through the gate word (kernel/verifier.hpp).
        if (t->IrqlGate > nt::APC_LEVEL) [[unlikely]]
            return release_gate<Exclusive>(t);
        if constexpr (Exclusive) {
            owner_.store(nullptr, std::memory_order_relaxed);
            rw_lock::push::release_exclusive(word_, park_);
        } else {
            rw_lock::push::release_shared(word_, park_);
        }
        return std::nullopt;
    }

    template <bool Exclusive>
    [[gnu::noinline, gnu::cold]] std::optional<Error> release_gate(nt::PKTHREAD t) {
        if (auto v = kernel::check_push_lock_irql(t, this))
            return detail::from_violation(Errc::irql_too_high, *v, t->Irql);
        if (kernel::verifier::on(t)) kernel::verifier::note_release(t, this);
        if constexpr (Exclusive) {
            owner_.store(nullptr, std::memory_order_relaxed);
            rw_lock::push::release_exclusive(word_, park_);
        } else {
            rw_lock::push::release_shared(word_, park_);
        }
        return std::nullopt;
    }

    alignas(sizeof(nt::ULONG_PTR)) nt::ULONG_PTR word_ = 0;  // EX_PUSH_LOCK
    // Emulator-only: the exclusive owner, written by it alone, for the
    // recursion check (the kernel keeps none).
    std::atomic<nt::PKTHREAD> owner_{nullptr};
    [[no_unique_address]] rw_lock::push::NativePark park_;
    T value_;
};

}  // namespace kmlab
