// KTIMER and KDPC (kernel/include/kmlab/kernel/timer.hpp): kmtests'
// ntos_ke/KeTimer.c [kmt-KeTimer], plus expiry (relative, absolute, at once,
// periodic), cancel and re-arm as ReactOS's timerobj.c does them
// [ros-timerobj], notification against synchronization timers with several
// waiters, timers in multi-object waits, DPCs [ros-dpc], KeFlushQueuedDpcs
// [ddi:keflushqueueddpcs] and the IRQL ceiling (the pages document IRQL <=
// DISPATCH_LEVEL [ddi:kesettimerex][ddi:kecanceltimer]; the 0xA bug check
// above it, and its parameters, are the project's rule, rules.hpp
// check_irql_at_most). Due times are a few milliseconds of
// real time: the tests assert orders and states, never how long anything took
// (the machine is shared). Run in both dispatcher lock modes
// (KMLAB_DISPATCHER_LOCK=per-object for the second).
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <kmlab/kernel/timer.hpp>
#include "support.hpp"

using namespace kmlab::nt;
using kmlab::Flavor;
using kmlab::test::eventually;
using kmlab::test::waiters_reach;
namespace bugcheck = kmlab::bugcheck;

namespace {
class Timer : public kmlab::test::FlavorRestoringNt {
  protected:
    // Every test cancels what it set: a timer left set would be expired by the
    // service after the test's frame is gone.
    void TearDown() override {
        EXPECT_EQ(kmlab::kernel::set_timer_count(), 0u) << "a test left a timer set";
        FlavorRestoringNt::TearDown();
    }
};

LARGE_INTEGER relative_ms(long long ms) {
    LARGE_INTEGER li;
    li.QuadPart = -ms * 10'000;
    return li;
}
LARGE_INTEGER absolute_in_ms(long long ms) {
    LARGE_INTEGER now;
    KeQuerySystemTime(&now);
    now.QuadPart += ms * 10'000;
    return now;
}
constexpr long long kHour = 3'600'000;

NTSTATUS wait_on(PVOID o, PLARGE_INTEGER timeout = nullptr) {
    return KeWaitForSingleObject(o, Executive, KernelMode, FALSE, timeout);
}
NTSTATUS poll(PVOID o) {
    LARGE_INTEGER zero{};
    return wait_on(o, &zero);
}
}  // namespace

// ---- Initialization [kmt-KeTimer] ----

// kmtest fills the timer with 0x55, initializes it at each IRQL up to
// DISPATCH_LEVEL and checks Type, Hand, Lock & 0xFF00FF00 == 0x00005500
// (byte 1 left, byte 3, Inserted, cleared), SignalState 0, an empty wait
// list, KeReadStateTimer, WaitNext and the IRQL.
TEST_F(Timer, InitializeMatchesKmtestAtEachLegalIrql) {
    for (KIRQL level : {PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL}) {
        for (TIMER_TYPE type : {NotificationTimer, SynchronizationTimer}) {
            KIRQL old;
            KeRaiseIrql(level, &old);
            KTIMER t;
            std::memset(&t, 0x55, sizeof t);
            KeInitializeTimerEx(&t, type);
            EXPECT_EQ(t.Header.Type, TimerNotificationObject + static_cast<int>(type));
            EXPECT_EQ(t.Header.Hand, sizeof(KTIMER) / sizeof(ULONG));
            EXPECT_EQ(static_cast<ULONG>(t.Header.Lock) & 0xFF00FF00u, 0x00005500u);
            EXPECT_EQ(t.Header.SignalState, 0);
            EXPECT_TRUE(IsListEmpty(&t.Header.WaitListHead));
            EXPECT_EQ(KeReadStateTimer(&t), FALSE);
            EXPECT_EQ(t.DueTime.QuadPart, 0u);
            EXPECT_EQ(t.Period, 0u);
            EXPECT_EQ(KeGetCurrentThread()->WaitNext, FALSE);
            EXPECT_EQ(KeGetCurrentIrql(), level);
            KeLowerIrql(old);
        }
    }
    KTIMER n;
    KeInitializeTimer(&n);
    EXPECT_EQ(n.Header.Type, TimerNotificationObject);
}

