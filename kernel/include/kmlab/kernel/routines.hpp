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

// ---- FAST_MUTEX (SEMANTICS.md 2) ----
// Acquire above APC_LEVEL: 0xC4/0x33; release at IRQL != APC_LEVEL: 0xC4/0x34;
// Unsafe acquire/release at IRQL above APC_LEVEL, or below it outside a
// critical or guarded region: 0xC4/0x39 and 0xC4/0x3A. Parameters
// (subcode, IRQL, mutex, 0). Acquiring a fast mutex the caller already owns
// bug checks MUTEX_ALREADY_OWNED (0xBF: mutex, thread) instead of deadlocking;
// releasing one the caller does not own bug checks THREAD_NOT_MUTEX_OWNER
// (0x11: mutex, owner, caller, 0) where a free build would corrupt Count.
void ExInitializeFastMutex(PFAST_MUTEX FastMutex);
void ExAcquireFastMutex(PFAST_MUTEX FastMutex);
BOOLEAN ExTryToAcquireFastMutex(PFAST_MUTEX FastMutex);
void ExReleaseFastMutex(PFAST_MUTEX FastMutex);
void ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex);
void ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex);
// KeEnterCriticalRegion + ExAcquireFastMutexUnsafe, and the reverse, as one
// call [ddi:exentercriticalregionandacquirefastmutexunsafe][kmt-ExFastMutex].
void ExEnterCriticalRegionAndAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex);
void ExReleaseFastMutexUnsafeAndLeaveCriticalRegion(PFAST_MUTEX FastMutex);

// ---- KGUARDED_MUTEX (SEMANTICS.md 3): guarded region, IRQL unchanged ----
void KeInitializeGuardedMutex(PKGUARDED_MUTEX Mutex);
void KeAcquireGuardedMutex(PKGUARDED_MUTEX Mutex);
BOOLEAN KeTryToAcquireGuardedMutex(PKGUARDED_MUTEX Mutex);
void KeReleaseGuardedMutex(PKGUARDED_MUTEX Mutex);
void KeAcquireGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex);
void KeReleaseGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex);

// ---- System threads and the object manager (SEMANTICS.md 4.5) ----
struct UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    wchar_t* Buffer;
};
using PUNICODE_STRING = UNICODE_STRING*;
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

}  // namespace kmlab::nt
