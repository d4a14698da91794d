// The NT wait routines (KeWaitForSingleObject, KeWaitForMultipleObjects,
// KeDelayExecutionThread), alerts and user APCs: argument checks, the IRQL
// rule and the LARGE_INTEGER -> Deadline conversion, around the dispatcher's
// wait (dispatcher.cpp). Not part of the explorer's link seam: the model
// links this file as it is and it calls the model's dispatcher.
#include <deque>

#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/rules.hpp>
#include <kmlab/kernel/verifier.hpp>

#include "dispatcher_core.hpp"

namespace kmlab::nt {
using dispatcher::Section;
using kernel::current_thread;

namespace {
// IRQL rule of every KeWaitXxx [ros-wait] (kernel/rules.hpp): a poll (zero
// timeout) may wait at DISPATCH_LEVEL. After a Wait = TRUE release the
// caller's IRQL is the saved WaitIrql, not the raised one. `timeout` is the
// caller's pointer, only reported (parameter 4).
void check_wait_irql(PKTHREAD t, const void* object, Deadline deadline,
                     const LARGE_INTEGER* timeout) {
    const KIRQL irql = t->WaitNext ? t->WaitIrql : t->Irql;
    // A bug check gives a WaitNext hold back before unwinding.
    kernel::enforce(kernel::check_wait_irql(irql, kernel::wait_irql_ceiling(deadline.is_poll()),
                                            object, timeout));
}

// STATUS_USER_APC: run the thread's queued user APCs before returning, the
// emulator's stand-in for delivery on the way back to user mode.
NTSTATUS finish_wait(PKTHREAD t, NTSTATUS status) {
    if (status == STATUS_USER_APC) {
        std::deque<kernel::detail::UserApc> apcs;
        {
            Section section(t);
            apcs.swap(t->Extra->user_apcs);
        }
        for (const auto& apc : apcs) apc.routine(apc.context, apc.argument1, apc.argument2);
    }
    return status;
}

// KeWaitForSingleObject once its timeout is a Deadline; `timeout` is only
// reported by the IRQL bug check.
[[gnu::always_inline]] inline NTSTATUS wait_single_at(PKTHREAD t, PVOID object,
                                                      KPROCESSOR_MODE mode, bool alertable,
                                                      Deadline deadline) {
    NTSTATUS status;
    {
        Section section(t, Section::Kind::Wait, object);
        PVOID objects[1] = {object};
        status =
            dispatcher::wait(section, 1, objects, WaitAny, mode, alertable, deadline, t->WaitBlock);
    }
    return finish_wait(t, status);
}

// Above the ceiling, or the verifier on (kernel/verifier.hpp): the IRQL rule,
// then the wait with the verifier's hooks around a mutant's acquisition.
[[gnu::cold, gnu::noinline]] NTSTATUS wait_single_slow(PKTHREAD t, PVOID object,
                                                       KPROCESSOR_MODE mode, bool alertable,
                                                       Deadline deadline,
                                                       const LARGE_INTEGER* timeout) {
    check_wait_irql(t, object, deadline, timeout);
    auto* header = static_cast<DISPATCHER_HEADER*>(object);
    const bool mutant = kernel::verifier::on(t) && dispatcher::load_type(header) == MutantObject;
    using kernel::verifier::LockType;
    if (mutant && !deadline.is_poll()) kernel::verifier::on_acquire(t, object, LockType::kmutex);
    const NTSTATUS status = wait_single_at(t, object, mode, alertable, deadline);
    if (mutant && dispatcher::load_owner(static_cast<PKMUTANT>(object)) == t &&
        (status == STATUS_SUCCESS || status == STATUS_ABANDONED))
        kernel::verifier::on_acquired(t, object, LockType::kmutex, false, deadline.is_poll());
    return status;
}

// Satisfied at once, without the dispatcher lock (dispatcher_core.hpp, "The
// fast paths"), or STATUS_PENDING. Taken at or below APC_LEVEL, every wait's
// ceiling, with the verifier off (the gate word, kernel/verifier.hpp) and
// outside a WaitNext hold (which raised the IRQL to DISPATCH_LEVEL). A
// signaled object wins over a pending alert or user APC, as in the slow
// path's step 2, so alertable waits take it too.
[[gnu::always_inline]] inline NTSTATUS wait_fast(PKTHREAD t, PVOID object) noexcept {
    if (t->IrqlGate > APC_LEVEL) [[unlikely]]
        return STATUS_PENDING;
    return dispatcher::wait_at_once(t, object);
}

[[gnu::noinline]] NTSTATUS wait_single(PVOID object, KPROCESSOR_MODE mode, bool alertable,
                                       Deadline deadline, const LARGE_INTEGER* timeout) {
    PKTHREAD t = current_thread();
    // check_wait_irql's compare through the gate word (kernel/verifier.hpp).
    // After a Wait = TRUE release the saved WaitIrql is compared, with the
    // gate byte above it, so that the verifier sees that wait too.
    const USHORT irql =
        t->WaitNext ? static_cast<USHORT>(t->WaitIrql | (t->IrqlGate & 0xFF00)) : t->IrqlGate;
    if (irql > kernel::wait_irql_ceiling(deadline.is_poll())) [[unlikely]]
        return wait_single_slow(t, object, mode, alertable, deadline, timeout);
    return wait_single_at(t, object, mode, alertable, deadline);
}
}  // namespace

NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                               BOOLEAN Alertable, PLARGE_INTEGER Timeout) {
    (void)WaitReason;
    if (const NTSTATUS status = wait_fast(current_thread(), Object); status != STATUS_PENDING)
        return status;
    return wait_single(Object, WaitMode, Alertable != FALSE, kernel::deadline_from(Timeout),
                       Timeout);
}

