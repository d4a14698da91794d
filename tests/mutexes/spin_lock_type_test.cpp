// kmlab::SpinLock<T> and kmlab::QueuedSpinLock<T>: one typed suite over both
// (mutual exclusion at 3 and 5 threads, the IRQL the guard raises to and
// restores exactly once, every Error with the kernel's bug check, guards
// moved across threads), plus the queued lock's FIFO hand-off and its
// per-thread entries past the array.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <kmlab/kmlab.hpp>
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::nt;

namespace {

template <class M>
inline constexpr bool is_queued = std::is_same_v<M, QueuedSpinLock<long>>;

template <class M>
class SpinLockType : public kmlab::test::Nt {};

struct Names {
    template <class M>
    static std::string GetName(int) {
        return std::string(M::kind());
    }
};
using SpinLocks = ::testing::Types<SpinLock<long>, QueuedSpinLock<long>>;
TYPED_TEST_SUITE(SpinLockType, SpinLocks, Names);

void set_irql(KIRQL irql) {
    kmlab::kernel::set_irql(KeGetCurrentThread(), irql);
}

}  // namespace

TYPED_TEST(SpinLockType, MutualExclusionWith3And5Threads) {
    for (int threads : {3, 5}) {
        TypeParam m(0L);
        long shadow = 0;
        std::atomic<int> inside{0};
        std::atomic<int> overlaps{0};
        constexpr int kIters = 20000;
        std::vector<std::thread> pool;
        for (int i = 0; i < threads; ++i) {
            pool.emplace_back([&] {
                for (int k = 0; k < kIters; ++k) {
                    auto g = (k % 7 == 0) ? m.try_lock() : m.lock();
                    if (!g) {
                        ASSERT_EQ(g.error().code, Errc::busy);
                        continue;
                    }
                    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
                    if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlaps.fetch_add(1);
                    ++**g;
                    ++shadow;
                    inside.fetch_sub(1, std::memory_order_relaxed);
                }
                EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
            });
        }
        for (auto& t : pool) t.join();
        EXPECT_EQ(overlaps.load(), 0) << threads << " threads";
        EXPECT_EQ(*m.lock().value(), shadow);
        EXPECT_TRUE(m.is_initial_state()) << "back to initial after " << threads << " threads";
    }
}

TYPED_TEST(SpinLockType, GuardRaisesToDispatchAndRestoresTheSavedIrqlOnce) {
    for (KIRQL irql : {PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL}) {
        set_irql(irql);
        TypeParam m(1L);
        {
            auto g = m.lock();
            ASSERT_TRUE(g) << g.error().message();
            EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
            EXPECT_FALSE(m.is_initial_state());
            EXPECT_EQ(**g, 1);
            // Moving the guard moves the release, not a second one.
            auto moved = std::move(*g);
            { auto again = std::move(moved); }
            EXPECT_EQ(KeGetCurrentIrql(), irql) << "restored by the one release";
            EXPECT_TRUE(m.is_initial_state());
        }
        EXPECT_EQ(KeGetCurrentIrql(), irql) << "and not again by the moved-from guards";
        auto g = m.try_lock();
        ASSERT_TRUE(g);
        EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
        ASSERT_TRUE(g->unlock());
        EXPECT_EQ(KeGetCurrentIrql(), irql);
        auto twice = g->unlock();
        ASSERT_FALSE(twice);
        EXPECT_EQ(twice.error().code, Errc::already_released);
        EXPECT_EQ(KeGetCurrentIrql(), irql);
    }
    set_irql(PASSIVE_LEVEL);
}

TYPED_TEST(SpinLockType, NestedLocksRestoreInReverseOrder) {
    TypeParam a(0L), b(0L);
    auto ga = a.lock();
    auto gb = b.lock();
    ASSERT_TRUE(ga && gb);
    ASSERT_TRUE(gb->unlock());
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL) << "b saved DISPATCH_LEVEL";
    ASSERT_TRUE(ga->unlock());
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);

    // Out of order: a's release restores PASSIVE_LEVEL while b is held, so
    // b's release is at the wrong IRQL [ddi:keacquireinstackqueuedspinlock]:
    // release in reverse order.
    ga = a.lock();
    gb = b.lock();
    ASSERT_TRUE(ga->unlock());
    auto r = gb->unlock();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::spin_lock_release_irql);
    EXPECT_EQ(r.error().bug_check, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(r.error().bug_check_parameter1, is_queued<TypeParam>
                                                  ? bugcheck::VERIFIER_KERNEL_SPIN_LOCK_RELEASE_IRQL
                                                  : bugcheck::VERIFIER_SPIN_LOCK_RELEASE_IRQL);
    EXPECT_FALSE(b.is_initial_state()) << "the guard keeps the lock";
    set_irql(DISPATCH_LEVEL);
    ASSERT_TRUE(gb->unlock());
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL) << "b saved DISPATCH_LEVEL";
    set_irql(PASSIVE_LEVEL);
    EXPECT_TRUE(a.is_initial_state() && b.is_initial_state());
}

