// Soak: stress that can fail (issue 9, "What to build" 3). Not in the default
// suite: CTest label `soak`, run by `scripts/lab test --soak`.
//
// Every mutex x backend takes KMLAB_SOAK_ACQUISITIONS (default 1e8) contended
// acquisitions: 3, 5 and 7 threads released together by a start barrier, each
// mixing lock(), try_lock() and (KMutex) lock_for() with short deadlines and
// recursive acquisitions, then rounds of destroy-right-after-unlock (the last
// user of a heap-allocated mutex deletes it right after its unlock while the
// others may still be inside theirs). Mutual exclusion is checked with an
// in-critical-section flag and a non-atomic counter read, yielded over and
// written back; every mutex must be back in its initial state at the end.
//
// The NT face: timed waits racing KeSetEvent and KeReleaseMutex (exact
// accounting: no wake lost, none consumed twice, no impossible status), and
// WaitAny / WaitAll over mutexes and events used as locks, in both dispatcher
// lock modes (global, per-object). Their wait count is
// KMLAB_SOAK_ACQUISITIONS / 100 per test and lock mode.
//
// Only the public API (kmlab.hpp, kmlab_nt.hpp) and the test support headers
// are used, so the soak survives rewrites of the lock internals.
//
// A hang fails instead of stalling CI: a watchdog aborts, naming the
// configuration, its phase and its progress, when no operation completed for
// KMLAB_SOAK_WATCHDOG_S seconds (default 60). Each configuration prints one
// line: `soak: <config> ... acquisitions N  rate R M/s  time T s  violations V`.
#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <latch>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <kmlab/kmlab.hpp>
#include <kmlab/kmlab_nt.hpp>
#include "mutex_types.hpp"
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::nt;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// ---- configuration from the environment ----

std::uint64_t env_count(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return fallback;
    char* end = nullptr;
    const double d = std::strtod(v, &end);  // accepts 1e8 as well as 100000000
    if (end == v || *end != '\0' || !(d >= 1) || d > 1e15) {
        std::fprintf(stderr, "soak: %s='%s' is not a positive count\n", name, v);
        std::exit(2);
    }
    return static_cast<std::uint64_t>(d);
}

// Contended acquisitions per mutex x backend (all phases together).
std::uint64_t acquisitions() {
    static const std::uint64_t n = env_count("KMLAB_SOAK_ACQUISITIONS", 100'000'000);
    return n;
}
// Waits per NT test and dispatcher lock mode.
std::uint64_t nt_waits() {
    return std::max<std::uint64_t>(acquisitions() / 100, 1000);
}

// ---- watchdog ----