NTSTATUS KeWaitForMutexObject(PVOID Mutex, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                              BOOLEAN Alertable, PLARGE_INTEGER Timeout) {
    return KeWaitForSingleObject(Mutex, WaitReason, WaitMode, Alertable, Timeout);
}

namespace {
bool is_mutant(PVOID object) {
    return dispatcher::load_type(static_cast<DISPATCHER_HEADER*>(object)) == MutantObject;
}
// The verifier's hooks around a multiple wait (kernel/verifier.hpp). A
// WaitAll that may block checks each mutant it would acquire; a WaitAny
// cannot say which it will get, and is recorded only (no cycle check).
[[gnu::cold, gnu::noinline]] void verify_multiple_before(PKTHREAD t, ULONG count, PVOID objects[],
                                                         WAIT_TYPE type, Deadline deadline) {
    if (type != WaitAll || deadline.is_poll()) return;
    for (ULONG i = 0; i < count; ++i) {
        if (is_mutant(objects[i]))
            kernel::verifier::on_acquire(t, objects[i], kernel::verifier::LockType::kmutex);
    }
}
[[gnu::cold, gnu::noinline]] void verify_multiple_after(PKTHREAD t, ULONG count, PVOID objects[],
                                                        WAIT_TYPE type, NTSTATUS status) {
    using kernel::verifier::LockType;
    const auto s = static_cast<ULONG>(status);
    const bool satisfied = s < MAXIMUM_WAIT_OBJECTS ||
                           (s >= static_cast<ULONG>(STATUS_ABANDONED) &&
                            s < static_cast<ULONG>(STATUS_ABANDONED) + MAXIMUM_WAIT_OBJECTS);
    if (!satisfied) return;
    auto note = [&](PVOID o, bool at_once) {
        if (is_mutant(o) && dispatcher::load_owner(static_cast<PKMUTANT>(o)) == t)
            kernel::verifier::on_acquired(t, o, LockType::kmutex, false, at_once);
    };
    if (type == WaitAll) {
        // Acquired at once: no order among them, so recorded as holds with
        // no edge into each (as a try is); verify_multiple_before added the
        // edges from the locks held before the wait (kernel/verifier.hpp).
        for (ULONG i = 0; i < count; ++i) note(objects[i], true);
    } else {
        const ULONG i = s & (MAXIMUM_WAIT_OBJECTS - 1);
        if (i < count) note(objects[i], false);
    }
}
}  // namespace

