/* kmlab's C face: the WDK's names for the routines, types and constants of
 * kmlab's NT face, for driver code written in C (C17) or included from C++.
 *
 * The structures are the WDK's C layouts, identical to kmlab::nt's (the
 * implementation checks sizes and offsets at compile time), so an object
 * initialized here is the object the C++ face and the emulated kernel see.
 * The routines are extern "C" thunks over kmlab::nt (nt/src/wdm.cpp).
 *
 * Raised statuses and bug checks in C code
 * ----------------------------------------
 * C has no exceptions, and no C++ exception may unwind through C frames that
 * were not built to be unwound. Every routine therefore catches what the
 * emulated kernel throws before it returns to C, and reports it as Windows
 * reports a failure that no handler catches: a bug check.
 *  - A bug check (kmlab::BugCheck) is reported with its code and parameters.
 *  - A raised status (ExRaiseStatus, e.g. KeReleaseMutex by a non-owner
 *    raises STATUS_MUTANT_NOT_OWNED) is reported as
 *    KMODE_EXCEPTION_NOT_HANDLED (0x1E) with parameter 1 the status, as a
 *    driver without __try/__except would stop Windows.
 * The report goes to the handler installed with KmlabSetBugCheckHandler; the
 * default prints the stop message and aborts. A handler may leave with
 * longjmp: the routine has already unwound, so the emulator's own state (its
 * locks, the thread's IRQL and regions as the failed routine left them) is
 * consistent. If the handler returns, the process aborts: the routine cannot
 * return as if it had succeeded.
 *
 * The one exception that does cross C frames is PsTerminateSystemThread's:
 * like pthread_exit it does not return, and it unwinds the system thread's
 * stack, C frames included, to the thread's start-up code. C frames need
 * unwind tables for that (gcc's default on x86-64; -funwind-tables
 * elsewhere) and run no cleanup, which is what C expects of a routine that
 * does not return.
 *
 * The SAL annotations (_In_, _Out_, ...) and the WDK's helper macros
 * (CONTAINING_RECORD, RTL_NUMBER_OF, RtlZeroMemory, ...) come from
 * <kmlab/nt/wdk_macros.h>, which the C++ face includes too; in C++ include
 * this header after the standard library's.
 *
 * In C++, include this header or <kmlab/kmlab_nt.hpp>; both in one
 * translation unit work (the C names are global, the C++ ones in kmlab::nt),
 * but not under `using namespace kmlab::nt;`. The constants are enumerators,
 * not macros, for that reason.
 */
#ifndef KMLAB_WDM_H
#define KMLAB_WDM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <wchar.h>

#include <kmlab/nt/wdk_macros.h>

