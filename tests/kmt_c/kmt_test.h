/* A test-only stand-in for the kernel-mode test suite's <kmt_test.h>
 * (ReactOS modules/rostests/kmtests/include/kmt_test.h [kmt-include]): the
 * test macros a kmtest file uses (ok, ok_eq_*, skip, trace, START_TEST,
 * KmtStartSeh / KmtEndSeh, KmtGetSystemRoutineAddress, ...), over kmlab's C
 * face. Everything else such a file names (the WDK's types, routines,
 * annotations and KTHREAD's fields) comes from <kmlab/ntddk.h> alone: this
 * header adds no kernel name, so a file that compiles with it compiles
 * against kmlab's C face as a driver file would.
 *
 * Written for kmlab; the macro names and the summary line follow kmtest's so
 * that a kmtest file compiles unchanged and its output reads the same.
 *
 * Exceptions: KmtStartSeh() / KmtEndSeh(Expected) stand for kmtest's
 * _SEH2_TRY / _SEH2_EXCEPT block. A status raised inside (the emulator reports
 * it to C as bug check KMODE_EXCEPTION_NOT_HANDLED, parameter 1 the status;
 * <kmlab/wdm.h>) is caught with longjmp and compared with Expected, as the
 * kmtest compares the exception code. Any other bug check fails the test and
 * ends the process, as it would end Windows. */
#ifndef KMLAB_KMT_TEST_H
#define KMLAB_KMT_TEST_H

#include <kmlab/ntddk.h>

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#define MICROSECOND 10
#define MILLISECOND (1000 * MICROSECOND)
#define SECOND (1000 * MILLISECOND)

/* The checked flavour asserts what a checked Windows build asserts
 * (KmlabSetFlavor), and the verifier flavour is checked plus Driver
 * Verifier: both are a checked build to a test. The emulator runs threads in
 * parallel, as an MP build. */
#define KmtIsCheckedBuild (KmlabGetFlavor() != KmlabFlavorFree)
#define KmtIsMultiProcessorBuild TRUE

/* No format attribute (kmtest's has none either): the kmtests print LONG
 * with %ld and ULONG with %lu, right where LONG is long (Windows, LLP64) and
 * off by a width here, where LONG must be 32 bits and long is 64. gcc -Wall
 * would warn at each; the values print right for the non-negative ones a
 * failure message shows, and a failure is counted either way. */
int KmtOk(int Condition, const char* File, int Line, const char* Format, ...);
int KmtSkip(int Condition, const char* File, int Line, const char* Format, ...);
void KmtTrace(const char* File, int Line, const char* Format, ...);

#define ok(value, ...) KmtOk((value) != 0, __FILE__, __LINE__, __VA_ARGS__)
/* TRUE (skip the block) when the condition does not hold. */
#define skip(value, ...) KmtSkip((value) != 0, __FILE__, __LINE__, __VA_ARGS__)
#define trace(...) KmtTrace(__FILE__, __LINE__, __VA_ARGS__)

/* Each value is printed through the type named, so that the formats match
 * whatever integer type the test passes. Each argument is evaluated once
 * (a GNU statement expression: the kmtests build as gnu C), so that
 * ok_eq_long(KeReleaseMutex(...), 0L) releases once. */
#define ok_eq_print(value, expected, type, spec)                                                  \
    __extension__({                                                                               \
        __typeof__(value) KmtValue_ = (value);                                                    \
        __typeof__(expected) KmtExpected_ = (expected);                                           \
        ok(KmtValue_ == KmtExpected_, #value " = " spec ", expected " spec "\n", (type)KmtValue_, \
           (type)KmtExpected_);                                                                   \
    })
#define ok_eq_pointer(value, expected) ok_eq_print(value, expected, const void*, "%p")
#define ok_eq_int(value, expected) ok_eq_print(value, expected, int, "%d")
#define ok_eq_uint(value, expected) ok_eq_print(value, expected, unsigned int, "%u")
#define ok_eq_long(value, expected) ok_eq_print(value, expected, long, "%ld")
#define ok_eq_ulong(value, expected) ok_eq_print(value, expected, unsigned long, "%lu")
#define ok_eq_longlong(value, expected) ok_eq_print(value, expected, long long, "%lld")
#define ok_eq_ulonglong(value, expected) ok_eq_print(value, expected, unsigned long long, "%llu")
#define ok_eq_ulongptr(value, expected) ok_eq_print(value, expected, unsigned long, "%lu")
#define ok_eq_size(value, expected) ok_eq_print(value, expected, size_t, "%zu")
#define ok_eq_hex(value, expected) ok_eq_print(value, expected, unsigned int, "0x%08x")
#define ok_eq_hex64(value, expected) ok_eq_print(value, expected, unsigned long long, "0x%016llx")
#define ok_bool_str(value) ((value) ? "TRUE" : "FALSE")
#define ok_eq_bool(value, expected)                                                          \
    __extension__({                                                                          \
        int KmtValue_ = (value) != 0, KmtExpected_ = (expected) != 0;                        \
        ok(KmtValue_ == KmtExpected_, #value " = %s, expected %s\n", ok_bool_str(KmtValue_), \
           ok_bool_str(KmtExpected_));                                                       \
    })
#define ok_bool_true(value, desc) ok((value) == TRUE, desc " FALSE, expected TRUE\n")
#define ok_bool_false(value, desc) ok((value) == FALSE, desc " TRUE, expected FALSE\n")
#define ok_eq_str(value, expected) \
    ok(!strcmp(value, expected), #value " = \"%s\", expected \"%s\"\n", value, expected)
#define ok_irql(irql)                                                                           \
    ok(KeGetCurrentIrql() == (irql), "IRQL is %u, expected %u\n", (unsigned)KeGetCurrentIrql(), \
       (unsigned)(irql))

/* START_TEST(Name) { ... } defines Test_Name, which the runner calls. */
#define START_TEST(name)    \
    void Test_##name(void); \
    void Test_##name(void)

/* The exception frame KmtStartSeh opens; the runner's bug-check handler
 * longjmps to the innermost one with the raised status. */
typedef struct _KMT_SEH_FRAME {
    jmp_buf Jump;
    NTSTATUS Status;
    struct _KMT_SEH_FRAME* Previous;
} KMT_SEH_FRAME;
void KmtSehPush(KMT_SEH_FRAME* Frame);
void KmtSehPop(KMT_SEH_FRAME* Frame);

#define KmtStartSeh()                              \
    {                                              \
        KMT_SEH_FRAME KmtFrame;                    \
        NTSTATUS ExceptionStatus = STATUS_SUCCESS; \
        KmtSehPush(&KmtFrame);                     \
        if (setjmp(KmtFrame.Jump) == 0) {
#define KmtEndSeh(ExpectedStatus)                 \
    }                                             \
    else {                                        \
        ExceptionStatus = KmtFrame.Status;        \
    }                                             \
    KmtSehPop(&KmtFrame);                         \
    ok_eq_hex(ExceptionStatus, (ExpectedStatus)); \
    }

PVOID KmtGetSystemRoutineAddress(PCWSTR RoutineName);
VOID KmtSetIrql(KIRQL NewIrql);
PKTHREAD KmtStartThread(PKSTART_ROUTINE StartRoutine, PVOID StartContext);
VOID KmtFinishThread(PKTHREAD Thread, PKEVENT Event);

#endif /* KMLAB_KMT_TEST_H */
