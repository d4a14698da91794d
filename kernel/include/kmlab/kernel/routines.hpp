// The NT dispatcher routines with the WDK's signatures: KMUTEX and mutants,
// events, semaphores, waits, alerts and user APCs, fast and guarded mutexes,
// and system threads with the Ob/Zw routines that join them.
//
// Misuse answers as the kernel does (SEMANTICS.md): routines that raise throw
// kmlab::NtException with the status; bug checks throw kmlab::BugCheck with
// the code and parameters. IRQL ceilings follow SEMANTICS.md 5.4; a routine
// called above its ceiling bug checks IRQL_NOT_LESS_OR_EQUAL (0xA) with
// parameters (object, IRQL, 0, 0) unless a more specific check is named.
#pragma once

#include <cstddef>
#include <cwchar>

#include <kmlab/kernel/objects.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/kernel/time.hpp>

namespace kmlab::nt {

// ---- KMUTEX and mutants (SEMANTICS.md 1) ----
void KeInitializeMutex(PRKMUTEX Mutex, ULONG Level);
// Raises STATUS_MUTANT_NOT_OWNED (or STATUS_ABANDONED for an abandoned mutant)
// when the caller is not the owner; nothing is modified then. Returns the
// previous SignalState: 0 means the mutex is now free and signaled.
LONG KeReleaseMutex(PRKMUTEX Mutex, BOOLEAN Wait);
LONG KeReadStateMutex(PRKMUTEX Mutex);
// Reserved for system use [ddi:keinitializemutant]: ApcDisable = 0, and an
// owned mutant is abandoned (not bug-checked) when its owner exits.
void KeInitializeMutant(PRKMUTANT Mutant, BOOLEAN InitialOwner);
LONG KeReleaseMutant(PRKMUTANT Mutant, KPRIORITY Increment, BOOLEAN Abandon, BOOLEAN Wait);
LONG KeReadStateMutant(PRKMUTANT Mutant);

// ---- Events (SEMANTICS.md 4.2) ----
void KeInitializeEvent(PRKEVENT Event, EVENT_TYPE Type, BOOLEAN State);
LONG KeSetEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait);
LONG KeResetEvent(PRKEVENT Event);
void KeClearEvent(PRKEVENT Event);
LONG KePulseEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait);
LONG KeReadStateEvent(PRKEVENT Event);

// ---- Semaphores (SEMANTICS.md 4.3) ----
void KeInitializeSemaphore(PRKSEMAPHORE Semaphore, LONG Count, LONG Limit);
// Raises STATUS_SEMAPHORE_LIMIT_EXCEEDED when Count + Adjustment would pass
// the limit, overflow, or decrease the count (a negative Adjustment).
LONG KeReleaseSemaphore(PRKSEMAPHORE Semaphore, KPRIORITY Increment, LONG Adjustment, BOOLEAN Wait);
LONG KeReadStateSemaphore(PRKSEMAPHORE Semaphore);

// ---- Waits (SEMANTICS.md 4.4) ----
// Waiting above DISPATCH_LEVEL, or at DISPATCH_LEVEL with a timeout that is
// not zero, bug checks DRIVER_VERIFIER_DETECTED_VIOLATION (0xC4) subcode 0x3B
// with parameters (0x3B, IRQL, object, timeout pointer).
NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                               BOOLEAN Alertable, PLARGE_INTEGER Timeout);
NTSTATUS KeWaitForMutexObject(PVOID Mutex, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                              BOOLEAN Alertable, PLARGE_INTEGER Timeout);
// Count > 64, or Count > 3 without a WaitBlockArray, bug checks
// MAXIMUM_WAIT_OBJECTS_EXCEEDED (0xC) [ddi:kewaitformultipleobjects].
NTSTATUS KeWaitForMultipleObjects(ULONG Count, PVOID Object[], WAIT_TYPE WaitType,
                                  KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                                  BOOLEAN Alertable, PLARGE_INTEGER Timeout,
                                  PKWAIT_BLOCK WaitBlockArray);
NTSTATUS KeDelayExecutionThread(KPROCESSOR_MODE WaitMode, BOOLEAN Alertable,
                                PLARGE_INTEGER Interval);

// ---- Alerts and user APCs ----
// Alerts `Thread` for AlertMode: an alertable wait of a matching mode ends with
// STATUS_ALERTED; otherwise the alert stays pending. Returns the previous
// alerted state.
BOOLEAN KeAlertThread(PKTHREAD Thread, KPROCESSOR_MODE AlertMode);
// Returns and clears the caller's alert for AlertMode.
BOOLEAN KeTestAlertThread(KPROCESSOR_MODE AlertMode);
using PKNORMAL_ROUTINE = void (*)(PVOID NormalContext, PVOID SystemArgument1,
                                  PVOID SystemArgument2);