#ifdef __cplusplus
extern "C" {
#define KMLAB_WDM_STATUS(v) static_cast<NTSTATUS>(v##u)
#else
#define KMLAB_WDM_STATUS(v) ((NTSTATUS)(v##u))
#endif

/* ---- Basic types [ros-ntdef] ---- */
typedef void VOID;
typedef char CHAR;
typedef uint8_t UCHAR;
typedef int16_t SHORT;
typedef uint16_t USHORT;
typedef int32_t LONG;
typedef uint32_t ULONG;
typedef int64_t LONGLONG;
typedef uint64_t ULONGLONG;
typedef intptr_t LONG_PTR;
typedef uintptr_t ULONG_PTR;
typedef UCHAR BOOLEAN;
typedef void* PVOID;
typedef void* HANDLE;
typedef HANDLE* PHANDLE;
typedef LONG NTSTATUS;
typedef UCHAR KIRQL;
typedef KIRQL* PKIRQL;
typedef LONG KPRIORITY;
typedef ULONG ACCESS_MASK;
typedef CHAR KPROCESSOR_MODE;
typedef ULONG* PULONG;
typedef LONG* PLONG;
typedef wchar_t WCHAR;
typedef const WCHAR* PCWSTR;
typedef int8_t SCHAR;

enum { FALSE = 0, TRUE = 1 };

typedef union _LARGE_INTEGER {
    struct {
        ULONG LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

/* ---- Status codes [wine-status] ---- */
enum {
    STATUS_SUCCESS = 0x00000000,
    STATUS_WAIT_0 = 0x00000000,
    STATUS_WAIT_1 = 0x00000001,
    STATUS_WAIT_2 = 0x00000002,
    STATUS_WAIT_3 = 0x00000003,
    STATUS_WAIT_63 = 0x0000003F,
    STATUS_ABANDONED = 0x00000080,
    STATUS_ABANDONED_WAIT_0 = 0x00000080,
    STATUS_ABANDONED_WAIT_63 = 0x000000BF,
    STATUS_USER_APC = 0x000000C0,
    STATUS_KERNEL_APC = 0x00000100,
    STATUS_ALERTED = 0x00000101,
    STATUS_TIMEOUT = 0x00000102,
    STATUS_PENDING = 0x00000103,
    STATUS_BREAKPOINT = KMLAB_WDM_STATUS(0x80000003),
    STATUS_UNSUCCESSFUL = KMLAB_WDM_STATUS(0xC0000001),
    STATUS_NOT_IMPLEMENTED = KMLAB_WDM_STATUS(0xC0000002),
    STATUS_INVALID_HANDLE = KMLAB_WDM_STATUS(0xC0000008),
    STATUS_INVALID_PARAMETER = KMLAB_WDM_STATUS(0xC000000D),
    STATUS_ACCESS_DENIED = KMLAB_WDM_STATUS(0xC0000022),
    STATUS_OBJECT_TYPE_MISMATCH = KMLAB_WDM_STATUS(0xC0000024),
    STATUS_MUTANT_NOT_OWNED = KMLAB_WDM_STATUS(0xC0000046),
    STATUS_SEMAPHORE_LIMIT_EXCEEDED = KMLAB_WDM_STATUS(0xC0000047),
    STATUS_INSUFFICIENT_RESOURCES = KMLAB_WDM_STATUS(0xC000009A),
    STATUS_NOT_SUPPORTED = KMLAB_WDM_STATUS(0xC00000BB),
    STATUS_MUTANT_LIMIT_EXCEEDED = KMLAB_WDM_STATUS(0xC0000191)
};

/* The WDK's NT_SUCCESS is a macro; a function keeps the C++ face's name free. */
static inline int NT_SUCCESS(NTSTATUS Status) {
    return Status >= 0;
}

/* ---- IRQL (amd64 values [ros-x64ke]) ---- */
enum {
    PASSIVE_LEVEL = 0,
    LOW_LEVEL = 0,
    APC_LEVEL = 1,
    DISPATCH_LEVEL = 2,
    SYNCH_LEVEL = 12,
    CLOCK_LEVEL = 13,
    IPI_LEVEL = 14,
    POWER_LEVEL = 14,
    PROFILE_LEVEL = 15,
    HIGH_LEVEL = 15
};

/* ---- Enumerations [ros-ntdef][ros-xket] ---- */
typedef enum _MODE { KernelMode = 0, UserMode = 1, MaximumMode } MODE;
typedef enum _EVENT_TYPE { NotificationEvent = 0, SynchronizationEvent = 1 } EVENT_TYPE;
typedef enum _WAIT_TYPE { WaitAll = 0, WaitAny = 1 } WAIT_TYPE;
typedef enum _KWAIT_REASON {
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
} KWAIT_REASON;
typedef enum _KOBJECTS {
    EventNotificationObject = 0,
    EventSynchronizationObject = 1,
    MutantObject = 2,
    ProcessObject = 3,
    QueueObject = 4,
    SemaphoreObject = 5,
    ThreadObject = 6,
    GateObject = 7,
    TimerNotificationObject = 8,
    TimerSynchronizationObject = 9
} KOBJECTS;

enum {
    THREAD_WAIT_OBJECTS = 3,
    MAXIMUM_WAIT_OBJECTS = 64,
    IO_NO_INCREMENT = 0,
    EVENT_INCREMENT = 1,
    MUTANT_INCREMENT = 1,
    SEMAPHORE_INCREMENT = 1,
    LOW_PRIORITY = 0,
    LOW_REALTIME_PRIORITY = 16,
    HIGH_PRIORITY = 31,
    MAXIMUM_PRIORITY = 32,
    SYNCHRONIZE = 0x00100000,
    STANDARD_RIGHTS_REQUIRED = 0x000F0000,
    THREAD_ALL_ACCESS = 0x000F0000 | 0x00100000 | 0xFFFF,
    GENERIC_ALL = 0x10000000,
    EVENT_QUERY_STATE = 0x0001,
    EVENT_MODIFY_STATE = 0x0002,
    EVENT_ALL_ACCESS = 0x000F0000 | 0x00100000 | 0x3,
    OBJ_KERNEL_HANDLE = 0x00000200
};

/* ---- Lists ---- */
typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY* Flink;
    struct _LIST_ENTRY* Blink;
} LIST_ENTRY, *PLIST_ENTRY;

/* ---- Dispatcher objects: the WDK's amd64 layouts [ros-xket] ---- */
typedef struct _KTHREAD KTHREAD, *PKTHREAD, *PRKTHREAD; /* opaque to C */
typedef struct _KTHREAD ETHREAD, *PETHREAD;
typedef struct _KPROCESS KPROCESS, *PKPROCESS, *PRKPROCESS; /* opaque to C */
typedef struct _KPROCESS EPROCESS, *PEPROCESS;

/* Bytes 0..3 with the names of the WDK's unions (Vista/Win7 layout, as the
 * kmtests use them); Lock covers all four. */
typedef struct _DISPATCHER_HEADER {
    union {
        struct {
            UCHAR Type;
            union {
                UCHAR TimerControlFlags;
                UCHAR Absolute;
                UCHAR Abandoned;
                BOOLEAN Signalling;
            };
            union {
                UCHAR Size;
                UCHAR Hand;
                UCHAR ThreadControlFlags;
            };
            union {
                UCHAR TimerMiscFlags;
                BOOLEAN DebugActive;
                BOOLEAN DpcActive;
                UCHAR Inserted;
            };
        };
        volatile LONG Lock;
        LONG LockNV;
    };
    LONG SignalState;
    LIST_ENTRY WaitListHead;
} DISPATCHER_HEADER;

typedef struct _KWAIT_BLOCK {
    LIST_ENTRY WaitListEntry;
    PKTHREAD Thread;
    PVOID Object;
    struct _KWAIT_BLOCK* NextWaitBlock;
    USHORT WaitKey;
    UCHAR WaitType;
    UCHAR BlockState;
} KWAIT_BLOCK, *PKWAIT_BLOCK;

typedef struct _KMUTANT {
    DISPATCHER_HEADER Header;
    LIST_ENTRY MutantListEntry;
    PKTHREAD OwnerThread;
    BOOLEAN Abandoned;
    UCHAR ApcDisable;
} KMUTANT, *PKMUTANT, *PRKMUTANT, KMUTEX, *PKMUTEX, *PRKMUTEX;

typedef struct _KEVENT {
    DISPATCHER_HEADER Header;
} KEVENT, *PKEVENT, *PRKEVENT;

typedef struct _KSEMAPHORE {
    DISPATCHER_HEADER Header;
    LONG Limit;
} KSEMAPHORE, *PKSEMAPHORE, *PRKSEMAPHORE;

typedef struct _KGATE {
    DISPATCHER_HEADER Header;
} KGATE, *PKGATE;

typedef struct _FAST_MUTEX {
    LONG Count;
    PKTHREAD Owner;
    ULONG Contention;
    KEVENT Event;
    ULONG OldIrql;
} FAST_MUTEX, *PFAST_MUTEX;

typedef struct _KGUARDED_MUTEX {
    LONG Count;
    PKTHREAD Owner;
    ULONG Contention;
    KGATE Gate;
    union {
        struct {
            SHORT KernelApcDisable;
            SHORT SpecialApcDisable;
        };
        ULONG CombinedApcDisable;
    };
} KGUARDED_MUTEX, *PKGUARDED_MUTEX;

/* ---- System threads and the object manager ---- */
typedef struct _UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    WCHAR* Buffer;
} UNICODE_STRING, *PUNICODE_STRING;
typedef const UNICODE_STRING* PCUNICODE_STRING;

/* Lengths in bytes without the terminator, clamped to what a USHORT holds;
 * WCHAR is wchar_t (4 bytes on Linux). */
VOID RtlInitUnicodeString(PUNICODE_STRING DestinationString, PCWSTR SourceString);

typedef struct _OBJECT_ATTRIBUTES {
    ULONG Length;
    HANDLE RootDirectory;
    PUNICODE_STRING ObjectName;
    ULONG Attributes;
    PVOID SecurityDescriptor;
    PVOID SecurityQualityOfService;
} OBJECT_ATTRIBUTES, *POBJECT_ATTRIBUTES;

/* The WDK's is a macro; a function with the same arguments compiles the same
 * calls. */
static inline void InitializeObjectAttributes(POBJECT_ATTRIBUTES p, PUNICODE_STRING n, ULONG a,
                                              HANDLE r, PVOID s) {
    p->Length = sizeof(OBJECT_ATTRIBUTES);
    p->RootDirectory = r;
    p->Attributes = a;
    p->ObjectName = n;
    p->SecurityDescriptor = s;
    p->SecurityQualityOfService = NULL;
}

typedef struct _CLIENT_ID {
    HANDLE UniqueProcess;
    HANDLE UniqueThread;
} CLIENT_ID, *PCLIENT_ID;

typedef struct _OBJECT_TYPE* POBJECT_TYPE; /* opaque */
typedef struct _OBJECT_HANDLE_INFORMATION {
    ULONG HandleAttributes;
    ACCESS_MASK GrantedAccess;
} OBJECT_HANDLE_INFORMATION, *POBJECT_HANDLE_INFORMATION;

extern POBJECT_TYPE* PsThreadType;
extern POBJECT_TYPE* ExEventObjectType;
extern PEPROCESS PsInitialSystemProcess;

typedef VOID KSTART_ROUTINE(PVOID StartContext);
typedef KSTART_ROUTINE* PKSTART_ROUTINE;

/* ---- Routines: semantics as the C++ declarations in <kmlab/kernel/routines.hpp>
 * and <kmlab/kernel/thread.hpp> say ---- */

/* KMUTEX and mutants */
VOID KeInitializeMutex(PRKMUTEX Mutex, ULONG Level);
LONG KeReleaseMutex(PRKMUTEX Mutex, BOOLEAN Wait);
LONG KeReadStateMutex(PRKMUTEX Mutex);
VOID KeInitializeMutant(PRKMUTANT Mutant, BOOLEAN InitialOwner);
LONG KeReleaseMutant(PRKMUTANT Mutant, KPRIORITY Increment, BOOLEAN Abandon, BOOLEAN Wait);
LONG KeReadStateMutant(PRKMUTANT Mutant);

/* Events */
VOID KeInitializeEvent(PRKEVENT Event, EVENT_TYPE Type, BOOLEAN State);
LONG KeSetEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait);
LONG KeResetEvent(PRKEVENT Event);
VOID KeClearEvent(PRKEVENT Event);
LONG KePulseEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait);
LONG KeReadStateEvent(PRKEVENT Event);

