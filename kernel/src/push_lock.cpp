// EX_PUSH_LOCK over the push algorithm of kmlab/kernel/rw_lock_algorithm.hpp,
// its sleepers parked on the production park (rw_lock::push::NativePark).
// The rules, with their sources and flavours: kernel/rules_rw_lock.hpp.
#include <kmlab/kernel/push_lock.hpp>
#include <kmlab/kernel/rules_rw_lock.hpp>
#include <kmlab/kernel/rw_lock_algorithm.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/kernel/verifier.hpp>

namespace kmlab::nt {

namespace {

namespace push = rw_lock::push;
using kernel::current_thread;
using kernel::enforce;
using kernel::enforce_in_flavor;

// The park, and the platform of the lock word. In the explorer's copy
// (explore/src/push_lock_seam.cpp) the park is kernel_seam::PushPark, whose
// platform is kernel_seam::Platform: under the model every operation on the
// word is a scheduling point over model memory, the spin before parking
// blocks on what it read, and a sleeper parks on a model futex
// (lock_seam.hpp); production's is NativePark, and its code is what it was.
#ifdef KMLAB_DISPATCHER_SEAM
using Park = explore::kernel_seam::PushPark;
#else
using Park = push::NativePark;
#endif
using P = push::platform_of<Park>;
Park g_park;

// The acquire's rules in the order the routines apply them: the IRQL, then
// the APC state; both checked only. Above APC_LEVEL (the free flavour gets
// here) an uncontended acquire goes on as a free build's would; a contended
// one would sleep at that IRQL, which every flavour bug checks as a wait
// (0xC4/0x3B) before the lock changes.
//
// The IRQL is compared through the gate word (kernel/verifier.hpp): true
// when the IRQL is above APC_LEVEL or the verifier is on, and then the
// caller's slow path applies both rules (all_acquire_rules).
[[gnu::always_inline]] inline bool acquire_rules(PKTHREAD t, PEX_PUSH_LOCK lock) {
    if (t->IrqlGate > APC_LEVEL) [[unlikely]]
        return true;
    enforce_in_flavor(kernel::check_push_lock_apcs(t, lock));
    return false;
}
void all_acquire_rules(PKTHREAD t, PEX_PUSH_LOCK lock) {
    enforce_in_flavor(kernel::check_push_lock_irql(t, lock));
    enforce_in_flavor(kernel::check_push_lock_apcs(t, lock));
}

void release_rules(PKTHREAD t, PEX_PUSH_LOCK lock, bool exclusive) {
    enforce_in_flavor(kernel::check_push_lock_irql(t, lock));
    enforce_in_flavor(kernel::check_push_lock_release(
        std::atomic_ref<ULONG_PTR>(*lock).load(std::memory_order_relaxed), exclusive, lock));
}

namespace verifier = kernel::verifier;
constexpr auto kPushLock = verifier::LockType::push_lock;

// Above APC_LEVEL (the free flavour): an uncontended acquire goes on; a
// contended one is the wait bug check. Out of line, so that the routines'
// common path stays the rules and one compare-exchange. With the verifier
// on, at or below APC_LEVEL: the acquire with its hooks.
[[gnu::noinline, gnu::cold]] void acquire_exclusive_above_apc(PKTHREAD t, PEX_PUSH_LOCK lock) {
    all_acquire_rules(t, lock);
    if (t->Irql <= APC_LEVEL) {
        verifier::on_acquire(t, lock, kPushLock);
        push::acquire_exclusive(*lock, g_park);
        verifier::on_acquired(t, lock, kPushLock);
        return;
    }
    if (push::try_acquire_exclusive<P>(*lock)) {
        verifier::on_acquired(t, lock, kPushLock, false, true);
        return;
    }
    enforce(kernel::check_wait_irql(t->Irql, APC_LEVEL, lock));
    push::acquire_exclusive(*lock, g_park);
}
[[gnu::noinline, gnu::cold]] void acquire_shared_above_apc(PKTHREAD t, PEX_PUSH_LOCK lock) {
    all_acquire_rules(t, lock);
    if (t->Irql <= APC_LEVEL) {
        verifier::on_acquire(t, lock, kPushLock);
        push::acquire_shared(*lock, g_park);
        verifier::on_acquired(t, lock, kPushLock, true);
        return;
    }
    if (push::try_acquire_shared<P>(*lock)) {
        verifier::on_acquired(t, lock, kPushLock, true, true);
        return;
    }
    enforce(kernel::check_wait_irql(t->Irql, APC_LEVEL, lock));
    push::acquire_shared(*lock, g_park);
}
[[gnu::noinline, gnu::cold]] BOOLEAN try_acquire_slow(PKTHREAD t, PEX_PUSH_LOCK lock,
                                                      bool exclusive) {
    all_acquire_rules(t, lock);
    const bool got =
        exclusive ? push::try_acquire_exclusive<P>(*lock) : push::try_acquire_shared<P>(*lock);
    if (got) verifier::on_acquired(t, lock, kPushLock, !exclusive, true);
    return got ? TRUE : FALSE;
}

inline void acquire_exclusive(PKTHREAD t, PEX_PUSH_LOCK lock) {
    if (acquire_rules(t, lock)) [[unlikely]]
        return acquire_exclusive_above_apc(t, lock);
    push::acquire_exclusive(*lock, g_park);
}

inline void acquire_shared(PKTHREAD t, PEX_PUSH_LOCK lock) {
    if (acquire_rules(t, lock)) [[unlikely]]
        return acquire_shared_above_apc(t, lock);
    push::acquire_shared(*lock, g_park);
}

[[gnu::noinline, gnu::cold]] void release_slow(PKTHREAD t, PEX_PUSH_LOCK lock, bool exclusive) {
    release_rules(t, lock, exclusive);
    verifier::on_release(t, lock, kPushLock);
    if (exclusive)
        push::release_exclusive(*lock, g_park);
    else
        push::release_shared(*lock, g_park);
}

void release(PKTHREAD t, PEX_PUSH_LOCK lock, bool exclusive) {
    if (t->IrqlGate > APC_LEVEL) [[unlikely]]
        return release_slow(t, lock, exclusive);
    release_rules(t, lock, exclusive);
    if (exclusive)
        push::release_exclusive(*lock, g_park);
    else
        push::release_shared(*lock, g_park);
}

}  // namespace

void ExInitializePushLock(PEX_PUSH_LOCK PushLock) {
    std::atomic_ref<ULONG_PTR>(*PushLock).store(0, std::memory_order_relaxed);
    if (PKTHREAD t = verifier::initializing_thread(); verifier::on(t)) [[unlikely]]
        verifier::on_initialize(t, PushLock, kPushLock, __builtin_return_address(0));
}

// Flags: EX_DEFAULT_PUSH_LOCK_FLAGS is the only value documented for
// drivers; others are ignored (decision, kmlab).
void ExAcquirePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG) {
    acquire_exclusive(current_thread(), PushLock);
}
void ExAcquirePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG) {
    acquire_shared(current_thread(), PushLock);
}
BOOLEAN ExTryAcquirePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG) {
    PKTHREAD t = current_thread();
    if (acquire_rules(t, PushLock)) [[unlikely]]
        return try_acquire_slow(t, PushLock, true);
    return push::try_acquire_exclusive<P>(*PushLock) ? TRUE : FALSE;
}
BOOLEAN ExTryAcquirePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG) {
    PKTHREAD t = current_thread();
    if (acquire_rules(t, PushLock)) [[unlikely]]
        return try_acquire_slow(t, PushLock, false);
    return push::try_acquire_shared<P>(*PushLock) ? TRUE : FALSE;
}
void ExReleasePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG) {
    release(current_thread(), PushLock, true);
}
void ExReleasePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG) {
    release(current_thread(), PushLock, false);
}
// Either mode: a held lock with readers is held shared, else exclusive
// (ReactOS's ExReleasePushLock reads the Shared field the same way [ros-ex-h]).
void ExReleasePushLockEx(PEX_PUSH_LOCK PushLock, ULONG) {
    const ULONG_PTR v = std::atomic_ref<ULONG_PTR>(*PushLock).load(std::memory_order_relaxed);
    release(current_thread(), PushLock, !push::has_shares(v));
}