// Queues a user-mode APC to `Thread` (the emulator's counterpart of
// KeInitializeApc + KeInsertQueueApc for a UserMode APC). An alertable
// UserMode wait of that thread ends with STATUS_USER_APC, and the thread runs
// its queued routines, in order, just before that wait returns.
BOOLEAN KeInsertQueueUserApc(PKTHREAD Thread, PKNORMAL_ROUTINE NormalRoutine, PVOID NormalContext,
                             PVOID SystemArgument1, PVOID SystemArgument2);

// ---- Priorities ----
// What the emulator keeps of scheduling: each thread's Priority and
// BasePriority (8 at creation [kmt-KeEvent]), and the boost a satisfied wait
// gives it. The increment a KeSetEvent / KePulseEvent / KeReleaseSemaphore /
// KeReleaseMutant caller passes (KeReleaseMutex: MUTANT_INCREMENT; an alert:
// 2) raises a woken thread below the real-time range to
// min(BasePriority + Increment, 15) when that is higher than its priority
// [ros-thrdschd][kmt-KeEvent]; a wait that times out is unwaited with 0. The
// increment is truncated to a SCHAR as the kernel keeps it; a negative one
// that readies a thread below the real-time range is, in the checked flavour,
// the kernel's failed ASSERT: KMODE_EXCEPTION_NOT_HANDLED (STATUS_BREAKPOINT),
// raised once the routine has done its work (rules.hpp
// check_unwait_increment). Linux schedules the threads: a priority is
// reported, never acted on, and a boost does not decay (no quantum ends).
// IRQL <= DISPATCH_LEVEL [ddi:kequeryprioritythread].
KPRIORITY KeQueryPriorityThread(PKTHREAD Thread);
// Sets Priority (not BasePriority) and returns the previous one; 0 becomes 1
// for a thread whose base is not 0 [ros-thrd]. Outside LOW_PRIORITY ..
// HIGH_PRIORITY: KMODE_EXCEPTION_NOT_HANDLED (STATUS_BREAKPOINT, 0, 0, 0), a
// checked kernel's failed ASSERT. IRQL <= DISPATCH_LEVEL
// [ddi:kesetprioritythread].
KPRIORITY KeSetPriorityThread(PKTHREAD Thread, KPRIORITY Priority);

// ---- FAST_MUTEX (SEMANTICS.md 2) ----
// Acquire above APC_LEVEL: 0xC4/0x33; release at IRQL != APC_LEVEL: 0xC4/0x34;
// Unsafe acquire/release at IRQL above APC_LEVEL, or below it outside a
// critical or guarded region: 0xC4/0x39 and 0xC4/0x3A. Parameters
// (subcode, IRQL, mutex, 0). Acquiring a fast mutex the caller already owns
// bug checks MUTEX_ALREADY_OWNED (0xBF: mutex, thread) instead of deadlocking;
// releasing one the caller does not own bug checks THREAD_NOT_MUTEX_OWNER
// (0x11: mutex, owner, caller, 0) where a free build would corrupt Count.
// The free flavour (kmlab::set_flavor) drops the IRQL checks a free build
// has only as ASSERTs: the safe routines then run above APC_LEVEL (the
// acquire sets APC_LEVEL and saves the IRQL it found in OldIrql), the Unsafe
// ones outside a region; the ownership checks stay in both flavours.
// ExAcquireFastMutex and ExReleaseFastMutex, KeAcquireGuardedMutex and
// KeReleaseGuardedMutex are inline (kmlab/kernel/fast_mutex_inline.hpp,
// included below): their uncontended paths over the lock bit, every other
// case out of line.
void ExInitializeFastMutex(PFAST_MUTEX FastMutex);
inline void ExAcquireFastMutex(PFAST_MUTEX FastMutex);
BOOLEAN ExTryToAcquireFastMutex(PFAST_MUTEX FastMutex);
inline void ExReleaseFastMutex(PFAST_MUTEX FastMutex);
void ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex);
void ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex);
// KeEnterCriticalRegion + ExAcquireFastMutexUnsafe, and the reverse, as one
// call [ddi:exentercriticalregionandacquirefastmutexunsafe][kmt-ExFastMutex].
void ExEnterCriticalRegionAndAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex);
void ExReleaseFastMutexUnsafeAndLeaveCriticalRegion(PFAST_MUTEX FastMutex);

// ---- KGUARDED_MUTEX (SEMANTICS.md 3): guarded region, IRQL unchanged ----
// Above APC_LEVEL: IRQL_NOT_LESS_OR_EQUAL (0xA), in the checked flavour only
// (a free build ASSERTs [ros-gmutex]). In the free flavour an acquire that
// would block above APC_LEVEL bug checks 0xC4/0x3B first, as a wait there.
void KeInitializeGuardedMutex(PKGUARDED_MUTEX Mutex);
inline void KeAcquireGuardedMutex(PKGUARDED_MUTEX Mutex);
BOOLEAN KeTryToAcquireGuardedMutex(PKGUARDED_MUTEX Mutex);
inline void KeReleaseGuardedMutex(PKGUARDED_MUTEX Mutex);
void KeAcquireGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex);
void KeReleaseGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex);

