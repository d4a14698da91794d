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

#include <kmlab/kmlab_nt.hpp>
// Last: after the C++ face, so that wdm.h's global names never shadow
// kmlab::nt's, and after the standard headers, which its SAL macros
// (_In_, _Out_, ...) must not reach.
#include <kmlab/wdm.h>

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
    return kmlab::flavor() == kmlab::Flavor::free ? KmlabFlavorFree : KmlabFlavorChecked;
}
KMLAB_FLAVOR KmlabSetFlavor(KMLAB_FLAVOR Flavor) {
    const KMLAB_FLAVOR previous = KmlabGetFlavor();
    kmlab::set_flavor(Flavor == KmlabFlavorFree ? kmlab::Flavor::free : kmlab::Flavor::checked);
    return previous;
}

// ---- KMUTEX and mutants ----
VOID KeInitializeMutex(PRKMUTEX Mutex, ULONG Level) {
    call([&] { nt::KeInitializeMutex(as<nt::KMUTEX>(Mutex), Level); });
}
LONG KeReleaseMutex(PRKMUTEX Mutex, BOOLEAN Wait) {
    return call([&] { return nt::KeReleaseMutex(as<nt::KMUTEX>(Mutex), Wait); });
}
LONG KeReadStateMutex(PRKMUTEX Mutex) {
    return call([&] { return nt::KeReadStateMutex(as<nt::KMUTEX>(Mutex)); });
}
VOID KeInitializeMutant(PRKMUTANT Mutant, BOOLEAN InitialOwner) {
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
    X(RtlInitUnicodeString) X(MmGetSystemRoutineAddress)
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
