// Basic NT types, enums and constants with the WDK's names and values.
//
// Everything lives in namespace kmlab::nt so that driver code can say
// `using namespace kmlab::nt;` and compile nearly unchanged. Sources for every
// value are the keys of ../shared/design/SEMANTICS.md (section 0).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kmlab::nt {

using CHAR = char;
using SCHAR = std::int8_t;
using UCHAR = std::uint8_t;
using SHORT = std::int16_t;
using USHORT = std::uint16_t;
using LONG = std::int32_t;
using ULONG = std::uint32_t;
using LONGLONG = std::int64_t;
using ULONGLONG = std::uint64_t;
using LONG_PTR = std::intptr_t;
using ULONG_PTR = std::uintptr_t;
using BOOLEAN = UCHAR;
using PVOID = void*;
using VOID = void;
using HANDLE = void*;
using PHANDLE = HANDLE*;
using NTSTATUS = LONG;
using KIRQL = UCHAR;
using PKIRQL = KIRQL*;
using KPRIORITY = LONG;
using ACCESS_MASK = ULONG;
using KPROCESSOR_MODE = CHAR;
using PULONG = ULONG*;
using PLONG = LONG*;

inline constexpr BOOLEAN TRUE = 1;
inline constexpr BOOLEAN FALSE = 0;

