// FAST_MUTEX and KGUARDED_MUTEX over the lock-bit algorithm of
// kmlab/kernel/lock_bit.hpp, with the mutex's KEVENT / KGATE as the gate. The two
// differ only in what surrounds the algorithm: a fast mutex raises the IRQL
// to APC_LEVEL and saves OldIrql, a guarded mutex enters a guarded region.
#include <kmlab/kernel/dispatcher.hpp>
#include <kmlab/kernel/lock_bit.hpp>
#include <kmlab/kernel/routines.hpp>
#include "dispatcher_core.hpp"

namespace kmlab::dispatcher {

void ObjectGate::wait() {
    wait_internal(object);
}
void ObjectGate::signal() {
    nt::KeSetEvent(static_cast<PRKEVENT>(object), IO_NO_INCREMENT, FALSE);
}

}  // namespace kmlab::dispatcher

namespace kmlab::nt {
using kernel::current_thread;

namespace {

using dispatcher::load_owner;
using dispatcher::store_owner;

void lock(LONG& count, ULONG& contention, PVOID gate) {
    dispatcher::ObjectGate g{gate};
    lock_bit::acquire(count, contention, g);
}
void unlock(LONG& count, PVOID gate) {
    dispatcher::ObjectGate g{gate};
    lock_bit::release(count, g);
}

[[noreturn]] void verifier(ULONG_PTR subcode, KIRQL irql, const void* mutex) {
    bug_check(bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, subcode, irql,
              reinterpret_cast<ULONG_PTR>(mutex), 0);
}

void check_not_owner(PKTHREAD& owner, PKTHREAD t, const void* mutex) {
    if (load_owner(owner) == t) {
        bug_check(bugcheck::MUTEX_ALREADY_OWNED, reinterpret_cast<ULONG_PTR>(mutex),
                  reinterpret_cast<ULONG_PTR>(t));
    }
}

void check_owner(PKTHREAD& owner, PKTHREAD t, const void* mutex) {
    PKTHREAD o = load_owner(owner);
    if (o != t) {
        bug_check(bugcheck::THREAD_NOT_MUTEX_OWNER, reinterpret_cast<ULONG_PTR>(mutex),
                  reinterpret_cast<ULONG_PTR>(o), reinterpret_cast<ULONG_PTR>(t));
    }
}

// Unsafe variants need APC_LEVEL, or a lower IRQL with APCs disabled by a
// critical or guarded region [ddi:exacquirefastmutexunsafe].
void check_unsafe_irql(PKTHREAD t, ULONG_PTR subcode, const void* mutex) {
    if (t->Irql > APC_LEVEL || (t->Irql < APC_LEVEL && t->CombinedApcDisable == 0))
        verifier(subcode, t->Irql, mutex);
}

}  // namespace

// ---- FAST_MUTEX ----

void ExInitializeFastMutex(PFAST_MUTEX FastMutex) {
    kernel::require_irql_at_most(DISPATCH_LEVEL, FastMutex);
    FastMutex->Count = FM_LOCK_BIT;
    FastMutex->Owner = nullptr;
    FastMutex->Contention = 0;
    KeInitializeEvent(&FastMutex->Event, SynchronizationEvent, FALSE);
    // OldIrql is deliberately left alone, as the WDK inline does [kmt-ExFastMutex].
}

void ExAcquireFastMutex(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    const KIRQL old_irql = t->Irql;
    if (old_irql > APC_LEVEL)
        verifier(bugcheck::VERIFIER_FAST_MUTEX_ACQUIRE_IRQL, old_irql, FastMutex);
    check_not_owner(FastMutex->Owner, t, FastMutex);
    kernel::set_irql(t, APC_LEVEL);
    lock(FastMutex->Count, FastMutex->Contention, &FastMutex->Event);
    store_owner(FastMutex->Owner, t);
    FastMutex->OldIrql = old_irql;
}

BOOLEAN ExTryToAcquireFastMutex(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    const KIRQL old_irql = t->Irql;
    if (old_irql > APC_LEVEL)
        verifier(bugcheck::VERIFIER_FAST_MUTEX_ACQUIRE_IRQL, old_irql, FastMutex);
    kernel::set_irql(t, APC_LEVEL);
    // [ros-exh]: InterlockedCompareExchange(&Count, 0, 1); the owner gets FALSE.
    if (!lock_bit::try_acquire_uncontended(FastMutex->Count)) {
        kernel::set_irql(t, old_irql);
        return FALSE;
    }
    store_owner(FastMutex->Owner, t);
    FastMutex->OldIrql = old_irql;
    return TRUE;
}

void ExReleaseFastMutex(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    if (t->Irql != APC_LEVEL)
        verifier(bugcheck::VERIFIER_FAST_MUTEX_RELEASE_IRQL, t->Irql, FastMutex);
    check_owner(FastMutex->Owner, t, FastMutex);
    // OldIrql belongs to this owner: read it before the next owner may write it.
    const auto old_irql = static_cast<KIRQL>(FastMutex->OldIrql);
    store_owner(FastMutex->Owner, nullptr);
    unlock(FastMutex->Count, &FastMutex->Event);
    kernel::set_irql(t, old_irql);
}

void ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    check_unsafe_irql(t, bugcheck::VERIFIER_UNSAFE_ACQUIRE_IRQL, FastMutex);
    check_not_owner(FastMutex->Owner, t, FastMutex);
    lock(FastMutex->Count, FastMutex->Contention, &FastMutex->Event);
    store_owner(FastMutex->Owner, t);
}

void ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    check_unsafe_irql(t, bugcheck::VERIFIER_UNSAFE_RELEASE_IRQL, FastMutex);
    check_owner(FastMutex->Owner, t, FastMutex);
    store_owner(FastMutex->Owner, nullptr);
    unlock(FastMutex->Count, &FastMutex->Event);
}

// ---- KGUARDED_MUTEX ----

void KeInitializeGuardedMutex(PKGUARDED_MUTEX Mutex) {
    kernel::require_irql_at_most(APC_LEVEL, Mutex);
    Mutex->Count = GM_LOCK_BIT;
    Mutex->Owner = nullptr;
    Mutex->Contention = 0;
    // The gate behaves as a synchronization event (one waiter per signal).
    dispatcher::init_header(&Mutex->Gate.Header, GateObject, sizeof(KGATE), 0);
    // KernelApcDisable / SpecialApcDisable are not touched [kmt-KeGuardedMutex].
}

void KeAcquireGuardedMutex(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    kernel::require_irql_at_most(APC_LEVEL, Mutex);
    check_not_owner(Mutex->Owner, t, Mutex);
    KeEnterGuardedRegion();
    lock(Mutex->Count, Mutex->Contention, &Mutex->Gate);
    store_owner(Mutex->Owner, t);
}

BOOLEAN KeTryToAcquireGuardedMutex(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    kernel::require_irql_at_most(APC_LEVEL, Mutex);
    KeEnterGuardedRegion();
    if (!lock_bit::try_acquire(Mutex->Count)) {
        KeLeaveGuardedRegion();
        return FALSE;
    }
    store_owner(Mutex->Owner, t);
    return TRUE;
}

void KeReleaseGuardedMutex(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    kernel::require_irql_at_most(APC_LEVEL, Mutex);
    check_owner(Mutex->Owner, t, Mutex);
    store_owner(Mutex->Owner, nullptr);
    unlock(Mutex->Count, &Mutex->Gate);
    KeLeaveGuardedRegion();
}

void KeAcquireGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    check_unsafe_irql(t, bugcheck::VERIFIER_UNSAFE_ACQUIRE_IRQL, Mutex);
    check_not_owner(Mutex->Owner, t, Mutex);
    lock(Mutex->Count, Mutex->Contention, &Mutex->Gate);
    store_owner(Mutex->Owner, t);
}

void KeReleaseGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    check_unsafe_irql(t, bugcheck::VERIFIER_UNSAFE_RELEASE_IRQL, Mutex);
    check_owner(Mutex->Owner, t, Mutex);
    store_owner(Mutex->Owner, nullptr);
    unlock(Mutex->Count, &Mutex->Gate);
}

}  // namespace kmlab::nt