// ---- System threads and the object manager (SEMANTICS.md 4.5) ----
struct UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    wchar_t* Buffer;
};
using PUNICODE_STRING = UNICODE_STRING*;
using PCUNICODE_STRING = const UNICODE_STRING*;
using PCWSTR = const wchar_t*;
// Lengths in bytes, without the terminator; a null source gives an empty
// string [ddi:rtlinitunicodestring]; a string too long for a USHORT length is
// clamped, not wrapped [ros-rtl]. WCHAR is the platform's wchar_t (4 bytes on
// Linux, 2 on Windows): code that computes lengths with sizeof(WCHAR) agrees.
inline void RtlInitUnicodeString(PUNICODE_STRING DestinationString, PCWSTR SourceString) {
    constexpr std::size_t max_length = (0xFFFFu & ~(sizeof(wchar_t) - 1)) - sizeof(wchar_t);
    std::size_t length = 0;
    if (SourceString != nullptr) {
        length = std::wcslen(SourceString) * sizeof(wchar_t);
        if (length > max_length) length = max_length;
    }
    DestinationString->Length = static_cast<USHORT>(length);
    DestinationString->MaximumLength =
        static_cast<USHORT>(SourceString == nullptr ? 0 : length + sizeof(wchar_t));
    DestinationString->Buffer = const_cast<wchar_t*>(SourceString);
}
struct OBJECT_ATTRIBUTES {
    ULONG Length;
    HANDLE RootDirectory;
    PUNICODE_STRING ObjectName;
    ULONG Attributes;
    PVOID SecurityDescriptor;
    PVOID SecurityQualityOfService;
};
using POBJECT_ATTRIBUTES = OBJECT_ATTRIBUTES*;
inline void InitializeObjectAttributes(POBJECT_ATTRIBUTES p, PUNICODE_STRING n, ULONG a, HANDLE r,
                                       PVOID s) {
    p->Length = sizeof(OBJECT_ATTRIBUTES);
    p->RootDirectory = r;
    p->Attributes = a;
    p->ObjectName = n;
    p->SecurityDescriptor = s;
    p->SecurityQualityOfService = nullptr;
}
struct CLIENT_ID {
    HANDLE UniqueProcess;
    HANDLE UniqueThread;
};
using PCLIENT_ID = CLIENT_ID*;
struct OBJECT_TYPE {
    const char* Name;
};
using POBJECT_TYPE = OBJECT_TYPE*;
struct OBJECT_HANDLE_INFORMATION {
    ULONG HandleAttributes;
    ACCESS_MASK GrantedAccess;
};
using POBJECT_HANDLE_INFORMATION = OBJECT_HANDLE_INFORMATION*;
extern POBJECT_TYPE* PsThreadType;
extern POBJECT_TYPE* ExEventObjectType;

using KSTART_ROUTINE = void(PVOID StartContext);
using PKSTART_ROUTINE = KSTART_ROUTINE*;

// The new thread runs at PASSIVE_LEVEL inside a critical region
// [ddi:pscreatesystemthread]. Its thread object signals when it exits, by
// PsTerminateSystemThread or by returning. An NtException or BugCheck that
// escapes the start routine is reported, as the kernel would, through the
// bug-check handler: SYSTEM_THREAD_EXCEPTION_NOT_HANDLED (0x7E: status, 0, 0, 0)
// or the bug check itself.
NTSTATUS PsCreateSystemThread(PHANDLE ThreadHandle, ULONG DesiredAccess,
                              POBJECT_ATTRIBUTES ObjectAttributes, HANDLE ProcessHandle,
                              PCLIENT_ID ClientId, PKSTART_ROUTINE StartRoutine,
                              PVOID StartContext);
// Does not return for a system thread (it unwinds the thread's stack as a C++
// exception the thread's start-up code catches: do not swallow it with
// catch (...)). Returns STATUS_INVALID_PARAMETER for other threads [ros-kill].
NTSTATUS PsTerminateSystemThread(NTSTATUS ExitStatus);
// A thread or event handle: *Object is the object, with a reference the
// caller drops with ObDereferenceObject; on failure *Object is NULL
// [ros-obref]. Every handle is a kernel handle, which an AccessMode of
// UserMode cannot name: STATUS_INVALID_HANDLE.
NTSTATUS ObReferenceObjectByHandle(HANDLE Handle, ACCESS_MASK DesiredAccess,
                                   POBJECT_TYPE ObjectType, KPROCESSOR_MODE AccessMode,
                                   PVOID* Object, POBJECT_HANDLE_INFORMATION HandleInformation);
