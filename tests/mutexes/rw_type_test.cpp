// One suite over both idiomatic reader/writer locks, kmlab::PushLock<T> and
// kmlab::RwSpinLock<T>: readers and writers under stress with 3 and 5
// threads (the invariant checked under the lock, the lock back in its
// initial state after), shared holds that coexist, writer preference, the
// try operations, the errors each returns before anything changes, and the
// guards (distinct types, const access when shared, one release each).
// Sources: [ddi:reader-writer-spin-locks], [ddi:exacquirepushlockshared],
// [ddi:exacquirepushlockexclusive]; the rules: kernel/rules_rw_lock.hpp.
#include <atomic>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include <kmlab/kmlab.hpp>
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::nt;

namespace {

// Two fields a writer keeps equal: a reader that overlaps a writer can see
// them differ.
struct Pair {
    long a = 0;
    long b = 0;
};

template <class L>
inline constexpr bool is_push = std::is_same_v<L, PushLock<typename L::value_type>>;

// A PushLock caller must have normal kernel APCs disabled; a RwSpinLock
// caller need not.
template <class L>
std::optional<CriticalRegion> region_for() {
    if constexpr (is_push<L>) return CriticalRegion::enter().value();
    return std::nullopt;
}

// Is a writer waiting (claimed or parked), by the lock word?
template <class L>
bool writer_waits(const L& l) {
    if constexpr (is_push<L>)
        return rw_lock::push::exclusive_waiters(l.word()) != 0;
    else
        return (l.word() & rw_lock::ex_spin::kExclusive) != 0;
}

template <class L>
class RwType : public kmlab::test::Nt {};

using RwLocks = ::testing::Types<PushLock<Pair>, RwSpinLock<Pair>>;
struct RwNames {
    template <class L>
    static std::string GetName(int) {
        return std::string(L::kind());
    }
};
TYPED_TEST_SUITE(RwType, RwLocks, RwNames);

TYPED_TEST(RwType, GuardsAreDistinctAndSharedAccessIsConst) {
    using L = TypeParam;
    static_assert(!std::is_same_v<typename L::ExclusiveGuard, typename L::SharedGuard>);
    static_assert(std::is_same_v<decltype(*std::declval<typename L::SharedGuard&>()), const Pair&>);
    static_assert(std::is_same_v<decltype(*std::declval<typename L::ExclusiveGuard&>()), Pair&>);
    auto r = region_for<L>();
    L l;
    {
        auto g = l.lock();
        ASSERT_TRUE(g.has_value()) << g.error().message();
        (*g)->a = 4;
        (*g)->b = 4;
    }
    auto s = l.lock_shared();
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ((*s)->a, 4);
}

TYPED_TEST(RwType, StressReadersAndWritersWith3And5Threads) {
    using L = TypeParam;
    for (int threads : {3, 5}) {
        L l;
        std::atomic<int> readers{0}, writers{0}, violations{0}, torn{0};
        std::atomic<long> writes{0};
        constexpr int kIters = 40000;
        std::vector<std::thread> pool;
        for (int i = 0; i < threads; ++i) {
            pool.emplace_back([&, i] {
                auto r = region_for<L>();
                for (int k = 0; k < kIters; ++k) {
                    const int kind = (k + i) % 8;
                    if (kind == 0 || kind == 5) {  // writer (kind 5 tries first)
                        auto g = kind == 5 ? l.try_lock() : l.lock();
                        if (!g && g.error().code == Errc::busy) g = l.lock();
                        ASSERT_TRUE(g.has_value()) << g.error().message();
                        if (writers.fetch_add(1) != 0 || readers.load() != 0) ++violations;
                        ++(*g)->a;
                        std::atomic_signal_fence(std::memory_order_seq_cst);
                        ++(*g)->b;
                        writes.fetch_add(1, std::memory_order_relaxed);
                        writers.fetch_sub(1);
                    } else {  // reader (kind 3 tries first)
                        auto g = kind == 3 ? l.try_lock_shared() : l.lock_shared();
                        if (!g && g.error().code == Errc::busy) g = l.lock_shared();
                        ASSERT_TRUE(g.has_value()) << g.error().message();
                        readers.fetch_add(1);
                        if (writers.load() != 0) ++violations;
                        if ((*g)->a != (*g)->b) ++torn;
                        readers.fetch_sub(1);
                    }
                }
            });
        }
        for (auto& t : pool) t.join();
        EXPECT_EQ(violations.load(), 0) << threads << " threads";
        EXPECT_EQ(torn.load(), 0) << threads << " threads";
        {
            auto r = region_for<L>();
            auto g = l.lock_shared();
            ASSERT_TRUE(g.has_value());
            EXPECT_EQ((*g)->a, writes.load());
            EXPECT_EQ((*g)->b, writes.load());
        }
        EXPECT_TRUE(l.is_initial_state()) << threads << " threads, word " << l.word();
    }
}

TYPED_TEST(RwType, ReadersShareAndExcludeWriters) {
    using L = TypeParam;
    auto r = region_for<L>();
    L l;
    auto s = l.lock_shared();
    ASSERT_TRUE(s.has_value());
    kmlab::test::on_new_thread([&] {
        auto r2 = region_for<L>();
        auto s2 = l.try_lock_shared();
        EXPECT_TRUE(s2.has_value()) << "a second reader shares the lock";
        auto w = l.try_lock();
        ASSERT_FALSE(w.has_value());
        EXPECT_EQ(w.error().code, Errc::busy);
    });
    ASSERT_TRUE(s->unlock().has_value());
    EXPECT_TRUE(l.is_initial_state());
    auto w = l.try_lock();
    ASSERT_TRUE(w.has_value());
    kmlab::test::on_new_thread([&] {
        auto r2 = region_for<L>();
        auto s2 = l.try_lock_shared();
        ASSERT_FALSE(s2.has_value());
        EXPECT_EQ(s2.error().code, Errc::busy);
    });
}

// "While the writer waits, no new reader threads can acquire the lock"
// [ddi:reader-writer-spin-locks]; "The caller is put into a wait state if
// there is an exclusive waiter" [ddi:exacquirepushlockshared].
TYPED_TEST(RwType, AWaitingWriterHoldsBackNewReaders) {
    using L = TypeParam;
    auto r = region_for<L>();
    L l;
    auto s = l.lock_shared();
    ASSERT_TRUE(s.has_value());
    std::atomic<bool> written{false};
    std::thread writer([&] {
        auto r2 = region_for<L>();
        auto g = l.lock();
        ASSERT_TRUE(g.has_value());
        (*g)->a = (*g)->b = 1;
        written = true;
    });
    ASSERT_TRUE(kmlab::test::eventually([&] { return writer_waits(l); }));
    kmlab::test::on_new_thread([&] {
        auto r2 = region_for<L>();
        auto s2 = l.try_lock_shared();
        ASSERT_FALSE(s2.has_value()) << "a reader entered while a writer waited";
        EXPECT_EQ(s2.error().code, Errc::busy);
    });
    EXPECT_FALSE(written.load());
    ASSERT_TRUE(s->unlock().has_value());
    writer.join();
    EXPECT_TRUE(written.load());
    EXPECT_TRUE(l.is_initial_state());
}

TYPED_TEST(RwType, RecursiveExclusiveAcquireIsRefused) {
    using L = TypeParam;
    auto r = region_for<L>();
    L l;
    auto g = l.lock();
    ASSERT_TRUE(g.has_value());
    const KIRQL irql = KeGetCurrentIrql();
    auto again = l.lock();
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code, Errc::recursive_acquire);
    EXPECT_EQ(again.error().bug_check, bugcheck::MUTEX_ALREADY_OWNED);
    auto shared = l.lock_shared();
    ASSERT_FALSE(shared.has_value());
    EXPECT_EQ(shared.error().code, Errc::recursive_acquire);
    EXPECT_EQ(KeGetCurrentIrql(), irql) << "a refused acquire leaves the IRQL as it found it";
    auto t = l.try_lock();
    ASSERT_FALSE(t.has_value());
    EXPECT_EQ(t.error().code, Errc::busy);
}

