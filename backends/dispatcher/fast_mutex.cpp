// FAST_MUTEX and KGUARDED_MUTEX over the lock-bit Count encoding
// (SEMANTICS.md 2.3(b)), following ReactOS's KiAcquireGuardedMutex /
// KeReleaseGuardedMutex [ros-kex][ros-wait][ros-gmutex]. Both types share the
// algorithm; they differ in what surrounds it: a fast mutex raises the IRQL to
// APC_LEVEL and saves OldIrql, a guarded mutex enters a guarded region.
#include "backends/dispatcher/core.hpp"
#include "backends/dispatcher/dispatcher.hpp"

namespace kmlab::nt {
using kernel::current_thread;

namespace {

// Interlocked access to the fields other threads touch concurrently.
std::atomic_ref<LONG> count_of(LONG& count) {
    return std::atomic_ref<LONG>(count);
}
PKTHREAD load_owner(PKTHREAD& owner) {
    return std::atomic_ref<PKTHREAD>(owner).load(std::memory_order_relaxed);
}
void store_owner(PKTHREAD& owner, PKTHREAD t) {
    std::atomic_ref<PKTHREAD>(owner).store(t, std::memory_order_relaxed);
}

// Fast path: InterlockedBitTestAndReset(&Count, 0). Acquire ordering makes the
// previous owner's critical section visible.
bool try_lock_bit(LONG& count) {
    return (count_of(count).fetch_and(~FM_LOCK_BIT, std::memory_order_acquire) & FM_LOCK_BIT) != 0;
}

// Slow path. A waiter adds FM_LOCK_WAITER_INC and blocks on the gate; the
// releaser that wakes it converts one waiter into the WOKEN mark (WOKEN - INC),
// so at most one woken waiter races newcomers for the lock at a time. The
// woken waiter clears LOCK and WOKEN together when it wins, or turns WOKEN back
// into a waiter (+WOKEN, since 2 * WOKEN == INC) when it loses and blocks again.
void lock_slow(LONG& count, ULONG& contention, PVOID gate) {
    std::atomic_ref<ULONG>(contention).fetch_add(1, std::memory_order_relaxed);
    auto c = count_of(count);
    LONG bits_to_remove = FM_LOCK_BIT;
    LONG bits_to_add = FM_LOCK_WAITER_INC;
    LONG old = c.load(std::memory_order_relaxed);
    for (;;) {
        if (old & FM_LOCK_BIT) {
            if (c.compare_exchange_weak(old, old ^ bits_to_remove, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
                return;
            }
        } else if (c.compare_exchange_weak(old, old + bits_to_add, std::memory_order_relaxed,
                                           std::memory_order_relaxed)) {
            dispatcher::wait_internal(gate);
            bits_to_remove = FM_LOCK_BIT | FM_LOCK_WAITER_WOKEN;
            bits_to_add = FM_LOCK_WAITER_WOKEN;
            old = c.load(std::memory_order_relaxed);
        }
    }
}

// Release: set the lock bit (release ordering publishes the critical section);
// if there are waiters and none is already woken, wake exactly one.
void unlock_bit(LONG& count, PVOID gate) {
    auto c = count_of(count);
    LONG old = c.fetch_add(FM_LOCK_BIT, std::memory_order_release);
    if (old != 0 && (old & FM_LOCK_WAITER_WOKEN) == 0) {
        old += FM_LOCK_BIT;
        const LONG desired = old + FM_LOCK_WAITER_WOKEN - FM_LOCK_WAITER_INC;
        if (c.compare_exchange_strong(old, desired, std::memory_order_relaxed,
                                      std::memory_order_relaxed)) {
            KeSetEvent(static_cast<PRKEVENT>(gate), IO_NO_INCREMENT, FALSE);
        }
    }
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
    if (!try_lock_bit(FastMutex->Count))
        lock_slow(FastMutex->Count, FastMutex->Contention, &FastMutex->Event);
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
    LONG expected = FM_LOCK_BIT;
    if (!count_of(FastMutex->Count)
             .compare_exchange_strong(expected, 0, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
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
    unlock_bit(FastMutex->Count, &FastMutex->Event);
    kernel::set_irql(t, old_irql);
}

void ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    check_unsafe_irql(t, bugcheck::VERIFIER_UNSAFE_ACQUIRE_IRQL, FastMutex);
    check_not_owner(FastMutex->Owner, t, FastMutex);
    if (!try_lock_bit(FastMutex->Count))
        lock_slow(FastMutex->Count, FastMutex->Contention, &FastMutex->Event);
    store_owner(FastMutex->Owner, t);
}

void ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    PKTHREAD t = current_thread();
    check_unsafe_irql(t, bugcheck::VERIFIER_UNSAFE_RELEASE_IRQL, FastMutex);
    check_owner(FastMutex->Owner, t, FastMutex);
    store_owner(FastMutex->Owner, nullptr);
    unlock_bit(FastMutex->Count, &FastMutex->Event);
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
    if (!try_lock_bit(Mutex->Count)) lock_slow(Mutex->Count, Mutex->Contention, &Mutex->Gate);
    store_owner(Mutex->Owner, t);
}

BOOLEAN KeTryToAcquireGuardedMutex(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    kernel::require_irql_at_most(APC_LEVEL, Mutex);
    KeEnterGuardedRegion();
    if (!try_lock_bit(Mutex->Count)) {
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
    unlock_bit(Mutex->Count, &Mutex->Gate);
    KeLeaveGuardedRegion();
}

void KeAcquireGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    check_unsafe_irql(t, bugcheck::VERIFIER_UNSAFE_ACQUIRE_IRQL, Mutex);
    check_not_owner(Mutex->Owner, t, Mutex);
    if (!try_lock_bit(Mutex->Count)) lock_slow(Mutex->Count, Mutex->Contention, &Mutex->Gate);
    store_owner(Mutex->Owner, t);
}

void KeReleaseGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex) {
    PKTHREAD t = current_thread();
    check_unsafe_irql(t, bugcheck::VERIFIER_UNSAFE_RELEASE_IRQL, Mutex);
    check_owner(Mutex->Owner, t, Mutex);
    store_owner(Mutex->Owner, nullptr);
    unlock_bit(Mutex->Count, &Mutex->Gate);
}

}  // namespace kmlab::nt
