// Every raw lock algorithm under the schedule explorer (explorer.hpp).
//
// Each algorithm runs as it is compiled for production, with the model's
// platform in place of platform::Native, in small configurations:
//   3x2  three threads, two acquisitions each: {lock, lock} {try, lock}
//        {lock, timed}
//   4x1  four threads, one each: {lock} {lock} {try} {timed}
// ("timed" is lock_for with a deadline the scheduler may expire; a lock
// without a timed acquire uses lock there). Each configuration is explored
// exhaustively within a preemption bound, sequentially consistent and
// under x86-TSO. Every run checks mutual exclusion, that the data written
// under the lock is never lost (a plain read-modify-write under TSO), that
// no thread is left blocked, that the lock ends in its initial state, and
// that the lock is safe to destroy right after unlock: the thread that makes
// the last acquisition destroys the lock right after its release, and any
// later access to it by a thread still inside unlock() is a violation.
//
// Summaries go to stdout and to model-summary.txt in the working directory
// (scripts/lab test prints them).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include <kmlab/kernel/lock_bit.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/mutexes/raw.hpp>
#include "asymmetric_lock.hpp"
#include "dispatcher_core.hpp"
#include "dispatcher_model.hpp"
#include "explorer.hpp"

namespace kmlab::model {
namespace {

enum class Op { lock, try_lock, timed };

// ---- the algorithms, behind one face ----

template <class Raw>
struct LockBitFace {  // RawLockBit over a model backend: FastMutex / GuardedMutex
    Raw raw;
    bool acquire(nt::PKTHREAD t, Op op) {
        if (op == Op::try_lock) {
            if (!raw.try_lock()) return false;
        } else if (!raw.try_lock()) {
            raw.lock_contended();
        }
        raw.set_owner(t);
        return true;
    }
    void release(nt::PKTHREAD) {
        raw.set_owner(nullptr);
        raw.unlock();
    }
    bool is_free() const { return raw.debug_is_free(); }
};

template <class Backend>
struct KMutexFace {  // RawKMutex over a model backend: KMutex
    kmlab::detail::RawKMutex<Backend> raw;
    bool acquire(nt::PKTHREAD t, Op op) {
        const platform::deadline_t deadline{};
        return raw.acquire(t, op == Op::timed ? &deadline : nullptr, op == Op::try_lock) ==
               kmlab::detail::Acquire::acquired;
    }
    void release(nt::PKTHREAD t) { raw.release(t); }
    bool is_free() const { return raw.debug_is_free(); }
};

// The kernel's own FAST_MUTEX / KGUARDED_MUTEX routines: the lock-bit
// algorithm over a synchronization event, as backends/dispatcher/fast_mutex.cpp
// runs it. `Try` picks ExTryToAcquireFastMutex's compare-exchange (true) or
// KeTryToAcquireGuardedMutex's bit test-and-reset (false).
template <bool FastMutexTry>
struct EventLockBitFace {
    nt::LONG count = nt::FM_LOCK_BIT;
    nt::ULONG contention = 0;
    EventGate gate;
    bool acquire(nt::PKTHREAD, Op op) {
        if (op == Op::try_lock) {
            return FastMutexTry ? lock_bit::try_acquire_uncontended<Platform>(count)
                                : lock_bit::try_acquire<Platform>(count);
        }
        lock_bit::acquire(count, contention, gate);
        return true;
    }
    void release(nt::PKTHREAD) { lock_bit::release(count, gate); }
    bool is_free() const { return count == nt::FM_LOCK_BIT && gate.quiescent(); }
};

struct AsymmetricFace {  // the fixture: RawLockBit<Futex> before the fix
    AsymmetricLockBit<Futex> raw;
    bool acquire(nt::PKTHREAD, Op op) {
        if (op == Op::try_lock) return raw.try_lock();
        if (!raw.try_lock()) raw.lock_contended();
        return true;
    }
    void release(nt::PKTHREAD) { raw.unlock(); }
    bool is_free() const { return raw.debug_is_free(); }
};

// ---- the program every algorithm runs ----

using Plan = std::vector<std::vector<Op>>;
const Plan k3x2 = {{Op::lock, Op::lock}, {Op::try_lock, Op::lock}, {Op::lock, Op::timed}};
const Plan k4x1 = {{Op::lock}, {Op::lock}, {Op::try_lock}, {Op::timed}};
const Plan k3x1 = {{Op::lock}, {Op::lock}, {Op::lock}};
const Plan k2x1 = {{Op::lock}, {Op::lock}};

template <class Face>
struct Shared {
    Face lock;
    Atomic<int> data{0};
    int in_cs = 0;
    int acquired = 0;
    int attempts_left = 0;
    nt::KTHREAD threads[8]{};
    Shared() {
        for (auto& t : threads) nt::InitializeListHead(&t.OwnedKMutexListHead);
    }
};

template <class Face>
std::function<Program()> program(const Plan& plan, bool destroy_after_last) {
    return [plan, destroy_after_last] {
        auto s = std::make_shared<Shared<Face>>();
        for (const auto& ops : plan) s->attempts_left += static_cast<int>(ops.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i, destroy_after_last] {
                if (i == 0) {
                    label(&s->lock, sizeof s->lock, "lock");
                    label(&s->data, sizeof s->data, "data");
                }
                nt::PKTHREAD t = &s->threads[i];
                for (Op op : ops) {
                    if (!s->lock.acquire(t, op)) {
                        --s->attempts_left;
                        continue;
                    }
                    if (++s->in_cs != 1) fail("two threads in the critical section");
                    // A plain read-modify-write: under TSO it is lost unless
                    // the lock orders it with the other owners' ones.
                    s->data.store(s->data.load(std::memory_order_relaxed) + 1,
                                  std::memory_order_relaxed);
                    ++s->acquired;
                    // The last acquisition of the run: every other attempt has
                    // returned, so POSIX lets this owner destroy the lock once
                    // it has released it, although earlier owners may still
                    // be inside their unlock().
                    const bool last = --s->attempts_left == 0;
                    --s->in_cs;
                    s->lock.release(t);
                    if (last && destroy_after_last) destroy(&s->lock, sizeof s->lock);
                }
            });
        }
        p.check = [s]() -> std::string {
            if (!s->lock.is_free()) return "the lock is not back in its initial state";
            if (s->data.load() != s->acquired)
                return "a write made under the lock was lost (" + std::to_string(s->data.load()) +
                       " of " + std::to_string(s->acquired) + ")";
            return {};
        };
        return p;
    };
}

