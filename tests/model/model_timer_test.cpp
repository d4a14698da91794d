// KTIMER under the schedule explorer: the real dispatcher and timer code
// (kernel/src/timer.cpp, its lock and parking through the model), with time
// virtual. No timer service runs here: a timer expires only when the model
// thread playing the clock calls kernel::expire_timer, the routine the
// production service runs, so expiry is a scheduling choice that the search
// places against every wait, KeCancelTimer and KeSetTimer re-arm; a wait's
// own timeout (1 h, which the real clock cannot reach within a run) expires
// only when the scheduler says so.
//
// Programs (W waiter, C clock, R re-armer, X canceller, S event setter):
//  * rearm: W.. wait with no timeout; C expires the timer, waits for R, and
//    expires it again; R re-arms it (KeSetTimer on a set or expired timer)
//    and tells C. Every waiter must be released: an expiry that finds the
//    timer set comes after the re-arm, which may have cleared the signal of
//    an earlier one. A waiter left blocked is a deadlock.
//  * cancel: W.. wait with a timeout; C expires, X cancels. Exactly one of
//    them finds the timer set; the signal state and the satisfied waits agree
//    with who won.
//  * waitany: W.. wait for any of {timer, event} (the per-object lock mode's
//    escalation to every stripe); C expires the timer, S sets the event; each
//    waiter gets a different object and what it got is consumed.
// Each run ends with the timer off the timer list, not set, its wait list
// empty and no thread waiting. A must-find mutant: an expiry that forgets the
// wait test strands a waiter (a deadlock the search must report).
//
// Two timers (P, Q, on different stripes, so that in the per-object mode
// only the timer-list lock orders their list edits; each edit of the list has
// a scheduling point between reading the neighbours and linking, timer.cpp):
//  * two: A sets P, B sets Q, C expires P then Q: the list stays one
//    well-linked ring, in due order, holding exactly the timers marked set,
//    and each expiry finds its timer set exactly when it came after the set;
//  * periodic: P is periodic (1 s) with a DPC, set before the run; W waits on
//    it with a timeout, X cancels it, C expires it (the expiry re-arms it and
//    runs the DPC on C): KeCancelTimer always finds it set (before the expiry,
//    or re-armed by it), it ends not set, and the DPC ran once per expiry.
// Must-find mutant: the list lock taken by nobody
// (dispatcher::set_timer_list_lock_mutant), per-object mode: two's edits
// interleave and a timer marked set falls off the list.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/timer.hpp>
#include "dispatcher_core.hpp"
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

enum class Shape { rearm, cancel, waitany };

// The explorer replays a schedule as a list of choices, so the same choices
// must take the same path. In the per-object lock mode objects are hashed by
// address onto stripes, and whether the timer and the event share one changes
// the path: every run uses the same three objects, initialized afresh.
nt::KTIMER g_timer;
nt::KEVENT g_done;   // R has re-armed: C may fire the last expiry
nt::KEVENT g_event;  // waitany's other object

struct TimerRace {
    nt::KTIMER& timer = g_timer;
    nt::KEVENT& done = g_done;
    nt::KEVENT& event = g_event;
    std::vector<nt::PKTHREAD> threads;
    std::vector<nt::NTSTATUS> status;  // each waiter's
    bool expired[2] = {false, false};
    bool cancelled = false;
    bool rearm_found_set = false;
    TimerRace(nt::TIMER_TYPE type, std::size_t waiters, std::size_t n) : status(waiters, -1) {
        // A run that ended early (a violation) may have left the timer on the
        // global timer list.
        dispatcher::reset_timer_list();
        nt::KeInitializeTimerEx(&timer, type);
        nt::KeInitializeEvent(&done, nt::NotificationEvent, nt::FALSE);
        nt::KeInitializeEvent(&event, nt::SynchronizationEvent, nt::FALSE);
        for (std::size_t i = 0; i < n; ++i) threads.push_back(kernel::create_thread_object(false));
    }
    ~TimerRace() {
        for (auto* t : threads) kernel::dereference_thread(t);
    }
    TimerRace(const TimerRace&) = delete;
    TimerRace& operator=(const TimerRace&) = delete;
};

nt::LARGE_INTEGER hour() {
    nt::LARGE_INTEGER li;
    li.QuadPart = -36'000'000'000LL;
    return li;
}