/* Semaphores */
VOID KeInitializeSemaphore(PRKSEMAPHORE Semaphore, LONG Count, LONG Limit);
LONG KeReleaseSemaphore(PRKSEMAPHORE Semaphore, KPRIORITY Increment, LONG Adjustment, BOOLEAN Wait);
LONG KeReadStateSemaphore(PRKSEMAPHORE Semaphore);

/* Waits */
NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                               BOOLEAN Alertable, PLARGE_INTEGER Timeout);
NTSTATUS KeWaitForMutexObject(PVOID Mutex, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                              BOOLEAN Alertable, PLARGE_INTEGER Timeout);
NTSTATUS KeWaitForMultipleObjects(ULONG Count, PVOID Object[], WAIT_TYPE WaitType,
                                  KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                                  BOOLEAN Alertable, PLARGE_INTEGER Timeout,
                                  PKWAIT_BLOCK WaitBlockArray);
NTSTATUS KeDelayExecutionThread(KPROCESSOR_MODE WaitMode, BOOLEAN Alertable,
                                PLARGE_INTEGER Interval);

/* FAST_MUTEX */
VOID ExInitializeFastMutex(PFAST_MUTEX FastMutex);
VOID ExAcquireFastMutex(PFAST_MUTEX FastMutex);
BOOLEAN ExTryToAcquireFastMutex(PFAST_MUTEX FastMutex);
VOID ExReleaseFastMutex(PFAST_MUTEX FastMutex);
VOID ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex);
VOID ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex);
VOID ExEnterCriticalRegionAndAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex);
VOID ExReleaseFastMutexUnsafeAndLeaveCriticalRegion(PFAST_MUTEX FastMutex);

