// The C face's entry points (<kmlab/wdm.h>): extern "C" thunks over kmlab::nt.
//
// Each thunk converts the C structures to kmlab::nt's (the same bytes: the
// static_asserts below hold the layouts together) and calls the C++ routine
// inside `call`, which keeps every error exception out of the C caller's
// frames, as wdm.h promises: a BugCheck or NtException is caught here, the
// C++ frames have unwound, and the bug check is reported from a frame that
// holds nothing, so a handler may longjmp out of it.
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include <kmlab/kernel/verifier.hpp>
#include <kmlab/kmlab_nt.hpp>
// Last: after the C++ face, so that wdm.h's global names never shadow
// kmlab::nt's, and after the standard headers, which its SAL macros
// (_In_, _Out_, ...) must not reach.
#include <kmlab/ntddk.h>  // wdm.h, and KTHREAD's fields for C

namespace {

namespace nt = kmlab::nt;

// ---- The C layouts are kmlab::nt's ----
#define KMLAB_SAME_SIZE(C, Cpp) \
    static_assert(sizeof(C) == sizeof(Cpp) && alignof(C) == alignof(Cpp))
// Offset and width: padding can hide a field declared narrower in one face.
#define KMLAB_SAME_FIELD(C, Cpp, f)                     \
    static_assert(offsetof(C, f) == offsetof(Cpp, f) && \
                  sizeof(std::declval<C&>().f) == sizeof(std::declval<Cpp&>().f))
KMLAB_SAME_SIZE(::LARGE_INTEGER, nt::LARGE_INTEGER);
KMLAB_SAME_FIELD(::LARGE_INTEGER, nt::LARGE_INTEGER, QuadPart);
KMLAB_SAME_FIELD(::LARGE_INTEGER, nt::LARGE_INTEGER, u.LowPart);
KMLAB_SAME_FIELD(::LARGE_INTEGER, nt::LARGE_INTEGER, u.HighPart);
KMLAB_SAME_SIZE(::LIST_ENTRY, nt::LIST_ENTRY);
KMLAB_SAME_FIELD(::LIST_ENTRY, nt::LIST_ENTRY, Flink);
KMLAB_SAME_FIELD(::LIST_ENTRY, nt::LIST_ENTRY, Blink);
KMLAB_SAME_SIZE(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, Type);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, TimerControlFlags);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, Absolute);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, Abandoned);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, Signalling);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, Size);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, Hand);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, ThreadControlFlags);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, TimerMiscFlags);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, DebugActive);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, DpcActive);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, Inserted);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, Lock);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, LockNV);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, SignalState);
KMLAB_SAME_FIELD(::DISPATCHER_HEADER, nt::DISPATCHER_HEADER, WaitListHead);
KMLAB_SAME_SIZE(::KWAIT_BLOCK, nt::KWAIT_BLOCK);
KMLAB_SAME_FIELD(::KWAIT_BLOCK, nt::KWAIT_BLOCK, WaitListEntry);
KMLAB_SAME_FIELD(::KWAIT_BLOCK, nt::KWAIT_BLOCK, Thread);
KMLAB_SAME_FIELD(::KWAIT_BLOCK, nt::KWAIT_BLOCK, Object);
KMLAB_SAME_FIELD(::KWAIT_BLOCK, nt::KWAIT_BLOCK, NextWaitBlock);
KMLAB_SAME_FIELD(::KWAIT_BLOCK, nt::KWAIT_BLOCK, WaitKey);
KMLAB_SAME_FIELD(::KWAIT_BLOCK, nt::KWAIT_BLOCK, WaitType);
KMLAB_SAME_FIELD(::KWAIT_BLOCK, nt::KWAIT_BLOCK, BlockState);
KMLAB_SAME_SIZE(::KMUTANT, nt::KMUTANT);
KMLAB_SAME_FIELD(::KMUTANT, nt::KMUTANT, Header);
KMLAB_SAME_FIELD(::KMUTANT, nt::KMUTANT, MutantListEntry);
KMLAB_SAME_FIELD(::KMUTANT, nt::KMUTANT, OwnerThread);
KMLAB_SAME_FIELD(::KMUTANT, nt::KMUTANT, Abandoned);
KMLAB_SAME_FIELD(::KMUTANT, nt::KMUTANT, ApcDisable);
KMLAB_SAME_SIZE(::KEVENT, nt::KEVENT);
KMLAB_SAME_FIELD(::KEVENT, nt::KEVENT, Header);
KMLAB_SAME_SIZE(::KSEMAPHORE, nt::KSEMAPHORE);
KMLAB_SAME_FIELD(::KSEMAPHORE, nt::KSEMAPHORE, Header);
KMLAB_SAME_FIELD(::KSEMAPHORE, nt::KSEMAPHORE, Limit);
KMLAB_SAME_SIZE(::KGATE, nt::KGATE);
KMLAB_SAME_FIELD(::KGATE, nt::KGATE, Header);
KMLAB_SAME_SIZE(::FAST_MUTEX, nt::FAST_MUTEX);
KMLAB_SAME_FIELD(::FAST_MUTEX, nt::FAST_MUTEX, Count);
KMLAB_SAME_FIELD(::FAST_MUTEX, nt::FAST_MUTEX, Owner);
KMLAB_SAME_FIELD(::FAST_MUTEX, nt::FAST_MUTEX, Contention);
KMLAB_SAME_FIELD(::FAST_MUTEX, nt::FAST_MUTEX, Event);
KMLAB_SAME_FIELD(::FAST_MUTEX, nt::FAST_MUTEX, OldIrql);
KMLAB_SAME_SIZE(::KGUARDED_MUTEX, nt::KGUARDED_MUTEX);
KMLAB_SAME_FIELD(::KGUARDED_MUTEX, nt::KGUARDED_MUTEX, Count);
KMLAB_SAME_FIELD(::KGUARDED_MUTEX, nt::KGUARDED_MUTEX, Owner);
KMLAB_SAME_FIELD(::KGUARDED_MUTEX, nt::KGUARDED_MUTEX, Contention);
KMLAB_SAME_FIELD(::KGUARDED_MUTEX, nt::KGUARDED_MUTEX, Gate);
KMLAB_SAME_FIELD(::KGUARDED_MUTEX, nt::KGUARDED_MUTEX, KernelApcDisable);
KMLAB_SAME_FIELD(::KGUARDED_MUTEX, nt::KGUARDED_MUTEX, SpecialApcDisable);
KMLAB_SAME_FIELD(::KGUARDED_MUTEX, nt::KGUARDED_MUTEX, CombinedApcDisable);
KMLAB_SAME_SIZE(::UNICODE_STRING, nt::UNICODE_STRING);
KMLAB_SAME_FIELD(::UNICODE_STRING, nt::UNICODE_STRING, Length);
KMLAB_SAME_FIELD(::UNICODE_STRING, nt::UNICODE_STRING, MaximumLength);
KMLAB_SAME_FIELD(::UNICODE_STRING, nt::UNICODE_STRING, Buffer);
KMLAB_SAME_SIZE(::OBJECT_ATTRIBUTES, nt::OBJECT_ATTRIBUTES);
KMLAB_SAME_FIELD(::OBJECT_ATTRIBUTES, nt::OBJECT_ATTRIBUTES, Length);
KMLAB_SAME_FIELD(::OBJECT_ATTRIBUTES, nt::OBJECT_ATTRIBUTES, RootDirectory);
KMLAB_SAME_FIELD(::OBJECT_ATTRIBUTES, nt::OBJECT_ATTRIBUTES, ObjectName);
KMLAB_SAME_FIELD(::OBJECT_ATTRIBUTES, nt::OBJECT_ATTRIBUTES, Attributes);
KMLAB_SAME_FIELD(::OBJECT_ATTRIBUTES, nt::OBJECT_ATTRIBUTES, SecurityDescriptor);
KMLAB_SAME_FIELD(::OBJECT_ATTRIBUTES, nt::OBJECT_ATTRIBUTES, SecurityQualityOfService);
KMLAB_SAME_SIZE(::CLIENT_ID, nt::CLIENT_ID);
KMLAB_SAME_FIELD(::CLIENT_ID, nt::CLIENT_ID, UniqueProcess);
KMLAB_SAME_FIELD(::CLIENT_ID, nt::CLIENT_ID, UniqueThread);
KMLAB_SAME_SIZE(::OBJECT_HANDLE_INFORMATION, nt::OBJECT_HANDLE_INFORMATION);
KMLAB_SAME_FIELD(::OBJECT_HANDLE_INFORMATION, nt::OBJECT_HANDLE_INFORMATION, HandleAttributes);
KMLAB_SAME_FIELD(::OBJECT_HANDLE_INFORMATION, nt::OBJECT_HANDLE_INFORMATION, GrantedAccess);
static_assert(offsetof(::LARGE_INTEGER, LowPart) == offsetof(nt::LARGE_INTEGER, u.LowPart) &&
              offsetof(::LARGE_INTEGER, HighPart) == offsetof(nt::LARGE_INTEGER, u.HighPart));