NTSTATUS KeWaitForMultipleObjects(ULONG Count, PVOID Object[], WAIT_TYPE WaitType,
                                  KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                                  BOOLEAN Alertable, PLARGE_INTEGER Timeout,
                                  PKWAIT_BLOCK WaitBlockArray) {
    (void)WaitReason;
    const Deadline deadline = kernel::deadline_from(Timeout);
    PKTHREAD t = current_thread();
    if (Count > MAXIMUM_WAIT_OBJECTS ||
        (WaitBlockArray == nullptr && Count > THREAD_WAIT_OBJECTS)) {
        bug_check(bugcheck::MAXIMUM_WAIT_OBJECTS_EXCEEDED);
    }
    check_wait_irql(t, Count > 0 ? Object[0] : nullptr, deadline, Timeout);
    // Not on the gate word: one byte test on this routine's path (verifier.hpp).
    const bool verify = kernel::verifier::on(t);
    if (verify) [[unlikely]]
        verify_multiple_before(t, Count, Object, WaitType, deadline);
    // The first object satisfied at once (dispatcher_core.hpp): the lowest
    // index wins a WaitAny anyway, and a WaitAll of one is that wait. Its
    // status is the index's: STATUS_WAIT_0 or STATUS_ABANDONED_WAIT_0.
    NTSTATUS status = STATUS_PENDING;
    if (Count > 0 && (WaitType == WaitAny || Count == 1))
        status = dispatcher::wait_at_once(t, Object[0]);
    if (status == STATUS_PENDING) {
        Section section(t, Section::Kind::Wait, Count == 1 ? Object[0] : nullptr);
        status =
            dispatcher::wait(section, Count, Object, WaitType, WaitMode, Alertable != FALSE,
                             deadline, WaitBlockArray != nullptr ? WaitBlockArray : t->WaitBlock);
    }
    if (verify) [[unlikely]]
        verify_multiple_after(t, Count, Object, WaitType, status);
    return finish_wait(t, status);
}

NTSTATUS KeDelayExecutionThread(KPROCESSOR_MODE WaitMode, BOOLEAN Alertable,
                                PLARGE_INTEGER Interval) {
    const Deadline deadline = kernel::deadline_from(Interval);
    PKTHREAD t = current_thread();
    // Inside a Wait = TRUE hold the caller's IRQL is the saved WaitIrql (the
    // hold raised Irql to DISPATCH_LEVEL), as for every KeWaitXxx above: the
    // kernel's delay takes the hold over as its waits do and asserts the
    // raised IRQL only then [ros-wait] (decision, kmlab: the ceiling applies
    // to the caller's own IRQL, WaitIrql there). The bug check gives the hold
    // back before unwinding (kernel::before_unwind).
    kernel::enforce(
        kernel::check_irql_at_most(APC_LEVEL, t->WaitNext ? t->WaitIrql : t->Irql, Interval));
    NTSTATUS status;
    {
        Section section(t, Section::Kind::Wait);
        status = dispatcher::wait(section, 0, nullptr, WaitAny, WaitMode, Alertable != FALSE,
                                  deadline, nullptr);
    }
    // The delay expiring is success here [ros-wait].
    return status == STATUS_TIMEOUT ? STATUS_SUCCESS : finish_wait(t, status);
}

// The boost an alert gives the thread whose wait it ends: the kernel's
// THREAD_ALERT_INCREMENT [ros-thrd].
constexpr KPRIORITY kThreadAlertIncrement = 2;

