// ERESOURCE: the Ex routines over resource_algorithm.hpp, with the
// dispatcher's KSEMAPHORE (shared waiters) and synchronization KEVENT
// (exclusive waiters) as the kernel has them [ros-resource], and the rules of
// rules_resource.hpp.
#include <cstdint>
#include <mutex>

#include <kmlab/kernel/resource.hpp>
#include <kmlab/kernel/resource_algorithm.hpp>
#include <kmlab/kernel/rules_resource.hpp>
#include <kmlab/kernel/verifier.hpp>
#include "dispatcher_core.hpp"

namespace kmlab::resource {

// ---- DispatcherWaits (waits_resource.hpp) ----
// Pool-allocated as the kernel allocates them at the first contention
// [ros-resource]; freed by ExDeleteResourceLite / kmlab::Resource's destructor.
PKSEMAPHORE DispatcherWaits::make_semaphore() {
    auto* s = static_cast<PKSEMAPHORE>(ExAllocatePoolWithTag(NonPagedPool, sizeof(KSEMAPHORE), 0));
    if (s == nullptr) throw std::bad_alloc();
    KeInitializeSemaphore(s, 0, MAXLONG);
    return s;
}
PKEVENT DispatcherWaits::make_event() {
    auto* e = static_cast<PKEVENT>(ExAllocatePoolWithTag(NonPagedPool, sizeof(KEVENT), 0));
    if (e == nullptr) throw std::bad_alloc();
    KeInitializeEvent(e, SynchronizationEvent, FALSE);
    return e;
}
// A real dispatcher wait (FIFO wait list, wait blocks, parking), with no IRQL
// rule of its own: the acquire checked its IRQL before it registered.
void DispatcherWaits::wait(PVOID object) {
    dispatcher::wait_internal(object);
}
// KeReleaseSemaphore(n) with no priority increment, as ReactOS releases the
// shared waiters [ros-resource].
void DispatcherWaits::release_shared(PKSEMAPHORE semaphore, ULONG n) {
    KeReleaseSemaphore(semaphore, 0, static_cast<LONG>(n), FALSE);
}
// KeSetEvent on the synchronization event: one waiter (KeSetEventBoostPriority
// in the kernel; the lock-ownership boost is not emulated).
void DispatcherWaits::release_exclusive(PKEVENT event) {
    dispatcher::signal_internal(event);
}
void DispatcherWaits::discard(PKSEMAPHORE semaphore) noexcept {
    ExFreePoolWithTag(semaphore, 0);
}
void DispatcherWaits::discard(PKEVENT event) noexcept {
    ExFreePoolWithTag(event, 0);
}
void DispatcherWaits::free_objects(ERESOURCE* r) noexcept {
    ExFreePoolWithTag(r->SharedWaiters, 0);
    ExFreePoolWithTag(r->ExclusiveWaiters, 0);
    ExFreePoolWithTag(r->OwnerTable, 0);
    r->SharedWaiters = nullptr;
    r->ExclusiveWaiters = nullptr;
    r->OwnerTable = nullptr;
}

}  // namespace kmlab::resource

