// SpinLock<T> and QueuedSpinLock<T>: a KSPIN_LOCK that owns the value it
// guards, acquired as an ordinary spin lock or as an in-stack queued one.
//
// Kernel semantics: not recursive; holding it raises the IRQL to
// DISPATCH_LEVEL, as KeAcquireSpinLock / KeAcquireInStackQueuedSpinLock do,
// and the guard restores the IRQL it saved at acquisition, exactly once,
// through the release path of its own kind (crtsys #30: a spin-lock guard
// must restore the IRQL through the right release). The lock word and the
// algorithms are the kernel's (kernel/spin_lock_algorithm.hpp): SpinLock's
// word holds its owner's KTHREAD | 1; QueuedSpinLock's the tail of an MCS
// queue, and the lock is handed to waiters in the order they queued (FIFO).
// Waiters spin, then yield (in user mode the holder can be preempted).
//
// Backends do not apply: a spin lock spins by definition, so neither type
// takes a WaitBackend (there is nothing to park on, and a sleeping waiter
// would not be a spin lock).
//
//   lock()      spins until acquired
//   try_lock()  never spins; Errc::busy when held
//
// Errors, returned before anything changes (kernel/rules_spin_lock.hpp; the
// idiomatic types apply every rule, as the checked flavour does):
//   lock(), try_lock() above DISPATCH_LEVEL
//       Errc::irql_too_high (SpinLock: 0xC4/0x42; QueuedSpinLock: 0x9, the raise)
//   lock(), try_lock() by the owner
//       Errc::recursive_acquire (SPIN_LOCK_ALREADY_OWNED, 0xF; Windows spins forever)
//   release by another thread (a guard moved there)
//       Errc::not_owner (SPIN_LOCK_NOT_OWNED, 0x10); the guard keeps the lock
//   release at an IRQL other than DISPATCH_LEVEL (the holder changed it)
//       Errc::spin_lock_release_irql (SpinLock: 0xC4/0x32; QueuedSpinLock:
//       0xC4/0x35); the guard keeps the lock
//   into_inner() while held         Errc::recursive_acquire (the owner) or Errc::guard_alive
//
// QueuedSpinLock's queue entry (the KLOCK_QUEUE_HANDLE a driver puts on its
// stack) cannot live in the guard: a guard moves (into the std::expected,
// out of it), and a successor links itself into the entry while the lock is
// held. It lives in a per-thread array of entries instead, as the kernel
// keeps the entries of its numbered queued spin locks per processor
// (KPRCB::LockQueue [wrk-queuelock]); the guard holds a pointer to it, and
// the entry's OldIrql is the IRQL to restore. Past kSlots nested queued
// locks on one thread an entry is allocated.
#pragma once

#include <bit>
#include <cstdint>
#include <expected>
#include <string_view>
#include <utility>
#include <variant>

#include <kmlab/kernel/rules_spin_lock.hpp>
#include <kmlab/kernel/spin_lock_algorithm.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/kernel/verifier.hpp>
#include <kmlab/mutexes/error.hpp>
#include <kmlab/mutexes/guard.hpp>

namespace kmlab {

template <class T = std::monostate>
class SpinLock {
  public:
    using value_type = T;
    using Guard = detail::Guard<SpinLock>;
    using guard_token = nt::KIRQL;  // the IRQL to restore
    static constexpr std::string_view kind() { return "SpinLock"; }
    static constexpr bool recursive = false;
    static constexpr bool raises_irql = true;  // to DISPATCH_LEVEL while held

    template <class... Args>
    explicit SpinLock(Args&&... args) : value_(std::forward<Args>(args)...) {}
    SpinLock(const SpinLock&) = delete;
    SpinLock& operator=(const SpinLock&) = delete;
    // A new lock at this address starts with no verifier history (kernel/verifier.hpp).
    ~SpinLock() { kernel::verifier::forget_if_known(this); }

