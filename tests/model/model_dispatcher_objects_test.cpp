// Every dispatcher object and wait kind under the schedule explorer: the real
// dispatcher (kernel/src/dispatcher.cpp, its lock and parking through the
// model, explore/dispatcher.hpp) and the real NT routines around it
// (objects.cpp, waits.cpp, thread.cpp), in both dispatcher lock modes. Each
// program runs on fixed model threads, each with its own KTHREAD; "timed" is
// a 1-hour relative timeout, which expires only when the scheduler says so.
//
// Programs (3 threads x 2 operations, and 4 x 1):
//  * sync event: a synchronization event (initially signalled) used as a
//    lock: waits (infinite, timed, poll), a critical section, KeSetEvent.
//    Mutual exclusion, no write lost, the set always finds it taken.
//  * sync event pulse: KePulseEvent on a synchronization event with waiters
//    releases exactly one of them and leaves it not signalled [ros-event]
//    (counted inside a hold of the dispatcher lock that a KeSetEvent with
//    Wait = TRUE opened, so that the count before and after is atomic).
//  * notification event: KeSetEvent and KePulseEvent (both Wait = TRUE: the
//    signaller still holds the dispatcher lock when they return, so it checks
//    their effect atomically: no waiter is left linked, i.e. every waiter was
//    released, and a pulse leaves the event not signalled [ros-event]), KeResetEvent,
//    KeClearEvent; waiters wait for any of {event, the signaller's KTHREAD},
//    so that a reset after the last set strands nobody (the signaller's exit
//    signals its thread object for good).
//  * semaphore: KeReleaseSemaphore by 2 (Wait = TRUE: no waiter may stay
//    linked on a semaphore with a count) against waits of every kind; the
//    count is conserved (initial + released = acquired + final) and never
//    passes the limit [ros-sem].
//  * mutant: a KMUTANT with abandonment: releases by KeReleaseMutant, by
//    KeReleaseMutant(Abandon = TRUE), and by the owner's exit (thread rundown
//    abandons it). Mutual exclusion, and every abandonment is reported
//    exactly once: as STATUS_ABANDONED to the next owner or still marked on
//    the mutant at the end [ros-mutex][ros-thrd].
//  * KMUTEX held at exit: the owner's exit bug checks
//    THREAD_TERMINATE_HELD_MUTEX (0x4000008A, the thread and the mutex)
//    [ros-thrd][bc:0x4000008A] and abandons the mutex (the handler here
//    records and returns), so its waiters get STATUS_ABANDONED once.
//  * two objects: a synchronization event and a semaphore (count 1) used as
//    two locks, taken by WaitAll {both}, WaitAny {either} and single waits,
//    with and without timeouts. The objects sit on different stripes, so the
//    per-object lock mode locks each object's stripe for a release and every
//    stripe for a multi-object wait (and a release escalates while a
//    multi-object waiter is linked). A holder finds what it holds not
//    signalled (a WaitAll consumed both).
//  * alerts and APCs: KeAlertThread against an alertable kernel-mode wait
//    (STATUS_ALERTED, or the alert stays pending and the next alertable wait
//    consumes it), KeInsertQueueUserApc against an alertable user-mode wait
//    (STATUS_USER_APC, the routine runs once). Alerts and APCs are conserved.
//  * thread objects: threads exit (exit_current_thread, the rundown a system
//    thread's end runs) while others wait for them, singly and by WaitAll /
//    WaitAny, with and without timeouts.
// Every wait, once it returns, has none of its wait blocks linked. Each run
// ends with a final check: every object back in the state its history
// implies, no thread still waiting, no wait block linked.
//
// The per-object mode's stripes are picked by first use, two of them
// (dispatcher::testing::set_stripe_of), not by address: objects allocated
// anew for each run would otherwise land on other stripes, and a schedule
// would not replay.
//
// Thread-exit bug checks, as small model runs asserting the code: a KMUTEX
// held (0x4000008A), a critical region left entered and a raised IRQL
// (KERNEL_APC_PENDING_DURING_EXIT, 0x20 [bc:0x20]); a semaphore released
// past its limit raises STATUS_SEMAPHORE_LIMIT_EXCEEDED [ros-sem].
//
// Must-find mutants (dispatcher::testing::set_mutant, in the explorer's copy
// of dispatcher.cpp only): each breaks the step one of these kinds relies
// on, and the test asserts that the search reports it.
//
// Limit: a single-object section that skips its escalation to every stripe
// while a multi-object waiter is linked (Section::lock) is NOT found (tried
// on the two-object, notification and thread-object plans, 2026-12-07): the
// dispatcher's work under a lock is one scheduling step, so two sections
// that should exclude each other never interleave inside; only a scheduling
// point inside the work (as timer.cpp's list edits have) would show it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/thread.hpp>
#include "dispatcher_core.hpp"
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

using dispatcher::testing::Mutant;

// ---- what every program shares ----

constexpr nt::LONGLONG kOneHour = -36'000'000'000LL;  // relative, 100 ns units

enum class W { infinite, timed, poll };

// Whatever ended a wait (satisfied, timed out, alerted), the waiter's blocks
// are all unlinked by the time it returns (a block left on an object's list
// would be satisfied again later, for a thread that waits no more).
nt::NTSTATUS checked_return(nt::NTSTATUS status) {
    for (const auto& wb : kernel::current_thread()->WaitBlock) {
        if (wb.BlockState != 0) fail("a wait returned with a wait block still linked");
    }
    return status;
}

nt::NTSTATUS wait_one(void* object, W w, bool alertable = false,
                      nt::KPROCESSOR_MODE mode = nt::KernelMode) {
    nt::LARGE_INTEGER timeout{};
    timeout.QuadPart = w == W::timed ? kOneHour : 0;
    return checked_return(nt::KeWaitForSingleObject(
        object, mode == nt::UserMode ? nt::UserRequest : nt::Executive, mode,
        alertable ? nt::TRUE : nt::FALSE, w == W::infinite ? nullptr : &timeout));
}

nt::NTSTATUS wait_two(void* a, void* b, nt::WAIT_TYPE type, W w) {
    nt::LARGE_INTEGER timeout{};
    timeout.QuadPart = w == W::timed ? kOneHour : 0;
    void* objects[2] = {a, b};
    return checked_return(
        nt::KeWaitForMultipleObjects(2, objects, type, nt::Executive, nt::KernelMode, nt::FALSE,
                                     w == W::infinite ? nullptr : &timeout, nullptr));
}

// Bug checks reported through the handler (thread exit cannot raise): the
// handler records them and returns, as a debugger's "go" would, and the
// emulator carries on (abandoning a held KMUTEX). One OS thread runs every
// model thread, so plain storage is enough.
std::vector<BugCheck>& bug_checks() {
    static std::vector<BugCheck> v;
    return v;
}
void record_bug_check(const BugCheck& bc) {
    bug_checks().push_back(bc);
}

