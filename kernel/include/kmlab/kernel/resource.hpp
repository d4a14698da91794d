// ERESOURCE, the executive's reader/writer lock: its WDK layout and the Ex
// routines, with the WDK's signatures (namespace kmlab::nt).
//
// Layout: sdk/include/xdk/extypes.h [ros-xex] (the WDK's wdm.h), amd64 sizes
// checked below; the fields the kmtest reads [kmt-ExResource] keep their
// meaning (see resource_algorithm.hpp for how each one is kept):
//   ActiveCount               threads that own the resource (shared owners, or
//                             1 for the exclusive owner); recursion does not count
//   Flag                      ResourceOwnedExclusive (0x80) while owned exclusive
//   OwnerEntry.OwnerThread    the exclusive owner (ERESOURCE_THREAD), else 0
//   OwnerEntry.OwnerCount     its recursion count
//   NumberOfSharedWaiters     threads blocked on SharedWaiters (a KSEMAPHORE)
//   NumberOfExclusiveWaiters  threads blocked on ExclusiveWaiters (a
//                             synchronization KEVENT)
//   SharedWaiters, ExclusiveWaiters  allocated at the first contention, as the
//                             kernel does (NULL after ExInitializeResourceLite)
//   ContentionCount           acquires that had to wait
//   SystemResourcesList       linked into the system's resource list while initialized
//
// Exported by ntoskrnl (for the C face's MmGetSystemRoutineAddress table):
// every routine declared below except these three, which wdm.h defines as
// macros (as the public copies of wdm.h show):
// ExReleaseResource (ExReleaseResourceLite), ExIsResourceAcquiredLite
// (ExIsResourceAcquiredSharedLite) and ExGetCurrentResourceThread
// ((ULONG_PTR)PsGetCurrentThread()); here they are inline functions. The
// obsolete non-Lite ExInitializeResource / ExDeleteResource are not declared.
// The three ExEnterCriticalRegionAndAcquire... and
// ExReleaseResourceAndLeaveCriticalRegion are exported but undocumented (the
// kmtest looks them up by name [kmt-ExResource]).
#pragma once

#include <cstddef>
#include <type_traits>

#include <kmlab/kernel/routines.hpp>