// kmtest stops above DISPATCH_LEVEL on a checked build (the bug check) and
// initializes the timer on a free one [kmt-KeTimer].
TEST_F(Timer, InitializeAboveDispatchLevelBugChecksOnlyInTheCheckedFlavour) {
    KTIMER t;
    KIRQL old;
    kmlab::set_flavor(Flavor::checked);
    KeRaiseIrql(HIGH_LEVEL, &old);
    const auto bc = EXPECT_BUG_CHECK(KeInitializeTimer(&t), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(bc.parameter(1), reinterpret_cast<ULONG_PTR>(&t));
    EXPECT_EQ(bc.parameter(2), HIGH_LEVEL);
    kmlab::set_flavor(Flavor::free);
    std::memset(&t, 0x55, sizeof t);
    KeInitializeTimerEx(&t, SynchronizationTimer);
    EXPECT_EQ(t.Header.Type, TimerSynchronizationObject);
    KeLowerIrql(old);
}

// The WDK's amd64 layouts of KTIMER and KDPC are static_asserts in timer.hpp.

// ---- Expiry ----

TEST_F(Timer, ARelativeDueTimeExpiresAndANotificationTimerStaysSignaled) {
    KTIMER t;
    KeInitializeTimer(&t);
    EXPECT_EQ(KeSetTimer(&t, relative_ms(3), nullptr), FALSE) << "it was not set";
    EXPECT_EQ(wait_on(&t), STATUS_SUCCESS);
    EXPECT_EQ(KeReadStateTimer(&t), TRUE);
    EXPECT_EQ(poll(&t), STATUS_SUCCESS) << "a notification timer stays signaled";
    EXPECT_EQ(poll(&t), STATUS_SUCCESS);
    EXPECT_EQ(KeCancelTimer(&t), FALSE) << "an expired timer is no longer set";
    EXPECT_EQ(KeReadStateTimer(&t), TRUE) << "cancelling leaves the signal state";
}

TEST_F(Timer, AnAbsoluteDueTimeExpires) {
    KTIMER t;
    KeInitializeTimerEx(&t, SynchronizationTimer);
    EXPECT_EQ(KeSetTimer(&t, absolute_in_ms(3), nullptr), FALSE);
    EXPECT_EQ(wait_on(&t), STATUS_SUCCESS);
    EXPECT_EQ(KeReadStateTimer(&t), FALSE) << "the satisfied wait reset it";
    EXPECT_EQ(poll(&t), STATUS_TIMEOUT);
}

// A due time already past (zero, or an absolute time behind the clock)
// signals the timer inside KeSetTimer [ros-timerobj].
TEST_F(Timer, ADueTimeAlreadyPastSignalsTheTimerAtOnce) {
    KTIMER t;
    KeInitializeTimer(&t);
    LARGE_INTEGER zero{};
    EXPECT_EQ(KeSetTimer(&t, zero, nullptr), FALSE);
    EXPECT_EQ(KeReadStateTimer(&t), TRUE);
    EXPECT_EQ(KeCancelTimer(&t), FALSE);
    KeInitializeTimer(&t);
    EXPECT_EQ(KeSetTimer(&t, absolute_in_ms(-1000), nullptr), FALSE);
    EXPECT_EQ(KeReadStateTimer(&t), TRUE);
    EXPECT_EQ(KeCancelTimer(&t), FALSE);
}

TEST_F(Timer, AWaitOnATimerNotYetDueTimesOut) {
    KTIMER t;
    KeInitializeTimer(&t);
    KeSetTimer(&t, relative_ms(kHour), nullptr);
    LARGE_INTEGER timeout = relative_ms(2);
    EXPECT_EQ(wait_on(&t, &timeout), STATUS_TIMEOUT);
    EXPECT_EQ(KeCancelTimer(&t), TRUE);
}

// A timer set earlier than every other wakes the service from a longer sleep.
TEST_F(Timer, ATimerSetEarlierThanTheOthersExpiresFirst) {
    KTIMER later, sooner;
    KeInitializeTimer(&later);
    KeInitializeTimer(&sooner);
    KeSetTimer(&later, relative_ms(kHour), nullptr);
    KeSetTimer(&sooner, relative_ms(2), nullptr);
    EXPECT_EQ(wait_on(&sooner), STATUS_SUCCESS);
    EXPECT_EQ(KeReadStateTimer(&later), FALSE);
    EXPECT_EQ(KeCancelTimer(&later), TRUE);
}

// ---- Cancel and re-arm [ros-timerobj] ----

TEST_F(Timer, KeCancelTimerReturnsWhetherTheTimerWasSet) {
    KTIMER t;
    KeInitializeTimer(&t);
    EXPECT_EQ(KeCancelTimer(&t), FALSE);
    KeSetTimer(&t, relative_ms(kHour), nullptr);
    EXPECT_EQ(t.Header.Inserted, TRUE);
    EXPECT_EQ(KeCancelTimer(&t), TRUE);
    EXPECT_EQ(t.Header.Inserted, FALSE);
    EXPECT_EQ(KeCancelTimer(&t), FALSE);
    EXPECT_EQ(KeReadStateTimer(&t), FALSE);
    LARGE_INTEGER timeout = relative_ms(5);
    EXPECT_EQ(wait_on(&t, &timeout), STATUS_TIMEOUT) << "a cancelled timer never fires";
}

TEST_F(Timer, KeSetTimerOnASetTimerReArmsItAndReturnsTrue) {
    KTIMER t;
    KeInitializeTimer(&t);
    EXPECT_EQ(KeSetTimer(&t, relative_ms(kHour), nullptr), FALSE);
    EXPECT_EQ(KeSetTimer(&t, relative_ms(kHour), nullptr), TRUE);
    EXPECT_EQ(kmlab::kernel::set_timer_count(), 1u) << "re-arming does not queue it twice";
    EXPECT_EQ(KeSetTimer(&t, relative_ms(2), nullptr), TRUE);
    EXPECT_EQ(wait_on(&t), STATUS_SUCCESS) << "the re-armed due time applies";
}

TEST_F(Timer, KeSetTimerClearsTheSignalStateOfAnExpiredTimer) {
    for (TIMER_TYPE type : {NotificationTimer, SynchronizationTimer}) {
        KTIMER t;
        KeInitializeTimerEx(&t, type);
        LARGE_INTEGER zero{};
        KeSetTimer(&t, zero, nullptr);
        ASSERT_EQ(KeReadStateTimer(&t), TRUE);
        EXPECT_EQ(KeSetTimer(&t, relative_ms(kHour), nullptr), FALSE);
        EXPECT_EQ(KeReadStateTimer(&t), FALSE);
        EXPECT_EQ(poll(&t), STATUS_TIMEOUT);
        EXPECT_EQ(KeCancelTimer(&t), TRUE);
    }
}

TEST_F(Timer, ANegativePeriodRaisesAndChangesNothing) {
    KTIMER t;
    KeInitializeTimer(&t);
    EXPECT_RAISES(KeSetTimerEx(&t, relative_ms(kHour), -1, nullptr), STATUS_INVALID_PARAMETER);
    EXPECT_EQ(t.Header.Inserted, FALSE);
    EXPECT_EQ(KeCancelTimer(&t), FALSE);
}

// ---- Notification against synchronization, several waiters ----

TEST_F(Timer, ANotificationTimerReleasesEveryWaiter) {
    KTIMER t;
    KeInitializeTimer(&t);
    KeSetTimer(&t, relative_ms(kHour), nullptr);
    std::atomic<int> released{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 5; ++i) {
        waiters.emplace_back([&] {
            EXPECT_EQ(wait_on(&t), STATUS_SUCCESS);
            released.fetch_add(1);
        });
    }
    ASSERT_TRUE(waiters_reach(&t, 5));
    EXPECT_EQ(released.load(), 0);
    EXPECT_EQ(KeSetTimer(&t, relative_ms(2), nullptr), TRUE);
    for (auto& w : waiters) w.join();
    EXPECT_EQ(released.load(), 5);
    EXPECT_EQ(KeReadStateTimer(&t), TRUE);
    EXPECT_EQ(kmlab::dispatcher::waiter_count(&t), 0u);
}

// Each expiry releases one waiter, the first in, and resets the timer.
TEST_F(Timer, ASynchronizationTimerReleasesOneWaiterPerExpiryInFifoOrder) {
    KTIMER t;
    KeInitializeTimerEx(&t, SynchronizationTimer);
    std::mutex order_lock;
    std::vector<int> order;
    std::vector<std::thread> waiters;
    for (int i = 0; i < 3; ++i) {
        waiters.emplace_back([&, i] {
            EXPECT_EQ(wait_on(&t), STATUS_SUCCESS);
            std::lock_guard g(order_lock);
            order.push_back(i);
        });
        ASSERT_TRUE(waiters_reach(&t, static_cast<unsigned>(i + 1)));
    }
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(KeSetTimer(&t, relative_ms(1), nullptr), FALSE);
        ASSERT_TRUE(eventually([&] {
            std::lock_guard g(order_lock);
            return order.size() == static_cast<std::size_t>(i + 1);
        }));
        EXPECT_EQ(kmlab::dispatcher::waiter_count(&t), static_cast<ULONG>(2 - i));
        EXPECT_EQ(KeReadStateTimer(&t), FALSE) << "the released waiter reset it";
    }
    for (auto& w : waiters) w.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

// ---- Periodic timers ----

TEST_F(Timer, APeriodicSynchronizationTimerExpiresAgainUntilCancelled) {
    KTIMER t;
    KeInitializeTimerEx(&t, SynchronizationTimer);
    EXPECT_EQ(KeSetTimerEx(&t, relative_ms(1), 1, nullptr), FALSE);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(wait_on(&t), STATUS_SUCCESS);
    EXPECT_EQ(KeCancelTimer(&t), TRUE) << "a periodic timer stays set";
    EXPECT_EQ(t.Period, 1u);
}

TEST_F(Timer, APeriodicNotificationTimerStaysSignaledWhileReArmed) {
    KTIMER t;
    KeInitializeTimer(&t);
    KeSetTimerEx(&t, relative_ms(1), 2, nullptr);
    EXPECT_EQ(wait_on(&t), STATUS_SUCCESS);
    EXPECT_EQ(KeReadStateTimer(&t), TRUE);
    // Not t.Header.Inserted: the service re-arms it under the lock meanwhile.
    EXPECT_EQ(KeCancelTimer(&t), TRUE) << "still set: re-armed";
    EXPECT_EQ(KeReadStateTimer(&t), TRUE);
}

// ---- Multi-object waits ----

TEST_F(Timer, WaitAnyReportsTheTimerOrTheEventThatCameFirst) {
    KTIMER t;
    KEVENT e;
    KeInitializeTimerEx(&t, SynchronizationTimer);
    KeInitializeEvent(&e, SynchronizationEvent, FALSE);
    PVOID objects[2] = {&t, &e};
    KeSetTimer(&t, relative_ms(2), nullptr);
    EXPECT_EQ(KeWaitForMultipleObjects(2, objects, WaitAny, Executive, KernelMode, FALSE, nullptr,
                                       nullptr),
              STATUS_WAIT_0);
    EXPECT_EQ(KeReadStateTimer(&t), FALSE);

    KeSetTimer(&t, relative_ms(kHour), nullptr);
    std::thread setter([&] {
        ASSERT_TRUE(waiters_reach(&e, 1));
        KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
    });
    EXPECT_EQ(KeWaitForMultipleObjects(2, objects, WaitAny, Executive, KernelMode, FALSE, nullptr,
                                       nullptr),
              STATUS_WAIT_1);
    setter.join();
    EXPECT_EQ(kmlab::dispatcher::waiter_count(&t), 0u) << "the wait left the timer's list";
    EXPECT_EQ(KeCancelTimer(&t), TRUE);
}

TEST_F(Timer, WaitAllNeedsTheTimerAndTheEventAndSatisfiesBoth) {
    KTIMER t;
    KEVENT e;
    KeInitializeTimerEx(&t, SynchronizationTimer);
    KeInitializeEvent(&e, SynchronizationEvent, FALSE);
    PVOID objects[2] = {&t, &e};
    KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
    LARGE_INTEGER timeout = relative_ms(2);
    EXPECT_EQ(KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, &timeout,
                                       nullptr),
              STATUS_TIMEOUT)
        << "the timer is not signaled";
    EXPECT_EQ(KeReadStateEvent(&e), 1) << "a WaitAll that failed consumed nothing";
    KeSetTimer(&t, relative_ms(2), nullptr);
    EXPECT_EQ(KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, nullptr,
                                       nullptr),
              STATUS_SUCCESS);
    EXPECT_EQ(KeReadStateTimer(&t), FALSE);
    EXPECT_EQ(KeReadStateEvent(&e), 0);
}

