// Grt: the registry of named mutexes, under concurrency and across destroy().
#include <atomic>
#include <memory>
#include <sstream>
#include <version>
#if defined(__cpp_lib_format)
#include <format>
#endif

#include <kmlab/kmlab.hpp>
#include "support.hpp"

using namespace kmlab;
using namespace std::chrono_literals;

namespace {
template <class R>
concept HandleLocksAlertably = requires(const R& r) {
    r.lock(alertable);
    r.lock_for(1ms, alertable);
};
template <class R>
concept HandleCopiesOut = requires(const R& r) {
    r.to_owned();
};
static_assert(HandleLocksAlertably<GrtRef<KMutex<int, backends::Dispatcher>>>);
static_assert(!HandleLocksAlertably<GrtRef<KMutex<int>>>);
static_assert(!HandleLocksAlertably<GrtRef<FastMutex<int, backends::Dispatcher>>>);
static_assert(HandleCopiesOut<GrtRef<GuardedMutex<int>>>);
static_assert(!HandleCopiesOut<GrtRef<KMutex<std::unique_ptr<int>>>>);
}  // namespace

class GrtTest : public kmlab::test::Nt {
  protected:
    void SetUp() override { ASSERT_TRUE(Grt::init()); }
    void TearDown() override {
        if (Grt::initialized()) (void)Grt::destroy();
        kmlab::test::Nt::TearDown();
    }
};

TEST_F(GrtTest, RegisterLookUpAndLock) {
    ASSERT_TRUE(Grt::register_kmutex<int>("counter", 5));
    ASSERT_TRUE(Grt::register_fast_mutex<std::string>("name", std::string("irp")));
    ASSERT_TRUE((Grt::register_guarded_mutex<int, backends::Dispatcher>("dispatched", 1)));
    auto m = Grt::get_kmutex<int>("counter");
    ASSERT_TRUE(m);
    {
        auto g = (*m)->lock();
        ASSERT_TRUE(g);
        **g += 1;
    }
    EXPECT_EQ(*(*Grt::get_kmutex<int>("counter"))->lock().value(), 6);
    EXPECT_EQ(*(*Grt::get_fast_mutex<std::string>("name"))->lock().value(), "irp");
    EXPECT_TRUE((Grt::get_guarded_mutex<int, backends::Dispatcher>("dispatched")));
    EXPECT_EQ(Grt::size().value(), 3u);
}

TEST_F(GrtTest, EveryMisuseIsANamedError) {
    EXPECT_EQ(Grt::init().error().code, GrtErrc::already_initialized);
    ASSERT_TRUE(Grt::register_kmutex<int>("a", 1));
    auto dup = Grt::register_kmutex<int>("a", 2);
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, GrtErrc::duplicate_key);
    EXPECT_EQ(dup.error().key, "a");
    EXPECT_EQ(Grt::get_kmutex<int>("missing").error().code, GrtErrc::unknown_key);
    EXPECT_EQ(Grt::get_kmutex<long>("a").error().code, GrtErrc::wrong_type) << "wrong value type";
    EXPECT_EQ(Grt::get_fast_mutex<int>("a").error().code, GrtErrc::wrong_type) << "wrong kind";
    EXPECT_EQ((Grt::get_kmutex<int, backends::Spin>("a").error().code), GrtErrc::wrong_type)
        << "wrong backend";
    EXPECT_FALSE(Grt::get_fast_mutex<int>("a").error().message().empty());
    ASSERT_TRUE(Grt::destroy());
    EXPECT_EQ(Grt::get_kmutex<int>("a").error().code, GrtErrc::not_initialized);
    EXPECT_EQ(Grt::register_kmutex<int>("b", 1).error().code, GrtErrc::not_initialized);
    EXPECT_EQ(Grt::destroy().error().code, GrtErrc::not_initialized);
}

TEST_F(GrtTest, AReferenceTakenBeforeDestroyOrReplacementStaysValid) {
    ASSERT_TRUE(Grt::register_kmutex<int>("k", 10));
    auto before = Grt::get_kmutex<int>("k").value();
    ASSERT_TRUE(Grt::unregister("k"));
    ASSERT_TRUE(Grt::register_kmutex<int>("k", 20));  // the key now names another mutex
    auto after = Grt::get_kmutex<int>("k").value();
    EXPECT_NE(before.get(), after.get());
    ASSERT_TRUE(Grt::destroy());
    // Both survive destroy(): shared ownership, nothing dangles.
    EXPECT_EQ(*before->lock().value(), 10);
    EXPECT_EQ(*after->lock().value(), 20);
    EXPECT_EQ(before.use_count(), 1);
}