// ntddk.h's KTHREAD: the emulated thread object, field by field.
KMLAB_SAME_SIZE(::KTHREAD, nt::KTHREAD);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, Header);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, Irql);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, VerifierGate);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, WaitNext);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, WaitIrql);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, Alertable);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, WaitMode);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, Alerted);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, SystemThread);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, Terminated);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, Priority);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, BasePriority);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, KernelApcDisable);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, SpecialApcDisable);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, CombinedApcDisable);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, WaitStatus);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, MutantListHead);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, WaitBlock);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, WaitBlockList);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, OwnedKMutexListHead);
KMLAB_SAME_FIELD(::KTHREAD, nt::KTHREAD, Extra);
static_assert(::CMCI_LEVEL == nt::CMCI_LEVEL);
// Spin locks.
KMLAB_SAME_SIZE(::KSPIN_LOCK, nt::KSPIN_LOCK);
KMLAB_SAME_SIZE(::KSPIN_LOCK_QUEUE, nt::KSPIN_LOCK_QUEUE);
KMLAB_SAME_FIELD(::KSPIN_LOCK_QUEUE, nt::KSPIN_LOCK_QUEUE, Next);
KMLAB_SAME_FIELD(::KSPIN_LOCK_QUEUE, nt::KSPIN_LOCK_QUEUE, Lock);
KMLAB_SAME_SIZE(::KLOCK_QUEUE_HANDLE, nt::KLOCK_QUEUE_HANDLE);
KMLAB_SAME_FIELD(::KLOCK_QUEUE_HANDLE, nt::KLOCK_QUEUE_HANDLE, LockQueue);
KMLAB_SAME_FIELD(::KLOCK_QUEUE_HANDLE, nt::KLOCK_QUEUE_HANDLE, OldIrql);
// ERESOURCE (OWNER_ENTRY's bit-fields share TableSize's word, checked whole).
KMLAB_SAME_SIZE(::OWNER_ENTRY, nt::OWNER_ENTRY);
KMLAB_SAME_FIELD(::OWNER_ENTRY, nt::OWNER_ENTRY, OwnerThread);
KMLAB_SAME_FIELD(::OWNER_ENTRY, nt::OWNER_ENTRY, TableSize);
KMLAB_SAME_SIZE(::ERESOURCE, nt::ERESOURCE);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, SystemResourcesList);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, OwnerTable);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, ActiveCount);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, Flag);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, SharedWaiters);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, ExclusiveWaiters);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, OwnerEntry);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, ActiveEntries);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, ContentionCount);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, NumberOfSharedWaiters);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, NumberOfExclusiveWaiters);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, Reserved2);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, Address);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, CreatorBackTraceIndex);
KMLAB_SAME_FIELD(::ERESOURCE, nt::ERESOURCE, SpinLock);
static_assert(::ResourceOwnedExclusive == nt::ResourceOwnedExclusive &&
              ::ResourceNeverExclusive == nt::ResourceNeverExclusive &&
              ::ResourceReleaseByOtherThread == nt::ResourceReleaseByOtherThread);
// Push locks and EX_SPIN_LOCK.
KMLAB_SAME_SIZE(::EX_PUSH_LOCK, nt::EX_PUSH_LOCK);
KMLAB_SAME_SIZE(::EX_SPIN_LOCK, nt::EX_SPIN_LOCK);
KMLAB_SAME_SIZE(::LOGICAL, nt::LOGICAL);
static_assert(::EX_DEFAULT_PUSH_LOCK_FLAGS == nt::EX_DEFAULT_PUSH_LOCK_FLAGS);
// KTIMER and KDPC.
KMLAB_SAME_SIZE(::ULARGE_INTEGER, nt::ULARGE_INTEGER);
KMLAB_SAME_FIELD(::ULARGE_INTEGER, nt::ULARGE_INTEGER, QuadPart);
KMLAB_SAME_FIELD(::ULARGE_INTEGER, nt::ULARGE_INTEGER, u.LowPart);
KMLAB_SAME_FIELD(::ULARGE_INTEGER, nt::ULARGE_INTEGER, u.HighPart);
KMLAB_SAME_SIZE(::KDPC, nt::KDPC);
KMLAB_SAME_FIELD(::KDPC, nt::KDPC, Type);
KMLAB_SAME_FIELD(::KDPC, nt::KDPC, Importance);
KMLAB_SAME_FIELD(::KDPC, nt::KDPC, Number);
KMLAB_SAME_FIELD(::KDPC, nt::KDPC, DpcListEntry);
KMLAB_SAME_FIELD(::KDPC, nt::KDPC, DeferredRoutine);
KMLAB_SAME_FIELD(::KDPC, nt::KDPC, DeferredContext);
KMLAB_SAME_FIELD(::KDPC, nt::KDPC, SystemArgument1);
KMLAB_SAME_FIELD(::KDPC, nt::KDPC, SystemArgument2);
KMLAB_SAME_FIELD(::KDPC, nt::KDPC, DpcData);
KMLAB_SAME_SIZE(::KTIMER, nt::KTIMER);
KMLAB_SAME_FIELD(::KTIMER, nt::KTIMER, Header);
KMLAB_SAME_FIELD(::KTIMER, nt::KTIMER, DueTime);
KMLAB_SAME_FIELD(::KTIMER, nt::KTIMER, TimerListEntry);
KMLAB_SAME_FIELD(::KTIMER, nt::KTIMER, Dpc);
KMLAB_SAME_FIELD(::KTIMER, nt::KTIMER, Processor);
KMLAB_SAME_FIELD(::KTIMER, nt::KTIMER, Period);
KMLAB_SAME_SIZE(::TIMER_TYPE, nt::TIMER_TYPE);
KMLAB_SAME_SIZE(::KDPC_IMPORTANCE, nt::KDPC_IMPORTANCE);
static_assert(::SynchronizationTimer == static_cast<int>(nt::SynchronizationTimer) &&
              ::HighImportance == static_cast<int>(nt::HighImportance) &&
              ::DpcObject == nt::DpcObject);
static_assert(::STATUS_INVALID_PARAMETER_3 == static_cast<::NTSTATUS>(0xC00000F1u) &&
              ::STATUS_POSSIBLE_DEADLOCK == nt::STATUS_POSSIBLE_DEADLOCK &&
              ::STATUS_DELETE_PENDING == nt::STATUS_DELETE_PENDING);
