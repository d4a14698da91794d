// EX_SPIN_LOCK over the ex_spin algorithm of kmlab/kernel/rw_lock_algorithm.hpp.
// The raising forms raise to DISPATCH_LEVEL and return the IRQL they found,
// as KeAcquireSpinLockRaiseToDpc does; the releases lower to the IRQL given.
// The rules, with their sources and flavours: kernel/rules_rw_lock.hpp.
#include <kmlab/kernel/ex_spin_lock.hpp>
#include <kmlab/kernel/rules_rw_lock.hpp>
#include <kmlab/kernel/rw_lock_algorithm.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/kernel/verifier.hpp>

namespace kmlab::nt {

namespace {

namespace ex_spin = rw_lock::ex_spin;
// The platform of the lock word and its spins. In the explorer's copy
// (explore/src/ex_spin_lock_seam.cpp) it is kernel_seam::Platform, so under
// the model every operation on the word is a scheduling point over model
// memory and every spin blocks on what it read (lock_seam.hpp); production's
// is Native, and its code is what it was. (The routines' own checks read the
// word natively: only a holder reads it there, after the read-modify-write
// that gave it the lock, so it sees the model's memory as it is.)
#ifdef KMLAB_DISPATCHER_SEAM
using P = explore::kernel_seam::Platform;
#else
using P = platform::Native;
#endif
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

namespace verifier = kernel::verifier;
constexpr auto kExSpin = verifier::LockType::ex_spin_lock;

// The verifier's hooks (kernel/verifier.hpp). EX_SPIN_LOCK has no
// initialization routine: each lock is a class of its own unless named.
// The raising acquires compare the gate word (zero cost); the other
// routines' IRQL compares do not fit it (a release compares the IRQL it
// lowers to with the current one; the AtDpcLevel forms test a floor), so they
// test the gate byte themselves: one compare and branch more per call.
[[gnu::cold, gnu::noinline]] KIRQL acquire_hooked(PKTHREAD t, PEX_SPIN_LOCK lock, bool exclusive,
                                                  bool raise_irql) {
    KIRQL old = t->Irql;
    if (raise_irql) {
        old = raise(t);
    } else {
        enforce_in_flavor(kernel::check_ex_spin_at_dpc(t, lock));
    }
    verifier::on_acquire(t, lock, kExSpin);
    if (exclusive)
        ex_spin::acquire_exclusive<P>(*lock);
    else
        ex_spin::acquire_shared<P>(*lock);
    verifier::on_acquired(t, lock, kExSpin, !exclusive);
    return old;
}
[[gnu::cold, gnu::noinline]] void release_hooked(PKTHREAD t, PEX_SPIN_LOCK lock, bool exclusive,
                                                 bool lower, KIRQL old_irql) {
    if (lower) {
        check_lower(t, old_irql);
    } else {
        enforce_in_flavor(kernel::check_ex_spin_at_dpc(t, lock));
    }
    release_check(t, lock, exclusive);
    verifier::on_release(t, lock, kExSpin);
    if (exclusive)
        ex_spin::release_exclusive<P>(*lock);
    else
        ex_spin::release_shared<P>(*lock);
    if (lower) kernel::set_irql(t, old_irql);
}

}  // namespace

KIRQL ExAcquireSpinLockShared(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    // The raise's rule (IRQL <= DISPATCH_LEVEL) through the gate word.
    if (t->IrqlGate > DISPATCH_LEVEL) [[unlikely]]
        return acquire_hooked(t, SpinLock, false, true);
    const KIRQL old = t->Irql;
    kernel::set_irql(t, DISPATCH_LEVEL);
    ex_spin::acquire_shared<P>(*SpinLock);
    return old;
}
KIRQL ExAcquireSpinLockExclusive(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    // The raise's rule (IRQL <= DISPATCH_LEVEL) through the gate word.
    if (t->IrqlGate > DISPATCH_LEVEL) [[unlikely]]
        return acquire_hooked(t, SpinLock, true, true);
    const KIRQL old = t->Irql;
    kernel::set_irql(t, DISPATCH_LEVEL);
    ex_spin::acquire_exclusive<P>(*SpinLock);
    return old;
}
void ExReleaseSpinLockShared(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql) {
    PKTHREAD t = current_thread();
    if (t->VerifierGate != 0) [[unlikely]]
        return release_hooked(t, SpinLock, false, true, OldIrql);
    check_lower(t, OldIrql);
    release_check(t, SpinLock, false);
    ex_spin::release_shared<P>(*SpinLock);
    kernel::set_irql(t, OldIrql);
}
void ExReleaseSpinLockExclusive(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql) {
    PKTHREAD t = current_thread();
    if (t->VerifierGate != 0) [[unlikely]]
        return release_hooked(t, SpinLock, true, true, OldIrql);
    check_lower(t, OldIrql);
    release_check(t, SpinLock, true);
    ex_spin::release_exclusive<P>(*SpinLock);
    kernel::set_irql(t, OldIrql);
}

void ExAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (t->VerifierGate != 0) [[unlikely]] {
        acquire_hooked(t, SpinLock, false, false);
        return;
    }
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(t, SpinLock));
    ex_spin::acquire_shared<P>(*SpinLock);
}
void ExAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (t->VerifierGate != 0) [[unlikely]] {
        acquire_hooked(t, SpinLock, true, false);
        return;
    }
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(t, SpinLock));
    ex_spin::acquire_exclusive<P>(*SpinLock);
}
void ExReleaseSpinLockSharedFromDpcLevel(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (t->VerifierGate != 0) [[unlikely]]
        return release_hooked(t, SpinLock, false, false, 0);
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(t, SpinLock));
    release_check(t, SpinLock, false);
    ex_spin::release_shared<P>(*SpinLock);
}
void ExReleaseSpinLockExclusiveFromDpcLevel(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (t->VerifierGate != 0) [[unlikely]]
        return release_hooked(t, SpinLock, true, false, 0);
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(t, SpinLock));
    release_check(t, SpinLock, true);
    ex_spin::release_exclusive<P>(*SpinLock);
}

