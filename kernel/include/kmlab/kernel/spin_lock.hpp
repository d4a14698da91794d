// KSPIN_LOCK and in-stack queued spin locks: types and routines with the
// WDK's names, layouts and signatures.
//
// What Windows exports (for the C face, <kmlab/wdm.h>): on amd64 the WDK makes
// KeAcquireSpinLock a macro, `*(OldIrql) = KeAcquireSpinLockRaiseToDpc(Lock)`
// (x86 has a KeAcquireSpinLock export over KfAcquireSpinLock; kmtest calls
// both forms [kmt-KeSpinLock]); here it is an inline function with the same
// effect, and KeReleaseSpinLock is an export on amd64. KeInitializeSpinLock
// is an export (amd64 drivers import it; ReactOS's headers inline it as
// `*SpinLock = 0` unless WIN9X_COMPAT_SPINLOCK is defined [kmt-KeSpinLock]).
// Every other routine below is a kernel export, found by
// MmGetSystemRoutineAddress: KeTryToAcquireSpinLockAtDpcLevel and
// KeTestSpinLock (kmtest looks both up by name [kmt-KeSpinLock]), the
// ...ForDpc pairs (Windows Vista and later [ddi:keacquirespinlockfordpc];
// [wrk-dpclock] has them), the AtDpcLevel /
// FromDpcLevel and in-stack queued routines.
//
// Misuse answers as the kernel does; the rules, their sources and the flavour
// that enforces each are in kernel/rules_spin_lock.hpp.
#pragma once

#include <kmlab/kernel/routines.hpp>

namespace kmlab::nt {

// The lock word. 0 = free. Held by an ordinary acquire: (KTHREAD address | 1),
// the layout a ReactOS DBG build keeps [ros-spinlock-h]; held by in-stack
// queued acquires: the address of the tail KSPIN_LOCK_QUEUE (8-byte aligned,
// bit 0 clear) [wrk-queuelock][kmt-KeSpinLock]. See
// spin_lock_algorithm.hpp for the full layout and the mixing decision.
using KSPIN_LOCK = ULONG_PTR;
using PKSPIN_LOCK = KSPIN_LOCK*;

// The WDK declares both fields volatile (so does ReactOS [ros-xket]); here every access goes
// through std::atomic_ref (P::atomic_ref under the explorer), which a
// volatile-qualified object cannot take, so the qualifier is dropped
// (decision, kmlab: same layout, size and field names).
struct KSPIN_LOCK_QUEUE {
    KSPIN_LOCK_QUEUE* Next;
    PKSPIN_LOCK Lock;
};
using PKSPIN_LOCK_QUEUE = KSPIN_LOCK_QUEUE*;

// Lives on the caller's stack for the duration of the hold [ddi:keacquireinstackqueuedspinlock].
struct KLOCK_QUEUE_HANDLE {
    KSPIN_LOCK_QUEUE LockQueue;
    KIRQL OldIrql;
};
using PKLOCK_QUEUE_HANDLE = KLOCK_QUEUE_HANDLE*;

// ---- Ordinary spin locks ----
// Any IRQL [ddi:keinitializespinlock]; sets the word to 0.
void KeInitializeSpinLock(PKSPIN_LOCK SpinLock);
// Raises to DISPATCH_LEVEL and acquires; returns the IRQL it found.
// IRQL <= DISPATCH_LEVEL [ddi:keacquirespinlockraisetodpc].
KIRQL KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock);
// A macro in the amd64 WDK; an inline here.
inline void KeAcquireSpinLock(PKSPIN_LOCK SpinLock, PKIRQL OldIrql) {
    *OldIrql = KeAcquireSpinLockRaiseToDpc(SpinLock);
}
// Releases and lowers the IRQL to NewIrql; called at DISPATCH_LEVEL
// [ddi:kereleasespinlock].
void KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql);
// IRQL >= DISPATCH_LEVEL; the IRQL is not changed [ddi:keacquirespinlockatdpclevel].
void KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock);
void KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock);
// TRUE when acquired; never spins. IRQL >= DISPATCH_LEVEL
// [ddi:ketrytoacquirespinlockatdpclevel].
BOOLEAN KeTryToAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock);
// TRUE when the lock is free (a hint to spin on before a try), FALSE when held
// [ddi:ketestspinlock].
BOOLEAN KeTestSpinLock(PKSPIN_LOCK SpinLock);
// For a threaded DPC: the page raises to DISPATCH_LEVEL when the caller runs at
// PASSIVE_LEVEL and leaves the IRQL at DISPATCH_LEVEL
// [ddi:keacquirespinlockfordpc]; WRK raises only when a threaded DPC is
// active, else it is KeAcquireSpinLockAtDpcLevel returning DISPATCH_LEVEL
// [wrk-dpclock][wrk-ki]. kmlab follows WRK and runs no threaded DPCs: these
// never change the IRQL, and below DISPATCH_LEVEL they are a checked build's
// failed ASSERT (rules_spin_lock.hpp check_for_dpc_irql); the free flavour
// acquires at the caller's IRQL. The release ignores OldIrql.
KIRQL KeAcquireSpinLockForDpc(PKSPIN_LOCK SpinLock);
void KeReleaseSpinLockForDpc(PKSPIN_LOCK SpinLock, KIRQL OldIrql);

// ---- In-stack queued spin locks (an MCS queue; FIFO hand-off) ----
// LockHandle must stay where it is (the caller's stack) until the release
// [ddi:keacquireinstackqueuedspinlock]. IRQL <= DISPATCH_LEVEL; raises to
// DISPATCH_LEVEL and saves the IRQL found in LockHandle->OldIrql.
void KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle);
// Restores LockHandle->OldIrql [ddi:kereleaseinstackqueuedspinlock].
void KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE LockHandle);
// IRQL >= DISPATCH_LEVEL; the IRQL is not changed
// [ddi:keacquireinstackqueuedspinlockatdpclevel].
void KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle);
void KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE LockHandle);
// As KeAcquireSpinLockForDpc, the IRQL saved in LockHandle->OldIrql
// [ddi:keacquireinstackqueuedspinlockfordpc].
void KeAcquireInStackQueuedSpinLockForDpc(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle);
void KeReleaseInStackQueuedSpinLockForDpc(PKLOCK_QUEUE_HANDLE LockHandle);

}  // namespace kmlab::nt
