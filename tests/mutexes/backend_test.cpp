// The parking-backend contract (kmlab/backends/backend.hpp), checked for each
// parking backend: a waiter blocks while the word holds the expected value,
// returns at once when it does not, is woken by wake_one after the
// word changes, and times out. The Dispatcher backend has no wait/wake: its
// locks are the kernel's objects, tested in tests/conformance.
#include <atomic>

#include <kmlab/kmlab.hpp>
#include "support.hpp"

using namespace kmlab;
using namespace std::chrono_literals;

template <class B>
class Backend : public ::testing::Test {};
using Backends = ::testing::Types<backends::Futex, backends::Spin>;
static_assert(backends::ParkingBackend<backends::Futex> &&
              backends::ParkingBackend<backends::Spin>);
static_assert(!backends::ParkingBackend<backends::Dispatcher> &&
              backends::kernel_objects<backends::Dispatcher>);
struct BackendNames {
    template <class B>
    static std::string GetName(int) {
        return std::string(B::name());
    }
};
TYPED_TEST_SUITE(Backend, Backends, BackendNames);

TYPED_TEST(Backend, ReturnsAtOnceWhenTheWordDiffers) {
    std::atomic<std::uint32_t> word{1};
    const auto deadline = kmlab::Deadline::after(10s);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(TypeParam::wait(word, 0, deadline));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TYPED_TEST(Backend, TimesOut) {
    std::atomic<std::uint32_t> word{0};
    const auto t0 = std::chrono::steady_clock::now();
    const auto deadline = kmlab::Deadline::at(t0 + 30ms);
    bool woken = true;
    while (word.load() == 0 && (woken = TypeParam::wait(word, 0, deadline))) {
    }
    EXPECT_FALSE(woken);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
}

// No lock wakes more than one waiter per release, so the contract has
// wake_one only: one call per parked waiter releases them all.
TYPED_TEST(Backend, WakeOneReleasesEachWaiterAfterTheWordChanges) {
    for (int waiters : {1, 3}) {
        std::atomic<std::uint32_t> word{0};
        std::atomic<int> done{0};
        std::vector<std::thread> pool;
        for (int i = 0; i < waiters; ++i) {
            pool.emplace_back([&] {
                while (word.load(std::memory_order_acquire) == 0)
                    TypeParam::wait(word, 0, kmlab::Deadline::never());
                done.fetch_add(1);
            });
        }
        std::this_thread::sleep_for(20ms);
        EXPECT_EQ(done.load(), 0);
        word.store(1, std::memory_order_release);
        TypeParam::wake_one(word);
        EXPECT_TRUE(kmlab::test::eventually([&] { return done.load() >= 1; }));
        for (int i = 1; i < waiters; ++i) TypeParam::wake_one(word);
        for (auto& t : pool) t.join();
        EXPECT_EQ(done.load(), waiters);
    }
}

TYPED_TEST(Backend, HasAPrintableName) {
    EXPECT_FALSE(TypeParam::name().empty());
}
