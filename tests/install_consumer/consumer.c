/* The C face from an installed tree: <kmlab/wdm.h> found through
 * find_package(kmlab), compiled as C17, linked against kmlab::kmlab; and
 * <kmlab/ntddk.h>, which includes it and opens KTHREAD's fields. */
#include <kmlab/ntddk.h>

#include <stdio.h>

int main(void) {
    FAST_MUTEX fast_mutex;
    KEVENT event;
    ExInitializeFastMutex(&fast_mutex);
    ExAcquireFastMutex(&fast_mutex);
    if (KeGetCurrentIrql() != APC_LEVEL) return 1;
    ExReleaseFastMutex(&fast_mutex);
    KeInitializeEvent(&event, SynchronizationEvent, TRUE);
    if (KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL) != STATUS_SUCCESS)
        return 1;
    if (KeReadStateEvent(&event) != 0) return 1;
    {
        /* The installed tree carries <kmlab/nt/wdk_macros.h> and the newer
         * routines: an event by handle, a routine by name, the flavour. */
        HANDLE handle;
        LONG previous = -1;
        UNICODE_STRING name;
        UNREFERENCED_PARAMETER(previous);
        if (ZwCreateEvent(&handle, EVENT_ALL_ACCESS, NULL, NotificationEvent, FALSE) !=
            STATUS_SUCCESS)
            return 1;
        if (ZwSetEvent(handle, &previous) != STATUS_SUCCESS || previous != 0) return 1;
        if (ZwWaitForSingleObject(handle, FALSE, NULL) != STATUS_SUCCESS) return 1;
        if (ObCloseHandle(handle, KernelMode) != STATUS_SUCCESS) return 1;
        RtlInitUnicodeString(&name, L"KeQueryPriorityThread");
        if (MmGetSystemRoutineAddress(&name) == NULL) return 1;
        if (KeQueryPriorityThread(KeGetCurrentThread()) != 8) return 1;
        {
            /* The lock family: a spin lock at DISPATCH_LEVEL, an ERESOURCE
             * inside a critical region. */
            KSPIN_LOCK spinLock;
            KIRQL oldIrql;
            ERESOURCE resource;
            KeInitializeSpinLock(&spinLock);
            KeAcquireSpinLock(&spinLock, &oldIrql);
            if (KeGetCurrentIrql() != DISPATCH_LEVEL || KeTestSpinLock(&spinLock)) return 1;
            KeReleaseSpinLock(&spinLock, oldIrql);
            if (KeGetCurrentIrql() != PASSIVE_LEVEL || !KeTestSpinLock(&spinLock)) return 1;
            if (ExInitializeResourceLite(&resource) != STATUS_SUCCESS) return 1;
            KeEnterCriticalRegion();
            if (KeGetCurrentThread()->KernelApcDisable != -1) return 1;
            if (!ExAcquireResourceExclusiveLite(&resource, TRUE)) return 1;
            if (!ExIsResourceAcquiredExclusiveLite(&resource)) return 1;
            ExReleaseResourceLite(&resource);
            KeLeaveCriticalRegion();
            if (ExDeleteResourceLite(&resource) != STATUS_SUCCESS) return 1;
        }
        {
            /* Whatever flavour KMLAB_FLAVOR started it in: set, read, restore. */
            KMLAB_FLAVOR started = KmlabSetFlavor(KmlabFlavorFree);
            if (KmlabGetFlavor() != KmlabFlavorFree) return 1;
            KmlabSetFlavor(started);
        }
    }
    printf(
        "C consumer: FAST_MUTEX, KEVENT, event handles, MmGetSystemRoutineAddress, KSPIN_LOCK "
        "and ERESOURCE through <kmlab/wdm.h>\n");
    return 0;
}