/* KGUARDED_MUTEX */
VOID KeInitializeGuardedMutex(PKGUARDED_MUTEX Mutex);
VOID KeAcquireGuardedMutex(PKGUARDED_MUTEX Mutex);
BOOLEAN KeTryToAcquireGuardedMutex(PKGUARDED_MUTEX Mutex);
VOID KeReleaseGuardedMutex(PKGUARDED_MUTEX Mutex);
VOID KeAcquireGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex);
VOID KeReleaseGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex);

/* Threads, IRQL and regions */
PKTHREAD KeGetCurrentThread(VOID);
PETHREAD PsGetCurrentThread(VOID);
BOOLEAN PsIsSystemThread(PETHREAD Thread);
KIRQL KeGetCurrentIrql(VOID);
KIRQL KfRaiseIrql(KIRQL NewIrql);
VOID KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql);
VOID KfLowerIrql(KIRQL NewIrql);
VOID KeLowerIrql(KIRQL NewIrql);
KIRQL KeRaiseIrqlToDpcLevel(VOID);
KIRQL KeRaiseIrqlToSynchLevel(VOID);
VOID KeEnterCriticalRegion(VOID);
VOID KeLeaveCriticalRegion(VOID);
VOID KeEnterGuardedRegion(VOID);
VOID KeLeaveGuardedRegion(VOID);
BOOLEAN KeAreApcsDisabled(VOID);
BOOLEAN KeAreAllApcsDisabled(VOID);