// ---- reporting ----

void report(const std::string& name, const Config& c, const Result& r) {
    char line[512];
    std::snprintf(line, sizeof line, "model: %-44s %-3s pb=%d  %s", name.c_str(),
                  c.memory == Memory::tso ? "tso" : "sc", c.preemption_bound, r.summary().c_str());
    std::printf("%s\n", line);
    std::ofstream("model-summary.txt", std::ios::app) << line << '\n';
}

std::string describe(const Result& r) {
    std::string schedule = r.schedule;
    if (schedule.size() > 600) schedule = schedule.substr(0, 600) + " ... (cut)";
    return r.what + "\n  schedule (Config::replay): " + schedule + "\n  trace of its end:\n" +
           r.trace;
}

// Under the sanitizers every step costs ~50x (fiber switches are system
// calls there): the same configurations, smaller bounds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KMLAB_MODEL_SANITIZED 1
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// KMLAB_MODEL_BOUND raises every exhaustive search's preemption bound
// (scripts/lab test --soak runs 3).
int bound_override() {
    const char* v = std::getenv("KMLAB_MODEL_BOUND");
    return v != nullptr ? std::atoi(v) : 0;
}

template <class Face>
void expect_clean(const std::string& name, const Plan& plan, Memory memory, int bound) {
    Config c;
    c.memory = memory;
    c.preemption_bound = std::max(bound, bound_override());
    const Result r = explore(c, program<Face>(plan, true));
    report(name, c, r);
    EXPECT_FALSE(r.violation) << name << ": " << describe(r);
    EXPECT_TRUE(r.complete) << name;
}

// The bounds per algorithm: 3 where that search takes seconds, else 2 (the
// soak raises all to 3: RawLockBit<Futex> 4x1 under TSO is 3.5M schedules
// there). Under the sanitizers, where a step costs ~50x, every search runs at
// bound 1.
template <class Face>
void explore_all(const std::string& name, int sc_bound, int tso_bound) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const int bound = kSanitized ? 1 : m == Memory::sc ? sc_bound : tso_bound;
        expect_clean<Face>(name + " 4x1", k4x1, m, bound);
        expect_clean<Face>(name + " 3x2", k3x2, m, bound);
    }
}

// ---- production algorithms: exhausted, 0 violations ----

