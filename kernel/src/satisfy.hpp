// What satisfying a wait does to each kind of dispatcher object
// (SEMANTICS.md 4.4 step 3), private to kernel/src: inline, because the
// dispatcher's wait test and waits run these on every acquisition.
#pragma once

#include <vector>

#include <kmlab/kernel/rules.hpp>

#include "dispatcher_core.hpp"

namespace kmlab::dispatcher {

// Type and the owner field are read as atomics (dispatcher.hpp, load_type
// and load_owner): a fast path's compare-exchange may rewrite the header's
// first eight bytes beside a section (a failed one too, for
// ThreadSanitizer), and its owner store follows its compare-exchange.
inline bool is_mutant(const DISPATCHER_HEADER* h) noexcept {
    return load_type(h) == MutantObject;
}
inline PKMUTANT as_mutant(DISPATCHER_HEADER* h) noexcept {
    return reinterpret_cast<PKMUTANT>(h);
}

inline bool satisfiable(DISPATCHER_HEADER* h, PKTHREAD t) noexcept {
    if (is_mutant(h)) return load_state(h) > 0 || load_owner(as_mutant(h)) == t;
    return load_state(h) > 0;
}

inline void check_mutant_limit(DISPATCHER_HEADER* h, PKTHREAD t) {
    if (is_mutant(h))
        kernel::enforce(kernel::check_mutant_limit(t, h, load_owner(as_mutant(h)), load_state(h)));
}

// SEMANTICS.md 1.2: the first acquisition makes the thread owner, enters a
// critical region for a KMUTEX (ApcDisable = 1) and clears abandonment.
// The first acquisition's side effects, once SignalState went from 1 to 0
// (here or in the fast path, dispatcher.cpp).
// All but the owner field, which the caller writes (the fast path does, last,
// where the explorer sees it: header_word.hpp).
inline NTSTATUS own_mutant_owned(PKMUTANT m, PKTHREAD t) noexcept {
    NTSTATUS status = STATUS_SUCCESS;
    t->KernelApcDisable = static_cast<SHORT>(t->KernelApcDisable - m->ApcDisable);
    if (m->Abandoned) [[unlikely]] {
        m->Abandoned = FALSE;
        status = STATUS_ABANDONED;
    }
    InsertTailList(&t->MutantListHead, &m->MutantListEntry);
    return status;
}
inline NTSTATUS own_mutant(PKMUTANT m, PKTHREAD t) noexcept {
    const NTSTATUS status = own_mutant_owned(m, t);
    store_owner(m, t);
    return status;
}
inline NTSTATUS satisfy_mutant(PKMUTANT m, PKTHREAD t) noexcept {
    const LONG state = load_state(&m->Header) - 1;
    store_state(&m->Header, state);
    return state == 0 ? own_mutant(m, t) : STATUS_SUCCESS;
}

// Side effects of satisfying a wait (SEMANTICS.md 4.4 step 3); returns
// STATUS_ABANDONED for an abandoned mutant, else STATUS_SUCCESS.
inline NTSTATUS satisfy(DISPATCHER_HEADER* h, PKTHREAD t) noexcept {
    switch (load_type(h)) {
        case MutantObject:
            return satisfy_mutant(as_mutant(h), t);
        case EventSynchronizationObject:
        case GateObject:
        case TimerSynchronizationObject:
            store_state(h, 0);
            break;
        case SemaphoreObject:
            store_state(h, load_state(h) - 1);
            break;
        default:
            break;  // notification events, threads: stay signaled
    }
    return STATUS_SUCCESS;
}

inline bool all_satisfiable(ULONG count, PVOID const* objects, PKTHREAD t) noexcept {
    for (ULONG i = 0; i < count; ++i) {
        if (!satisfiable(header_of(objects[i]), t)) return false;
    }
    return true;
}

inline NTSTATUS satisfy_all(ULONG count, PVOID const* objects, PKTHREAD t) noexcept {
    NTSTATUS status = STATUS_SUCCESS;
    for (ULONG i = 0; i < count; ++i) {
        if (satisfy(header_of(objects[i]), t) == STATUS_ABANDONED) status = STATUS_ABANDONED_WAIT_0;
    }
    return status;
}

// The objects of the wait in progress, read back from the thread's wait
// blocks (the wait test only sees the block that named one object).
inline std::vector<PVOID> wait_objects_of(PKTHREAD t) {
    std::vector<PVOID> objects;
    PKWAIT_BLOCK first = t->WaitBlockList;
    PKWAIT_BLOCK wb = first;
    do {
        objects.push_back(wb->Object);
        wb = wb->NextWaitBlock;
    } while (wb != first);
    return objects;
}

}  // namespace kmlab::dispatcher
