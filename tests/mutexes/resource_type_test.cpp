// kmlab::Resource<T>: readers and writers under stress with 3 and 5 threads
// (the invariant checked under the lock, the resource back in its initial
// state after), the kernel's recursion and starvation rules seen through the
// idiomatic API with threads that really block, the errors it returns before
// anything changes, and the guards (distinct types, const access when shared,
// one release each). Sources: [ros-resource], [kmt-ExResource],
// [ddi:exacquireresourcesharedlite]; the rules: kernel/rules_resource.hpp.
#include <atomic>
#include <cstdio>
#include <new>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include <kmlab/kmlab.hpp>
#include <kmlab/mutexes/resource.hpp>
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::nt;
using kmlab::test::eventually;

namespace {

struct Pair {
    long a = 0;
    long b = 0;
};

using ResourceType = kmlab::test::Nt;

static_assert(!std::is_same_v<Resource<int>::ExclusiveGuard, Resource<int>::SharedGuard>);
static_assert(std::is_same_v<decltype(*std::declval<Resource<int>::ExclusiveGuard&>()), int&>);
static_assert(std::is_same_v<decltype(*std::declval<Resource<int>::SharedGuard&>()), const int&>);
static_assert(!std::is_copy_constructible_v<Resource<int>::SharedGuard>);

// Readers and writers; every thread in a critical region, as the kernel
// requires. Writers keep a == b; a reader that overlapped a writer would see
// them differ; a writer that overlapped anyone would see `inside` != 0.
void stress(int threads) {
    Resource<Pair> r;
    std::atomic<int> inside{0};  // +1 per reader, +1000 per writer
    std::atomic<long> writes{0};
    std::atomic<bool> failed{false};
    std::atomic<int> ready{0};
    constexpr int kIterations = 20000;
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) {
        pool.emplace_back([&, i] {
            auto region = CriticalRegion::enter().value();
            ++ready;  // start together, so that the threads overlap
            while (ready.load() < threads) std::this_thread::yield();
            for (int k = 0; k < kIterations; ++k) {
                const int op = (k + i) % 7;
                if (op == 0 || (i == 0 && op == 3)) {
                    auto g = (op == 3 ? r.try_lock() : r.lock());
                    if (!g) {
                        if (g.error().code != Errc::busy) failed = true;
                        continue;
                    }
                    if (inside.fetch_add(1000) != 0) failed = true;
                    (*g)->a += 1;
                    (*g)->b += 1;
                    if (op == 0) {
                        // The exclusive owner's shared request counts as exclusive.
                        auto s = r.lock_shared();
                        if (!s || (*s)->a != (*s)->b) failed = true;
                    }
                    inside.fetch_sub(1000);
                    ++writes;
                } else {
                    auto g = (op == 5 ? r.try_lock_shared() : r.lock_shared());
                    if (!g) {
                        if (g.error().code != Errc::busy) failed = true;
                        continue;
                    }
                    if (inside.fetch_add(1) >= 1000) failed = true;
                    if ((*g)->a != (*g)->b) failed = true;
                    if (k % 64 == 0) std::this_thread::yield();  // a reader preempted inside
                    if (op == 1) {  // recursion, even past a waiting writer
                        auto again = r.lock_shared();
                        if (!again) failed = true;
                    }
                    inside.fetch_sub(1);
                }
            }
        });
    }
    for (auto& t : pool) t.join();
    EXPECT_FALSE(failed.load());
    std::printf("Resource stress, %d threads: %lu contended acquires\n", threads,
                static_cast<unsigned long>(r.native().ContentionCount));
    EXPECT_TRUE(r.is_initial_state());
    EXPECT_EQ(r.native().ActiveCount, 0);
    EXPECT_EQ(r.native().Flag, 0u);
    EXPECT_EQ(r.native().OwnerEntry.OwnerThread, 0u);
    EXPECT_EQ(r.native().SpinLock, 0u);
    auto region = CriticalRegion::enter().value();
    auto g = r.lock_shared();
    ASSERT_TRUE(g);
    EXPECT_EQ((*g)->a, writes.load());
    EXPECT_EQ((*g)->b, writes.load());
}

}  // namespace

TEST_F(ResourceType, StressThreeThreads) {
    stress(3);
}
TEST_F(ResourceType, StressFiveThreads) {
    stress(5);
}