/* Priorities: reported and boosted, never acted on (Linux schedules) */
KPRIORITY KeQueryPriorityThread(PKTHREAD Thread);
KPRIORITY KeSetPriorityThread(PKTHREAD Thread, KPRIORITY Priority);

/* System threads and the object manager */
NTSTATUS PsCreateSystemThread(PHANDLE ThreadHandle, ULONG DesiredAccess,
                              POBJECT_ATTRIBUTES ObjectAttributes, HANDLE ProcessHandle,
                              PCLIENT_ID ClientId, PKSTART_ROUTINE StartRoutine,
                              PVOID StartContext);
NTSTATUS PsTerminateSystemThread(NTSTATUS ExitStatus);
NTSTATUS ObReferenceObjectByHandle(HANDLE Handle, ACCESS_MASK DesiredAccess,
                                   POBJECT_TYPE ObjectType, KPROCESSOR_MODE AccessMode,
                                   PVOID* Object, POBJECT_HANDLE_INFORMATION HandleInformation);
VOID ObReferenceObject(PVOID Object);
VOID ObDereferenceObject(PVOID Object);
VOID ObfReferenceObject(PVOID Object);
VOID ObfDereferenceObject(PVOID Object);
NTSTATUS ZwClose(HANDLE Handle);
NTSTATUS ObCloseHandle(HANDLE Handle, KPROCESSOR_MODE PreviousMode);
NTSTATUS ZwCreateEvent(PHANDLE EventHandle, ACCESS_MASK DesiredAccess,
                       POBJECT_ATTRIBUTES ObjectAttributes, EVENT_TYPE EventType,
                       BOOLEAN InitialState);