// The per-object mode's stripe of each object: the next one, round robin, in
// the order a run first uses its objects (dispatcher::testing::set_stripe_of),
// so that a run does not depend on the addresses its objects get (a schedule
// must replay). Two stripes: the first two objects a run uses (A and B of the
// two-object program, the only ones there) never share one, and a section
// over every object takes two locks, not 64 (each a scheduling point).
constexpr int kStripesUsed = 2;
std::vector<const void*>& stripe_order() {
    static std::vector<const void*> v;
    return v;
}
int stripe_by_first_use(const void* object) {
    auto& order = stripe_order();
    const auto it = std::find(order.begin(), order.end(), object);
    if (it != order.end()) return static_cast<int>(it - order.begin());
    order.push_back(object);
    return static_cast<int>(order.size() - 1);
}

// What every search here installs, and undoes after.
struct Harness {
    BugCheckHandler previous = set_bug_check_handler(&record_bug_check);
    Harness() { dispatcher::testing::set_stripe_of(&stripe_by_first_use, kStripesUsed); }
    ~Harness() {
        dispatcher::testing::set_stripe_of(nullptr, 0);
        set_bug_check_handler(previous);
    }
    Harness(const Harness&) = delete;
    Harness& operator=(const Harness&) = delete;
};

// At the start of every run.
void fresh_run(DispatcherUnderModel& dut) {
    dut.reset();
    bug_checks().clear();
    stripe_order().clear();
}

// The model threads' KTHREADs. A thread that ends by exit_current_thread
// gives up the reference it runs with; the extra one taken here keeps its
// KTHREAD (a thread object others wait on) alive until the run's state goes.
struct Threads {
    std::vector<nt::PKTHREAD> t;
    std::vector<bool> exited;
    explicit Threads(std::size_t n) : exited(n, false) {
        for (std::size_t i = 0; i < n; ++i) {
            t.push_back(kernel::create_thread_object(false));
            kernel::reference_thread(t.back());
        }
    }
    ~Threads() {
        for (std::size_t i = 0; i < t.size(); ++i) {
            if (!exited[i]) kernel::dereference_thread(t[i]);
            kernel::dereference_thread(t[i]);
        }
    }
    Threads(const Threads&) = delete;
    Threads& operator=(const Threads&) = delete;
    void enter(std::size_t i) const { kernel::detail::tls_current_thread = t[i]; }
    // The calling model thread ends: thread rundown, as a system thread's end.
    void exit(std::size_t i) {
        kernel::exit_current_thread();
        exited[i] = true;
    }
    // "" if no thread waits and no wait block of any thread is linked.
    std::string idle() const {
        for (std::size_t i = 0; i < t.size(); ++i) {
            const char* what = nullptr;
            if (t[i]->Extra->waiting) what = "still waits";
            if (t[i]->WaitBlockList != nullptr) what = "still names wait blocks";
            for (const auto& wb : t[i]->WaitBlock) {
                if (wb.BlockState != 0) what = "has a wait block still linked";
            }
            if (!nt::IsListEmpty(&t[i]->MutantListHead)) what = "still owns a mutant";
            if (what != nullptr) {
                char line[96];
                std::snprintf(line, sizeof line, "T%zu %s", i, what);
                return line;
            }
        }
        return {};
    }
};

bool no_waiters(const nt::DISPATCHER_HEADER& h) {
    return nt::IsListEmpty(&h.WaitListHead);
}

// ---- the programs ----
// A plan is a list of operations per model thread, each a small struct the
// program interprets.

enum class Kind {
    sync_event,
    notification_event,
    sync_pulse,
    semaphore,
    mutant,
    kmutex_exit,
    two_objects,
    alerts,
    thread_objects
};

// A Program factory: `plan` is "3x2" or "4x1".
using Factory = std::function<Program()>;

// ---- sync event: a lock ----
struct SyncEvent {
    nt::KEVENT e;
    Atomic<int> data{0};
    int in_cs = 0;
    int acquired = 0;
    Threads th;
    explicit SyncEvent(std::size_t n) : th(n) {
        nt::KeInitializeEvent(&e, nt::SynchronizationEvent, nt::TRUE);
    }
};

Factory sync_event_program(DispatcherUnderModel& dut, bool four) {
    const std::vector<std::vector<W>> plan =
        four ? std::vector<std::vector<W>>{{W::infinite}, {W::infinite}, {W::poll}, {W::timed}}
             : std::vector<std::vector<W>>{
                   {W::infinite, W::infinite}, {W::timed, W::infinite}, {W::poll, W::timed}};
    return [&dut, plan] {
        fresh_run(dut);
        auto s = std::make_shared<SyncEvent>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) label(&s->e, sizeof s->e, "event");
                s->th.enter(i);
                for (W w : ops) {
                    const nt::NTSTATUS st = wait_one(&s->e, w);
                    if (st == nt::STATUS_TIMEOUT && w != W::infinite) continue;
                    if (st != nt::STATUS_SUCCESS) fail("sync event: unexpected wait status");
                    if (++s->in_cs != 1) fail("two threads passed the synchronization event");
                    s->data.store(s->data.load(std::memory_order_relaxed) + 1,
                                  std::memory_order_relaxed);
                    ++s->acquired;
                    --s->in_cs;
                    if (nt::KeSetEvent(&s->e, 0, nt::FALSE) != 0)
                        fail("KeSetEvent found the event signalled while a waiter owned it");
                }
            });
        }
        p.check = [s]() -> std::string {
            if (nt::KeReadStateEvent(&s->e) != 1 || !no_waiters(s->e.Header))
                return "the event is not back to signalled with no waiter";
            if (s->data.load() != s->acquired) return "a write made under the event was lost";
            return s->th.idle();
        };
        return p;
    };
}

// ---- notification event: set, pulse, reset, clear ----
enum class EvOp { set, pulse, reset, clear, wait_any, wait_any_timed, wait_timed };
struct NotificationEvent {
    nt::KEVENT e;
    Threads th;
    bool signaller_started = false;
    explicit NotificationEvent(std::size_t n) : th(n) {
        nt::KeInitializeEvent(&e, nt::NotificationEvent, nt::FALSE);
    }
};

