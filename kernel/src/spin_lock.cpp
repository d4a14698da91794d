// KSPIN_LOCK and in-stack queued spin locks: the NT routines over
// kmlab/kernel/spin_lock_algorithm.hpp, with the rules of
// kmlab/kernel/rules_spin_lock.hpp.
//
// Every rule is checked before the routine changes anything (IRQL, lock word,
// handle), so a caught bug check leaves the caller as it was. Where a routine
// has several rules it applies the IRQL ones first (Driver Verifier's, whose
// thunk runs before the routine, then the HAL's raise or lower), then the
// ownership ones, which the queued routines apply last because their check
// takes the lock off the thread's list.
#include <kmlab/kernel/rules_spin_lock.hpp>
#include <kmlab/kernel/spin_lock.hpp>
#include <kmlab/kernel/spin_lock_algorithm.hpp>
#include <kmlab/kernel/verifier.hpp>

namespace kmlab::nt {

namespace {

using kernel::current_thread;
using kernel::enforce;
using kernel::enforce_in_flavor;
namespace verifier = kernel::verifier;
using verifier::LockType;

// The platform the lock words go through. In the explorer's copy
// (explore/src/spin_lock_seam.cpp) it is kernel_seam::Platform, so under the
// model every access to a KSPIN_LOCK or a queue entry is a scheduling point
// over model memory and every spin blocks on what it read (lock_seam.hpp);
// production's is Native, and its code is what it was.
#ifdef KMLAB_DISPATCHER_SEAM
using P = explore::kernel_seam::Platform;
// The queued release's ownership test reads the entry through P: under the
// model's TSO memory the owner's own OWNER store may still be buffered,
// which a native read would not see.
[[gnu::always_inline]] inline bool entry_owns(KSPIN_LOCK_QUEUE& q) noexcept {
    return (reinterpret_cast<ULONG_PTR>(spin_lock::detail::load_lock<P>(q)) &
            spin_lock::kQueueFlags) == spin_lock::LOCK_QUEUE_OWNER;
}
#else
using P = platform::Native;
using spin_lock::entry_owns;
#endif

// The slow path of a routine whose fast path compared KTHREAD::IrqlGate
// (kernel/verifier.hpp): the IRQL was out of range or the verifier is on.
// Captureless `body`, so the fast path passes only its arguments and
// tail-calls: nothing built in its frame.
template <class Body, class... Args>
[[gnu::cold, gnu::noinline]] auto gate_slow(Body body, Args... args) {
    return body(args...);
}

// The ordinary acquire at the current IRQL. A recursive acquire, or one of a
// lock held through the queue, always fails the compare-exchange (the word is
// the caller's own tag, or a queue tail), so both rules are checked there
// only: the uncontended path pays nothing for them.
[[gnu::always_inline]] inline void acquire_at(PKTHREAD t, PKSPIN_LOCK lock) {
    const KSPIN_LOCK tag = spin_lock::owner_tag(t);
#ifdef KMLAB_DISPATCHER_SEAM
    // The explorer's must-find mutant (lock_seam.hpp): the acquire as a load
    // then a plain store, which lets two threads in.
    if (explore::kernel_seam::spin_lock_acquire_mutant()) [[unlikely]]
        return spin_lock::acquire<P, spin_lock::Mutant::load_then_store>(*lock, tag);
#endif
    KSPIN_LOCK seen;
    if (!spin_lock::try_acquire<P>(*lock, tag, seen)) [[unlikely]] {
        enforce(kernel::check_spin_lock_not_recursive(seen, tag, lock));
        enforce(kernel::check_spin_lock_not_mixed(seen, lock));
        spin_lock::acquire_contended<P>(*lock, tag);
    }
}

[[gnu::always_inline]] inline void release_at(PKTHREAD t, PKSPIN_LOCK lock) {
    enforce(
        kernel::check_spin_lock_owner(spin_lock::load<P>(*lock), spin_lock::owner_tag(t), lock));
    spin_lock::release<P>(*lock);
}

// The queued acquire at the current IRQL, with the two queued rules of its
// own (rules_spin_lock.hpp): recursion before the swap, mixing at it.
// enqueue() never replaces an ordinary holder's tag: it returns it with the
// word unchanged (its compare-exchange closes the race between reading the
// word and swapping it), so the bug check leaves the lock as it was and no
// second queued acquirer can link behind this one.
void acquire_queued_at(PKSPIN_LOCK lock, PKLOCK_QUEUE_HANDLE handle) {
    auto& holds = kernel::detail::tls_queued_holds;
    enforce(kernel::check_queued_not_recursive(holds.contains(lock), lock));
    KSPIN_LOCK_QUEUE& q = handle->LockQueue;
    if (const KSPIN_LOCK prev = spin_lock::enqueue<P>(*lock, q); prev != 0) [[unlikely]] {
        enforce(kernel::check_queued_not_mixed(prev, lock));
        spin_lock::wait_for_handoff<P>(q, prev);
    }
    holds.add(lock);
}

PKSPIN_LOCK lock_of(PKLOCK_QUEUE_HANDLE handle) noexcept {
    return spin_lock::detail::without_flags(handle->LockQueue.Lock);
}

// The queued release's own rule: the handle holds its lock, and this thread
// acquired it. Applied last: it takes the lock off the thread's list.
// Inlined into each release routine (left to itself GCC stopped inlining it
// once the entry's accesses became atomic ones: a call and a frame more).
[[gnu::always_inline]] inline void release_queued_at(PKLOCK_QUEUE_HANDLE handle) {
    PKSPIN_LOCK lock = lock_of(handle);
    const bool owns =
        entry_owns(handle->LockQueue) && kernel::detail::tls_queued_holds.remove(lock);
    enforce(kernel::check_queued_owner(owns, lock, handle));
    spin_lock::release_queued<P>(handle->LockQueue, lock);
#ifdef KMLAB_DISPATCHER_SEAM
    // The handle is the caller's stack, which it reuses natively once the
    // routine returns: under the model's TSO memory the release's last
    // stores to it must reach memory first (left buffered, one would land
    // later on whatever the stack holds then, a write no processor makes).
    explore::kernel_seam::drain_own_stores();
#endif
}

}  // namespace

void KeInitializeSpinLock(PKSPIN_LOCK SpinLock) {
    *SpinLock = 0;
    if (PKTHREAD t = verifier::initializing_thread(); verifier::on(t)) [[unlikely]]
        verifier::on_initialize(t, SpinLock, LockType::spin_lock, __builtin_return_address(0));
}

namespace {
[[gnu::always_inline]] inline KIRQL acquire_raise_to_dpc(PKTHREAD t, PKSPIN_LOCK lock) {
    const KIRQL old_irql = t->Irql;
    acquire_at(t, lock);
    // KfRaiseIrql(DISPATCH_LEVEL): from above it (the free flavour) this
    // lowers, as a free HAL lets it [kmt-KeSpinLock].
    kernel::set_irql(t, DISPATCH_LEVEL);
    return old_irql;
}
[[gnu::always_inline]] inline void release_lower(PKTHREAD t, PKSPIN_LOCK lock, KIRQL new_irql) {
    release_at(t, lock);
    kernel::set_irql(t, new_irql);
}
// The verifier's hooks around a KSPIN_LOCK routine (verifier.hpp).
template <class Body>
auto hooked_acquire(PKTHREAD t, PKSPIN_LOCK lock, LockType type, Body body) {
    verifier::on_acquire(t, lock, type);
    auto r = body();
    verifier::on_acquired(t, lock, type);
    return r;
}
// The gate of the ...AtDpcLevel routines, whose rule is a floor: an IRQL
// below DISPATCH_LEVEL, or the verifier on (the word is then above 0xFF).
// Two instructions more than the byte compare they replace (verifier.hpp).
[[gnu::always_inline]] inline bool below_dpc_or_gate(PKTHREAD t) noexcept {
    return static_cast<USHORT>(t->IrqlGate - DISPATCH_LEVEL) > 0xFF - DISPATCH_LEVEL;
}
}  // namespace

KIRQL KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (t->IrqlGate > DISPATCH_LEVEL) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKSPIN_LOCK lk) {
                if (th->Irql > DISPATCH_LEVEL)
                    enforce_in_flavor(kernel::check_spin_lock_acquire_irql(th->Irql, lk));
                return hooked_acquire(th, lk, LockType::spin_lock,
                                      [=] { return acquire_raise_to_dpc(th, lk); });
            },
            t, SpinLock);
    return acquire_raise_to_dpc(t, SpinLock);
}

void KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql) {
    PKTHREAD t = current_thread();
    if (t->IrqlGate != DISPATCH_LEVEL || NewIrql > DISPATCH_LEVEL) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKSPIN_LOCK lk, KIRQL new_irql) {
                if (th->Irql != DISPATCH_LEVEL || new_irql > DISPATCH_LEVEL) {
                    enforce_in_flavor(kernel::check_spin_lock_release_irql(th->Irql, lk));
                    // KfLowerIrql(NewIrql) [ros-apic].
                    enforce_in_flavor(kernel::check_lower_irql(th->Irql, new_irql));
                }
                verifier::on_release(th, lk, LockType::spin_lock);
                release_lower(th, lk, new_irql);
            },
            t, SpinLock, NewIrql);
    release_lower(t, SpinLock, NewIrql);
}

void KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (below_dpc_or_gate(t)) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKSPIN_LOCK lk) {
                if (th->Irql < DISPATCH_LEVEL)
                    enforce_in_flavor(kernel::check_spin_lock_at_dpc_acquire_irql(th->Irql, lk));
                hooked_acquire(th, lk, LockType::spin_lock, [=] {
                    acquire_at(th, lk);
                    return 0;
                });
            },
            t, SpinLock);
    acquire_at(t, SpinLock);
}

void KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (below_dpc_or_gate(t)) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKSPIN_LOCK lk) {
                if (th->Irql < DISPATCH_LEVEL)
                    enforce_in_flavor(kernel::check_spin_lock_from_dpc_release_irql(th->Irql, lk));
                verifier::on_release(th, lk, LockType::spin_lock);
                release_at(th, lk);
            },
            t, SpinLock);
    release_at(t, SpinLock);
}

