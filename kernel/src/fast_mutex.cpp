// FAST_MUTEX and KGUARDED_MUTEX over the lock-bit algorithm of
// kmlab/kernel/lock_bit.hpp, with the mutex's KEVENT / KGATE as the gate. The two
// differ only in what surrounds the algorithm: a fast mutex raises the IRQL
// to APC_LEVEL and saves OldIrql, a guarded mutex enters a guarded region.
#include <kmlab/kernel/dispatcher.hpp>
#include <kmlab/kernel/lock_bit.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/rules.hpp>
#include "dispatcher_core.hpp"

namespace kmlab::dispatcher {

void ObjectGate::wait() {
    wait_internal(object);
}
void ObjectGate::signal() {
    signal_internal(object);
}

}  // namespace kmlab::dispatcher

namespace kmlab::nt {
using kernel::current_thread;

namespace {

using dispatcher::load_owner;
using dispatcher::store_owner;
using kernel::enforce;

// Two acquires on purpose: `lock` for the safe routines at or below
// APC_LEVEL, whose fast path is the lock bit alone, and `lock_unsafe`, which
// checks the IRQL before blocking. Folding the check into one (with the
// guarded acquire's region left on a throw) measured ExAcquireFastMutex 53 ->
// 54 and KeAcquireGuardedMutex 51 -> 54 instructions a pair.
void lock(LONG& count, ULONG& contention, PVOID gate) {
    dispatcher::ObjectGate g{gate};
    lock_bit::acquire(count, contention, g);
}
// The Unsafe acquires check no IRQL in the free flavour (rules.hpp,
// check_unsafe_acquire), so they may arrive here above APC_LEVEL. Uncontended
// that is what a free build does; contended, the thread would have to block
// at that IRQL, which no flavour lets a wait do: bug check as
// KeWaitForSingleObject there (0xC4/0x3B, timeout pointer 0 for an infinite
// wait), before the mutex is changed.
void lock_unsafe(PKTHREAD t, LONG& count, ULONG& contention, PVOID gate) {
    if (lock_bit::try_acquire(count)) return;
    enforce(kernel::check_wait_irql(t->Irql, APC_LEVEL, gate));
    dispatcher::ObjectGate g{gate};
    lock_bit::acquire_slow(count, contention, g);
}
void unlock(LONG& count, PVOID gate) {
    dispatcher::ObjectGate g{gate};
    lock_bit::release(count, g);
}

// The safe routines' IRQL rules are checked_only (rules.hpp): in the free
// flavour a routine called above APC_LEVEL goes on as a free build does. That
// path leaves the fast path here, through a call it does not come back from
// (a returning check on the fast path cost ExAcquireFastMutex 6 instructions
// a pair): `body` is the routine's own, inlined into both.
template <class Body>
[[gnu::cold, gnu::noinline]] auto above_ceiling(const kernel::Violation& v, Body body) {
    kernel::bug_check_or_raise_in_flavor(v);  // returns in the free flavour only
    return body();
}

[[gnu::always_inline]] inline void acquire_fast_mutex(PKTHREAD t, PFAST_MUTEX m) {
    const KIRQL old_irql = t->Irql;
    enforce(kernel::check_not_recursive(t, m, load_owner(m->Owner)));
    // KfRaiseIrql(APC_LEVEL): from above APC_LEVEL (the free flavour) this
    // lowers, as a free HAL lets it [kmt-ExFastMutex].
    kernel::set_irql(t, APC_LEVEL);
    lock(m->Count, m->Contention, &m->Event);
    store_owner(m->Owner, t);
    m->OldIrql = old_irql;
}

[[gnu::always_inline]] inline BOOLEAN try_acquire_fast_mutex(PKTHREAD t, PFAST_MUTEX m) {
    const KIRQL old_irql = t->Irql;
    kernel::set_irql(t, APC_LEVEL);
    // [ros-exh]: InterlockedCompareExchange(&Count, 0, 1); the owner gets FALSE.
    if (!lock_bit::try_acquire_uncontended(m->Count)) {
        kernel::set_irql(t, old_irql);
        return FALSE;
    }
    store_owner(m->Owner, t);
    m->OldIrql = old_irql;
    return TRUE;
}

[[gnu::always_inline]] inline void release_fast_mutex(PKTHREAD t, PFAST_MUTEX m) {
    enforce(kernel::check_owner(t, m, load_owner(m->Owner)));
    // OldIrql belongs to this owner: read it before the next owner may write it.
    const auto old_irql = static_cast<KIRQL>(m->OldIrql);
    store_owner(m->Owner, nullptr);
    unlock(m->Count, &m->Event);
    kernel::set_irql(t, old_irql);
}

[[gnu::always_inline]] inline void acquire_guarded_mutex(PKTHREAD t, PKGUARDED_MUTEX m) {
    enforce(kernel::check_not_recursive(t, m, load_owner(m->Owner)));
    kernel::enter_guarded_region(t);
    lock(m->Count, m->Contention, &m->Gate);
    store_owner(m->Owner, t);
}

// The free flavour's KeAcquireGuardedMutex above APC_LEVEL: the IRQL stays
// where it is, so a contended acquire would block there; it bug checks first
// (lock_unsafe), with the guarded region left as it was.
void acquire_guarded_mutex_above_apc_level(PKTHREAD t, PKGUARDED_MUTEX m) {
    enforce(kernel::check_not_recursive(t, m, load_owner(m->Owner)));
    kernel::enter_guarded_region(t);
    try {
        lock_unsafe(t, m->Count, m->Contention, &m->Gate);
    } catch (...) {
        kernel::leave_guarded_region(t);
        throw;
    }
    store_owner(m->Owner, t);
}

[[gnu::always_inline]] inline BOOLEAN try_acquire_guarded_mutex(PKTHREAD t, PKGUARDED_MUTEX m) {
    kernel::enter_guarded_region(t);
    if (!lock_bit::try_acquire(m->Count)) {
        kernel::leave_guarded_region(t);
        return FALSE;
    }
    store_owner(m->Owner, t);
    return TRUE;
}

[[gnu::always_inline]] inline void release_guarded_mutex(PKTHREAD t, PKGUARDED_MUTEX m) {
    enforce(kernel::check_owner(t, m, load_owner(m->Owner)));
    store_owner(m->Owner, nullptr);
    unlock(m->Count, &m->Gate);
    kernel::leave_guarded_region(t);
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
    if (const auto v = kernel::check_fast_mutex_acquire(t, FastMutex)) [[unlikely]]
        return above_ceiling(*v, [=] { acquire_fast_mutex(t, FastMutex); });
    acquire_fast_mutex(t, FastMutex);
}

BOOLEAN ExTryToAcquireFastMutex(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    if (const auto v = kernel::check_fast_mutex_acquire(t, FastMutex)) [[unlikely]]
        return above_ceiling(*v, [=] { return try_acquire_fast_mutex(t, FastMutex); });
    return try_acquire_fast_mutex(t, FastMutex);
}

void ExReleaseFastMutex(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    if (const auto v = kernel::check_fast_mutex_release(t, FastMutex)) [[unlikely]]
        return above_ceiling(*v, [=] { release_fast_mutex(t, FastMutex); });
    release_fast_mutex(t, FastMutex);
}

void ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    kernel::enforce_in_flavor(kernel::check_unsafe_acquire(t, FastMutex));
    enforce(kernel::check_not_recursive(t, FastMutex, load_owner(FastMutex->Owner)));
    lock_unsafe(t, FastMutex->Count, FastMutex->Contention, &FastMutex->Event);
    store_owner(FastMutex->Owner, t);
}

void ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    kernel::enforce_in_flavor(kernel::check_unsafe_release(t, FastMutex));
    enforce(kernel::check_owner(t, FastMutex, load_owner(FastMutex->Owner)));
    store_owner(FastMutex->Owner, nullptr);
    unlock(FastMutex->Count, &FastMutex->Event);
}

void ExEnterCriticalRegionAndAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    KeEnterCriticalRegion();
    try {
        ExAcquireFastMutexUnsafe(FastMutex);
    } catch (...) {
        ++current_thread()->KernelApcDisable;  // the region entered above, left
        throw;
    }
}

void ExReleaseFastMutexUnsafeAndLeaveCriticalRegion(PFAST_MUTEX FastMutex) {
    ExReleaseFastMutexUnsafe(FastMutex);
    KeLeaveCriticalRegion();
}

// ---- KGUARDED_MUTEX ----

void KeInitializeGuardedMutex(PKGUARDED_MUTEX Mutex) {
    // Documented for IRQL <= APC_LEVEL [ddi:keinitializeguardedmutex]; Windows
    // initializes at any IRQL [kmt-KeGuardedMutex]: the free flavour follows it.
    kernel::require_irql_documented(APC_LEVEL, HIGH_LEVEL, Mutex);
    Mutex->Count = GM_LOCK_BIT;
    Mutex->Owner = nullptr;
    Mutex->Contention = 0;
    // The gate behaves as a synchronization event (one waiter per signal).
    dispatcher::init_header(&Mutex->Gate.Header, GateObject, sizeof(KGATE), 0);
    // KernelApcDisable / SpecialApcDisable are not touched [kmt-KeGuardedMutex].
}

void KeAcquireGuardedMutex(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    if (const auto v = kernel::check_guarded_mutex_irql(t, Mutex)) [[unlikely]]
        return above_ceiling(*v, [=] { acquire_guarded_mutex_above_apc_level(t, Mutex); });
    acquire_guarded_mutex(t, Mutex);
}

BOOLEAN KeTryToAcquireGuardedMutex(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    if (const auto v = kernel::check_guarded_mutex_irql(t, Mutex)) [[unlikely]]
        return above_ceiling(*v, [=] { return try_acquire_guarded_mutex(t, Mutex); });
    return try_acquire_guarded_mutex(t, Mutex);
}

void KeReleaseGuardedMutex(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    if (const auto v = kernel::check_guarded_mutex_irql(t, Mutex)) [[unlikely]]
        return above_ceiling(*v, [=] { release_guarded_mutex(t, Mutex); });
    release_guarded_mutex(t, Mutex);
}

void KeAcquireGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    kernel::enforce_in_flavor(kernel::check_unsafe_acquire(t, Mutex));
    enforce(kernel::check_not_recursive(t, Mutex, load_owner(Mutex->Owner)));
    lock_unsafe(t, Mutex->Count, Mutex->Contention, &Mutex->Gate);
    store_owner(Mutex->Owner, t);
}

void KeReleaseGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    kernel::enforce_in_flavor(kernel::check_unsafe_release(t, Mutex));
    enforce(kernel::check_owner(t, Mutex, load_owner(Mutex->Owner)));
    store_owner(Mutex->Owner, nullptr);
    unlock(Mutex->Count, &Mutex->Gate);
}

}  // namespace kmlab::nt