Factory notification_program(DispatcherUnderModel& dut, bool four) {
    // T0 signals and then exits: its thread object is the waiters' backstop.
    using P = std::vector<std::vector<EvOp>>;
    const P plan = four ? P{{EvOp::set}, {EvOp::wait_any}, {EvOp::wait_timed}, {EvOp::pulse}}
                        : P{{EvOp::pulse, EvOp::set},
                            {EvOp::wait_any, EvOp::reset},
                            {EvOp::wait_any_timed, EvOp::clear}};
    return [&dut, plan] {
        fresh_run(dut);
        auto s = std::make_shared<NotificationEvent>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) label(&s->e, sizeof s->e, "event");
                s->th.enter(i);
                for (EvOp op : ops) {
                    switch (op) {
                        case EvOp::set:
                        case EvOp::pulse: {
                            s->signaller_started = true;
                            // Wait = TRUE: this thread still holds the
                            // dispatcher lock, so what the routine did is
                            // seen whole: every waiter released.
                            if (op == EvOp::set) {
                                nt::KeSetEvent(&s->e, 0, nt::TRUE);
                            } else {
                                nt::KePulseEvent(&s->e, 0, nt::TRUE);
                            }
                            if (!no_waiters(s->e.Header))
                                fail(op == EvOp::set ? "KeSetEvent left a waiter linked"
                                                     : "KePulseEvent left a waiter linked");
                            const nt::LONG state = s->e.Header.SignalState;
                            if (state != (op == EvOp::set ? 1 : 0))
                                fail("the event's state after KeSetEvent / KePulseEvent is wrong");
                            // The wait that ends the hold: a poll of the event.
                            const nt::NTSTATUS st = wait_one(&s->e, W::poll);
                            if (st != (op == EvOp::set ? nt::STATUS_SUCCESS : nt::STATUS_TIMEOUT))
                                fail("a poll inside the hold disagrees with the event's state");
                            break;
                        }
                        case EvOp::reset: {
                            const nt::LONG previous = nt::KeResetEvent(&s->e);
                            if (previous != 0 && previous != 1)
                                fail("KeResetEvent: previous state not 0 or 1");
                            break;
                        }
                        case EvOp::clear:
                            nt::KeClearEvent(&s->e);
                            break;
                        case EvOp::wait_any:
                        case EvOp::wait_any_timed: {
                            const W w = op == EvOp::wait_any ? W::infinite : W::timed;
                            const nt::NTSTATUS st = wait_two(&s->e, s->th.t[0], nt::WaitAny, w);
                            if (st == nt::STATUS_TIMEOUT && w == W::timed) break;
                            if (st == nt::STATUS_WAIT_0 + 0 && !s->signaller_started)
                                fail("a waiter passed the event before anyone signalled it");
                            if (st == nt::STATUS_WAIT_1 && !s->th.t[0]->Terminated)
                                fail("a waiter passed T0's thread object before T0 ended");
                            if (st != nt::STATUS_SUCCESS && st != nt::STATUS_WAIT_1)
                                fail("notification event: unexpected wait status");
                            break;
                        }
                        case EvOp::wait_timed: {
                            const nt::NTSTATUS st = wait_one(&s->e, W::timed);
                            if (st == nt::STATUS_SUCCESS && !s->signaller_started)
                                fail("a waiter passed the event before anyone signalled it");
                            if (st != nt::STATUS_SUCCESS && st != nt::STATUS_TIMEOUT)
                                fail("notification event: unexpected wait status");
                            break;
                        }
                    }
                }
                if (i == 0) s->th.exit(0);
            });
        }
        p.check = [s]() -> std::string {
            const nt::LONG state = nt::KeReadStateEvent(&s->e);
            if (state != 0 && state != 1) return "the event's state is not 0 or 1";
            if (!no_waiters(s->e.Header)) return "a waiter is still linked on the event";
            if (!no_waiters(s->th.t[0]->Header) || s->th.t[0]->Header.SignalState != 1)
                return "T0's thread object is not signalled with no waiter";
            return s->th.idle();
        };
        return p;
    };
}

// ---- synchronization event: KePulseEvent releases one waiter ----
enum class PulseOp { pulse, set, wait_any, wait_any_timed };
struct SyncPulse {
    nt::KEVENT e;      // synchronization, not signalled
    nt::KEVENT other;  // notification, never waited for: its set opens the hold
    Threads th;
    explicit SyncPulse(std::size_t n) : th(n) {
        nt::KeInitializeEvent(&e, nt::SynchronizationEvent, nt::FALSE);
        nt::KeInitializeEvent(&other, nt::NotificationEvent, nt::FALSE);
    }
};

int waiters_on(const nt::DISPATCHER_HEADER& h) {
    int n = 0;
    for (const nt::LIST_ENTRY* e = h.WaitListHead.Flink; e != &h.WaitListHead; e = e->Flink) ++n;
    return n;
}

Factory sync_pulse_program(DispatcherUnderModel& dut, bool four) {
    using P = std::vector<std::vector<PulseOp>>;
    // T0 pulses and then exits: waiters wait for any of {event, T0's
    // KTHREAD}, so that those a pulse does not release are released by T0's
    // exit.
    const P plan = four ? P{{PulseOp::pulse},
                            {PulseOp::wait_any},
                            {PulseOp::wait_any},
                            {PulseOp::wait_any_timed}}
                        : P{{PulseOp::pulse, PulseOp::pulse},
                            {PulseOp::wait_any, PulseOp::wait_any_timed},
                            {PulseOp::wait_any, PulseOp::set}};
    return [&dut, plan] {
        fresh_run(dut);
        auto s = std::make_shared<SyncPulse>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) label(&s->e, sizeof s->e, "event");
                s->th.enter(i);
                for (PulseOp op : ops) {
                    switch (op) {
                        case PulseOp::pulse: {
                            // KeSetEvent(Wait = TRUE) of an event nobody waits
                            // for opens a hold of the dispatcher lock; the
                            // pulse runs inside it, so the waiters before and
                            // after it are counted atomically.
                            nt::KeSetEvent(&s->other, 0, nt::TRUE);
                            const int before = waiters_on(s->e.Header);
                            const nt::LONG previous = nt::KePulseEvent(&s->e, 0, nt::TRUE);
                            const int after = waiters_on(s->e.Header);
                            const int expected = previous == 0 && before > 0 ? before - 1 : before;
                            if (after != expected || s->e.Header.SignalState != 0)
                                fail(
                                    "KePulseEvent on a synchronization event did not release "
                                    "exactly one waiter and leave it not signalled");
                            if (wait_one(&s->other, W::poll) != nt::STATUS_SUCCESS)
                                fail("the poll that ends the hold failed");
                            break;
                        }
                        case PulseOp::set:
                            nt::KeSetEvent(&s->e, 0, nt::FALSE);
                            break;
                        case PulseOp::wait_any:
                        case PulseOp::wait_any_timed: {
                            const W w = op == PulseOp::wait_any ? W::infinite : W::timed;
                            const nt::NTSTATUS st = wait_two(&s->e, s->th.t[0], nt::WaitAny, w);
                            if (st == nt::STATUS_TIMEOUT && w == W::timed) break;
                            if (st == nt::STATUS_WAIT_1 && !s->th.t[0]->Terminated)
                                fail("a waiter passed T0's thread object before T0 ended");
                            if (st != nt::STATUS_SUCCESS && st != nt::STATUS_WAIT_1)
                                fail("sync event pulse: unexpected wait status");
                            break;
                        }
                    }
                }
                if (i == 0) s->th.exit(0);
            });
        }
        p.check = [s]() -> std::string {
            const nt::LONG state = nt::KeReadStateEvent(&s->e);
            if (state != 0 && state != 1) return "the event's state is not 0 or 1";
            if (!no_waiters(s->e.Header)) return "a waiter is still linked on the event";
            if (!no_waiters(s->th.t[0]->Header) || s->th.t[0]->Header.SignalState != 1)
                return "T0's thread object is not signalled with no waiter";
            return s->th.idle();
        };
        return p;
    };
}