// 100 ns units; negative = relative, positive = absolute since 1601-01-01
// [ddi:kewaitforsingleobject].
union LARGE_INTEGER {
    struct {
        ULONG LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
};
using PLARGE_INTEGER = LARGE_INTEGER*;

// ---- IRQL (amd64 values [ros-x64ke]) ----
inline constexpr KIRQL PASSIVE_LEVEL = 0;
inline constexpr KIRQL LOW_LEVEL = 0;
inline constexpr KIRQL APC_LEVEL = 1;
inline constexpr KIRQL DISPATCH_LEVEL = 2;
inline constexpr KIRQL CMCI_LEVEL = 5;
inline constexpr KIRQL SYNCH_LEVEL = 12;
inline constexpr KIRQL CLOCK_LEVEL = 13;
inline constexpr KIRQL IPI_LEVEL = 14;
inline constexpr KIRQL POWER_LEVEL = 14;
inline constexpr KIRQL PROFILE_LEVEL = 15;
inline constexpr KIRQL HIGH_LEVEL = 15;

// ---- Enums [wine-ntdef][ros-ntdef][ros-xket][ros-nket] ----
enum MODE : CHAR { KernelMode = 0, UserMode = 1, MaximumMode };
enum EVENT_TYPE { NotificationEvent = 0, SynchronizationEvent = 1 };
enum WAIT_TYPE { WaitAll = 0, WaitAny = 1 };
enum KWAIT_REASON {
    Executive = 0,
    FreePage,
    PageIn,
    PoolAllocation,
    DelayExecution,
    Suspended,
    UserRequest,
    WrExecutive,
    WrFreePage,
    WrPageIn,
    WrPoolAllocation,
    WrDelayExecution,
    WrSuspended,
    WrUserRequest,
    WrEventPair,
    WrQueue,
    WrLpcReceive,
    WrLpcReply,
    WrVirtualMemory,
    WrPageOut,
    WrRendezvous,
    WrKeyedEvent,
    WrTerminated,
    WrProcessInSwap,
    WrCpuRateControl,
    WrCalloutStack,
    WrKernel,
    WrResource,
    WrPushLock,
    WrMutex,
    WrQuantumEnd,
    WrDispatchInt,
    WrPreempted,
    WrYieldExecution,
    WrFastMutex,
    WrGuardedMutex,
    WrRundown,
    MaximumWaitReason
};
enum KOBJECTS : UCHAR {
    EventNotificationObject = 0,
    EventSynchronizationObject = 1,
    MutantObject = 2,
    ProcessObject = 3,
    QueueObject = 4,
    SemaphoreObject = 5,
    ThreadObject = 6,
    GateObject = 7,
    TimerNotificationObject = 8,
    TimerSynchronizationObject = 9,
};

inline constexpr ULONG THREAD_WAIT_OBJECTS = 3;    // built-in wait blocks per thread [ros-xket]
inline constexpr ULONG MAXIMUM_WAIT_OBJECTS = 64;  // [ros-xket]
inline constexpr LONG MINLONG = static_cast<LONG>(0x80000000);
inline constexpr LONG MAXLONG = 0x7fffffff;
inline constexpr KPRIORITY IO_NO_INCREMENT = 0;
inline constexpr KPRIORITY MUTANT_INCREMENT = 1;
inline constexpr KPRIORITY SEMAPHORE_INCREMENT = 1;
inline constexpr KPRIORITY EVENT_INCREMENT = 1;
// Thread priorities [ros-xket]: 1..15 are the variable (boostable) levels,
// 16..31 the real-time ones.
inline constexpr KPRIORITY LOW_PRIORITY = 0;
inline constexpr KPRIORITY LOW_REALTIME_PRIORITY = 16;
inline constexpr KPRIORITY HIGH_PRIORITY = 31;
inline constexpr KPRIORITY MAXIMUM_PRIORITY = 32;

// Fast/guarded mutex Count bits [ntl][ros-xket]: bit 0 is the lock (1 = free),
// bit 1 says a waiter was woken, bits 2..31 count waiters in steps of 4.
inline constexpr LONG FM_LOCK_BIT = 0x1;
inline constexpr LONG FM_LOCK_BIT_V = 0x0;
inline constexpr LONG FM_LOCK_WAITER_WOKEN = 0x2;
inline constexpr LONG FM_LOCK_WAITER_INC = 0x4;
inline constexpr LONG GM_LOCK_BIT = FM_LOCK_BIT;
inline constexpr LONG GM_LOCK_BIT_V = FM_LOCK_BIT_V;
inline constexpr LONG GM_LOCK_WAITER_WOKEN = FM_LOCK_WAITER_WOKEN;
inline constexpr LONG GM_LOCK_WAITER_INC = FM_LOCK_WAITER_INC;
// ReactOS gmutex.c's compile-time check: a "woken" mark plus another mark is
// exactly one waiter, which the acquire slow path relies on.
static_assert(FM_LOCK_WAITER_WOKEN * 2 == FM_LOCK_WAITER_INC);

// Access rights and object attributes used by the system-thread idiom.
inline constexpr ACCESS_MASK SYNCHRONIZE = 0x00100000;
inline constexpr ACCESS_MASK STANDARD_RIGHTS_REQUIRED = 0x000F0000;
inline constexpr ACCESS_MASK THREAD_ALL_ACCESS = STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0xFFFF;
inline constexpr ACCESS_MASK GENERIC_ALL = 0x10000000;
inline constexpr ULONG OBJ_KERNEL_HANDLE = 0x00000200;

// ---- LIST_ENTRY, with the WDK's inline helpers ----
struct LIST_ENTRY {
    LIST_ENTRY* Flink;
    LIST_ENTRY* Blink;
};
using PLIST_ENTRY = LIST_ENTRY*;

inline void InitializeListHead(PLIST_ENTRY head) {
    head->Flink = head->Blink = head;
}
inline bool IsListEmpty(const LIST_ENTRY* head) {
    return head->Flink == head;
}
inline void InsertTailList(PLIST_ENTRY head, PLIST_ENTRY entry) {
    entry->Flink = head;
    entry->Blink = head->Blink;
    head->Blink->Flink = entry;
    head->Blink = entry;
}
inline void InsertHeadList(PLIST_ENTRY head, PLIST_ENTRY entry) {
    entry->Blink = head;
    entry->Flink = head->Flink;
    head->Flink->Blink = entry;
    head->Flink = entry;
}
inline BOOLEAN RemoveEntryList(PLIST_ENTRY entry) {
    PLIST_ENTRY next = entry->Flink;
    PLIST_ENTRY prev = entry->Blink;
    prev->Flink = next;
    next->Blink = prev;
    return next == prev;
}

// CONTAINING_RECORD as a function template: the WDK's macro needs offsetof on
// the caller's type, this needs only a pointer-to-member.
template <class T, class M>
T* containing_record(M* member, M T::*field) {
    auto offset = reinterpret_cast<std::ptrdiff_t>(&(static_cast<T*>(nullptr)->*field));
    return reinterpret_cast<T*>(reinterpret_cast<char*>(member) - offset);
}

}  // namespace kmlab::nt
