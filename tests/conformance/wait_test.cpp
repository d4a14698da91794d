// SEMANTICS.md 4.4: KeWaitForSingleObject / KeWaitForMultipleObjects, timeouts,
// alerts, user APCs, KeDelayExecutionThread, and no busy waiting.
#include <time.h>

#include <atomic>
#include <limits>

#include "support.hpp"

using namespace kmlab::nt;
using namespace std::chrono_literals;
using kmlab::test::Nt;
using Wait = Nt;
using Alerts = Nt;
namespace bugcheck = kmlab::bugcheck;

namespace {
LARGE_INTEGER relative(std::chrono::milliseconds ms) {
    return kmlab::kernel::relative_timeout(ms);
}
LARGE_INTEGER zero() {
    LARGE_INTEGER li;
    li.QuadPart = 0;
    return li;
}
double thread_cpu_ms() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}
template <class F>
std::chrono::milliseconds timed(F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
}
}  // namespace

TEST_F(Wait, ZeroTimeoutReturnsAtOnce) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    LARGE_INTEGER z = zero();
    auto took = timed([&] {
        EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &z), STATUS_TIMEOUT);
    });
    EXPECT_LT(took, 1000ms);
}

TEST_F(Wait, RelativeAndAbsoluteTimeoutsReallyWait) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    LARGE_INTEGER rel = relative(60ms);
    EXPECT_EQ(rel.QuadPart, -600000) << "100 ns units, negative = relative";
    auto took = timed([&] {
        EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &rel), STATUS_TIMEOUT);
    });
    EXPECT_GE(took, 60ms);
    LARGE_INTEGER abs;
    KeQuerySystemTime(&abs);
    abs.QuadPart += 60 * 10000;  // now + 60 ms, absolute since 1601
    took = timed([&] {
        EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &abs), STATUS_TIMEOUT);
    });
    EXPECT_GE(took, 55ms);
    EXPECT_TRUE(IsListEmpty(&e.Header.WaitListHead)) << "a timed-out wait withdraws its wait block";
}

TEST_F(Wait, WaitAnyLowestSignaledIndexWins) {
    KEVENT a, b, c;
    KeInitializeEvent(&a, SynchronizationEvent, FALSE);
    KeInitializeEvent(&b, SynchronizationEvent, TRUE);
    KeInitializeEvent(&c, SynchronizationEvent, TRUE);
    PVOID objects[3] = {&a, &b, &c};
    EXPECT_EQ(KeWaitForMultipleObjects(3, objects, WaitAny, Executive, KernelMode, FALSE, nullptr,
                                       nullptr),
              STATUS_WAIT_1);
    EXPECT_EQ(KeReadStateEvent(&b), 0) << "only the winner is consumed";
    EXPECT_EQ(KeReadStateEvent(&c), 1);
    EXPECT_EQ(KeWaitForMultipleObjects(3, objects, WaitAny, Executive, KernelMode, FALSE, nullptr,
                                       nullptr),
              STATUS_WAIT_2);
}

TEST_F(Wait, WaitAllConsumesNothingUnlessEverythingIsSignaled) {
    KEVENT a, b;
    KeInitializeEvent(&a, SynchronizationEvent, TRUE);
    KeInitializeEvent(&b, SynchronizationEvent, FALSE);
    PVOID objects[2] = {&a, &b};
    LARGE_INTEGER z = zero();
    EXPECT_EQ(
        KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, &z, nullptr),
        STATUS_TIMEOUT);
    EXPECT_EQ(KeReadStateEvent(&a), 1);
    KeSetEvent(&b, IO_NO_INCREMENT, FALSE);
    EXPECT_EQ(
        KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, &z, nullptr),
        STATUS_SUCCESS);
    EXPECT_EQ(KeReadStateEvent(&a), 0);
    EXPECT_EQ(KeReadStateEvent(&b), 0);
}