// ---- semaphore: counts and the limit ----
enum class SemOp { release2, wait, timed, poll };
struct Semaphore {
    nt::KSEMAPHORE sem;
    nt::KEVENT never;  // never signalled: a poll of it ends a Wait = TRUE hold
    nt::LONG initial;
    nt::LONG limit;
    int acquired = 0;
    int released = 0;
    Threads th;
    Semaphore(std::size_t n, nt::LONG count, nt::LONG lim) : initial(count), limit(lim), th(n) {
        nt::KeInitializeSemaphore(&sem, count, lim);
        nt::KeInitializeEvent(&never, nt::NotificationEvent, nt::FALSE);
    }
};

Factory semaphore_program(DispatcherUnderModel& dut, bool four) {
    using P = std::vector<std::vector<SemOp>>;
    // Released + initial covers every infinite wait whatever the timed and
    // polling ones take, and never passes the limit.
    const P plan = four ? P{{SemOp::release2}, {SemOp::wait}, {SemOp::wait}, {SemOp::timed}}
                        : P{{SemOp::release2, SemOp::release2},
                            {SemOp::wait, SemOp::wait},
                            {SemOp::timed, SemOp::poll}};
    const nt::LONG initial = four ? 1 : 0;
    const nt::LONG limit = four ? 3 : 4;
    return [&dut, plan, initial, limit] {
        fresh_run(dut);
        auto s = std::make_shared<Semaphore>(plan.size(), initial, limit);
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) label(&s->sem, sizeof s->sem, "semaphore");
                s->th.enter(i);
                for (SemOp op : ops) {
                    if (op == SemOp::release2) {
                        // Wait = TRUE: checked under the lock that released.
                        const nt::LONG previous = nt::KeReleaseSemaphore(&s->sem, 0, 2, nt::TRUE);
                        s->released += 2;
                        if (previous + 2 > s->limit) fail("the semaphore passed its limit");
                        if (s->sem.Header.SignalState > 0 && !no_waiters(s->sem.Header))
                            fail("a waiter is still linked on a semaphore with a count");
                        // The wait that ends the hold takes nothing.
                        if (wait_one(&s->never, W::poll) != nt::STATUS_TIMEOUT)
                            fail("a poll of an unsignalled event did not time out");
                        continue;
                    }
                    const W w = op == SemOp::wait    ? W::infinite
                                : op == SemOp::timed ? W::timed
                                                     : W::poll;
                    const nt::NTSTATUS st = wait_one(&s->sem, w);
                    if (st == nt::STATUS_TIMEOUT && w != W::infinite) continue;
                    if (st != nt::STATUS_SUCCESS) fail("semaphore: unexpected wait status");
                    ++s->acquired;
                }
            });
        }
        p.check = [s]() -> std::string {
            const nt::LONG count = nt::KeReadStateSemaphore(&s->sem);
            if (!no_waiters(s->sem.Header)) return "a waiter is still linked on the semaphore";
            if (count < 0 || count > s->limit) return "the count is out of range";
            if (s->initial + s->released != s->acquired + count)
                return "the count is not conserved: initial " + std::to_string(s->initial) +
                       " + released " + std::to_string(s->released) + " != acquired " +
                       std::to_string(s->acquired) + " + left " + std::to_string(count);
            return s->th.idle();
        };
        return p;
    };
}

// ---- mutant: abandonment by release and by exit ----
enum class MutAcq { lock, timed, poll };
enum class MutRel { release, abandon, exit };
struct MutStep {
    MutAcq acq;
    MutRel rel;
};
struct MutantState {
    nt::KMUTANT m;
    Atomic<int> data{0};
    int in_cs = 0;
    int acquired = 0;
    int abandonments = 0;
    int abandoned_seen = 0;
    Threads th;
    explicit MutantState(std::size_t n) : th(n) {}
};

// `kmutex`: a KMUTEX (KeInitializeMutex), whose owner's exit bug checks
// 0x4000008A; else a KMUTANT, whose owner's exit only abandons it.
Factory mutant_program(DispatcherUnderModel& dut, bool four, bool kmutex) {
    using P = std::vector<std::vector<MutStep>>;
    const MutStep lock_exit{MutAcq::lock, MutRel::exit};
    const P plan =
        kmutex ? (four ? P{{lock_exit},
                           {{MutAcq::lock, MutRel::release}},
                           {{MutAcq::timed, MutRel::release}},
                           {{MutAcq::poll, MutRel::release}}}
                       : P{{lock_exit},
                           {{MutAcq::lock, MutRel::release}, {MutAcq::lock, MutRel::release}},
                           {{MutAcq::timed, MutRel::release}, {MutAcq::poll, MutRel::release}}})
               : (four ? P{{lock_exit},
                           {{MutAcq::lock, MutRel::release}},
                           {{MutAcq::timed, MutRel::abandon}},
                           {{MutAcq::poll, MutRel::release}}}
                       : P{{{MutAcq::lock, MutRel::abandon}, lock_exit},
                           {{MutAcq::lock, MutRel::release}, {MutAcq::timed, MutRel::release}},
                           {{MutAcq::poll, MutRel::release}, {MutAcq::lock, MutRel::abandon}}});
    return [&dut, plan, kmutex] {
        fresh_run(dut);
        auto s = std::make_shared<MutantState>(plan.size());
        if (kmutex) {
            nt::KeInitializeMutex(&s->m, 0);
        } else {
            // KeInitializeMutant reads the current thread (for an initial owner).
            nt::PKTHREAD scheduler = std::exchange(kernel::detail::tls_current_thread, s->th.t[0]);
            nt::KeInitializeMutant(&s->m, nt::FALSE);
            kernel::detail::tls_current_thread = scheduler;
        }
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) {
                    label(&s->m, sizeof s->m, "mutant");
                    label(&s->data, sizeof s->data, "data");
                }
                s->th.enter(i);
                for (const MutStep& step : ops) {
                    const W w = step.acq == MutAcq::lock    ? W::infinite
                                : step.acq == MutAcq::timed ? W::timed
                                                            : W::poll;
                    const nt::NTSTATUS st = wait_one(&s->m, w);
                    if (st == nt::STATUS_TIMEOUT && w != W::infinite) continue;
                    if (st == nt::STATUS_ABANDONED) {
                        ++s->abandoned_seen;
                    } else if (st != nt::STATUS_SUCCESS) {
                        fail("mutant: unexpected wait status");
                    }
                    if (++s->in_cs != 1) fail("two threads own the mutant");
                    s->data.store(s->data.load(std::memory_order_relaxed) + 1,
                                  std::memory_order_relaxed);
                    ++s->acquired;
                    --s->in_cs;
                    switch (step.rel) {
                        case MutRel::release:
                            nt::KeReleaseMutant(&s->m, 1, nt::FALSE, nt::FALSE);
                            break;
                        case MutRel::abandon:
                            ++s->abandonments;
                            nt::KeReleaseMutant(&s->m, 1, nt::TRUE, nt::FALSE);
                            break;
                        case MutRel::exit:
                            ++s->abandonments;
                            s->th.exit(i);  // rundown abandons it
                            return;
                    }
                }
            });
        }
        p.check = [s, kmutex]() -> std::string {
            if (nt::KeReadStateMutant(&s->m) != 1 || s->m.OwnerThread != nullptr ||
                !no_waiters(s->m.Header))
                return "the mutant is not back to free with no waiter";
            if (s->data.load() != s->acquired) return "a write made under the mutant was lost";
            const int marked = s->m.Abandoned ? 1 : 0;
            if (s->abandoned_seen + marked != s->abandonments)
                return "abandonments " + std::to_string(s->abandonments) +
                       " != STATUS_ABANDONED seen " + std::to_string(s->abandoned_seen) +
                       " + still marked " + std::to_string(marked);
            // A KMUTEX's owner exiting bug checks once, naming it and the mutex.
            const auto& bcs = bug_checks();
            if (kmutex) {
                if (bcs.size() != 1 || bcs[0].code() != bugcheck::THREAD_TERMINATE_HELD_MUTEX ||
                    bcs[0].parameter(1) != reinterpret_cast<nt::ULONG_PTR>(s->th.t[0]) ||
                    bcs[0].parameter(2) != reinterpret_cast<nt::ULONG_PTR>(&s->m))
                    return "no THREAD_TERMINATE_HELD_MUTEX (T0, the KMUTEX) at T0's exit";
            } else if (!bcs.empty()) {
                return "a bug check at a KMUTANT owner's exit";
            }
            if (s->th.t[0]->KernelApcDisable != 0) return "T0's APC disable count not restored";
            return s->th.idle();
        };
        return p;
    };
}

