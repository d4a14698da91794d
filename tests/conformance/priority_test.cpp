// Thread priorities and the boost a satisfied wait gives (routines.hpp
// "Priorities"): KeQueryPriorityThread, KeSetPriorityThread, and the
// increments of KeSetEvent, KePulseEvent, KeReleaseSemaphore, KeReleaseMutex
// and KeAlertThread. The expectations are kmtest's where it has them
// [kmt-KeEvent]; the boost rule is the kernel's unwait adjustment
// [ros-thrdschd].
#include <algorithm>
#include <atomic>
#include <vector>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using kmlab::test::waiters_reach;
using Priority = Nt;
namespace bugcheck = kmlab::bugcheck;

namespace {

// A system thread that waits once on `object` (as kmtest's
// WaitForEventThread), referenced so that its priority can be read after it
// has exited.
struct Waiter {
    PVOID object = nullptr;
    BOOLEAN alertable = FALSE;
    std::atomic<NTSTATUS> status{STATUS_PENDING};
    HANDLE handle = nullptr;
    PKTHREAD thread = nullptr;

    static void main(PVOID context) {
        auto* w = static_cast<Waiter*>(context);
        w->status = KeWaitForSingleObject(w->object, Executive, KernelMode, w->alertable, nullptr);
    }
    void start(PVOID waited_on, unsigned waiters_before, BOOLEAN alertable_wait = FALSE) {
        object = waited_on;
        alertable = alertable_wait;
        OBJECT_ATTRIBUTES attributes;
        InitializeObjectAttributes(&attributes, nullptr, OBJ_KERNEL_HANDLE, nullptr, nullptr);
        ASSERT_EQ(
            PsCreateSystemThread(&handle, GENERIC_ALL, &attributes, nullptr, nullptr, main, this),
            STATUS_SUCCESS);
        PVOID o = nullptr;
        ASSERT_EQ(
            ObReferenceObjectByHandle(handle, SYNCHRONIZE, *PsThreadType, KernelMode, &o, nullptr),
            STATUS_SUCCESS);
        thread = static_cast<PKTHREAD>(o);
        ASSERT_TRUE(waiters_reach(object, waiters_before + 1));
    }
    // Joins the thread; returns the priority it ended its wait with.
    KPRIORITY finish() {
        EXPECT_EQ(KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, nullptr),
                  STATUS_SUCCESS);
        const KPRIORITY p = KeQueryPriorityThread(thread);
        ObDereferenceObject(thread);
        EXPECT_EQ(ZwClose(handle), STATUS_SUCCESS);
        return p;
    }
};

KPRIORITY expected_boost(KPRIORITY base, KPRIORITY increment) {
    return std::max(std::min(base + increment, KPRIORITY{15}), base);
}

}  // namespace

// Every thread starts at 8: kmtest's own thread and each system thread it
// creates [kmt-KeEvent].
TEST_F(Priority, ThreadsStartAtEight) {
    kmlab::test::on_new_thread([] { EXPECT_EQ(KeQueryPriorityThread(KeGetCurrentThread()), 8); });
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    Waiter w;
    w.start(&e, 0);
    EXPECT_EQ(KeQueryPriorityThread(w.thread), 8);
    KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
    EXPECT_EQ(w.finish(), 8);
}

// kmtest's TestEventConcurrent: five waiters; a synchronization event's i-th
// KeSetEvent(Increment + i) boosts the one thread it wakes to
// max(min(8 + Increment + i, 15), 8); a notification event's first
// KeSetEvent wakes all five, each boosted by that one increment
// [kmt-KeEvent]. Increment -1 is the free-build case: no boost.
TEST_F(Priority, KeSetEventBoostsTheThreadsItWakesAsKmtestExpects) {
    const KPRIORITY mine = KeQueryPriorityThread(KeGetCurrentThread());
    const kmlab::Flavor saved = kmlab::flavor();
    for (KPRIORITY increment = -1; increment <= 8; ++increment) {
        // kmtest runs a negative increment on free builds only: checked ones
        // ASSERT (see ANegativeIncrementThatReadiesAThreadIsAFailedAssertWhenChecked).
        kmlab::set_flavor(increment < 0 ? kmlab::Flavor::free : saved);
        for (EVENT_TYPE type : {SynchronizationEvent, NotificationEvent}) {
            KEVENT e;
            KeInitializeEvent(&e, type, FALSE);
            std::vector<Waiter> waiters(5);
            for (unsigned i = 0; i < waiters.size(); ++i) waiters[i].start(&e, i);
            if (type == NotificationEvent) {
                KeSetEvent(&e, increment, FALSE);
                for (auto& w : waiters) EXPECT_EQ(w.finish(), expected_boost(8, increment));
            } else {
                // Waiters wake FIFO, one per set.
                for (unsigned i = 0; i < waiters.size(); ++i) {
                    const KPRIORITY inc = increment + static_cast<KPRIORITY>(i);
                    EXPECT_EQ(KeSetEvent(&e, inc, FALSE), 0);
                    EXPECT_EQ(waiters[i].finish(), expected_boost(8, inc))
                        << "increment " << increment << ", waiter " << i;
                }
            }
            EXPECT_EQ(KeQueryPriorityThread(KeGetCurrentThread()), mine)
                << "the waker is not boosted";
        }
    }
    kmlab::set_flavor(saved);
}