// Sets the timer before the run, outside the model: with the seam cleared the
// dispatcher takes its real locks, uncontended. Due at a time beyond the
// clock's range: it never reaches the service (none runs here anyway).
void set_before_run(nt::KTIMER* timer) {
    const platform::DispatcherSeam* seam = platform::g_dispatcher_seam;
    platform::g_dispatcher_seam = nullptr;
    nt::LARGE_INTEGER never;
    never.QuadPart = std::numeric_limits<nt::LONGLONG>::min();
    nt::KeSetTimer(timer, never, nullptr);
    platform::g_dispatcher_seam = seam;
}

struct Scenario {
    Shape shape;
    nt::TIMER_TYPE type;
    std::size_t waiters;
    const char* name;
};

std::function<Program()> timer_program(DispatcherUnderModel& dut, Scenario sc,
                                       dispatcher::TimerExpiry how) {
    return [&dut, sc, how] {
        dut.reset();
        const std::size_t n = sc.waiters + 2;
        auto s = std::make_shared<TimerRace>(sc.type, sc.waiters, n);
        set_before_run(&s->timer);
        Program p;
        for (std::size_t i = 0; i < sc.waiters; ++i) {
            p.threads.push_back([s, sc, i] {
                kernel::detail::tls_current_thread = s->threads[i];
                if (i == 0) label(&s->timer, sizeof s->timer, "timer");
                nt::LARGE_INTEGER timeout = hour();
                if (sc.shape == Shape::waitany) {
                    // Opposite orders, so that WaitAny's lowest index differs.
                    nt::PVOID objects[2] = {&s->timer, &s->event};
                    if (i % 2 == 1) std::swap(objects[0], objects[1]);
                    nt::NTSTATUS st =
                        nt::KeWaitForMultipleObjects(2, objects, nt::WaitAny, nt::Executive,
                                                     nt::KernelMode, nt::FALSE, nullptr, nullptr);
                    if (st != nt::STATUS_WAIT_0 && st != nt::STATUS_WAIT_1)
                        fail("WaitAny: unexpected status");
                    // Normalized: 0 = the timer, 1 = the event.
                    s->status[i] = objects[st] == &s->timer ? 0 : 1;
                    return;
                }
                s->status[i] =
                    nt::KeWaitForSingleObject(&s->timer, nt::Executive, nt::KernelMode, nt::FALSE,
                                              sc.shape == Shape::cancel ? &timeout : nullptr);
            });
        }
        // C, the clock.
        p.threads.push_back([s, sc, how, n] {
            kernel::detail::tls_current_thread = s->threads[n - 2];
            s->expired[0] = dispatcher::expire_timer(&s->timer, how);
            if (sc.shape != Shape::rearm) return;
            nt::KeWaitForSingleObject(&s->done, nt::Executive, nt::KernelMode, nt::FALSE, nullptr);
            s->expired[1] = dispatcher::expire_timer(&s->timer, how);
        });
        // R, X or S.
        p.threads.push_back([s, sc, n] {
            kernel::detail::tls_current_thread = s->threads[n - 1];
            switch (sc.shape) {
                case Shape::rearm:
                    s->rearm_found_set = nt::KeSetTimer(&s->timer, hour(), nullptr) != nt::FALSE;
                    nt::KeSetEvent(&s->done, nt::IO_NO_INCREMENT, nt::FALSE);
                    break;
                case Shape::cancel:
                    s->cancelled = nt::KeCancelTimer(&s->timer) != nt::FALSE;
                    break;
                case Shape::waitany:
                    nt::KeSetEvent(&s->event, nt::IO_NO_INCREMENT, nt::FALSE);
                    break;
            }
        });
        p.check = [s, sc]() -> std::string {
            if (std::string w = dispatcher::check_timer_list(); !w.empty()) return w;
            const nt::KTIMER& t = s->timer;
            const bool linked = t.TimerListEntry.Flink->Blink == &t.TimerListEntry;
            if (t.Header.Inserted || linked) return "the timer is left set or on the timer list";
            if (!nt::IsListEmpty(&t.Header.WaitListHead) ||
                !nt::IsListEmpty(&s->event.Header.WaitListHead))
                return "a wait block is left on the timer or the event";
            for (auto* th : s->threads) {
                if (th->Extra->waiting || th->WaitBlockList != nullptr)
                    return "a thread still waits";
            }
            const nt::LONG state = t.Header.SignalState;
            const bool notification = sc.type == nt::NotificationTimer;
            const long successes =
                std::count(s->status.begin(), s->status.end(), nt::STATUS_SUCCESS);
            switch (sc.shape) {
                case Shape::rearm:
                    // Set before the run and never cancelled: the first
                    // expiry finds it set. The re-arm finds it set only
                    // before that expiry, which then consumes the re-arm; the
                    // last expiry finds it set exactly when the re-arm came
                    // after the first.
                    if (!s->expired[0])
                        return "the first expiry found the timer not set, though nobody cancelled "
                               "it";
                    if (s->expired[1] == s->rearm_found_set)
                        return "the last expiry disagrees with where the re-arm fell";
                    if (successes != static_cast<long>(s->status.size()))
                        return "a waiter was not released";
                    // A synchronization timer: with the re-arm first, one
                    // unit, which the one waiter consumed; after the first
                    // expiry, the re-arm may have cleared a unit nobody had
                    // consumed yet, so the last one's may be left.
                    if (notification ? state != 1 : (state < 0 || state > (s->expired[1] ? 1 : 0)))
                        return "the timer's signal state is wrong after its last expiry";
                    break;
                case Shape::cancel: {
                    if (s->expired[0] == s->cancelled)
                        return "expiry and KeCancelTimer must find the timer set exactly once";
                    const long units = s->expired[0] ? 1 : 0;
                    if (notification ? (state != units || (!s->expired[0] && successes != 0))
                                     : state + successes != units)
                        return "the signal state and the satisfied waits disagree with the race";
                    break;
                }
                case Shape::waitany: {
                    if (!s->expired[0]) return "the expiry found the timer not set";
                    const long got_timer = std::count(s->status.begin(), s->status.end(), 0);
                    const long got_event = std::count(s->status.begin(), s->status.end(), 1);
                    if (got_timer > 1 || got_event > 1 ||
                        got_timer + got_event != static_cast<long>(s->status.size()))
                        return "two waiters got one unit, or a waiter got none";
                    if (state != 1 - got_timer || s->event.Header.SignalState != 1 - got_event)
                        return "what a waiter got was not consumed, or was consumed twice";
                    break;
                }
            }
            return {};
        };
        return p;
    };
}