TEST_F(ResourceType, GuardsGiveAccessAndReleaseOnce) {
    Resource<int> r(41);
    auto region = CriticalRegion::enter().value();
    {
        auto g = r.lock();
        ASSERT_TRUE(g);
        **g += 1;
        EXPECT_EQ(r.native().Flag & ResourceOwnedExclusive, ResourceOwnedExclusive);
        EXPECT_TRUE(g->unlock());
        auto again = g->unlock();
        ASSERT_FALSE(again);
        EXPECT_EQ(again.error().code, Errc::already_released);
        EXPECT_TRUE(r.is_initial_state());
    }
    {
        auto s1 = r.lock_shared();
        auto s2 = r.try_lock_shared();
        ASSERT_TRUE(s1 && s2);
        EXPECT_EQ(**s1, 42);
        EXPECT_EQ(r.native().ActiveCount, 1) << "one thread, recursion does not count";
        auto moved = std::move(*s1);
        EXPECT_FALSE(s1->owns_lock());
        EXPECT_TRUE(moved.owns_lock());
    }
    EXPECT_TRUE(r.is_initial_state());
}

TEST_F(ResourceType, ExclusiveOwnerRecursesBothWays) {
    Resource<int> r;
    auto region = CriticalRegion::enter().value();
    auto x1 = r.lock();
    auto x2 = r.try_lock();
    auto s = r.lock_shared();
    ASSERT_TRUE(x1 && x2 && s);
    EXPECT_EQ(r.native().OwnerEntry.OwnerCount, 3u);
    EXPECT_TRUE(x1->unlock());
    EXPECT_TRUE(x2->unlock());
    EXPECT_EQ(r.native().Flag & ResourceOwnedExclusive, ResourceOwnedExclusive)
        << "the shared guard of the exclusive owner keeps it exclusive";
    EXPECT_TRUE(s->unlock());
    EXPECT_TRUE(r.is_initial_state());
}

