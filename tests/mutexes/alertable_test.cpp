// Alertable KMutex waits (wdk-mutex's issue #1), over the Dispatcher backend:
// ended by KeAlertThread and KeInsertQueueUserApc as KeWaitForSingleObject
// with Alertable = TRUE is (SEMANTICS.md 4.4, "Alerts and APCs").
#include <atomic>
#include <thread>

#include <kmlab/kmlab.hpp>
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::nt;
using namespace std::chrono_literals;

namespace {
template <class M>
concept CanLockAlertable = requires(M& m, Alertable a) {
    m.lock(a);
    m.lock_for(1ms, a);
};

// Offered where the kernel's own wait can be interrupted, and nowhere else:
// a KMUTEX's (KeWaitForSingleObject), not a FAST_MUTEX's or KGUARDED_MUTEX's
// acquisition, which never waits alertably, nor a futex or spin waiter's.
static_assert(CanLockAlertable<KMutex<int, backends::Dispatcher>>);
static_assert(!CanLockAlertable<KMutex<int, backends::Futex>>);
static_assert(!CanLockAlertable<KMutex<int, backends::Spin>>);
static_assert(!CanLockAlertable<FastMutex<int, backends::Dispatcher>>);
static_assert(!CanLockAlertable<GuardedMutex<int, backends::Dispatcher>>);

using M = KMutex<int, backends::Dispatcher>;

// Runs `wait` on a new thread once `m` is held by the caller, then `interrupt`
// on the caller with that thread's KTHREAD once it has really blocked.
template <class Wait, class Interrupt>
void while_waiting(M& m, Wait wait, Interrupt interrupt) {
    std::atomic<PKTHREAD> waiter{nullptr};
    std::thread th([&] {
        waiter = KeGetCurrentThread();
        wait();
    });
    ASSERT_TRUE(kmlab::test::waiters_reach(m.raw().native_handle(), 1));
    interrupt(waiter.load());
    th.join();
}

std::atomic<PKTHREAD> g_apc_ran_on{nullptr};
void record_apc(PVOID, PVOID, PVOID) {
    g_apc_ran_on = KeGetCurrentThread();
}
}  // namespace

class KMutexAlertable : public kmlab::test::Nt {
  protected:
    void SetUp() override { g_apc_ran_on = nullptr; }
};

TEST_F(KMutexAlertable, AnAlertEndsTheWaitWithoutAcquiring) {
    M m(0);
    auto held = m.lock();
    ASSERT_TRUE(held);
    while_waiting(
        m,
        [&] {
            auto r = m.lock(alertable);
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error().code, Errc::alerted);
            EXPECT_EQ(r.error().status, STATUS_ALERTED);
            EXPECT_EQ(r.error().mutex, &m);
            EXPECT_FALSE(r.error().is_bug_check());
            EXPECT_EQ(KeGetCurrentThread()->KernelApcDisable, 0) << "nothing acquired";
            EXPECT_FALSE(KeTestAlertThread(KernelMode)) << "the wait consumed the alert";
        },
        [&](PKTHREAD waiter) { EXPECT_FALSE(KeAlertThread(waiter, KernelMode)); });
    EXPECT_EQ(m.owner(), KeGetCurrentThread());
    EXPECT_EQ(m.signal_state(), 0);
    ASSERT_TRUE(held->unlock());
    EXPECT_TRUE(m.is_initial_state());
}

TEST_F(KMutexAlertable, ATimedWaitIsAlertedOrTimesOut) {
    M m(0);
    auto held = m.lock();
    ASSERT_TRUE(held);
    while_waiting(
        m,
        [&] {
            const auto t0 = std::chrono::steady_clock::now();
            auto r = m.lock_for(10s, alertable);
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error().code, Errc::alerted);
            EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "ended by the alert";
        },
        [&](PKTHREAD waiter) { KeAlertThread(waiter, KernelMode); });
    kmlab::test::on_new_thread([&] {
        auto r = m.lock_for(30ms, alertable);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::busy);
        EXPECT_EQ(r.error().status, STATUS_TIMEOUT);
    });
    ASSERT_TRUE(held->unlock());
}

TEST_F(KMutexAlertable, AUserApcEndsAUserModeWaitAfterRunningOnTheWaiter) {
    M m(0);
    auto held = m.lock();
    ASSERT_TRUE(held);
    while_waiting(
        m,
        [&] {
            auto r = m.lock(alertable_user);
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error().code, Errc::user_apc);
            EXPECT_EQ(r.error().status, STATUS_USER_APC);
            EXPECT_EQ(g_apc_ran_on.load(), KeGetCurrentThread()) << "the APC ran on the waiter";
        },
        [&](PKTHREAD waiter) {
            EXPECT_TRUE(KeInsertQueueUserApc(waiter, record_apc, nullptr, nullptr, nullptr));
        });
    EXPECT_EQ(m.owner(), KeGetCurrentThread());
    ASSERT_TRUE(held->unlock());
}

// SEMANTICS.md's matrix: a KernelMode alertable wait is interrupted by a
// kernel-mode alert only; a user APC or a user-mode alert waits for it.
TEST_F(KMutexAlertable, AKernelModeWaitIgnoresUserApcsAndUserModeAlerts) {
    M m(0);
    auto held = m.lock();
    ASSERT_TRUE(held);
    while_waiting(
        m,
        [&] {
            auto r = m.lock_for(200ms, alertable);
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error().code, Errc::busy) << "timed out, not interrupted";
            EXPECT_EQ(g_apc_ran_on.load(), nullptr) << "no user APC is delivered here";
            EXPECT_TRUE(KeTestAlertThread(UserMode)) << "the user-mode alert stayed pending";
        },
        [&](PKTHREAD waiter) {
            EXPECT_TRUE(KeInsertQueueUserApc(waiter, record_apc, nullptr, nullptr, nullptr));
            EXPECT_FALSE(KeAlertThread(waiter, UserMode));
        });
    ASSERT_TRUE(held->unlock());
}