TEST(Model, LockBitOverFutex) {
    explore_all<LockBitFace<kmlab::detail::RawLockBit<Futex>>>("RawLockBit<Futex> (FastMutex)", 2,
                                                               2);
}
TEST(Model, LockBitOverSpin) {
    explore_all<LockBitFace<kmlab::detail::RawLockBit<Spin>>>("RawLockBit<Spin> (TTAS)", 3, 2);
}
TEST(Model, KMutexOverFutex) {
    explore_all<KMutexFace<Futex>>("RawKMutex<Futex>", 3, 3);
}
TEST(Model, KMutexOverSpin) {
    explore_all<KMutexFace<Spin>>("RawKMutex<Spin>", 3, 2);
}
TEST(Model, FastMutexRoutines) {
    explore_all<EventLockBitFace<true>>("lock-bit over an event (FAST_MUTEX)", 3, 3);
}
TEST(Model, GuardedMutexRoutines) {
    explore_all<EventLockBitFace<false>>("lock-bit over an event (KGUARDED_MUTEX)", 3, 3);
}

// ---- the explorer finds what it must ----

// Issue 9's lost wake-up in RawLockBit<Futex> as it was: 3 threads, one
// acquisition each, sequentially consistent. It needs 5 preemptions (all
// schedules with 4 or fewer are clean: 203k of them), so the search starts
// at 5; it finds a schedule after about 27k runs.
// (Not built under the sanitizers, where the search takes minutes; the
// replay of its schedule below runs there.)
#if !KMLAB_MODEL_SANITIZED
TEST(ModelRegression, AsymmetricLockLosesAWakeup) {
    Config c;
    c.preemption_bound = 5;
    c.max_schedules = 500000;
    const Result r = explore(c, program<AsymmetricFace>(k3x1, false));
    report("old RawLockBit<Futex> 3x1 (must fail)", c, r);
    ASSERT_TRUE(r.violation) << "the explorer no longer finds the lost wake-up";
    EXPECT_NE(r.what.find("deadlock"), std::string::npos) << describe(r);
    std::printf("%s\n", describe(r).c_str());
    // The printed schedule replays to the same end.
    Config replay = c;
    replay.replay = r.schedule;
    const Result again = explore(replay, program<AsymmetricFace>(k3x1, false));
    EXPECT_TRUE(again.violation);
    EXPECT_EQ(again.what, r.what);
}
#endif

// The schedule the search above found, kept by name (the trace prints it):
// T0 holds the lock; T2's spin times out (X2) and it registers as a waiter;
// T0 releases, sees the waiter and posts a token with the woken flag, then
// is preempted before it re-reads waiters_; T2 consumes the token, takes the
// lock and leaves the waiters (waiters_ = 0); T0 reads waiters_ == 0 and is
// preempted before drain_stale_token(); T1 registers and sleeps; T2 releases
// and posts a token for T1, waking it; T0's late drain takes that token back;
// T1 finds no token and sleeps again on a free lock, with nobody left to
// wake it. (Issue 9 describes a sibling schedule of the same race.)
constexpr const char* kIssue9Schedule =
    "T0*3 T1*2 T2*2 X2 T2*4 T0*4 T2*9 T0 T1*2 X1 T1*5 T2*6 T0*2 T1*3";

TEST(ModelRegression, Issue9ScheduleLosesAWakeupInTheOldLock) {
    Config c;
    c.replay = kIssue9Schedule;
    const Result r = explore(c, program<AsymmetricFace>(k3x1, false));
    ASSERT_TRUE(r.violation) << r.trace;
    EXPECT_NE(r.what.find("deadlock: T1 sleeps in futex_wait on lock+8"), std::string::npos)
        << describe(r);
    std::printf("%s\n", r.trace.c_str());
}

