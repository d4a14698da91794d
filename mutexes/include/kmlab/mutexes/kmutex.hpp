// KMutex<T, Backend>: a KMUTEX that owns the value it guards.
//
// Kernel semantics (SEMANTICS.md 1) over any backend: recursive, owned by one
// thread, normal kernel APCs disabled from the first acquisition until the
// last release. With backends::Dispatcher it is a real KMUTEX underneath
// (native_handle()), acquired with KeWaitForSingleObject.
//
// IRQL rules, checked before anything happens:
//   lock(), lock_for(d > 0)    IRQL <= APC_LEVEL        (else 0xC4/0x3B, as KeWait would,
//   try_lock(), lock_for(0)    IRQL <= DISPATCH_LEVEL    above DISPATCH_LEVEL too)
//   release                    IRQL <= DISPATCH_LEVEL   (else 0xA)
//
// Alertable waits (wdk-mutex's issue #1): lock(alertable) and
// lock_for(d, alertable) wait as KeWaitForSingleObject with Alertable = TRUE
// does (SEMANTICS.md 4.4, "Alerts and APCs"), with the same IRQL rules. The
// mutex wins over a pending alert; otherwise the wait ends with Errc::alerted
// (STATUS_ALERTED) when the thread is alerted (KeAlertThread) and, for a
// UserMode wait (alertable_user), with Errc::user_apc (STATUS_USER_APC) once
// a user APC queued to it (KeInsertQueueUserApc) has run. Neither acquires.
// Only over backends::Dispatcher: there the wait is the dispatcher's, which
// an alert or APC interrupts. A Futex or Spin waiter waits on the mutex's own
// word; ending that wait on an alert would put a second thing to wait for
// (the thread's alert state) into the lock algorithm, and for the futex a
// wake of every waiter of the mutex that races with the park. So those
// backends do not offer the call at all (it does not compile), rather than
// accept an alert they would not honour.
//
// Illegal uses, and what they return:
//   a release by a thread that does not own it     Errc::not_owner (STATUS_MUTANT_NOT_OWNED,
//                                                  or STATUS_ABANDONED once the mutex is
//                                                  abandoned, as KeReleaseMutex raises them
//                                                  [ros-mutex][ddi:kereleasemutex])
//   more than MINLONG nested acquisitions          Errc::recursion_limit
//                                                  (STATUS_MUTANT_LIMIT_EXCEEDED)
//   into_inner() while a guard holds it            Errc::guard_alive (the nesting owner's too)
//   a thread that exits while owning it            THREAD_TERMINATE_HELD_MUTEX (0x4000008A:
//                                                  thread, mutex) to the fatal handler
// If that handler returns, the mutex is abandoned over every backend, as a
// mutant is (SEMANTICS.md 1.5): unowned and free, the next acquirer gets it.
// That acquisition succeeds and its guard says so: Guard::abandoned() is true
// where the kernel's wait returns STATUS_ABANDONED [ros-kex]
// [ddi:kewaitforsingleobject] (the value may be half-updated by the dead
// owner, as Rust's poisoned Mutex warns). Decision, kmlab: a flag on the
// guard, not an Error, because the mutex IS acquired (an Error would leave it
// held with no guard to release it); STATUS_ABANDONED is a success status
// (NT_SUCCESS) in the kernel too.
//
// Nested guards. Recursion hands out several guards to one value. kmlab's rule:
// only the most recent live guard gives access (*, ->); using an outer guard
// while a nested one lives throws std::logic_error, and unlock() of an outer
// guard then returns Errc::nested_guard_alive. So two guards never hand out
// mutable access at the same time. Release guards in reverse order (scopes do).
#pragma once

#include <expected>
#include <stdexcept>
#include <utility>
#include <variant>

#include <kmlab/kernel/verifier.hpp>
#include <kmlab/mutexes/error.hpp>
#include <kmlab/mutexes/guard.hpp>
#include <kmlab/mutexes/raw.hpp>