TEST_F(GrtTest, ConcurrentRegistrationAndLookups) {
    constexpr int kThreads = 5, kKeys = 200;
    std::atomic<int> registered{0}, duplicates{0}, increments{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < kThreads; ++t) {
        pool.emplace_back([&] {
            // Every thread races to register the same keys; exactly one wins each.
            for (int k = 0; k < kKeys; ++k) {
                auto r = Grt::register_fast_mutex<int>("key" + std::to_string(k), 0);
                if (r) {
                    registered.fetch_add(1);
                } else {
                    EXPECT_EQ(r.error().code, GrtErrc::duplicate_key);
                    duplicates.fetch_add(1);
                }
                auto m = Grt::get_fast_mutex<int>("key" + std::to_string(k));
                ASSERT_TRUE(m);
                auto g = (*m)->lock();
                ASSERT_TRUE(g);
                ++**g;
                increments.fetch_add(1);
            }
        });
    }
    for (auto& t : pool) t.join();
    EXPECT_EQ(registered.load(), kKeys);
    EXPECT_EQ(duplicates.load(), (kThreads - 1) * kKeys);
    for (int k = 0; k < kKeys; ++k) {
        EXPECT_EQ(*(*Grt::get_fast_mutex<int>("key" + std::to_string(k)))->lock().value(),
                  kThreads);
    }
}

TEST_F(GrtTest, LookupsRaceWithDestroyWithoutDangling) {
    ASSERT_TRUE(Grt::register_kmutex<int>("shared", 0));
    std::atomic<bool> stop{false};
    std::atomic<int> locked{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < 3; ++t) {
        pool.emplace_back([&] {
            while (!stop.load()) {
                auto m = Grt::get_kmutex<int>("shared");
                if (!m) continue;  // destroyed meanwhile: a clean error, never a dangling pointer
                auto g = (*m)->lock();
                ASSERT_TRUE(g);
                ++**g;
                locked.fetch_add(1);
            }
        });
    }
    ASSERT_TRUE(kmlab::test::eventually([&] { return locked.load() > 100; }));
    ASSERT_TRUE(Grt::destroy());
    stop = true;
    for (auto& t : pool) t.join();
    EXPECT_FALSE(Grt::initialized());
}

TEST_F(GrtTest, TheGenericCallsAgreeWithTheNamedOnes) {
    using M = KMutex<int, backends::Spin>;
    auto m = Grt::register_mutex<M>("generic", 3);
    ASSERT_TRUE(m);
    auto same = Grt::get_kmutex<int, backends::Spin>("generic");
    ASSERT_TRUE(same);
    EXPECT_EQ(same->get(), m->get());
    EXPECT_EQ((Grt::get<FastMutex<int, backends::Spin>>("generic").error().code),
              GrtErrc::wrong_type);
    EXPECT_EQ(*Grt::get<M>("generic").value()->lock().value(), 3);
}

// A guard taken through a temporary handle (the shared_ptr returned by the
// lookup dies at the end of the statement) must keep the mutex alive after
// the registry drops it: before, the guard held a raw pointer, and reading
// the value or releasing after unregister() / destroy() was a heap use after
// free (AddressSanitizer reports it).
TEST_F(GrtTest, AGuardTakenThroughATemporaryHandleOutlivesUnregisterAndDestroy) {
    ASSERT_TRUE(Grt::register_kmutex<std::string>("k", std::string(100, 'k')));
    ASSERT_TRUE(Grt::register_fast_mutex<std::string>("f", std::string(100, 'f')));
    ASSERT_TRUE(Grt::register_guarded_mutex<std::string>("g", std::string(100, 'g')));
    auto k = *(*Grt::get_kmutex<std::string>("k"))->lock();
    auto f = *(*Grt::get_fast_mutex<std::string>("f"))->lock();
    ASSERT_TRUE(Grt::unregister("k"));
    ASSERT_TRUE(Grt::unregister("f"));
    EXPECT_EQ(*k, std::string(100, 'k'));
    EXPECT_EQ(*f, std::string(100, 'f'));
    f->append("!");
    EXPECT_TRUE(f.unlock());
    {
        auto g = *(*Grt::get_guarded_mutex<std::string>("g"))->try_lock();
        ASSERT_TRUE(Grt::destroy());
        EXPECT_EQ(g->size(), 100u);
    }  // released after destroy()
}

