/* A driver file written as the WDK's samples are, against <kmlab/wdm.h>:
 * role-typed callbacks (KSTART_ROUTINE, KDEFERRED_ROUTINE), IN / OUT and
 * SAL annotations, and the lock family a driver uses together:
 *  - a KSPIN_LOCK guards the pending-work list: producers take it with
 *    KeAcquireSpinLock (raising to DISPATCH_LEVEL), the timer's DPC at
 *    DISPATCH_LEVEL with KeAcquireSpinLockAtDpcLevel, the consumer with
 *    KeAcquireSpinLock too (a lock taken this way must never be taken as an
 *    in-stack queued spin lock as well: the KeAcquireInStackQueuedSpinLock
 *    page forbids mixing the two, and kmlab stops with 0xF
 *    SPIN_LOCK_ALREADY_OWNED when one meets the other);
 *  - an ERESOURCE guards the configuration: producers read it shared, the
 *    driver rewrites it exclusive, each inside a critical region;
 *  - a periodic synchronization KTIMER, with a DPC, releases a system thread
 *    that waits on it (and on a stop event) to drain the list.
 * DriverEntry starts three producers and the consumer, changes the
 * configuration while they run, joins them, and DriverUnload cancels the
 * timer and deletes the resource.
 *
 * Built as C17 with -Wall -Wextra -Werror, extensions off; prints
 * "driver_wdk: every item consumed" when every check holds. */
#include <kmlab/wdm.h>

#include <stdio.h>

#define PRODUCERS 3
#define ITEMS_PER_PRODUCER 200
#define TIMER_PERIOD_MS 1
#define MIN_TIMER_WAKEUPS 3
#define POOL_TAG 0x6B647744u /* 'kdwD': "Dwdk" in memory */

typedef struct _CONFIGURATION {
    ULONG Generation;
    ULONG Weight; /* each item's value: its producer's sequence number times this */
} CONFIGURATION;

typedef struct _WORK_ITEM {
    LIST_ENTRY Link;
    ULONG Value;
    ULONG Generation;
} WORK_ITEM, *PWORK_ITEM;

typedef struct _DEVICE_EXTENSION {
    KSPIN_LOCK ListLock;
    _Guarded_by_(ListLock) LIST_ENTRY PendingList;
    _Guarded_by_(ListLock) ULONG DpcTicks;
    _Guarded_by_(ListLock) ULONG PendingAtLastTick;

    ERESOURCE ConfigResource;
    _Guarded_by_(ConfigResource) CONFIGURATION Config;

    KTIMER PeriodicTimer;
    KDPC TimerDpc;
    KEVENT StopEvent;
    volatile LONG DpcAtDispatchLevel; /* 1 while every DPC ran at DISPATCH_LEVEL */

    /* Written by the consumer thread only; read after it is joined. */
    ULONGLONG ConsumedTotal;
    ULONG ConsumedCount;
    volatile LONG ConsumerWakeups; /* timer expiries that released the consumer */
    volatile LONG ProducerFailures;
} DEVICE_EXTENSION, *PDEVICE_EXTENSION;

typedef struct _PRODUCER_CONTEXT {
    PDEVICE_EXTENSION Extension;
    ULONG Index;
    ULONGLONG ProducedTotal;
} PRODUCER_CONTEXT, *PPRODUCER_CONTEXT;

static DEVICE_EXTENSION g_Extension;
static int failures;

static VOID Check(IN int Condition, IN const char* What) {
    if (!Condition) {
        fprintf(stderr, "FAILED: %s\n", What);
        ++failures;
    }
}

/* ---- The timer's DPC: DISPATCH_LEVEL, on the timer service's thread ---- */
static KDEFERRED_ROUTINE TimerDpcRoutine;