namespace kmlab {

// The alertable wait's mode: a KernelMode wait (alertable) ends for a
// kernel-mode alert; a UserMode one (alertable_user) also for a user-mode
// alert and for a queued user APC.
struct Alertable {
    nt::KPROCESSOR_MODE mode = nt::KernelMode;
};
inline constexpr Alertable alertable{};
inline constexpr Alertable alertable_user{nt::UserMode};

template <class T = std::monostate, backends::WaitBackend Backend = backends::Futex>
class KMutex {
  public:
    using value_type = T;
    using backend = Backend;
    static constexpr std::string_view kind() { return "KMutex"; }
    // Traits (tests and benchmarks branch on these, never on kind()).
    static constexpr bool recursive = true;     // the owner may acquire again
    static constexpr bool raises_irql = false;  // acquiring leaves the IRQL alone

    using Guard = detail::Guard<KMutex>;
    struct guard_token {
        nt::LONG depth;  // the guard's nesting depth, 1 for the outermost
        bool abandoned;  // the acquisition found the mutex abandoned (Guard::abandoned)
    };

    template <class... Args>
    explicit KMutex(Args&&... args) : value_(std::forward<Args>(args)...) {}
    KMutex(const KMutex&) = delete;
    KMutex& operator=(const KMutex&) = delete;
    // A new lock at this address starts with no verifier history (kernel/verifier.hpp).
    ~KMutex() { kernel::verifier::forget_if_known(this); }

    std::expected<Guard, Error> lock() { return acquire(Deadline::never(), nt::APC_LEVEL); }
    std::expected<Guard, Error> try_lock() { return acquire(Deadline::poll(), nt::DISPATCH_LEVEL); }
    template <class Rep, class Period>
    std::expected<Guard, Error> lock_for(std::chrono::duration<Rep, Period> d) {
        if (d <= d.zero()) return try_lock();
        return acquire(Deadline::after(d), nt::APC_LEVEL);
    }
    // Alertable waits (above): over backends::Dispatcher only.
    std::expected<Guard, Error> lock(Alertable a) requires backends::kernel_objects<Backend> {
        return acquire_alertable(Deadline::never(), nt::APC_LEVEL, a);
    }
    template <class Rep, class Period>
    std::expected<Guard, Error> lock_for(std::chrono::duration<Rep, Period> d,
                                         Alertable a) requires backends::kernel_objects<Backend> {
        // A zero timeout still reports a pending alert: the alert is checked
        // before the timeout (SEMANTICS.md 4.4).
        if (d <= d.zero()) return acquire_alertable(Deadline::poll(), nt::DISPATCH_LEVEL, a);
        return acquire_alertable(Deadline::after(d), nt::APC_LEVEL, a);
    }

    // The value, moved out as Rust's Mutex::into_inner consumes the mutex:
    // `std::move(m).into_inner()`. Checked as try_lock() is (IRQL <=
    // DISPATCH_LEVEL) and refused with Errc::guard_alive while any guard
    // holds the mutex, the caller's included, since that guard still gives
    // access to the value. It takes the mutex for the move, which orders it
    // after the last holder's writes. The mutex is left free, holding a
    // moved-from T.
    std::expected<T, Error> into_inner() && requires std::move_constructible<T> {
        auto g = try_lock();
        if (g && signal_state() == 0) return std::move(**g);  // the only hold is this one
        return std::unexpected(detail::into_inner_error(g ? nullptr : &g.error(), this));
    }
    // A copy of the value, taken under the lock: lock()'s rules and errors.
    std::expected<T, Error> to_owned() requires std::copy_constructible<T> {
        auto g = lock();
        if (!g) return std::unexpected(g.error());
        return **g;
    }

    // SignalState as KeReadStateMutex reports it: 1 free, 1-n owned n times.
    nt::LONG signal_state() const noexcept { return raw_.signal_state(); }
    nt::PKTHREAD owner() const noexcept { return raw_.owner(); }
    // Free, unowned, nobody waiting: the state a new mutex has.
    bool is_initial_state() const noexcept { return raw_.debug_is_free(); }
    detail::RawKMutex<Backend>& raw() noexcept { return raw_; }

