// Kernel object layouts with the WDK's public field names [wine-wdm][ros-xket],
// so tests and users can inspect them as kernel debugger users do.
//
// Emulator notes:
//  * Fields the dispatcher changes under its lock (SignalState, wait lists,
//    OwnerThread) are plain fields, read and written through std::atomic_ref
//    where a routine reads them without the lock (KeReadStateXxx), so that
//    unsynchronized reads are well defined and ThreadSanitizer-clean.
//  * Fast and guarded mutex Count/Owner/Contention are changed with interlocked
//    operations (std::atomic_ref) exactly where the kernel uses Interlocked*.
//  * The IRQL lives in the KTHREAD: the emulator has no processors, so the
//    per-processor IRQL of Windows becomes a per-thread virtual IRQL (SEMANTICS 5.3).
#pragma once

#include <type_traits>

#include <kmlab/kernel/ntdef.hpp>

namespace kmlab::kernel::detail {
struct ThreadExtra;
}

namespace kmlab::nt {

struct KTHREAD;
using PKTHREAD = KTHREAD*;
struct KPROCESS;
using EPROCESS = KPROCESS;  // one object in the emulator, as ETHREAD and KTHREAD
using PKPROCESS = KPROCESS*;
using PEPROCESS = KPROCESS*;
using PRKTHREAD = KTHREAD*;
using ETHREAD = KTHREAD;  // one object in the emulator: PETHREAD and PKTHREAD coincide
using PETHREAD = KTHREAD*;

// The first four bytes carry the names the WDK gives them in its unions
// [ros-xket] (the Vista/Win7 layout the kmtests compile against; the Win10 WDK
// moved DpcActive to byte 2 of its mutant view). The emulator reads only Type,
// Size and SignalState: KeInitializeXxx writes Type and Size and leaves bytes
// 1 and 3 as they were, as Windows does [kmt-KeMutex] (KeInitializeEvent
// clears byte 1, Signalling, as NT 6.1+ does [kmt-KeEvent]).
struct DISPATCHER_HEADER {
    union {
        struct {
            UCHAR Type;  // KOBJECTS
            union {
                UCHAR TimerControlFlags;
                UCHAR Absolute;  // a bit of TimerControlFlags in the WDK; a byte here
                UCHAR Abandoned;
                BOOLEAN Signalling;
            };
            union {
                UCHAR Size;  // in ULONGs, as KeInitializeXxx sets it
                UCHAR Hand;
                UCHAR ThreadControlFlags;
            };
            union {
                UCHAR TimerMiscFlags;
                BOOLEAN DebugActive;
                BOOLEAN DpcActive;
                UCHAR Inserted;  // the Windows Server 2003 name of byte 3
            };
        };
        volatile LONG Lock;
        LONG LockNV;
    };
    LONG SignalState;
    LIST_ENTRY WaitListHead;  // KWAIT_BLOCK.WaitListEntry, FIFO: arrivals at the tail
};

struct KWAIT_BLOCK {
    LIST_ENTRY WaitListEntry;  // link in the object's WaitListHead
    PKTHREAD Thread;
    PVOID Object;
    KWAIT_BLOCK* NextWaitBlock;  // the thread's blocks of one wait form a ring
    USHORT WaitKey;              // index in the wait: the WaitAny status
    UCHAR WaitType;              // WAIT_TYPE
    UCHAR BlockState;            // 1 while linked into an object's wait list
};
using PKWAIT_BLOCK = KWAIT_BLOCK*;

// KMUTEX is a KMUTANT with ApcDisable = 1 [ros-mutex].
struct KMUTANT {
    DISPATCHER_HEADER Header;    // SignalState: 1 free, 1-n owned n times
    LIST_ENTRY MutantListEntry;  // link in OwnerThread->MutantListHead
    PKTHREAD OwnerThread;
    BOOLEAN Abandoned;
    UCHAR ApcDisable;
};
using KMUTEX = KMUTANT;
using PKMUTANT = KMUTANT*;
using PRKMUTANT = KMUTANT*;
using PKMUTEX = KMUTEX*;
using PRKMUTEX = KMUTEX*;

struct KEVENT {
    DISPATCHER_HEADER Header;  // Type is the EVENT_TYPE (0 or 1)
};
using PKEVENT = KEVENT*;
using PRKEVENT = KEVENT*;

struct KSEMAPHORE {
    DISPATCHER_HEADER Header;  // SignalState is the count
    LONG Limit;
};
using PKSEMAPHORE = KSEMAPHORE*;
using PRKSEMAPHORE = KSEMAPHORE*;

// A gate is a synchronization-event-like object that wakes one waiter.
struct KGATE {
    DISPATCHER_HEADER Header;
};
using PKGATE = KGATE*;

// Count uses the lock-bit encoding (FM_LOCK_BIT etc. in ntdef.hpp):
//   bit 0      1 = free, 0 = held
//   bit 1      a waiter has been woken and will retry (at most one at a time)
//   bits 2..31 number of blocked waiters, in steps of FM_LOCK_WAITER_INC
// Legal quiescent states: 1 (free). Held with k waiters: 4k (+2 while a woken
// waiter is on its way).
struct FAST_MUTEX {
    LONG Count;
    PKTHREAD Owner;
    ULONG Contention;  // slow-path entries
    KEVENT Event;      // SynchronizationEvent the waiters block on
    ULONG OldIrql;     // IRQL before ExAcquireFastMutex; not set by init [kmt-ExFastMutex]
};
using PFAST_MUTEX = FAST_MUTEX*;

struct KGUARDED_MUTEX {
    LONG Count;  // same encoding as FAST_MUTEX::Count
    PKTHREAD Owner;
    ULONG Contention;
    KGATE Gate;
    union {
        struct {
            SHORT KernelApcDisable;
            SHORT SpecialApcDisable;
        };
        ULONG CombinedApcDisable;
    };
};
using PKGUARDED_MUTEX = KGUARDED_MUTEX*;

struct KTHREAD {
    DISPATCHER_HEADER Header;  // ThreadObject; Not-Signaled while the thread runs
    // The thread's virtual IRQL (emulator field), and beside it the verifier
    // gate (emulator field): nonzero while the flavour is `verifier`. The
    // lock routines' fast paths compare IrqlGate, the two bytes as one
    // little-endian word, with the ceiling they compared Irql with: the same
    // one instruction, and a nonzero gate makes it fail into the routine's
    // slow path, where the verifier's hooks run (kernel/verifier.hpp). Free
    // and checked pay nothing for the verifier.
    union {
        struct {
            KIRQL Irql;
            UCHAR VerifierGate;
        };
        USHORT IrqlGate;
    };
    BOOLEAN WaitNext;          // a Wait = TRUE release left the dispatcher lock held
    KIRQL WaitIrql;            // the IRQL to restore in the KeWaitXxx that follows
    BOOLEAN Alertable;         // of the current wait
    KPROCESSOR_MODE WaitMode;  // of the current wait
    BOOLEAN Alerted[MaximumMode];
    BOOLEAN SystemThread;
    BOOLEAN Terminated;
    // The thread's scheduling priority and the base it is boosted from and
    // decays to [ros-thrd]: both 8 at creation, the System process's base, as
    // kmtest sees for system threads and its own [kmt-KeEvent]. Priority is
    // written under the dispatcher lock (a boost when a wait is satisfied,
    // KeSetPriorityThread) and read without it (KeQueryPriorityThread).
    SCHAR Priority;
    SCHAR BasePriority;
    // Both counters count down from 0: KeEnterCriticalRegion decrements
    // KernelApcDisable, KeEnterGuardedRegion decrements SpecialApcDisable
    // [ros-kex]. CombinedApcDisable = (SpecialApcDisable << 16) | KernelApcDisable
    // on this little-endian layout, as bug check 0x1 reports it [bc:0x1].
    union {
        struct {
            SHORT KernelApcDisable;
            SHORT SpecialApcDisable;
        };
        ULONG CombinedApcDisable;
    };
    LONG_PTR WaitStatus;
    LIST_ENTRY MutantListHead;  // KMUTANT.MutantListEntry of every mutant owned
    KWAIT_BLOCK WaitBlock[THREAD_WAIT_OBJECTS];
    PKWAIT_BLOCK WaitBlockList;  // the blocks of the wait in progress, or nullptr
    // KMUTEX-semantics locks owned that are not dispatcher mutants (the
    // idiomatic KMutex over futex or spin): kernel::OwnedKMutexLink entries in
    // acquisition order, as MutantListHead holds mutants, so that thread exit
    // finds each one still held (emulator field).
    LIST_ENTRY OwnedKMutexListHead;
    kmlab::kernel::detail::ThreadExtra* Extra;  // emulator state: parking word, references, APCs
};

// The one process every emulated thread belongs to (PsInitialSystemProcess):
// of type ProcessObject, never signaled while the program runs. Opaque in the
// WDK; the emulator's holds only its header.
struct KPROCESS {
    DISPATCHER_HEADER Header;
};

// Every dispatcher object begins with its header, so a PVOID naming any of
// them converts to the header; this needs standard layout.
static_assert(std::is_standard_layout_v<KMUTANT> && offsetof(KMUTANT, Header) == 0);
static_assert(std::is_standard_layout_v<KEVENT> && std::is_standard_layout_v<KSEMAPHORE>);
static_assert(std::is_standard_layout_v<KTHREAD> && offsetof(KTHREAD, Header) == 0);

// The WDK's amd64 sizes [ros-xket], so that code which embeds these objects in
// its own structures, or checks sizeof as the kmtests do, sees Windows' layout.
// KTHREAD cannot match: the emulator's KTHREAD holds only the fields it uses,
// plus its own (the virtual IRQL, the emulator state pointer).
#if defined(__x86_64__)
static_assert(sizeof(DISPATCHER_HEADER) == 24 && offsetof(DISPATCHER_HEADER, SignalState) == 4);
static_assert(offsetof(DISPATCHER_HEADER, WaitListHead) == 8);
static_assert(sizeof(KEVENT) == 24 && sizeof(KSEMAPHORE) == 32 && sizeof(KMUTANT) == 56);
static_assert(offsetof(KMUTANT, MutantListEntry) == 24 && offsetof(KMUTANT, OwnerThread) == 40);
static_assert(offsetof(KMUTANT, Abandoned) == 48 && offsetof(KMUTANT, ApcDisable) == 49);
static_assert(sizeof(FAST_MUTEX) == 56 && offsetof(FAST_MUTEX, Event) == 24);
static_assert(offsetof(FAST_MUTEX, OldIrql) == 48);
static_assert(sizeof(KGUARDED_MUTEX) == 56 && offsetof(KGUARDED_MUTEX, Gate) == 24);
#endif

}  // namespace kmlab::nt
