/* The explorer's C entry (<kmlab/wdm.h>: KmlabExplore) from C17 driver code:
 * a test-then-wait racing KeClearEvent, its fix, a failed ASSERT and a failed
 * KmlabExploreCheck in a system thread. model_kernel_test.cpp asserts on the
 * results. Compiled as C17 without extensions. */
#include <kmlab/wdm.h>

typedef struct _HANDOFF {
    KEVENT Done;
    LONG Ready;
} HANDOFF;

static VOID Producer(PVOID Context) {
    HANDOFF* h = (HANDOFF*)Context;
    h->Ready = 1;
    KeSetEvent(&h->Done, 0, FALSE);
}

static VOID StartAndJoin(PKSTART_ROUTINE Routine, PVOID Context, VOID (*Between)(PVOID),
                         PVOID BetweenContext) {
    HANDLE handle = NULL;
    PVOID thread = NULL;
    NTSTATUS status =
        PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, NULL, NULL, NULL, Routine, Context);
    KmlabExploreCheck(status == STATUS_SUCCESS, "PsCreateSystemThread failed");
    status =
        ObReferenceObjectByHandle(handle, SYNCHRONIZE, *PsThreadType, KernelMode, &thread, NULL);
    KmlabExploreCheck(status == STATUS_SUCCESS, "ObReferenceObjectByHandle failed");
    ZwClose(handle);
    if (Between != NULL) Between(BetweenContext);
    KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, NULL);
    ObDereferenceObject(thread);
}

static VOID ConsumeBuggy(PVOID Context) {
    HANDOFF* h = (HANDOFF*)Context;
    if (h->Ready == 0) {
        KeClearEvent(&h->Done); /* erases a KeSetEvent made since the test */
        KeWaitForSingleObject(&h->Done, Executive, KernelMode, FALSE, NULL);
    }
}

static VOID ConsumeFixed(PVOID Context) {
    HANDOFF* h = (HANDOFF*)Context;
    KeClearEvent(&h->Done);
    if (h->Ready == 0) KeWaitForSingleObject(&h->Done, Executive, KernelMode, FALSE, NULL);
}

static VOID HandoffBody(PVOID Context) {
    HANDOFF h;
    KeInitializeEvent(&h.Done, NotificationEvent, FALSE);
    h.Ready = 0;
    StartAndJoin(Producer, &h, Context != NULL ? ConsumeFixed : ConsumeBuggy, &h);
}

static VOID AssertsReady(PVOID Context) {
    HANDOFF* h = (HANDOFF*)Context;
    ASSERT(h->Ready == 1);
}

static VOID AssertBody(PVOID Context) {
    HANDOFF h;
    (void)Context;
    h.Ready = 0;
    StartAndJoin(AssertsReady, &h, NULL, NULL);
}

static VOID CheckBody(PVOID Context) {
    (void)Context;
    KmlabExploreCheck(FALSE, "the C body's own check");
}

/* 0: the planted lost wake-up, 1: its fix, 2: a failed ASSERT, 3: a failed
 * KmlabExploreCheck. */
NTSTATUS ModelKernelCExplore(int Which, PCSTR Replay, PKMLAB_EXPLORE_RESULT Result) {
    static int fixed = 1;
    KMLAB_EXPLORE_OPTIONS options;
    RtlZeroMemory(&options, sizeof options);
    options.Replay = Replay;
    switch (Which) {
        case 0:
            return KmlabExplore(HandoffBody, NULL, &options, Result);
        case 1:
            return KmlabExplore(HandoffBody, &fixed, &options, Result);
        case 2:
            return KmlabExplore(AssertBody, NULL, &options, Result);
        default:
            return KmlabExplore(CheckBody, NULL, &options, Result);
    }
}