TEST_F(Wait, ABlockedWaitAllWakesOnlyWhenTheLastObjectIsSignaled) {
    KEVENT a;
    KMUTEX m;
    KeInitializeEvent(&a, SynchronizationEvent, FALSE);
    KeInitializeMutex(&m, 0);
    ASSERT_EQ(KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    std::atomic<bool> done{false};
    std::thread waiter([&] {
        PVOID objects[2] = {&a, &m};
        EXPECT_EQ(KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE,
                                           nullptr, nullptr),
                  STATUS_SUCCESS);
        done = true;
        EXPECT_EQ(KeReleaseMutex(&m, FALSE), 0);
    });
    ASSERT_TRUE(kmlab::test::waiters_reach(&a, 1));
    KeSetEvent(&a, IO_NO_INCREMENT, FALSE);
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(done.load()) << "the mutex is still owned";
    EXPECT_EQ(KeReadStateEvent(&a), 1) << "the event was not consumed by a partial WaitAll";
    EXPECT_EQ(KeReleaseMutex(&m, FALSE), 0);
    waiter.join();
    EXPECT_TRUE(done.load());
    EXPECT_EQ(KeReadStateEvent(&a), 0);
}

TEST_F(Wait, WaitAllCountsAMutexTheCallerOwns) {
    KEVENT a;
    KMUTEX m;
    KeInitializeEvent(&a, NotificationEvent, TRUE);
    KeInitializeMutex(&m, 0);
    ASSERT_EQ(KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    PVOID objects[2] = {&a, &m};
    EXPECT_EQ(KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, nullptr,
                                       nullptr),
              STATUS_SUCCESS);
    EXPECT_EQ(m.Header.SignalState, -1);
    KeReleaseMutex(&m, FALSE);
    KeReleaseMutex(&m, FALSE);
}

TEST_F(Wait, TooManyObjectsBugChecks) {
    KEVENT events[65];
    PVOID objects[65];
    for (int i = 0; i < 65; ++i) {
        KeInitializeEvent(&events[i], NotificationEvent, TRUE);
        objects[i] = &events[i];
    }
    EXPECT_BUG_CHECK(KeWaitForMultipleObjects(4, objects, WaitAll, Executive, KernelMode, FALSE,
                                              nullptr, nullptr),
                     bugcheck::MAXIMUM_WAIT_OBJECTS_EXCEEDED);
    std::vector<KWAIT_BLOCK> blocks(65);
    EXPECT_BUG_CHECK(KeWaitForMultipleObjects(65, objects, WaitAll, Executive, KernelMode, FALSE,
                                              nullptr, blocks.data()),
                     bugcheck::MAXIMUM_WAIT_OBJECTS_EXCEEDED);
    EXPECT_EQ(KeWaitForMultipleObjects(64, objects, WaitAll, Executive, KernelMode, FALSE, nullptr,
                                       blocks.data()),
              STATUS_SUCCESS);
    EXPECT_EQ(KeWaitForMultipleObjects(3, objects, WaitAll, Executive, KernelMode, FALSE, nullptr,
                                       nullptr),
              STATUS_SUCCESS)
        << "three objects fit the thread's built-in wait blocks";
}

TEST_F(Wait, AtDispatchLevelOnlyAZeroTimeoutIsLegal) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    KIRQL old = KeRaiseIrqlToDpcLevel();
    LARGE_INTEGER z = zero();
    EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &z), STATUS_TIMEOUT);
    LARGE_INTEGER rel = relative(10ms);
    auto bc = EXPECT_BUG_CHECK(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &rel),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_WAIT_AT_DISPATCH);
    EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
    EXPECT_EQ(bc.parameter(3), reinterpret_cast<ULONG_PTR>(&e));
    EXPECT_BUG_CHECK(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nullptr),
                     bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    KeLowerIrql(old);
}