const Scenario kScenarios[] = {
    {Shape::rearm, nt::NotificationTimer, 1, "rearm notification 3"},
    {Shape::rearm, nt::SynchronizationTimer, 1, "rearm synchronization 3"},
    {Shape::rearm, nt::NotificationTimer, 2, "rearm notification 4"},
    {Shape::cancel, nt::NotificationTimer, 1, "cancel notification 3"},
    {Shape::cancel, nt::SynchronizationTimer, 2, "cancel synchronization 4"},
    {Shape::cancel, nt::NotificationTimer, 2, "cancel notification 4"},
    {Shape::waitany, nt::SynchronizationTimer, 1, "waitany synchronization 3"},
    {Shape::waitany, nt::SynchronizationTimer, 2, "waitany synchronization 4"},
};

void explore_timers(dispatcher::LockMode mode, const char* mode_name, bool waitany) {
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    for (Memory m : {Memory::sc, Memory::tso}) {
        for (const Scenario& sc : kScenarios) {
            if ((sc.shape == Shape::waitany) != waitany) continue;
            Config c;
            c.memory = m;
            // A multi-object wait in per-object mode takes all 64 stripes,
            // each lock and unlock a scheduling point, so a run is ~400
            // steps: bound 2 ran 341,491 schedules (over 8 minutes on this
            // 2-core machine) for the 3-thread program alone. Those programs
            // run at bound 1; the single-object ones, and every program under
            // the global lock, at bound 2. Under a sanitizer (a step costs
            // ~50x) the every-stripe programs run at bound 0: at bound 1 the
            // 4-thread one alone took most of this binary's 438 s under
            // ThreadSanitizer on this machine.
            const bool every_stripe = waitany && mode == dispatcher::LockMode::per_object;
            c.preemption_bound = every_stripe ? (kSanitized ? 0 : 1)
                                              : std::max(kSanitized ? 1 : 2, bound_override());
            c.fiber_locals = DispatcherUnderModel::fiber_locals();
            const Result r = explore(c, timer_program(dut, sc, dispatcher::TimerExpiry::faithful));
            report(std::string("KTIMER (") + mode_name + ") " + sc.name, c, r);
            EXPECT_FALSE(r.violation) << sc.name << ": " << describe(r);
            EXPECT_TRUE(r.complete) << sc.name;
        }
    }
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
}

TEST(ModelTimer, ExpiryAgainstReArmAndCancelGlobalLock) {
    explore_timers(dispatcher::LockMode::global, "global lock", false);
}
TEST(ModelTimer, ExpiryAgainstReArmAndCancelPerObjectLocks) {
    explore_timers(dispatcher::LockMode::per_object, "per-object locks", false);
}
TEST(ModelTimer, WaitAnyTimerOrEventGlobalLock) {
    explore_timers(dispatcher::LockMode::global, "global lock", true);
}
TEST(ModelTimer, WaitAnyTimerOrEventPerObjectLocks) {
    explore_timers(dispatcher::LockMode::per_object, "per-object locks", true);
}