// The same three threads over today's RawLockBit<Futex>: every schedule with
// up to 4 preemptions (264k) is clean.
TEST(ModelRegression, LockBitOverFutexClean3x1) {
    Config c;
    c.preemption_bound = kSanitized ? 2 : 4;
    const Result r = explore(c, program<LockBitFace<kmlab::detail::RawLockBit<Futex>>>(k3x1, true));
    report("RawLockBit<Futex> 3x1", c, r);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

// The store-buffer bug the membarrier prevents: with the heavy fence switched
// off, x86-TSO exploration finds a waiter asleep on a free lock.
TEST(ModelRegression, StoreBufferLostWakeupNeedsTheMembarrier) {
    Config c;
    c.memory = Memory::tso;
    c.preemption_bound = 1;
    set_heavy_fence(HeavyFence::broken);
    const Result broken = explore(c, program<AsymmetricFace>(k2x1, false));
    set_heavy_fence(HeavyFence::exact);
    report("old RawLockBit<Futex> 2x1, no membarrier", c, broken);
    ASSERT_TRUE(broken.violation) << "TSO exploration missed the store-buffer lost wake-up";
    EXPECT_NE(broken.what.find("deadlock"), std::string::npos) << describe(broken);
    std::printf("%s\n", describe(broken).c_str());

    // The same search with the membarrier: no store-buffer bug (2 threads
    // cannot reach the wake()/drain race, which needs 3).
    const Result exact = explore(c, program<AsymmetricFace>(k2x1, false));
    report("old RawLockBit<Futex> 2x1, membarrier", c, exact);
    EXPECT_FALSE(exact.violation) << describe(exact);
    EXPECT_TRUE(exact.complete);

    // Sequential consistency cannot see it at all: the explorer must not
    // call the broken fence safe only because it models SC.
    Config sc = c;
    sc.memory = Memory::sc;
    set_heavy_fence(HeavyFence::broken);
    const Result sc_broken = explore(sc, program<AsymmetricFace>(k2x1, false));
    set_heavy_fence(HeavyFence::exact);
    report("old RawLockBit<Futex> 2x1, no membarrier, sc", sc, sc_broken);
    EXPECT_FALSE(sc_broken.violation) << describe(sc_broken);
}

// Without membarrier (refused by the kernel) the old lock fell back to
// bounded sleeps: a missed wake cost latency, never a hang.
TEST(ModelRegression, MembarrierFallbackNeverHangs) {
    Config c;
    c.memory = Memory::tso;
    c.preemption_bound = 1;
    set_heavy_fence(HeavyFence::fallback);
    const Result r = explore(c, program<AsymmetricFace>(k2x1, false));
    set_heavy_fence(HeavyFence::exact);
    report("old RawLockBit<Futex> 2x1, membarrier refused", c, r);
    EXPECT_FALSE(r.violation) << describe(r);
}

// The old lock wrote to the mutex after it was visibly free: the last owner
// destroys it while an earlier owner is still inside unlock().
template <class Face>
void expect_found(const std::string& name, const Plan& plan, bool destroy_after_last, int bound,
                  const char* what) {
    Config c;
    c.preemption_bound = bound;
    const Result r = explore(c, program<Face>(plan, destroy_after_last));
    report(name, c, r);
    ASSERT_TRUE(r.violation) << name << ": the explorer no longer finds it";
    EXPECT_NE(r.what.find(what), std::string::npos) << describe(r);
}

TEST(ModelRegression, AsymmetricLockIsUnsafeToDestroyAfterUnlock) {
    expect_found<AsymmetricFace>("old RawLockBit<Futex> 2x1, destroy after unlock", k2x1, true, 2,
                                 "destroyed");
}

// The kernel's two-step release (add the lock bit, then convert a waiter with
// a second compare-exchange) has the same flaw; lock_bit.hpp's one-step
// release does not (FastMutexRoutines above).
struct TwoStepReleaseFace {
    nt::LONG count = nt::FM_LOCK_BIT;
    nt::ULONG contention = 0;
    EventGate gate;
    bool acquire(nt::PKTHREAD, Op) {
        lock_bit::acquire(count, contention, gate);
        return true;
    }
    void release(nt::PKTHREAD) {
        AtomicRef<nt::LONG> c(count);
        nt::LONG old = c.fetch_add(nt::FM_LOCK_BIT);
        if (old != 0 && (old & nt::FM_LOCK_WAITER_WOKEN) == 0) {
            old += nt::FM_LOCK_BIT;
            if (c.compare_exchange_strong(old,
                                          old + nt::FM_LOCK_WAITER_WOKEN - nt::FM_LOCK_WAITER_INC))
                gate.signal();
        }
    }
    bool is_free() const { return count == nt::FM_LOCK_BIT && gate.quiescent(); }
};
TEST(ModelRegression, TwoStepReleaseIsUnsafeToDestroyAfterUnlock) {
    expect_found<TwoStepReleaseFace>("ReactOS two-step lock-bit release, destroy", k3x1, true, 2,
                                     "destroyed");
}

// A deliberately broken lock (check, then set, with no atomicity) must be
// caught: the explorer's mutual-exclusion check is not vacuous.
struct BrokenFace {
    Atomic<int> held{0};
    bool acquire(nt::PKTHREAD, Op) {
        Platform::spin_until([&] { return held.load() == 0; }, nullptr);
        held.store(1);
        return true;
    }
    void release(nt::PKTHREAD) { held.store(0); }
    bool is_free() const { return held.load() == 0; }
};
TEST(ModelRegression, FindsABrokenLock) {
    expect_found<BrokenFace>("check-then-set lock (must fail)", k2x1, false, 2, "critical section");
}

// ---- seeded random (PCT) exploration of larger configurations ----
// KMLAB_MODEL_RANDOM sets the number of schedules per configuration (the
// default suite runs 2000; `scripts/lab test --soak` runs 50000).
long random_budget() {
    const char* v = std::getenv("KMLAB_MODEL_RANDOM");
    const long n = v != nullptr ? std::atol(v) : 0;
    return n > 0 ? n : (kSanitized ? 300 : 2000);
}

template <class Face>
void explore_random(const std::string& name) {
    const Plan big = {{Op::lock, Op::try_lock, Op::lock},
                      {Op::lock, Op::lock, Op::timed},
                      {Op::try_lock, Op::lock, Op::lock},
                      {Op::lock, Op::timed, Op::lock},
                      {Op::lock, Op::lock, Op::lock}};
    for (Memory m : {Memory::sc, Memory::tso}) {
        Config c;
        c.memory = m;
        c.random = true;
        c.random_schedules = random_budget();
        c.seed = 0x6b6d6c6162;  // fixed: a failure replays
        const Result r = explore(c, program<Face>(big, true));
        report(name + " 5x3 random", c, r);
        EXPECT_FALSE(r.violation) << name << ": " << describe(r);
    }
}

TEST(ModelRandom, LockBitOverFutex) {
    explore_random<LockBitFace<kmlab::detail::RawLockBit<Futex>>>("RawLockBit<Futex>");
}
TEST(ModelRandom, LockBitOverSpin) {
    explore_random<LockBitFace<kmlab::detail::RawLockBit<Spin>>>("RawLockBit<Spin>");
}
TEST(ModelRandom, KMutexOverFutex) {
    explore_random<KMutexFace<Futex>>("RawKMutex<Futex>");
}
TEST(ModelRandom, KMutexOverSpin) {
    explore_random<KMutexFace<Spin>>("RawKMutex<Spin>");
}
TEST(ModelRandom, FastMutexRoutines) {
    explore_random<EventLockBitFace<true>>("lock-bit over an event");
}

}  // namespace
}  // namespace kmlab::model