_Use_decl_annotations_ static VOID TimerDpcRoutine(IN struct _KDPC* Dpc,
                                                   IN PVOID DeferredContext OPTIONAL,
                                                   IN PVOID SystemArgument1 OPTIONAL,
                                                   IN PVOID SystemArgument2 OPTIONAL) {
    PDEVICE_EXTENSION ext = (PDEVICE_EXTENSION)DeferredContext;
    PLIST_ENTRY entry;
    ULONG pending = 0;
    UNREFERENCED_PARAMETER(Dpc);
    UNREFERENCED_PARAMETER(SystemArgument1);
    UNREFERENCED_PARAMETER(SystemArgument2);

    if (KeGetCurrentIrql() != DISPATCH_LEVEL) InterlockedExchange(&ext->DpcAtDispatchLevel, 0);
    KeAcquireSpinLockAtDpcLevel(&ext->ListLock);
    ext->DpcTicks++;
    for (entry = ext->PendingList.Flink; entry != &ext->PendingList; entry = entry->Flink)
        ++pending;
    ext->PendingAtLastTick = pending;
    KeReleaseSpinLockFromDpcLevel(&ext->ListLock);
}

/* ---- Producers: PASSIVE_LEVEL system threads ---- */
static KSTART_ROUTINE ProducerRoutine;

_Use_decl_annotations_ static VOID ProducerRoutine(IN PVOID StartContext) {
    PPRODUCER_CONTEXT context = (PPRODUCER_CONTEXT)StartContext;
    PDEVICE_EXTENSION ext = context->Extension;
    ULONG i;

    for (i = 1; i <= ITEMS_PER_PRODUCER; ++i) {
        PWORK_ITEM item;
        KIRQL oldIrql;
        CONFIGURATION config;

        /* Read the configuration shared; a resource is acquired with normal
         * kernel APCs disabled. */
        KeEnterCriticalRegion();
        ExAcquireResourceSharedLite(&ext->ConfigResource, TRUE);
        config = ext->Config;
        if (ExIsResourceAcquiredSharedLite(&ext->ConfigResource) != 1)
            InterlockedIncrement(&ext->ProducerFailures);
        ExReleaseResourceLite(&ext->ConfigResource);
        KeLeaveCriticalRegion();

        item = (PWORK_ITEM)ExAllocatePoolWithTag(NonPagedPoolNx, sizeof *item, POOL_TAG);
        if (item == NULL) {
            InterlockedIncrement(&ext->ProducerFailures);
            break;
        }
        item->Value = i * config.Weight;
        item->Generation = config.Generation;
        context->ProducedTotal += item->Value;

        KeAcquireSpinLock(&ext->ListLock, &oldIrql);
        if (KeGetCurrentIrql() != DISPATCH_LEVEL || oldIrql != PASSIVE_LEVEL)
            InterlockedIncrement(&ext->ProducerFailures);
        InsertTailList(&ext->PendingList, &item->Link);
        KeReleaseSpinLock(&ext->ListLock, oldIrql);
    }
    PsTerminateSystemThread(STATUS_SUCCESS);
}

/* ---- The consumer: waits for the periodic timer, or the stop event ---- */
static KSTART_ROUTINE ConsumerRoutine;

static ULONG DrainPendingList(IN OUT PDEVICE_EXTENSION ext) {
    LIST_ENTRY batch;
    KIRQL oldIrql;
    ULONG drained = 0;

    /* Move the whole list out under the lock; free the items outside it. */
    InitializeListHead(&batch);
    KeAcquireSpinLock(&ext->ListLock, &oldIrql);
    if (!IsListEmpty(&ext->PendingList)) {
        PLIST_ENTRY first = ext->PendingList.Flink;
        RemoveEntryList(&ext->PendingList);
        InitializeListHead(&ext->PendingList);
        AppendTailList(&batch, first);
    }
    KeReleaseSpinLock(&ext->ListLock, oldIrql);

    while (!IsListEmpty(&batch)) {
        PWORK_ITEM item = CONTAINING_RECORD(RemoveHeadList(&batch), WORK_ITEM, Link);
        ext->ConsumedTotal += item->Value;
        ext->ConsumedCount++;
        ExFreePoolWithTag(item, POOL_TAG);
        ++drained;
    }
    return drained;
}