    // The IRQL compares read KTHREAD::IrqlGate (kernel/verifier.hpp): with
    // the verifier on they fail into lock_gate / release_gate.
    std::expected<Guard, Error> lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::DISPATCH_LEVEL) [[unlikely]]
            return lock_gate(t, false);
        return lock_at(t);
    }

  private:
    [[gnu::always_inline]] std::expected<Guard, Error> lock_at(nt::PKTHREAD t) {
        const nt::KIRQL old = t->Irql;
        const nt::KSPIN_LOCK tag = spin_lock::owner_tag(t);
        nt::KSPIN_LOCK seen;
        // A recursive acquire always fails the fast path (the word is the
        // caller's own tag), so the rule is checked only there.
        if (!spin_lock::try_acquire(word_, tag, seen)) [[unlikely]] {
            if (auto e = lock_slow(seen, tag, old)) return std::unexpected(*e);
        }
        kernel::set_irql(t, nt::DISPATCH_LEVEL);
        return Guard(this, old);
    }
    [[gnu::noinline, gnu::cold]] std::expected<Guard, Error> lock_gate(nt::PKTHREAD t, bool tried) {
        if (t->Irql > nt::DISPATCH_LEVEL) return std::unexpected(irql_too_high(t->Irql));
        namespace verifier = kernel::verifier;
        constexpr auto type = verifier::LockType::idiomatic_spin_lock;
        if (!tried && verifier::on(t)) {
            if (auto v = verifier::check_acquire(t, this, type))
                return std::unexpected(detail::from_violation(Errc::deadlock, *v, t->Irql));
        }
        auto g = tried ? try_lock_at(t) : lock_at(t);
        if (g) verifier::on_acquired(t, this, type, false, tried);
        return g;
    }

  public:
    std::expected<Guard, Error> try_lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::DISPATCH_LEVEL) [[unlikely]]
            return lock_gate(t, true);
        return try_lock_at(t);
    }

  private:
    [[gnu::always_inline]] std::expected<Guard, Error> try_lock_at(nt::PKTHREAD t) {
        const nt::KIRQL old = t->Irql;
        const nt::KSPIN_LOCK tag = spin_lock::owner_tag(t);
        nt::KSPIN_LOCK seen = spin_lock::load(word_);
        if (seen != 0 || !spin_lock::try_acquire(word_, tag, seen)) {
            if (auto v = kernel::check_spin_lock_try_not_recursive(seen, tag, this))
                return std::unexpected(detail::from_violation(Errc::recursive_acquire, *v, old));
            return std::unexpected(detail::make_error(Errc::busy, old, this, nt::STATUS_TIMEOUT));
        }
        kernel::set_irql(t, nt::DISPATCH_LEVEL);
        return Guard(this, old);
    }

  public:
    // The value, moved out as Rust's Mutex::into_inner consumes the mutex:
    // try_lock()'s rules; refused with Errc::guard_alive while held by
    // another thread. The lock is left free, holding a moved-from T.
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

    // The KSPIN_LOCK word: 0 free, else the owner's KTHREAD | 1.
    nt::KSPIN_LOCK word() const noexcept { return spin_lock::load(word_); }
    nt::PKTHREAD owner() const noexcept {
        return reinterpret_cast<nt::PKTHREAD>(word() & ~spin_lock::kHeldBit);
    }
    bool is_initial_state() const noexcept { return word() == 0; }

  private:
    friend Guard;

    [[gnu::noinline, gnu::cold]] Error irql_too_high(nt::KIRQL irql) const noexcept {
        return detail::from_violation(Errc::irql_too_high,
                                      *kernel::check_spin_lock_acquire_irql(irql, this), irql);
    }

    [[gnu::noinline]] std::optional<Error> lock_slow(nt::KSPIN_LOCK seen, nt::KSPIN_LOCK tag,
                                                     nt::KIRQL irql) {
        if (auto v = kernel::check_spin_lock_not_recursive(seen, tag, this))
            return detail::from_violation(Errc::recursive_acquire, *v, irql);
        spin_lock::acquire_contended(word_, tag);
        return std::nullopt;
    }

    T& value_for(nt::KIRQL) noexcept { return value_; }

    // Checks, then releases; on error releases nothing. A thread that never
    // called into the emulator owns nothing: its tag (nullptr | 1) is in no
    // word, so the owner check comes first and reads no KTHREAD.
    std::optional<Error> release_checked(nt::KIRQL old, bool) {
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (spin_lock::load(word_) != spin_lock::owner_tag(t) || t->IrqlGate != nt::DISPATCH_LEVEL)
            [[unlikely]]
            return release_gate(old);
        spin_lock::release(word_);
        kernel::set_irql(t, old);
        return std::nullopt;
    }
    // A rule broken, or the verifier on: the release with its record.
    [[gnu::noinline, gnu::cold]] std::optional<Error> release_gate(nt::KIRQL old) {
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (spin_lock::load(word_) != spin_lock::owner_tag(t) || t->Irql != nt::DISPATCH_LEVEL)
            return release_error();
        if (kernel::verifier::on(t)) kernel::verifier::note_release(t, this);
        spin_lock::release(word_);
        kernel::set_irql(t, old);
        return std::nullopt;
    }

    [[gnu::noinline]] Error release_error() const noexcept {
        nt::PKTHREAD t = kernel::current_thread();
        if (auto v = kernel::check_spin_lock_owner(word(), spin_lock::owner_tag(t), this))
            return detail::from_violation(Errc::not_owner, *v, t->Irql);
        return detail::from_violation(Errc::spin_lock_release_irql,
                                      *kernel::check_spin_lock_release_irql(t->Irql, this),
                                      t->Irql);
    }

    alignas(sizeof(nt::KSPIN_LOCK)) nt::KSPIN_LOCK word_ = 0;
    T value_;
};

