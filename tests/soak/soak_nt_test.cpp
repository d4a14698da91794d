// The soak of the NT face (soak_test.cpp says what the soak is and how it
// runs): timed waits racing KeSetEvent and KeReleaseMutex (exact accounting:
// no wake lost, none consumed twice, no impossible status), and WaitAny /
// WaitAll over mutexes and events used as locks, in both dispatcher lock
// modes (global, per-object). Their wait count is KMLAB_SOAK_ACQUISITIONS /
// 100 per test and lock mode.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <kmlab/kmlab_nt.hpp>
#include "soak_harness.hpp"
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::nt;
using namespace kmlab::soak;

namespace {

// A short busy wait: keeps a thread runnable (unlike a sleep) for `n` spins.
void spin(unsigned n) {
    for (unsigned i = 0; i < n; ++i) __builtin_ia32_pause();
}

using dispatcher::LockMode;
constexpr std::array kModes{LockMode::global, LockMode::per_object};
const char* mode_name(LockMode m) {
    return m == LockMode::global ? "global" : "per-object";
}

// A relative timeout of `us` microseconds (0: a poll).
LARGE_INTEGER after_us(unsigned us) {
    return kmlab::kernel::relative_timeout(std::chrono::microseconds(us));
}

// Short timeouts, polls and (where `infinite` allows) infinite waits, mixed.
PLARGE_INTEGER pick_timeout(std::minstd_rand& rng, LARGE_INTEGER& storage, bool infinite) {
    const unsigned r = rng() % 8;
    if (infinite && r < 2) return nullptr;
    storage = after_us(r == 2 ? 0 : static_cast<unsigned>(rng() % 300));
    return &storage;
}

void check_thread_clean(Stats& stats) {
    const PKTHREAD t = KeGetCurrentThread();
    if (t->Irql != PASSIVE_LEVEL || t->CombinedApcDisable != 0)
        stats.violation("thread left at IRQL %d with CombinedApcDisable %u", t->Irql,
                        static_cast<unsigned>(t->CombinedApcDisable));
}

class SoakNt : public kmlab::test::Nt {
  protected:
    void TearDown() override {
        dispatcher::set_lock_mode(saved_);
        Nt::TearDown();
    }
    LockMode saved_ = dispatcher::lock_mode();
};

// Synchronization-event waiters with short timeouts race setters. Exact
// accounting: every KeSetEvent that found the event non-signaled (returned 0)
// either satisfied one waiter or left the event signaled, so
//   sets that returned 0 == successful waits + final state.
// A wake lost to a racing timeout, or consumed twice, breaks the equation.
TEST_F(SoakNt, TimeoutsRaceKeSetEvent) {
    for (LockMode mode : kModes) {
        dispatcher::set_lock_mode(mode);
        constexpr int kWaiters = 3, kSetters = 2;
        const std::uint64_t budget = nt_waits();
        Stats stats(std::string("nt.KeSetEvent-vs-timeout[") + mode_name(mode) + "]", budget);
        KEVENT e;
        KeInitializeEvent(&e, SynchronizationEvent, FALSE);
        std::atomic<std::uint64_t> claimed{0}, effective{0}, consumed{0}, timeouts{0};
        std::atomic<int> waiters_left{kWaiters};
        std::latch start(kWaiters + kSetters);
        std::vector<std::thread> pool;
        for (int i = 0; i < kWaiters; ++i) {
            pool.emplace_back([&, i] {
                std::minstd_rand rng(static_cast<unsigned>(i + 1));
                start.arrive_and_wait();
                while (claimed.fetch_add(64) < budget) {
                    for (int k = 0; k < 64; ++k) {
                        LARGE_INTEGER storage;
                        const NTSTATUS s = KeWaitForSingleObject(&e, Executive, KernelMode, FALSE,
                                                                 pick_timeout(rng, storage, false));
                        if (s == STATUS_SUCCESS)
                            consumed.fetch_add(1, std::memory_order_relaxed);
                        else if (s == STATUS_TIMEOUT)
                            timeouts.fetch_add(1, std::memory_order_relaxed);
                        else
                            stats.violation("impossible wait status 0x%08x",
                                            static_cast<unsigned>(s));
                    }
                    stats.done(64);
                }
                check_thread_clean(stats);
                waiters_left.fetch_sub(1);
            });
        }
        for (int i = 0; i < kSetters; ++i) {
            pool.emplace_back([&, i] {
                std::minstd_rand rng(static_cast<unsigned>(1000 + i));
                KEVENT never;  // the wait that ends a Wait = TRUE hold
                KeInitializeEvent(&never, NotificationEvent, FALSE);
                start.arrive_and_wait();
                while (waiters_left.load(std::memory_order_relaxed) > 0) {
                    const unsigned r = rng() % 16;
                    const BOOLEAN wait = r == 0;
                    const LONG previous = KeSetEvent(&e, IO_NO_INCREMENT, wait);
                    if (wait) {
                        LARGE_INTEGER z = after_us(0);
                        if (const NTSTATUS s =
                                KeWaitForSingleObject(&never, Executive, KernelMode, FALSE, &z);
                            s != STATUS_TIMEOUT)
                            stats.violation("Wait = TRUE hold: status 0x%08x",
                                            static_cast<unsigned>(s));
                    }
                    if (previous == 0)
                        effective.fetch_add(1, std::memory_order_relaxed);
                    else if (previous != 1)
                        stats.violation("KeSetEvent returned %d", previous);
                    // Pace the sets to the waiters' timeouts: sleep or spin a little.
                    if (r < 4)
                        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 100));
                    else
                        spin(static_cast<unsigned>(rng() % 2000));
                }
                check_thread_clean(stats);
            });
        }
        for (auto& t : pool) t.join();
        const LONG state = KeReadStateEvent(&e);
        if (effective.load() != consumed.load() + static_cast<std::uint64_t>(state))
            stats.violation(
                "%llu effective sets, %llu satisfied waits, final state %d: a wake "
                "was lost or consumed twice",
                static_cast<unsigned long long>(effective.load()),
                static_cast<unsigned long long>(consumed.load()), state);
        if (!IsListEmpty(&e.Header.WaitListHead)) stats.violation("wait list not empty");
        // '(' + std::string here and below, not "(" + ...: GCC 12 reports a false
        // -Wrestrict on a one-letter literal + std::string&&.
        stats.report("waits       ", '(' + std::to_string(consumed.load()) + " satisfied, " +
                                         std::to_string(timeouts.load()) + " timed out)");
    }
}