BOOLEAN KeTryToAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (t->Irql < DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(kernel::check_spin_lock_at_dpc_acquire_irql(t->Irql, SpinLock));
    const KSPIN_LOCK tag = spin_lock::owner_tag(t);
    // Test, then set, as KzTryToAcquireSpinLock [wrk-ki] and ReactOS
    // [ros-spinlock] do: a held lock costs no locked instruction.
    KSPIN_LOCK seen = spin_lock::load<P>(*SpinLock);
    if (seen == 0 && spin_lock::try_acquire<P>(*SpinLock, tag, seen)) {
        // A try: no cycle check, no edge into it (verifier.hpp). Here the
        // hook costs a gate test on the success path (1 instruction).
        verifier::on_acquired(t, SpinLock, LockType::spin_lock, false, true);
        return TRUE;
    }
    enforce_in_flavor(kernel::check_spin_lock_try_not_recursive(seen, tag, SpinLock));
    return FALSE;
}

BOOLEAN KeTestSpinLock(PKSPIN_LOCK SpinLock) {
    // TRUE for 0 only; any other word (1, 2, the top bit, all ones) is held
    // [kmt-KeSpinLock].
    return spin_lock::load<P>(*SpinLock) == 0 ? TRUE : FALSE;
}

// The ...ForDpc routines' ASSERT (IRQL == DISPATCH_LEVEL) compares the gate
// word (kernel/verifier.hpp): the same one compare, failing into the hooks
// with the verifier on.
KIRQL KeAcquireSpinLockForDpc(PKSPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (t->IrqlGate != DISPATCH_LEVEL) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKSPIN_LOCK lk) {
                if (th->Irql != DISPATCH_LEVEL)
                    enforce_in_flavor(kernel::check_for_dpc_irql(th->Irql, lk));
                hooked_acquire(th, lk, LockType::spin_lock, [=] {
                    acquire_at(th, lk);
                    return 0;
                });
                return static_cast<KIRQL>(DISPATCH_LEVEL);
            },
            t, SpinLock);
    acquire_at(t, SpinLock);
    return DISPATCH_LEVEL;
}

void KeReleaseSpinLockForDpc(PKSPIN_LOCK SpinLock, KIRQL) {
    PKTHREAD t = current_thread();
    if (t->IrqlGate != DISPATCH_LEVEL) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKSPIN_LOCK lk) {
                if (th->Irql != DISPATCH_LEVEL)
                    enforce_in_flavor(kernel::check_for_dpc_irql(th->Irql, lk));
                verifier::on_release(th, lk, LockType::spin_lock);
                release_at(th, lk);
            },
            t, SpinLock);
    release_at(t, SpinLock);
}