// ---- two objects: WaitAll / WaitAny, per-object stripes ----
enum class TwoOp { all, all_timed, any, any_timed, a };
struct TwoObjects {
    nt::KEVENT a;      // a synchronization event, signalled: lock A
    nt::KSEMAPHORE b;  // count 1, limit 1: lock B
    Atomic<int> data_a{0};
    Atomic<int> data_b{0};
    int in_a = 0;
    int in_b = 0;
    int got_a = 0;
    int got_b = 0;
    Threads th;
    explicit TwoObjects(std::size_t n) : th(n) {
        nt::KeInitializeEvent(&a, nt::SynchronizationEvent, nt::TRUE);
        nt::KeInitializeSemaphore(&b, 1, 1);
    }
    void hold(bool take_a, bool take_b) {
        // Only a holder signals them: while held, neither is signalled (a
        // wait satisfied on both consumed both).
        if ((take_a && a.Header.SignalState != 0) || (take_b && b.Header.SignalState != 0))
            fail("an object is still signalled while held");
        if (take_a) {
            if (++in_a != 1) fail("two threads hold A");
            data_a.store(data_a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            ++got_a;
        }
        if (take_b) {
            if (++in_b != 1) fail("two threads hold B");
            data_b.store(data_b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            ++got_b;
        }
        if (take_a) --in_a;
        if (take_b) --in_b;
        if (take_a && nt::KeSetEvent(&a, 0, nt::FALSE) != 0) fail("A was signalled while held");
        if (take_b) nt::KeReleaseSemaphore(&b, 0, 1, nt::FALSE);
    }
};

Factory two_objects_program(DispatcherUnderModel& dut, bool four) {
    using P = std::vector<std::vector<TwoOp>>;
    const P plan = four ? P{{TwoOp::all}, {TwoOp::any_timed}, {TwoOp::a}, {TwoOp::all_timed}}
                        : P{{TwoOp::all, TwoOp::any},
                            {TwoOp::any, TwoOp::all_timed},
                            {TwoOp::a, TwoOp::any_timed}};
    return [&dut, plan] {
        fresh_run(dut);
        auto s = std::make_shared<TwoObjects>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) {
                    label(&s->a, sizeof s->a, "A");
                    label(&s->b, sizeof s->b, "B");
                }
                s->th.enter(i);
                for (TwoOp op : ops) {
                    const bool timed = op == TwoOp::all_timed || op == TwoOp::any_timed;
                    const W w = timed ? W::timed : W::infinite;
                    nt::NTSTATUS st;
                    if (op == TwoOp::a) {
                        st = wait_one(&s->a, w);
                    } else {
                        const bool all = op == TwoOp::all || op == TwoOp::all_timed;
                        st = wait_two(&s->a, &s->b, all ? nt::WaitAll : nt::WaitAny, w);
                    }
                    if (st == nt::STATUS_TIMEOUT && timed) continue;
                    switch (op) {
                        case TwoOp::all:
                        case TwoOp::all_timed:
                            if (st != nt::STATUS_SUCCESS) fail("WaitAll: unexpected status");
                            s->hold(true, true);
                            break;
                        case TwoOp::any:
                        case TwoOp::any_timed:
                            if (st != nt::STATUS_WAIT_0 + 0 && st != nt::STATUS_WAIT_1)
                                fail("WaitAny: unexpected status");
                            s->hold(st == nt::STATUS_SUCCESS, st == nt::STATUS_WAIT_1);
                            break;
                        case TwoOp::a:
                            if (st != nt::STATUS_SUCCESS) fail("wait for A: unexpected status");
                            s->hold(true, false);
                            break;
                    }
                }
            });
        }
        p.check = [s]() -> std::string {
            if (dispatcher::lock_mode() == dispatcher::LockMode::per_object &&
                dispatcher::stripe_index(&s->a) == dispatcher::stripe_index(&s->b))
                return "A and B share a stripe: the per-object mode would lock one";
            if (nt::KeReadStateEvent(&s->a) != 1 || !no_waiters(s->a.Header))
                return "A is not back to signalled with no waiter";
            if (nt::KeReadStateSemaphore(&s->b) != 1 || !no_waiters(s->b.Header))
                return "B is not back to a count of 1 with no waiter";
            if (s->data_a.load() != s->got_a || s->data_b.load() != s->got_b)
                return "a write made under A or B was lost";
            return s->th.idle();
        };
        return p;
    };
}

// ---- alerts and user APCs ----
enum class AlOp { alert1, apc2, wait_alertable, wait_alertable_timed, wait_user_apc, set };
struct Alerts {
    nt::KEVENT e;  // notification, set only by T2 after its APC wait (3x2)
    int effective_alerts = 0;
    int alerted_seen = 0;
    int apcs_queued = 0;
    int apcs_ran = 0;
    Threads th;
    explicit Alerts(std::size_t n) : th(n) {
        nt::KeInitializeEvent(&e, nt::NotificationEvent, nt::FALSE);
    }
};

