/* Test-only stand-in for ReactOS's <debug.h>, which kmtest files include for
 * DPRINT: with NDEBUG, as they define it, DPRINT prints nothing. */
#ifndef KMLAB_KMT_DEBUG_H
#define KMLAB_KMT_DEBUG_H
#include <stdio.h>
#ifdef NDEBUG
#define DPRINT(...) ((void)0)
#else
#define DPRINT(...) fprintf(stderr, __VA_ARGS__)
#endif
#define DPRINT1(...) fprintf(stderr, __VA_ARGS__)
#endif
