// A driver's own test under the explorer: explore::run() with the whole
// emulated kernel under the model (explore/src/kernel_run.cpp). Each test
// body is ordinary kmlab code, as a driver's test is: PsCreateSystemThread,
// KEVENT, KMUTEX, FAST_MUTEX, KGUARDED_MUTEX, the idiomatic KMutex /
// FastMutex over backends::Dispatcher, KeDelayExecutionThread, timeouts,
// alerts and APCs, joins on thread objects; the explorer runs it under every
// schedule within the bound.
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>
#include <set>
#include <string>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kernel/bugcheck.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/mutexes/fast_mutex.hpp>
#include <kmlab/mutexes/guarded_mutex.hpp>
#include <kmlab/mutexes/kmutex.hpp>
#include "model_program.hpp"
// Last (after the C++ face): the C entry's types.
#include <kmlab/wdm.h>

namespace kmlab::explore {
namespace {

using namespace kmlab::nt;

// A message with its addresses blanked (they differ from run to run).
std::string without_addresses(const std::string& s) {
    return std::regex_replace(s, std::regex("0x[0-9a-fA-F]+"), "0x?");
}

Config base_config(Memory m = Memory::sc) {
    Config c;
    c.memory = m;
    c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
    return c;
}

// PsCreateSystemThread, then the driver's join: reference the thread object
// by its handle, close the handle, wait on the object, dereference it.
void start(PKSTART_ROUTINE routine, PVOID context, PKTHREAD* thread) {
    HANDLE h = nullptr;
    check(PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, nullptr, routine,
                               context) == STATUS_SUCCESS,
          "PsCreateSystemThread failed");
    PVOID object = nullptr;
    check(ObReferenceObjectByHandle(h, SYNCHRONIZE, *PsThreadType, KernelMode, &object, nullptr) ==
              STATUS_SUCCESS,
          "ObReferenceObjectByHandle failed");
    ZwClose(h);
    *thread = static_cast<PKTHREAD>(object);
}
void join(PKTHREAD thread) {
    check(KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, nullptr) == STATUS_SUCCESS,
          "the join's wait failed");
    ObDereferenceObject(thread);
}

// ---- the planted lost wake-up: test-then-wait racing KeClearEvent ----
// The consumer tests a flag and, seeing it clear, clears the event and
// waits; the producer sets the flag and then the event. A producer that runs
// between the test and the clear has its KeSetEvent erased: the consumer
// waits for good. The fix clears first, then tests.
struct Handoff {
    KEVENT done;
    Atomic<int> ready{0};
};

void producer(PVOID context) {
    auto* s = static_cast<Handoff*>(context);
    s->ready.store(1);
    KeSetEvent(&s->done, 0, FALSE);
}

template <bool Fixed>
void consumer_body() {
    Handoff s;
    KeInitializeEvent(&s.done, NotificationEvent, FALSE);
    label(&s.done, sizeof s.done, "done");
    label(&s.ready, sizeof s.ready, "ready");
    PKTHREAD worker = nullptr;
    start(&producer, &s, &worker);
    if constexpr (Fixed) {
        KeClearEvent(&s.done);
        if (s.ready.load() == 0)
            KeWaitForSingleObject(&s.done, Executive, KernelMode, FALSE, nullptr);
    } else {
        if (s.ready.load() == 0) {
            KeClearEvent(&s.done);
            KeWaitForSingleObject(&s.done, Executive, KernelMode, FALSE, nullptr);
        }
    }
    join(worker);
}