TEST_F(Wait, ABlockedThreadSleepsInsteadOfSpinning) {
    // A thread blocked for a second must use under 10 ms of CPU: once with a
    // timeout, once waiting forever until another thread signals.
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    LARGE_INTEGER rel = relative(1000ms);
    double cpu0 = thread_cpu_ms();
    EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &rel), STATUS_TIMEOUT);
    EXPECT_LT(thread_cpu_ms() - cpu0, 10.0);

    double waiter_cpu = -1;
    std::thread waiter([&] {
        double c0 = thread_cpu_ms();
        EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
        waiter_cpu = thread_cpu_ms() - c0;
    });
    ASSERT_TRUE(kmlab::test::waiters_reach(&e, 1));
    std::this_thread::sleep_for(1000ms);
    KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
    waiter.join();
    EXPECT_GE(waiter_cpu, 0.0);
    EXPECT_LT(waiter_cpu, 10.0);
}

TEST_F(Wait, MutantLimitIsCheckedInMultipleWaitsToo) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    ASSERT_EQ(KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    m.Header.SignalState = MINLONG;
    PVOID objects[1] = {&m};
    EXPECT_RAISES(KeWaitForMultipleObjects(1, objects, WaitAny, Executive, KernelMode, FALSE,
                                           nullptr, nullptr),
                  STATUS_MUTANT_LIMIT_EXCEEDED);
    m.Header.SignalState = 0;
    KeReleaseMutex(&m, FALSE);
}

TEST_F(Alerts, AnAlertEndsAnAlertableWait) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    PKTHREAD waiter_thread = nullptr;
    std::atomic<bool> ready{false};
    NTSTATUS status = STATUS_PENDING;
    std::thread waiter([&] {
        waiter_thread = KeGetCurrentThread();
        ready = true;
        status = KeWaitForSingleObject(&e, Executive, KernelMode, TRUE, nullptr);
    });
    ASSERT_TRUE(kmlab::test::waiters_reach(&e, 1));
    ASSERT_TRUE(ready.load());
    EXPECT_FALSE(KeAlertThread(waiter_thread, KernelMode));
    waiter.join();
    EXPECT_EQ(status, STATUS_ALERTED);
}

TEST_F(Alerts, APendingAlertIsConsumedButASignaledObjectWinsOverIt) {
    KEVENT signaled, unsignaled;
    KeInitializeEvent(&signaled, NotificationEvent, TRUE);
    KeInitializeEvent(&unsignaled, NotificationEvent, FALSE);
    PKTHREAD me = KeGetCurrentThread();
    EXPECT_FALSE(KeAlertThread(me, KernelMode));
    EXPECT_TRUE(KeAlertThread(me, KernelMode)) << "returns the previous alerted state";
    EXPECT_EQ(KeWaitForSingleObject(&signaled, Executive, KernelMode, TRUE, nullptr),
              STATUS_SUCCESS);
    EXPECT_EQ(KeWaitForSingleObject(&unsignaled, Executive, KernelMode, TRUE, nullptr),
              STATUS_ALERTED);
    LARGE_INTEGER rel = relative(20ms);
    EXPECT_EQ(KeWaitForSingleObject(&unsignaled, Executive, KernelMode, TRUE, &rel), STATUS_TIMEOUT)
        << "the alert was consumed";
}

TEST_F(Alerts, ANonAlertableWaitIgnoresAlerts) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    PKTHREAD me = KeGetCurrentThread();
    KeAlertThread(me, KernelMode);
    LARGE_INTEGER rel = relative(20ms);
    EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &rel), STATUS_TIMEOUT);
    EXPECT_TRUE(KeTestAlertThread(KernelMode)) << "still pending";
    EXPECT_FALSE(KeTestAlertThread(KernelMode));
}

namespace {
std::atomic<int> g_apc_runs{0};
void count_apc(PVOID context, PVOID, PVOID) {
    g_apc_runs.fetch_add(*static_cast<int*>(context));
}
}  // namespace

