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
// The NT face is soaked in soak_nt_test.cpp; the harness (budgets, watchdog,
// each configuration's line) is soak_harness.hpp.
//
// Only the public API (kmlab.hpp, kmlab_nt.hpp) and the test support headers
// are used, so the soak survives rewrites of the lock internals.
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <latch>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <kmlab/kmlab.hpp>
#include "mutex_types.hpp"
#include "soak_harness.hpp"
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::soak;

namespace {

// ---- the idiomatic mutexes ----

template <class M>
constexpr bool kHasLockFor = requires(M& m) {
    m.lock_for(std::chrono::microseconds(1));
};
template <class M>
constexpr bool kRecursive = M::recursive;

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

}  // namespace
