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
 * KTHREAD is opaque here, as in the WDK; <kmlab/ntddk.h> includes this header
 * and gives C code the emulated thread object's fields.
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

/* kmlab: under the schedule explorer (a program that links kmlab::explore,
 * which defines KMLAB_EXPLORE_ASSERTS for it), ASSERT, ASSERTMSG and NT_ASSERT
 * are a checked build's: a failed one goes to KmlabExploreAssert (below), a
 * violation inside KmlabExplore. Otherwise they are the free build's, as
 * <kmlab/nt/wdk_macros.h> defines them. */
#if defined(KMLAB_EXPLORE_ASSERTS) && KMLAB_EXPLORE_ASSERTS
#ifndef ASSERT
#define ASSERT(exp) ((exp) ? (void)0 : KmlabExploreAssert(#exp, __FILE__, __LINE__, NULL))
#endif
#ifndef ASSERTMSG
#define ASSERTMSG(msg, exp) ((exp) ? (void)0 : KmlabExploreAssert(#exp, __FILE__, __LINE__, (msg)))
#endif
#ifndef NT_ASSERT
#define NT_ASSERT(exp) ((exp) ? (void)0 : KmlabExploreAssert(#exp, __FILE__, __LINE__, NULL))
#endif
#endif

#include <kmlab/nt/wdk_macros.h>