TEST_F(ResourceType, ErrorsBeforeAnythingHappens) {
    Resource<int> r;
    {
        // Outside a critical region: 0xC4/0x37.
        auto g = r.lock_shared();
        ASSERT_FALSE(g);
        EXPECT_EQ(g.error().code, Errc::resource_apcs_enabled);
        EXPECT_EQ(g.error().bug_check, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
        EXPECT_EQ(g.error().bug_check_parameter1, bugcheck::VERIFIER_RESOURCE_ACQUIRE_APCS_ENABLED);
        EXPECT_EQ(r.lock().error().code, Errc::resource_apcs_enabled);
        EXPECT_TRUE(r.is_initial_state());
    }
    auto region = CriticalRegion::enter().value();
    {
        const KIRQL old = KeRaiseIrqlToDpcLevel();
        auto g = r.lock();
        ASSERT_FALSE(g);
        EXPECT_EQ(g.error().code, Errc::irql_too_high);
        EXPECT_EQ(g.error().bug_check, bugcheck::IRQL_NOT_LESS_OR_EQUAL);
        {
            // Wait = FALSE too: IRQL <= APC_LEVEL [ddi:exacquireresourcesharedlite].
            auto t = r.try_lock_shared();
            ASSERT_FALSE(t);
            EXPECT_EQ(t.error().code, Errc::irql_too_high);
        }
        KeLowerIrql(old);
    }
    EXPECT_TRUE(r.is_initial_state());
    {
        // lock() by a shared owner: the deadlock; try_lock(): busy.
        auto s = r.lock_shared();
        ASSERT_TRUE(s);
        auto x = r.lock();
        ASSERT_FALSE(x);
        EXPECT_EQ(x.error().code, Errc::resource_upgrade);
        EXPECT_EQ(x.error().bug_check_parameter1, bugcheck::VERIFIER_DEADLOCK_DETECTED);
        auto tx = r.try_lock();
        ASSERT_FALSE(tx);
        EXPECT_EQ(tx.error().code, Errc::busy);
        EXPECT_EQ(r.exclusive_waiters(), 0u);
        // A guard released on another thread: RESOURCE_NOT_OWNED, nothing released.
        kmlab::test::on_new_thread([&] {
            auto region2 = CriticalRegion::enter().value();
            auto e = s->unlock();
            ASSERT_FALSE(e);
            EXPECT_EQ(e.error().code, Errc::not_owner);
            EXPECT_EQ(e.error().bug_check, bugcheck::RESOURCE_NOT_OWNED);
        });
        EXPECT_EQ(r.native().ActiveCount, 1);
    }
    EXPECT_TRUE(r.is_initial_state());
}

// A new shared locker waits behind a waiting exclusive locker; the exclusive
// release hands the resource to the shared waiters [ros-resource].
TEST_F(ResourceType, NewReadersWaitBehindAWaitingWriter) {
    Resource<int> r;
    auto region = CriticalRegion::enter().value();
    auto s = r.lock_shared();
    ASSERT_TRUE(s);
    std::atomic<int> stage{0};
    std::thread writer([&] {
        auto rg = CriticalRegion::enter().value();
        auto g = r.lock();
        EXPECT_TRUE(g);
        **g = 7;
        stage = 1;
        while (stage != 2) std::this_thread::yield();
    });
    ASSERT_TRUE(eventually([&] { return r.exclusive_waiters() == 1; }));
    std::atomic<int> seen{-1};
    std::thread reader([&] {
        auto rg = CriticalRegion::enter().value();
        auto busy = r.try_lock_shared();
        EXPECT_FALSE(busy) << "a new reader does not pass the waiting writer";
        auto g = r.lock_shared();
        EXPECT_TRUE(g);
        seen = **g;
    });
    ASSERT_TRUE(eventually([&] { return r.shared_waiters() == 1; }));
    ASSERT_TRUE(kmlab::test::waiters_reach(r.native().SharedWaiters, 1));
    auto again = r.lock_shared();  // the owner's recursion passes it
    EXPECT_TRUE(again);
    EXPECT_TRUE(again->unlock());
    EXPECT_TRUE(s->unlock());
    ASSERT_TRUE(eventually([&] { return stage == 1; }));
    EXPECT_EQ(seen.load(), -1);
    stage = 2;
    writer.join();
    reader.join();
    EXPECT_EQ(seen.load(), 7);
    EXPECT_TRUE(r.is_initial_state());
}

// A guard remembers its thread: unlocked on another thread (moved there),
// even one that holds the same resource shared itself, it answers
// Errc::not_owner and releases nothing; each thread's own guard still
// releases that thread's hold [bc:0xE3].
TEST_F(ResourceType, GuardMovedToAnotherThreadIsNotOwner) {
    Resource<int> r(0);
    std::optional<Resource<int>::SharedGuard> from_t;
    std::atomic<int> step{0};
    std::thread t([&] {
        auto region = CriticalRegion::enter().value();
        from_t.emplace(*r.lock_shared());
        step = 1;
        while (step.load() != 2) std::this_thread::yield();
        EXPECT_TRUE(from_t->unlock()) << "its own thread releases it";
        from_t.reset();
    });
    std::thread u([&] {
        while (step.load() != 1) std::this_thread::yield();
        auto region = CriticalRegion::enter().value();
        auto mine = r.lock_shared();
        ASSERT_TRUE(mine);
        auto e = from_t->unlock();
        ASSERT_FALSE(e);
        EXPECT_EQ(e.error().code, Errc::not_owner);
        EXPECT_TRUE(from_t->owns_lock());
        EXPECT_EQ(r.native().ActiveCount, 2) << "nothing released";
        EXPECT_TRUE(mine->unlock()) << "U's own hold";
        EXPECT_EQ(r.native().ActiveCount, 1);
        auto x = r.try_lock();
        ASSERT_FALSE(x) << "T still holds it shared";
        step = 2;
    });
    u.join();
    t.join();
    EXPECT_TRUE(r.is_initial_state());
    std::thread v([&] {
        auto region = CriticalRegion::enter().value();
        std::optional<Resource<int>::ExclusiveGuard> g;
        g.emplace(*r.lock());
        std::thread w([&] {
            auto region2 = CriticalRegion::enter().value();
            auto e = g->unlock();
            ASSERT_FALSE(e);
            EXPECT_EQ(e.error().code, Errc::not_owner);
        });
        w.join();
        EXPECT_TRUE(g->unlock());
    });
    v.join();
    EXPECT_TRUE(r.is_initial_state());
}

// The reviewer's case: the guard's thread has exited, and the thread that
// unlocks it may have been given the same KTHREAD address; the guard still
// knows it is not that thread's, and that thread's own guard still works.
TEST_F(ResourceType, GuardOfAnExitedThreadIsNotOwner) {
    Resource<int> r(0);
    std::optional<Resource<int>::SharedGuard> from_t;
    std::thread([&] {
        auto region = CriticalRegion::enter().value();
        from_t.emplace(*r.lock_shared());
    }).join();
    std::thread([&] {
        auto region = CriticalRegion::enter().value();
        auto mine = r.lock_shared();
        ASSERT_TRUE(mine);
        auto e = from_t->unlock();
        ASSERT_FALSE(e);
        EXPECT_EQ(e.error().code, Errc::not_owner);
        EXPECT_EQ(r.native().ActiveCount, 2);
        EXPECT_TRUE(mine->unlock());
        EXPECT_EQ(r.native().ActiveCount, 1);
    }).join();
    // The exited thread's hold stays in the resource's table (as the
    // kernel's): released by its id, as ExReleaseResourceForThreadLite does.
    KeEnterCriticalRegion();
    const auto& n = r.native();
    ExReleaseResourceForThreadLite(const_cast<PERESOURCE>(&n), n.OwnerTable[1].OwnerThread);
    KeLeaveCriticalRegion();
    EXPECT_EQ(r.native().ActiveCount, 0);
    EXPECT_TRUE(r.is_initial_state());
    // Its destructor would report not_owner as a fatal bug check: parked in
    // static storage, never destroyed (not a leak).
    alignas(
        Resource<int>::SharedGuard) static unsigned char parked[sizeof(Resource<int>::SharedGuard)];
    new (parked) Resource<int>::SharedGuard(std::move(*from_t));
}