namespace kmlab::model {
namespace {

// The explorer itself (from its review): a spinner whose condition became
// true between two of its reads must not be reported blocked, and a
// buffered store that drains into destroyed memory is a violation.
TEST(ModelExplorer, SpinnerSeesAWriteBetweenItsReads) {
    Config c;
    c.preemption_bound = 2;
    const Result r = explore(c, [] {
        auto x = std::make_shared<Atomic<int>>(0);
        auto y = std::make_shared<Atomic<int>>(0);
        Program p;
        p.threads.push_back([x, y] {
            Platform::spin_until([&] { return x->load() == 1 || y->load() == 1; }, nullptr);
        });
        p.threads.push_back([x] { x->store(1); });
        return p;
    });
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

TEST(ModelExplorer, ABufferedStoreIntoDestroyedMemoryIsCaught) {
    Config c;
    c.memory = Memory::tso;
    c.preemption_bound = 1;
    const Result r = explore(c, [] {
        struct S {
            Atomic<int> flag{0};
            Atomic<int> stat{0};
        };
        auto s = std::make_shared<S>();
        Program p;
        // T0 publishes flag, then writes stat: under TSO both sit in its
        // buffer; T1 sees flag (after a drain), destroys, and T0's stat
        // store drains afterwards.
        p.threads.push_back([s] {
            s->flag.store(1);
            s->stat.store(1);
        });
        p.threads.push_back([s] {
            Platform::spin_until([&] { return s->flag.load() == 1; }, nullptr);
            destroy(s.get(), sizeof(S));
        });
        return p;
    });
    ASSERT_TRUE(r.violation);
    EXPECT_NE(r.what.find("destroyed memory"), std::string::npos) << describe(r);
}

}  // namespace
}  // namespace kmlab::model

// ---- the emulated dispatcher itself ----
// KeWaitForSingleObject / KeReleaseMutex on a KMUTEX, run through the real
// dispatcher (wait blocks, FIFO wait lists, satisfying, timeouts, deferred
// wakes) with its lock and parking under the model (dispatcher_model.hpp),
// in both dispatcher lock modes. "timed" is a 1-hour relative timeout,
// which expires only when the scheduler says so: the real clock cannot
// reach it within a run, so runs stay deterministic.
namespace kmlab::model {
namespace {

struct DispatcherKMutex {
    nt::KMUTEX mutex;
    Atomic<int> data{0};
    int in_cs = 0;
    int acquired = 0;
    std::vector<nt::PKTHREAD> threads;
    explicit DispatcherKMutex(std::size_t n) {
        nt::KeInitializeMutex(&mutex, 0);
        for (std::size_t i = 0; i < n; ++i) threads.push_back(kernel::create_thread_object(false));
    }
    ~DispatcherKMutex() {
        for (auto* t : threads) kernel::dereference_thread(t);
    }
};

std::function<Program()> dispatcher_program(DispatcherUnderModel& dut, const Plan& plan) {
    return [&dut, plan] {
        dut.reset();
        auto s = std::make_shared<DispatcherKMutex>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) {
                    label(&s->mutex, sizeof s->mutex, "kmutex");
                    label(&s->data, sizeof s->data, "data");
                }
                kernel::detail::tls_current_thread = s->threads[i];  // this fiber's KTHREAD
                for (Op op : ops) {
                    nt::LARGE_INTEGER timeout{};
                    timeout.QuadPart = op == Op::timed ? -36'000'000'000LL : 0;  // 1 h, or poll
                    const nt::NTSTATUS st =
                        nt::KeWaitForSingleObject(&s->mutex, nt::Executive, nt::KernelMode,
                                                  nt::FALSE, op == Op::lock ? nullptr : &timeout);
                    if (st == nt::STATUS_TIMEOUT && op != Op::lock) continue;
                    if (st != nt::STATUS_SUCCESS) fail("KeWaitForSingleObject: unexpected status");
                    if (++s->in_cs != 1) fail("two threads own the KMUTEX");
                    s->data.store(s->data.load(std::memory_order_relaxed) + 1,
                                  std::memory_order_relaxed);
                    ++s->acquired;
                    --s->in_cs;
                    nt::KeReleaseMutex(&s->mutex, nt::FALSE);
                }
            });
        }
        p.check = [s]() -> std::string {
            if (nt::KeReadStateMutex(&s->mutex) != 1 || s->mutex.OwnerThread != nullptr ||
                !nt::IsListEmpty(&s->mutex.Header.WaitListHead))
                return "the KMUTEX is not back in its initial state";
            if (s->data.load() != s->acquired) return "a write made under the KMUTEX was lost";
            for (auto* t : s->threads) {
                if (t->Extra->waiting || !nt::IsListEmpty(&t->MutantListHead))
                    return "a thread still waits or owns a mutant";
            }
            return {};
        };
        return p;
    };
}

