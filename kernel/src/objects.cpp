// Mutants (KMUTEX), events and semaphores: initialization, release and the
// unsynchronized state reads.
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/rules.hpp>
#include <kmlab/kernel/verifier.hpp>
#include <kmlab/platform/platform.hpp>
#include "dispatcher_core.hpp"
#include "header_word.hpp"

// The explorer's copy (explore/src/objects_seam.cpp) names each signalling
// routine in the model's kernel-level trace; production's compiles to nothing.
#ifdef KMLAB_DISPATCHER_SEAM
#define KMLAB_TRACE_ROUTINE(name, object) ::kmlab::explore::kernel_seam::routine(name, object)
#else
#define KMLAB_TRACE_ROUTINE(name, object) static_cast<void>(0)
#endif

namespace kmlab::nt {
using dispatcher::load_state;
using dispatcher::Section;
using dispatcher::store_state;
using kernel::current_thread;
using kernel::require_irql_at_most;

namespace {
[[gnu::cold, gnu::noinline]] void check_negative_increment(const void* object) {
    kernel::enforce_in_flavor(
        kernel::check_unwait_increment(dispatcher::take_readied_with_negative_increment(), object));
}
// rules.hpp check_unwait_increment, run once a signalling routine has done
// its work (its Section has ended or, for Wait = TRUE, kept its hold), with
// the rule out of line: a release's path pays one compare for it.
inline void check_increment(KPRIORITY increment, const void* object) {
    if (static_cast<SCHAR>(increment) < 0) [[unlikely]]
        check_negative_increment(object);
}
// At the routine's start: a flag left by a routine that unwound between
// setting and taking it (an allocation failing in its wait test) is dropped.
inline void begin_increment(KPRIORITY increment) noexcept {
    if (static_cast<SCHAR>(increment) < 0) [[unlikely]]
        (void)dispatcher::take_readied_with_negative_increment();
}

// The unlink of a mutant from another thread's MutantListHead (KeReleaseMutant
// with Abandon = TRUE by a thread that does not own it), with the explorer's
// scheduling point between reading the entry's neighbours and writing them:
// a seam load of a word nobody writes, as timer.cpp's timer_list_step, so
// that an edit of the owner's list that the dispatcher's locks fail to
// exclude (the owner acquiring another mutant) interleaves there
// (tests/model/model_defects_test.cpp, defect 6). Only where the section
// holds one stripe. Production pays a load of a null pointer, on this rare
// path only.
constinit std::atomic<std::uint32_t> g_mutant_list_word{0};
void unlink_from_owner(const Section& section, PLIST_ENTRY entry) noexcept {
    const PLIST_ENTRY next = entry->Flink;
    const PLIST_ENTRY prev = entry->Blink;
    if (const platform::DispatcherSeam* seam = platform::g_dispatcher_seam) [[unlikely]] {
        if (section.covers_one_stripe()) (void)seam->load(g_mutant_list_word);
    }
    // Blink first: an owner that holds no other mutant then finds its list
    // either still holding this one or whole and empty when it tests it
    // without the lock (the mutant fast path's IsListEmpty, dispatcher.cpp),
    // on x86, whose stores become visible in order. The test still reads what
    // this thread writes without an ordering of C++'s: a race of the kind a
    // foreign abandon has always had with the owner's KernelApcDisable
    // (release_mutant_slow adds to it without the owner's knowledge).
    next->Blink = prev;
    prev->Flink = next;
}
}  // namespace

// ---- Mutants ----

void KeInitializeMutex(PRKMUTEX Mutex, ULONG Level) {
    (void)Level;  // "Reserved. Drivers set this to zero"; ignored [kmt-KeMutex]
    if (PKTHREAD t = kernel::verifier::initializing_thread(); kernel::verifier::on(t)) [[unlikely]]
        kernel::verifier::on_initialize(t, Mutex, kernel::verifier::LockType::kmutex,
                                        __builtin_return_address(0));
    dispatcher::init_header(&Mutex->Header, MutantObject, sizeof(KMUTEX), 1);
    dispatcher::store_owner(Mutex, nullptr);
    Mutex->Abandoned = FALSE;
    Mutex->ApcDisable = 1;
    // MutantListEntry is meaningful only while owned and is left as it was
    // [kmt-KeMutex].
}

void KeInitializeMutant(PRKMUTANT Mutant, BOOLEAN InitialOwner) {
    PKTHREAD t = current_thread();
    if (kernel::verifier::on(t)) [[unlikely]]
        kernel::verifier::on_initialize(t, Mutant, kernel::verifier::LockType::kmutex,
                                        __builtin_return_address(0));
    Mutant->Abandoned = FALSE;
    Mutant->ApcDisable = 0;
    if (InitialOwner) {
        dispatcher::init_header(&Mutant->Header, MutantObject, sizeof(KMUTANT), 0);
        Section section(t);
        dispatcher::store_owner(Mutant, t);
        InsertTailList(&t->MutantListHead, &Mutant->MutantListEntry);
        kernel::verifier::on_acquired(t, Mutant, kernel::verifier::LockType::kmutex, false, true);
    } else {
        dispatcher::init_header(&Mutant->Header, MutantObject, sizeof(KMUTANT), 1);
        dispatcher::store_owner(Mutant, nullptr);
    }
}

// KeReleaseMutant as ReactOS implements it [ros-mutex]; Abandon = TRUE is the
// thread-rundown path and skips the owner check.
namespace {
// The IRQL rule's compare read through the gate word (kernel/verifier.hpp):
// above DISPATCH_LEVEL, or the verifier on. The hook runs before the
// release, as Driver Verifier's thunk would.
[[gnu::cold, gnu::noinline]] void release_mutant_gate(PKTHREAD t, PRKMUTANT mutant,
                                                      BOOLEAN abandon) {
    kernel::enforce(kernel::check_mutant_release_irql(t, mutant));
    if (!abandon) kernel::verifier::on_release(t, mutant, kernel::verifier::LockType::kmutex);
}
}  // namespace

namespace {
// Everything but the fast path: in a function of its own, so that the fast
// path's caller does not set up the section's frame (measured: 47
// instructions of prologue and argument shuffling a release in one function).
[[gnu::noinline]] LONG release_mutant_slow(PKTHREAD t, PRKMUTANT Mutant, KPRIORITY Increment,
                                           BOOLEAN Abandon, BOOLEAN Wait) {
    begin_increment(Increment);
    if (t->IrqlGate > DISPATCH_LEVEL) [[unlikely]]
        release_mutant_gate(t, Mutant, Abandon);
    bool leave_critical_region = false;
    LONG previous;
    {
        // Abandon = TRUE may come from a thread that does not own the mutant
        // (ExpDeleteMutant releases a mutant object deleted while owned this
        // way [ros-exmutant]); it then unlinks the mutant from the owner's
        // MutantListHead, which the owner edits under the stripe of whatever
        // mutant it acquires or releases. In per-object mode the section
        // covers every object then, as a Wait = TRUE one does: the mutant's
        // stripe alone let the owner's edits run at the same time (decision,
        // kmlab: the kernel's one dispatcher lock [ros-mutex] orders them;
        // Abandon = TRUE is rare, the thread-rundown and delete paths).
        // The owner may be inside a fast path (no lock) when the mark lands:
        // settle_owner waits for its owner field (header_word.hpp).
        Section section(t, Section::Kind::Routine, Wait || Abandon ? nullptr : Mutant);
        section.claim(&Mutant->Header);
        if (Abandon) dispatcher::settle_owner(Mutant);
        previous = load_state(&Mutant->Header);
        if (Abandon) {
            store_state(&Mutant->Header, 1);
            Mutant->Abandoned = TRUE;
        } else {
            // Nothing is modified; the status is raised with the lock released.
            kernel::enforce(kernel::check_mutant_owner(t, Mutant, dispatcher::load_owner(Mutant),
                                                       Mutant->Abandoned != FALSE));
            store_state(&Mutant->Header, previous + 1);
        }
        if (load_state(&Mutant->Header) == 1 && previous <= 0) {
            if (PKTHREAD owner = dispatcher::load_owner(Mutant)) {
                if (owner == t) {
                    RemoveEntryList(&Mutant->MutantListEntry);
                    leave_critical_region = Mutant->ApcDisable != 0;
                } else {
                    unlink_from_owner(section, &Mutant->MutantListEntry);
                    owner->KernelApcDisable =
                        static_cast<SHORT>(owner->KernelApcDisable + Mutant->ApcDisable);
                }
            }
            dispatcher::store_owner(Mutant, nullptr);
            dispatcher::wait_test(&Mutant->Header, Increment);
        }
        if (Wait) section.keep_for_wait();
    }
    // KeLeaveCriticalRegion for the APCs the mutex disabled (step 6).
    if (leave_critical_region) ++t->KernelApcDisable;
    check_increment(Increment, Mutant);
    return previous;
}
}  // namespace

LONG KeReleaseMutant(PRKMUTANT Mutant, KPRIORITY Increment, BOOLEAN Abandon, BOOLEAN Wait) {
    KMLAB_TRACE_ROUTINE(Mutant->ApcDisable != 0 ? "KeReleaseMutex" : "KeReleaseMutant", Mutant);
    PKTHREAD t = current_thread();
    // Nobody waiting, by its owner, at or below DISPATCH_LEVEL with the
    // verifier off (the gate word, kernel/verifier.hpp): without the
    // dispatcher lock (dispatcher_core.hpp, "The fast paths"). A negative
    // increment takes the slow path, which owns its rule.
    LONG previous;
    if (t->IrqlGate <= DISPATCH_LEVEL && (Abandon | Wait) == 0 &&
        static_cast<SCHAR>(Increment) >= 0 &&
        dispatcher::release_mutant_at_once(t, Mutant, previous)) [[likely]]
        return previous;  // the mutant may be gone already: touch it no more
    return release_mutant_slow(t, Mutant, Increment, Abandon, Wait);
}

LONG KeReleaseMutex(PRKMUTEX Mutex, BOOLEAN Wait) {
    return KeReleaseMutant(Mutex, MUTANT_INCREMENT, FALSE, Wait);
}

LONG KeReadStateMutex(PRKMUTEX Mutex) {
    require_irql_at_most(DISPATCH_LEVEL, Mutex);
    return load_state(&Mutex->Header);
}

LONG KeReadStateMutant(PRKMUTANT Mutant) {
    return KeReadStateMutex(Mutant);
}

// ---- Events ----

void KeInitializeEvent(PRKEVENT Event, EVENT_TYPE Type, BOOLEAN State) {
    dispatcher::init_header(&Event->Header, static_cast<UCHAR>(Type), sizeof(KEVENT),
                            State ? 1 : 0);
    // NT 6.1+ clears Signalling and, as for every object, leaves byte 3
    // [kmt-KeEvent].
    Event->Header.Signalling = 0;
}

LONG KeSetEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait) {
    KMLAB_TRACE_ROUTINE("KeSetEvent", Event);
    begin_increment(Increment);
    require_irql_at_most(Wait ? APC_LEVEL : DISPATCH_LEVEL, Event);
    LONG previous;
    PKTHREAD t = current_thread();
    // Nobody waiting: without the dispatcher lock (dispatcher_core.hpp).
    if (!Wait && dispatcher::set_event_at_once(t, Event, 1, previous)) {
        check_increment(Increment, Event);
        return previous;
    }
    {
        Section section(t, Section::Kind::Routine, Wait ? nullptr : Event);
        section.claim(&Event->Header);
        // The state is normalized to 1 and the raw previous value returned [kmt-KeEvent].
        previous = load_state(&Event->Header);
        store_state(&Event->Header, 1);
        if (previous == 0) dispatcher::wait_test(&Event->Header, Increment);
        if (Wait) section.keep_for_wait();
    }
    check_increment(Increment, Event);
    return previous;
}

