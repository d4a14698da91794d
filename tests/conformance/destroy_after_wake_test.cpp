// Destroy after wake: a thread may free a dispatcher object as soon as its
// wait on it returns, as std::mutex and POSIX allow for their objects. So a
// woken waiter must not return while the thread that woke it is still inside
// the dispatcher section that did it (still walking the object's wait list):
// the dispatcher publishes a wake only after it has released its lock.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "support.hpp"

using namespace kmlab::nt;
using namespace std::chrono_literals;
using kmlab::test::Nt;
using DestroyAfterWake = Nt;

namespace {
NTSTATUS wait_on(PVOID o) {
    return KeWaitForSingleObject(o, Executive, KernelMode, FALSE, nullptr);
}

// A no-op SIGUSR1 handler without SA_RESTART: each signal ends the target's
// futex sleep with EINTR, so its wait loop looks at its wake word again, as
// any spurious futex return makes it do.
class Interrupter {
  public:
    Interrupter() {
        struct sigaction sa {};
        sa.sa_handler = [](int) {};
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        sigaction(SIGUSR1, &sa, &old_);
    }
    ~Interrupter() { sigaction(SIGUSR1, &old_, nullptr); }
    Interrupter(const Interrupter&) = delete;
    Interrupter& operator=(const Interrupter&) = delete;

  private:
    struct sigaction old_ {};
};
}  // namespace

// Deterministic: KeSetEvent(..., TRUE) wakes the waiter and keeps the
// dispatcher lock for this thread's next wait. However often the waiter's
// sleep is interrupted, it must not return before that lock is given back.
// Before the fix the wake word was set under the lock, and the first
// interrupted sleep returned from the wait.
TEST_F(DestroyAfterWake, AWokenWaiterDoesNotReturnWhileItsWakerHoldsTheDispatcherLock) {
    Interrupter interrupter;
    auto* e = new KEVENT;
    KeInitializeEvent(e, SynchronizationEvent, FALSE);
    std::atomic<bool> returned{false};
    std::thread waiter([&] {
        EXPECT_EQ(wait_on(e), STATUS_SUCCESS);
        returned.store(true);
        delete e;  // the waiter owns the event now
    });
    ASSERT_TRUE(kmlab::test::waiters_reach(e, 1));
    KeSetEvent(e, IO_NO_INCREMENT, TRUE);
    for (int i = 0; i < 50 && !returned.load(); ++i) {
        pthread_kill(waiter.native_handle(), SIGUSR1);
        std::this_thread::sleep_for(1ms);
    }
    EXPECT_FALSE(returned.load()) << "the waiter returned while the setter still held the lock";
    KEVENT signaled;
    KeInitializeEvent(&signaled, NotificationEvent, TRUE);
    EXPECT_EQ(wait_on(&signaled), STATUS_SUCCESS);  // ends the hold: now the waiter runs
    waiter.join();
    EXPECT_TRUE(returned.load());
}

// Stress for AddressSanitizer: the waiter frees the event the moment its
// wait returns, while the setter may still be inside KeSetEvent; and a
// fast mutex is freed by the last thread to release it.
TEST_F(DestroyAfterWake, AnEventFreedAsSoonAsItsWaitReturns) {
    Interrupter interrupter;
    constexpr int kRounds = 1000;
    std::atomic<KEVENT*> current{nullptr};
    std::atomic<int> done{0};
    std::atomic<bool> stop{false};
    std::thread waiter([&] {
        for (int round = 1; round <= kRounds; ++round) {
            KEVENT* e;
            while ((e = current.load()) == nullptr) std::this_thread::yield();
            current.store(nullptr);
            EXPECT_EQ(wait_on(e), STATUS_SUCCESS);
            delete e;
            done.store(round);
        }
    });
    const pthread_t waiter_handle = waiter.native_handle();
    std::thread interrupts([&] {
        while (!stop.load()) {
            pthread_kill(waiter_handle, SIGUSR1);
            std::this_thread::sleep_for(50us);
        }
    });
    for (int round = 1; round <= kRounds; ++round) {
        auto* e = new KEVENT;
        KeInitializeEvent(e, round % 2 ? SynchronizationEvent : NotificationEvent, FALSE);
        current.store(e);
        while (kmlab::dispatcher::waiter_count(e) == 0) {
        }
        KeSetEvent(e, IO_NO_INCREMENT, FALSE);
        while (done.load() != round) std::this_thread::yield();
    }
    stop.store(true);
    interrupts.join();
    waiter.join();
}

// The same for a FAST_MUTEX: the releaser wakes the waiter through the
// mutex's KEVENT; the waiter, now owner, knows the releaser is done with the
// mutex (std::mutex's rule), releases it and frees it at once.
TEST_F(DestroyAfterWake, AFastMutexFreedByTheOwnerItWasHandedTo) {
    Interrupter interrupter;
    constexpr int kRounds = 300;
    for (int round = 0; round < kRounds; ++round) {
        auto* fm = new FAST_MUTEX;
        ExInitializeFastMutex(fm);
        ExAcquireFastMutex(fm);
        std::thread next([fm] {
            ExAcquireFastMutex(fm);  // queued on fm->Event: woken by the release below
            ExReleaseFastMutex(fm);
            delete fm;
        });
        while (kmlab::dispatcher::waiter_count(&fm->Event) == 0)
            pthread_kill(next.native_handle(), SIGUSR1);
        pthread_kill(next.native_handle(), SIGUSR1);
        ExReleaseFastMutex(fm);  // the last use of fm by this thread
        next.join();
    }
}