// The enumerations a C caller passes by value have the C++ ones' width.
KMLAB_SAME_SIZE(::EVENT_TYPE, nt::EVENT_TYPE);
KMLAB_SAME_SIZE(::WAIT_TYPE, nt::WAIT_TYPE);
KMLAB_SAME_SIZE(::KWAIT_REASON, nt::KWAIT_REASON);
KMLAB_SAME_SIZE(::POOL_TYPE, nt::POOL_TYPE);
#undef KMLAB_SAME_SIZE
#undef KMLAB_SAME_FIELD
static_assert(::STATUS_MUTANT_NOT_OWNED == nt::STATUS_MUTANT_NOT_OWNED);
static_assert(::STATUS_MUTANT_LIMIT_EXCEEDED == nt::STATUS_MUTANT_LIMIT_EXCEEDED);
static_assert(::STATUS_SEMAPHORE_LIMIT_EXCEEDED == nt::STATUS_SEMAPHORE_LIMIT_EXCEEDED);
static_assert(::WrGuardedMutex == static_cast<int>(nt::WrGuardedMutex));
static_assert(::MaximumWaitReason == static_cast<int>(nt::MaximumWaitReason));
static_assert(::HIGH_LEVEL == nt::HIGH_LEVEL && ::SYNCH_LEVEL == nt::SYNCH_LEVEL);
static_assert(::PagedPool == static_cast<int>(nt::PagedPool) &&
              ::NonPagedPoolNx == static_cast<int>(nt::NonPagedPoolNx));
static_assert(::THREAD_ALL_ACCESS == static_cast<int>(nt::THREAD_ALL_ACCESS));
static_assert(::EVENT_ALL_ACCESS == static_cast<int>(nt::EVENT_ALL_ACCESS) &&
              ::EVENT_MODIFY_STATE == static_cast<int>(nt::EVENT_MODIFY_STATE));
static_assert(::STATUS_NOT_SUPPORTED == nt::STATUS_NOT_SUPPORTED &&
              ::STATUS_BREAKPOINT == nt::STATUS_BREAKPOINT);
static_assert(::LOW_REALTIME_PRIORITY == nt::LOW_REALTIME_PRIORITY &&
              ::HIGH_PRIORITY == nt::HIGH_PRIORITY && ::LOW_PRIORITY == nt::LOW_PRIORITY &&
              ::MAXIMUM_PRIORITY == nt::MAXIMUM_PRIORITY);

// Same bytes, another name: the C struct and kmlab::nt's are layout-identical.
template <class To, class From>
To* as(From* p) noexcept {
    return reinterpret_cast<To*>(p);
}

std::atomic<::KMLAB_BUGCHECK_HANDLER> g_handler{nullptr};

// Takes plain values: a C handler may longjmp out, and any object alive in
// these frames that owns memory (a kmlab::BugCheck holds its message) would
// then leak (AddressSanitizer's leak check caught one in examples/driver_c).
[[noreturn]] void report(kmlab::nt::ULONG code, const kmlab::nt::ULONG_PTR (&p)[4]) noexcept {
    if (auto handler = g_handler.load(std::memory_order_acquire)) {
        handler(code, p[0], p[1], p[2], p[3]);
    } else {
        kmlab::report_fatal_bug_check(kmlab::BugCheck(code, p[0], p[1], p[2], p[3]));
    }
    // A C caller cannot be told the routine failed: it would go on as if the
    // object were in the state it asked for.
    std::abort();
}

// Runs `f`; an error it throws becomes a bug-check report after the C++
// frames have unwound. Not noexcept: PsTerminateSystemThread's unwind passes.
template <class F>
auto call(F f) {
    kmlab::nt::ULONG code = 0;
    kmlab::nt::ULONG_PTR p[4] = {};
    try {
        return f();
    } catch (const kmlab::BugCheck& bc) {
        code = bc.code();
        for (int i = 0; i < 4; ++i) p[i] = bc.parameter(i + 1);
    } catch (const kmlab::NtException& e) {
        // What Windows does with an exception no __except handles [bc:0x1E].
        code = kmlab::bugcheck::KMODE_EXCEPTION_NOT_HANDLED;
        p[0] = static_cast<kmlab::nt::ULONG_PTR>(static_cast<kmlab::nt::ULONG>(e.status()));
    } catch (const std::exception& e) {
        // The emulator's own failures (std::bad_alloc creating a system
        // thread, std::system_error from a lock) must not cross a C frame
        // either: reported as an unhandled exception with the nearest status.
        // PsTerminateSystemThread's unwind is no std::exception and passes.
        code = kmlab::bugcheck::KMODE_EXCEPTION_NOT_HANDLED;
        const kmlab::nt::NTSTATUS s = dynamic_cast<const std::bad_alloc*>(&e) != nullptr
                                          ? kmlab::nt::STATUS_INSUFFICIENT_RESOURCES
                                          : kmlab::nt::STATUS_UNSUCCESSFUL;
        p[0] = static_cast<kmlab::nt::ULONG_PTR>(static_cast<kmlab::nt::ULONG>(s));
    }
    report(code, p);
}

}  // namespace

extern "C" {

POBJECT_TYPE* PsThreadType = reinterpret_cast<::POBJECT_TYPE*>(nt::PsThreadType);
POBJECT_TYPE* ExEventObjectType = reinterpret_cast<::POBJECT_TYPE*>(nt::ExEventObjectType);
PEPROCESS PsInitialSystemProcess = reinterpret_cast<::PEPROCESS>(nt::PsInitialSystemProcess);

KMLAB_BUGCHECK_HANDLER KmlabSetBugCheckHandler(KMLAB_BUGCHECK_HANDLER Handler) {
    return g_handler.exchange(Handler, std::memory_order_acq_rel);
}

KMLAB_FLAVOR KmlabGetFlavor(VOID) {
    switch (kmlab::flavor()) {
        case kmlab::Flavor::free:
            return KmlabFlavorFree;
        case kmlab::Flavor::verifier:
            return KmlabFlavorVerifier;
        case kmlab::Flavor::checked:
            break;
    }
    return KmlabFlavorChecked;
}
KMLAB_FLAVOR KmlabSetFlavor(KMLAB_FLAVOR Flavor) {
    const KMLAB_FLAVOR previous = KmlabGetFlavor();
    kmlab::set_flavor(Flavor == KmlabFlavorFree       ? kmlab::Flavor::free
                      : Flavor == KmlabFlavorVerifier ? kmlab::Flavor::verifier
                                                      : kmlab::Flavor::checked);
    return previous;
}

// ---- KMUTEX and mutants ----
VOID KeInitializeMutex(PRKMUTEX Mutex, ULONG Level) {
    const kmlab::kernel::verifier::InitSite site(__builtin_return_address(0));
    call([&] { nt::KeInitializeMutex(as<nt::KMUTEX>(Mutex), Level); });
}
LONG KeReleaseMutex(PRKMUTEX Mutex, BOOLEAN Wait) {
    return call([&] { return nt::KeReleaseMutex(as<nt::KMUTEX>(Mutex), Wait); });
}
LONG KeReadStateMutex(PRKMUTEX Mutex) {
    return call([&] { return nt::KeReadStateMutex(as<nt::KMUTEX>(Mutex)); });
}
VOID KeInitializeMutant(PRKMUTANT Mutant, BOOLEAN InitialOwner) {
    const kmlab::kernel::verifier::InitSite site(__builtin_return_address(0));
    call([&] { nt::KeInitializeMutant(as<nt::KMUTANT>(Mutant), InitialOwner); });
}
LONG KeReleaseMutant(PRKMUTANT Mutant, KPRIORITY Increment, BOOLEAN Abandon, BOOLEAN Wait) {
    return call(
        [&] { return nt::KeReleaseMutant(as<nt::KMUTANT>(Mutant), Increment, Abandon, Wait); });
}
LONG KeReadStateMutant(PRKMUTANT Mutant) {
    return call([&] { return nt::KeReadStateMutant(as<nt::KMUTANT>(Mutant)); });
}

// ---- Events ----
VOID KeInitializeEvent(PRKEVENT Event, EVENT_TYPE Type, BOOLEAN State) {
    call([&] {
        nt::KeInitializeEvent(as<nt::KEVENT>(Event), static_cast<nt::EVENT_TYPE>(Type), State);
    });
}
LONG KeSetEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait) {
    return call([&] { return nt::KeSetEvent(as<nt::KEVENT>(Event), Increment, Wait); });
}
LONG KeResetEvent(PRKEVENT Event) {
    return call([&] { return nt::KeResetEvent(as<nt::KEVENT>(Event)); });
}
VOID KeClearEvent(PRKEVENT Event) {
    call([&] { nt::KeClearEvent(as<nt::KEVENT>(Event)); });
}
LONG KePulseEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait) {
    return call([&] { return nt::KePulseEvent(as<nt::KEVENT>(Event), Increment, Wait); });
}
LONG KeReadStateEvent(PRKEVENT Event) {
    return call([&] { return nt::KeReadStateEvent(as<nt::KEVENT>(Event)); });
}

