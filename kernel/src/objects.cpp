// Mutants (KMUTEX), events and semaphores: initialization, release and the
// unsynchronized state reads.
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/rules.hpp>
#include "dispatcher_core.hpp"

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
}  // namespace

// ---- Mutants ----

void KeInitializeMutex(PRKMUTEX Mutex, ULONG Level) {
    (void)Level;  // "Reserved. Drivers set this to zero"; ignored [kmt-KeMutex]
    dispatcher::init_header(&Mutex->Header, MutantObject, sizeof(KMUTEX), 1);
    dispatcher::store_owner(Mutex, nullptr);
    Mutex->Abandoned = FALSE;
    Mutex->ApcDisable = 1;
    // MutantListEntry is meaningful only while owned and is left as it was
    // [kmt-KeMutex].
}

void KeInitializeMutant(PRKMUTANT Mutant, BOOLEAN InitialOwner) {
    PKTHREAD t = current_thread();
    Mutant->Abandoned = FALSE;
    Mutant->ApcDisable = 0;
    if (InitialOwner) {
        dispatcher::init_header(&Mutant->Header, MutantObject, sizeof(KMUTANT), 0);
        Section section(t);
        dispatcher::store_owner(Mutant, t);
        InsertTailList(&t->MutantListHead, &Mutant->MutantListEntry);
    } else {
        dispatcher::init_header(&Mutant->Header, MutantObject, sizeof(KMUTANT), 1);
        dispatcher::store_owner(Mutant, nullptr);
    }
}

// KeReleaseMutant as ReactOS implements it [ros-mutex]; Abandon = TRUE is the
// thread-rundown path and skips the owner check.
LONG KeReleaseMutant(PRKMUTANT Mutant, KPRIORITY Increment, BOOLEAN Abandon, BOOLEAN Wait) {
    begin_increment(Increment);
    PKTHREAD t = current_thread();
    kernel::enforce(kernel::check_mutant_release_irql(t, Mutant));
    bool leave_critical_region = false;
    LONG previous;
    {
        Section section(t, Section::Kind::Routine, Wait ? nullptr : Mutant);
        previous = load_state(&Mutant->Header);
        if (Abandon) {
            store_state(&Mutant->Header, 1);
            Mutant->Abandoned = TRUE;
        } else {
            // Nothing is modified; the status is raised with the lock released.
            kernel::enforce(kernel::check_mutant_owner(t, Mutant, Mutant->OwnerThread,
                                                       Mutant->Abandoned != FALSE));
            store_state(&Mutant->Header, previous + 1);
        }
        if (load_state(&Mutant->Header) == 1 && previous <= 0) {
            if (PKTHREAD owner = Mutant->OwnerThread) {
                RemoveEntryList(&Mutant->MutantListEntry);
                if (owner == t) {
                    leave_critical_region = Mutant->ApcDisable != 0;
                } else {
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
    begin_increment(Increment);
    require_irql_at_most(Wait ? APC_LEVEL : DISPATCH_LEVEL, Event);
    LONG previous;
    {
        Section section(current_thread(), Section::Kind::Routine, Wait ? nullptr : Event);
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
    require_irql_at_most(DISPATCH_LEVEL, Event);
    Section section(current_thread(), Section::Kind::Routine, Event);
    const LONG previous = load_state(&Event->Header);
    store_state(&Event->Header, 0);
    return previous;
}

void KeClearEvent(PRKEVENT Event) {
    require_irql_at_most(DISPATCH_LEVEL, Event);
    Section section(current_thread(), Section::Kind::Routine, Event);
    store_state(&Event->Header, 0);
}

LONG KePulseEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait) {
    begin_increment(Increment);
    require_irql_at_most(DISPATCH_LEVEL, Event);
    LONG previous;
    {
        Section section(current_thread(), Section::Kind::Routine, Wait ? nullptr : Event);
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
    begin_increment(Increment);
    require_irql_at_most(Wait ? PASSIVE_LEVEL : DISPATCH_LEVEL, Semaphore);
    LONG initial;
    {
        Section section(current_thread(), Section::Kind::Routine, Wait ? nullptr : Semaphore);
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
