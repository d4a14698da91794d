/* A driver written in C against <kmlab/wdm.h>, with the WDK's names only:
 * three system threads wait for a start event, then add to counters guarded
 * by a KMUTEX, a FAST_MUTEX (safe and unsafe acquires) and a KGUARDED_MUTEX;
 * DriverEntry joins them with the usual idiom (reference by handle, close the
 * handle, wait for all, dereference). On the way it checks what Windows
 * leaves in the dispatcher header's spare bytes, the IRQL and region
 * routines, event handles, priorities and their boosts, the process, a routine
 * looked up by name, the free flavour, and how a raised status reaches C code
 * (the bug-check handler).
 *
 * Built with -std=c17 -Wall -Wextra -Werror; prints "all totals match". */
#include <kmlab/wdm.h>

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#define WORKERS 3
#define ITERATIONS 1000
#define POOL_TAG 0x76724443u /* 'vrDC': "CDrv" in memory */

typedef struct _DEVICE_EXTENSION {
    KEVENT StartEvent;
    KMUTEX Mutex;
    FAST_MUTEX FastMutex;
    KGUARDED_MUTEX GuardedMutex;
    ULONG MutexCounter;
    ULONG FastMutexCounter;
    ULONG GuardedMutexCounter;
} DEVICE_EXTENSION, *PDEVICE_EXTENSION;

C_ASSERT(sizeof(KMUTEX) == 56 && sizeof(FAST_MUTEX) == 56 && sizeof(KEVENT) == 24);

static int failures;

static void Check(int condition, const char* what) {
    if (!condition) {
        fprintf(stderr, "FAILED: %s\n", what);
        ++failures;
    }
}

static VOID WorkerRoutine(PVOID StartContext) {
    PDEVICE_EXTENSION ext = (PDEVICE_EXTENSION)StartContext;
    int i;
    KeWaitForSingleObject(&ext->StartEvent, Executive, KernelMode, FALSE, NULL);
    for (i = 0; i < ITERATIONS; ++i) {
        KeWaitForSingleObject(&ext->Mutex, Executive, KernelMode, FALSE, NULL);
        ext->MutexCounter++;
        KeReleaseMutex(&ext->Mutex, FALSE);

        if (i % 2 == 0) {
            ExAcquireFastMutex(&ext->FastMutex);
            ext->FastMutexCounter++;
            ExReleaseFastMutex(&ext->FastMutex);
        } else {
            KeEnterCriticalRegion();
            ExAcquireFastMutexUnsafe(&ext->FastMutex);
            ext->FastMutexCounter++;
            ExReleaseFastMutexUnsafe(&ext->FastMutex);
            KeLeaveCriticalRegion();
        }

        KeAcquireGuardedMutex(&ext->GuardedMutex);
        ext->GuardedMutexCounter++;
        KeReleaseGuardedMutex(&ext->GuardedMutex);
    }
    PsTerminateSystemThread(STATUS_SUCCESS);
}

/* ---- What Windows (NT 6.1+) leaves in the header [kmt-KeMutex][kmt-KeEvent] ---- */
static void CheckInitialization(void) {
    KMUTEX mutex;
    KEVENT event;
    memset(&mutex, 0x55, sizeof mutex);
    KeInitializeMutex(&mutex, 0);
    Check(mutex.Header.Type == MutantObject, "KMUTEX Type");
    Check(mutex.Header.Abandoned == 0x55, "KeInitializeMutex leaves byte 1");
    Check(mutex.Header.Size == sizeof mutex / sizeof(ULONG), "KMUTEX Size");
    Check(mutex.Header.DpcActive == 0x55, "KeInitializeMutex leaves byte 3");
    Check(mutex.MutantListEntry.Flink == (PLIST_ENTRY)(ULONG_PTR)0x5555555555555555ull,
          "KeInitializeMutex leaves MutantListEntry");
    Check(mutex.OwnerThread == NULL && mutex.ApcDisable == 1, "KMUTEX owner and ApcDisable");
    Check(KeReadStateMutex(&mutex) == 1, "a new KMUTEX is signaled");

    memset(&event, 0x55, sizeof event);
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    Check(event.Header.Hand == sizeof event / sizeof(ULONG), "KEVENT Hand is its size");
    Check(((ULONG)event.Header.Lock & 0xFF00FF00u) == 0x55000000u,
          "KeInitializeEvent clears Signalling and leaves byte 3");
    Check(KeSetEvent(&event, IO_NO_INCREMENT, FALSE) == 0, "KeSetEvent returns the old state");
    Check(KeReadStateEvent(&event) == 1, "set event reads 1");
    Check(KeResetEvent(&event) == 1, "KeResetEvent returns the old state");
    KeSetEvent(&event, IO_NO_INCREMENT, FALSE);
    KeClearEvent(&event);
    Check(KeReadStateEvent(&event) == 0, "cleared event reads 0");
}