TEST(ModelKernel, LostWakeUpFoundWithTraceAndReplay) {
    const Config c = base_config();
    const Result r = run(c, &consumer_body<false>);
    report("kernel: test-then-wait racing KeClearEvent (planted)", c, r);
    ASSERT_TRUE(r.violation) << describe(r);
    const std::string done = "done";
    const std::string what = without_addresses(r.what);
    const std::string trace = without_addresses(r.trace);
    EXPECT_NE(what.find("T0 waits in KeWaitForSingleObject on KEVENT (notification) '" + done +
                        "' (owner: none)"),
              std::string::npos)
        << what;
    EXPECT_NE(trace.find("T0 KeClearEvent(" + done + ")"), std::string::npos) << trace;
    EXPECT_NE(trace.find("T1 KeSetEvent(" + done + ")"), std::string::npos) << trace;
    EXPECT_NE(trace.find("T0 KeWaitForSingleObject(" + done + ") blocks"), std::string::npos)
        << trace;
    EXPECT_NE(trace.find("T0 PsCreateSystemThread starts T1"), std::string::npos) << trace;
    std::printf("%s\n--- trace ---\n%s\n", r.what.c_str(), r.trace.c_str());

    // The schedule replays: the same violation, through Config::replay ...
    Config again = c;
    again.replay = r.schedule;
    const Result replayed = run(again, &consumer_body<false>);
    EXPECT_TRUE(replayed.violation);
    EXPECT_EQ(without_addresses(replayed.what), what);
    // ... and through KMLAB_MODEL_REPLAY.
    ::setenv("KMLAB_MODEL_REPLAY", r.schedule.c_str(), 1);
    const Config from_env = config_from_environment(c);
    ::unsetenv("KMLAB_MODEL_REPLAY");
    EXPECT_EQ(from_env.replay, r.schedule);
    const Result env_replayed = run(from_env, &consumer_body<false>);
    EXPECT_TRUE(env_replayed.violation);
    EXPECT_EQ(without_addresses(env_replayed.what), what);
}

TEST(ModelKernel, LostWakeUpFixedExploresClean) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        for (auto mode : {dispatcher::LockMode::global, dispatcher::LockMode::per_object}) {
            dispatcher::set_lock_mode(mode);
            const Config c = base_config(m);
            const Result r = run(c, &consumer_body<true>);
            dispatcher::set_lock_mode(dispatcher::LockMode::global);
            report(std::string("kernel: clear-then-test handoff, fixed (") +
                       (mode == dispatcher::LockMode::global ? "global" : "per-object") + ")",
                   c, r);
            EXPECT_FALSE(r.violation) << describe(r);
            EXPECT_TRUE(r.complete);
        }
    }
}

// ---- system threads: PsTerminateSystemThread, the thread object ----
struct Counter {
    Atomic<int> steps{0};
};
void terminates(PVOID context) {
    auto* s = static_cast<Counter*>(context);
    s->steps.fetch_add(1);
    PsTerminateSystemThread(STATUS_SUCCESS);
    s->steps.fetch_add(100);  // never reached
}