// ---- Semaphores ----
VOID KeInitializeSemaphore(PRKSEMAPHORE Semaphore, LONG Count, LONG Limit) {
    call([&] { nt::KeInitializeSemaphore(as<nt::KSEMAPHORE>(Semaphore), Count, Limit); });
}
LONG KeReleaseSemaphore(PRKSEMAPHORE Semaphore, KPRIORITY Increment, LONG Adjustment,
                        BOOLEAN Wait) {
    return call([&] {
        return nt::KeReleaseSemaphore(as<nt::KSEMAPHORE>(Semaphore), Increment, Adjustment, Wait);
    });
}
LONG KeReadStateSemaphore(PRKSEMAPHORE Semaphore) {
    return call([&] { return nt::KeReadStateSemaphore(as<nt::KSEMAPHORE>(Semaphore)); });
}

// ---- Waits ----
NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                               BOOLEAN Alertable, PLARGE_INTEGER Timeout) {
    return call([&] {
        return nt::KeWaitForSingleObject(Object, static_cast<nt::KWAIT_REASON>(WaitReason),
                                         WaitMode, Alertable, as<nt::LARGE_INTEGER>(Timeout));
    });
}
NTSTATUS KeWaitForMutexObject(PVOID Mutex, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                              BOOLEAN Alertable, PLARGE_INTEGER Timeout) {
    return call([&] {
        return nt::KeWaitForMutexObject(Mutex, static_cast<nt::KWAIT_REASON>(WaitReason), WaitMode,
                                        Alertable, as<nt::LARGE_INTEGER>(Timeout));
    });
}
NTSTATUS KeWaitForMultipleObjects(ULONG Count, PVOID Object[], WAIT_TYPE WaitType,
                                  KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                                  BOOLEAN Alertable, PLARGE_INTEGER Timeout,
                                  PKWAIT_BLOCK WaitBlockArray) {
    return call([&] {
        return nt::KeWaitForMultipleObjects(Count, Object, static_cast<nt::WAIT_TYPE>(WaitType),
                                            static_cast<nt::KWAIT_REASON>(WaitReason), WaitMode,
                                            Alertable, as<nt::LARGE_INTEGER>(Timeout),
                                            as<nt::KWAIT_BLOCK>(WaitBlockArray));
    });
}
NTSTATUS KeDelayExecutionThread(KPROCESSOR_MODE WaitMode, BOOLEAN Alertable,
                                PLARGE_INTEGER Interval) {
    return call([&] {
        return nt::KeDelayExecutionThread(WaitMode, Alertable, as<nt::LARGE_INTEGER>(Interval));
    });
}

// ---- FAST_MUTEX ----
VOID ExInitializeFastMutex(PFAST_MUTEX FastMutex) {
    const kmlab::kernel::verifier::InitSite site(__builtin_return_address(0));
    call([&] { nt::ExInitializeFastMutex(as<nt::FAST_MUTEX>(FastMutex)); });
}
VOID ExAcquireFastMutex(PFAST_MUTEX FastMutex) {
    call([&] { nt::ExAcquireFastMutex(as<nt::FAST_MUTEX>(FastMutex)); });
}
BOOLEAN ExTryToAcquireFastMutex(PFAST_MUTEX FastMutex) {
    return call([&] { return nt::ExTryToAcquireFastMutex(as<nt::FAST_MUTEX>(FastMutex)); });
}
VOID ExReleaseFastMutex(PFAST_MUTEX FastMutex) {
    call([&] { nt::ExReleaseFastMutex(as<nt::FAST_MUTEX>(FastMutex)); });
}
VOID ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    call([&] { nt::ExAcquireFastMutexUnsafe(as<nt::FAST_MUTEX>(FastMutex)); });
}
VOID ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    call([&] { nt::ExReleaseFastMutexUnsafe(as<nt::FAST_MUTEX>(FastMutex)); });
}

VOID ExEnterCriticalRegionAndAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex) {
    call(
        [&] { nt::ExEnterCriticalRegionAndAcquireFastMutexUnsafe(as<nt::FAST_MUTEX>(FastMutex)); });
}
VOID ExReleaseFastMutexUnsafeAndLeaveCriticalRegion(PFAST_MUTEX FastMutex) {
    call(
        [&] { nt::ExReleaseFastMutexUnsafeAndLeaveCriticalRegion(as<nt::FAST_MUTEX>(FastMutex)); });
}

// ---- KGUARDED_MUTEX ----
VOID KeInitializeGuardedMutex(PKGUARDED_MUTEX Mutex) {
    const kmlab::kernel::verifier::InitSite site(__builtin_return_address(0));
    call([&] { nt::KeInitializeGuardedMutex(as<nt::KGUARDED_MUTEX>(Mutex)); });
}
VOID KeAcquireGuardedMutex(PKGUARDED_MUTEX Mutex) {
    call([&] { nt::KeAcquireGuardedMutex(as<nt::KGUARDED_MUTEX>(Mutex)); });
}
BOOLEAN KeTryToAcquireGuardedMutex(PKGUARDED_MUTEX Mutex) {
    return call([&] { return nt::KeTryToAcquireGuardedMutex(as<nt::KGUARDED_MUTEX>(Mutex)); });
}
VOID KeReleaseGuardedMutex(PKGUARDED_MUTEX Mutex) {
    call([&] { nt::KeReleaseGuardedMutex(as<nt::KGUARDED_MUTEX>(Mutex)); });
}
VOID KeAcquireGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex) {
    call([&] { nt::KeAcquireGuardedMutexUnsafe(as<nt::KGUARDED_MUTEX>(Mutex)); });
}
VOID KeReleaseGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex) {
    call([&] { nt::KeReleaseGuardedMutexUnsafe(as<nt::KGUARDED_MUTEX>(Mutex)); });
}

// ---- Threads, IRQL and regions ----
PKTHREAD KeGetCurrentThread(VOID) {
    return call([] { return as<::KTHREAD>(nt::KeGetCurrentThread()); });
}
PETHREAD PsGetCurrentThread(VOID) {
    return call([] { return as<::ETHREAD>(nt::PsGetCurrentThread()); });
}
BOOLEAN PsIsSystemThread(PETHREAD Thread) {
    return call([&] { return nt::PsIsSystemThread(as<nt::KTHREAD>(Thread)); });
}
KIRQL KeGetCurrentIrql(VOID) {
    return call([] { return nt::KeGetCurrentIrql(); });
}
KIRQL KfRaiseIrql(KIRQL NewIrql) {
    return call([&] { return nt::KfRaiseIrql(NewIrql); });
}
VOID KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql) {
    call([&] { nt::KeRaiseIrql(NewIrql, OldIrql); });
}
VOID KfLowerIrql(KIRQL NewIrql) {
    call([&] { nt::KfLowerIrql(NewIrql); });
}
VOID KeLowerIrql(KIRQL NewIrql) {
    call([&] { nt::KeLowerIrql(NewIrql); });
}
KIRQL KeRaiseIrqlToDpcLevel(VOID) {
    return call([] { return nt::KeRaiseIrqlToDpcLevel(); });
}
KIRQL KeRaiseIrqlToSynchLevel(VOID) {
    return call([] { return nt::KeRaiseIrqlToSynchLevel(); });
}
VOID KeEnterCriticalRegion(VOID) {
    call([] { nt::KeEnterCriticalRegion(); });
}
VOID KeLeaveCriticalRegion(VOID) {
    call([] { nt::KeLeaveCriticalRegion(); });
}
VOID KeEnterGuardedRegion(VOID) {
    call([] { nt::KeEnterGuardedRegion(); });
}
VOID KeLeaveGuardedRegion(VOID) {
    call([] { nt::KeLeaveGuardedRegion(); });
}
BOOLEAN KeAreApcsDisabled(VOID) {
    return call([] { return nt::KeAreApcsDisabled(); });
}
BOOLEAN KeAreAllApcsDisabled(VOID) {
    return call([] { return nt::KeAreAllApcsDisabled(); });
}

