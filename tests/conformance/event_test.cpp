// SEMANTICS.md 4.2: events.
#include <atomic>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using Event = Nt;
namespace bugcheck = kmlab::bugcheck;

namespace {
NTSTATUS wait_on(PVOID o) {
    return KeWaitForSingleObject(o, Executive, KernelMode, FALSE, nullptr);
}
}  // namespace

TEST_F(Event, InitializeSetsTypeAndState) {
    KEVENT n, s;
    KeInitializeEvent(&n, NotificationEvent, TRUE);
    KeInitializeEvent(&s, SynchronizationEvent, FALSE);
    EXPECT_EQ(n.Header.Type, 0);
    EXPECT_EQ(s.Header.Type, 1);
    EXPECT_EQ(KeReadStateEvent(&n), 1);
    EXPECT_EQ(KeReadStateEvent(&s), 0);
}

// kmtest fills the event with 0x55 and checks Hand (the Size) and Lock &
// 0xFF00FF00: NT 6.1+ zeroes byte 1 (Signalling) and leaves byte 3, so it
// reads 0x55000000 (NT 5.x left both: 0x55005500) [kmt-KeEvent].
TEST_F(Event, InitializeZeroesSignallingAndLeavesHeaderByteThree) {
    KEVENT e;
    std::memset(&e, 0x55, sizeof e);
    KeInitializeEvent(&e, SynchronizationEvent, TRUE);
    EXPECT_EQ(e.Header.Type, SynchronizationEvent);
    EXPECT_EQ(e.Header.Hand, sizeof(KEVENT) / sizeof(ULONG));
    EXPECT_EQ(static_cast<ULONG>(e.Header.Lock) & 0xFF00FF00u, 0x55000000u);
    EXPECT_EQ(e.Header.Signalling, 0);
    EXPECT_EQ(e.Header.DpcActive, 0x55);
    EXPECT_EQ(e.Header.SignalState, 1);
}

TEST_F(Event, SetResetAndClearReturnThePreviousState) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    EXPECT_EQ(KeSetEvent(&e, IO_NO_INCREMENT, FALSE), 0);
    EXPECT_EQ(KeSetEvent(&e, IO_NO_INCREMENT, FALSE), 1);
    EXPECT_EQ(KeResetEvent(&e), 1);
    EXPECT_EQ(KeResetEvent(&e), 0);
    KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
    KeClearEvent(&e);
    EXPECT_EQ(KeReadStateEvent(&e), 0);
    // The state is normalized to 1; the raw old value is returned [kmt-KeEvent].
    e.Header.SignalState = 0x23456789;
    EXPECT_EQ(KeSetEvent(&e, IO_NO_INCREMENT, FALSE), 0x23456789);
    EXPECT_EQ(e.Header.SignalState, 1);
}

TEST_F(Event, ASynchronizationEventReleasesFiveWaitersOneAtATimeInFifoOrder) {
    KEVENT e;
    KeInitializeEvent(&e, SynchronizationEvent, FALSE);
    std::mutex order_lock;
    std::vector<int> order;
    std::vector<std::thread> waiters;
    for (int i = 0; i < 5; ++i) {
        waiters.emplace_back([&, i] {
            EXPECT_EQ(wait_on(&e), STATUS_SUCCESS);
            std::lock_guard g(order_lock);
            order.push_back(i);
        });
        // Each waiter blocks before the next arrives, fixing the FIFO order.
        ASSERT_TRUE(kmlab::test::waiters_reach(&e, static_cast<unsigned>(i + 1)));
    }
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(KeSetEvent(&e, IO_NO_INCREMENT, FALSE), 0);
        // Exactly one waiter is released, and the event resets itself.
        ASSERT_TRUE(kmlab::test::eventually([&] {
            std::lock_guard g(order_lock);
            return order.size() == static_cast<size_t>(i + 1);
        }));
        EXPECT_EQ(kmlab::dispatcher::waiter_count(&e), static_cast<ULONG>(4 - i));
        EXPECT_EQ(KeReadStateEvent(&e), 0);
    }
    for (auto& w : waiters) w.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_F(Event, ANotificationEventWakesEveryWaiterAndStaysSignaled) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    std::atomic<int> woken{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 5; ++i) {
        waiters.emplace_back([&] {
            EXPECT_EQ(wait_on(&e), STATUS_SUCCESS);
            woken.fetch_add(1);
        });
    }
    ASSERT_TRUE(kmlab::test::waiters_reach(&e, 5));
    KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
    for (auto& w : waiters) w.join();
    EXPECT_EQ(woken.load(), 5);
    EXPECT_EQ(KeReadStateEvent(&e), 1);
    EXPECT_EQ(wait_on(&e), STATUS_SUCCESS) << "later waits succeed at once";
}

TEST_F(Event, PulseWakesCurrentWaitersAndLeavesTheEventReset) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    std::vector<std::thread> waiters;
    for (int i = 0; i < 3; ++i)
        waiters.emplace_back([&] { EXPECT_EQ(wait_on(&e), STATUS_SUCCESS); });
    ASSERT_TRUE(kmlab::test::waiters_reach(&e, 3));
    EXPECT_EQ(KePulseEvent(&e, IO_NO_INCREMENT, FALSE), 0);
    for (auto& w : waiters) w.join();
    EXPECT_EQ(KeReadStateEvent(&e), 0);
    KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
    EXPECT_EQ(KePulseEvent(&e, IO_NO_INCREMENT, FALSE), 1);
    EXPECT_EQ(KeReadStateEvent(&e), 0);
}

TEST_F(Event, SetWithWaitTrueRaisesTheIrqlUntilTheNextWait) {
    KEVENT e, other;
    KeInitializeEvent(&e, SynchronizationEvent, FALSE);
    KeInitializeEvent(&other, NotificationEvent, TRUE);
    PKTHREAD t = KeGetCurrentThread();
    EXPECT_EQ(KeSetEvent(&e, IO_NO_INCREMENT, TRUE), 0);
    EXPECT_TRUE(t->WaitNext);
    EXPECT_EQ(t->WaitIrql, PASSIVE_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    // Another dispatcher routine inside the hold keeps it (no self-deadlock).
    EXPECT_EQ(KeReadStateEvent(&e), 1);
    EXPECT_EQ(KeWaitForSingleObject(&other, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    EXPECT_FALSE(t->WaitNext);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    // The dispatcher lock is free again: another thread can use it.
    kmlab::test::on_new_thread([&] { EXPECT_EQ(wait_on(&e), STATUS_SUCCESS); });
}

TEST_F(Event, IrqlCeilings) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    KIRQL old = KeRaiseIrqlToDpcLevel();
    EXPECT_EQ(KeSetEvent(&e, IO_NO_INCREMENT, FALSE), 0)
        << "Wait = FALSE is legal at DISPATCH_LEVEL";
    auto bc =
        EXPECT_BUG_CHECK(KeSetEvent(&e, IO_NO_INCREMENT, TRUE), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(bc.parameter(1), reinterpret_cast<ULONG_PTR>(&e));
    EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
    KIRQL high;
    KeRaiseIrql(HIGH_LEVEL, &high);
    EXPECT_BUG_CHECK(KeResetEvent(&e), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
}