TEST(ModelKernel, SystemThreadsJoinOnTheirThreadObjects) {
    const Config c = base_config();
    const Result r = run(c, [] {
        Counter s;
        PKTHREAD a = nullptr;
        PKTHREAD b = nullptr;
        start(&terminates, &s, &a);
        start(&terminates, &s, &b);
        join(a);
        join(b);
        check(s.steps.load() == 2, "a system thread ran past PsTerminateSystemThread");
    });
    report("kernel: two system threads, PsTerminateSystemThread, joins", c, r);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

// ---- virtual time ----
TEST(ModelKernel, DelayExecutionEndsByVirtualTime) {
    const Config c = base_config();
    const Result r = run(c, [] {
        LARGE_INTEGER interval{};
        interval.QuadPart = -10'000'000;  // 1 s, relative: no real second passes
        check(KeDelayExecutionThread(KernelMode, FALSE, &interval) == STATUS_SUCCESS,
              "KeDelayExecutionThread did not return STATUS_SUCCESS");
    });
    report("kernel: KeDelayExecutionThread", c, r);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

std::set<NTSTATUS> g_outcomes;

void set_done(PVOID context) {
    KeSetEvent(static_cast<PKEVENT>(context), 0, FALSE);
}

TEST(ModelKernel, TimedWaitTimesOutByChoice) {
    g_outcomes.clear();
    const Config c = base_config();
    const Result r = run(c, [] {
        KEVENT done;
        KeInitializeEvent(&done, SynchronizationEvent, FALSE);
        label(&done, sizeof done, "done");
        PKTHREAD worker = nullptr;
        start(&set_done, &done, &worker);
        LARGE_INTEGER timeout{};
        timeout.QuadPart = -36'000'000'000LL;  // 1 h: only the scheduler ends it
        const NTSTATUS st = KeWaitForSingleObject(&done, Executive, KernelMode, FALSE, &timeout);
        check(st == STATUS_SUCCESS || st == STATUS_TIMEOUT, "unexpected wait status");
        g_outcomes.insert(st);
        join(worker);
    });
    report("kernel: timed wait racing KeSetEvent", c, r);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
    EXPECT_TRUE(g_outcomes.contains(STATUS_SUCCESS));
    EXPECT_TRUE(g_outcomes.contains(STATUS_TIMEOUT));
}

// KeWaitForMultipleObjects with a timeout, over a KSEMAPHORE and a KEVENT:
// WaitAny ends by the semaphore or the timeout (before blocking or after),
// WaitAll by both or the timeout.
struct SemaphoreAndEvent {
    KEVENT event;
    KSEMAPHORE semaphore;
};
void release_both(PVOID context) {
    auto* s = static_cast<SemaphoreAndEvent*>(context);
    KeSetEvent(&s->event, 0, FALSE);
    KeReleaseSemaphore(&s->semaphore, 0, 1, FALSE);
}
template <WAIT_TYPE Type>
void wait_multiple_body() {
    SemaphoreAndEvent s;
    KeInitializeEvent(&s.event, NotificationEvent, FALSE);
    KeInitializeSemaphore(&s.semaphore, 0, 2);
    label(&s.event, sizeof s.event, "event");
    label(&s.semaphore, sizeof s.semaphore, "semaphore");
    PKTHREAD worker = nullptr;
    start(&release_both, &s, &worker);
    PVOID objects[2] = {&s.semaphore, &s.event};
    LARGE_INTEGER timeout{};
    timeout.QuadPart = -36'000'000'000LL;
    const NTSTATUS st =
        KeWaitForMultipleObjects(2, objects, Type, Executive, KernelMode, FALSE, &timeout, nullptr);
    if constexpr (Type == WaitAny)
        check(st == STATUS_WAIT_0 || st == STATUS_WAIT_1 || st == STATUS_TIMEOUT,
              "WaitAny: unexpected status");
    else
        check(st == STATUS_SUCCESS || st == STATUS_TIMEOUT, "WaitAll: unexpected status");
    g_outcomes.insert(st);
    join(worker);
    // The semaphore's one count was taken exactly when the wait was satisfied
    // by it: WaitAll, or WaitAny by index 0.
    const bool took = Type == WaitAll ? st == STATUS_SUCCESS : st == STATUS_WAIT_0;
    check(KeReadStateSemaphore(&s.semaphore) == (took ? 0 : 1), "the semaphore's count is wrong");
}

TEST(ModelKernel, WaitForMultipleObjectsWithATimeout) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Config c = base_config(m);
        g_outcomes.clear();
        const Result any = run(c, &wait_multiple_body<WaitAny>);
        report("kernel: WaitAny semaphore+event, timeout", c, any);
        EXPECT_FALSE(any.violation) << describe(any);
        EXPECT_TRUE(any.complete);
        EXPECT_TRUE(g_outcomes.contains(STATUS_WAIT_0));
        EXPECT_TRUE(g_outcomes.contains(STATUS_WAIT_1));
        EXPECT_TRUE(g_outcomes.contains(STATUS_TIMEOUT));
        g_outcomes.clear();
        const Result all = run(c, &wait_multiple_body<WaitAll>);
        report("kernel: WaitAll semaphore+event, timeout", c, all);
        EXPECT_FALSE(all.violation) << describe(all);
        EXPECT_TRUE(all.complete);
        EXPECT_TRUE(g_outcomes.contains(STATUS_SUCCESS));
        EXPECT_TRUE(g_outcomes.contains(STATUS_TIMEOUT));
    }
}