// ---- Priorities ----
KPRIORITY KeQueryPriorityThread(PKTHREAD Thread) {
    return call([&] { return nt::KeQueryPriorityThread(as<nt::KTHREAD>(Thread)); });
}
KPRIORITY KeSetPriorityThread(PKTHREAD Thread, KPRIORITY Priority) {
    return call([&] { return nt::KeSetPriorityThread(as<nt::KTHREAD>(Thread), Priority); });
}

// ---- System threads and the object manager ----
NTSTATUS PsCreateSystemThread(PHANDLE ThreadHandle, ULONG DesiredAccess,
                              POBJECT_ATTRIBUTES ObjectAttributes, HANDLE ProcessHandle,
                              PCLIENT_ID ClientId, PKSTART_ROUTINE StartRoutine,
                              PVOID StartContext) {
    // A C start routine is called as a C++ one: the same calling convention
    // on every ABI kmlab builds for.
    return call([&] {
        return nt::PsCreateSystemThread(
            ThreadHandle, DesiredAccess, as<nt::OBJECT_ATTRIBUTES>(ObjectAttributes), ProcessHandle,
            as<nt::CLIENT_ID>(ClientId), reinterpret_cast<nt::PKSTART_ROUTINE>(StartRoutine),
            StartContext);
    });
}
NTSTATUS PsTerminateSystemThread(NTSTATUS ExitStatus) {
    return call([&] { return nt::PsTerminateSystemThread(ExitStatus); });
}
NTSTATUS ObReferenceObjectByHandle(HANDLE Handle, ACCESS_MASK DesiredAccess,
                                   POBJECT_TYPE ObjectType, KPROCESSOR_MODE AccessMode,
                                   PVOID* Object, POBJECT_HANDLE_INFORMATION HandleInformation) {
    return call([&] {
        return nt::ObReferenceObjectByHandle(
            Handle, DesiredAccess, reinterpret_cast<nt::POBJECT_TYPE>(ObjectType), AccessMode,
            Object, as<nt::OBJECT_HANDLE_INFORMATION>(HandleInformation));
    });
}
VOID ObReferenceObject(PVOID Object) {
    call([&] { nt::ObReferenceObject(Object); });
}
VOID ObDereferenceObject(PVOID Object) {
    call([&] { nt::ObDereferenceObject(Object); });
}
VOID ObfReferenceObject(PVOID Object) {
    call([&] { nt::ObfReferenceObject(Object); });
}
VOID ObfDereferenceObject(PVOID Object) {
    call([&] { nt::ObfDereferenceObject(Object); });
}
NTSTATUS ZwClose(HANDLE Handle) {
    return call([&] { return nt::ZwClose(Handle); });
}
NTSTATUS ObCloseHandle(HANDLE Handle, KPROCESSOR_MODE PreviousMode) {
    return call([&] { return nt::ObCloseHandle(Handle, PreviousMode); });
}
NTSTATUS ZwCreateEvent(PHANDLE EventHandle, ACCESS_MASK DesiredAccess,
                       POBJECT_ATTRIBUTES ObjectAttributes, EVENT_TYPE EventType,
                       BOOLEAN InitialState) {
    return call([&] {
        // C may pass any int: checked here, where the value is still one.
        if (EventType != NotificationEvent && EventType != SynchronizationEvent)
            return nt::STATUS_INVALID_PARAMETER;
        return nt::ZwCreateEvent(EventHandle, DesiredAccess,
                                 as<nt::OBJECT_ATTRIBUTES>(ObjectAttributes),
                                 static_cast<nt::EVENT_TYPE>(EventType), InitialState);
    });
}
NTSTATUS ZwSetEvent(HANDLE EventHandle, PLONG PreviousState) {
    return call([&] { return nt::ZwSetEvent(EventHandle, PreviousState); });
}
NTSTATUS ZwResetEvent(HANDLE EventHandle, PLONG PreviousState) {
    return call([&] { return nt::ZwResetEvent(EventHandle, PreviousState); });
}
NTSTATUS ZwClearEvent(HANDLE EventHandle) {
    return call([&] { return nt::ZwClearEvent(EventHandle); });
}
NTSTATUS ZwWaitForSingleObject(HANDLE Handle, BOOLEAN Alertable, PLARGE_INTEGER Timeout) {
    return call([&] {
        return nt::ZwWaitForSingleObject(Handle, Alertable, as<nt::LARGE_INTEGER>(Timeout));
    });
}

// ---- Pool and previous mode ----
PVOID ExAllocatePoolWithTag(POOL_TYPE PoolType, size_t NumberOfBytes, ULONG Tag) {
    return call([&] {
        return nt::ExAllocatePoolWithTag(static_cast<nt::POOL_TYPE>(PoolType), NumberOfBytes, Tag);
    });
}
VOID ExFreePoolWithTag(PVOID P, ULONG Tag) {
    call([&] { nt::ExFreePoolWithTag(P, Tag); });
}
KPROCESSOR_MODE ExGetPreviousMode(VOID) {
    return call([] { return nt::ExGetPreviousMode(); });
}
HANDLE PsGetCurrentThreadId(VOID) {
    return call([] { return nt::PsGetCurrentThreadId(); });
}
HANDLE PsGetThreadId(PETHREAD Thread) {
    return call([&] { return nt::PsGetThreadId(as<nt::ETHREAD>(Thread)); });
}

// ---- The process ----
PEPROCESS IoGetCurrentProcess(VOID) {
    return call([] { return as<::EPROCESS>(nt::IoGetCurrentProcess()); });
}
PEPROCESS PsGetCurrentProcess(VOID) {
    return call([] { return as<::EPROCESS>(nt::PsGetCurrentProcess()); });
}
HANDLE PsGetCurrentProcessId(VOID) {
    return call([] { return nt::PsGetCurrentProcessId(); });
}
HANDLE PsGetProcessId(PEPROCESS Process) {
    return call([&] { return nt::PsGetProcessId(as<nt::EPROCESS>(Process)); });
}
// ---- Spin locks ----
VOID KeInitializeSpinLock(PKSPIN_LOCK SpinLock) {
    const kmlab::kernel::verifier::InitSite site(__builtin_return_address(0));
    call([&] { nt::KeInitializeSpinLock(SpinLock); });
}
KIRQL KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock) {
    return call([&] { return nt::KeAcquireSpinLockRaiseToDpc(SpinLock); });
}
VOID KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql) {
    call([&] { nt::KeReleaseSpinLock(SpinLock, NewIrql); });
}
VOID KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock) {
    call([&] { nt::KeAcquireSpinLockAtDpcLevel(SpinLock); });
}
VOID KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK SpinLock) {
    call([&] { nt::KeReleaseSpinLockFromDpcLevel(SpinLock); });
}
BOOLEAN KeTryToAcquireSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock) {
    return call([&] { return nt::KeTryToAcquireSpinLockAtDpcLevel(SpinLock); });
}
BOOLEAN KeTestSpinLock(PKSPIN_LOCK SpinLock) {
    return call([&] { return nt::KeTestSpinLock(SpinLock); });
}
KIRQL KeAcquireSpinLockForDpc(PKSPIN_LOCK SpinLock) {
    return call([&] { return nt::KeAcquireSpinLockForDpc(SpinLock); });
}
VOID KeReleaseSpinLockForDpc(PKSPIN_LOCK SpinLock, KIRQL OldIrql) {
    call([&] { nt::KeReleaseSpinLockForDpc(SpinLock, OldIrql); });
}
VOID KeAcquireInStackQueuedSpinLock(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle) {
    call([&] {
        nt::KeAcquireInStackQueuedSpinLock(SpinLock, as<nt::KLOCK_QUEUE_HANDLE>(LockHandle));
    });
}
VOID KeReleaseInStackQueuedSpinLock(PKLOCK_QUEUE_HANDLE LockHandle) {
    call([&] { nt::KeReleaseInStackQueuedSpinLock(as<nt::KLOCK_QUEUE_HANDLE>(LockHandle)); });
}
VOID KeAcquireInStackQueuedSpinLockAtDpcLevel(PKSPIN_LOCK SpinLock,
                                              PKLOCK_QUEUE_HANDLE LockHandle) {
    call([&] {
        nt::KeAcquireInStackQueuedSpinLockAtDpcLevel(SpinLock,
                                                     as<nt::KLOCK_QUEUE_HANDLE>(LockHandle));
    });
}
VOID KeReleaseInStackQueuedSpinLockFromDpcLevel(PKLOCK_QUEUE_HANDLE LockHandle) {
    call([&] {
        nt::KeReleaseInStackQueuedSpinLockFromDpcLevel(as<nt::KLOCK_QUEUE_HANDLE>(LockHandle));
    });
}
VOID KeAcquireInStackQueuedSpinLockForDpc(PKSPIN_LOCK SpinLock, PKLOCK_QUEUE_HANDLE LockHandle) {
    call([&] {
        nt::KeAcquireInStackQueuedSpinLockForDpc(SpinLock, as<nt::KLOCK_QUEUE_HANDLE>(LockHandle));
    });
}
VOID KeReleaseInStackQueuedSpinLockForDpc(PKLOCK_QUEUE_HANDLE LockHandle) {
    call([&] { nt::KeReleaseInStackQueuedSpinLockForDpc(as<nt::KLOCK_QUEUE_HANDLE>(LockHandle)); });
}