  private:
    // The IRQL a wait's rule reads. Over kernel objects the acquisition is
    // KeWaitForSingleObject, which may follow a Wait = TRUE release: its rule
    // reads the IRQL saved in WaitIrql, and the wait ends the hold. A parking
    // backend's wait is no KeWait and cannot end a hold: it is held to the
    // IRQL it runs at.
    static nt::KIRQL wait_rule_irql(nt::PKTHREAD t) noexcept {
        if constexpr (backends::kernel_objects<Backend>) {
            if (t->WaitNext) return t->WaitIrql;
        }
        return t->Irql;
    }
    // A refused wait: the kernel's answer as an Error. Inside a Wait = TRUE
    // hold the hold is given back first, as KeWait's bug check gives it back
    // before unwinding (kernel::before_unwind), or every other thread's
    // dispatcher call would wait for this one's next KeWait.
    [[gnu::noinline, gnu::cold]] Error refuse_wait(nt::PKTHREAD t, const kernel::Violation& v) {
        const nt::KIRQL irql = t->Irql;
        if constexpr (backends::kernel_objects<Backend>) {
            if (t->WaitNext) kernel::before_unwind();
        }
        return detail::from_violation(Errc::irql_too_high, v, irql);
    }

    // wait_rule_irql through the gate word (kernel/verifier.hpp): the IRQL
    // compare of acquire() fails into acquire_gate with the verifier on.
    static nt::USHORT wait_rule_gate(nt::PKTHREAD t) noexcept {
        if constexpr (backends::kernel_objects<Backend>) {
            if (t->WaitNext) return t->WaitIrql;
        }
        return t->IrqlGate;
    }
    std::expected<Guard, Error> acquire(Deadline deadline, nt::KIRQL ceiling) {
        nt::PKTHREAD t = kernel::current_thread();
        if (wait_rule_gate(t) > ceiling) [[unlikely]]
            return acquire_gate(t, deadline, ceiling);
        return acquire_at(t, deadline);
    }
    // Above the ceiling, or the verifier on: the IRQL rule, the verifier's
    // check (Errc::deadlock; a poll closes no cycle), the acquisition and
    // its record.
    [[gnu::noinline, gnu::cold]] std::expected<Guard, Error> acquire_gate(nt::PKTHREAD t,
                                                                          Deadline deadline,
                                                                          nt::KIRQL ceiling) {
        if (auto v = kernel::check_wait_irql(wait_rule_irql(t), ceiling, this))
            return std::unexpected(refuse_wait(t, *v));
        namespace verifier = kernel::verifier;
        constexpr auto type = verifier::LockType::idiomatic_kmutex;
        const bool poll = ceiling == nt::DISPATCH_LEVEL;
        if (!poll && verifier::on(t)) {
            if (auto v = verifier::check_acquire(t, this, type))
                return std::unexpected(detail::from_violation(Errc::deadlock, *v, t->Irql));
        }
        auto g = acquire_at(t, deadline);
        if (g) verifier::on_acquired(t, this, type, false, poll);
        return g;
    }
    [[gnu::always_inline]] std::expected<Guard, Error> acquire_at(nt::PKTHREAD t,
                                                                  Deadline deadline) {
        switch (raw_.acquire(t, deadline)) {
            case detail::Acquire::acquired:
                return Guard(this, {1 - raw_.signal_state(), false});
            case detail::Acquire::abandoned:
                return Guard(this, {1 - raw_.signal_state(), true});
            case detail::Acquire::timeout:
                return std::unexpected(
                    detail::make_error(Errc::busy, t->Irql, this, nt::STATUS_TIMEOUT));
            case detail::Acquire::limit:  // the raw lock stops at the kernel's limit
                return std::unexpected(detail::from_violation(
                    Errc::recursion_limit, kernel::mutant_limit_exceeded(this), t->Irql));
        }
        __builtin_unreachable();
    }
    // The alertable wait apart from acquire(), with an NTSTATUS rather than a
    // detail::Acquire: giving Acquire the two outcomes only this wait has made
    // the non-alertable lock and unlock pair of a futex KMutex 58 instructions
    // instead of 51, and 82 when both waits shared one body (callgrind,
    // bin/instructions 'KMutex,futex').
    std::expected<Guard, Error> acquire_alertable(Deadline deadline, nt::KIRQL ceiling,
                                                  Alertable a) {
        nt::PKTHREAD t = kernel::current_thread();
        if (auto v = kernel::check_wait_irql(wait_rule_irql(t), ceiling, this)) [[unlikely]]
            return std::unexpected(refuse_wait(t, *v));
        switch (const nt::NTSTATUS s = raw_.acquire_alertable(t, deadline, a.mode)) {
            case nt::STATUS_TIMEOUT:
                return std::unexpected(detail::make_error(Errc::busy, t->Irql, this, s));
            case nt::STATUS_ALERTED:
                return std::unexpected(detail::make_error(Errc::alerted, t->Irql, this, s));
            case nt::STATUS_USER_APC:
                return std::unexpected(detail::make_error(Errc::user_apc, t->Irql, this, s));
            case nt::STATUS_MUTANT_LIMIT_EXCEEDED:
                return std::unexpected(detail::from_violation(
                    Errc::recursion_limit, kernel::mutant_limit_exceeded(this), t->Irql));
            default:  // STATUS_SUCCESS, or STATUS_ABANDONED (Guard::abandoned)
                return Guard(this, {1 - raw_.signal_state(), s == nt::STATUS_ABANDONED});
        }
    }