// A lone timed wait on an event nobody sets: it times out either before
// blocking (its deadline passed at the check, D0: no wait block linked) or
// while blocked (X0), two schedules; neither reads the real clock, so a 1 ms
// timeout behaves as a 1 h one.
TEST(ModelKernel, DeadlinePassesBeforeOrWhileBlocked) {
    const Config c = base_config();
    const Result r = run(c, [] {
        KEVENT never;
        KeInitializeEvent(&never, NotificationEvent, FALSE);
        label(&never, sizeof never, "never");
        LARGE_INTEGER timeout{};
        timeout.QuadPart = -10'000;  // 1 ms
        check(
            KeWaitForSingleObject(&never, Executive, KernelMode, FALSE, &timeout) == STATUS_TIMEOUT,
            "a wait on an event nobody sets did not time out");
    });
    report("kernel: a lone timed wait", c, r);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.schedules, 2);
}

// ---- alerts and user APCs ----
struct AlertTarget {
    PKTHREAD sleeper = nullptr;
    Atomic<int> apc_ran{0};
};
void sleeper(PVOID context) {
    auto* s = static_cast<AlertTarget*>(context);
    LARGE_INTEGER interval{};
    interval.QuadPart = -36'000'000'000LL;
    const NTSTATUS st = KeDelayExecutionThread(UserMode, TRUE, &interval);
    check(st == STATUS_SUCCESS || st == STATUS_ALERTED || st == STATUS_USER_APC,
          "alertable delay: unexpected status");
    if (st == STATUS_USER_APC) check(s->apc_ran.load() == 1, "STATUS_USER_APC before its APC ran");
    g_outcomes.insert(st);
}
void apc_routine(PVOID context, PVOID, PVOID) {
    static_cast<AlertTarget*>(context)->apc_ran.fetch_add(1);
}

TEST(ModelKernel, AlertAndUserApcEndAnAlertableWait) {
    g_outcomes.clear();
    const Config c = base_config();
    const Result r = run(c, [] {
        AlertTarget s;
        start(&sleeper, &s, &s.sleeper);
        KeAlertThread(s.sleeper, UserMode);
        join(s.sleeper);
    });
    report("kernel: KeAlertThread vs an alertable delay", c, r);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
    EXPECT_TRUE(g_outcomes.contains(STATUS_ALERTED));

    g_outcomes.clear();
    const Result a = run(c, [] {
        AlertTarget s;
        start(&sleeper, &s, &s.sleeper);
        KeInsertQueueUserApc(s.sleeper, &apc_routine, &s, nullptr, nullptr);
        join(s.sleeper);
    });
    report("kernel: KeInsertQueueUserApc vs an alertable delay", c, a);
    EXPECT_FALSE(a.violation) << describe(a);
    EXPECT_TRUE(a.complete);
    EXPECT_TRUE(g_outcomes.contains(STATUS_USER_APC));
}

// ---- the idiomatic locks over backends::Dispatcher, FAST_MUTEX, KGUARDED_MUTEX ----
template <class Lock>
struct Guarded {
    Lock lock;
    Atomic<int> data{0};
    int in_cs = 0;
};

template <class Lock>
void idiomatic_worker(PVOID context) {
    auto* s = static_cast<Guarded<Lock>*>(context);
    auto g = s->lock.lock();
    check(g.has_value(), "lock() failed");
    check(++s->in_cs == 1, "two threads hold the lock");
    s->data.store(s->data.load() + 1);
    --s->in_cs;
}