namespace detail {
// The calling thread's queue entries for QueuedSpinLock (see the header).
struct QueuedSlots {
    static constexpr int kSlots = 16;
    nt::KLOCK_QUEUE_HANDLE handles[kSlots] = {};
    std::uint32_t used = 0;

    nt::PKLOCK_QUEUE_HANDLE take() {
        const std::uint32_t free = ~used & ((1u << kSlots) - 1);
        if (free == 0) [[unlikely]]
            return new nt::KLOCK_QUEUE_HANDLE{};
        const int i = std::countr_zero(free);
        used |= 1u << i;
        return &handles[i];
    }
    void give_back(nt::PKLOCK_QUEUE_HANDLE h) noexcept {
        if (h >= handles && h < handles + kSlots)
            used &= ~(1u << static_cast<unsigned>(h - handles));
        else
            delete h;
    }
};
inline constinit thread_local QueuedSlots tls_queued_slots{};
}  // namespace detail

template <class T = std::monostate>
class QueuedSpinLock {
  public:
    using value_type = T;
    using Guard = detail::Guard<QueuedSpinLock>;
    // The caller's queue entry; its OldIrql is the IRQL to restore.
    using guard_token = nt::PKLOCK_QUEUE_HANDLE;
    static constexpr std::string_view kind() { return "QueuedSpinLock"; }
    static constexpr bool recursive = false;
    static constexpr bool raises_irql = true;  // to DISPATCH_LEVEL while held

    template <class... Args>
    explicit QueuedSpinLock(Args&&... args) : value_(std::forward<Args>(args)...) {}
    QueuedSpinLock(const QueuedSpinLock&) = delete;
    QueuedSpinLock& operator=(const QueuedSpinLock&) = delete;
    // A new lock at this address starts with no verifier history (kernel/verifier.hpp).
    ~QueuedSpinLock() { kernel::verifier::forget_if_known(this); }