_Use_decl_annotations_ static VOID ConsumerRoutine(IN PVOID StartContext) {
    PDEVICE_EXTENSION ext = (PDEVICE_EXTENSION)StartContext;
    PVOID objects[2];
    objects[0] = &ext->PeriodicTimer;
    objects[1] = &ext->StopEvent;

    for (;;) {
        NTSTATUS status =
            KeWaitForMultipleObjects(2, objects, WaitAny, Executive, KernelMode, FALSE, NULL, NULL);
        if (status == STATUS_WAIT_0) {
            InterlockedIncrement(&ext->ConsumerWakeups);
            DrainPendingList(ext);
        } else if (status == STATUS_WAIT_1) {
            /* Stopping: the producers are done; take what they left. */
            DrainPendingList(ext);
            break;
        } else {
            InterlockedIncrement(&ext->ProducerFailures);
            break;
        }
    }
    PsTerminateSystemThread(STATUS_SUCCESS);
}

/* ---- Thread helpers: the usual create / reference / close idiom ---- */
static NTSTATUS StartSystemThread(IN PKSTART_ROUTINE Routine, IN PVOID Context,
                                  OUT PVOID* ThreadObject) {
    OBJECT_ATTRIBUTES attributes;
    HANDLE handle;
    NTSTATUS status;

    InitializeObjectAttributes(&attributes, NULL, OBJ_KERNEL_HANDLE, NULL, NULL);
    status =
        PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, &attributes, NULL, NULL, Routine, Context);
    if (!NT_SUCCESS(status)) return status;
    status = ObReferenceObjectByHandle(handle, SYNCHRONIZE, *PsThreadType, KernelMode, ThreadObject,
                                       NULL);
    ZwClose(handle);
    return status;
}

static VOID JoinSystemThread(IN PVOID ThreadObject) {
    KeWaitForSingleObject(ThreadObject, Executive, KernelMode, FALSE, NULL);
    ObDereferenceObject(ThreadObject);
}

/* ---- DriverEntry and DriverUnload ---- */
static PRODUCER_CONTEXT g_Producers[PRODUCERS];
static PVOID g_ConsumerThread;

static VOID DriverUnload(IN PDEVICE_EXTENSION ext) {
    /* The consumer is gone; stop the timer, then wait for a DPC it queued
     * before the cancel, which may still be running on the timer service
     * thread, before the extension goes away. */
    KeCancelTimer(&ext->PeriodicTimer);
    KeFlushQueuedDpcs();
    Check(ExIsResourceAcquiredLite(&ext->ConfigResource) == 0, "the resource is free at unload");
    Check(NT_SUCCESS(ExDeleteResourceLite(&ext->ConfigResource)), "ExDeleteResourceLite");
}

static NTSTATUS DriverEntry(IN PVOID DriverObject OPTIONAL, IN PUNICODE_STRING RegistryPath) {
    PDEVICE_EXTENSION ext = &g_Extension;
    PVOID producerThreads[PRODUCERS];
    LARGE_INTEGER dueTime;
    NTSTATUS status;
    ULONG i;
    UNREFERENCED_PARAMETER(DriverObject);
    UNREFERENCED_PARAMETER(RegistryPath);

    Check(KeGetCurrentIrql() == PASSIVE_LEVEL, "DriverEntry runs at PASSIVE_LEVEL");
    KeInitializeSpinLock(&ext->ListLock);
    InitializeListHead(&ext->PendingList);
    status = ExInitializeResourceLite(&ext->ConfigResource);
    if (!NT_SUCCESS(status)) return status;
    ext->Config.Generation = 1;
    ext->Config.Weight = 1;
    KeInitializeEvent(&ext->StopEvent, NotificationEvent, FALSE);
    ext->DpcAtDispatchLevel = 1;
    KeInitializeDpc(&ext->TimerDpc, TimerDpcRoutine, ext);
    KeInitializeTimerEx(&ext->PeriodicTimer, SynchronizationTimer);

    /* First expiry 1 ms from now (relative: negative, in 100 ns units), then
     * every TIMER_PERIOD_MS. */
    dueTime.QuadPart = -10000LL * TIMER_PERIOD_MS;
    Check(KeSetTimerEx(&ext->PeriodicTimer, dueTime, TIMER_PERIOD_MS, &ext->TimerDpc) == FALSE,
          "the timer was not set before");

    status = StartSystemThread(ConsumerRoutine, ext, &g_ConsumerThread);
    if (!NT_SUCCESS(status)) return status;
    for (i = 0; i < PRODUCERS; ++i) {
        g_Producers[i].Extension = ext;
        g_Producers[i].Index = i;
        status = StartSystemThread(ProducerRoutine, &g_Producers[i], &producerThreads[i]);
        if (!NT_SUCCESS(status)) return status;
    }

    /* Rewrite the configuration while the producers read it: exclusive,
     * inside a critical region. A producer sees one generation or the other,
     * never half of each. */
    KeEnterCriticalRegion();
    ExAcquireResourceExclusiveLite(&ext->ConfigResource, TRUE);
    Check(ExIsResourceAcquiredExclusiveLite(&ext->ConfigResource) == TRUE, "owned exclusive");
    ext->Config.Generation = 2;
    ext->Config.Weight = 3;
    ExReleaseResourceLite(&ext->ConfigResource);
    KeLeaveCriticalRegion();

    for (i = 0; i < PRODUCERS; ++i) JoinSystemThread(producerThreads[i]);
    /* Let the timer release the consumer a few times before stopping it:
     * this waits for the periodic timer's progress, not for a time. */
    {
        LARGE_INTEGER interval;
        interval.QuadPart = -10000LL * TIMER_PERIOD_MS;
        /* The consumer counts with an interlocked increment while it runs:
         * read the count the same way (a plain read would race with it). */
        while (InterlockedCompareExchange(&ext->ConsumerWakeups, 0, 0) < MIN_TIMER_WAKEUPS)
            KeDelayExecutionThread(KernelMode, FALSE, &interval);
    }
    KeSetEvent(&ext->StopEvent, IO_NO_INCREMENT, FALSE);
    JoinSystemThread(g_ConsumerThread);
    return STATUS_SUCCESS;
}