namespace kmlab::nt {

namespace {

using kernel::current_thread;
using kernel::enforce;
using kernel::enforce_in_flavor;
// The platform of the state word, the internal lock and their spins. In the
// explorer's copy (explore/src/resource_seam.cpp) it is kernel_seam::Platform,
// so under the model each is a scheduling point over model memory and a spin
// for the internal lock blocks on what it read (lock_seam.hpp); production's
// is Native. OwnerEntry (owner, recursion) and the waiter counters stay
// native in both: written by the owner, or under the internal lock.
#ifdef KMLAB_DISPATCHER_SEAM
using Algo = resource::Algorithm<explore::kernel_seam::Platform, resource::DispatcherWaits>;
#else
using Algo = resource::Algorithm<platform::Native, resource::DispatcherWaits>;
#endif

// ExpSystemResourcesList and its lock [ros-resource].
std::mutex g_resources_lock;
LIST_ENTRY g_resources = {&g_resources, &g_resources};

constexpr NTSTATUS kStatusAccessViolation = static_cast<NTSTATUS>(0xC0000005);

bool in_use(ERESOURCE* r) {
    return std::atomic_ref<ULONG>(r->ActiveState).load(std::memory_order_relaxed) != 0 ||
           r->NumberOfSharedWaiters != 0 || r->NumberOfExclusiveWaiters != 0;
}

// The checks every acquire makes, in this order: IRQL, region, then (for an
// exclusive request) the shared owner's deadlock.
void check_acquire(PKTHREAD t, PERESOURCE r, bool wait) {
    enforce_in_flavor(kernel::check_resource_acquire_irql(t, r, wait));
    enforce_in_flavor(kernel::check_resource_acquire_region(t, r));
}

// Below APC_LEVEL with normal kernel APCs disabled: no acquire or release
// rule can fail, so the uncontended paths (resource_algorithm.hpp) run
// without evaluating them one by one. The IRQL is read through the gate word
// (kernel/verifier.hpp): with the verifier on, every call takes the checked
// path, where its hooks are.
bool common_case(PKTHREAD t) {
    return t != nullptr && t->IrqlGate == PASSIVE_LEVEL && t->CombinedApcDisable != 0;
}

namespace verifier = kernel::verifier;
constexpr auto kResource = verifier::LockType::resource;

BOOLEAN acquire_shared(PERESOURCE r, BOOLEAN Wait, resource::SharedKind kind) {
    PKTHREAD t = kernel::detail::tls_current_thread;
    if (common_case(t) && Algo::acquire_shared_fast(t, r, kind)) [[likely]]
        return TRUE;
    t = current_thread();
    const bool wait = Wait != FALSE;
    check_acquire(t, r, wait);
    if (wait && t->Irql > APC_LEVEL) [[unlikely]] {
        // Free flavour only: granted without waiting, or the bug check of a
        // wait above APC_LEVEL.
        if (Algo::acquire_shared_outcome(t, r, kind, false) == Algo::Outcome::acquired) {
            verifier::on_acquired(t, r, kResource, true, true);
            return TRUE;
        }
        enforce(kernel::check_wait_irql(t->Irql, APC_LEVEL, r));
    }
    if (wait) verifier::on_acquire(t, r, kResource);
    const auto outcome = Algo::acquire_shared_outcome(t, r, kind, wait);
    if (outcome == Algo::Outcome::shared_owner_must_wait) [[unlikely]]
        enforce(kernel::check_resource_shared_reacquire(t, r));
    if (outcome != Algo::Outcome::acquired) return FALSE;
    verifier::on_acquired(t, r, kResource, true, !wait);
    return TRUE;
}

// The owner a release names: a thread (ExGetCurrentResourceThread) or an
// owner pointer with its low two bits set [kmt-ExResource][ros-resource].
bool is_owner_pointer(ERESOURCE_THREAD id) {
    return (id & 3) == 3;
}

// Owner pointers' shared holds, in the resource's OwnerTable: entry 0 holds
// TableSize, entries 1.. an owner and its count [ros-resource]. Under the
// internal lock.
POWNER_ENTRY find_pointer_entry(PERESOURCE r, ERESOURCE_THREAD id) {
    POWNER_ENTRY table = r->OwnerTable;
    if (table == nullptr) return nullptr;
    for (ULONG i = 1; i < table[0].TableSize; ++i) {
        if (table[i].OwnerThread == id) return &table[i];
    }
    return nullptr;
}
void add_pointer_entry(PERESOURCE r, ERESOURCE_THREAD id, ULONG count) {
    POWNER_ENTRY table = r->OwnerTable;
    if (table != nullptr) {
        for (ULONG i = 1; i < table[0].TableSize; ++i) {
            if (table[i].OwnerThread == 0) {
                table[i].OwnerThread = id;
                table[i].OwnerCount = count & 0x3FFFFFFF;
                return;
            }
        }
    }
    // Grow as ReactOS does: 3 entries first, then 4 more [ros-resource].
    const ULONG old_size = table == nullptr ? 0 : table[0].TableSize;
    const ULONG new_size = table == nullptr ? 3 : old_size + 4;
    auto* grown = static_cast<POWNER_ENTRY>(
        ExAllocatePoolWithTag(NonPagedPool, new_size * sizeof(OWNER_ENTRY), 0));
    if (grown == nullptr) throw std::bad_alloc();
    for (ULONG i = 0; i < new_size; ++i) grown[i] = i < old_size ? table[i] : OWNER_ENTRY{};
    grown[0].TableSize = new_size;
    r->OwnerTable = grown;
    ExFreePoolWithTag(table, 0);
    add_pointer_entry(r, id, count);
}

}  // namespace

// ---- Initialization ----

NTSTATUS ExInitializeResourceLite(PERESOURCE Resource) {
    if (Resource == nullptr) kmlab::raise_status(kStatusAccessViolation);  // [kmt-ExResource]
    kernel::require_irql_at_most(DISPATCH_LEVEL, Resource);  // [ddi:exinitializeresourcelite]
    if (PKTHREAD t = verifier::initializing_thread(); verifier::on(t)) [[unlikely]]
        verifier::on_initialize(t, Resource, kResource, __builtin_return_address(0));
    *Resource = ERESOURCE{};
    std::lock_guard g(g_resources_lock);
    InsertTailList(&g_resources, &Resource->SystemResourcesList);
    return STATUS_SUCCESS;
}

NTSTATUS ExReinitializeResourceLite(PERESOURCE Resource) {
    kernel::require_irql_at_most(DISPATCH_LEVEL, Resource);  // [ddi:exreinitializeresourcelite]
    if (PKTHREAD t = verifier::initializing_thread(); verifier::on(t)) [[unlikely]]
        verifier::on_initialize(t, Resource, kResource, __builtin_return_address(0));
    enforce_in_flavor(kernel::check_resource_delete(in_use(Resource), Resource));
    // The waiter objects and the owner table are kept, reset [ros-resource].
    if (Resource->OwnerTable != nullptr) {
        for (ULONG i = 1; i < Resource->OwnerTable[0].TableSize; ++i)
            Resource->OwnerTable[i] = OWNER_ENTRY{};
    }
    if (Resource->SharedWaiters != nullptr)
        KeInitializeSemaphore(Resource->SharedWaiters, 0, MAXLONG);
    if (Resource->ExclusiveWaiters != nullptr)
        KeInitializeEvent(Resource->ExclusiveWaiters, SynchronizationEvent, FALSE);
    std::atomic_ref<ULONG>(Resource->ActiveState).store(0, std::memory_order_relaxed);
    Resource->ActiveEntries = 0;
    resource::store_owner(Resource, 0);
    Resource->OwnerEntry.TableSize = 0;
    Resource->ContentionCount = 0;
    Resource->NumberOfSharedWaiters = 0;
    Resource->NumberOfExclusiveWaiters = 0;
    return STATUS_SUCCESS;
}

NTSTATUS ExDeleteResourceLite(PERESOURCE Resource) {
    kernel::require_irql_at_most(DISPATCH_LEVEL, Resource);  // [ddi:exdeleteresourcelite]
    const bool waited_for =
        Resource->NumberOfSharedWaiters != 0 || Resource->NumberOfExclusiveWaiters != 0;
    // Driver Verifier's look first: 0xC4/0x100B for a resource still held.
    if (PKTHREAD t = verifier::initializing_thread(); verifier::on(t)) [[unlikely]] {
        if (auto v = verifier::check_delete(Resource)) verifier::report(*v);
        verifier::note_delete(Resource);
    }
    enforce_in_flavor(kernel::check_resource_delete(in_use(Resource), Resource));
    {
        std::lock_guard g(g_resources_lock);
        RemoveEntryList(&Resource->SystemResourcesList);
    }
    if (!waited_for) resource::DispatcherWaits::free_objects(Resource);
    return STATUS_SUCCESS;
}

// ---- Acquisition ----

BOOLEAN ExAcquireResourceExclusiveLite(PERESOURCE Resource, BOOLEAN Wait) {
    PKTHREAD t = kernel::detail::tls_current_thread;
    if (common_case(t) && Algo::try_exclusive_fast(Resource)) [[likely]] {
        resource::store_count(Resource, 1);
        resource::store_owner(Resource, resource::thread_id(t));
        t->Extra->resource_holds.mark_named();
        return TRUE;
    }
    t = current_thread();
    const bool wait = Wait != FALSE;
    check_acquire(t, Resource, wait);
    if (!Algo::owns_exclusive(t, Resource)) {
        enforce(kernel::check_resource_upgrade(resource::shared_count(t, Resource) != 0, wait, t,
                                               Resource));
    }
    if (wait && t->Irql > APC_LEVEL) [[unlikely]] {
        if (Algo::acquire_exclusive(t, Resource, false)) {
            verifier::on_acquired(t, Resource, kResource, false, true);
            return TRUE;
        }
        enforce(kernel::check_wait_irql(t->Irql, APC_LEVEL, Resource));
    }
    if (wait) verifier::on_acquire(t, Resource, kResource);
    if (!Algo::acquire_exclusive(t, Resource, wait)) return FALSE;
    verifier::on_acquired(t, Resource, kResource, false, !wait);
    return TRUE;
}

BOOLEAN ExAcquireResourceSharedLite(PERESOURCE Resource, BOOLEAN Wait) {
    return acquire_shared(Resource, Wait, resource::SharedKind::shared);
}

BOOLEAN ExAcquireSharedStarveExclusive(PERESOURCE Resource, BOOLEAN Wait) {
    return acquire_shared(Resource, Wait, resource::SharedKind::starve_exclusive);
}

BOOLEAN ExAcquireSharedWaitForExclusive(PERESOURCE Resource, BOOLEAN Wait) {
    return acquire_shared(Resource, Wait, resource::SharedKind::wait_for_exclusive);
}

// The kmtest expects KeGetCurrentThread()->Win32Thread back, NULL for a
// thread that is not a GUI thread [kmt-ExResource]: the emulator has none.
PVOID ExEnterCriticalRegionAndAcquireResourceExclusive(PERESOURCE Resource) {
    KeEnterCriticalRegion();
    try {
        ExAcquireResourceExclusiveLite(Resource, TRUE);
    } catch (...) {
        ++current_thread()->KernelApcDisable;  // the region entered above, left
        throw;
    }
    return nullptr;
}

PVOID ExEnterCriticalRegionAndAcquireResourceShared(PERESOURCE Resource) {
    KeEnterCriticalRegion();
    try {
        ExAcquireResourceSharedLite(Resource, TRUE);
    } catch (...) {
        ++current_thread()->KernelApcDisable;
        throw;
    }
    return nullptr;
}

PVOID ExEnterCriticalRegionAndAcquireSharedWaitForExclusive(PERESOURCE Resource) {
    KeEnterCriticalRegion();
    try {
        ExAcquireSharedWaitForExclusive(Resource, TRUE);
    } catch (...) {
        ++current_thread()->KernelApcDisable;
        throw;
    }
    return nullptr;
}

// ---- Conversion and release ----

void ExConvertExclusiveToSharedLite(PERESOURCE Resource) {
    PKTHREAD t = current_thread();
    enforce_in_flavor(kernel::check_resource_release_irql(t, Resource));
    const bool owns = Algo::owns_exclusive(t, Resource);
    enforce_in_flavor(kernel::check_resource_convert(owns, Resource));
    if (!owns) return;  // the free flavour: nothing changes [kmt-ExResource]
    Algo::convert_to_shared(t, Resource);
}

void ExReleaseResourceLite(PERESOURCE Resource) {
    PKTHREAD t = kernel::detail::tls_current_thread;
    if (common_case(t) && (Algo::release_shared_fast(t, Resource) ||
                           Algo::release_exclusive_fast(t, Resource))) [[likely]]
        return;
    t = current_thread();
    enforce_in_flavor(kernel::check_resource_release_irql(t, Resource));
    enforce_in_flavor(kernel::check_resource_release_region(t, Resource));
    verifier::on_release(t, Resource, kResource);
    if (Algo::release(t, Resource)) [[likely]]
        return;
    enforce(kernel::check_resource_owner(false, Resource, resource::thread_id(t)));
}

// ResourceThreadId names the caller, another thread (live or exited), or an
// owner pointer (ExSetResourceOwnerPointer); the kernel finds each in the
// resource's owner table under its spin lock, and bug checks 0xE3 when it
// finds none [ros-resource]. The emulator never dereferences an id it has
// not found: in order, the caller; the exclusive owner (OwnerEntry); a live
// thread's own table (the id checked against the live KTHREADs first, the
// table changed under its lock: thread.hpp ResourceHolds); the OwnerTable,
// under the internal lock (owner pointers, and the holds of threads that
// exited, moved there by resource_thread_exit). A live thread's table is
// searched before the OwnerTable, and thread exit moves the holds while
// holding that table's lock, so a hold is always found in one of the two.
void ExReleaseResourceForThreadLite(PERESOURCE Resource, ERESOURCE_THREAD ResourceThreadId) {
    PKTHREAD t = current_thread();
    enforce_in_flavor(kernel::check_resource_release_irql(t, Resource));
    enforce_in_flavor(kernel::check_resource_release_region(t, Resource));
    const ERESOURCE_THREAD id = ResourceThreadId;
    const bool self = id == resource::thread_id(t);
    // A release for another thread names it: not a wrong-thread release.
    // An owner pointer's hold is no thread's (ExSetResourceOwnerPointer).
    if (verifier::on(t) && !is_owner_pointer(id))
        verifier::on_release(t, Resource, kResource, reinterpret_cast<PKTHREAD>(id));
    if (self && Algo::release(t, Resource)) return;
    if (!self && id != 0 && resource::load_owner(Resource) == id) {
        Algo::release_exclusive_hold(Resource);
        return;
    }
    if (id != 0) {
        if (!self && !is_owner_pointer(id)) {
            if (PKTHREAD other = kernel::reference_thread_by_id(id)) {
                const bool released = Algo::release_shared_hold(other, Resource, true);
                kernel::dereference_thread(other);
                if (released) return;
            }
        }
        Algo::lock(Resource);
        POWNER_ENTRY e = find_pointer_entry(Resource, id);
        bool last = false;
        if (e != nullptr && --e->OwnerCount == 0) {
            e->OwnerThread = 0;
            last = true;
        }
        Algo::unlock(Resource);
        if (last) Algo::release_shared_count(Resource);
        if (e != nullptr) return;
    }
    enforce(kernel::check_resource_owner(false, Resource, id));
}

void ExReleaseResourceAndLeaveCriticalRegion(PERESOURCE Resource) {
    ExReleaseResourceLite(Resource);
    KeLeaveCriticalRegion();
}

// The caller's hold (all its recursion) passes to OwnerPointer | 3
// [ddi:exsetresourceownerpointer][ros-resource].
void ExSetResourceOwnerPointer(PERESOURCE Resource, PVOID OwnerPointer) {
    PKTHREAD t = current_thread();
    kernel::require_irql_at_most(DISPATCH_LEVEL, Resource);
    const ERESOURCE_THREAD id = reinterpret_cast<ERESOURCE_THREAD>(OwnerPointer) | 3;
    // The hold is an owner pointer's from now on: the verifier stops
    // tracking it as this thread's.
    if (verifier::on(t)) verifier::note_release(t, Resource);
    if (Algo::owns_exclusive(t, Resource)) {
        resource::store_owner(Resource, id);
        return;
    }
    const ULONG count = resource::holds_of(t).take(Resource);
    enforce(kernel::check_resource_owner(count != 0, Resource, resource::thread_id(t)));
    Algo::lock(Resource);
    try {
        add_pointer_entry(Resource, id, count);
    } catch (...) {
        Algo::unlock(Resource);
        resource::holds_of(t).add(Resource, count);  // nothing changed
        throw;
    }
    Algo::unlock(Resource);
}

// ---- Queries ----

BOOLEAN ExIsResourceAcquiredExclusiveLite(PERESOURCE Resource) {
    PKTHREAD t = current_thread();
    const ULONG w = std::atomic_ref<ULONG>(Resource->ActiveState).load(std::memory_order_relaxed);
    return (w & resource::kExclusive) != 0 && Algo::owns_exclusive(t, Resource) ? TRUE : FALSE;
}

ULONG ExIsResourceAcquiredSharedLite(PERESOURCE Resource) {
    PKTHREAD t = current_thread();
    if (Algo::owns_exclusive(t, Resource)) return resource::load_count(Resource);
    return resource::shared_count(t, Resource);
}

// Unsynchronized reads of the counters, as the kernel's [ros-resource].
ULONG ExGetExclusiveWaiterCount(PERESOURCE Resource) {
    return std::atomic_ref<ULONG>(Resource->NumberOfExclusiveWaiters)
        .load(std::memory_order_relaxed);
}

ULONG ExGetSharedWaiterCount(PERESOURCE Resource) {
    return std::atomic_ref<ULONG>(Resource->NumberOfSharedWaiters).load(std::memory_order_relaxed);
}

}  // namespace kmlab::nt

namespace kmlab::kernel::detail {

// The shared holds a thread still has when it exits stay with each resource,
// in its OwnerTable under the thread's id, as the kernel's table keeps them
// [ros-resource]: ExReleaseResourceForThreadLite by that id releases them
// later (decision, kmlab: Windows has no thread-exit check for ERESOURCEs;
// neither has the emulator). Limit: a resource deleted before its holds are
// released is the caller's bug, not detected. Under the table's lock, so a
// release for this thread meanwhile finds each hold in one place or the
// other.
void resource_thread_exit(nt::PKTHREAD t) {
    auto& holds = resource::holds_of(t);
    if (holds.empty()) return;
    holds.drain([t](const void* res, nt::ULONG count) {
        auto* r = static_cast<nt::PERESOURCE>(const_cast<void*>(res));
        nt::Algo::lock(r);
        try {
            nt::add_pointer_entry(r, resource::thread_id(t), count);
        } catch (...) {
            nt::Algo::unlock(r);
            throw;
        }
        nt::Algo::unlock(r);
    });
}

}  // namespace kmlab::kernel::detail
