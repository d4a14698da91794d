// EX_SPIN_LOCK over the ex_spin algorithm of kmlab/kernel/rw_lock_algorithm.hpp.
// The raising forms raise to DISPATCH_LEVEL and return the IRQL they found,
// as KeAcquireSpinLockRaiseToDpc does; the releases lower to the IRQL given.
// The rules, with their sources and flavours: kernel/rules_rw_lock.hpp.
#include <kmlab/kernel/ex_spin_lock.hpp>
#include <kmlab/kernel/rules_rw_lock.hpp>
#include <kmlab/kernel/rw_lock_algorithm.hpp>
#include <kmlab/kernel/thread.hpp>

namespace kmlab::nt {

namespace {

namespace ex_spin = rw_lock::ex_spin;
using kernel::current_thread;
using kernel::enforce_in_flavor;

LONG word(PEX_SPIN_LOCK lock) noexcept {
    return std::atomic_ref<LONG>(*lock).load(std::memory_order_relaxed);
}

// KfRaiseIrql(DISPATCH_LEVEL): from above (the free flavour gets here) it
// lowers, as a free HAL lets it.
KIRQL raise(PKTHREAD t) {
    const KIRQL old = t->Irql;
    enforce_in_flavor(kernel::check_ex_spin_raise(t));
    kernel::set_irql(t, DISPATCH_LEVEL);
    return old;
}

// KeLowerIrql's rule, checked before the lock changes, so that a refused
// release leaves the caller holding it (the free flavour lowers to whatever
// it is given, as a free HAL does).
void check_lower(PKTHREAD t, KIRQL old_irql) {
    enforce_in_flavor(kernel::check_ex_spin_lower(t, old_irql));
}

void release_check(PKTHREAD, PEX_SPIN_LOCK lock, bool exclusive) {
    enforce_in_flavor(kernel::check_ex_spin_held(word(lock), exclusive, lock));
}

}  // namespace

KIRQL ExAcquireSpinLockShared(PEX_SPIN_LOCK SpinLock) {
    const KIRQL old = raise(current_thread());
    ex_spin::acquire_shared(*SpinLock);
    return old;
}
KIRQL ExAcquireSpinLockExclusive(PEX_SPIN_LOCK SpinLock) {
    const KIRQL old = raise(current_thread());
    ex_spin::acquire_exclusive(*SpinLock);
    return old;
}
void ExReleaseSpinLockShared(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql) {
    PKTHREAD t = current_thread();
    check_lower(t, OldIrql);
    release_check(t, SpinLock, false);
    ex_spin::release_shared(*SpinLock);
    kernel::set_irql(t, OldIrql);
}
void ExReleaseSpinLockExclusive(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql) {
    PKTHREAD t = current_thread();
    check_lower(t, OldIrql);
    release_check(t, SpinLock, true);
    ex_spin::release_exclusive(*SpinLock);
    kernel::set_irql(t, OldIrql);
}

void ExAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(current_thread(), SpinLock));
    ex_spin::acquire_shared(*SpinLock);
}
void ExAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(current_thread(), SpinLock));
    ex_spin::acquire_exclusive(*SpinLock);
}
void ExReleaseSpinLockSharedFromDpcLevel(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(t, SpinLock));
    release_check(t, SpinLock, false);
    ex_spin::release_shared(*SpinLock);
}
void ExReleaseSpinLockExclusiveFromDpcLevel(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(t, SpinLock));
    release_check(t, SpinLock, true);
    ex_spin::release_exclusive(*SpinLock);
}

LOGICAL ExTryAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(current_thread(), SpinLock));
    return ex_spin::try_acquire_shared(*SpinLock) ? TRUE : FALSE;
}
LOGICAL ExTryAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(current_thread(), SpinLock));
    return ex_spin::try_acquire_exclusive(*SpinLock) ? TRUE : FALSE;
}
LOGICAL ExTryConvertSharedSpinLockExclusive(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(t, SpinLock));
    release_check(t, SpinLock, false);
    return ex_spin::try_convert_shared_to_exclusive(*SpinLock) ? TRUE : FALSE;
}

}  // namespace kmlab::nt