// ---- ERESOURCE ----
NTSTATUS ExInitializeResourceLite(PERESOURCE Resource) {
    const kmlab::kernel::verifier::InitSite site(__builtin_return_address(0));
    return call([&] { return nt::ExInitializeResourceLite(as<nt::ERESOURCE>(Resource)); });
}
NTSTATUS ExReinitializeResourceLite(PERESOURCE Resource) {
    const kmlab::kernel::verifier::InitSite site(__builtin_return_address(0));
    return call([&] { return nt::ExReinitializeResourceLite(as<nt::ERESOURCE>(Resource)); });
}
NTSTATUS ExDeleteResourceLite(PERESOURCE Resource) {
    return call([&] { return nt::ExDeleteResourceLite(as<nt::ERESOURCE>(Resource)); });
}
BOOLEAN ExAcquireResourceExclusiveLite(PERESOURCE Resource, BOOLEAN Wait) {
    return call(
        [&] { return nt::ExAcquireResourceExclusiveLite(as<nt::ERESOURCE>(Resource), Wait); });
}
BOOLEAN ExAcquireResourceSharedLite(PERESOURCE Resource, BOOLEAN Wait) {
    return call([&] { return nt::ExAcquireResourceSharedLite(as<nt::ERESOURCE>(Resource), Wait); });
}
BOOLEAN ExAcquireSharedStarveExclusive(PERESOURCE Resource, BOOLEAN Wait) {
    return call(
        [&] { return nt::ExAcquireSharedStarveExclusive(as<nt::ERESOURCE>(Resource), Wait); });
}
BOOLEAN ExAcquireSharedWaitForExclusive(PERESOURCE Resource, BOOLEAN Wait) {
    return call(
        [&] { return nt::ExAcquireSharedWaitForExclusive(as<nt::ERESOURCE>(Resource), Wait); });
}
PVOID ExEnterCriticalRegionAndAcquireResourceExclusive(PERESOURCE Resource) {
    return call([&] {
        return nt::ExEnterCriticalRegionAndAcquireResourceExclusive(as<nt::ERESOURCE>(Resource));
    });
}
PVOID ExEnterCriticalRegionAndAcquireResourceShared(PERESOURCE Resource) {
    return call([&] {
        return nt::ExEnterCriticalRegionAndAcquireResourceShared(as<nt::ERESOURCE>(Resource));
    });
}
PVOID ExEnterCriticalRegionAndAcquireSharedWaitForExclusive(PERESOURCE Resource) {
    return call([&] {
        return nt::ExEnterCriticalRegionAndAcquireSharedWaitForExclusive(
            as<nt::ERESOURCE>(Resource));
    });
}
VOID ExConvertExclusiveToSharedLite(PERESOURCE Resource) {
    call([&] { nt::ExConvertExclusiveToSharedLite(as<nt::ERESOURCE>(Resource)); });
}
VOID ExReleaseResourceLite(PERESOURCE Resource) {
    call([&] { nt::ExReleaseResourceLite(as<nt::ERESOURCE>(Resource)); });
}
VOID ExReleaseResourceForThreadLite(PERESOURCE Resource, ERESOURCE_THREAD ResourceThreadId) {
    call(
        [&] { nt::ExReleaseResourceForThreadLite(as<nt::ERESOURCE>(Resource), ResourceThreadId); });
}
VOID ExReleaseResourceAndLeaveCriticalRegion(PERESOURCE Resource) {
    call([&] { nt::ExReleaseResourceAndLeaveCriticalRegion(as<nt::ERESOURCE>(Resource)); });
}
VOID ExSetResourceOwnerPointer(PERESOURCE Resource, PVOID OwnerPointer) {
    call([&] { nt::ExSetResourceOwnerPointer(as<nt::ERESOURCE>(Resource), OwnerPointer); });
}
ERESOURCE_THREAD ExGetCurrentResourceThread(VOID) {
    return call([] { return nt::ExGetCurrentResourceThread(); });
}
BOOLEAN ExIsResourceAcquiredExclusiveLite(PERESOURCE Resource) {
    return call([&] { return nt::ExIsResourceAcquiredExclusiveLite(as<nt::ERESOURCE>(Resource)); });
}
ULONG ExIsResourceAcquiredSharedLite(PERESOURCE Resource) {
    return call([&] { return nt::ExIsResourceAcquiredSharedLite(as<nt::ERESOURCE>(Resource)); });
}
ULONG ExGetExclusiveWaiterCount(PERESOURCE Resource) {
    return call([&] { return nt::ExGetExclusiveWaiterCount(as<nt::ERESOURCE>(Resource)); });
}
ULONG ExGetSharedWaiterCount(PERESOURCE Resource) {
    return call([&] { return nt::ExGetSharedWaiterCount(as<nt::ERESOURCE>(Resource)); });
}

// ---- EX_PUSH_LOCK ----
VOID ExInitializePushLock(PEX_PUSH_LOCK PushLock) {
    const kmlab::kernel::verifier::InitSite site(__builtin_return_address(0));
    call([&] { nt::ExInitializePushLock(PushLock); });
}
VOID ExAcquirePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG Flags) {
    call([&] { nt::ExAcquirePushLockExclusiveEx(PushLock, Flags); });
}
VOID ExAcquirePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG Flags) {
    call([&] { nt::ExAcquirePushLockSharedEx(PushLock, Flags); });
}
VOID ExReleasePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG Flags) {
    call([&] { nt::ExReleasePushLockExclusiveEx(PushLock, Flags); });
}
VOID ExReleasePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG Flags) {
    call([&] { nt::ExReleasePushLockSharedEx(PushLock, Flags); });
}
VOID ExReleasePushLockEx(PEX_PUSH_LOCK PushLock, ULONG Flags) {
    call([&] { nt::ExReleasePushLockEx(PushLock, Flags); });
}
BOOLEAN ExTryAcquirePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG Flags) {
    return call([&] { return nt::ExTryAcquirePushLockExclusiveEx(PushLock, Flags); });
}
BOOLEAN ExTryAcquirePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG Flags) {
    return call([&] { return nt::ExTryAcquirePushLockSharedEx(PushLock, Flags); });
}
VOID FltInitializePushLock(PEX_PUSH_LOCK PushLock) {
    const kmlab::kernel::verifier::InitSite site(__builtin_return_address(0));
    call([&] { nt::FltInitializePushLock(PushLock); });
}
VOID FltDeletePushLock(PEX_PUSH_LOCK PushLock) {
    call([&] { nt::FltDeletePushLock(PushLock); });
}
VOID FltAcquirePushLockExclusive(PEX_PUSH_LOCK PushLock) {
    call([&] { nt::FltAcquirePushLockExclusive(PushLock); });
}
VOID FltAcquirePushLockShared(PEX_PUSH_LOCK PushLock) {
    call([&] { nt::FltAcquirePushLockShared(PushLock); });
}
VOID FltReleasePushLock(PEX_PUSH_LOCK PushLock) {
    call([&] { nt::FltReleasePushLock(PushLock); });
}

