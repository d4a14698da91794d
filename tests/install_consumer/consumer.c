/* The C face from an installed tree: <kmlab/wdm.h> found through
 * find_package(kmlab), compiled as C17, linked against kmlab::kmlab. */
#include <kmlab/wdm.h>

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
    printf("C consumer: FAST_MUTEX and KEVENT through <kmlab/wdm.h>\n");
    return 0;
}