TEST_F(Priority, KePulseEventBoostsLikeKeSetEvent) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    Waiter a, b;
    a.start(&e, 0);
    b.start(&e, 1);
    KePulseEvent(&e, 4, FALSE);
    EXPECT_EQ(a.finish(), 12);
    EXPECT_EQ(b.finish(), 12);
}

TEST_F(Priority, KeReleaseSemaphoreAndKeReleaseMutexBoostByTheirIncrements) {
    KSEMAPHORE s;
    KeInitializeSemaphore(&s, 0, 10);
    Waiter w;
    w.start(&s, 0);
    KeReleaseSemaphore(&s, 3, 1, FALSE);
    EXPECT_EQ(w.finish(), 11);

    // KeReleaseMutex gives MUTANT_INCREMENT (1) [ros-mutex].
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    ASSERT_EQ(KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    struct MutexWaiter {
        static void main(PVOID context) {
            auto* mutex = static_cast<PKMUTEX>(context);
            KeWaitForSingleObject(mutex, Executive, KernelMode, FALSE, nullptr);
            KeReleaseMutex(mutex, FALSE);
        }
    };
    HANDLE h;
    ASSERT_EQ(
        PsCreateSystemThread(&h, GENERIC_ALL, nullptr, nullptr, nullptr, MutexWaiter::main, &m),
        STATUS_SUCCESS);
    PVOID o;
    ASSERT_EQ(ObReferenceObjectByHandle(h, SYNCHRONIZE, *PsThreadType, KernelMode, &o, nullptr),
              STATUS_SUCCESS);
    ASSERT_TRUE(waiters_reach(&m, 1));
    KeReleaseMutex(&m, FALSE);
    ASSERT_EQ(KeWaitForSingleObject(o, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    EXPECT_EQ(KeQueryPriorityThread(static_cast<PKTHREAD>(o)), 8 + MUTANT_INCREMENT);
    ObDereferenceObject(o);
    ZwClose(h);
}

// THREAD_ALERT_INCREMENT (2) [ros-thrd].
TEST_F(Priority, AnAlertThatEndsAWaitBoostsByTwo) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    Waiter w;
    w.start(&e, 0, TRUE);
    KeAlertThread(w.thread, KernelMode);
    EXPECT_EQ(w.finish(), 10);
    EXPECT_EQ(w.status.load(), STATUS_ALERTED);
}

// kmtest's CountThread: a thread woken again and again with the same
// increment ends at 8 + min(Increment, 7): boosts do not add up, and never
// pass 15 [kmt-KeEvent].
TEST_F(Priority, RepeatedBoostsDoNotAccumulate) {
    const KPRIORITY mine = KeQueryPriorityThread(KeGetCurrentThread());
    for (KPRIORITY increment : {1, 7, 8}) {
        KEVENT go, ready;
        KeInitializeEvent(&go, SynchronizationEvent, FALSE);
        KeInitializeEvent(&ready, SynchronizationEvent, FALSE);
        struct Count {
            PKEVENT go, ready;
            KPRIORITY end = 0;
            static void main(PVOID context) {
                auto* c = static_cast<Count*>(context);
                for (int i = 0; i < 50; ++i) {
                    // Wait = TRUE, as kmtest: the set and the wait are one
                    // step, so the wait blocks and is satisfied by the waker
                    // (a wait satisfied at once gets no boost).
                    KeSetEvent(c->ready, IO_NO_INCREMENT, TRUE);
                    KeWaitForSingleObject(c->go, Executive, KernelMode, FALSE, nullptr);
                }
                c->end = KeQueryPriorityThread(KeGetCurrentThread());
            }
        } count{&go, &ready};
        HANDLE h;
        ASSERT_EQ(
            PsCreateSystemThread(&h, GENERIC_ALL, nullptr, nullptr, nullptr, Count::main, &count),
            STATUS_SUCCESS);
        for (int i = 0; i < 50; ++i) {
            ASSERT_EQ(KeWaitForSingleObject(&ready, Executive, KernelMode, FALSE, nullptr),
                      STATUS_SUCCESS);
            KeSetEvent(&go, increment, FALSE);
        }
        ASSERT_EQ(ZwWaitForSingleObject(h, FALSE, nullptr), STATUS_SUCCESS);
        ZwClose(h);
        EXPECT_EQ(count.end, 8 + std::min(increment, KPRIORITY{7}));
        EXPECT_EQ(KeQueryPriorityThread(KeGetCurrentThread()), mine);
    }
}

// KeSetPriorityThread returns the previous priority and leaves the base: a
// later boost starts from the base again [ros-thrd][ros-thrdschd].
TEST_F(Priority, SetPriorityReturnsThePreviousOneAndKeepsTheBase) {
    // On a new thread: its priority starts at 8 whatever earlier tests did to
    // this one's.
    kmlab::test::on_new_thread([] {
        PKTHREAD self = KeGetCurrentThread();
        EXPECT_EQ(KeSetPriorityThread(self, 12), 8);
        EXPECT_EQ(KeQueryPriorityThread(self), 12);
        EXPECT_EQ(self->BasePriority, 8);
        EXPECT_EQ(KeSetPriorityThread(self, 0), 12);
        EXPECT_EQ(KeQueryPriorityThread(self), 1) << "0 becomes 1 when the base is not 0";
        EXPECT_EQ(KeSetPriorityThread(self, 8), 1);
    });
}

TEST_F(Priority, ABoostNeverLowersAndSkipsRealTimeThreads) {
    KEVENT e;
    KeInitializeEvent(&e, SynchronizationEvent, FALSE);

    // Above base + increment already: unchanged.
    Waiter high;
    high.start(&e, 0);
    KeSetPriorityThread(high.thread, 14);
    KeSetEvent(&e, 2, FALSE);
    EXPECT_EQ(high.finish(), 14);

    // Real time (16 and up): no boost at all.
    Waiter realtime;
    realtime.start(&e, 0);
    KeSetPriorityThread(realtime.thread, LOW_REALTIME_PRIORITY);
    KeSetEvent(&e, 5, FALSE);
    EXPECT_EQ(realtime.finish(), LOW_REALTIME_PRIORITY);

    // Set below its base: any wake, even with no increment, brings it back
    // to base + increment.
    Waiter low;
    low.start(&e, 0);
    KeSetPriorityThread(low.thread, 4);
    KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
    EXPECT_EQ(low.finish(), 8);
}

TEST_F(Priority, OutOfRangeOrAboveDispatchLevelBugChecks) {
    // On a new thread: its priority starts at 8 whatever earlier tests did to
    // this one's.
    kmlab::test::on_new_thread([] {
        PKTHREAD self = KeGetCurrentThread();
        const auto bc = EXPECT_BUG_CHECK(KeSetPriorityThread(self, HIGH_PRIORITY + 1),
                                         bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
        EXPECT_EQ(bc.parameter(1), static_cast<ULONG>(STATUS_BREAKPOINT));
        EXPECT_BUG_CHECK(KeSetPriorityThread(self, -1), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
        EXPECT_EQ(KeQueryPriorityThread(self), 8);
        KIRQL old;
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        EXPECT_EQ(KeSetPriorityThread(self, 9), 8) << "DISPATCH_LEVEL is allowed";
        EXPECT_EQ(KeQueryPriorityThread(self), 9);
        KeSetPriorityThread(self, 8);
        KeRaiseIrql(HIGH_LEVEL, &old);
        EXPECT_BUG_CHECK(KeQueryPriorityThread(self), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
        KeLowerIrql(PASSIVE_LEVEL);
    });
}

// The kernel keeps the increment in a SCHAR (KTHREAD::AdjustIncrement)
// [ros-thrdschd]: a huge one wraps to a negative one, which boosts nothing,
// instead of overflowing BasePriority + Increment.
TEST_F(Priority, AHugeIncrementIsTruncatedAsTheKernelStoresIt) {
    kmlab::Flavor saved = kmlab::flavor();
    kmlab::set_flavor(kmlab::Flavor::free);  // a negative increment ASSERTs when checked
    KEVENT e;
    KeInitializeEvent(&e, SynchronizationEvent, FALSE);
    Waiter w;
    w.start(&e, 0);
    KeSetEvent(&e, 0x7FFFFFFF, FALSE);  // (SCHAR)0x7FFFFFFF == -1
    EXPECT_EQ(w.finish(), 8);
    Waiter v;
    v.start(&e, 0);
    KeSetEvent(&e, 0x103, FALSE);  // (SCHAR)0x103 == 3
    EXPECT_EQ(v.finish(), 11);
    kmlab::set_flavor(saved);
}

// A negative increment for a thread it readies fails the kernel's ASSERT
// (AdjustIncrement >= 0, on the branch for threads below the real-time
// range) [ros-thrdschd]: kmtest skips negative increments on checked builds
// [kmt-KeEvent]. Checked flavour: 0x1E with STATUS_BREAKPOINT once the
// routine has done its work (the thread is woken, as the kernel had readied
// it when it broke in); free: the boost rule as it is, which cannot raise a
// thread at its base. Nothing is asserted where nothing is readied, and a
// routine's own failure comes first.
TEST_F(Priority, ANegativeIncrementThatReadiesAThreadIsAFailedAssertWhenChecked) {
    kmlab::Flavor saved = kmlab::flavor();
    kmlab::set_flavor(kmlab::Flavor::checked);
    KEVENT e;
    KeInitializeEvent(&e, SynchronizationEvent, FALSE);
    EXPECT_EQ(KeSetEvent(&e, -1, FALSE), 0) << "no waiter: nothing to assert";
    KeClearEvent(&e);
    Waiter w;
    w.start(&e, 0);
    const auto bc =
        EXPECT_BUG_CHECK(KeSetEvent(&e, -1, FALSE), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_EQ(bc.parameter(1), static_cast<ULONG>(STATUS_BREAKPOINT));
    EXPECT_EQ(w.finish(), 8) << "woken, and not boosted";
    EXPECT_EQ(w.status.load(), STATUS_SUCCESS);

    // A real-time waiter takes the other branch: no ASSERT.
    Waiter realtime;
    realtime.start(&e, 0);
    KeSetPriorityThread(realtime.thread, LOW_REALTIME_PRIORITY + 4);
    EXPECT_EQ(KeSetEvent(&e, -1, FALSE), 0);
    EXPECT_EQ(realtime.finish(), LOW_REALTIME_PRIORITY + 4);

    // Nothing readied: a set of a signaled event, a recursive release that
    // leaves the mutant owned.
    KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
    EXPECT_EQ(KeSetEvent(&e, -1, FALSE), 1);
    KeClearEvent(&e);
    KMUTANT m;
    KeInitializeMutant(&m, TRUE);
    ASSERT_EQ(KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    EXPECT_EQ(KeReleaseMutant(&m, -1, FALSE, FALSE), -1) << "still owned once";
    // The routine's own failure first: a release that may not happen raises.
    KSEMAPHORE s;
    KeInitializeSemaphore(&s, 0, 1);
    Waiter on_semaphore;
    on_semaphore.start(&s, 0);
    EXPECT_RAISES(KeReleaseSemaphore(&s, -1, 5, FALSE), STATUS_SEMAPHORE_LIMIT_EXCEEDED);
    kmlab::test::on_new_thread(
        [&] { EXPECT_RAISES(KeReleaseMutant(&m, -1, FALSE, FALSE), STATUS_MUTANT_NOT_OWNED); });
    EXPECT_EQ(KeReleaseMutant(&m, MUTANT_INCREMENT, FALSE, FALSE), 0);
    KeReleaseSemaphore(&s, IO_NO_INCREMENT, 1, FALSE);
    EXPECT_EQ(on_semaphore.finish(), 8);

    // Free: the same set wakes the thread with no boost and no report.
    kmlab::set_flavor(kmlab::Flavor::free);
    Waiter free_waiter;
    free_waiter.start(&e, 0);
    EXPECT_EQ(KeSetEvent(&e, -1, FALSE), 0);
    EXPECT_EQ(free_waiter.finish(), 8);
    kmlab::set_flavor(saved);
}

// A wait that times out is unwaited with the timer's increment, 0 [ros-thrdschd]:
// no boost at the base, and a thread set below its base comes back to it.
// On new threads: their priority starts at 8 whatever earlier tests did to
// this one's.
TEST_F(Priority, ATimedOutWaitIsUnwaitedWithNoIncrement) {
    for (KPRIORITY set_to : {8, 4}) {
        kmlab::test::on_new_thread([set_to] {
            PKTHREAD self = KeGetCurrentThread();
            KeSetPriorityThread(self, set_to);
            KEVENT e;
            KeInitializeEvent(&e, SynchronizationEvent, FALSE);
            LARGE_INTEGER timeout;
            timeout.QuadPart = -10 * 1000;  // 1 ms
            EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &timeout),
                      STATUS_TIMEOUT);
            EXPECT_EQ(KeQueryPriorityThread(self), 8) << "set to " << set_to;
        });
    }
}