void count_apc(void* context, void*, void*) {
    ++static_cast<Alerts*>(context)->apcs_ran;
}

Factory alerts_program(DispatcherUnderModel& dut, bool four) {
    using P = std::vector<std::vector<AlOp>>;
    // T1 is the alerted thread, T2 the APC's target. The event is set only
    // after T2's APC wait, so an alert or the APC is what ends each of those
    // infinite waits.
    const P plan =
        four ? P{{AlOp::alert1}, {AlOp::wait_alertable}, {AlOp::wait_user_apc}, {AlOp::apc2}}
             : P{{AlOp::alert1, AlOp::apc2},
                 {AlOp::wait_alertable, AlOp::wait_alertable_timed},
                 {AlOp::wait_user_apc, AlOp::set}};
    return [&dut, plan] {
        fresh_run(dut);
        auto s = std::make_shared<Alerts>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) label(&s->e, sizeof s->e, "event");
                s->th.enter(i);
                for (AlOp op : ops) {
                    switch (op) {
                        case AlOp::alert1:
                            if (nt::KeAlertThread(s->th.t[1], nt::KernelMode) == nt::FALSE)
                                ++s->effective_alerts;
                            break;
                        case AlOp::apc2:
                            if (nt::KeInsertQueueUserApc(s->th.t[2], &count_apc, s.get(), nullptr,
                                                         nullptr) == nt::FALSE)
                                fail("KeInsertQueueUserApc refused a live thread");
                            ++s->apcs_queued;
                            break;
                        case AlOp::wait_alertable:
                        case AlOp::wait_alertable_timed: {
                            const bool timed = op == AlOp::wait_alertable_timed;
                            const nt::NTSTATUS st =
                                wait_one(&s->e, timed ? W::timed : W::infinite, true);
                            if (st == nt::STATUS_ALERTED) {
                                ++s->alerted_seen;
                            } else if (st != nt::STATUS_SUCCESS &&
                                       !(timed && st == nt::STATUS_TIMEOUT)) {
                                fail("alertable wait: unexpected status");
                            }
                            break;
                        }
                        case AlOp::wait_user_apc: {
                            const nt::NTSTATUS st =
                                wait_one(&s->e, W::infinite, true, nt::UserMode);
                            if (st != nt::STATUS_USER_APC)
                                fail("the user-mode alertable wait did not end by the APC");
                            if (s->apcs_ran != 1) fail("STATUS_USER_APC but the APC did not run");
                            break;
                        }
                        case AlOp::set:
                            nt::KeSetEvent(&s->e, 0, nt::FALSE);
                            break;
                    }
                }
            });
        }
        p.check = [s]() -> std::string {
            const int pending = s->th.t[1]->Alerted[nt::KernelMode] ? 1 : 0;
            if (s->alerted_seen + pending != s->effective_alerts)
                return "alerts not conserved: sent " + std::to_string(s->effective_alerts) +
                       ", seen " + std::to_string(s->alerted_seen) + ", pending " +
                       std::to_string(pending);
            const auto queued = static_cast<int>(s->th.t[2]->Extra->user_apcs.size());
            if (s->apcs_ran + queued != s->apcs_queued || s->apcs_ran != 1)
                return "the user APC did not run exactly once";
            if (!no_waiters(s->e.Header)) return "a waiter is still linked on the event";
            return s->th.idle();
        };
        return p;
    };
}

// ---- thread objects signalled at exit ----
enum class ThOp { set, wait_event, exit, join0, join_all_timed, join_any, join_all };
struct ThreadObjects {
    nt::KEVENT e;
    Threads th;
    explicit ThreadObjects(std::size_t n) : th(n) {
        nt::KeInitializeEvent(&e, nt::NotificationEvent, nt::FALSE);
    }
};

Factory thread_objects_program(DispatcherUnderModel& dut, bool four) {
    using P = std::vector<std::vector<ThOp>>;
    const P plan = four ? P{{ThOp::exit}, {ThOp::exit}, {ThOp::join0}, {ThOp::join_all}}
                        : P{{ThOp::set, ThOp::exit},
                            {ThOp::wait_event, ThOp::exit},
                            {ThOp::join_all_timed, ThOp::join_any}};
    return [&dut, plan] {
        fresh_run(dut);
        auto s = std::make_shared<ThreadObjects>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) {
                    label(&s->e, sizeof s->e, "event");
                    label(s->th.t[0], sizeof(nt::DISPATCHER_HEADER), "T0's KTHREAD");
                    label(s->th.t[1], sizeof(nt::DISPATCHER_HEADER), "T1's KTHREAD");
                }
                s->th.enter(i);
                nt::PKTHREAD t0 = s->th.t[0];
                nt::PKTHREAD t1 = s->th.t[1];
                for (ThOp op : ops) {
                    nt::NTSTATUS st = nt::STATUS_SUCCESS;
                    switch (op) {
                        case ThOp::set:
                            nt::KeSetEvent(&s->e, 0, nt::FALSE);
                            break;
                        case ThOp::wait_event:
                            st = wait_one(&s->e, W::infinite);
                            break;
                        case ThOp::exit:
                            s->th.exit(i);
                            return;
                        case ThOp::join0:
                            st = wait_one(t0, W::infinite);
                            if (st == nt::STATUS_SUCCESS && !t0->Terminated)
                                fail("a join of T0 returned before T0 ended");
                            break;
                        case ThOp::join_all:
                        case ThOp::join_all_timed:
                            st = wait_two(t0, t1, nt::WaitAll,
                                          op == ThOp::join_all ? W::infinite : W::timed);
                            if (st == nt::STATUS_TIMEOUT && op == ThOp::join_all_timed) {
                                st = nt::STATUS_SUCCESS;
                                break;
                            }
                            if (st == nt::STATUS_SUCCESS && !(t0->Terminated && t1->Terminated))
                                fail("a WaitAll join returned before both threads ended");
                            break;
                        case ThOp::join_any:
                            st = wait_two(t0, t1, nt::WaitAny, W::infinite);
                            if (st == nt::STATUS_SUCCESS && !t0->Terminated)
                                fail("a WaitAny join returned T0 before it ended");
                            if (st == nt::STATUS_WAIT_1) {
                                if (!t1->Terminated)
                                    fail("a WaitAny join returned T1 before it ended");
                                st = nt::STATUS_SUCCESS;
                            }
                            break;
                    }
                    if (st != nt::STATUS_SUCCESS) fail("thread objects: unexpected wait status");
                }
            });
        }
        p.check = [s]() -> std::string {
            for (int k : {0, 1}) {
                nt::PKTHREAD t = s->th.t[static_cast<std::size_t>(k)];
                if (!t->Terminated || t->Header.SignalState != 1 || !no_waiters(t->Header))
                    return k == 0 ? "T0's thread object is not signalled with no waiter"
                                  : "T1's thread object is not signalled with no waiter";
            }
            if (!no_waiters(s->e.Header)) return "a waiter is still linked on the event";
            return s->th.idle();
        };
        return p;
    };
}