int main(void) {
    PDEVICE_EXTENSION ext = &g_Extension;
    UNICODE_STRING registryPath;
    ULONGLONG produced = 0;
    ULONG i;
    NTSTATUS status;

    RtlInitUnicodeString(&registryPath, L"\\Registry\\Machine\\System\\kmlab\\driver_wdk");
    status = DriverEntry(NULL, &registryPath);
    Check(NT_SUCCESS(status), "DriverEntry succeeded");
    if (!NT_SUCCESS(status)) return 1;

    for (i = 0; i < PRODUCERS; ++i) produced += g_Producers[i].ProducedTotal;
    Check(ext->ProducerFailures == 0, "every producer's checks held");
    Check(ext->ConsumedCount == PRODUCERS * ITEMS_PER_PRODUCER, "every item consumed once");
    Check(ext->ConsumedTotal == produced, "the consumed values sum to the produced ones");
    Check(IsListEmpty(&ext->PendingList), "the list is empty");
    Check(KeTestSpinLock(&ext->ListLock) == TRUE, "the spin lock is free");
    Check(KeGetCurrentIrql() == PASSIVE_LEVEL, "back at PASSIVE_LEVEL");
    {
        /* The DPC's counter, read at DISPATCH_LEVEL under the lock. The timer
         * is still periodic: its DPC runs again until DriverUnload, so this
         * waits for progress, not for a time. */
        LARGE_INTEGER interval;
        KIRQL oldIrql;
        ULONG ticks;
        interval.QuadPart = -10000LL * TIMER_PERIOD_MS;
        for (;;) {
            KeAcquireSpinLock(&ext->ListLock, &oldIrql);
            ticks = ext->DpcTicks;
            KeReleaseSpinLock(&ext->ListLock, oldIrql);
            if (ticks >= MIN_TIMER_WAKEUPS) break;
            KeDelayExecutionThread(KernelMode, FALSE, &interval);
        }
        Check(ext->ConsumerWakeups >= MIN_TIMER_WAKEUPS, "the timer released the consumer");
        printf("driver_wdk: %lu items, %lu consumer wakeups, %lu DPC ticks\n",
               (unsigned long)ext->ConsumedCount, (unsigned long)ext->ConsumerWakeups,
               (unsigned long)ticks);
    }
    DriverUnload(ext);
    Check(ext->DpcAtDispatchLevel == 1, "every DPC ran at DISPATCH_LEVEL");

    if (failures != 0) {
        printf("driver_wdk: %d check(s) failed\n", failures);
        return 1;
    }
    printf("driver_wdk: every item consumed\n");
    return 0;
}