LONG KeResetEvent(PRKEVENT Event) {
    KMLAB_TRACE_ROUTINE("KeResetEvent", Event);
    require_irql_at_most(DISPATCH_LEVEL, Event);
    PKTHREAD t = current_thread();
    LONG previous;
    if (dispatcher::set_event_at_once(t, Event, 0, previous)) return previous;
    Section section(t, Section::Kind::Routine, Event);
    section.claim(&Event->Header);
    previous = load_state(&Event->Header);
    store_state(&Event->Header, 0);
    return previous;
}

void KeClearEvent(PRKEVENT Event) {
    KMLAB_TRACE_ROUTINE("KeClearEvent", Event);
    require_irql_at_most(DISPATCH_LEVEL, Event);
    PKTHREAD t = current_thread();
    LONG previous;
    if (dispatcher::set_event_at_once(t, Event, 0, previous)) return;
    Section section(t, Section::Kind::Routine, Event);
    section.claim(&Event->Header);
    store_state(&Event->Header, 0);
}

LONG KePulseEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait) {
    KMLAB_TRACE_ROUTINE("KePulseEvent", Event);
    begin_increment(Increment);
    require_irql_at_most(DISPATCH_LEVEL, Event);
    LONG previous;
    {
        Section section(current_thread(), Section::Kind::Routine, Wait ? nullptr : Event);
        section.claim(&Event->Header);
        previous = load_state(&Event->Header);
        // [ros-event]: the wait test runs only from the non-signaled state.
        if (previous == 0 && !IsListEmpty(&Event->Header.WaitListHead)) {
            store_state(&Event->Header, 1);
            dispatcher::wait_test(&Event->Header, Increment);
        }
        store_state(&Event->Header, 0);
        if (Wait) section.keep_for_wait();
    }
    check_increment(Increment, Event);
    return previous;
}