Factory factory(Kind kind, DispatcherUnderModel& dut, bool four) {
    switch (kind) {
        case Kind::sync_event:
            return sync_event_program(dut, four);
        case Kind::notification_event:
            return notification_program(dut, four);
        case Kind::sync_pulse:
            return sync_pulse_program(dut, four);
        case Kind::semaphore:
            return semaphore_program(dut, four);
        case Kind::mutant:
            return mutant_program(dut, four, false);
        case Kind::kmutex_exit:
            return mutant_program(dut, four, true);
        case Kind::two_objects:
            return two_objects_program(dut, four);
        case Kind::alerts:
            return alerts_program(dut, four);
        case Kind::thread_objects:
            return thread_objects_program(dut, four);
    }
    return {};
}

const char* kind_name(Kind kind) {
    switch (kind) {
        case Kind::sync_event:
            return "sync event";
        case Kind::notification_event:
            return "notification event";
        case Kind::sync_pulse:
            return "sync event pulse";
        case Kind::semaphore:
            return "semaphore";
        case Kind::mutant:
            return "mutant abandon";
        case Kind::kmutex_exit:
            return "KMUTEX held at exit";
        case Kind::two_objects:
            return "WaitAll/WaitAny x2";
        case Kind::alerts:
            return "alerts+APCs";
        case Kind::thread_objects:
            return "thread objects";
    }
    return "?";
}

const char* mode_name(dispatcher::LockMode mode) {
    return mode == dispatcher::LockMode::global ? "global" : "per-object";
}

Config base_config(Memory m) {
    Config c;
    c.memory = m;
    c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
    c.fiber_locals = DispatcherUnderModel::fiber_locals();
    return c;
}

// Every plan of `kind` in `mode`: 0 violations, complete, sequentially
// consistent and under TSO, except the two-object 4x1 plan under TSO,
// trimmed for time (the default run stays under ~2 minutes): an earlier
// 4x1 plan of four waits on both objects took 1.2 million schedules under TSO
// in the global mode and 4.3 million in the per-object one, and found nothing
// (2026-12-07). Under TSO the dispatcher's state changes only under its lock
// (read-modify-writes, which drain the store buffer); what TSO adds is the
// wake word and the programs' own data stored outside it, which the
// two-object 3x2 plan exercises under TSO as well.
void explore_clean(Kind kind, dispatcher::LockMode mode) {
    Harness harness;
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    for (Memory m : {Memory::sc, Memory::tso}) {
        for (bool four : {false, true}) {
            if (m == Memory::tso && four && kind == Kind::two_objects) continue;
            const Config c = base_config(m);
            const Result r = explore(c, factory(kind, dut, four));
            report(std::string("dispatcher ") + kind_name(kind) + " (" + mode_name(mode) + ") " +
                       (four ? "4x1" : "3x2"),
                   c, r);
            EXPECT_FALSE(r.violation) << describe(r);
            EXPECT_TRUE(r.complete);
        }
    }
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
}

// The mutant switched on for one search, which must report `expected`.
void expect_found(Mutant mutant, const char* mutant_name, Kind kind, bool four,
                  dispatcher::LockMode mode, const char* expected) {
    Harness harness;
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    dispatcher::testing::set_mutant(mutant);
    const Config c = base_config(Memory::sc);
    const Result r = explore(c, factory(kind, dut, four));
    dispatcher::testing::set_mutant(Mutant::none);
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    report(std::string("mutant ") + mutant_name + ": " + kind_name(kind) + " (" + mode_name(mode) +
               ") " + (four ? "4x1" : "3x2") + " (must fail)",
           c, r);
    EXPECT_TRUE(r.violation) << "the explorer misses mutant " << mutant_name;
    EXPECT_NE(r.what.find(expected), std::string::npos) << describe(r);
}

// ---- the exhaustive configurations ----

class ModelDispatcherObjects : public ::testing::TestWithParam<dispatcher::LockMode> {};

TEST_P(ModelDispatcherObjects, SyncEvent) {
    explore_clean(Kind::sync_event, GetParam());
}
TEST_P(ModelDispatcherObjects, SynchronizationEventPulse) {
    explore_clean(Kind::sync_pulse, GetParam());
}
TEST_P(ModelDispatcherObjects, NotificationEvent) {
    explore_clean(Kind::notification_event, GetParam());
}
TEST_P(ModelDispatcherObjects, Semaphore) {
    explore_clean(Kind::semaphore, GetParam());
}
TEST_P(ModelDispatcherObjects, MutantAbandonment) {
    explore_clean(Kind::mutant, GetParam());
}
TEST_P(ModelDispatcherObjects, KMutexHeldAtExit) {
    explore_clean(Kind::kmutex_exit, GetParam());
}
TEST_P(ModelDispatcherObjects, WaitAllWaitAnyTwoObjects) {
    explore_clean(Kind::two_objects, GetParam());
}
TEST_P(ModelDispatcherObjects, AlertsAndUserApcs) {
    explore_clean(Kind::alerts, GetParam());
}
TEST_P(ModelDispatcherObjects, ThreadObjectsAtExit) {
    explore_clean(Kind::thread_objects, GetParam());
}

std::string lock_mode_test_name(const ::testing::TestParamInfo<dispatcher::LockMode>& p) {
    return p.param == dispatcher::LockMode::global ? "GlobalLock" : "PerObjectLocks";
}
INSTANTIATE_TEST_SUITE_P(LockModes, ModelDispatcherObjects,
                         ::testing::Values(dispatcher::LockMode::global,
                                           dispatcher::LockMode::per_object),
                         lock_mode_test_name);

// ---- the must-find mutants ----