TYPED_TEST(RwType, GuardReleasesOnceAndMovedFromReleasesNothing) {
    using L = TypeParam;
    auto r = region_for<L>();
    L l;
    auto g = l.lock_shared();
    ASSERT_TRUE(g.has_value());
    auto moved = std::move(*g);
    EXPECT_FALSE(g->owns_lock());
    EXPECT_TRUE(moved.owns_lock());
    ASSERT_TRUE(moved.unlock().has_value());
    auto again = moved.unlock();
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code, Errc::already_released);
    EXPECT_TRUE(l.is_initial_state());
}

// A guard is bound to the thread that acquired it, as SpinLock's is: a
// release on another thread is refused (Errc::not_owner) and changes
// nothing: the word, the owner, and no thread's IRQL (RwSpinLock would
// otherwise restore the acquirer's saved IRQL on the wrong thread). Back on
// its own thread the guard releases normally, and the acquirer may then
// take the lock again.
TYPED_TEST(RwType, AGuardMovedToAnotherThreadCannotReleaseThere) {
    using L = TypeParam;
    auto r = region_for<L>();
    L l;
    const KIRQL irql = KeGetCurrentIrql();
    for (bool exclusive : {true, false}) {
        auto check = [&](auto& guard) {
            const auto word = l.word();
            const auto owner = l.owner();
            kmlab::test::on_new_thread([&] {
                auto r2 = region_for<L>();
                auto mine = std::move(guard);
                auto u = mine.unlock();
                ASSERT_FALSE(u.has_value());
                EXPECT_EQ(u.error().code, Errc::not_owner);
                EXPECT_EQ(u.error().bug_check, bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
                EXPECT_TRUE(mine.owns_lock()) << "the guard keeps the lock";
                EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL) << "this thread's IRQL untouched";
                guard = std::move(mine);
            });
            EXPECT_EQ(l.word(), word) << "nothing changed";
            EXPECT_EQ(l.owner(), owner);
            ASSERT_TRUE(guard.owns_lock());
            ASSERT_TRUE(guard.unlock().has_value());
            EXPECT_EQ(KeGetCurrentIrql(), irql);
            EXPECT_TRUE(l.is_initial_state());
        };
        if (exclusive) {
            auto g = l.lock();
            ASSERT_TRUE(g.has_value());
            check(*g);
        } else {
            auto g = l.lock_shared();
            ASSERT_TRUE(g.has_value());
            check(*g);
        }
        auto again = l.lock();
        ASSERT_TRUE(again.has_value()) << again.error().message();
    }
}