// Aborts the process with a message when the current configuration made no
// progress for the limit: a lost wake-up or a deadlock fails, it does not
// stall the run until CTest's timeout.
class Watchdog {
  public:
    static Watchdog& instance() {
        static Watchdog w;
        return w;
    }
    void begin(std::string config, std::uint64_t target) {
        std::lock_guard g(m_);
        config_ = std::move(config);
        phase_ = "start";
        target_ = target;
        progress_.store(0, std::memory_order_relaxed);
        active_ = true;
        changed_ = Clock::now();
    }
    void phase(std::string p) {
        std::lock_guard g(m_);
        phase_ = std::move(p);
        changed_ = Clock::now();
    }
    void end() {
        std::lock_guard g(m_);
        active_ = false;
    }
    void advance(std::uint64_t n) noexcept { progress_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t progress() const noexcept { return progress_.load(std::memory_order_relaxed); }

    ~Watchdog() {
        {
            std::lock_guard g(m_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

  private:
    Watchdog()
        : limit_(std::chrono::seconds(env_count("KMLAB_SOAK_WATCHDOG_S", 60))),
          thread_([this] { run(); }) {}

    void run() {
        std::unique_lock g(m_);
        std::uint64_t last = 0;
        while (!stop_) {
            cv_.wait_for(g, 250ms);
            const auto now = Clock::now();
            const std::uint64_t p = progress();
            if (!active_ || p != last) {
                last = p;
                changed_ = now;
                continue;
            }
            if (now - changed_ > limit_) {
                std::fprintf(stderr,
                             "\nsoak: WATCHDOG: %s made no progress for %lld s in phase '%s' "
                             "(%llu of %llu operations done): a lost wake-up or a deadlock. "
                             "Aborting.\n",
                             config_.c_str(),
                             static_cast<long long>(
                                 std::chrono::duration_cast<std::chrono::seconds>(limit_).count()),
                             phase_.c_str(), static_cast<unsigned long long>(p),
                             static_cast<unsigned long long>(target_));
                std::fflush(stderr);
                std::fflush(stdout);
                std::abort();
            }
        }
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::string config_, phase_;
    std::uint64_t target_ = 0;
    std::atomic<std::uint64_t> progress_{0};
    bool active_ = false;
    bool stop_ = false;
    Clock::time_point changed_ = Clock::now();
    Clock::duration limit_;
    std::thread thread_;  // last: starts after every other member is ready
};

// ---- per-configuration results ----

struct Totals {
    int configurations = 0;
    std::uint64_t operations = 0;
    std::uint64_t violations = 0;
    double seconds = 0;
};
Totals g_totals;

// What one configuration did, and what went wrong (the first few messages).
class Stats {
  public:
    explicit Stats(std::string config, std::uint64_t target)
        : config_(std::move(config)), start_(Clock::now()) {
        Watchdog::instance().begin(config_, target);
    }
    ~Stats() { Watchdog::instance().end(); }

    void done(std::uint64_t n) noexcept {
        ops_.fetch_add(n, std::memory_order_relaxed);
        Watchdog::instance().advance(n);
    }
    [[gnu::format(printf, 2, 3)]] void violation(const char* fmt, ...) {
        violations_.fetch_add(1);
        std::lock_guard g(m_);
        if (messages_.size() >= 8) return;
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        std::vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        messages_.emplace_back(buf);
    }
    void phase(std::string p) { Watchdog::instance().phase(std::move(p)); }
    std::uint64_t violations() const noexcept { return violations_.load(); }
    std::uint64_t operations() const noexcept { return ops_.load(); }

    // Prints the configuration's line and fails the test on any violation.
    void report(const char* unit, const std::string& detail = {}) {
        const double s = std::chrono::duration<double>(Clock::now() - start_).count();
        const std::uint64_t n = operations();
        std::printf("soak: %-34s %s %11llu  rate %7.3f M/s  time %7.1f s  violations %llu%s%s\n",
                    config_.c_str(), unit, static_cast<unsigned long long>(n),
                    static_cast<double>(n) / s / 1e6, s,
                    static_cast<unsigned long long>(violations()), detail.empty() ? "" : "  ",
                    detail.c_str());
        std::fflush(stdout);
        ++g_totals.configurations;
        g_totals.operations += n;
        g_totals.violations += violations();
        g_totals.seconds += s;
        std::lock_guard g(m_);
        for (const auto& msg : messages_) ADD_FAILURE() << config_ << ": " << msg;
        EXPECT_EQ(violations(), 0u) << config_;
    }

  private:
    std::string config_;
    Clock::time_point start_;
    std::atomic<std::uint64_t> ops_{0};
    std::atomic<std::uint64_t> violations_{0};
    std::mutex m_;
    std::vector<std::string> messages_;
};

// Prints the summary line when the binary's tests are done.
class SummaryEnvironment : public ::testing::Environment {
  public:
    void TearDown() override {
        std::printf(
            "soak: summary: %d configurations, %llu operations in %.1f s, %llu violations "
            "(KMLAB_SOAK_ACQUISITIONS=%llu)\n",
            g_totals.configurations, static_cast<unsigned long long>(g_totals.operations),
            g_totals.seconds, static_cast<unsigned long long>(g_totals.violations),
            static_cast<unsigned long long>(acquisitions()));
        std::fflush(stdout);
    }
};
[[maybe_unused]] const auto* const g_summary =
    ::testing::AddGlobalTestEnvironment(new SummaryEnvironment);

// A short busy wait: keeps a thread runnable (unlike a sleep) for `n` spins.
void spin(unsigned n) {
    for (unsigned i = 0; i < n; ++i) __builtin_ia32_pause();
}

// ---- the idiomatic mutexes ----

template <class M>
constexpr bool kHasLockFor = requires(M& m) {
    m.lock_for(std::chrono::microseconds(1));
};
template <class M>
constexpr bool kRecursive = M::kind() == std::string_view("KMutex");

template <class M>
std::string config_name() {
    return std::string(M::kind()) + "_" + std::string(M::backend::name());
}

// `threads` threads share `budget` acquisitions of `m`, claimed in batches so
// that all of them contend until the end. Returns the increments made to the
// protected counter.
template <class M>
std::uint64_t contend(M& m, int threads, std::uint64_t budget, Stats& stats) {
    constexpr std::uint64_t kBatch = 1024;
    std::atomic<std::uint64_t> claimed{0};
    std::atomic<std::uint64_t> increments{0};
    std::atomic<bool> inside{false};
    std::latch start(threads);
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) {
        pool.emplace_back([&, i] {
            std::minstd_rand rng(static_cast<unsigned>(i * 7919 + threads * 104729 + 1));
            std::uint64_t mine = 0;
            start.arrive_and_wait();  // everyone starts together: they really overlap
            for (;;) {
                const std::uint64_t first = claimed.fetch_add(kBatch, std::memory_order_relaxed);
                if (first >= budget) break;
                const std::uint64_t want = std::min(kBatch, budget - first);
                for (std::uint64_t got = 0; got < want;) {
                    const auto r = rng() % 100;
                    auto g = [&] {
                        if (r < 70) return m.lock();
                        if constexpr (kHasLockFor<M>) {
                            if (r >= 90) return m.lock_for(std::chrono::microseconds(rng() % 40));
                        }
                        return m.try_lock();
                    }();
                    if (!g) {
                        // lock() never fails; try_lock / lock_for only report busy.
                        if (r < 70 || g.error().code != Errc::busy)
                            stats.violation("acquire failed: %s", g.error().message().data());
                        continue;
                    }
                    if (inside.exchange(true, std::memory_order_acquire))
                        stats.violation("two threads inside the critical section");
                    long& v = **g;
                    const long before = v;
                    if (rng() % 64 == 0) std::this_thread::yield();  // others queue up and park
                    v = before + 1;
                    ++mine;
                    if constexpr (kRecursive<M>) {
                        if (rng() % 32 == 0) {  // a nested acquisition by the owner
                            auto inner = m.lock();
                            if (!inner) {
                                stats.violation("recursive acquire failed: %s",
                                                inner.error().message().data());
                            } else {
                                ++**inner;
                                ++mine;
                            }
                        }
                    }
                    inside.store(false, std::memory_order_release);
                    if (auto u = g->unlock(); !u)
                        stats.violation("unlock failed: %s", u.error().message().data());
                    ++got;
                }
                stats.done(want);
            }
            increments.fetch_add(mine);
        });
    }
    for (auto& t : pool) t.join();
    return increments.load();
}

// Rounds of: a fresh heap mutex, `kThreads` threads taking it `kEach` times,
// and the thread that makes the last increment deleting it right after its
// unlock, while the others may still be inside their own unlock.
template <class M>
void destroy_after_unlock(std::uint64_t rounds, Stats& stats) {
    constexpr int kThreads = 3;
    constexpr long kEach = 3;
    M* current = nullptr;
    std::uint64_t round = 0;
    bool stop = false;
    std::barrier sync(kThreads, [&]() noexcept {
        // Runs once per round, after the previous mutex was deleted.
        if (round++ == rounds) {
            stop = true;
        } else {
            current = new M(0L);
        }
    });
    std::vector<std::thread> pool;
    for (int i = 0; i < kThreads; ++i) {
        pool.emplace_back([&, i] {
            std::minstd_rand rng(static_cast<unsigned>(i * 31337 + 7));
            for (;;) {
                sync.arrive_and_wait();
                if (stop) break;
                M* m = current;
                for (long k = 0; k < kEach;) {
                    auto g = rng() % 4 == 0 ? m->try_lock() : m->lock();
                    if (!g) {
                        if (g.error().code != Errc::busy)
                            stats.violation("acquire failed: %s", g.error().message().data());
                        continue;
                    }
                    long& v = **g;
                    const long before = v;
                    if (rng() % 16 == 0) std::this_thread::yield();
                    v = before + 1;
                    const bool last = v == kThreads * kEach;
                    if (auto u = g->unlock(); !u) {
                        stats.violation("unlock failed: %s", u.error().message().data());
                        break;  // the mutex leaks; the violation fails the test
                    }
                    ++k;
                    if (last) delete m;  // the last user: right after its unlock
                }
                stats.done(kEach);
            }
        });
    }
    for (auto& t : pool) t.join();
}

template <class M>
class Soak : public kmlab::test::Nt {};
TYPED_TEST_SUITE(Soak, kmlab::test::AllMutexes, kmlab::test::MutexNames);

TYPED_TEST(Soak, ContendedAcquisitionsAndDestroyAfterUnlock) {
    using M = TypeParam;
    const std::uint64_t total = acquisitions();
    // A twentieth of the budget goes to destroy-after-unlock (fresh mutexes,
    // 9 acquisitions a round); the rest is split over 3, 5 and 7 threads.
    const std::uint64_t destroy_rounds = std::max<std::uint64_t>(total / 20 / 9, 100);
    const std::uint64_t contended = total - std::min(total, destroy_rounds * 9);
    Stats stats(config_name<M>(), total);

    M m(0L);
    std::uint64_t increments = 0;
    for (int threads : {3, 5, 7}) {
        stats.phase(std::to_string(threads) + " threads");
        increments +=
            contend(m, threads, contended / 3 + (threads == 7 ? contended % 3 : 0), stats);
        if (!m.is_initial_state())
            stats.violation("not in its initial state after %d threads", threads);
    }
    if (auto g = m.lock(); !g) {
        stats.violation("final lock failed");
    } else if (static_cast<std::uint64_t>(**g) != increments) {
        stats.violation("counter %ld, expected %llu: mutual exclusion lost", **g,
                        static_cast<unsigned long long>(increments));
    }
    if (!m.is_initial_state()) stats.violation("not in its initial state at the end");

    stats.phase("destroy-after-unlock");
    destroy_after_unlock<M>(destroy_rounds, stats);

    stats.report("acquisitions", "(threads 3,5,7; " + std::to_string(destroy_rounds) +
                                     " destroy-after-unlock rounds)");
}

// ---- the NT face ----

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
        stats.report("waits       ", "(" + std::to_string(consumed.load()) + " satisfied, " +
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
        stats.report("waits       ", "(" + std::to_string(acquired.load()) + " acquired, " +
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
        stats.report("waits       ", "(" + std::to_string(any_ok.load()) + " WaitAny, " +
                                         std::to_string(all_ok.load()) + " WaitAll, " +
                                         std::to_string(timeouts.load()) + " timed out)");
    }
}

}  // namespace