/* ---- IRQL and regions ---- */
static void CheckIrqlAndRegions(PDEVICE_EXTENSION ext) {
    KIRQL old;
    Check(KeGetCurrentIrql() == PASSIVE_LEVEL, "DriverEntry runs at PASSIVE_LEVEL");
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    Check(old == PASSIVE_LEVEL && KeGetCurrentIrql() == DISPATCH_LEVEL, "KeRaiseIrql");
    KeLowerIrql(old);
    Check(KeGetCurrentIrql() == PASSIVE_LEVEL, "KeLowerIrql");

    KeEnterGuardedRegion();
    Check(KeAreAllApcsDisabled() == TRUE, "a guarded region disables all APCs");
    KeLeaveGuardedRegion();
    KeEnterCriticalRegion();
    Check(KeAreApcsDisabled() == TRUE, "a critical region disables normal APCs");
    KeLeaveCriticalRegion();
    Check(KeAreApcsDisabled() == FALSE, "regions left");

    Check(ExTryToAcquireFastMutex(&ext->FastMutex) == TRUE, "ExTryToAcquireFastMutex when free");
    Check(KeGetCurrentIrql() == APC_LEVEL, "a fast mutex raises to APC_LEVEL");
    ExReleaseFastMutex(&ext->FastMutex);
    Check(KeTryToAcquireGuardedMutex(&ext->GuardedMutex) == TRUE, "KeTryToAcquireGuardedMutex");
    KeReleaseGuardedMutex(&ext->GuardedMutex);
}

/* ---- Pool, the WDK's macros, the fast-mutex shortcuts ---- */
typedef struct _WORK_ITEM {
    ULONG Cookie;
    LIST_ENTRY Link;
} WORK_ITEM, *PWORK_ITEM;

static NTSTATUS NTAPI CheckPoolAndMacros(_In_ PDEVICE_EXTENSION ext, _In_opt_ PVOID unused) {
    PWORK_ITEM item;
    UCHAR bytes[8];
    UNREFERENCED_PARAMETER(unused);
    item = (PWORK_ITEM)ExAllocatePoolWithTag(NonPagedPoolNx, sizeof *item, POOL_TAG);
    if (item == NULL) return STATUS_INSUFFICIENT_RESOURCES;
    RtlZeroMemory(item, sizeof *item);
    item->Cookie = 0xC0FFEE;
    Check(CONTAINING_RECORD(&item->Link, WORK_ITEM, Link)->Cookie == 0xC0FFEE,
          "CONTAINING_RECORD finds the record");
    ExFreePoolWithTag(item, POOL_TAG);

    RtlFillMemory(bytes, sizeof bytes, 0x55);
    Check(RTL_NUMBER_OF(bytes) == 8 && bytes[7] == 0x55, "RTL_NUMBER_OF and RtlFillMemory");
    Check(ExGetPreviousMode() == KernelMode, "ExGetPreviousMode");
    Check(PsGetCurrentThreadId() != NULL, "PsGetCurrentThreadId");

    ExEnterCriticalRegionAndAcquireFastMutexUnsafe(&ext->FastMutex);
    Check(KeAreApcsDisabled() == TRUE, "the shortcut enters a critical region");
    ExReleaseFastMutexUnsafeAndLeaveCriticalRegion(&ext->FastMutex);
    Check(KeAreApcsDisabled() == FALSE, "and leaves it");
    return STATUS_SUCCESS;
}

/* ---- Event handles, priorities, the process, routines by name, flavours ---- */
typedef struct _HANDLE_WAITER {
    PKEVENT Event; /* the object behind the handle, referenced */
    KEVENT Ready;
    NTSTATUS Status;
    KPRIORITY Priority;
} HANDLE_WAITER, *PHANDLE_WAITER;