// KMUTEX waiters with short, zero and infinite timeouts race owners that
// release (sometimes with Wait = TRUE, then wait again at once), recursion
// mixed in. Every status is SUCCESS or TIMEOUT; the counter equals the
// acquisitions; the mutex ends free with an empty wait list.
TEST_F(SoakNt, TimeoutsRaceKeReleaseMutex) {
    for (LockMode mode : kModes) {
        dispatcher::set_lock_mode(mode);
        constexpr int kThreads = 5;
        const std::uint64_t budget = nt_waits();
        Stats stats(std::string("nt.KeReleaseMutex-vs-timeout[") + mode_name(mode) + "]", budget);
        KMUTEX m;
        KeInitializeMutex(&m, 0);
        long counter = 0;  // guarded by m
        std::atomic<bool> inside{false};
        std::atomic<std::uint64_t> claimed{0}, acquired{0}, timeouts{0};
        std::latch start(kThreads);
        std::vector<std::thread> pool;
        for (int i = 0; i < kThreads; ++i) {
            pool.emplace_back([&, i] {
                std::minstd_rand rng(static_cast<unsigned>(i + 77));
                start.arrive_and_wait();
                bool held = false;  // acquired by the wait that ended a Wait = TRUE hold
                while (claimed.fetch_add(64) < budget) {
                    for (int k = 0; k < 64; ++k) {
                        if (!held) {
                            LARGE_INTEGER storage;
                            const NTSTATUS s = KeWaitForSingleObject(
                                &m, Executive, KernelMode, FALSE, pick_timeout(rng, storage, true));
                            if (s == STATUS_TIMEOUT) {
                                timeouts.fetch_add(1, std::memory_order_relaxed);
                                continue;
                            }
                            if (s != STATUS_SUCCESS) {
                                stats.violation("impossible wait status 0x%08x",
                                                static_cast<unsigned>(s));
                                continue;
                            }
                        }
                        held = false;
                        acquired.fetch_add(1, std::memory_order_relaxed);
                        if (inside.exchange(true, std::memory_order_acquire))
                            stats.violation("two owners of a KMUTEX");
                        const long before = counter;
                        if (rng() % 64 == 0) std::this_thread::yield();
                        counter = before + 1;
                        if (rng() % 16 == 0) {  // recursive: SignalState -1, release returns -1
                            if (KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr) !=
                                STATUS_SUCCESS)
                                stats.violation("recursive acquisition failed");
                            if (const LONG r = KeReleaseMutex(&m, FALSE); r != -1)
                                stats.violation("inner KeReleaseMutex returned %d", r);
                        }
                        inside.store(false, std::memory_order_release);
                        const BOOLEAN wait = rng() % 8 == 0;
                        if (const LONG r = KeReleaseMutex(&m, wait); r != 0)
                            stats.violation("KeReleaseMutex returned %d", r);
                        if (wait) {  // the hold ends with a short wait for the mutex again
                            LARGE_INTEGER t = after_us(static_cast<unsigned>(rng() % 50));
                            const NTSTATUS s =
                                KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, &t);
                            if (s == STATUS_SUCCESS)
                                held = true;
                            else if (s == STATUS_TIMEOUT)
                                timeouts.fetch_add(1, std::memory_order_relaxed);
                            else
                                stats.violation("impossible wait status 0x%08x after a hold",
                                                static_cast<unsigned>(s));
                        }
                    }
                    stats.done(64);
                }
                if (held) {  // a budget that ended inside a hold's acquisition
                    acquired.fetch_add(1, std::memory_order_relaxed);
                    ++counter;
                    KeReleaseMutex(&m, FALSE);
                }
                check_thread_clean(stats);
            });
        }
        for (auto& t : pool) t.join();
        if (static_cast<std::uint64_t>(counter) != acquired.load())
            stats.violation("counter %ld, %llu acquisitions: mutual exclusion lost", counter,
                            static_cast<unsigned long long>(acquired.load()));
        if (KeReadStateMutex(&m) != 1) stats.violation("state %d at the end", KeReadStateMutex(&m));
        if (m.OwnerThread != nullptr) stats.violation("still owned at the end");
        if (!IsListEmpty(&m.Header.WaitListHead)) stats.violation("wait list not empty");
        stats.report("waits       ", '(' + std::to_string(acquired.load()) + " acquired, " +
                                         std::to_string(timeouts.load()) + " timed out)");
    }
}