// Reference counting applies to thread objects, the only objects the emulator
// allocates; for caller-owned objects (a KEVENT on the stack) these do nothing.
void ObReferenceObject(PVOID Object);
void ObDereferenceObject(PVOID Object);
void ObfReferenceObject(PVOID Object);
void ObfDereferenceObject(PVOID Object);
NTSTATUS ZwClose(HANDLE Handle);
// ZwClose, for a KernelMode PreviousMode [ddi:obclosehandle]; a UserMode one
// searches the user handles, of which the emulator has none:
// STATUS_INVALID_HANDLE [ros-obref].
NTSTATUS ObCloseHandle(HANDLE Handle, KPROCESSOR_MODE PreviousMode);

// ---- Event objects by handle (the object manager's; SEMANTICS.md 4.2) ----
inline constexpr ACCESS_MASK EVENT_QUERY_STATE = 0x0001;
inline constexpr ACCESS_MASK EVENT_MODIFY_STATE = 0x0002;
inline constexpr ACCESS_MASK EVENT_ALL_ACCESS = STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x3;
// Creates an unnamed event object and a kernel handle to it; the object lives
// until the last handle and reference go. PASSIVE_LEVEL [ddi:zwcreateevent].
// An ObjectName (a named event) returns STATUS_NOT_SUPPORTED: the emulator
// has no object namespace. An EventType other than the two returns
// STATUS_INVALID_PARAMETER.
NTSTATUS ZwCreateEvent(PHANDLE EventHandle, ACCESS_MASK DesiredAccess,
                       POBJECT_ATTRIBUTES ObjectAttributes, EVENT_TYPE EventType,
                       BOOLEAN InitialState);
// KeSetEvent(EVENT_INCREMENT) / KeResetEvent / KeClearEvent on the event
// behind a handle; STATUS_INVALID_HANDLE or STATUS_OBJECT_TYPE_MISMATCH
// otherwise. PASSIVE_LEVEL [ddi:zwsetevent][ddi:zwclearevent].
NTSTATUS ZwSetEvent(HANDLE EventHandle, PLONG PreviousState);
NTSTATUS ZwResetEvent(HANDLE EventHandle, PLONG PreviousState);
NTSTATUS ZwClearEvent(HANDLE EventHandle);
// KeWaitForSingleObject(UserRequest, KernelMode) on the object behind a
// thread or event handle, holding a reference through the wait.
// PASSIVE_LEVEL [ddi:zwwaitforsingleobject].
NTSTATUS ZwWaitForSingleObject(HANDLE Handle, BOOLEAN Alertable, PLARGE_INTEGER Timeout);

// ---- Pool and previous mode ----
enum POOL_TYPE { NonPagedPool = 0, PagedPool = 1, NonPagedPoolNx = 512 };
// The heap behind both pools: there is no paging to emulate. Aligned to 16
// bytes as amd64 pool blocks are; NULL when out of memory. Callable at IRQL
// <= DISPATCH_LEVEL (<= APC_LEVEL for PagedPool) [ddi:exallocatepoolwithtag];
// the tag is not kept.
PVOID ExAllocatePoolWithTag(POOL_TYPE PoolType, std::size_t NumberOfBytes, ULONG Tag);
// <= DISPATCH_LEVEL [ddi:exfreepoolwithtag]; NULL is ignored.
void ExFreePoolWithTag(PVOID P, ULONG Tag);
// Every emulated thread runs kernel code called from kernel code
// [ddi:exgetpreviousmode].
KPROCESSOR_MODE ExGetPreviousMode();
// The id PsCreateSystemThread reports in CLIENT_ID.UniqueThread
// [ddi:psgetcurrentthreadid].
HANDLE PsGetCurrentThreadId();
HANDLE PsGetThreadId(PETHREAD Thread);  // [ddi:psgetthreadid]

// ---- The process ----
// One process: every emulated thread, system thread or adopted, belongs to
// PsInitialSystemProcess, whose id is the Linux process id (the
// CLIENT_ID.UniqueProcess that PsCreateSystemThread reports). Any IRQL.
extern PEPROCESS PsInitialSystemProcess;
PEPROCESS IoGetCurrentProcess();  // [ddi:iogetcurrentprocess]
PEPROCESS PsGetCurrentProcess();
HANDLE PsGetCurrentProcessId();  // [ddi:psgetcurrentprocessid]
HANDLE PsGetProcessId(PEPROCESS Process);

}  // namespace kmlab::nt

// The inline FAST_MUTEX / KGUARDED_MUTEX routines declared above.
#include <kmlab/kernel/fast_mutex_inline.hpp>