// wdk-mutex's register_kmutex / register_fast_mutex overwrite a key in use;
// kmlab's overwriting form says so in its name. The replaced mutex lives on
// for the handles and guards taken from it before.
TEST_F(GrtTest, RegisterOrReplaceOverwritesAKeyAndEarlierHandlesStayValid) {
    auto first = Grt::register_kmutex<int>("k", 1).value();
    {
        auto held = first->lock().value();
        auto second = Grt::register_or_replace_kmutex<int>("k", 2);
        ASSERT_TRUE(second);
        EXPECT_NE(second->get(), first.get());
        EXPECT_EQ(*Grt::get_kmutex<int>("k").value()->lock().value(), 2);
        EXPECT_EQ(*held, 1) << "the replaced mutex and its guard are untouched";
        ASSERT_TRUE(held.unlock());
    }
    EXPECT_EQ(first.use_count(), 1) << "the registry dropped its reference to the replaced mutex";
    EXPECT_EQ(*first->lock().value(), 1);

    // Any kind, value type or backend may take the key over.
    ASSERT_TRUE((Grt::register_or_replace_fast_mutex<std::string, backends::Spin>("k", "irp")));
    EXPECT_EQ(Grt::get_kmutex<int>("k").error().code, GrtErrc::wrong_type);
    EXPECT_EQ((*(*Grt::get_fast_mutex<std::string, backends::Spin>("k"))->lock().value()), "irp");
    ASSERT_TRUE((Grt::register_or_replace_mutex<KMutex<int, backends::Dispatcher>>("k", 3)));
    EXPECT_EQ((*(*Grt::get_kmutex<int, backends::Dispatcher>("k"))->lock().value()), 3);
    // A key not in use is simply registered.
    ASSERT_TRUE(Grt::register_or_replace_guarded_mutex<int>("new", 7));
    EXPECT_EQ(*(*Grt::get_guarded_mutex<int>("new"))->lock().value(), 7);
    EXPECT_EQ(Grt::size().value(), 2u);
    // The refusing form still refuses, whichever form registered the key.
    EXPECT_EQ(Grt::register_guarded_mutex<int>("new", 8).error().code, GrtErrc::duplicate_key);

    ASSERT_TRUE(Grt::destroy());
    EXPECT_EQ(Grt::register_or_replace_kmutex<int>("k", 4).error().code, GrtErrc::not_initialized);
}

// Replacing swaps the entry under the registry's lock: a lookup racing with
// replacements finds the key every time. (Unregistering and registering again
// would leave a window in which it is missing.)
TEST_F(GrtTest, ALookupRacingWithReplacementsAlwaysFindsTheKey) {
    ASSERT_TRUE(Grt::register_kmutex<int>("hot", 0));
    constexpr int kRounds = 300;
    std::atomic<int> misses{0}, locked{0};
    std::vector<std::thread> pool;
    pool.emplace_back([&] {
        for (int i = 1; i <= kRounds; ++i)
            ASSERT_TRUE(Grt::register_or_replace_kmutex<int>("hot", i));
    });
    for (int t = 0; t < 2; ++t) {
        pool.emplace_back([&] {
            for (int i = 0; i < kRounds; ++i) {
                auto m = Grt::get_kmutex<int>("hot");
                if (!m) {
                    misses.fetch_add(1);
                    continue;
                }
                auto g = (*m)->lock();
                ASSERT_TRUE(g);
                EXPECT_GE(**g, 0);
                locked.fetch_add(1);
            }
        });
    }
    for (auto& t : pool) t.join();
    EXPECT_EQ(misses.load(), 0);
    EXPECT_EQ(locked.load(), 2 * kRounds);
    EXPECT_EQ(*(*Grt::get_kmutex<int>("hot"))->lock().value(), kRounds);
    EXPECT_EQ(Grt::size().value(), 1u);
}