// ---- EX_SPIN_LOCK ----
// C's EX_SPIN_LOCK is the WDK's volatile LONG; the C++ face's drops the
// qualifier (every access is atomic there): the same object.
namespace {
nt::PEX_SPIN_LOCK ex(::PEX_SPIN_LOCK p) noexcept {
    return const_cast<nt::PEX_SPIN_LOCK>(p);
}
}  // namespace
KIRQL ExAcquireSpinLockShared(PEX_SPIN_LOCK SpinLock) {
    return call([&] { return nt::ExAcquireSpinLockShared(ex(SpinLock)); });
}
KIRQL ExAcquireSpinLockExclusive(PEX_SPIN_LOCK SpinLock) {
    return call([&] { return nt::ExAcquireSpinLockExclusive(ex(SpinLock)); });
}
VOID ExReleaseSpinLockShared(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql) {
    call([&] { nt::ExReleaseSpinLockShared(ex(SpinLock), OldIrql); });
}
VOID ExReleaseSpinLockExclusive(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql) {
    call([&] { nt::ExReleaseSpinLockExclusive(ex(SpinLock), OldIrql); });
}
VOID ExAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    call([&] { nt::ExAcquireSpinLockSharedAtDpcLevel(ex(SpinLock)); });
}
VOID ExAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    call([&] { nt::ExAcquireSpinLockExclusiveAtDpcLevel(ex(SpinLock)); });
}
VOID ExReleaseSpinLockSharedFromDpcLevel(PEX_SPIN_LOCK SpinLock) {
    call([&] { nt::ExReleaseSpinLockSharedFromDpcLevel(ex(SpinLock)); });
}
VOID ExReleaseSpinLockExclusiveFromDpcLevel(PEX_SPIN_LOCK SpinLock) {
    call([&] { nt::ExReleaseSpinLockExclusiveFromDpcLevel(ex(SpinLock)); });
}
LOGICAL ExTryAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    return call([&] { return nt::ExTryAcquireSpinLockSharedAtDpcLevel(ex(SpinLock)); });
}
LOGICAL ExTryAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock) {
    return call([&] { return nt::ExTryAcquireSpinLockExclusiveAtDpcLevel(ex(SpinLock)); });
}
LOGICAL ExTryConvertSharedSpinLockExclusive(PEX_SPIN_LOCK SpinLock) {
    return call([&] { return nt::ExTryConvertSharedSpinLockExclusive(ex(SpinLock)); });
}

// ---- KTIMER and KDPC ----
VOID KeInitializeDpc(PRKDPC Dpc, PKDEFERRED_ROUTINE DeferredRoutine, PVOID DeferredContext) {
    // A C deferred routine is called as a C++ one: the same calling
    // convention on every ABI kmlab builds for (as a start routine is).
    call([&] {
        nt::KeInitializeDpc(as<nt::KDPC>(Dpc),
                            reinterpret_cast<nt::PKDEFERRED_ROUTINE>(DeferredRoutine),
                            DeferredContext);
    });
}
VOID KeInitializeTimer(PKTIMER Timer) {
    call([&] { nt::KeInitializeTimer(as<nt::KTIMER>(Timer)); });
}
VOID KeInitializeTimerEx(PKTIMER Timer, TIMER_TYPE Type) {
    call(
        [&] { nt::KeInitializeTimerEx(as<nt::KTIMER>(Timer), static_cast<nt::TIMER_TYPE>(Type)); });
}
BOOLEAN KeSetTimer(PKTIMER Timer, LARGE_INTEGER DueTime, PKDPC Dpc) {
    return call([&] {
        nt::LARGE_INTEGER due{};
        due.QuadPart = DueTime.QuadPart;
        return nt::KeSetTimer(as<nt::KTIMER>(Timer), due, as<nt::KDPC>(Dpc));
    });
}
BOOLEAN KeSetTimerEx(PKTIMER Timer, LARGE_INTEGER DueTime, LONG Period, PKDPC Dpc) {
    return call([&] {
        nt::LARGE_INTEGER due{};
        due.QuadPart = DueTime.QuadPart;
        return nt::KeSetTimerEx(as<nt::KTIMER>(Timer), due, Period, as<nt::KDPC>(Dpc));
    });
}
BOOLEAN KeCancelTimer(PKTIMER Timer) {
    return call([&] { return nt::KeCancelTimer(as<nt::KTIMER>(Timer)); });
}
BOOLEAN KeReadStateTimer(PKTIMER Timer) {
    return call([&] { return nt::KeReadStateTimer(as<nt::KTIMER>(Timer)); });
}
VOID KeFlushQueuedDpcs(VOID) {
    call([] { nt::KeFlushQueuedDpcs(); });
}
VOID KeQuerySystemTime(PLARGE_INTEGER CurrentTime) {
    call([&] { nt::KeQuerySystemTime(as<nt::LARGE_INTEGER>(CurrentTime)); });
}

VOID RtlInitUnicodeString(PUNICODE_STRING DestinationString, PCWSTR SourceString) {
    call(
        [&] { nt::RtlInitUnicodeString(as<nt::UNICODE_STRING>(DestinationString), SourceString); });
}
PVOID MmGetSystemRoutineAddress(PUNICODE_STRING SystemRoutineName) {
    return call(
        [&] { return nt::MmGetSystemRoutineAddress(as<nt::UNICODE_STRING>(SystemRoutineName)); });
}

}  // extern "C"