NTSTATUS ZwSetEvent(HANDLE EventHandle, PLONG PreviousState);
NTSTATUS ZwResetEvent(HANDLE EventHandle, PLONG PreviousState);
NTSTATUS ZwClearEvent(HANDLE EventHandle);
NTSTATUS ZwWaitForSingleObject(HANDLE Handle, BOOLEAN Alertable, PLARGE_INTEGER Timeout);

/* Pool and previous mode */
typedef enum _POOL_TYPE { NonPagedPool = 0, PagedPool = 1, NonPagedPoolNx = 512 } POOL_TYPE;
PVOID ExAllocatePoolWithTag(POOL_TYPE PoolType, size_t NumberOfBytes, ULONG Tag);
VOID ExFreePoolWithTag(PVOID P, ULONG Tag);
KPROCESSOR_MODE ExGetPreviousMode(VOID);
HANDLE PsGetCurrentThreadId(VOID);
HANDLE PsGetThreadId(PETHREAD Thread);

/* The process: one, PsInitialSystemProcess, with the Linux process id */
PEPROCESS IoGetCurrentProcess(VOID);
PEPROCESS PsGetCurrentProcess(VOID);
HANDLE PsGetCurrentProcessId(VOID);
HANDLE PsGetProcessId(PEPROCESS Process);

/* The address of the routine or exported variable of this header named by
 * SystemRoutineName, or NULL [ddi:mmgetsystemroutineaddress]. PASSIVE_LEVEL.
 * Names the WDK defines only as macros or inline functions (KeRaiseIrql,
 * ObReferenceObject, ExInitializeFastMutex) and kmlab's own Kmlab* routines
 * are not exports: NULL, as on Windows. */
PVOID MmGetSystemRoutineAddress(PUNICODE_STRING SystemRoutineName);

/* ---- kmlab: where bug checks go (see the top of this file) ---- */
typedef VOID (*KMLAB_BUGCHECK_HANDLER)(ULONG BugCheckCode, ULONG_PTR Parameter1,
                                       ULONG_PTR Parameter2, ULONG_PTR Parameter3,
                                       ULONG_PTR Parameter4);
/* Installs Handler (NULL restores the default, which prints the stop message
 * and aborts) for bug checks that reach C code; returns the previous one.
 * Process-wide. */
KMLAB_BUGCHECK_HANDLER KmlabSetBugCheckHandler(KMLAB_BUGCHECK_HANDLER Handler);

/* ---- kmlab: the build flavour (kmlab::set_flavor in C++) ----
 * Checked (the default): every rule bug-checks as a checked build with Driver
 * Verifier would. Free: the rules a free Windows build does not check (raising
 * IRQL to a lower level, ExAcquireFastMutexUnsafe outside a critical region,
 * ...) let the call go on. The environment variable KMLAB_FLAVOR=free or
 * checked sets the initial flavour. Process-wide; returns the previous one. */
typedef enum _KMLAB_FLAVOR { KmlabFlavorChecked = 0, KmlabFlavorFree = 1 } KMLAB_FLAVOR;
KMLAB_FLAVOR KmlabSetFlavor(KMLAB_FLAVOR Flavor);
KMLAB_FLAVOR KmlabGetFlavor(VOID);

#undef KMLAB_WDM_STATUS
#ifdef __cplusplus
}
#endif

#endif /* KMLAB_WDM_H */