TEST_F(Timer, AWaitAllBlockedOnANotificationTimerIsReleasedByItsExpiry) {
    KTIMER t;
    KEVENT e;
    KeInitializeTimer(&t);
    KeInitializeEvent(&e, NotificationEvent, TRUE);
    KeSetTimer(&t, relative_ms(kHour), nullptr);
    std::thread waiter([&] {
        PVOID objects[2] = {&e, &t};
        EXPECT_EQ(KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE,
                                           nullptr, nullptr),
                  STATUS_SUCCESS);
    });
    ASSERT_TRUE(waiters_reach(&t, 1));
    KeSetTimer(&t, relative_ms(1), nullptr);
    waiter.join();
    EXPECT_EQ(KeReadStateTimer(&t), TRUE);
    EXPECT_EQ(KeReadStateEvent(&e), 1);
}

// ---- The IRQL rule ----

TEST_F(Timer, TheRoutinesRunAtDispatchLevel) {
    KTIMER t;
    KIRQL old = KeRaiseIrqlToDpcLevel();
    KeInitializeTimer(&t);
    EXPECT_EQ(KeSetTimer(&t, relative_ms(kHour), nullptr), FALSE);
    EXPECT_EQ(KeReadStateTimer(&t), FALSE);
    EXPECT_EQ(KeCancelTimer(&t), TRUE);
    EXPECT_EQ(poll(&t), STATUS_TIMEOUT) << "a poll is legal at DISPATCH_LEVEL";
    KeLowerIrql(old);
}

