/* KmtIsCheckedBuild as a kmtest file sees it (tests/kmt_c/kmt_test.h), for
 * verifier_test.cpp: the verifier flavour is a checked build plus Driver
 * Verifier, so a kmtest's checked-build expectations hold in it too. */
#include "kmt_test.h"

int kmlab_test_kmt_is_checked_build(void) {
    return KmtIsCheckedBuild ? 1 : 0;
}