static VOID HandleWaiterRoutine(PVOID StartContext) {
    PHANDLE_WAITER w = (PHANDLE_WAITER)StartContext;
    /* Wait = TRUE, as kmtest does it: the signal and the wait that follows are
     * one step, so DriverEntry's ZwSetEvent finds this thread waiting. */
    KeSetEvent(&w->Ready, IO_NO_INCREMENT, TRUE);
    w->Status = KeWaitForSingleObject(w->Event, UserRequest, KernelMode, FALSE, NULL);
    w->Priority = KeQueryPriorityThread(KeGetCurrentThread());
}

typedef LONG (*PKE_SET_EVENT)(PRKEVENT, KPRIORITY, BOOLEAN);

static NTSTATUS CheckHandlesAndScheduling(void) {
    HANDLE_WAITER waiter;
    OBJECT_ATTRIBUTES oa;
    HANDLE event;
    HANDLE thread;
    PVOID object;
    UNICODE_STRING name;
    PKE_SET_EVENT setEvent;
    KMLAB_FLAVOR flavor;
    KIRQL old;
    NTSTATUS status;

    InitializeObjectAttributes(&oa, NULL, OBJ_KERNEL_HANDLE, NULL, NULL);
    status = ZwCreateEvent(&event, EVENT_ALL_ACCESS, &oa, SynchronizationEvent, FALSE);
    if (!NT_SUCCESS(status)) return status;
    status = ObReferenceObjectByHandle(event, EVENT_MODIFY_STATE, *ExEventObjectType, KernelMode,
                                       &object, NULL);
    if (!NT_SUCCESS(status)) return status;
    waiter.Event = (PKEVENT)object;
    Check(waiter.Event->Header.Type == SynchronizationEvent, "the handle's KEVENT");
    KeInitializeEvent(&waiter.Ready, NotificationEvent, FALSE);
    status = PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, &oa, NULL, NULL, HandleWaiterRoutine,
                                  &waiter);
    if (!NT_SUCCESS(status)) return status;
    KeWaitForSingleObject(&waiter.Ready, Executive, KernelMode, FALSE, NULL);
    Check(ZwSetEvent(event, NULL) == STATUS_SUCCESS, "ZwSetEvent");
    Check(ZwWaitForSingleObject(thread, FALSE, NULL) == STATUS_SUCCESS, "join by handle");
    Check(waiter.Status == STATUS_SUCCESS, "the wait ended by ZwSetEvent");
    Check(waiter.Priority == 8 + EVENT_INCREMENT, "ZwSetEvent boosts the woken thread by 1");
    Check(ObCloseHandle(thread, KernelMode) == STATUS_SUCCESS, "ObCloseHandle");
    Check(ZwClose(event) == STATUS_SUCCESS, "ZwClose on the event handle");
    ObDereferenceObject(object); /* the last reference: the event goes */

    Check(KeSetPriorityThread(KeGetCurrentThread(), 12) == 8, "KeSetPriorityThread");
    Check(KeQueryPriorityThread(KeGetCurrentThread()) == 12, "KeQueryPriorityThread");
    KeSetPriorityThread(KeGetCurrentThread(), 8);

    Check(IoGetCurrentProcess() == PsInitialSystemProcess, "one process");
    Check(PsGetProcessId(PsGetCurrentProcess()) == PsGetCurrentProcessId(), "its id");
    Check(PsGetThreadId(PsGetCurrentThread()) == PsGetCurrentThreadId(), "the thread id");

    RtlInitUnicodeString(&name, L"KeSetEvent");
    setEvent = (PKE_SET_EVENT)MmGetSystemRoutineAddress(&name);
    Check(setEvent == KeSetEvent, "MmGetSystemRoutineAddress finds KeSetEvent");
    RtlInitUnicodeString(&name, L"ObReferenceObject");
    Check(MmGetSystemRoutineAddress(&name) == NULL, "a WDK macro is no export");

    /* The free flavour lets IRQL be raised to a lower level; checked does not.
     * Whatever flavour the program started in (KMLAB_FLAVOR), it is restored. */
    flavor = KmlabSetFlavor(KmlabFlavorFree);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeRaiseIrql(APC_LEVEL, &old);
    Check(KeGetCurrentIrql() == APC_LEVEL && old == DISPATCH_LEVEL, "free: raise to lower");
    KeLowerIrql(PASSIVE_LEVEL);
    Check(KmlabSetFlavor(KmlabFlavorChecked) == KmlabFlavorFree, "KmlabSetFlavor");
    Check(KmlabGetFlavor() == KmlabFlavorChecked, "KmlabGetFlavor");
    KmlabSetFlavor(flavor);
    return STATUS_SUCCESS;
}