TEST_F(Timer, AboveDispatchLevelTheRoutinesBugCheck) {
    KTIMER t;
    KeInitializeTimer(&t);
    KIRQL old;
    KeRaiseIrql(HIGH_LEVEL, &old);
    auto bc = EXPECT_BUG_CHECK(KeSetTimer(&t, relative_ms(kHour), nullptr),
                               bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(bc.parameter(1), reinterpret_cast<ULONG_PTR>(&t));
    EXPECT_EQ(bc.parameter(2), HIGH_LEVEL);
    EXPECT_BUG_CHECK(KeCancelTimer(&t), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_BUG_CHECK(KeReadStateTimer(&t), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
    EXPECT_EQ(t.Header.Inserted, FALSE) << "the refused KeSetTimer changed nothing";
    // Waiting with a timeout at DISPATCH_LEVEL is the wait's own bug check.
    old = KeRaiseIrqlToDpcLevel();
    EXPECT_BUG_CHECK(wait_on(&t), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    KeLowerIrql(old);
}

// ---- DPCs [ros-dpc][ros-timerobj] ----

namespace {
struct DpcProbe {
    std::atomic<int> runs{0};
    std::atomic<KIRQL> irql{0xFF};
    std::atomic<PKTHREAD> thread{nullptr};
    std::atomic<PVOID> context{nullptr};
    std::atomic<long long> system_time{0};
    KEVENT ran;
};
void probe_routine(PKDPC dpc, PVOID context, PVOID a1, PVOID a2) {
    auto* p = static_cast<DpcProbe*>(context);
    EXPECT_EQ(dpc->DpcData, nullptr) << "dequeued before its routine runs";
    p->irql.store(KeGetCurrentIrql());
    p->thread.store(KeGetCurrentThread());
    p->context.store(context);
    p->system_time.store(static_cast<long long>(reinterpret_cast<ULONG_PTR>(a1)) |
                         (static_cast<long long>(reinterpret_cast<ULONG_PTR>(a2)) << 32));
    p->runs.fetch_add(1);
    KeSetEvent(&p->ran, IO_NO_INCREMENT, FALSE);  // legal at DISPATCH_LEVEL
}
}  // namespace

TEST_F(Timer, KeInitializeDpcFillsTheDpc) {
    KDPC dpc;
    std::memset(&dpc, 0x55, sizeof dpc);
    int context = 0;
    KeInitializeDpc(&dpc, probe_routine, &context);
    EXPECT_EQ(dpc.Type, DpcObject);
    EXPECT_EQ(dpc.Importance, MediumImportance);
    EXPECT_EQ(dpc.Number, 0);
    EXPECT_EQ(dpc.DeferredRoutine, &probe_routine);
    EXPECT_EQ(dpc.DeferredContext, &context);
    EXPECT_EQ(dpc.DpcData, nullptr);
}

TEST_F(Timer, AnExpiringTimersDpcRunsAtDispatchLevelWithTheSystemTime) {
    DpcProbe probe;
    KeInitializeEvent(&probe.ran, NotificationEvent, FALSE);
    KDPC dpc;
    KeInitializeDpc(&dpc, probe_routine, &probe);
    KTIMER t;
    KeInitializeTimer(&t);
    LARGE_INTEGER before;
    KeQuerySystemTime(&before);
    EXPECT_EQ(KeSetTimer(&t, relative_ms(2), &dpc), FALSE);
    EXPECT_EQ(t.Dpc, &dpc);
    EXPECT_EQ(wait_on(&probe.ran), STATUS_SUCCESS);
    EXPECT_EQ(probe.runs.load(), 1);
    EXPECT_EQ(probe.irql.load(), DISPATCH_LEVEL);
    EXPECT_NE(probe.thread.load(), KeGetCurrentThread()) << "the timer service ran it";
    EXPECT_EQ(probe.context.load(), &probe);
    EXPECT_GE(probe.system_time.load(), before.QuadPart);
    EXPECT_EQ(KeReadStateTimer(&t), TRUE) << "the timer is signaled as well";
}

// Already due (an absolute time past): the timer is signaled inside
// KeSetTimer, but its DPC is queued, never run on the caller's thread: the
// kernel runs it once the caller's IRQL drops below DISPATCH_LEVEL
// [ros-timerobj][ros-dpc]; here the timer service runs it.
TEST_F(Timer, ADueTimeAlreadyPastQueuesTheDpcToTheService) {
    DpcProbe probe;
    KeInitializeEvent(&probe.ran, NotificationEvent, FALSE);
    KDPC dpc;
    KeInitializeDpc(&dpc, probe_routine, &probe);
    KTIMER t;
    KeInitializeTimer(&t);
    LARGE_INTEGER zero{};
    KeSetTimer(&t, zero, &dpc);
    EXPECT_EQ(KeReadStateTimer(&t), TRUE);
    EXPECT_EQ(wait_on(&probe.ran), STATUS_SUCCESS);
    EXPECT_EQ(probe.runs.load(), 1);
    EXPECT_EQ(probe.irql.load(), DISPATCH_LEVEL);
    EXPECT_NE(probe.thread.load(), KeGetCurrentThread()) << "the timer service ran it";
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    KeFlushQueuedDpcs();
}

namespace {
thread_local bool t_inside_set_timer = false;
std::atomic<int> g_ran_inside{0};
std::atomic<int> g_ran{0};
void inside_probe(PKDPC, PVOID, PVOID, PVOID) {
    if (t_inside_set_timer) g_ran_inside.fetch_add(1);
    g_ran.fetch_add(1);
}
}  // namespace

// A relative due time is never "already past": however short, the timer is
// inserted and the service expires it [ros-timerobj] (KiComputeDueTime
// signals at once only for an absolute time behind the clock). The review
// saw DueTime -1 run the DPC inside KeSetTimer 13 times in 10,000. Inside a
// Wait = TRUE hold the caller holds the dispatcher lock, so the service cannot
// expire the timer behind its back: a signal seen there came from KeSetTimer.
TEST_F(Timer, AShortRelativeDueTimeNeverSignalsInsideKeSetTimer) {
    static KDPC dpc;
    KeInitializeDpc(&dpc, inside_probe, nullptr);
    KTIMER t;
    KeInitializeTimer(&t);
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    g_ran_inside = 0;
    g_ran = 0;
    LARGE_INTEGER one;
    one.QuadPart = -1;
    int signaled = 0;
    KeSetEvent(&e, IO_NO_INCREMENT, TRUE);
    for (int i = 0; i < 100'000; ++i) {
        t_inside_set_timer = true;
        KeSetTimer(&t, one, &dpc);
        t_inside_set_timer = false;
        if (KeReadStateTimer(&t)) ++signaled;
    }
    EXPECT_EQ(wait_on(&e), STATUS_SUCCESS);  // ends the hold
    KeCancelTimer(&t);
    KeFlushQueuedDpcs();
    EXPECT_EQ(signaled, 0) << "of 100,000 KeSetTimer(-1)";
    EXPECT_EQ(g_ran_inside.load(), 0) << "of " << g_ran.load() << " runs";
    EXPECT_EQ(dpc.DpcData, nullptr) << "KeFlushQueuedDpcs returned with the DPC queued";
}

namespace {
struct LockingDpc {
    KSPIN_LOCK lock = 0;
    std::atomic<PKTHREAD> thread{nullptr};
    std::atomic<int> runs{0};
};
void locking_routine(PKDPC, PVOID context, PVOID, PVOID) {
    auto* p = static_cast<LockingDpc*>(context);
    KeAcquireSpinLockAtDpcLevel(&p->lock);
    p->thread = KeGetCurrentThread();
    p->runs.fetch_add(1);
    KeReleaseSpinLockFromDpcLevel(&p->lock);
}
}  // namespace

// Legal on Windows: a caller holding spin lock L sets a timer already due
// whose DPC takes L. The DPC runs only after the caller's IRQL drops below
// DISPATCH_LEVEL (here: on the service, which spins on L until the caller
// releases it), never inside KeSetTimer, where it would find L held by its
// own thread (0xF, SPIN_LOCK_ALREADY_OWNED).
TEST_F(Timer, ADpcThatTakesTheCallersSpinLockWaitsForItsRelease) {
    LockingDpc probe;
    KeInitializeSpinLock(&probe.lock);
    KDPC dpc;
    KeInitializeDpc(&dpc, locking_routine, &probe);
    KTIMER t;
    KeInitializeTimer(&t);
    KIRQL old;
    KeAcquireSpinLock(&probe.lock, &old);
    LARGE_INTEGER zero{};
    try {
        KeSetTimer(&t, zero, &dpc);
    } catch (const kmlab::BugCheck& bc) {
        ADD_FAILURE() << "KeSetTimer ran the DPC on its caller: bug check 0x" << std::hex
                      << bc.code();
    }
    KeReleaseSpinLock(&probe.lock, old);
    KeFlushQueuedDpcs();
    EXPECT_EQ(probe.runs.load(), 1);
    EXPECT_NE(probe.thread.load(), KeGetCurrentThread());
}

namespace {
struct PollingDpc {
    KEVENT* object;
    std::atomic<NTSTATUS> status{-1};
};
void polling_routine(PKDPC, PVOID context, PVOID, PVOID) {
    auto* p = static_cast<PollingDpc*>(context);
    LARGE_INTEGER zero{};
    p->status = KeWaitForSingleObject(p->object, Executive, KernelMode, FALSE, &zero);
}
}  // namespace

// Inside a Wait = TRUE hold (KeSetEvent(..., TRUE) keeps the dispatcher lock
// for the caller's next wait), a KeSetTimer already due must not run a DPC
// whose zero-timeout wait would end the caller's hold: the hold survives
// until the caller's own wait, and the DPC runs on the service after it.
TEST_F(Timer, ADueTimerSetInsideAWaitNextHoldLeavesTheHoldToTheCallersWait) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    PollingDpc probe{&e};
    KDPC dpc;
    KeInitializeDpc(&dpc, polling_routine, &probe);
    KTIMER t;
    KeInitializeTimer(&t);
    KeSetEvent(&e, IO_NO_INCREMENT, TRUE);
    LARGE_INTEGER zero{};
    KeSetTimer(&t, zero, &dpc);
    EXPECT_EQ(KeGetCurrentThread()->WaitNext, TRUE) << "the DPC ended the caller's hold";
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    EXPECT_EQ(wait_on(&e), STATUS_SUCCESS);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    KeFlushQueuedDpcs();
    EXPECT_EQ(probe.status.load(), STATUS_SUCCESS);
}

TEST_F(Timer, APeriodicTimersDpcRunsAtEachExpiry) {
    // Static: after KeCancelTimer a DPC already queued may still run [ros-timerobj].
    static DpcProbe probe;
    static KDPC dpc;
    KeInitializeEvent(&probe.ran, SynchronizationEvent, FALSE);
    KeInitializeDpc(&dpc, probe_routine, &probe);
    KTIMER t;
    KeInitializeTimer(&t);
    KeSetTimerEx(&t, relative_ms(1), 1, &dpc);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(wait_on(&probe.ran), STATUS_SUCCESS);
    EXPECT_EQ(KeCancelTimer(&t), TRUE);
    EXPECT_GE(probe.runs.load(), 3);
}

// ---- KeFlushQueuedDpcs [ddi:keflushqueueddpcs] ----

namespace {
struct SlowDpc {
    KEVENT entered;
    std::atomic<bool> release{false};
    std::atomic<bool> done{false};
};
void slow_routine(PKDPC, PVOID context, PVOID, PVOID) {
    auto* p = static_cast<SlowDpc*>(context);
    KeSetEvent(&p->entered, IO_NO_INCREMENT, FALSE);
    while (!p->release.load()) std::this_thread::yield();
    p->done = true;
}
}  // namespace

// KeCancelTimer does not wait for a DPC already running; KeFlushQueuedDpcs
// does, so that what the DPC uses can be freed after it [ddi:kecanceltimer].
TEST_F(Timer, KeFlushQueuedDpcsWaitsForARunningDpc) {
    SlowDpc probe;
    KeInitializeEvent(&probe.entered, NotificationEvent, FALSE);
    KDPC dpc;
    KeInitializeDpc(&dpc, slow_routine, &probe);
    KTIMER t;
    KeInitializeTimer(&t);
    KeSetTimerEx(&t, relative_ms(1), 1, &dpc);
    EXPECT_EQ(wait_on(&probe.entered), STATUS_SUCCESS);
    EXPECT_EQ(KeCancelTimer(&t), TRUE);
    std::thread releaser([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        probe.release = true;
    });
    KeFlushQueuedDpcs();
    EXPECT_TRUE(probe.done.load()) << "KeFlushQueuedDpcs returned while the DPC ran";
    releaser.join();
}

// The review's stress pattern: 5 threads each arm a periodic 1 ms timer whose
// DPC uses a heap object, let it run, cancel it, flush and free the object
// (a use after free for AddressSanitizer / ThreadSanitizer without the flush).
TEST_F(Timer, FiveThreadsFreeWhatAPeriodicDpcUsesAfterCancelAndFlush) {
    struct Own {
        KTIMER t;
        KDPC d;
        KEVENT ran;
        std::atomic<int> runs{0};
    };
    auto routine = [](PKDPC, PVOID context, PVOID, PVOID) {
        auto* o = static_cast<Own*>(context);
        o->runs.fetch_add(1);
        KeSetEvent(&o->ran, IO_NO_INCREMENT, FALSE);
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < 5; ++i) {
        threads.emplace_back([routine] {
            for (int k = 0; k < 20; ++k) {
                auto* o = new Own;
                KeInitializeTimer(&o->t);
                KeInitializeEvent(&o->ran, SynchronizationEvent, FALSE);
                KeInitializeDpc(&o->d, routine, o);
                KeSetTimerEx(&o->t, relative_ms(1), 1, &o->d);
                EXPECT_EQ(wait_on(&o->ran), STATUS_SUCCESS);
                EXPECT_EQ(KeCancelTimer(&o->t), TRUE);
                KeFlushQueuedDpcs();
                EXPECT_EQ(o->d.DpcData, nullptr);
                EXPECT_GE(o->runs.load(), 1);
                delete o;
            }
        });
    }
    for (auto& th : threads) th.join();
}

// Documented for PASSIVE_LEVEL only [ddi:keflushqueueddpcs]: above it, the
// project's IRQL-ceiling rule (rules.hpp check_irql_at_most) bug checks 0xA.
TEST_F(Timer, KeFlushQueuedDpcsAbovePassiveLevelBugChecks) {
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    const auto bc = EXPECT_BUG_CHECK(KeFlushQueuedDpcs(), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(bc.parameter(2), APC_LEVEL);
    KeLowerIrql(old);
}

namespace {
std::atomic<int> g_fatal_reports{0};
std::atomic<int> g_counted_runs{0};
void raising_routine(PKDPC, PVOID, PVOID, PVOID) {
    kmlab::raise_status(STATUS_INVALID_PARAMETER);
}
void counting_routine(PKDPC, PVOID, PVOID, PVOID) {
    g_counted_runs.fetch_add(1);
}
}  // namespace

// A DPC that raises on the service is reported (KMODE_EXCEPTION_NOT_HANDLED
// through the bug-check handler [bc:0x1E]); if the handler returns, the DPCs
// queued behind it in the same batch still run.
TEST_F(Timer, ADpcThatRaisesOnTheServiceDoesNotStrandTheOthers) {
    g_fatal_reports = 0;
    g_counted_runs = 0;
    const auto previous = kmlab::set_bug_check_handler([](const kmlab::BugCheck& bc) {
        if (bc.code() == bugcheck::KMODE_EXCEPTION_NOT_HANDLED) g_fatal_reports.fetch_add(1);
    });
    KTIMER t1, t2;
    KDPC d1, d2;
    KeInitializeTimer(&t1);
    KeInitializeTimer(&t2);
    KeInitializeDpc(&d1, raising_routine, nullptr);
    KeInitializeDpc(&d2, counting_routine, nullptr);
    // The same absolute due time: the service expires both in one scan and
    // runs their DPCs in one batch, the raising one first.
    const LARGE_INTEGER due = absolute_in_ms(20);
    KeSetTimer(&t1, due, &d1);
    KeSetTimer(&t2, due, &d2);
    EXPECT_EQ(wait_on(&t2), STATUS_SUCCESS);
    EXPECT_TRUE(eventually([] { return g_counted_runs.load() == 1; }));
    KeFlushQueuedDpcs();
    EXPECT_EQ(g_fatal_reports.load(), 1);
    EXPECT_EQ(g_counted_runs.load(), 1);
    EXPECT_EQ(d2.DpcData, nullptr) << "d2 stranded, queued for good";
    kmlab::set_bug_check_handler(previous);
}

// ---- Several threads on shared timers ----

// 5 threads each re-arm their own synchronization timer and wait for it,
// while re-arming and cancelling a shared notification timer that nobody
// waits on; afterwards no timer is left set and no waiter is left queued.
TEST_F(Timer, FiveThreadsSettingWaitingAndCancellingLeaveNothingSet) {
    KTIMER shared;
    KeInitializeTimer(&shared);
    std::vector<std::thread> threads;
    for (int i = 0; i < 5; ++i) {
        threads.emplace_back([&, i] {
            KTIMER own;
            KeInitializeTimerEx(&own, SynchronizationTimer);
            for (int k = 0; k < 20; ++k) {
                KeSetTimer(&own, relative_ms(1 + (k + i) % 2), nullptr);
                KeSetTimer(&shared, relative_ms(kHour), nullptr);
                EXPECT_EQ(wait_on(&own), STATUS_SUCCESS);
                KeCancelTimer(&shared);
            }
            EXPECT_EQ(KeCancelTimer(&own), FALSE);
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(KeCancelTimer(&shared), FALSE);
    EXPECT_EQ(kmlab::dispatcher::waiter_count(&shared), 0u);
}

// ---- Process exit ----

// The service thread is detached and never joined: a process that exits with
// a timer set (the service asleep until it is due) exits at once.
TEST(TimerDeathTest, ProcessExitDoesNotWaitForTheTimerService) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            static KTIMER t;
            KeInitializeTimer(&t);
            KeSetTimer(&t, relative_ms(kHour), nullptr);
            std::exit(0);
        },
        ::testing::ExitedWithCode(0), "");
}

// A DPC that queues itself again from its own routine (KeSetTimer at an
// already-due time) must not hold KeFlushQueuedDpcs off: the flush waits for
// the DPCs queued before it started [ddi:keflushqueueddpcs], not for the
// moment no DPC at all is queued (review finding: the flush waited for a
// count of queued-or-running DPCs that never came back to 0).
namespace {
KTIMER g_requeue_timer;
KDPC g_requeue_dpc;
std::atomic<bool> g_requeue_stop{false};
std::atomic<int> g_requeue_runs{0};
void requeue_routine(PKDPC, PVOID, PVOID, PVOID) {
    g_requeue_runs.fetch_add(1);
    if (!g_requeue_stop.load()) {
        LARGE_INTEGER due;
        due.QuadPart = 0;  // an absolute time already past: due at once
        KeSetTimer(&g_requeue_timer, due, &g_requeue_dpc);
    }
}
}  // namespace

TEST_F(Timer, ADpcThatQueuesItselfAgainDoesNotHoldOffKeFlushQueuedDpcs) {
    KeInitializeTimer(&g_requeue_timer);
    KeInitializeDpc(&g_requeue_dpc, requeue_routine, nullptr);
    g_requeue_stop = false;
    g_requeue_runs = 0;
    LARGE_INTEGER due;
    due.QuadPart = 0;
    KeSetTimer(&g_requeue_timer, due, &g_requeue_dpc);
    ASSERT_TRUE(kmlab::test::eventually([] { return g_requeue_runs.load() > 10; }));
    // Two flushers, each flushing again and again: a flush must return
    // while another one switches the phases under it (review finding).
    std::atomic<int> returned{0};
    std::vector<std::thread> flushers;
    for (int f = 0; f < 2; ++f) {
        flushers.emplace_back([&] {
            for (int i = 0; i < 200; ++i) KeFlushQueuedDpcs();
            returned.fetch_add(1);
        });
    }
    // A bound for the failure only: a correct flush returns after the DPC
    // run in flight when it started, and the one queued then.
    const bool in_time = kmlab::test::eventually([&] { return returned.load() == 2; });
    g_requeue_stop = true;
    for (auto& f : flushers) f.join();
    KeFlushQueuedDpcs();  // the run that may have queued it once more after the stop
    KeCancelTimer(&g_requeue_timer);
    KeFlushQueuedDpcs();
    EXPECT_TRUE(in_time) << "KeFlushQueuedDpcs still waited after " << g_requeue_runs.load()
                         << " runs of a DPC that kept queueing itself";
    EXPECT_EQ(g_requeue_dpc.DpcData, nullptr);
}