// WaitAny / WaitAll over 1-4 of three KMUTEXes and two synchronization events
// (signaled when free: used as locks), infinite, zero and short timeouts.
// Whatever a wait reports acquired must be exclusively held; a timed-out
// WaitAll must have consumed nothing; every object ends free.
TEST_F(SoakNt, WaitAnyWaitAllOverMutexesAndEvents) {
    for (LockMode mode : kModes) {
        dispatcher::set_lock_mode(mode);
        constexpr int kThreads = 5, kMutexes = 3, kEvents = 2, kObjects = kMutexes + kEvents;
        const std::uint64_t budget = nt_waits();
        Stats stats(std::string("nt.WaitAny-WaitAll[") + mode_name(mode) + "]", budget);
        std::array<KMUTEX, kMutexes> mutexes;
        std::array<KEVENT, kEvents> events;
        std::array<PVOID, kObjects> objects;
        for (int i = 0; i < kMutexes; ++i) {
            KeInitializeMutex(&mutexes[i], 0);
            objects[i] = &mutexes[i];
        }
        for (int i = 0; i < kEvents; ++i) {
            KeInitializeEvent(&events[i], SynchronizationEvent, TRUE);
            objects[kMutexes + i] = &events[i];
        }
        std::array<long, kObjects> counters{};  // counters[i] guarded by objects[i]
        std::array<std::atomic<bool>, kObjects> inside{};
        std::array<std::atomic<std::uint64_t>, kObjects> taken{};
        std::atomic<std::uint64_t> claimed{0}, any_ok{0}, all_ok{0}, timeouts{0};
        std::latch start(kThreads);
        std::vector<std::thread> pool;
        for (int i = 0; i < kThreads; ++i) {
            pool.emplace_back([&, i] {
                std::minstd_rand rng(static_cast<unsigned>(i + 4242));
                std::array<KWAIT_BLOCK, 4> blocks;
                std::array<int, kObjects> order{0, 1, 2, 3, 4};
                auto hold = [&](int o) {
                    taken[o].fetch_add(1, std::memory_order_relaxed);
                    if (inside[o].exchange(true, std::memory_order_acquire))
                        stats.violation("object %d held by two threads", o);
                    const long before = counters[o];
                    if (rng() % 128 == 0) std::this_thread::yield();
                    counters[o] = before + 1;
                    inside[o].store(false, std::memory_order_release);
                };
                auto release = [&](int o) {
                    const LONG r = o < kMutexes
                                       ? KeReleaseMutex(&mutexes[o], FALSE)
                                       : KeSetEvent(&events[o - kMutexes], IO_NO_INCREMENT, FALSE);
                    if (r != 0) stats.violation("release of object %d returned %d", o, r);
                };
                start.arrive_and_wait();
                while (claimed.fetch_add(64) < budget) {
                    for (int k = 0; k < 64; ++k) {
                        std::shuffle(order.begin(), order.end(), rng);
                        const ULONG count = 1 + rng() % 4;
                        std::array<PVOID, 4> chosen{};
                        for (ULONG j = 0; j < count; ++j) chosen[j] = objects[order[j]];
                        const WAIT_TYPE type = rng() % 2 == 0 ? WaitAny : WaitAll;
                        LARGE_INTEGER storage;
                        const NTSTATUS s = KeWaitForMultipleObjects(
                            count, chosen.data(), type, Executive, KernelMode, FALSE,
                            pick_timeout(rng, storage, true), count > 3 ? blocks.data() : nullptr);
                        if (s == STATUS_TIMEOUT) {
                            timeouts.fetch_add(1, std::memory_order_relaxed);
                        } else if (type == WaitAll && s == STATUS_SUCCESS) {
                            all_ok.fetch_add(1, std::memory_order_relaxed);
                            for (ULONG j = 0; j < count; ++j) hold(order[j]);
                            for (ULONG j = 0; j < count; ++j) release(order[j]);
                        } else if (type == WaitAny && s >= STATUS_WAIT_0 &&
                                   s < STATUS_WAIT_0 + static_cast<NTSTATUS>(count)) {
                            any_ok.fetch_add(1, std::memory_order_relaxed);
                            const int o = order[static_cast<unsigned>(s - STATUS_WAIT_0)];
                            hold(o);
                            release(o);
                        } else {
                            stats.violation("impossible status 0x%08x for %s over %u objects",
                                            static_cast<unsigned>(s),
                                            type == WaitAll ? "WaitAll" : "WaitAny", count);
                        }
                    }
                    stats.done(64);
                }
                check_thread_clean(stats);
            });
        }
        for (auto& t : pool) t.join();
        for (int o = 0; o < kObjects; ++o) {
            if (static_cast<std::uint64_t>(counters[o]) != taken[o].load())
                stats.violation("object %d: counter %ld, taken %llu: exclusion lost", o,
                                counters[o], static_cast<unsigned long long>(taken[o].load()));
            const LONG state = o < kMutexes ? KeReadStateMutex(&mutexes[o])
                                            : KeReadStateEvent(&events[o - kMutexes]);
            if (state != 1) stats.violation("object %d ends in state %d, not free", o, state);
            if (!IsListEmpty(o < kMutexes ? &mutexes[o].Header.WaitListHead
                                          : &events[o - kMutexes].Header.WaitListHead))
                stats.violation("object %d: wait list not empty", o);
        }
        stats.report("waits       ", '(' + std::to_string(any_ok.load()) + " WaitAny, " +
                                         std::to_string(all_ok.load()) + " WaitAll, " +
                                         std::to_string(timeouts.load()) + " timed out)");
    }
}

}  // namespace