// A UserMode alertable wait ends for a user-mode alert too.
TEST_F(KMutexAlertable, AUserModeWaitEndsForAUserModeAlert) {
    M m(0);
    auto held = m.lock();
    ASSERT_TRUE(held);
    while_waiting(
        m,
        [&] {
            auto r = m.lock(alertable_user);
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error().code, Errc::alerted);
        },
        [&](PKTHREAD waiter) { KeAlertThread(waiter, UserMode); });
    ASSERT_TRUE(held->unlock());
}

// The mutex wins over a pending alert; otherwise the alert ends the wait at
// once, even a zero-timeout one, whose alert is checked before its timeout.
TEST_F(KMutexAlertable, APendingAlertLosesToAFreeMutexAndEndsAnyOtherWait) {
    M m(5);
    KeAlertThread(KeGetCurrentThread(), KernelMode);
    {
        auto g = m.lock(alertable);
        ASSERT_TRUE(g) << g.error().message();
        EXPECT_EQ(**g, 5);
        auto nested = m.lock_for(0ms, alertable);
        ASSERT_TRUE(nested) << "the owner's recursive acquisition is satisfied too";
    }
    EXPECT_TRUE(KeTestAlertThread(KernelMode)) << "the alert is still pending";

    auto held = m.lock();
    ASSERT_TRUE(held);
    kmlab::test::on_new_thread([&] {
        KeAlertThread(KeGetCurrentThread(), KernelMode);
        auto polled = m.lock_for(0ms, alertable);
        ASSERT_FALSE(polled);
        EXPECT_EQ(polled.error().code, Errc::alerted);
        KeAlertThread(KeGetCurrentThread(), KernelMode);
        auto plain = m.lock_for(20ms);  // not alertable: times out, alert kept
        ASSERT_FALSE(plain);
        EXPECT_EQ(plain.error().code, Errc::busy);
        auto waited = m.lock(alertable);
        ASSERT_FALSE(waited);
        EXPECT_EQ(waited.error().code, Errc::alerted);
    });
    ASSERT_TRUE(held->unlock());
    EXPECT_TRUE(m.is_initial_state());
}

// Same IRQL rules as the non-alertable waits: a wait above APC_LEVEL is
// 0xC4/0x3B, a poll is legal at DISPATCH_LEVEL.
TEST_F(KMutexAlertable, TheIrqlRulesAreTheWaitsRules) {
    M m(0);
    const KIRQL old = KeRaiseIrqlToDpcLevel();
    auto waited = m.lock(alertable);
    auto timed = m.lock_for(10ms, alertable_user);
    bool polled_ok = false;
    {
        auto polled = m.lock_for(0ms, alertable);
        polled_ok = polled.has_value();
    }  // released at DISPATCH_LEVEL, which a KMUTEX allows
    KeLowerIrql(old);
    ASSERT_FALSE(waited);
    ASSERT_FALSE(timed);
    EXPECT_EQ(waited.error().code, Errc::irql_too_high);
    EXPECT_EQ(waited.error().bug_check, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(waited.error().bug_check_parameter1, bugcheck::VERIFIER_WAIT_AT_DISPATCH);
    EXPECT_EQ(timed.error().code, Errc::irql_too_high);
    EXPECT_TRUE(polled_ok);
    EXPECT_TRUE(m.is_initial_state());
}

// As lock() (KMutexNative.TheDispatcherBackendMayFollowAWaitTrueRelease): the
// alertable wait is KeWaitForSingleObject too, so after KeSetEvent(..., TRUE)
// its rule reads WaitIrql and the wait ends the hold. It once read the raised
// DISPATCH_LEVEL, refused, and left the thread holding the dispatcher lock.
TEST_F(KMutexAlertable, MayFollowAWaitTrueRelease) {
    M m(0);
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    KeSetEvent(&e, IO_NO_INCREMENT, TRUE);
    ASSERT_TRUE(KeGetCurrentThread()->WaitNext);
    auto g = m.lock(alertable);
    ASSERT_TRUE(g) << g.error().message();
    EXPECT_FALSE(KeGetCurrentThread()->WaitNext);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    EXPECT_TRUE(g->unlock());
}

// A wait refused inside a Wait = TRUE hold (here KeReleaseMutex(..., TRUE)
// at DISPATCH_LEVEL, where a wait with a timeout is illegal) gives the hold
// back, as KeWait's bug check does before it unwinds: the thread is left at
// its WaitIrql without the dispatcher lock, whichever lock form refused.
TEST_F(KMutexAlertable, ARefusedWaitInsideAWaitTrueHoldGivesTheHoldBack) {
    M m(0);
    KMUTEX x;
    KeInitializeMutex(&x, 0);
    for (int form = 0; form < 2; ++form) {
        ASSERT_EQ(KeWaitForSingleObject(&x, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
        const KIRQL old = KeRaiseIrqlToDpcLevel();
        KeReleaseMutex(&x, TRUE);
        ASSERT_TRUE(KeGetCurrentThread()->WaitNext);
        auto g = form == 0 ? m.lock() : m.lock(alertable);
        EXPECT_FALSE(g);
        if (!g) {
            EXPECT_EQ(g.error().code, Errc::irql_too_high);
        }
        EXPECT_FALSE(KeGetCurrentThread()->WaitNext) << form;
        EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL) << form;
        KeLowerIrql(old);
        // Takes the dispatcher lock: would wait forever had the hold been kept.
        EXPECT_EQ(KeReadStateMutex(&x), 1);
    }
    EXPECT_TRUE(m.is_initial_state());
}