// The mutant: an expiry that signals the timer but runs no wait test. A
// waiter already blocked is never woken.
void expect_forgotten_wait_test_found(dispatcher::LockMode mode, const char* mode_name) {
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    for (const Scenario& sc : {kScenarios[0], kScenarios[1]}) {
        Config c;
        c.memory = Memory::sc;
        c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
        c.fiber_locals = DispatcherUnderModel::fiber_locals();
        const Result r =
            explore(c, timer_program(dut, sc, dispatcher::TimerExpiry::forget_wait_test));
        report(std::string("KTIMER (") + mode_name + ") " + sc.name + " no wait test (must fail)",
               c, r);
        EXPECT_TRUE(r.violation) << sc.name << ": the explorer misses the stranded waiter";
        EXPECT_NE(r.what.find("deadlock"), std::string::npos) << describe(r);
    }
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
}

TEST(ModelTimer, FindsAnExpiryThatForgetsTheWaitTestGlobalLock) {
    expect_forgotten_wait_test_found(dispatcher::LockMode::global, "global lock");
}
TEST(ModelTimer, FindsAnExpiryThatForgetsTheWaitTestPerObjectLocks) {
    expect_forgotten_wait_test_found(dispatcher::LockMode::per_object, "per-object locks");
}

// ---- Two timers on the shared list; a periodic timer with a DPC ----

enum class ListShape { two, periodic };

nt::KTIMER g_pool[16];
nt::KDPC g_dpc;
nt::KTIMER* g_p = nullptr;
nt::KTIMER* g_q = nullptr;

// P and Q: the first two timers of the pool on different stripes.
void pick_timers() {
    g_p = &g_pool[0];
    for (auto& t : g_pool) {
        if (dispatcher::stripe_index(&t) != dispatcher::stripe_index(g_p)) {
            g_q = &t;
            break;
        }
    }
}

nt::LARGE_INTEGER hours(long long h) {
    nt::LARGE_INTEGER li;
    li.QuadPart = -36'000'000'000LL * h;
    return li;
}

struct ListRace {
    std::vector<nt::PKTHREAD> threads;
    bool set_found[2] = {false, false};
    bool expired[2] = {false, false};
    bool cancelled = false;
    nt::NTSTATUS status = -1;
    int dpc_runs = 0;
    ListRace() {
        dispatcher::reset_timer_list();
        nt::KeInitializeTimer(g_p);
        nt::KeInitializeTimer(g_q);
        for (int i = 0; i < 3; ++i) threads.push_back(kernel::create_thread_object(false));
    }
    ~ListRace() {
        for (auto* t : threads) kernel::dereference_thread(t);
    }
    ListRace(const ListRace&) = delete;
    ListRace& operator=(const ListRace&) = delete;
};

void count_dpc(nt::PKDPC, nt::PVOID context, nt::PVOID, nt::PVOID) {
    ++static_cast<ListRace*>(context)->dpc_runs;
}

// Each timer marked set is linked on the ring, and each one not set is not.
std::string timers_linked() {
    for (nt::KTIMER* t : {g_p, g_q}) {
        const nt::LIST_ENTRY& e = t->TimerListEntry;
        const bool linked = e.Flink->Blink == &e && e.Blink->Flink == &e;
        if (t->Header.Inserted && !linked) return "a timer marked set is off the timer list";
        if (!t->Header.Inserted && linked) return "a timer not set is still on the timer list";
    }
    return {};
}