namespace kmlab::nt {

// ExGetCurrentResourceThread() returns the caller's KTHREAD as an integer; an
// owner pointer set with ExSetResourceOwnerPointer has its low two bits set
// [kmt-ExResource] (the kmtest passes Res | 3; ReactOS tells a thread from a pointer by
// those bits [ros-resource]).
using ERESOURCE_THREAD = ULONG_PTR;
using PERESOURCE_THREAD = ERESOURCE_THREAD*;

struct OWNER_ENTRY {
    ERESOURCE_THREAD OwnerThread;
    union {
        struct {
            ULONG IoPriorityBoosted : 1;
            ULONG OwnerReferenced : 1;
            ULONG OwnerCount : 30;
        };
        ULONG TableSize;
    };
};
using POWNER_ENTRY = OWNER_ENTRY*;

struct ERESOURCE {
    LIST_ENTRY SystemResourcesList;
    POWNER_ENTRY OwnerTable;
    // ActiveCount and Flag are one aligned 32-bit word on little-endian
    // machines; the emulator changes them together through ActiveState
    // (kmlab's name, resource_algorithm.hpp), with interlocked operations.
    union {
        struct {
            SHORT ActiveCount;
            USHORT Flag;
        };
        ULONG ActiveState;
    };
    PKSEMAPHORE SharedWaiters;
    PKEVENT ExclusiveWaiters;
    OWNER_ENTRY OwnerEntry;
    ULONG ActiveEntries;
    ULONG ContentionCount;
    ULONG NumberOfSharedWaiters;
    ULONG NumberOfExclusiveWaiters;
#if defined(__x86_64__) || defined(__aarch64__)
    PVOID Reserved2;
#endif
    union {
        PVOID Address;
        ULONG_PTR CreatorBackTraceIndex;
    };
    ULONG_PTR SpinLock;  // KSPIN_LOCK in the WDK (a ULONG_PTR)
};
using PERESOURCE = ERESOURCE*;

// ERESOURCE.Flag [ros-xex].
inline constexpr USHORT ResourceNeverExclusive = 0x0010;
inline constexpr USHORT ResourceReleaseByOtherThread = 0x0020;
inline constexpr USHORT ResourceOwnedExclusive = 0x0080;

static_assert(std::is_standard_layout_v<ERESOURCE>);
#if defined(__x86_64__)
// The WDK's amd64 layout [ros-xex]: 0x68 bytes.
static_assert(sizeof(OWNER_ENTRY) == 16);
static_assert(offsetof(ERESOURCE, OwnerTable) == 0x10 && offsetof(ERESOURCE, ActiveCount) == 0x18);
static_assert(offsetof(ERESOURCE, Flag) == 0x1A && offsetof(ERESOURCE, SharedWaiters) == 0x20);
static_assert(offsetof(ERESOURCE, ExclusiveWaiters) == 0x28 &&
              offsetof(ERESOURCE, OwnerEntry) == 0x30);
static_assert(offsetof(ERESOURCE, ActiveEntries) == 0x40 &&
              offsetof(ERESOURCE, ContentionCount) == 0x44);
static_assert(offsetof(ERESOURCE, NumberOfSharedWaiters) == 0x48 &&
              offsetof(ERESOURCE, NumberOfExclusiveWaiters) == 0x4C);
static_assert(offsetof(ERESOURCE, Address) == 0x58 && offsetof(ERESOURCE, SpinLock) == 0x60);
static_assert(sizeof(ERESOURCE) == 0x68);
#endif

// ---- Initialization (IRQL <= DISPATCH_LEVEL [ddi:exinitializeresourcelite]) ----
// Returns STATUS_SUCCESS. A NULL Resource raises STATUS_ACCESS_VIOLATION, as
// the kmtest sees [kmt-ExResource].
NTSTATUS ExInitializeResourceLite(PERESOURCE Resource);
// Reinitializes a resource that no thread owns or waits for; keeps the
// waiter objects already allocated [kmt-ExResource].
NTSTATUS ExReinitializeResourceLite(PERESOURCE Resource);
// Unlinks the resource and frees its waiter objects. A resource still owned
// or waited for: rules_resource.hpp check_resource_delete.
NTSTATUS ExDeleteResourceLite(PERESOURCE Resource);

// ---- Acquisition ----
// All four need IRQL <= APC_LEVEL with normal kernel APCs disabled (a
// critical region, or APC_LEVEL) [ddi:exacquireresourceexclusivelite]:
// rules_resource.hpp says what each flavour does otherwise. Wait = FALSE
// returns FALSE where the caller would block; TRUE otherwise.
BOOLEAN ExAcquireResourceExclusiveLite(PERESOURCE Resource, BOOLEAN Wait);
BOOLEAN ExAcquireResourceSharedLite(PERESOURCE Resource, BOOLEAN Wait);
BOOLEAN ExAcquireSharedStarveExclusive(PERESOURCE Resource, BOOLEAN Wait);
BOOLEAN ExAcquireSharedWaitForExclusive(PERESOURCE Resource, BOOLEAN Wait);
// KeEnterCriticalRegion + the acquire with Wait = TRUE; return the thread's
// Win32Thread (NULL in the emulator) [kmt-ExResource].
PVOID ExEnterCriticalRegionAndAcquireResourceExclusive(PERESOURCE Resource);
PVOID ExEnterCriticalRegionAndAcquireResourceShared(PERESOURCE Resource);
PVOID ExEnterCriticalRegionAndAcquireSharedWaitForExclusive(PERESOURCE Resource);

// ---- Conversion and release (IRQL <= DISPATCH_LEVEL) ----
void ExConvertExclusiveToSharedLite(PERESOURCE Resource);
void ExReleaseResourceLite(PERESOURCE Resource);
inline void ExReleaseResource(PERESOURCE Resource) {  // a wdm.h macro
    ExReleaseResourceLite(Resource);
}
void ExReleaseResourceForThreadLite(PERESOURCE Resource, ERESOURCE_THREAD ResourceThreadId);
void ExReleaseResourceAndLeaveCriticalRegion(PERESOURCE Resource);
// Makes the owner pointer (its low two bits set by the routine) the owner of
// the caller's hold, which ExReleaseResourceForThreadLite may then release
// from any thread [ddi:exsetresourceownerpointer].
void ExSetResourceOwnerPointer(PERESOURCE Resource, PVOID OwnerPointer);

// ---- Queries (any IRQL <= DISPATCH_LEVEL) ----
inline ERESOURCE_THREAD ExGetCurrentResourceThread() {  // a wdm.h macro
    return reinterpret_cast<ERESOURCE_THREAD>(PsGetCurrentThread());
}
BOOLEAN ExIsResourceAcquiredExclusiveLite(PERESOURCE Resource);
// The caller's number of acquisitions (shared, or exclusive: an exclusive
// owner is also a shared one), 0 if it owns none [kmt-ExResource].
ULONG ExIsResourceAcquiredSharedLite(PERESOURCE Resource);
inline ULONG ExIsResourceAcquiredLite(PERESOURCE Resource) {  // a wdm.h macro
    return ExIsResourceAcquiredSharedLite(Resource);
}
ULONG ExGetExclusiveWaiterCount(PERESOURCE Resource);
ULONG ExGetSharedWaiterCount(PERESOURCE Resource);

}  // namespace kmlab::nt
