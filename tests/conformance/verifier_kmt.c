/* KmtIsCheckedBuild as a kmtest file sees it (tests/kmt_c/kmt_test.h), for
 * verifier_test.cpp: the verifier flavour is a checked build plus Driver
 * Verifier, so a kmtest's checked-build expectations hold in it too. */
#include "kmt_test.h"

int kmlab_test_kmt_is_checked_build(void) {
    return KmtIsCheckedBuild ? 1 : 0;
}

/* For verifier_test.cpp's C-face tests: two KMUTEXes and two FAST_MUTEXes
 * initialized at two distinct C call sites, as a C driver would, so that
 * each is a class of its own (kernel/verifier.hpp, "Lock classes"). */
KMUTEX kmlab_test_c_mutex_a, kmlab_test_c_mutex_b;
FAST_MUTEX kmlab_test_c_fast_a, kmlab_test_c_fast_b;

void kmlab_test_c_init_a(void) {
    KeInitializeMutex(&kmlab_test_c_mutex_a, 0);
    ExInitializeFastMutex(&kmlab_test_c_fast_a);
}

void kmlab_test_c_init_b(void) {
    KeInitializeMutex(&kmlab_test_c_mutex_b, 0);
    ExInitializeFastMutex(&kmlab_test_c_fast_b);
}

void kmlab_test_c_take_mutexes(PKMUTEX first, PKMUTEX second) {
    KeWaitForSingleObject(first, Executive, KernelMode, FALSE, NULL);
    KeWaitForSingleObject(second, Executive, KernelMode, FALSE, NULL);
    KeReleaseMutex(second, FALSE);
    KeReleaseMutex(first, FALSE);
}

void kmlab_test_c_take_fast_mutexes(PFAST_MUTEX first, PFAST_MUTEX second) {
    ExAcquireFastMutex(first);
    ExAcquireFastMutex(second);
    ExReleaseFastMutex(second);
    ExReleaseFastMutex(first);
}