TYPED_TEST(SpinLockType, AboveDispatchIsAnErrorAndNothingChanges) {
    TypeParam m(0L);
    set_irql(HIGH_LEVEL);
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto g = attempt == 0 ? m.lock() : m.try_lock();
        ASSERT_FALSE(g);
        EXPECT_EQ(g.error().code, Errc::irql_too_high);
        EXPECT_EQ(g.error().irql, HIGH_LEVEL);
        if constexpr (is_queued<TypeParam>) {
            EXPECT_EQ(g.error().bug_check, bugcheck::IRQL_NOT_GREATER_OR_EQUAL);
        } else {
            EXPECT_EQ(g.error().bug_check, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
            EXPECT_EQ(g.error().bug_check_parameter1, bugcheck::VERIFIER_SPIN_LOCK_ACQUIRE_IRQL);
            EXPECT_EQ(g.error().bug_check_parameter2, HIGH_LEVEL);
        }
        EXPECT_EQ(KeGetCurrentIrql(), HIGH_LEVEL);
        EXPECT_TRUE(m.is_initial_state());
    }
    set_irql(PASSIVE_LEVEL);
}

TYPED_TEST(SpinLockType, RecursiveAcquireIsAnErrorAndNothingChanges) {
    TypeParam m(0L);
    auto g = m.lock();
    ASSERT_TRUE(g);
    const auto word = m.word();
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto again = attempt == 0 ? m.lock() : m.try_lock();
        ASSERT_FALSE(again);
        EXPECT_EQ(again.error().code, Errc::recursive_acquire);
        EXPECT_EQ(again.error().bug_check, bugcheck::SPIN_LOCK_ALREADY_OWNED);
        EXPECT_EQ(again.error().bug_check_parameter1,
                  reinterpret_cast<ULONG_PTR>(again.error().mutex));
        EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
        EXPECT_EQ(m.word(), word);
    }
    auto inner = std::move(m).into_inner();
    ASSERT_FALSE(inner);
    EXPECT_EQ(inner.error().code, Errc::recursive_acquire);
    ASSERT_TRUE(g->unlock());
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

TYPED_TEST(SpinLockType, TryLockIsBusyWhileAnotherThreadHoldsIt) {
    TypeParam m(7L);
    auto g = m.lock();
    ASSERT_TRUE(g);
    kmlab::test::on_new_thread([&] {
        auto t = m.try_lock();
        ASSERT_FALSE(t);
        EXPECT_EQ(t.error().code, Errc::busy);
        EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL) << "a failed try leaves the IRQL";
        auto v = std::move(m).into_inner();
        ASSERT_FALSE(v);
        EXPECT_EQ(v.error().code, Errc::guard_alive);
    });
    ASSERT_TRUE(g->unlock());
    EXPECT_EQ(m.to_owned().value(), 7);
    EXPECT_EQ(std::move(m).into_inner().value(), 7);
    EXPECT_TRUE(m.is_initial_state());
}

TYPED_TEST(SpinLockType, AGuardMovedToAnotherThreadCannotReleaseThere) {
    TypeParam m(0L);
    auto g = m.lock();
    ASSERT_TRUE(g);
    auto moved = std::move(*g);
    kmlab::test::on_new_thread([&] {
        auto r = moved.unlock();
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::not_owner);
        EXPECT_EQ(r.error().bug_check, bugcheck::SPIN_LOCK_NOT_OWNED);
        EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    });
    EXPECT_FALSE(m.is_initial_state());
    ASSERT_TRUE(moved.unlock());
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    EXPECT_TRUE(m.is_initial_state());
}

TYPED_TEST(SpinLockType, ADroppedGuardAtAnIllegalIrqlReportsTheBugCheckInsteadOfReleasing) {
    TypeParam m(0L);
    {
        auto g = m.lock();
        ASSERT_TRUE(g);
        set_irql(HIGH_LEVEL);
        { auto sink = std::move(*g); }  // destroyed at HIGH_LEVEL
        auto fatal = kmlab::test::take_fatal_bug_checks();
        ASSERT_EQ(fatal.size(), 1u);
        EXPECT_EQ(fatal[0].code(), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
        EXPECT_EQ(KeGetCurrentIrql(), HIGH_LEVEL) << "nothing restored";
        EXPECT_FALSE(m.is_initial_state()) << "not released";
    }
    // Clean up as the owner would have.
    if constexpr (is_queued<TypeParam>) {
        set_irql(DISPATCH_LEVEL);
        KLOCK_QUEUE_HANDLE* h = reinterpret_cast<KLOCK_QUEUE_HANDLE*>(m.word());
        KeReleaseInStackQueuedSpinLockFromDpcLevel(h);
        kmlab::detail::tls_queued_slots.give_back(h);
    } else {
        set_irql(DISPATCH_LEVEL);
        KSPIN_LOCK* word = reinterpret_cast<KSPIN_LOCK*>(&m);  // the first member
        KeReleaseSpinLockFromDpcLevel(word);
    }
    set_irql(PASSIVE_LEVEL);
    EXPECT_TRUE(m.is_initial_state());
}

// A blocking wait while holding is a wait at DISPATCH_LEVEL (0xC4/0x3B).
TYPED_TEST(SpinLockType, WaitingWhileHoldingBugChecks) {
    TypeParam m(0L);
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    auto g = m.lock();
    ASSERT_TRUE(g);
    auto bc = EXPECT_BUG_CHECK(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nullptr),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_WAIT_AT_DISPATCH);
    ASSERT_TRUE(g->unlock());
}