void explore_dispatcher(dispatcher::LockMode mode, const char* mode_name) {
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    for (Memory m : {Memory::sc, Memory::tso}) {
        // 3x2 here times out first and waits again after (a late wake must
        // not end the next wait).
        const Plan k3x2_timed_first = {
            {Op::lock, Op::lock}, {Op::timed, Op::lock}, {Op::try_lock, Op::timed}};
        for (const auto& [plan, pname] :
             {std::pair{k4x1, "4x1"}, std::pair{k3x2_timed_first, "3x2"}}) {
            Config c;
            c.memory = m;
            c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
            c.fiber_locals = DispatcherUnderModel::fiber_locals();
            const Result r = explore(c, dispatcher_program(dut, plan));
            report(std::string("dispatcher KMUTEX (") + mode_name + ") " + pname, c, r);
            EXPECT_FALSE(r.violation) << describe(r);
            EXPECT_TRUE(r.complete);
        }
    }
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
}

TEST(ModelDispatcher, KMutexGlobalLock) {
    explore_dispatcher(dispatcher::LockMode::global, "global lock");
}
TEST(ModelDispatcher, KMutexPerObjectLocks) {
    explore_dispatcher(dispatcher::LockMode::per_object, "per-object locks");
}

}  // namespace
}  // namespace kmlab::model