// ---- the filter manager's ----

void FltInitializePushLock(PEX_PUSH_LOCK PushLock) {
    ExInitializePushLock(PushLock);
}
// Nothing to free: the lock owns no memory (decision, kmlab).
void FltDeletePushLock(PEX_PUSH_LOCK) {}
// "FltAcquirePushLockExclusive disables normal kernel APC delivery"
// [ddi:fltacquirepushlockexclusive]: the region is entered first, so the
// APC rule holds by construction; the IRQL rule (<= APC_LEVEL) is
// KeEnterCriticalRegion's and the acquire's.
void FltAcquirePushLockExclusive(PEX_PUSH_LOCK PushLock) {
    KeEnterCriticalRegion();
    acquire_exclusive(current_thread(), PushLock);
}
void FltAcquirePushLockShared(PEX_PUSH_LOCK PushLock) {
    KeEnterCriticalRegion();
    acquire_shared(current_thread(), PushLock);
}
// Releases either mode, then re-enables normal kernel APCs
// [ddi:fltreleasepushlock].
void FltReleasePushLock(PEX_PUSH_LOCK PushLock) {
    ExReleasePushLockEx(PushLock, EX_DEFAULT_PUSH_LOCK_FLAGS);
    KeLeaveCriticalRegion();
}

}  // namespace kmlab::nt