std::function<Program()> list_program(DispatcherUnderModel& dut, ListShape shape) {
    return [&dut, shape] {
        dut.reset();
        auto s = std::make_shared<ListRace>();
        if (shape == ListShape::periodic) {
            nt::KeInitializeDpc(&g_dpc, count_dpc, s.get());
            const platform::DispatcherSeam* seam = platform::g_dispatcher_seam;
            platform::g_dispatcher_seam = nullptr;
            nt::KeSetTimerEx(g_p, hours(1), 1000, &g_dpc);
            platform::g_dispatcher_seam = seam;
        }
        Program p;
        p.threads.push_back([s, shape] {
            kernel::detail::tls_current_thread = s->threads[0];
            label(&dispatcher::g_timer_list_word, sizeof dispatcher::g_timer_list_word,
                  "timer list edit");
            if (shape == ListShape::two) {
                s->set_found[0] = nt::KeSetTimer(g_p, hours(1), nullptr) != nt::FALSE;
            } else {
                nt::LARGE_INTEGER timeout = hours(1);
                s->status = nt::KeWaitForSingleObject(g_p, nt::Executive, nt::KernelMode, nt::FALSE,
                                                      &timeout);
            }
        });
        p.threads.push_back([s, shape] {
            kernel::detail::tls_current_thread = s->threads[1];
            if (shape == ListShape::two)
                s->set_found[1] = nt::KeSetTimer(g_q, hours(2), nullptr) != nt::FALSE;
            else
                s->cancelled = nt::KeCancelTimer(g_p) != nt::FALSE;
        });
        p.threads.push_back([s, shape] {
            kernel::detail::tls_current_thread = s->threads[2];
            s->expired[0] = dispatcher::expire_timer(g_p, dispatcher::TimerExpiry::faithful);
            if (shape == ListShape::two)
                s->expired[1] = dispatcher::expire_timer(g_q, dispatcher::TimerExpiry::faithful);
        });
        p.check = [s, shape]() -> std::string {
            if (std::string w = dispatcher::check_timer_list(); !w.empty()) return w;
            if (std::string w = timers_linked(); !w.empty()) return w;
            if (shape == ListShape::two) {
                // Not set before the run, never cancelled: set at the end
                // exactly when its expiry came before its set.
                if (s->set_found[0] || s->set_found[1]) return "KeSetTimer found a new timer set";
                if (g_p->Header.Inserted == s->expired[0] || g_q->Header.Inserted == s->expired[1])
                    return "a timer's expiry disagrees with where its KeSetTimer fell";
                return {};
            }
            if (!s->cancelled) return "KeCancelTimer found a periodic timer not set";
            if (g_p->Header.Inserted) return "the periodic timer is left set";
            if (s->dpc_runs != (s->expired[0] ? 1 : 0))
                return "the DPC did not run once per expiry";
            if (g_dpc.DpcData != nullptr) return "the DPC is left queued";
            if (g_p->Header.SignalState != (s->expired[0] ? 1 : 0))
                return "the signal state disagrees with the expiry";
            if (s->status == nt::STATUS_SUCCESS && !s->expired[0])
                return "the waiter was satisfied by no expiry";
            if (!nt::IsListEmpty(&g_p->Header.WaitListHead)) return "a wait block is left";
            return {};
        };
        return p;
    };
}

void explore_list(dispatcher::LockMode mode, const char* mode_name) {
    pick_timers();
    ASSERT_NE(g_q, nullptr);
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    for (Memory m : {Memory::sc, Memory::tso}) {
        for (ListShape shape : {ListShape::two, ListShape::periodic}) {
            Config c;
            c.memory = m;
            c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
            c.fiber_locals = DispatcherUnderModel::fiber_locals();
            const Result r = explore(c, list_program(dut, shape));
            report(std::string("KTIMER (") + mode_name + ") " +
                       (shape == ListShape::two ? "two timers 3" : "periodic+DPC 3"),
                   c, r);
            EXPECT_FALSE(r.violation) << describe(r);
            EXPECT_TRUE(r.complete);
        }
    }
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
}

TEST(ModelTimer, TwoTimersAndAPeriodicTimerWithADpcGlobalLock) {
    explore_list(dispatcher::LockMode::global, "global lock");
}
TEST(ModelTimer, TwoTimersAndAPeriodicTimerWithADpcPerObjectLocks) {
    explore_list(dispatcher::LockMode::per_object, "per-object locks");
}

// The mutant: no timer-list lock. In the per-object mode the two KeSetTimer
// calls hold different stripes, so their list edits interleave at the
// scheduling point and one timer falls off the list.
TEST(ModelTimer, FindsATimerListWithoutItsLockPerObjectLocks) {
    pick_timers();
    ASSERT_NE(g_q, nullptr);
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(dispatcher::LockMode::per_object);
    dispatcher::set_timer_list_lock_mutant(true);
    Config c;
    c.memory = Memory::sc;
    c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
    c.fiber_locals = DispatcherUnderModel::fiber_locals();
    const Result r = explore(c, list_program(dut, ListShape::two));
    dispatcher::set_timer_list_lock_mutant(false);
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    dispatcher::reset_timer_list();
    report("KTIMER (per-object locks) two timers 3 no list lock (must fail)", c, r);
    EXPECT_TRUE(r.violation) << "the explorer misses the unlocked timer list";
    EXPECT_NE(r.what.find("timer list"), std::string::npos) << describe(r);
}

}  // namespace
}  // namespace kmlab::explore