template <class Lock>
void three_threads_one_lock() {
    Guarded<Lock> s;
    PKTHREAD a = nullptr;
    PKTHREAD b = nullptr;
    start(&idiomatic_worker<Lock>, &s, &a);
    start(&idiomatic_worker<Lock>, &s, &b);
    idiomatic_worker<Lock>(&s);
    join(a);
    join(b);
    check(s.data.load() == 3, "a write made under the lock was lost");
}

TEST(ModelKernel, IdiomaticKMutexAndFastMutexOverDispatcher) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Config c = base_config(m);
        const Result k = run(c, &three_threads_one_lock<KMutex<int, backends::Dispatcher>>);
        report("kernel: KMutex<Dispatcher> 3x1", c, k);
        EXPECT_FALSE(k.violation) << describe(k);
        EXPECT_TRUE(k.complete);
        const Result f = run(c, &three_threads_one_lock<FastMutex<int, backends::Dispatcher>>);
        report("kernel: FastMutex<Dispatcher> 3x1", c, f);
        EXPECT_FALSE(f.violation) << describe(f);
        EXPECT_TRUE(f.complete);
    }
}

// explore::spawn() inside run() starts a kernel thread with a KTHREAD of its
// own: two spawned threads contend for a KMUTEX as two owners (they once
// shared the OS thread's KTHREAD, so both "owned" it at once).
KMUTEX g_spawned_mutex;
int g_spawned_inside = 0;
void spawned_worker() {
    KeWaitForSingleObject(&g_spawned_mutex, Executive, KernelMode, FALSE, nullptr);
    AtomicRef<int> in(g_spawned_inside);
    in.fetch_add(1);
    check(in.load() == 1, "two threads hold the KMUTEX at once");
    in.fetch_sub(1);
    KeReleaseMutex(&g_spawned_mutex, FALSE);
}
TEST(ModelKernel, SpawnInsideRunIsAKernelThread) {
    (void)KeGetCurrentThread();  // the OS thread has a KTHREAD, as a test that used kmlab
    const Config c = base_config();
    const Result r = run(c, [] {
        KeInitializeMutex(&g_spawned_mutex, 0);
        g_spawned_inside = 0;
        spawn(&spawned_worker);
        spawn(&spawned_worker);
    });
    report("kernel: two spawned threads on a KMUTEX", c, r);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

// Over the futex backend (the idiomatic types' default): their lock words are
// native atomics in this translation unit, but a contended lock parks through
// platform::sys::futex_wait, whose explorer copy (futex_seam.cpp) blocks the
// fiber. Before that copy existed the first contended lock() here parked the
// only OS thread in the kernel, and the run never ended.
TEST(ModelKernel, IdiomaticLocksOverFutex) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Config c = base_config(m);
        const Result k = run(c, &three_threads_one_lock<KMutex<int, backends::Futex>>);
        report("kernel: KMutex<Futex> 3x1", c, k);
        EXPECT_FALSE(k.violation) << describe(k);
        EXPECT_TRUE(k.complete);
        const Result f = run(c, &three_threads_one_lock<FastMutex<int, backends::Futex>>);
        report("kernel: FastMutex<Futex> 3x1", c, f);
        EXPECT_FALSE(f.violation) << describe(f);
        EXPECT_TRUE(f.complete);
        const Result g = run(c, &three_threads_one_lock<GuardedMutex<int, backends::Futex>>);
        report("kernel: GuardedMutex<Futex> 3x1", c, g);
        EXPECT_FALSE(g.violation) << describe(g);
        EXPECT_TRUE(g.complete);
    }
}