TEST(ModelDispatcherMutants, SetEventWakeRemoved) {
    expect_found(Mutant::event_wake_removed, "event wake removed", Kind::sync_event, true,
                 dispatcher::LockMode::global, "deadlock");
}
TEST(ModelDispatcherMutants, SynchronizationPulseWakeRemoved) {
    expect_found(Mutant::event_wake_removed, "event wake removed", Kind::sync_pulse, false,
                 dispatcher::LockMode::per_object, "KePulseEvent on a synchronization event");
}
TEST(ModelDispatcherMutants, NotificationEventReleasesOne) {
    expect_found(Mutant::notification_wakes_one, "notification wakes one", Kind::notification_event,
                 false, dispatcher::LockMode::global, "left a waiter linked");
}
TEST(ModelDispatcherMutants, SemaphoreReleaseWakesOne) {
    expect_found(Mutant::semaphore_wakes_one, "semaphore wakes one", Kind::semaphore, true,
                 dispatcher::LockMode::global, "still linked on a semaphore with a count");
}
TEST(ModelDispatcherMutants, MutantReleaseWakeRemoved) {
    expect_found(Mutant::mutant_wake_removed, "mutant wake removed", Kind::mutant, true,
                 dispatcher::LockMode::global, "deadlock");
}
TEST(ModelDispatcherMutants, AbandonedMutantNotMarked) {
    expect_found(Mutant::abandon_not_marked, "abandon not marked", Kind::mutant, true,
                 dispatcher::LockMode::global, "abandonments");
}
TEST(ModelDispatcherMutants, AbandonedKMutexNotMarked) {
    expect_found(Mutant::abandon_not_marked, "abandon not marked", Kind::kmutex_exit, true,
                 dispatcher::LockMode::per_object, "abandonments");
}
TEST(ModelDispatcherMutants, WaitAllSatisfiesOneObject) {
    expect_found(Mutant::wait_all_satisfies_one, "WaitAll satisfies one", Kind::two_objects, true,
                 dispatcher::LockMode::per_object, "still signalled while held");
}
TEST(ModelDispatcherMutants, UnwaitLeavesWaitBlocksLinked) {
    expect_found(Mutant::unwait_leaves_blocks, "unwait leaves blocks", Kind::two_objects, true,
                 dispatcher::LockMode::per_object, "wait block still linked");
}
TEST(ModelDispatcherMutants, TimeoutLeavesWaitBlocksLinked) {
    expect_found(Mutant::timeout_leaves_blocks, "timeout leaves blocks", Kind::two_objects, true,
                 dispatcher::LockMode::global, "wait block still linked");
}
TEST(ModelDispatcherMutants, AlertUnwaitForgotten) {
    expect_found(Mutant::alert_unwait_forgotten, "alert unwait forgotten", Kind::alerts, true,
                 dispatcher::LockMode::global, "deadlock");
}
TEST(ModelDispatcherMutants, PendingAlertIgnored) {
    expect_found(Mutant::pending_alert_ignored, "pending alert ignored", Kind::alerts, true,
                 dispatcher::LockMode::global, "deadlock");
}
TEST(ModelDispatcherMutants, UserApcUnwaitForgotten) {
    expect_found(Mutant::user_apc_unwait_forgotten, "APC unwait forgotten", Kind::alerts, true,
                 dispatcher::LockMode::per_object, "deadlock");
}
TEST(ModelDispatcherMutants, PendingUserApcIgnored) {
    expect_found(Mutant::pending_user_apc_ignored, "pending APC ignored", Kind::alerts, true,
                 dispatcher::LockMode::global, "deadlock");
}
TEST(ModelDispatcherMutants, ThreadExitWakesNoJoiner) {
    expect_found(Mutant::thread_exit_no_wake, "thread exit wakes nobody", Kind::thread_objects,
                 true, dispatcher::LockMode::global, "deadlock");
}

// ---- thread-exit bug checks, one thread ----

struct ExitCase {
    const char* name;
    nt::ULONG code;
    std::function<void(nt::KMUTEX*)> before_exit;
};

void expect_exit_bug_check(const ExitCase& ec, dispatcher::LockMode mode) {
    Harness harness;
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    const Config c = base_config(Memory::sc);
    const Result r = explore(c, [&dut, &ec] {
        fresh_run(dut);
        auto th = std::make_shared<Threads>(1);
        auto m = std::make_shared<nt::KMUTEX>();
        nt::KeInitializeMutex(m.get(), 0);
        Program p;
        p.threads.push_back([th, m, &ec] {
            th->enter(0);
            ec.before_exit(m.get());
            th->exit(0);
        });
        p.check = [th, m, &ec]() -> std::string {
            const auto& bcs = bug_checks();
            if (bcs.size() != 1 || bcs[0].code() != ec.code)
                return std::string("no bug check ") + ec.name + " at exit";
            if (!th->t[0]->Terminated || th->t[0]->Header.SignalState != 1)
                return "the thread object was not signalled after the bug check";
            return {};
        };
        return p;
    });
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    report(std::string("exit bug check ") + ec.name + " (" + mode_name(mode) + ")", c, r);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

TEST(ModelDispatcherExit, BugChecks) {
    const ExitCase cases[] = {
        {"0x4000008A KMUTEX held", bugcheck::THREAD_TERMINATE_HELD_MUTEX,
         [](nt::KMUTEX* m) {
             if (wait_one(m, W::infinite) != nt::STATUS_SUCCESS) fail("KMUTEX: wait failed");
         }},
        {"0x20 critical region", bugcheck::KERNEL_APC_PENDING_DURING_EXIT,
         [](nt::KMUTEX*) { nt::KeEnterCriticalRegion(); }},
        {"0x20 raised IRQL", bugcheck::KERNEL_APC_PENDING_DURING_EXIT,
         [](nt::KMUTEX*) {
             nt::KIRQL old;
             nt::KeRaiseIrql(nt::APC_LEVEL, &old);
         }},
    };
    for (const auto& ec : cases) {
        for (auto mode : {dispatcher::LockMode::global, dispatcher::LockMode::per_object})
            expect_exit_bug_check(ec, mode);
    }
}

// KeReleaseSemaphore past the limit raises and changes nothing [ros-sem]; a
// waiter is still woken by the releases that fit.
TEST(ModelDispatcherExit, SemaphoreLimitRaises) {
    Harness harness;
    DispatcherUnderModel dut;
    const Config c = base_config(Memory::sc);
    const Result r = explore(c, [&dut] {
        fresh_run(dut);
        auto th = std::make_shared<Threads>(2);
        auto sem = std::make_shared<nt::KSEMAPHORE>();
        nt::KeInitializeSemaphore(sem.get(), 0, 1);
        Program p;
        p.threads.push_back([th, sem] {
            th->enter(0);
            nt::KeReleaseSemaphore(sem.get(), 0, 1, nt::FALSE);
            bool raised = false;
            try {
                // Count 0 or 1 here: + 2 passes the limit of 1 either way.
                nt::KeReleaseSemaphore(sem.get(), 0, 2, nt::FALSE);
            } catch (const NtException& e) {
                raised = e.status() == nt::STATUS_SEMAPHORE_LIMIT_EXCEEDED;
            }
            if (!raised) fail("KeReleaseSemaphore past the limit did not raise");
        });
        p.threads.push_back([th, sem] {
            th->enter(1);
            if (wait_one(sem.get(), W::infinite) != nt::STATUS_SUCCESS)
                fail("semaphore: wait failed");
        });
        p.check = [th, sem]() -> std::string {
            if (nt::KeReadStateSemaphore(sem.get()) != 0 || !no_waiters(sem->Header))
                return "the semaphore's count changed by a raised release";
            return th->idle();
        };
        return p;
    });
    report("semaphore limit raises (global) 2x1", c, r);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

}  // namespace
}  // namespace kmlab::explore