// The tries: the IRQL floor and the gate in one compare (an IRQL below
// DISPATCH_LEVEL, or the verifier on: the word is then above 0xFF), as
// KeAcquireSpinLockAtDpcLevel does; then the rule, the try, and the hold
// recorded (a try never waits: no cycle check, no edge into it).
namespace {
[[gnu::always_inline]] inline bool below_dpc_or_gate(PKTHREAD t) noexcept {
    return static_cast<USHORT>(t->IrqlGate - DISPATCH_LEVEL) > 0xFF - DISPATCH_LEVEL;
}
[[gnu::cold, gnu::noinline]] LOGICAL try_hooked(PKTHREAD t, PEX_SPIN_LOCK lock, bool exclusive) {
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(t, lock));
    if (!(exclusive ? ex_spin::try_acquire_exclusive<P>(*lock)
                    : ex_spin::try_acquire_shared<P>(*lock)))
        return FALSE;
    verifier::on_acquired(t, lock, kExSpin, !exclusive, true);
    return TRUE;
}
}  // namespace

LOGICAL ExTryAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (below_dpc_or_gate(t)) [[unlikely]]
        return try_hooked(t, SpinLock, false);
    return ex_spin::try_acquire_shared<P>(*SpinLock) ? TRUE : FALSE;
}
LOGICAL ExTryAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    if (below_dpc_or_gate(t)) [[unlikely]]
        return try_hooked(t, SpinLock, true);
    return ex_spin::try_acquire_exclusive<P>(*SpinLock) ? TRUE : FALSE;
}
LOGICAL ExTryConvertSharedSpinLockExclusive(PEX_SPIN_LOCK SpinLock) {
    PKTHREAD t = current_thread();
    enforce_in_flavor(kernel::check_ex_spin_at_dpc(t, SpinLock));
    release_check(t, SpinLock, false);
    return ex_spin::try_convert_shared_to_exclusive<P>(*SpinLock) ? TRUE : FALSE;
}

}  // namespace kmlab::nt
