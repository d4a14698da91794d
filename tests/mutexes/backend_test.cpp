// The WaitBackend contract, checked for each backend: a waiter blocks while
// the word holds the expected value, returns at once when it does not, is
// woken by wake_one/wake_all after the word changes, and times out.
#include <atomic>

#include "kmlab.hpp"
#include "support.hpp"

using namespace kmlab;
using namespace std::chrono_literals;

template <class B>
class Backend : public ::testing::Test {};
using Backends = ::testing::Types<backends::Futex, backends::Spin, backends::Dispatcher>;
struct BackendNames {
    template <class B>
    static std::string GetName(int) {
        return std::string(B::name());
    }
};
TYPED_TEST_SUITE(Backend, Backends, BackendNames);

TYPED_TEST(Backend, ReturnsAtOnceWhenTheWordDiffers) {
    std::atomic<std::uint32_t> word{1};
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(TypeParam::wait(word, 0, &deadline));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TYPED_TEST(Backend, TimesOut) {
    std::atomic<std::uint32_t> word{0};
    const auto t0 = std::chrono::steady_clock::now();
    const auto deadline = t0 + 30ms;
    bool woken = true;
    while (word.load() == 0 && (woken = TypeParam::wait(word, 0, &deadline))) {
    }
    EXPECT_FALSE(woken);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
}

TYPED_TEST(Backend, WakeAllReleasesEveryWaiterAfterTheWordChanges) {
    for (int waiters : {1, 3}) {
        std::atomic<std::uint32_t> word{0};
        std::atomic<int> done{0};
        std::vector<std::thread> pool;
        for (int i = 0; i < waiters; ++i) {
            pool.emplace_back([&] {
                while (word.load(std::memory_order_acquire) == 0) TypeParam::wait(word, 0, nullptr);
                done.fetch_add(1);
            });
        }
        std::this_thread::sleep_for(20ms);
        EXPECT_EQ(done.load(), 0);
        word.store(1, std::memory_order_release);
        TypeParam::wake_all(word);
        for (auto& t : pool) t.join();
        EXPECT_EQ(done.load(), waiters);
    }
}

TYPED_TEST(Backend, HasAPrintableName) {
    EXPECT_FALSE(TypeParam::name().empty());
}

// The dispatcher's parking lot keeps one gate per address in a hash table.
// Many threads park on many distinct addresses at once, so the table grows
// (rehashes) while others are parked; each parked thread must still find and
// remove its own entry afterwards. The parking lot once erased through an
// iterator taken before it parked, invalidated by any rehash meanwhile.
TEST(DispatcherParking, ManyThreadsParkOnManyDistinctAddressesAtOnce) {
    // More parkers than the table's first bucket counts (13, 29), so it
    // rehashes while some of them are parked.
    constexpr int kThreads = 40, kWordsPerThread = 8, kRounds = 10;
    std::vector<std::atomic<std::uint32_t>> words(kThreads * kWordsPerThread);
    std::atomic<int> woken{0}, timed_out{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> parkers;
    for (int t = 0; t < kThreads; ++t) {
        parkers.emplace_back([&, t] {
            for (int round = 0; round < kRounds; ++round) {
                for (int i = 0; i < kWordsPerThread; ++i) {
                    auto& word = words[static_cast<std::size_t>(t * kWordsPerThread + i)];
                    const auto deadline =
                        std::chrono::steady_clock::now() + std::chrono::microseconds(500 + 250 * i);
                    const std::uint32_t seen = word.load(std::memory_order_acquire);
                    if (backends::Dispatcher::wait(word, seen, &deadline)) {
                        woken.fetch_add(1, std::memory_order_relaxed);
                    } else {
                        timed_out.fetch_add(1, std::memory_order_relaxed);
                    }
                }
            }
        });
    }
    // Wakers bump words at random and wake one or all of their waiters.
    std::vector<std::thread> wakers;
    for (int w = 0; w < 2; ++w) {
        wakers.emplace_back([&, w] {
            std::uint32_t x = 12345u + static_cast<std::uint32_t>(w);
            while (!stop.load(std::memory_order_relaxed)) {
                x = x * 1664525u + 1013904223u;
                auto& word = words[(x >> 8) % words.size()];
                word.fetch_add(1, std::memory_order_release);
                if (x & 1) {
                    backends::Dispatcher::wake_one(word);
                } else {
                    backends::Dispatcher::wake_all(word);
                }
                std::this_thread::sleep_for(std::chrono::microseconds(20));
            }
        });
    }
    for (auto& p : parkers) p.join();
    stop.store(true);
    for (auto& w : wakers) w.join();
    EXPECT_EQ(woken.load() + timed_out.load(), kThreads * kWordsPerThread * kRounds);
    // Every entry was removed: a last park and wake per word still work.
    for (auto& word : words) {
        const auto deadline = std::chrono::steady_clock::now();
        EXPECT_FALSE(backends::Dispatcher::wait(word, word.load(), &deadline));
    }
}