    friend Guard;

    // Checks, then releases; on error releases nothing. One function, so the
    // thread pointer read for the checks serves the release too. `strict`
    // (unlock()) also refuses to release an outer guard before a nested one.
    std::optional<Error> release_checked(guard_token token, bool strict) {
        nt::PKTHREAD t = kernel::current_thread();
        // The IRQL rule's compare through the gate word (kernel/verifier.hpp).
        if (t->IrqlGate > nt::DISPATCH_LEVEL) [[unlikely]]
            return release_gate(t, token, strict);
        // A guard whose owner exited (the mutex abandoned) answers as
        // KeReleaseMutex does for that mutex: STATUS_ABANDONED.
        if (auto v = kernel::check_mutant_owner(t, this, raw_.owner(), raw_.abandoned()))
            [[unlikely]]
            return detail::from_violation(Errc::not_owner, *v, t->Irql);
        if (strict && token.depth != 1 - raw_.signal_state()) [[unlikely]]
            return detail::make_error(Errc::nested_guard_alive, t->Irql, this, 0);
        raw_.release(t);
        return std::nullopt;
    }
    // Above DISPATCH_LEVEL, or the verifier on: release_checked's rules in
    // its order, then the release with the verifier's record.
    [[gnu::noinline, gnu::cold]] std::optional<Error> release_gate(nt::PKTHREAD t,
                                                                   guard_token token, bool strict) {
        if (auto v = kernel::check_mutant_release_irql(t, this))
            return detail::from_violation(Errc::irql_too_high, *v, t->Irql);
        if (auto v = kernel::check_mutant_owner(t, this, raw_.owner(), raw_.abandoned()))
            return detail::from_violation(Errc::not_owner, *v, t->Irql);
        if (strict && token.depth != 1 - raw_.signal_state())
            return detail::make_error(Errc::nested_guard_alive, t->Irql, this, 0);
        if (kernel::verifier::on(t)) kernel::verifier::note_release(t, this);
        raw_.release(t);
        return std::nullopt;
    }

    T& value_for(guard_token token) {
        if (token.depth != 1 - raw_.signal_state()) [[unlikely]]
            throw std::logic_error(
                "kmlab::KMutex: access through a guard while a nested guard is alive");
        return value_;
    }

    detail::RawKMutex<Backend> raw_;
    T value_;
};

}  // namespace kmlab
