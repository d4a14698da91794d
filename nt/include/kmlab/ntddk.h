/* kmlab's ntddk.h: <kmlab/wdm.h> plus what the WDK's ntddk.h and the NDK
 * (ReactOS's ndk/ketypes.h) add for code that looks inside the kernel's
 * objects, as the kernel-mode tests do: the emulated KTHREAD's fields.
 *
 * wdm.h keeps KTHREAD opaque, as the WDK's does; include this header instead
 * where C code reads the thread object [kmt-KeMutex][kmt-KeEvent]:
 *
 *     PKTHREAD Thread = KeGetCurrentThread();
 *     if (Thread->KernelApcDisable != 0 || Thread->WaitNext) ...
 *
 * The layout is the emulator's (kmlab::nt::KTHREAD, kernel/objects.hpp;
 * nt/src/wdm.cpp checks the size and every field's offset and width against
 * it at compile time), not Windows': it holds the fields the emulator keeps,
 * with the NDK's names [ros-nket], in another order, plus the emulator's own
 * (Irql, OwnedKMutexListHead, Extra). Code that reads the fields by name
 * compiles and reads what Windows' would hold; code that assumes Windows'
 * offsets or sizeof(KTHREAD) does not hold here.
 *
 * Writing a field is what writing it on Windows is: the test's own business.
 * The kmtests' "repair the damage" writes (Thread->KernelApcDisable = 0 after
 * a deliberate mismatch) work as they do there; Thread->WaitNext = FALSE after
 * a KeSetEvent(..., TRUE) does not give back the dispatcher lock the
 * Wait = TRUE release kept (it is released by the KeWaitXxx that follows, as
 * on Windows), so do not.
 */
#ifndef KMLAB_NTDDK_H
#define KMLAB_NTDDK_H

#include <kmlab/wdm.h>

#ifdef __cplusplus
extern "C" {
#endif

struct _KTHREAD {
    DISPATCHER_HEADER Header; /* ThreadObject; signaled when the thread ends */
    KIRQL Irql;               /* kmlab: the thread's virtual IRQL (no processors) */
    UCHAR VerifierGate;       /* kmlab: nonzero in the verifier flavour (kernel/verifier.hpp) */
    BOOLEAN WaitNext;         /* a Wait = TRUE release kept the dispatcher lock */
    KIRQL WaitIrql;           /* the IRQL the next KeWaitXxx restores */
    BOOLEAN Alertable;
    KPROCESSOR_MODE WaitMode;
    BOOLEAN Alerted[MaximumMode];
    BOOLEAN SystemThread;
    BOOLEAN Terminated;
    SCHAR Priority;     /* 8 at creation, boosted by satisfied waits */
    SCHAR BasePriority; /* what a boost decays to */
    /* Both count down from 0: KeEnterCriticalRegion decrements
     * KernelApcDisable, KeEnterGuardedRegion SpecialApcDisable. */
    union {
        struct {
            SHORT KernelApcDisable;
            SHORT SpecialApcDisable;
        };
        ULONG CombinedApcDisable;
    };
    LONG_PTR WaitStatus;
    LIST_ENTRY MutantListHead; /* KMUTANT.MutantListEntry of each mutant owned */
    KWAIT_BLOCK WaitBlock[THREAD_WAIT_OBJECTS];
    PKWAIT_BLOCK WaitBlockList;
    LIST_ENTRY OwnedKMutexListHead; /* kmlab: KMUTEX-semantics locks of the C++ face */
    PVOID Extra;                    /* kmlab: the emulator's own state; do not touch */
};

#ifdef __cplusplus
}
#endif

#endif /* KMLAB_NTDDK_H */