namespace {
[[gnu::always_inline]] inline void acquire_queued_raise(PKTHREAD t, PKSPIN_LOCK lock,
                                                        PKLOCK_QUEUE_HANDLE handle) {
    const KIRQL old_irql = t->Irql;
    acquire_queued_at(lock, handle);
    kernel::set_irql(t, DISPATCH_LEVEL);
    handle->OldIrql = old_irql;
}
[[gnu::always_inline]] inline void release_queued_lower(PKTHREAD t, PKLOCK_QUEUE_HANDLE handle,
                                                        KIRQL old_irql) {
    release_queued_at(handle);
    kernel::set_irql(t, old_irql);
}
}  // namespace

void KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    if (t->IrqlGate > DISPATCH_LEVEL) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKSPIN_LOCK lk, PKLOCK_QUEUE_HANDLE h) {
                if (th->Irql > DISPATCH_LEVEL)
                    enforce_in_flavor(kernel::check_queued_acquire_irql(th->Irql));
                hooked_acquire(th, lk, LockType::queued_spin_lock, [=] {
                    acquire_queued_raise(th, lk, h);
                    return 0;
                });
            },
            t, SpinLock, LockHandle);
    acquire_queued_raise(t, SpinLock, LockHandle);
}

void KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    const KIRQL old_irql = LockHandle->OldIrql;
    if (t->IrqlGate != DISPATCH_LEVEL || old_irql > DISPATCH_LEVEL) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKLOCK_QUEUE_HANDLE h, KIRQL old) {
                if (th->Irql != DISPATCH_LEVEL || old > DISPATCH_LEVEL) {
                    enforce_in_flavor(kernel::check_queued_release_irql(th->Irql, lock_of(h), old));
                    // KeLowerIrql(LockHandle->OldIrql) [wrk-queuelock][ros-apic].
                    enforce_in_flavor(kernel::check_lower_irql(th->Irql, old));
                }
                verifier::on_release(th, lock_of(h), LockType::queued_spin_lock);
                release_queued_lower(th, h, old);
            },
            t, LockHandle, old_irql);
    release_queued_lower(t, LockHandle, old_irql);
}

// The in-stack queued ...AtDpcLevel forms test the floor and the gate in one
// compare (below_dpc_or_gate), as KeAcquireSpinLockAtDpcLevel does; the
// ...ForDpc forms compare the gate word with DISPATCH_LEVEL.
void KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock,
                                              PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    if (below_dpc_or_gate(t)) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKSPIN_LOCK lk, PKLOCK_QUEUE_HANDLE h) {
                if (th->Irql < DISPATCH_LEVEL)
                    enforce_in_flavor(kernel::check_spin_lock_at_dpc_acquire_irql(th->Irql, lk));
                hooked_acquire(th, lk, LockType::queued_spin_lock, [=] {
                    acquire_queued_at(lk, h);
                    return 0;
                });
            },
            t, SpinLock, LockHandle);
    acquire_queued_at(SpinLock, LockHandle);
}

void KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    if (below_dpc_or_gate(t)) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKLOCK_QUEUE_HANDLE h) {
                if (th->Irql < DISPATCH_LEVEL)
                    enforce_in_flavor(
                        kernel::check_spin_lock_from_dpc_release_irql(th->Irql, lock_of(h)));
                verifier::on_release(th, lock_of(h), LockType::queued_spin_lock);
                release_queued_at(h);
            },
            t, LockHandle);
    release_queued_at(LockHandle);
}

void KeAcquireInStackQueuedSpinLockForDpc(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    if (t->IrqlGate != DISPATCH_LEVEL) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKSPIN_LOCK lk, PKLOCK_QUEUE_HANDLE h) {
                if (th->Irql != DISPATCH_LEVEL)
                    enforce_in_flavor(kernel::check_for_dpc_irql(th->Irql, lk));
                hooked_acquire(th, lk, LockType::queued_spin_lock, [=] {
                    acquire_queued_at(lk, h);
                    return 0;
                });
            },
            t, SpinLock, LockHandle);
    acquire_queued_at(SpinLock, LockHandle);
}

void KeReleaseInStackQueuedSpinLockForDpc(PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    if (t->IrqlGate != DISPATCH_LEVEL) [[unlikely]]
        return gate_slow(
            [](PKTHREAD th, PKLOCK_QUEUE_HANDLE h) {
                if (th->Irql != DISPATCH_LEVEL)
                    enforce_in_flavor(kernel::check_for_dpc_irql(th->Irql, lock_of(h)));
                verifier::on_release(th, lock_of(h), LockType::queued_spin_lock);
                release_queued_at(h);
            },
            t, LockHandle);
    release_queued_at(LockHandle);
}

}  // namespace kmlab::nt
