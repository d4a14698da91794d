/* The runner of a kmtest-style C test file (kmt_test.h): calls
 * Test_<KMT_TEST_NAME>, counts the checks, and prints kmtest's summary line
 *   "<name>: N tests executed (0 marked as todo, F failures), S skipped."
 * which CTest matches with " 0 failures". Exit status: 0 when nothing failed.
 * Raised statuses come back through the bug-check handler (KmtStartSeh). */
#include "kmt_test.h"

#include <stdarg.h>
#include <stdlib.h>

#ifndef KMT_TEST_NAME
#error "KMT_TEST_NAME: the name in the test file's START_TEST(...)"
#endif
#define KMT_STRING2(x) #x
#define KMT_STRING(x) KMT_STRING2(x)
#define KMT_ENTRY2(x) Test_##x
#define KMT_ENTRY(x) KMT_ENTRY2(x)
void KMT_ENTRY(KMT_TEST_NAME)(void);

/* Counted from every thread the test starts. */
static volatile LONG Executed, Failures, Skipped;
/* One frame stack per thread: a raise unwinds the thread that raised. */
static __thread KMT_SEH_FRAME* ThreadSehFrame;

void KmtSehPush(KMT_SEH_FRAME* Frame) {
    Frame->Status = STATUS_SUCCESS;
    Frame->Previous = ThreadSehFrame;
    ThreadSehFrame = Frame;
}
void KmtSehPop(KMT_SEH_FRAME* Frame) {
    ThreadSehFrame = Frame->Previous;
}

static void BugCheckHandler(ULONG Code, ULONG_PTR P1, ULONG_PTR P2, ULONG_PTR P3, ULONG_PTR P4) {
    KMT_SEH_FRAME* Frame = ThreadSehFrame;
    /* KMODE_EXCEPTION_NOT_HANDLED: a raised status, which an SEH frame
     * catches on Windows. */
    if (Code == 0x1E && Frame != NULL) {
        Frame->Status = (NTSTATUS)(ULONG)P1;
        longjmp(Frame->Jump, 1);
    }
    fprintf(stderr,
            "%s: bug check 0x%08lX (0x%lX, 0x%lX, 0x%lX, 0x%lX) outside an exception frame: "
            "1 failure\n",
            KMT_STRING(KMT_TEST_NAME), (unsigned long)Code, (unsigned long)P1, (unsigned long)P2,
            (unsigned long)P3, (unsigned long)P4);
    exit(1);
}

static void Report(int Failed, const char* File, int Line, const char* Format, va_list Args) {
    if (Failed) {
        fprintf(stdout, "%s:%d: Test failed: ", File, Line);
        vfprintf(stdout, Format, Args);
    }
}

int KmtOk(int Condition, const char* File, int Line, const char* Format, ...) {
    va_list args;
    InterlockedIncrement(&Executed);
    if (!Condition) {
        InterlockedIncrement(&Failures);
        va_start(args, Format);
        Report(1, File, Line, Format, args);
        va_end(args);
    }
    return Condition;
}

int KmtSkip(int Condition, const char* File, int Line, const char* Format, ...) {
    va_list args;
    if (Condition) return 0;
    InterlockedIncrement(&Skipped);
    fprintf(stdout, "%s:%d: Tests skipped: ", File, Line);
    va_start(args, Format);
    vfprintf(stdout, Format, args);
    va_end(args);
    return 1;
}

void KmtTrace(const char* File, int Line, const char* Format, ...) {
    va_list args;
    fprintf(stdout, "%s:%d: ", File, Line);
    va_start(args, Format);
    vfprintf(stdout, Format, args);
    va_end(args);
}

PVOID KmtGetSystemRoutineAddress(PCWSTR RoutineName) {
    UNICODE_STRING name;
    RtlInitUnicodeString(&name, RoutineName);
    return MmGetSystemRoutineAddress(&name);
}

VOID KmtSetIrql(KIRQL NewIrql) {
    KIRQL old = KeGetCurrentIrql();
    if (NewIrql > old)
        KeRaiseIrql(NewIrql, &old);
    else if (NewIrql < old)
        KeLowerIrql(NewIrql);
}

PKTHREAD KmtStartThread(PKSTART_ROUTINE StartRoutine, PVOID StartContext) {
    OBJECT_ATTRIBUTES attributes;
    HANDLE handle;
    PVOID thread = NULL;
    NTSTATUS status;
    InitializeObjectAttributes(&attributes, NULL, OBJ_KERNEL_HANDLE, NULL, NULL);
    status = PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, &attributes, NULL, NULL, StartRoutine,
                                  StartContext);
    ok_eq_hex(status, STATUS_SUCCESS);
    if (!NT_SUCCESS(status)) return NULL;
    status =
        ObReferenceObjectByHandle(handle, SYNCHRONIZE, *PsThreadType, KernelMode, &thread, NULL);
    ok_eq_hex(status, STATUS_SUCCESS);
    ZwClose(handle);
    return (PKTHREAD)thread;
}

VOID KmtFinishThread(PKTHREAD Thread, PKEVENT Event) {
    NTSTATUS status;
    if (Event != NULL) KeSetEvent(Event, IO_NO_INCREMENT, FALSE);
    if (Thread == NULL) return;
    status = KeWaitForSingleObject(Thread, Executive, KernelMode, FALSE, NULL);
    ok_eq_hex(status, STATUS_SUCCESS);
    ObDereferenceObject(Thread);
}

int main(void) {
    KmlabSetBugCheckHandler(BugCheckHandler);
    KMT_ENTRY(KMT_TEST_NAME)();
    printf("%s: %ld tests executed (0 marked as todo, %ld failures), %ld skipped.\n",
           KMT_STRING(KMT_TEST_NAME), (long)Executed, (long)Failures, (long)Skipped);
    return Failures != 0;
}