    // The IRQL rule's compare reads KTHREAD::IrqlGate (kernel/verifier.hpp):
    // above DISPATCH_LEVEL, or the verifier on, fails into lock_gate; the
    // release's compare likewise into release_gate. Zero cost when off.
    std::expected<Guard, Error> lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::DISPATCH_LEVEL) [[unlikely]]
            return lock_gate(t, false);
        return lock_at(t);
    }

    std::expected<Guard, Error> try_lock() {
        nt::PKTHREAD t = kernel::current_thread();
        if (t->IrqlGate > nt::DISPATCH_LEVEL) [[unlikely]]
            return lock_gate(t, true);
        return try_lock_at(t);
    }

  private:
    [[gnu::always_inline]] std::expected<Guard, Error> lock_at(nt::PKTHREAD t) {
        if (auto e = check_acquire(t)) [[unlikely]]
            return std::unexpected(*e);
        nt::PKLOCK_QUEUE_HANDLE h = detail::tls_queued_slots.take();
        h->OldIrql = t->Irql;
        spin_lock::acquire_queued(word_, h->LockQueue);
        kernel::detail::tls_queued_holds.add(&word_);
        kernel::set_irql(t, nt::DISPATCH_LEVEL);
        return Guard(this, h);
    }
    // Above DISPATCH_LEVEL, or the verifier on: the IRQL rule, then the
    // verifier's check (Errc::deadlock; a try closes no cycle) and record.
    [[gnu::noinline, gnu::cold]] std::expected<Guard, Error> lock_gate(nt::PKTHREAD t, bool tried) {
        if (auto v = kernel::check_queued_acquire_irql(t->Irql))
            return std::unexpected(detail::from_violation(Errc::irql_too_high, *v, t->Irql));
        namespace verifier = kernel::verifier;
        constexpr auto type = verifier::LockType::idiomatic_queued_spin_lock;
        if (!tried && verifier::on(t)) {
            if (auto v = verifier::check_acquire(t, this, type))
                return std::unexpected(detail::from_violation(Errc::deadlock, *v, t->Irql));
        }
        auto g = tried ? try_lock_at(t) : lock_at(t);
        if (g) verifier::on_acquired(t, this, type, false, tried);
        return g;
    }
    [[gnu::always_inline]] std::expected<Guard, Error> try_lock_at(nt::PKTHREAD t) {
        if (auto e = check_acquire(t)) [[unlikely]]
            return std::unexpected(*e);
        nt::PKLOCK_QUEUE_HANDLE h = detail::tls_queued_slots.take();
        if (!spin_lock::try_acquire_queued(word_, h->LockQueue)) {
            detail::tls_queued_slots.give_back(h);
            return std::unexpected(
                detail::make_error(Errc::busy, t->Irql, this, nt::STATUS_TIMEOUT));
        }
        h->OldIrql = t->Irql;
        kernel::detail::tls_queued_holds.add(&word_);
        kernel::set_irql(t, nt::DISPATCH_LEVEL);
        return Guard(this, h);
    }

  public:
    std::expected<T, Error> into_inner() && requires std::move_constructible<T> {
        auto g = try_lock();
        if (g) return std::move(**g);
        return std::unexpected(detail::into_inner_error(&g.error(), this));
    }
    std::expected<T, Error> to_owned() requires std::copy_constructible<T> {
        auto g = lock();
        if (!g) return std::unexpected(g.error());
        return **g;
    }

    // The KSPIN_LOCK word: 0 free, else the address of the queue's tail entry.
    nt::KSPIN_LOCK word() const noexcept { return spin_lock::load(word_); }
    bool is_initial_state() const noexcept { return word() == 0; }

  private:
    friend Guard;

    // The recursion rule (the IRQL rule is lock_gate's).
    std::optional<Error> check_acquire(nt::PKTHREAD t) const noexcept {
        if (auto v = kernel::check_queued_not_recursive(
                kernel::detail::tls_queued_holds.contains(&word_), &word_)) [[unlikely]]
            return detail::from_violation(Errc::recursive_acquire, *v, t->Irql);
        return std::nullopt;
    }

    T& value_for(nt::PKLOCK_QUEUE_HANDLE) noexcept { return value_; }

    // Ownership first, where KeReleaseInStackQueuedSpinLock checks the IRQL
    // first: a guard moved to another thread is released at that thread's
    // IRQL, so the error names the cause (as FastMutex does).
    std::optional<Error> release_checked(nt::PKLOCK_QUEUE_HANDLE h, bool) {
        nt::PKTHREAD t = kernel::current_thread();
        auto& holds = kernel::detail::tls_queued_holds;
        if (auto v = kernel::check_queued_owner(
                holds.contains(&word_) && spin_lock::entry_owns(h->LockQueue), &word_, h))
            [[unlikely]]
            return detail::from_violation(Errc::not_owner, *v, t->Irql);
        if (t->IrqlGate != nt::DISPATCH_LEVEL) [[unlikely]]
            return release_gate(t, h);
        release_at(t, h);
        return std::nullopt;
    }
    // Not at DISPATCH_LEVEL, or the verifier on: the IRQL rule, then the
    // release with the verifier's record.
    [[gnu::noinline, gnu::cold]] std::optional<Error> release_gate(nt::PKTHREAD t,
                                                                   nt::PKLOCK_QUEUE_HANDLE h) {
        if (auto v = kernel::check_queued_release_irql(t->Irql, &word_, h->OldIrql))
            return detail::from_violation(Errc::spin_lock_release_irql, *v, t->Irql);
        if (kernel::verifier::on(t)) kernel::verifier::note_release(t, this);
        release_at(t, h);
        return std::nullopt;
    }
    [[gnu::always_inline]] void release_at(nt::PKTHREAD t, nt::PKLOCK_QUEUE_HANDLE h) {
        kernel::detail::tls_queued_holds.remove(&word_);
        const nt::KIRQL old = h->OldIrql;
        spin_lock::release_queued(h->LockQueue, &word_);
        detail::tls_queued_slots.give_back(h);
        kernel::set_irql(t, old);
    }

    alignas(sizeof(nt::KSPIN_LOCK)) nt::KSPIN_LOCK word_ = 0;
    T value_;
};

}  // namespace kmlab