BOOLEAN KeAlertThread(PKTHREAD Thread, KPROCESSOR_MODE AlertMode) {
    kernel::require_irql_at_most(DISPATCH_LEVEL, Thread);
    Section section(current_thread());
    const int mode = static_cast<int>(AlertMode);
    const BOOLEAN previous = Thread->Alerted[mode];
    if (!previous) {
        // As KeAlertThread in ReactOS: a kernel-mode alert ends any alertable
        // wait, a user-mode alert only a user-mode one.
        if (Thread->Extra->waiting && Thread->Alertable &&
            (AlertMode == KernelMode || Thread->WaitMode == AlertMode)) {
            dispatcher::unwait(Thread, STATUS_ALERTED, kThreadAlertIncrement);
        } else {
            Thread->Alerted[mode] = TRUE;
        }
    }
    return previous;
}

BOOLEAN KeTestAlertThread(KPROCESSOR_MODE AlertMode) {
    PKTHREAD t = current_thread();
    Section section(t);
    const int mode = static_cast<int>(AlertMode);
    const BOOLEAN previous = t->Alerted[mode];
    t->Alerted[mode] = FALSE;
    return previous;
}

// ---- Priorities ----

KPRIORITY KeQueryPriorityThread(PKTHREAD Thread) {
    kernel::require_irql_at_most(DISPATCH_LEVEL, Thread);
    return std::atomic_ref<SCHAR>(Thread->Priority).load(std::memory_order_relaxed);
}

KPRIORITY KeSetPriorityThread(PKTHREAD Thread, KPRIORITY Priority) {
    kernel::require_irql_at_most(DISPATCH_LEVEL, Thread);
    // The kernel only ASSERTs the range [ros-thrd]: a checked kernel then
    // breaks in, which with no debugger attached is KMODE_EXCEPTION_NOT_HANDLED
    // with STATUS_BREAKPOINT [bc:0x1E]; a free kernel would index its ready
    // queues out of bounds. Both flavours stop here (decision, kmlab).
    if (Priority < LOW_PRIORITY || Priority > HIGH_PRIORITY) [[unlikely]]
        bug_check(bugcheck::KMODE_EXCEPTION_NOT_HANDLED, static_cast<ULONG>(STATUS_BREAKPOINT), 0,
                  0, 0);
    // Under the lock, so that a boost given by a concurrent wake is ordered
    // with the new value. BasePriority is unchanged: a later boost starts
    // from it, as the kernel's does [ros-thrd].
    Section section(current_thread());
    std::atomic_ref<SCHAR> priority(Thread->Priority);
    const KPRIORITY previous = priority.load(std::memory_order_relaxed);
    if (Priority == 0 && Thread->BasePriority != 0) Priority = 1;  // [ros-thrd]
    priority.store(static_cast<SCHAR>(Priority), std::memory_order_relaxed);
    return previous;
}

BOOLEAN KeInsertQueueUserApc(PKTHREAD Thread, PKNORMAL_ROUTINE NormalRoutine, PVOID NormalContext,
                             PVOID SystemArgument1, PVOID SystemArgument2) {
    kernel::require_irql_at_most(DISPATCH_LEVEL, Thread);
    Section section(current_thread());
    if (Thread->Terminated) return FALSE;
    Thread->Extra->user_apcs.push_back(
        {NormalRoutine, NormalContext, SystemArgument1, SystemArgument2});
    if (Thread->Extra->waiting && Thread->Alertable && Thread->WaitMode == UserMode) {
        dispatcher::unwait(Thread, STATUS_USER_APC);
    }
    return TRUE;
}

}  // namespace kmlab::nt

namespace kmlab::dispatcher {
NTSTATUS wait_for_mutex(PKMUTEX mutex, Deadline deadline) {
    if (const NTSTATUS status = nt::wait_fast(kernel::current_thread(), mutex);
        status != STATUS_PENDING)
        return status;
    return nt::wait_single(mutex, KernelMode, false, deadline, nullptr);
}
NTSTATUS wait_for_mutex_alertable(PKMUTEX mutex, Deadline deadline, KPROCESSOR_MODE mode) {
    if (const NTSTATUS status = nt::wait_fast(kernel::current_thread(), mutex);
        status != STATUS_PENDING)
        return status;
    return nt::wait_single(mutex, mode, true, deadline, nullptr);
}
}  // namespace kmlab::dispatcher