// FAST_MUTEX / KGUARDED_MUTEX through their NT routines, the real KEVENT /
// KGATE as the gate and Count through the model (fast_mutex_seam.cpp).
struct NtLocks {
    FAST_MUTEX fast;
    KGUARDED_MUTEX guarded;
    Atomic<int> data{0};
    int in_cs = 0;
};
template <bool G>
void nt_worker(PVOID context) {
    auto* s = static_cast<NtLocks*>(context);
    for (int i = 0; i < 2; ++i) {
        if constexpr (G)
            KeAcquireGuardedMutex(&s->guarded);
        else
            ExAcquireFastMutex(&s->fast);
        check(++s->in_cs == 1, "two threads own the mutex");
        s->data.store(s->data.load() + 1);
        --s->in_cs;
        if constexpr (G)
            KeReleaseGuardedMutex(&s->guarded);
        else
            ExReleaseFastMutex(&s->fast);
    }
}
template <bool G>
void nt_locks_body() {
    NtLocks s;
    ExInitializeFastMutex(&s.fast);
    KeInitializeGuardedMutex(&s.guarded);
    label(&s.fast, sizeof s.fast, "fm");
    label(&s.guarded, sizeof s.guarded, "gm");
    PKTHREAD a = nullptr;
    start(&nt_worker<G>, &s, &a);
    nt_worker<G>(&s);
    join(a);
    check(s.data.load() == 4, "a write made under the mutex was lost");
    if constexpr (G)
        check(s.guarded.Count == GM_LOCK_BIT, "the KGUARDED_MUTEX is not free at the end");
    else
        check(s.fast.Count == FM_LOCK_BIT, "the FAST_MUTEX is not free at the end");
}

TEST(ModelKernel, FastAndGuardedMutexRoutinesOverTheRealGate) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Config c = base_config(m);
        const Result f = run(c, &nt_locks_body<false>);
        report("kernel: FAST_MUTEX routines 2x2", c, f);
        EXPECT_FALSE(f.violation) << describe(f);
        EXPECT_TRUE(f.complete);
        const Result g = run(c, &nt_locks_body<true>);
        report("kernel: KGUARDED_MUTEX routines 2x2", c, g);
        EXPECT_FALSE(g.violation) << describe(g);
        EXPECT_TRUE(g.complete);
    }
}

// The release's compare-exchange on Count as a load and a plain store: found
// now that Count goes through the model (it stayed clean while Count was a
// native atomic the explorer never interleaved).
TEST(ModelKernel, FastMutexPlainStoreReleaseMutantFound) {
    set_fast_mutex_release(FastMutexRelease::load_and_store);
    const Config c = base_config();
    const Result f = run(c, &nt_locks_body<false>);
    const Result g = run(c, &nt_locks_body<true>);
    set_fast_mutex_release(FastMutexRelease::faithful);
    report("kernel: FAST_MUTEX release by load + store (must find)", c, f);
    report("kernel: KGUARDED_MUTEX release by load + store (must find)", c, g);
    EXPECT_TRUE(f.violation);
    EXPECT_TRUE(g.violation);
}

// ---- a bug check inside a model thread ----
void exits_holding(PVOID context) {
    KeWaitForSingleObject(context, Executive, KernelMode, FALSE, nullptr);
    // returns still owning the KMUTEX: THREAD_TERMINATE_HELD_MUTEX at exit
}

