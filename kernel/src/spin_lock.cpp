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

namespace kmlab::nt {

namespace {

using kernel::current_thread;
using kernel::enforce;
using kernel::enforce_in_flavor;

// The ordinary acquire at the current IRQL. A recursive acquire, or one of a
// lock held through the queue, always fails the compare-exchange (the word is
// the caller's own tag, or a queue tail), so both rules are checked there
// only: the uncontended path pays nothing for them.
[[gnu::always_inline]] inline void acquire_at(PKTHREAD t, PKSPIN_LOCK lock) {
    const KSPIN_LOCK tag = spin_lock::owner_tag(t);
    KSPIN_LOCK seen;
    if (!spin_lock::try_acquire(*lock, tag, seen)) [[unlikely]] {
        enforce(kernel::check_spin_lock_not_recursive(seen, tag, lock));
        enforce(kernel::check_spin_lock_not_mixed(seen, lock));
        spin_lock::acquire_contended(*lock, tag);
    }
}

[[gnu::always_inline]] inline void release_at(PKTHREAD t, PKSPIN_LOCK lock) {
    enforce(kernel::check_spin_lock_owner(spin_lock::load(*lock), spin_lock::owner_tag(t), lock));
    spin_lock::release(*lock);
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
    if (const KSPIN_LOCK prev = spin_lock::enqueue(*lock, q); prev != 0) [[unlikely]] {
        enforce(kernel::check_queued_not_mixed(prev, lock));
        spin_lock::wait_for_handoff(q, prev);
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
        spin_lock::entry_owns(handle->LockQueue) && kernel::detail::tls_queued_holds.remove(lock);
    enforce(kernel::check_queued_owner(owns, lock, handle));
    spin_lock::release_queued(handle->LockQueue, lock);
}

}  // namespace

void KeInitializeSpinLock(PKSPIN_LOCK SpinLock) {
    *SpinLock = 0;
}

KIRQL KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    const KIRQL old_irql = t->Irql;
    if (old_irql > DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(kernel::check_spin_lock_acquire_irql(old_irql, SpinLock));
    acquire_at(t, SpinLock);
    // KfRaiseIrql(DISPATCH_LEVEL): from above it (the free flavour) this
    // lowers, as a free HAL lets it [kmt-KeSpinLock].
    kernel::set_irql(t, DISPATCH_LEVEL);
    return old_irql;
}

void KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql) {
    PKTHREAD t = current_thread();
    if (t->Irql != DISPATCH_LEVEL || NewIrql > DISPATCH_LEVEL) [[unlikely]] {
        enforce_in_flavor(kernel::check_spin_lock_release_irql(t->Irql, SpinLock));
        // KfLowerIrql(NewIrql) [ros-apic].
        enforce_in_flavor(kernel::check_lower_irql(t->Irql, NewIrql));
    }
    release_at(t, SpinLock);
    kernel::set_irql(t, NewIrql);
}

void KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (t->Irql < DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(kernel::check_spin_lock_at_dpc_acquire_irql(t->Irql, SpinLock));
    acquire_at(t, SpinLock);
}

void KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (t->Irql < DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(kernel::check_spin_lock_from_dpc_release_irql(t->Irql, SpinLock));
    release_at(t, SpinLock);
}

BOOLEAN KeTryToAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (t->Irql < DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(kernel::check_spin_lock_at_dpc_acquire_irql(t->Irql, SpinLock));
    const KSPIN_LOCK tag = spin_lock::owner_tag(t);
    // Test, then set, as KzTryToAcquireSpinLock [wrk-ki] and ReactOS
    // [ros-spinlock] do: a held lock costs no locked instruction.
    KSPIN_LOCK seen = spin_lock::load(*SpinLock);
    if (seen == 0 && spin_lock::try_acquire(*SpinLock, tag, seen)) return TRUE;
    enforce_in_flavor(kernel::check_spin_lock_try_not_recursive(seen, tag, SpinLock));
    return FALSE;
}

BOOLEAN KeTestSpinLock(PKSPIN_LOCK SpinLock) {
    // TRUE for 0 only; any other word (1, 2, the top bit, all ones) is held
    // [kmt-KeSpinLock].
    return spin_lock::load(*SpinLock) == 0 ? TRUE : FALSE;
}

KIRQL KeAcquireSpinLockForDpc(PKSPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (t->Irql != DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(kernel::check_for_dpc_irql(t->Irql, SpinLock));
    acquire_at(t, SpinLock);
    return DISPATCH_LEVEL;
}

void KeReleaseSpinLockForDpc(PKSPIN_LOCK SpinLock, KIRQL) {
    PKTHREAD t = current_thread();
    if (t->Irql != DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(kernel::check_for_dpc_irql(t->Irql, SpinLock));
    release_at(t, SpinLock);
}

void KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    const KIRQL old_irql = t->Irql;
    if (old_irql > DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(kernel::check_queued_acquire_irql(old_irql));
    acquire_queued_at(SpinLock, LockHandle);
    kernel::set_irql(t, DISPATCH_LEVEL);
    LockHandle->OldIrql = old_irql;
}

void KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    const KIRQL old_irql = LockHandle->OldIrql;
    if (t->Irql != DISPATCH_LEVEL || old_irql > DISPATCH_LEVEL) [[unlikely]] {
        enforce_in_flavor(
            kernel::check_queued_release_irql(t->Irql, lock_of(LockHandle), old_irql));
        // KeLowerIrql(LockHandle->OldIrql) [wrk-queuelock][ros-apic].
        enforce_in_flavor(kernel::check_lower_irql(t->Irql, old_irql));
    }
    release_queued_at(LockHandle);
    kernel::set_irql(t, old_irql);
}

void KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock,
                                              PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    if (t->Irql < DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(kernel::check_spin_lock_at_dpc_acquire_irql(t->Irql, SpinLock));
    acquire_queued_at(SpinLock, LockHandle);
}

void KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    if (t->Irql < DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(
            kernel::check_spin_lock_from_dpc_release_irql(t->Irql, lock_of(LockHandle)));
    release_queued_at(LockHandle);
}

void KeAcquireInStackQueuedSpinLockForDpc(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    if (t->Irql != DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(kernel::check_for_dpc_irql(t->Irql, SpinLock));
    acquire_queued_at(SpinLock, LockHandle);
}

void KeReleaseInStackQueuedSpinLockForDpc(PKLOCK_QUEUE_HANDLE LockHandle) {
    PKTHREAD t = current_thread();
    if (t->Irql != DISPATCH_LEVEL) [[unlikely]]
        enforce_in_flavor(kernel::check_for_dpc_irql(t->Irql, lock_of(LockHandle)));
    release_queued_at(LockHandle);
}

}  // namespace kmlab::nt