// ---- MmGetSystemRoutineAddress: every routine and variable wdm.h declares ----
// tests/conformance/system_routines_test.cpp reads wdm.h and checks that each
// routine it declares is found here, or is one of the non-exports below.
namespace {
// What a Windows kernel exports of wdm.h's routines: not the names the WDK
// defines only as macros or inline functions (KeRaiseIrql, ObReferenceObject,
// ExInitializeFastMutex) nor kmlab's own Kmlab* routines, which a driver
// probing with MmGetSystemRoutineAddress must not find. KeWaitForMutexObject
// and ObDereferenceObject are macros in the WDK but exports of the kernel too
// (ReactOS's ntoskrnl.spec mirrors Windows').
// clang-format off
#define KMLAB_WDM_EXPORTS(X)                                                                 \
    X(KeInitializeMutex) X(KeReleaseMutex) X(KeReadStateMutex) X(KeInitializeMutant)         \
    X(KeReleaseMutant) X(KeReadStateMutant) X(KeInitializeEvent) X(KeSetEvent)               \
    X(KeResetEvent) X(KeClearEvent) X(KePulseEvent) X(KeReadStateEvent)                      \
    X(KeInitializeSemaphore) X(KeReleaseSemaphore) X(KeReadStateSemaphore)                   \
    X(KeWaitForSingleObject) X(KeWaitForMutexObject) X(KeWaitForMultipleObjects)             \
    X(KeDelayExecutionThread) X(ExAcquireFastMutex) X(ExTryToAcquireFastMutex)               \
    X(ExReleaseFastMutex) X(ExAcquireFastMutexUnsafe) X(ExReleaseFastMutexUnsafe)            \
    X(ExEnterCriticalRegionAndAcquireFastMutexUnsafe)                                        \
    X(ExReleaseFastMutexUnsafeAndLeaveCriticalRegion)                                        \
    X(KeInitializeGuardedMutex) X(KeAcquireGuardedMutex) X(KeTryToAcquireGuardedMutex)       \
    X(KeReleaseGuardedMutex) X(KeAcquireGuardedMutexUnsafe) X(KeReleaseGuardedMutexUnsafe)   \
    X(KeGetCurrentThread) X(PsGetCurrentThread) X(PsIsSystemThread) X(KeGetCurrentIrql)      \
    X(KfRaiseIrql) X(KfLowerIrql) X(KeLowerIrql) X(KeRaiseIrqlToDpcLevel)                    \
    X(KeRaiseIrqlToSynchLevel) X(KeEnterCriticalRegion) X(KeLeaveCriticalRegion)             \
    X(KeEnterGuardedRegion) X(KeLeaveGuardedRegion) X(KeAreApcsDisabled)                     \
    X(KeAreAllApcsDisabled) X(KeQueryPriorityThread) X(KeSetPriorityThread)                  \
    X(PsCreateSystemThread) X(PsTerminateSystemThread) X(ObReferenceObjectByHandle)          \
    X(ObfReferenceObject) X(ObfDereferenceObject) X(ObDereferenceObject) X(ZwClose)          \
    X(ObCloseHandle) X(ZwCreateEvent) X(ZwSetEvent) X(ZwResetEvent) X(ZwClearEvent)          \
    X(ZwWaitForSingleObject) X(ExAllocatePoolWithTag) X(ExFreePoolWithTag)                   \
    X(ExGetPreviousMode) X(PsGetCurrentThreadId) X(PsGetThreadId) X(IoGetCurrentProcess)     \
    X(PsGetCurrentProcess) X(PsGetCurrentProcessId) X(PsGetProcessId)                        \
    X(RtlInitUnicodeString) X(MmGetSystemRoutineAddress)                                    \
    KMLAB_WDM_LOCK_EXPORTS(X)
// The lock family, as the amd64 kernel exports it (spin_lock.hpp and the
// other headers say which; [ros-ntoskrnl-spec]). KeInitializeSpinLock is an
// export although the amd64 WDK inlines it (spin_lock.hpp: amd64 drivers
// import it, and drivers resolve it with MmGetSystemRoutineAddress; ReactOS's
// spec lists it for x86 and ARM only). Not KeAcquireSpinLock,
// ExGetCurrentResourceThread, ExReleaseResource,
// ExIsResourceAcquiredLite, the push-lock macros over the ...Ex routines, nor
// KeQuerySystemTime (amd64 macros); not the Flt push-lock routines (FltMgr.sys
// exports them). The ...Ex push-lock routines and ExInitializePushLock are
// exports since Windows 10 1809 [ddi:exinitializepushlock]; EX_SPIN_LOCK's
// since Vista SP1 [ddi:reader-writer-spin-locks].
#define KMLAB_WDM_LOCK_EXPORTS(X)                                                            \
    X(KeInitializeSpinLock) X(KeAcquireSpinLockRaiseToDpc) X(KeReleaseSpinLock) X(KeAcquireSpinLockAtDpcLevel)       \
    X(KeReleaseSpinLockFromDpcLevel) X(KeTryToAcquireSpinLockAtDpcLevel) X(KeTestSpinLock)   \
    X(KeAcquireSpinLockForDpc) X(KeReleaseSpinLockForDpc) X(KeAcquireInStackQueuedSpinLock)  \
    X(KeReleaseInStackQueuedSpinLock) X(KeAcquireInStackQueuedSpinLockAtDpcLevel)            \
    X(KeReleaseInStackQueuedSpinLockFromDpcLevel) X(KeAcquireInStackQueuedSpinLockForDpc)    \
    X(KeReleaseInStackQueuedSpinLockForDpc)                                                  \
    X(ExInitializeResourceLite) X(ExReinitializeResourceLite) X(ExDeleteResourceLite)        \
    X(ExAcquireResourceExclusiveLite) X(ExAcquireResourceSharedLite)                         \
    X(ExAcquireSharedStarveExclusive) X(ExAcquireSharedWaitForExclusive)                     \
    X(ExEnterCriticalRegionAndAcquireResourceExclusive)                                      \
    X(ExEnterCriticalRegionAndAcquireResourceShared)                                         \
    X(ExEnterCriticalRegionAndAcquireSharedWaitForExclusive)                                 \
    X(ExConvertExclusiveToSharedLite) X(ExReleaseResourceLite)                               \
    X(ExReleaseResourceForThreadLite) X(ExReleaseResourceAndLeaveCriticalRegion)             \
    X(ExSetResourceOwnerPointer) X(ExIsResourceAcquiredExclusiveLite)                        \
    X(ExIsResourceAcquiredSharedLite) X(ExGetExclusiveWaiterCount) X(ExGetSharedWaiterCount) \
    X(ExInitializePushLock) X(ExAcquirePushLockExclusiveEx) X(ExAcquirePushLockSharedEx)     \
    X(ExReleasePushLockExclusiveEx) X(ExReleasePushLockSharedEx) X(ExReleasePushLockEx)      \
    X(ExTryAcquirePushLockExclusiveEx) X(ExTryAcquirePushLockSharedEx)                       \
    X(ExAcquireSpinLockShared) X(ExAcquireSpinLockExclusive) X(ExReleaseSpinLockShared)      \
    X(ExReleaseSpinLockExclusive) X(ExAcquireSpinLockSharedAtDpcLevel)                       \
    X(ExAcquireSpinLockExclusiveAtDpcLevel) X(ExReleaseSpinLockSharedFromDpcLevel)           \
    X(ExReleaseSpinLockExclusiveFromDpcLevel) X(ExTryAcquireSpinLockSharedAtDpcLevel)        \
    X(ExTryAcquireSpinLockExclusiveAtDpcLevel) X(ExTryConvertSharedSpinLockExclusive)        \
    X(KeInitializeDpc) X(KeInitializeTimer) X(KeInitializeTimerEx) X(KeSetTimer)             \
    X(KeSetTimerEx) X(KeCancelTimer) X(KeReadStateTimer) X(KeFlushQueuedDpcs)
// Exported variables: the address of the variable, as the export is.
#define KMLAB_WDM_VARIABLES(X) X(PsThreadType) X(ExEventObjectType) X(PsInitialSystemProcess)
// clang-format on

struct Export {
    std::string_view name;
    void* address;
};
#define KMLAB_ROUTINE_EXPORT(name) Export{#name, reinterpret_cast<void*>(&::name)},
#define KMLAB_VARIABLE_EXPORT(name) Export{#name, static_cast<void*>(&::name)},
const Export g_exports[] = {KMLAB_WDM_EXPORTS(KMLAB_ROUTINE_EXPORT)
                                KMLAB_WDM_VARIABLES(KMLAB_VARIABLE_EXPORT)};
#undef KMLAB_ROUTINE_EXPORT
#undef KMLAB_VARIABLE_EXPORT
}  // namespace

namespace kmlab::nt {

PVOID MmGetSystemRoutineAddress(PUNICODE_STRING SystemRoutineName) {
    kernel::require_irql_at_most(PASSIVE_LEVEL, SystemRoutineName);
    if (SystemRoutineName == nullptr || SystemRoutineName->Buffer == nullptr) return nullptr;
    // Export names are ASCII; anything else names no export.
    std::string name;
    const std::size_t length = SystemRoutineName->Length / sizeof(wchar_t);
    for (std::size_t i = 0; i < length; ++i) {
        const wchar_t c = SystemRoutineName->Buffer[i];
        if (c <= 0 || c > 0x7F) return nullptr;
        name.push_back(static_cast<char>(c));
    }
    for (const Export& e : g_exports) {
        if (e.name == name) return e.address;
    }
    return nullptr;
}

}  // namespace kmlab::nt