TEST(ModelKernel, BugCheckInAModelThreadIsReportedWithItsCode) {
    const Config c = base_config();
    const Result r = run(c, [] {
        KMUTEX m;
        KeInitializeMutex(&m, 0);
        label(&m, sizeof m, "m");
        PKTHREAD t = nullptr;
        start(&exits_holding, &m, &t);
        join(t);
    });
    report("kernel: a system thread exits holding a KMUTEX (must find)", c, r);
    ASSERT_TRUE(r.violation);
    EXPECT_NE(r.what.find("0x4000008A"), std::string::npos) << r.what;
    EXPECT_NE(r.what.find("THREAD_TERMINATE_HELD_MUTEX"), std::string::npos) << r.what;

    // A FAST_MUTEX still held at exit: KERNEL_APC_PENDING_DURING_EXIT (0x20),
    // the IRQL (APC_LEVEL) in parameter 3 (kernel/src/dispatcher.cpp).
    const Result held = run(c, [] {
        FAST_MUTEX m;
        ExInitializeFastMutex(&m);
        PKTHREAD t = nullptr;
        start([](PVOID context) { ExAcquireFastMutex(static_cast<PFAST_MUTEX>(context)); }, &m, &t);
        join(t);
    });
    report("kernel: a system thread exits holding a FAST_MUTEX (must find)", c, held);
    ASSERT_TRUE(held.violation);
    EXPECT_NE(held.what.find("0x00000020 KERNEL_APC_PENDING_DURING_EXIT"), std::string::npos)
        << held.what;

    // A bug check raised on the body's own stack: the same report.
    const Result d = run(c, [] {
        FAST_MUTEX fm;
        ExInitializeFastMutex(&fm);
        ExReleaseFastMutex(&fm);  // not the owner
    });
    ASSERT_TRUE(d.violation);
    EXPECT_NE(d.what.find("bug check 0x"), std::string::npos) << d.what;
}

// ---- use after free: pool blocks and thread objects ----
// The worker signals an event in a pool block twice; the planted bug frees
// the block once the first signal is seen, the fix joins the worker first.
struct PoolWork {
    KEVENT ready;
};
void signals_twice(PVOID context) {
    auto* w = static_cast<PoolWork*>(context);
    KeSetEvent(&w->ready, 0, FALSE);
    KeSetEvent(&w->ready, 0, FALSE);  // the block may be gone by now
}
constexpr ULONG kTag = 0x74736554;  // 'Test'
template <bool Fixed>
void pool_body() {
    auto* w = static_cast<PoolWork*>(ExAllocatePoolWithTag(NonPagedPool, sizeof(PoolWork), kTag));
    KeInitializeEvent(&w->ready, NotificationEvent, FALSE);
    label(w, sizeof *w, "work");
    PKTHREAD t = nullptr;
    start(&signals_twice, w, &t);
    KeWaitForSingleObject(&w->ready, Executive, KernelMode, FALSE, nullptr);
    if constexpr (Fixed) join(t);
    ExFreePoolWithTag(w, kTag);
    if constexpr (!Fixed) join(t);
}

TEST(ModelKernel, UseAfterFreeOfPoolFoundAndFixedClean) {
    const Config c = base_config();
    const Result r = run(c, &pool_body<false>);
    report("kernel: KeSetEvent on a freed pool block (must find)", c, r);
    ASSERT_TRUE(r.violation);
    EXPECT_NE(r.what.find("destroyed"), std::string::npos) << r.what;
    const Result f = run(c, &pool_body<true>);
    report("kernel: pool block freed after the join", c, f);
    EXPECT_FALSE(f.violation) << describe(f);
    EXPECT_TRUE(f.complete);
}

// A thread object dereferenced before the wait on it: once the thread has
// exited, its last reference is gone and the wait uses freed memory.
void returns_at_once(PVOID) {}
TEST(ModelKernel, ThreadObjectDereferencedTooEarlyFound) {
    const Config c = base_config();
    const Result r = run(c, [] {
        PKTHREAD t = nullptr;
        start(&returns_at_once, nullptr, &t);
        ObDereferenceObject(t);  // planted: the join below still uses it
        KeWaitForSingleObject(t, Executive, KernelMode, FALSE, nullptr);
    });
    report("kernel: a thread object used after its last reference (must find)", c, r);
    ASSERT_TRUE(r.violation);
    EXPECT_NE(r.what.find("destroyed"), std::string::npos) << r.what;
}