// ---- PushLock's own rules ----

TEST(PushLockType, RefusedWithNormalKernelApcsEnabled) {
    PushLock<int> l(0);
    auto g = l.lock();
    ASSERT_FALSE(g.has_value());
    EXPECT_EQ(g.error().code, Errc::apcs_enabled);
    EXPECT_EQ(g.error().bug_check, bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    auto s = l.try_lock_shared();
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, Errc::apcs_enabled);
    EXPECT_TRUE(l.is_initial_state());
    {
        auto gr = GuardedRegion::enter();  // disables them too
        EXPECT_TRUE(l.lock().has_value());
    }
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);  // and so does APC_LEVEL
    EXPECT_TRUE(l.lock_shared().has_value());
    KeLowerIrql(old);
    EXPECT_TRUE(l.is_initial_state());
}

TEST(PushLockType, RefusedAboveApcLevel) {
    PushLock<int> l(0);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    auto g = l.lock_shared();
    KeLowerIrql(old);
    ASSERT_FALSE(g.has_value());
    EXPECT_EQ(g.error().code, Errc::irql_too_high);
    EXPECT_EQ(g.error().bug_check, bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(g.error().bug_check_parameter2, DISPATCH_LEVEL);
    EXPECT_TRUE(l.is_initial_state());
}

TEST(PushLockType, WordHasTheKernelsEncoding) {
    auto r = CriticalRegion::enter();
    PushLock<int> l(0);
    {
        auto g = l.lock();
        EXPECT_EQ(l.word(), 0x1u);
    }
    {
        auto a = l.lock_shared();
        EXPECT_EQ(l.word(), 0x11u);
        auto b = l.lock_shared();
        EXPECT_EQ(l.word(), 0x21u);
    }
    EXPECT_EQ(l.word(), 0u);
}

// ---- RwSpinLock's IRQL ----

TEST(RwSpinLockType, GuardsRaiseToDispatchAndRestoreTheSavedIrqlOnce) {
    RwSpinLock<int> l(0);
    ASSERT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    {
        auto g = l.lock();
        ASSERT_TRUE(g.has_value());
        EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
        EXPECT_EQ(l.word(), rw_lock::ex_spin::kExclusive);
        ASSERT_TRUE(g->unlock().has_value());
        EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
        KIRQL old;
        KeRaiseIrql(APC_LEVEL, &old);
        // The guard's destructor runs here: released already, it must not
        // restore PASSIVE_LEVEL again.
    }
    EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
    {
        auto s = l.lock_shared();
        ASSERT_TRUE(s.has_value());
        EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
        EXPECT_EQ(l.word(), 1);
        auto moved = std::move(*s);
    }
    EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL) << "restored to the IRQL saved at acquire";
    KeLowerIrql(PASSIVE_LEVEL);
    EXPECT_TRUE(l.is_initial_state());
}

TEST(RwSpinLockType, TryLeavesTheIrqlWhenItFails) {
    RwSpinLock<int> l(0);
    auto g = l.lock();
    ASSERT_TRUE(g.has_value());
    kmlab::test::on_new_thread([&] {
        auto s = l.try_lock_shared();
        ASSERT_FALSE(s.has_value());
        EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    });
}

TEST(RwSpinLockType, RefusedAboveDispatchLevel) {
    RwSpinLock<int> l(0);
    KIRQL old;
    KeRaiseIrql(HIGH_LEVEL, &old);
    auto g = l.lock();
    auto s = l.try_lock_shared();
    KeLowerIrql(old);
    ASSERT_FALSE(g.has_value());
    EXPECT_EQ(g.error().code, Errc::irql_too_high);
    EXPECT_EQ(g.error().bug_check, bugcheck::IRQL_NOT_GREATER_OR_EQUAL);
    ASSERT_FALSE(s.has_value());
    EXPECT_TRUE(l.is_initial_state());
}

}  // namespace