LONG KeReadStateEvent(PRKEVENT Event) {
    require_irql_at_most(DISPATCH_LEVEL, Event);
    return load_state(&Event->Header);
}

// ---- Semaphores ----

void KeInitializeSemaphore(PRKSEMAPHORE Semaphore, LONG Count, LONG Limit) {
    require_irql_at_most(PASSIVE_LEVEL, Semaphore);
    dispatcher::init_header(&Semaphore->Header, SemaphoreObject, sizeof(KSEMAPHORE), Count);
    Semaphore->Limit = Limit;
}

LONG KeReleaseSemaphore(PRKSEMAPHORE Semaphore, KPRIORITY Increment, LONG Adjustment,
                        BOOLEAN Wait) {
    KMLAB_TRACE_ROUTINE("KeReleaseSemaphore", Semaphore);
    begin_increment(Increment);
    require_irql_at_most(Wait ? PASSIVE_LEVEL : DISPATCH_LEVEL, Semaphore);
    LONG initial;
    PKTHREAD t = current_thread();
    // Nobody waiting: without the dispatcher lock (dispatcher_core.hpp).
    if (!Wait && dispatcher::release_semaphore_at_once(t, Semaphore, Adjustment, initial)) {
        check_increment(Increment, Semaphore);
        return initial;
    }
    {
        Section section(t, Section::Kind::Routine, Wait ? nullptr : Semaphore);
        section.claim(&Semaphore->Header);
        initial = load_state(&Semaphore->Header);
        const LONGLONG state = static_cast<LONGLONG>(initial) + Adjustment;
        // [ros-sem]: over the limit, overflowing, or decreasing all raise.
        if (state > Semaphore->Limit || state < initial)
            raise_status(STATUS_SEMAPHORE_LIMIT_EXCEEDED);
        store_state(&Semaphore->Header, static_cast<LONG>(state));
        if (initial == 0) dispatcher::wait_test(&Semaphore->Header, Increment);
        if (Wait) section.keep_for_wait();
    }
    check_increment(Increment, Semaphore);
    return initial;
}

LONG KeReadStateSemaphore(PRKSEMAPHORE Semaphore) {
    return load_state(&Semaphore->Header);
}

}  // namespace kmlab::nt