/* ---- A raised status in C: the bug-check handler ---- */
static jmp_buf g_stop;
static ULONG g_code;
static ULONG_PTR g_parameter1;

static VOID OnBugCheck(ULONG code, ULONG_PTR p1, ULONG_PTR p2, ULONG_PTR p3, ULONG_PTR p4) {
    (void)p2;
    (void)p3;
    (void)p4;
    g_code = code;
    g_parameter1 = p1;
    longjmp(g_stop, 1);
}

static void CheckRaisedStatus(PDEVICE_EXTENSION ext) {
    KMLAB_BUGCHECK_HANDLER previous = KmlabSetBugCheckHandler(OnBugCheck);
    if (setjmp(g_stop) == 0) {
        KeReleaseMutex(&ext->Mutex, FALSE); /* not owned: raises STATUS_MUTANT_NOT_OWNED */
        Check(0, "KeReleaseMutex by a non-owner returned");
    }
    KmlabSetBugCheckHandler(previous);
    Check(g_code == 0x1E, "a raised status reaches C as KMODE_EXCEPTION_NOT_HANDLED");
    Check((NTSTATUS)g_parameter1 == STATUS_MUTANT_NOT_OWNED, "parameter 1 is the status");
    Check(KeReadStateMutex(&ext->Mutex) == 1, "the failed release modified nothing");
}

static DEVICE_EXTENSION g_extension;

static NTSTATUS DriverEntry(void) {
    PDEVICE_EXTENSION ext = &g_extension;
    HANDLE handles[WORKERS];
    PVOID threads[WORKERS];
    KWAIT_BLOCK waitBlocks[WORKERS];
    NTSTATUS status;
    int i;

    KeInitializeEvent(&ext->StartEvent, NotificationEvent, FALSE);
    KeInitializeMutex(&ext->Mutex, 0);
    ExInitializeFastMutex(&ext->FastMutex);
    KeInitializeGuardedMutex(&ext->GuardedMutex);
    CheckInitialization();
    CheckIrqlAndRegions(ext);
    CheckRaisedStatus(ext);
    status = CheckPoolAndMacros(ext, NULL);
    if (!NT_SUCCESS(status)) return status;
    status = CheckHandlesAndScheduling();
    if (!NT_SUCCESS(status)) return status;

    for (i = 0; i < WORKERS; ++i) {
        OBJECT_ATTRIBUTES oa;
        InitializeObjectAttributes(&oa, NULL, OBJ_KERNEL_HANDLE, NULL, NULL);
        status = PsCreateSystemThread(&handles[i], THREAD_ALL_ACCESS, &oa, NULL, NULL,
                                      WorkerRoutine, ext);
        if (!NT_SUCCESS(status)) return status;
        status = ObReferenceObjectByHandle(handles[i], THREAD_ALL_ACCESS, *PsThreadType, KernelMode,
                                           &threads[i], NULL);
        if (!NT_SUCCESS(status)) return status;
        ZwClose(handles[i]);
    }
    KeSetEvent(&ext->StartEvent, IO_NO_INCREMENT, FALSE);
    status = KeWaitForMultipleObjects(WORKERS, threads, WaitAll, Executive, KernelMode, FALSE, NULL,
                                      waitBlocks);
    Check(status == STATUS_SUCCESS, "KeWaitForMultipleObjects(WaitAll) on the threads");
    for (i = 0; i < WORKERS; ++i) ObDereferenceObject(threads[i]);
    return STATUS_SUCCESS;
}

int main(void) {
    const ULONG expected = WORKERS * ITERATIONS;
    NTSTATUS status = DriverEntry();
    Check(NT_SUCCESS(status), "DriverEntry succeeded");
    printf("KMUTEX %lu, FAST_MUTEX %lu, KGUARDED_MUTEX %lu (expected %lu each)\n",
           (unsigned long)g_extension.MutexCounter, (unsigned long)g_extension.FastMutexCounter,
           (unsigned long)g_extension.GuardedMutexCounter, (unsigned long)expected);
    Check(g_extension.MutexCounter == expected, "KMUTEX total");
    Check(g_extension.FastMutexCounter == expected, "FAST_MUTEX total");
    Check(g_extension.GuardedMutexCounter == expected, "KGUARDED_MUTEX total");
    Check(KeReadStateMutex(&g_extension.Mutex) == 1, "the KMUTEX is free at the end");
    if (failures != 0) return 1;
    printf("all totals match\n");
    return 0;
}