TYPED_TEST(SpinLockType, HeldAtThreadExitIsReported) {
    TypeParam m(0L);
    kmlab::test::on_new_thread([&] {
        auto g = m.lock();
        ASSERT_TRUE(g);
        kmlab::test::keep_forever(std::move(*g));
    });
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u);
    EXPECT_EQ(fatal[0].code(), bugcheck::KERNEL_APC_PENDING_DURING_EXIT);
    EXPECT_EQ(fatal[0].parameter(3), DISPATCH_LEVEL);
}

// ---- QueuedSpinLock only ----

TEST(QueuedSpinLockType, HandOffIsInEnqueueOrder) {
    QueuedSpinLock<std::vector<int>> m;
    auto g = m.lock();
    ASSERT_TRUE(g);
    constexpr int kWaiters = 5;
    std::vector<std::thread> threads;
    for (int i = 0; i < kWaiters; ++i) {
        const ULONG_PTR tail = m.word();
        threads.emplace_back([&m, i] {
            auto w = m.lock();
            ASSERT_TRUE(w);
            (*w)->push_back(i);
        });
        // The waiter has exchanged itself in as the tail before the next starts.
        ASSERT_TRUE(kmlab::test::eventually([&] { return m.word() != tail; }));
    }
    ASSERT_TRUE(g->unlock());
    for (auto& t : threads) t.join();
    EXPECT_EQ(*m.lock().value(), (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_TRUE(m.is_initial_state());
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

TEST(QueuedSpinLockType, MoreNestedHoldsThanEntriesInTheArray) {
    constexpr int kLocks = kmlab::detail::QueuedSlots::kSlots + 4;
    std::vector<std::unique_ptr<QueuedSpinLock<int>>> locks;
    std::vector<QueuedSpinLock<int>::Guard> guards;
    for (int i = 0; i < kLocks; ++i) {
        locks.push_back(std::make_unique<QueuedSpinLock<int>>(i));
        auto g = locks.back()->lock();
        ASSERT_TRUE(g);
        guards.push_back(std::move(*g));
    }
    while (!guards.empty()) {
        ASSERT_TRUE(guards.back().unlock());
        guards.pop_back();
    }
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    for (auto& l : locks) EXPECT_TRUE(l->is_initial_state());
    EXPECT_EQ(kmlab::detail::tls_queued_slots.used, 0u);
}

// Past the per-thread list's inline entries (QueuedHolds::kInline, 32) the
// list grows: every hold is tracked, so each of 40 nested holds is released,
// innermost first and outermost first, and a recursive acquire of any of
// them, the 33rd and later included, is refused with 0xF (review finding:
// holds past 32 were counted, not listed, and could never be released).
TEST(QueuedSpinLockType, FortyNestedHoldsAreEachTrackedAndReleasedInEitherOrder) {
    constexpr int kLocks = 40;
    std::vector<std::unique_ptr<QueuedSpinLock<int>>> locks;
    for (int i = 0; i < kLocks; ++i) locks.push_back(std::make_unique<QueuedSpinLock<int>>(i));
    for (int order = 0; order < 2; ++order) {
        // Outermost first: each guard restores the IRQL it found, so the
        // holds are taken at DISPATCH_LEVEL to release them in that order.
        if (order == 1) set_irql(DISPATCH_LEVEL);
        std::vector<QueuedSpinLock<int>::Guard> guards;
        for (auto& l : locks) {
            auto g = l->lock();
            ASSERT_TRUE(g);
            guards.push_back(std::move(*g));
        }
        for (int i : {0, 31, 32, 33, 39}) {
            auto again = i % 2 ? locks[static_cast<size_t>(i)]->lock()
                               : locks[static_cast<size_t>(i)]->try_lock();
            ASSERT_FALSE(again) << "hold " << i + 1;
            EXPECT_EQ(again.error().code, Errc::recursive_acquire) << "hold " << i + 1;
            EXPECT_EQ(again.error().bug_check, bugcheck::SPIN_LOCK_ALREADY_OWNED);
        }
        for (int k = 0; k < kLocks; ++k) {
            const int i = order == 0 ? kLocks - 1 - k : k;
            ASSERT_TRUE(guards[static_cast<size_t>(i)].unlock()) << "hold " << i + 1;
        }
        EXPECT_EQ(kmlab::kernel::detail::tls_queued_holds.count, 0);
        for (auto& l : locks) EXPECT_TRUE(l->is_initial_state());
        set_irql(PASSIVE_LEVEL);
    }
}