// wdk-mutex's GrtIsEmpty: a lookup in a registry that holds nothing is told
// so, apart from a key that is merely missing.
TEST_F(GrtTest, AnEmptyRegistryIsItsOwnError) {
    EXPECT_EQ(Grt::get_kmutex<int>("k").error().code, GrtErrc::empty);
    EXPECT_EQ(Grt::get_fast_mutex<int>("k").error().key, "k");
    EXPECT_EQ(Grt::unregister("k").error().code, GrtErrc::empty);
    ASSERT_TRUE(Grt::register_fast_mutex<int>("f", 0));
    EXPECT_EQ(Grt::get_kmutex<int>("k").error().code, GrtErrc::unknown_key);
    EXPECT_EQ(Grt::unregister("k").error().code, GrtErrc::unknown_key);
    ASSERT_TRUE(Grt::unregister("f"));
    EXPECT_EQ(Grt::get_fast_mutex<int>("f").error().code, GrtErrc::empty) << "empty again";
    EXPECT_NE((GrtError{GrtErrc::empty, "k"}.message()),
              (GrtError{GrtErrc::unknown_key, "k"}.message()));
    ASSERT_TRUE(Grt::destroy());
    EXPECT_EQ(Grt::get_kmutex<int>("k").error().code, GrtErrc::not_initialized)
        << "not initialized comes before empty";
}

// A guard taken through a Grt handle prints (and formats) its value too.
TEST_F(GrtTest, AGuardTakenThroughAHandlePrintsItsValue) {
    ASSERT_TRUE(Grt::register_fast_mutex<int>("my_test_mutex", 0));
    auto g = (*Grt::get_fast_mutex<int>("my_test_mutex"))->lock().value();
    *g += 1;
    std::ostringstream os;
    os << "The value is: " << g;
    EXPECT_EQ(os.str(), "The value is: 1");
#if defined(__cpp_lib_format)
    EXPECT_EQ(std::format("{:>3}", g), "  1");
#endif
    ASSERT_TRUE(g.unlock());
    std::ostringstream released;
    released << g;
    EXPECT_EQ(released.str(), "(released)");
}

// A handle offers what its mutex offers: the alertable waits of a KMutex over
// the dispatcher (alertable_test.cpp has the waits themselves) and to_owned().
TEST_F(GrtTest, AHandleWaitsAlertablyAndCopiesTheValueOutAsItsMutexDoes) {
    auto ref = Grt::register_kmutex<int, backends::Dispatcher>("k", 1).value();
    auto held = ref->lock();
    ASSERT_TRUE(held);
    kmlab::test::on_new_thread([&] {
        nt::KeAlertThread(nt::KeGetCurrentThread(), nt::KernelMode);
        auto r = (*Grt::get_kmutex<int, backends::Dispatcher>("k"))->lock(alertable);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::alerted);
        auto timed = ref->lock_for(10ms, alertable_user);
        ASSERT_FALSE(timed);
        EXPECT_EQ(timed.error().code, Errc::busy);
    });
    **held = 2;
    ASSERT_TRUE(held->unlock());
    {
        auto g = (*Grt::get_kmutex<int, backends::Dispatcher>("k"))->lock_for(10ms, alertable);
        ASSERT_TRUE(g);
        EXPECT_EQ(**g, 2);
    }
    EXPECT_EQ((*Grt::get_kmutex<int, backends::Dispatcher>("k"))->to_owned().value(), 2);
    ASSERT_TRUE(Grt::register_fast_mutex<std::string>("s", std::string("irp")));
    EXPECT_EQ((*Grt::get_fast_mutex<std::string>("s"))->to_owned().value(), "irp");
}

// wdk-mutex's DriverMutexError::PagedPoolAllocFailed, which its Grt wraps in
// GrtError::DriverMutexError: here an allocation that fails throws
// std::bad_alloc out of the registration, and the registry is unchanged.
TEST_F(GrtTest, ARegistrationWhoseAllocationFailsRegistersNothing) {
    struct FailsToMove {
        FailsToMove() = default;
        FailsToMove(FailsToMove&&) { throw std::bad_alloc(); }
    };
    EXPECT_THROW((void)Grt::register_kmutex<FailsToMove>("k", FailsToMove{}), std::bad_alloc);
    EXPECT_EQ(Grt::get_kmutex<FailsToMove>("k").error().code, GrtErrc::empty);
    ASSERT_TRUE(Grt::register_fast_mutex<int>("k", 1));
    EXPECT_THROW((void)Grt::register_or_replace_kmutex<FailsToMove>("k", FailsToMove{}),
                 std::bad_alloc);
    EXPECT_EQ(*(*Grt::get_fast_mutex<int>("k"))->lock().value(), 1) << "not replaced";
}