#ifdef __cplusplus
extern "C" {
#define KMLAB_WDM_STATUS(v) static_cast<NTSTATUS>(v##u)
#define KMLAB_WDM_CAST(T, v) static_cast<T>(v)
#else
#define KMLAB_WDM_CAST(T, v) ((T)(v))
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

/* The rest of ntdef.h's and basetsd.h's scalar names [ros-ntbasedef]
 * (sdk/include/xdk/ntbasedef.h). LONG is 32 bits, as on Windows (LLP64):
 * the WDK's `long` would be 64 bits here. */
typedef int INT, *PINT;
typedef unsigned int UINT, *PUINT;
typedef double DOUBLE;
typedef UCHAR* PUCHAR;
typedef USHORT* PUSHORT;
typedef SHORT* PSHORT;
typedef SCHAR* PSCHAR;
typedef BOOLEAN* PBOOLEAN;
typedef LONGLONG* PLONGLONG;
typedef ULONGLONG *PULONGLONG, DWORDLONG, *PDWORDLONG;
typedef CHAR *PCHAR, *PCH, *LPCH, *PSTR, *LPSTR, *NPSTR, *PSZ;
typedef const CHAR *PCCH, *LPCCH, *PCSTR, *LPCSTR, *PCSZ;
typedef WCHAR *PWCHAR, *PWCH, *LPWCH, *PWSTR, *LPWSTR, *NWPSTR;
typedef const WCHAR *PCWCH, *LPCWCH, *LPCWSTR;
typedef CHAR CCHAR, *PCCHAR;
typedef SHORT CSHORT, *PCSHORT;
typedef ULONG CLONG, *PCLONG;
typedef ULONG LOGICAL, *PLOGICAL;
typedef NTSTATUS* PNTSTATUS;
typedef UCHAR FCHAR;
typedef USHORT FSHORT;
typedef ULONG FLONG;
typedef int8_t INT8, *PINT8;
typedef int16_t INT16, *PINT16;
typedef int32_t INT32, *PINT32;
typedef int64_t INT64, *PINT64;
typedef uint8_t UINT8, *PUINT8;
typedef uint16_t UINT16, *PUINT16;
typedef uint32_t UINT32, *PUINT32;
typedef uint64_t UINT64, *PUINT64;
typedef int32_t LONG32, *PLONG32;
typedef uint32_t ULONG32, *PULONG32, DWORD32, *PDWORD32;
typedef int64_t LONG64, *PLONG64;
typedef uint64_t ULONG64, *PULONG64, DWORD64, *PDWORD64;
typedef intptr_t INT_PTR, *PINT_PTR;
typedef uintptr_t UINT_PTR, *PUINT_PTR;
typedef LONG_PTR* PLONG_PTR;
typedef ULONG_PTR *PULONG_PTR, DWORD_PTR, *PDWORD_PTR;
typedef ULONG_PTR SIZE_T, *PSIZE_T;
typedef LONG_PTR SSIZE_T, *PSSIZE_T;
typedef ULONG_PTR KAFFINITY, *PKAFFINITY;

enum { FALSE = 0, TRUE = 1 };

/* With the WDK's anonymous struct too (LowPart, HighPart directly). */
typedef union _LARGE_INTEGER {
    struct {
        ULONG LowPart;
        LONG HighPart;
    };
    struct {
        ULONG LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;
typedef LARGE_INTEGER PHYSICAL_ADDRESS, *PPHYSICAL_ADDRESS;

typedef union _ULARGE_INTEGER {
    struct {
        ULONG LowPart;
        ULONG HighPart;
    };
    struct {
        ULONG LowPart;
        ULONG HighPart;
    } u;
    ULONGLONG QuadPart;
} ULARGE_INTEGER, *PULARGE_INTEGER;

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
    STATUS_MUTANT_LIMIT_EXCEEDED = KMLAB_WDM_STATUS(0xC0000191),
    STATUS_ACCESS_VIOLATION = KMLAB_WDM_STATUS(0xC0000005),
    STATUS_INVALID_CID = KMLAB_WDM_STATUS(0xC000000B),
    STATUS_INVALID_PARAMETER_MIX = KMLAB_WDM_STATUS(0xC0000030),
    STATUS_SUSPEND_COUNT_EXCEEDED = KMLAB_WDM_STATUS(0xC000004A),
    STATUS_THREAD_IS_TERMINATING = KMLAB_WDM_STATUS(0xC000004B),
    STATUS_DELETE_PENDING = KMLAB_WDM_STATUS(0xC0000056),
    STATUS_INVALID_PARAMETER_1 = KMLAB_WDM_STATUS(0xC00000EF),
    STATUS_INVALID_PARAMETER_2 = KMLAB_WDM_STATUS(0xC00000F0),
    STATUS_INVALID_PARAMETER_3 = KMLAB_WDM_STATUS(0xC00000F1),
    STATUS_POSSIBLE_DEADLOCK = KMLAB_WDM_STATUS(0xC0000194)
};

/* The WDK's NT_SUCCESS is a macro; a function keeps the C++ face's name free. */
static inline int NT_SUCCESS(NTSTATUS Status) {
    return Status >= 0;
}
/* The severity in the top two bits [ros-ntbasedef]. */
static inline int NT_INFORMATION(NTSTATUS Status) {
    return (KMLAB_WDM_CAST(ULONG, Status) >> 30) == 1;
}
static inline int NT_WARNING(NTSTATUS Status) {
    return (KMLAB_WDM_CAST(ULONG, Status) >> 30) == 2;
}
static inline int NT_ERROR(NTSTATUS Status) {
    return (KMLAB_WDM_CAST(ULONG, Status) >> 30) == 3;
}

/* ---- IRQL (amd64 values [ros-x64ke]) ---- */
enum {
    PASSIVE_LEVEL = 0,
    LOW_LEVEL = 0,
    APC_LEVEL = 1,
    DISPATCH_LEVEL = 2,
    CMCI_LEVEL = 5,
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
    TimerSynchronizationObject = 9,
    DpcObject = 19
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

/* ---- Lists, with the WDK's inline routines [ros-rtlfuncs] ----
 * decision, kmlab: without the integrity checks that Windows 8's WDK added
 * to RemoveEntryList and friends (FatalListEntryError), as a driver built with
 * NO_KERNEL_LIST_ENTRY_CHECKS has them: a corrupted list is the driver's own
 * memory, and the emulator's sanitizer builds find it. */
typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY* Flink;
    struct _LIST_ENTRY* Blink;
} LIST_ENTRY, *PLIST_ENTRY, *PRLIST_ENTRY;

typedef struct _SINGLE_LIST_ENTRY {
    struct _SINGLE_LIST_ENTRY* Next;
} SINGLE_LIST_ENTRY, *PSINGLE_LIST_ENTRY;

static inline VOID InitializeListHead(PLIST_ENTRY ListHead) {
    ListHead->Flink = ListHead->Blink = ListHead;
}
static inline BOOLEAN IsListEmpty(const LIST_ENTRY* ListHead) {
    return KMLAB_WDM_CAST(BOOLEAN, ListHead->Flink == ListHead);
}
static inline BOOLEAN RemoveEntryList(PLIST_ENTRY Entry) {
    PLIST_ENTRY Flink = Entry->Flink;
    PLIST_ENTRY Blink = Entry->Blink;
    Blink->Flink = Flink;
    Flink->Blink = Blink;
    return KMLAB_WDM_CAST(BOOLEAN, Flink == Blink);
}
static inline PLIST_ENTRY RemoveHeadList(PLIST_ENTRY ListHead) {
    PLIST_ENTRY Entry = ListHead->Flink;
    PLIST_ENTRY Flink = Entry->Flink;
    ListHead->Flink = Flink;
    Flink->Blink = ListHead;
    return Entry;
}
static inline PLIST_ENTRY RemoveTailList(PLIST_ENTRY ListHead) {
    PLIST_ENTRY Entry = ListHead->Blink;
    PLIST_ENTRY Blink = Entry->Blink;
    ListHead->Blink = Blink;
    Blink->Flink = ListHead;
    return Entry;
}
static inline VOID InsertTailList(PLIST_ENTRY ListHead, PLIST_ENTRY Entry) {
    PLIST_ENTRY Blink = ListHead->Blink;
    Entry->Flink = ListHead;
    Entry->Blink = Blink;
    Blink->Flink = Entry;
    ListHead->Blink = Entry;
}
static inline VOID InsertHeadList(PLIST_ENTRY ListHead, PLIST_ENTRY Entry) {
    PLIST_ENTRY Flink = ListHead->Flink;
    Entry->Flink = Flink;
    Entry->Blink = ListHead;
    Flink->Blink = Entry;
    ListHead->Flink = Entry;
}
/* Links the list that begins at ListToAppend (a list without a head) in
 * before ListHead, as the WDK's AppendTailList does. */
static inline VOID AppendTailList(PLIST_ENTRY ListHead, PLIST_ENTRY ListToAppend) {
    PLIST_ENTRY ListEnd = ListHead->Blink;
    ListHead->Blink->Flink = ListToAppend;
    ListHead->Blink = ListToAppend->Blink;
    ListToAppend->Blink->Flink = ListHead;
    ListToAppend->Blink = ListEnd;
}
static inline PSINGLE_LIST_ENTRY PopEntryList(PSINGLE_LIST_ENTRY ListHead) {
    PSINGLE_LIST_ENTRY FirstEntry = ListHead->Next;
    if (FirstEntry != NULL) ListHead->Next = FirstEntry->Next;
    return FirstEntry;
}
static inline VOID PushEntryList(PSINGLE_LIST_ENTRY ListHead, PSINGLE_LIST_ENTRY Entry) {
    Entry->Next = ListHead->Next;
    ListHead->Next = Entry;
}

/* ---- The Interlocked family: compiler intrinsics in the WDK, full
 * barriers on amd64 [ros-interlocked]; here the same over gcc's __atomic
 * builtins (sequentially consistent). Inline functions: no kernel export. */
static inline LONG InterlockedIncrement(LONG volatile* Addend) {
    return __atomic_add_fetch(Addend, 1, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedDecrement(LONG volatile* Addend) {
    return __atomic_sub_fetch(Addend, 1, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedExchange(LONG volatile* Target, LONG Value) {
    return __atomic_exchange_n(Target, Value, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedExchangeAdd(LONG volatile* Addend, LONG Value) {
    return __atomic_fetch_add(Addend, Value, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedCompareExchange(LONG volatile* Destination, LONG Exchange,
                                              LONG Comparand) {
    __atomic_compare_exchange_n(Destination, &Comparand, Exchange, 0, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
    return Comparand;
}
static inline LONG InterlockedOr(LONG volatile* Destination, LONG Value) {
    return __atomic_fetch_or(Destination, Value, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedAnd(LONG volatile* Destination, LONG Value) {
    return __atomic_fetch_and(Destination, Value, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedXor(LONG volatile* Destination, LONG Value) {
    return __atomic_fetch_xor(Destination, Value, __ATOMIC_SEQ_CST);
}
static inline LONG64 InterlockedIncrement64(LONG64 volatile* Addend) {
    return __atomic_add_fetch(Addend, 1, __ATOMIC_SEQ_CST);
}
static inline LONG64 InterlockedDecrement64(LONG64 volatile* Addend) {
    return __atomic_sub_fetch(Addend, 1, __ATOMIC_SEQ_CST);
}
static inline LONG64 InterlockedExchangeAdd64(LONG64 volatile* Addend, LONG64 Value) {
    return __atomic_fetch_add(Addend, Value, __ATOMIC_SEQ_CST);
}
static inline LONG64 InterlockedCompareExchange64(LONG64 volatile* Destination, LONG64 Exchange,
                                                  LONG64 Comparand) {
    __atomic_compare_exchange_n(Destination, &Comparand, Exchange, 0, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
    return Comparand;
}
static inline PVOID InterlockedExchangePointer(PVOID volatile* Target, PVOID Value) {
    return __atomic_exchange_n(Target, Value, __ATOMIC_SEQ_CST);
}
static inline PVOID InterlockedCompareExchangePointer(PVOID volatile* Destination, PVOID Exchange,
                                                      PVOID Comparand) {
    __atomic_compare_exchange_n(Destination, &Comparand, Exchange, 0, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
    return Comparand;
}

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

/* ---- Spin locks: <kmlab/kernel/spin_lock.hpp> says what each does ----
 * The lock word: 0 when free; the in-stack queue entries as the WDK declares
 * them [ros-xket]. */
typedef ULONG_PTR KSPIN_LOCK, *PKSPIN_LOCK;
typedef struct _KSPIN_LOCK_QUEUE {
    struct _KSPIN_LOCK_QUEUE* volatile Next;
    PKSPIN_LOCK volatile Lock;
} KSPIN_LOCK_QUEUE, *PKSPIN_LOCK_QUEUE;
typedef struct _KLOCK_QUEUE_HANDLE {
    KSPIN_LOCK_QUEUE LockQueue;
    KIRQL OldIrql;
} KLOCK_QUEUE_HANDLE, *PKLOCK_QUEUE_HANDLE;

/* A FORCEINLINE in the amd64 WDK, and a kernel export (spin_lock.hpp). */
VOID KeInitializeSpinLock(PKSPIN_LOCK SpinLock);
KIRQL KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock);
/* The amd64 WDK's macro `*(OldIrql) = KeAcquireSpinLockRaiseToDpc(SpinLock)`,
 * as an inline function so that the C++ face's name stays free. */
static inline VOID KeAcquireSpinLock(PKSPIN_LOCK SpinLock, PKIRQL OldIrql) {
    *OldIrql = KeAcquireSpinLockRaiseToDpc(SpinLock);
}
VOID KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql);
VOID KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock);
VOID KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock);
BOOLEAN KeTryToAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock);
BOOLEAN KeTestSpinLock(PKSPIN_LOCK SpinLock);
KIRQL KeAcquireSpinLockForDpc(PKSPIN_LOCK SpinLock);
VOID KeReleaseSpinLockForDpc(PKSPIN_LOCK SpinLock, KIRQL OldIrql);
VOID KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle);
VOID KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE LockHandle);
VOID KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle);
VOID KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE LockHandle);
VOID KeAcquireInStackQueuedSpinLockForDpc(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle);
VOID KeReleaseInStackQueuedSpinLockForDpc(PKLOCK_QUEUE_HANDLE LockHandle);

/* ---- ERESOURCE: <kmlab/kernel/resource.hpp> says what each does ----
 * The WDK's amd64 layout [ros-xex]. */
typedef ULONG_PTR ERESOURCE_THREAD, *PERESOURCE_THREAD;
typedef struct _OWNER_ENTRY {
    ERESOURCE_THREAD OwnerThread;
    union {
        struct {
            ULONG IoPriorityBoosted : 1;
            ULONG OwnerReferenced : 1;
            ULONG OwnerCount : 30;
        };
        ULONG TableSize;
    };
} OWNER_ENTRY, *POWNER_ENTRY;
typedef struct _ERESOURCE {
    LIST_ENTRY SystemResourcesList;
    POWNER_ENTRY OwnerTable;
    SHORT ActiveCount;
    USHORT Flag;
    PKSEMAPHORE SharedWaiters;
    PKEVENT ExclusiveWaiters;
    OWNER_ENTRY OwnerEntry;
    ULONG ActiveEntries;
    ULONG ContentionCount;
    ULONG NumberOfSharedWaiters;
    ULONG NumberOfExclusiveWaiters;
    PVOID Reserved2;
    union {
        PVOID Address;
        ULONG_PTR CreatorBackTraceIndex;
    };
    KSPIN_LOCK SpinLock;
} ERESOURCE, *PERESOURCE;
enum {
    ResourceNeverExclusive = 0x0010,
    ResourceReleaseByOtherThread = 0x0020,
    ResourceOwnedExclusive = 0x0080
};

NTSTATUS ExInitializeResourceLite(PERESOURCE Resource);
NTSTATUS ExReinitializeResourceLite(PERESOURCE Resource);
NTSTATUS ExDeleteResourceLite(PERESOURCE Resource);
BOOLEAN ExAcquireResourceExclusiveLite(PERESOURCE Resource, BOOLEAN Wait);
BOOLEAN ExAcquireResourceSharedLite(PERESOURCE Resource, BOOLEAN Wait);
BOOLEAN ExAcquireSharedStarveExclusive(PERESOURCE Resource, BOOLEAN Wait);
BOOLEAN ExAcquireSharedWaitForExclusive(PERESOURCE Resource, BOOLEAN Wait);
PVOID ExEnterCriticalRegionAndAcquireResourceExclusive(PERESOURCE Resource);
PVOID ExEnterCriticalRegionAndAcquireResourceShared(PERESOURCE Resource);
PVOID ExEnterCriticalRegionAndAcquireSharedWaitForExclusive(PERESOURCE Resource);
VOID ExConvertExclusiveToSharedLite(PERESOURCE Resource);
VOID ExReleaseResourceLite(PERESOURCE Resource);
VOID ExReleaseResourceForThreadLite(PERESOURCE Resource, ERESOURCE_THREAD ResourceThreadId);
VOID ExReleaseResourceAndLeaveCriticalRegion(PERESOURCE Resource);
VOID ExSetResourceOwnerPointer(PERESOURCE Resource, PVOID OwnerPointer);
/* A macro in the WDK (the current thread as an integer); a routine here. */
ERESOURCE_THREAD ExGetCurrentResourceThread(VOID);
BOOLEAN ExIsResourceAcquiredExclusiveLite(PERESOURCE Resource);
ULONG ExIsResourceAcquiredSharedLite(PERESOURCE Resource);
ULONG ExGetExclusiveWaiterCount(PERESOURCE Resource);
ULONG ExGetSharedWaiterCount(PERESOURCE Resource);
/* wdm.h's macros over the Lite routines. */
static inline VOID ExReleaseResource(PERESOURCE Resource) {
    ExReleaseResourceLite(Resource);
}
static inline ULONG ExIsResourceAcquiredLite(PERESOURCE Resource) {
    return ExIsResourceAcquiredSharedLite(Resource);
}

/* ---- EX_PUSH_LOCK: <kmlab/kernel/push_lock.hpp> says what each does ----
 * decision, kmlab: a typedef where the WDK has `#define EX_PUSH_LOCK
 * ULONG_PTR`: the same type, without a macro that would rewrite the C++
 * face's kmlab::nt::EX_PUSH_LOCK. */
typedef ULONG_PTR EX_PUSH_LOCK, *PEX_PUSH_LOCK;
enum { EX_DEFAULT_PUSH_LOCK_FLAGS = 0 };
VOID ExInitializePushLock(PEX_PUSH_LOCK PushLock);
VOID ExAcquirePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
VOID ExAcquirePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
VOID ExReleasePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
VOID ExReleasePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
VOID ExReleasePushLockEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
BOOLEAN ExTryAcquirePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
BOOLEAN ExTryAcquirePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
/* wdm.h's macros over the ...Ex routines. */
static inline VOID ExAcquirePushLockExclusive(PEX_PUSH_LOCK Lock) {
    ExAcquirePushLockExclusiveEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
static inline VOID ExAcquirePushLockShared(PEX_PUSH_LOCK Lock) {
    ExAcquirePushLockSharedEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
static inline VOID ExReleasePushLockExclusive(PEX_PUSH_LOCK Lock) {
    ExReleasePushLockExclusiveEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
static inline VOID ExReleasePushLockShared(PEX_PUSH_LOCK Lock) {
    ExReleasePushLockSharedEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
static inline VOID ExReleasePushLock(PEX_PUSH_LOCK Lock) {
    ExReleasePushLockEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
static inline BOOLEAN ExTryAcquirePushLockExclusive(PEX_PUSH_LOCK Lock) {
    return ExTryAcquirePushLockExclusiveEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
static inline BOOLEAN ExTryAcquirePushLockShared(PEX_PUSH_LOCK Lock) {
    return ExTryAcquirePushLockSharedEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
/* fltkernel.h's (exports of FltMgr.sys, not of the kernel). */
VOID FltInitializePushLock(PEX_PUSH_LOCK PushLock);
VOID FltDeletePushLock(PEX_PUSH_LOCK PushLock);
VOID FltAcquirePushLockExclusive(PEX_PUSH_LOCK PushLock);
VOID FltAcquirePushLockShared(PEX_PUSH_LOCK PushLock);
VOID FltReleasePushLock(PEX_PUSH_LOCK PushLock);

/* ---- EX_SPIN_LOCK: <kmlab/kernel/ex_spin_lock.hpp> says what each does ---- */
typedef volatile LONG EX_SPIN_LOCK, *PEX_SPIN_LOCK;
KIRQL ExAcquireSpinLockShared(PEX_SPIN_LOCK SpinLock);
KIRQL ExAcquireSpinLockExclusive(PEX_SPIN_LOCK SpinLock);
VOID ExReleaseSpinLockShared(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql);
VOID ExReleaseSpinLockExclusive(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql);
VOID ExAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock);
VOID ExAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock);
VOID ExReleaseSpinLockSharedFromDpcLevel(PEX_SPIN_LOCK SpinLock);
VOID ExReleaseSpinLockExclusiveFromDpcLevel(PEX_SPIN_LOCK SpinLock);
LOGICAL ExTryAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock);
LOGICAL ExTryAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock);
LOGICAL ExTryConvertSharedSpinLockExclusive(PEX_SPIN_LOCK SpinLock);

/* ---- KTIMER and KDPC: <kmlab/kernel/timer.hpp> says what each does ----
 * The Win7 / ReactOS amd64 layouts [ros-xket]. A DPC's routine runs at
 * DISPATCH_LEVEL on the emulator's timer service thread. */
struct _KDPC;
typedef VOID KDEFERRED_ROUTINE(struct _KDPC* Dpc, PVOID DeferredContext, PVOID SystemArgument1,
                               PVOID SystemArgument2);
typedef KDEFERRED_ROUTINE* PKDEFERRED_ROUTINE;
typedef enum _KDPC_IMPORTANCE {
    LowImportance = 0,
    MediumImportance = 1,
    HighImportance = 2
} KDPC_IMPORTANCE;
typedef struct _KDPC {
    UCHAR Type;
    UCHAR Importance;
    volatile USHORT Number;
    LIST_ENTRY DpcListEntry;
    PKDEFERRED_ROUTINE DeferredRoutine;
    PVOID DeferredContext;
    PVOID SystemArgument1;
    PVOID SystemArgument2;
    PVOID volatile DpcData;
} KDPC, *PKDPC, *PRKDPC;
typedef enum _TIMER_TYPE { NotificationTimer = 0, SynchronizationTimer = 1 } TIMER_TYPE;
typedef struct _KTIMER {
    DISPATCHER_HEADER Header;
    ULARGE_INTEGER DueTime;
    LIST_ENTRY TimerListEntry;
    PKDPC Dpc;
    ULONG Processor;
    ULONG Period;
} KTIMER, *PKTIMER, *PRKTIMER;

VOID KeInitializeDpc(PRKDPC Dpc, PKDEFERRED_ROUTINE DeferredRoutine, PVOID DeferredContext);
VOID KeInitializeTimer(PKTIMER Timer);
VOID KeInitializeTimerEx(PKTIMER Timer, TIMER_TYPE Type);
BOOLEAN KeSetTimer(PKTIMER Timer, LARGE_INTEGER DueTime, PKDPC Dpc);
BOOLEAN KeSetTimerEx(PKTIMER Timer, LARGE_INTEGER DueTime, LONG Period, PKDPC Dpc);
BOOLEAN KeCancelTimer(PKTIMER Timer);
BOOLEAN KeReadStateTimer(PKTIMER Timer);
/* Returns once the DPCs queued before the call have run (timer.hpp).
 * PASSIVE_LEVEL. */
VOID KeFlushQueuedDpcs(VOID);
/* 100 ns units since 1601-01-01. A macro over KUSER_SHARED_DATA in the
 * amd64 WDK (no kernel export there); a routine here. */
VOID KeQuerySystemTime(PLARGE_INTEGER CurrentTime);

/* The address of the routine or exported variable of this header named by
 * SystemRoutineName, or NULL [ddi:mmgetsystemroutineaddress]. PASSIVE_LEVEL.
 * Names the WDK defines only as macros or inline functions (KeRaiseIrql,
 * ObReferenceObject, ExInitializeFastMutex; on amd64 KeQuerySystemTime and
 * ExGetCurrentResourceThread), the filter manager's Flt*
 * routines and kmlab's own Kmlab* routines are not kernel exports: NULL, as on
 * Windows. */
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
 * Checked (the default): every rule a checked build of Windows enforces
 * bug-checks. Free: the rules a free Windows build does not check (raising
 * IRQL to a lower level, ExAcquireFastMutexUnsafe outside a critical region,
 * ...) let the call go on. Verifier: checked plus Driver Verifier's rules, its
 * lock checks and its Deadlock Detection (a lock-order cycle bug-checks 0xC4
 * with parameter 1 = 0x1001 through the bug-check handler; kmlab/kernel/
 * verifier.hpp). The environment variable KMLAB_FLAVOR=free, checked or
 * verifier sets the initial flavour. Process-wide; returns the previous one. */
typedef enum _KMLAB_FLAVOR {
    KmlabFlavorChecked = 0,
    KmlabFlavorFree = 1,
    KmlabFlavorVerifier = 2
} KMLAB_FLAVOR;
KMLAB_FLAVOR KmlabSetFlavor(KMLAB_FLAVOR Flavor);
KMLAB_FLAVOR KmlabGetFlavor(VOID);

/* ---- kmlab: the schedule explorer (link kmlab::explore; explore::run in C++) ----
 * KmlabExplore runs Routine(Context) as model thread T0 once per schedule,
 * every schedule within the preemption bound (or a seeded random sample),
 * with the whole emulated kernel under the model: PsCreateSystemThread starts
 * a model thread, a timeout or a delay ends only as a scheduling choice, a bug
 * check, a failed ASSERT or KmlabExploreCheck, a deadlock or a use of freed
 * pool is a violation. The environment overrides Options: KMLAB_MODEL_REPLAY,
 * KMLAB_MODEL_BOUND, KMLAB_MODEL_RANDOM, KMLAB_MODEL_SEED, KMLAB_MODEL_VERBOSE.
 * Returns STATUS_SUCCESS when the search ran (Result says what it found),
 * STATUS_INVALID_PARAMETER for a NULL Routine or Result or an environment
 * value that is not a number, STATUS_UNSUCCESSFUL when called inside a run.
 * Result's strings stay valid until the next KmlabExplore. */
typedef struct _KMLAB_EXPLORE_OPTIONS {
    ULONG PreemptionBound; /* 0: the default, 2 */
    ULONG RandomSchedules; /* 0: exhaustive; n: n random (PCT) runs from Seed */
    ULONGLONG Seed;        /* 0: the default, 1 */
    ULONG MaxSchedules;    /* 0: no limit (a search stopped early is not Complete) */
    BOOLEAN Tso;           /* x86-TSO memory instead of sequentially consistent */
    BOOLEAN Verbose;       /* traces list raw memory operations too */
    PCSTR Replay;          /* NULL, or a Result's Schedule: run that one alone */
} KMLAB_EXPLORE_OPTIONS;
typedef struct _KMLAB_EXPLORE_RESULT {
    LONGLONG Schedules; /* runs made */
    BOOLEAN Complete;   /* the exhaustive search finished within the bound */
    BOOLEAN Violation;
    PCSTR Message;  /* the first violation, "" if none */
    PCSTR Schedule; /* the schedule that replays it (Options.Replay, KMLAB_MODEL_REPLAY) */
    PCSTR Trace;    /* its end, one kernel-level operation a line */
} KMLAB_EXPLORE_RESULT, *PKMLAB_EXPLORE_RESULT;
NTSTATUS KmlabExplore(PKSTART_ROUTINE Routine, PVOID Context, const KMLAB_EXPLORE_OPTIONS* Options,
                      PKMLAB_EXPLORE_RESULT Result);
/* Inside KmlabExplore: unless Condition, a violation naming Message. Outside
 * one, a failed check is a checked build's failed assertion with no debugger
 * attached: bug check 0x1E, KMODE_EXCEPTION_NOT_HANDLED, with
 * STATUS_BREAKPOINT, to the bug-check handler. */
VOID KmlabExploreCheck(BOOLEAN Condition, PCSTR Message);
/* What a failed ASSERT / ASSERTMSG / NT_ASSERT calls (see the top of this
 * header); Message may be NULL. As KmlabExploreCheck(FALSE, ...). */
VOID KmlabExploreAssert(PCSTR Expression, PCSTR File, ULONG Line, PCSTR Message);

#undef KMLAB_WDM_STATUS
#undef KMLAB_WDM_CAST
#ifdef __cplusplus
}
#endif

#endif /* KMLAB_WDM_H */