// ---- a deadlock names what each thread waits on and who owns it ----
struct TwoMutexes {
    KMUTEX a;
    KMUTEX b;
};
void b_then_a(PVOID context) {
    auto* s = static_cast<TwoMutexes*>(context);
    KeWaitForSingleObject(&s->b, Executive, KernelMode, FALSE, nullptr);
    KeWaitForSingleObject(&s->a, Executive, KernelMode, FALSE, nullptr);
    KeReleaseMutex(&s->a, FALSE);
    KeReleaseMutex(&s->b, FALSE);
}

TEST(ModelKernel, LockOrderDeadlockNamesOwners) {
    const Config c = base_config();
    const Result r = run(c, [] {
        TwoMutexes s;
        KeInitializeMutex(&s.a, 0);
        KeInitializeMutex(&s.b, 0);
        label(&s.a, sizeof s.a, "a");
        label(&s.b, sizeof s.b, "b");
        PKTHREAD t = nullptr;
        start(&b_then_a, &s, &t);
        KeWaitForSingleObject(&s.a, Executive, KernelMode, FALSE, nullptr);
        KeWaitForSingleObject(&s.b, Executive, KernelMode, FALSE, nullptr);
        KeReleaseMutex(&s.b, FALSE);
        KeReleaseMutex(&s.a, FALSE);
        join(t);
    });
    report("kernel: two KMUTEXes in opposite orders (must find)", c, r);
    ASSERT_TRUE(r.violation);
    std::printf("%s\n", r.what.c_str());
    const std::string what = without_addresses(r.what);
    const std::string a = "a";
    const std::string b = "b";
    EXPECT_NE(what.find("T0 waits in KeWaitForSingleObject on KMUTEX '" + b + "' (owner: T1)"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("T1 waits in KeWaitForSingleObject on KMUTEX '" + a + "' (owner: T0)"),
              std::string::npos)
        << what;
}

// ---- the C entry (model_kernel_c.c, C17) ----
extern "C" ::NTSTATUS ModelKernelCExplore(int which, const char* replay,
                                          ::KMLAB_EXPLORE_RESULT* result);

TEST(ModelKernel, CEntryFindsReplaysAndReportsAsserts) {
    ::KMLAB_EXPLORE_RESULT r{};
    ASSERT_EQ(ModelKernelCExplore(0, nullptr, &r), STATUS_SUCCESS);
    std::printf("C: %lld schedules, %s\n", static_cast<long long>(r.Schedules), r.Message);
    ASSERT_TRUE(r.Violation);
    EXPECT_NE(std::string(r.Message).find("deadlock: T0 waits in KeWaitForSingleObject on KEVENT"),
              std::string::npos)
        << r.Message;
    const std::string what = without_addresses(r.Message);
    const std::string schedule = r.Schedule;
    ::KMLAB_EXPLORE_RESULT again{};
    ASSERT_EQ(ModelKernelCExplore(0, schedule.c_str(), &again), STATUS_SUCCESS);
    EXPECT_TRUE(again.Violation);
    EXPECT_EQ(without_addresses(again.Message), what);

    ::KMLAB_EXPLORE_RESULT fixed{};
    ASSERT_EQ(ModelKernelCExplore(1, nullptr, &fixed), STATUS_SUCCESS);
    EXPECT_FALSE(fixed.Violation) << fixed.Message;
    EXPECT_TRUE(fixed.Complete);

    ::KMLAB_EXPLORE_RESULT a{};
    ASSERT_EQ(ModelKernelCExplore(2, nullptr, &a), STATUS_SUCCESS);
    ASSERT_TRUE(a.Violation);
    EXPECT_NE(std::string(a.Message).find("ASSERT(h->Ready == 1) failed at"), std::string::npos)
        << a.Message;

    ::KMLAB_EXPLORE_RESULT k{};
    ASSERT_EQ(ModelKernelCExplore(3, nullptr, &k), STATUS_SUCCESS);
    ASSERT_TRUE(k.Violation);
    EXPECT_NE(std::string(k.Message).find("the C body's own check"), std::string::npos)
        << k.Message;
}

}  // namespace
}  // namespace kmlab::explore