TEST_F(Alerts, AUserApcEndsAnAlertableUserModeWaitAndRuns) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    g_apc_runs = 0;
    int weight = 7;
    PKTHREAD waiter_thread = nullptr;
    std::atomic<bool> ready{false};
    NTSTATUS kernel_status = STATUS_PENDING, user_status = STATUS_PENDING;
    std::thread waiter([&] {
        waiter_thread = KeGetCurrentThread();
        ready = true;
        LARGE_INTEGER rel = relative(50ms);
        // A KernelMode wait is not ended by a user APC...
        kernel_status = KeWaitForSingleObject(&e, Executive, KernelMode, TRUE, &rel);
        // ...a UserMode alertable wait is, and the APC runs before it returns.
        user_status = KeWaitForSingleObject(&e, UserRequest, UserMode, TRUE, nullptr);
    });
    while (!ready) std::this_thread::yield();
    ASSERT_TRUE(kmlab::test::waiters_reach(&e, 1));
    EXPECT_TRUE(KeInsertQueueUserApc(waiter_thread, &count_apc, &weight, nullptr, nullptr));
    waiter.join();
    EXPECT_EQ(kernel_status, STATUS_TIMEOUT);
    EXPECT_EQ(user_status, STATUS_USER_APC);
    EXPECT_EQ(g_apc_runs.load(), 7);
}

TEST_F(Alerts, DelayExecutionSleepsAndCanBeAlerted) {
    LARGE_INTEGER rel = relative(40ms);
    auto took =
        timed([&] { EXPECT_EQ(KeDelayExecutionThread(KernelMode, FALSE, &rel), STATUS_SUCCESS); });
    EXPECT_GE(took, 40ms);
    KeAlertThread(KeGetCurrentThread(), KernelMode);
    LARGE_INTEGER long_delay = relative(10000ms);
    took = timed(
        [&] { EXPECT_EQ(KeDelayExecutionThread(KernelMode, TRUE, &long_delay), STATUS_ALERTED); });
    EXPECT_LT(took, 5000ms);
}

// kernel/time.cpp once negated the relative timeout (undefined for INT64_MIN)
// and added it to the steady clock without a bound: a relative timeout beyond
// what the clock can represent overflowed into the past and the wait timed
// out at once. Such a timeout is an infinite wait in practice.
TEST_F(Wait, AnUnrepresentablyLongTimeoutIsAnInfiniteWaitNotAnImmediateTimeout) {
    const LONGLONG kTimeouts[] = {
        std::numeric_limits<LONGLONG>::min(),       // the most negative relative interval
        -std::numeric_limits<LONGLONG>::max(),      // about 29,000 years
        -(300LL * 365 * 24 * 3600 * 10'000'000LL),  // 300 years: past the ns clock's range
        std::numeric_limits<LONGLONG>::max(),       // the latest absolute time
    };
    for (const LONGLONG q : kTimeouts) {
        SCOPED_TRACE(q);
        KEVENT e;
        KeInitializeEvent(&e, SynchronizationEvent, FALSE);
        std::thread setter([&] {
            std::this_thread::sleep_for(5ms);
            KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
        });
        LARGE_INTEGER timeout;
        timeout.QuadPart = q;
        EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &timeout),
                  STATUS_SUCCESS);
        setter.join();
    }
}

TEST_F(Alerts, DelayExecutionWithAnUnrepresentablyLongIntervalSleepsUntilAlerted) {
    for (const LONGLONG q :
         {std::numeric_limits<LONGLONG>::min(), -std::numeric_limits<LONGLONG>::max()}) {
        SCOPED_TRACE(q);
        PKTHREAD self = KeGetCurrentThread();
        std::thread alerter([&] {
            std::this_thread::sleep_for(5ms);
            KeAlertThread(self, KernelMode);
        });
        LARGE_INTEGER interval;
        interval.QuadPart = q;
        // STATUS_SUCCESS would mean the delay "expired" at once.
        EXPECT_EQ(KeDelayExecutionThread(KernelMode, TRUE, &interval), STATUS_ALERTED);
        alerter.join();
        KeTestAlertThread(KernelMode);  // an alert that came too late must not leak
    }
}
