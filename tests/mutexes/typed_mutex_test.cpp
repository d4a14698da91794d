// One suite, run over every mutex type x backend: mutual exclusion with odd and
// even thread counts, try_lock, IRQL rules, recursion rules, guard unlock(),
// the kernel state each type changes, and the lock back in its initial state.
#include <atomic>
#include <new>

#include <kmlab/kmlab.hpp>
#include "mutex_types.hpp"
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::nt;
using namespace std::chrono_literals;

template <class M>
inline constexpr bool is_kmutex = M::recursive;
template <class M>
inline constexpr bool is_fast = M::raises_irql;

template <class M>
class TypedMutex : public kmlab::test::Nt {};

using kmlab::test::AllMutexes;
TYPED_TEST_SUITE(TypedMutex, AllMutexes, kmlab::test::MutexNames);

TYPED_TEST(TypedMutex, MutualExclusionWith2_3_5And8Threads) {
    for (int threads : {2, 3, 5, 8}) {
        TypeParam m(0L);
        // Two plain counters updated non-atomically inside the lock: any
        // overlap of critical sections shows up as a lost update or a torn pair.
        long shadow = 0;
        std::atomic<int> inside{0};
        std::atomic<int> overlaps{0};
        constexpr int kIters = 4000;
        std::vector<std::thread> pool;
        for (int i = 0; i < threads; ++i) {
            pool.emplace_back([&] {
                for (int k = 0; k < kIters; ++k) {
                    auto g = m.lock();
                    ASSERT_TRUE(g.has_value()) << g.error().message();
                    if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlaps.fetch_add(1);
                    ++**g;
                    ++shadow;
                    inside.fetch_sub(1, std::memory_order_relaxed);
                }
            });
        }
        for (auto& t : pool) t.join();
        EXPECT_EQ(overlaps.load(), 0) << threads << " threads";
        EXPECT_EQ(*m.lock().value(), long{threads} * kIters);
        EXPECT_EQ(shadow, long{threads} * kIters);
        EXPECT_TRUE(m.is_initial_state())
            << "state back to initial after " << threads << " threads";
    }
}

TYPED_TEST(TypedMutex, TryLockFailsWhileAnotherThreadHoldsIt) {
    TypeParam m(7L);
    {
        auto g = m.lock();
        ASSERT_TRUE(g);
        kmlab::test::on_new_thread([&] {
            auto r = m.try_lock();
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error().code, Errc::busy);
            EXPECT_EQ(r.error().status, STATUS_TIMEOUT);
            EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
            EXPECT_EQ(KeGetCurrentThread()->CombinedApcDisable, 0u)
                << "a failed try leaves no trace";
        });
    }
    auto g = m.try_lock();
    ASSERT_TRUE(g);
    EXPECT_EQ(**g, 7);
}

TYPED_TEST(TypedMutex, EachTypeChangesTheKernelStateItShould) {
    TypeParam m(0L);
    PKTHREAD t = KeGetCurrentThread();
    {
        auto g = m.lock();
        ASSERT_TRUE(g);
        EXPECT_EQ(m.owner(), t);
        if constexpr (is_kmutex<TypeParam>) {
            EXPECT_EQ(t->KernelApcDisable, -1) << "a KMUTEX disables normal kernel APCs";
            EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
            EXPECT_EQ(m.signal_state(), 0);
        } else if constexpr (is_fast<TypeParam>) {
            EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL) << "a FAST_MUTEX raises to APC_LEVEL";
            EXPECT_EQ(t->CombinedApcDisable, 0u);
            EXPECT_EQ(m.count(), 0);
        } else {
            EXPECT_EQ(t->SpecialApcDisable, -1) << "a guarded mutex enters a guarded region";
            EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
            EXPECT_EQ(m.count(), 0);
        }
    }
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    EXPECT_EQ(t->CombinedApcDisable, 0u);
    EXPECT_TRUE(m.is_initial_state());
}

TYPED_TEST(TypedMutex, AcquiringAboveTheCeilingIsAnErrorWithTheKernelsBugCheck) {
    TypeParam m(0L);
    KIRQL old = KeRaiseIrqlToDpcLevel();
    auto r = m.lock();
    KeLowerIrql(old);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::irql_too_high);
    EXPECT_EQ(r.error().irql, DISPATCH_LEVEL);
    ASSERT_TRUE(r.error().is_bug_check());
    if constexpr (is_kmutex<TypeParam>) {
        EXPECT_EQ(r.error().bug_check, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
        EXPECT_EQ(r.error().bug_check_parameter1, bugcheck::VERIFIER_WAIT_AT_DISPATCH);
        // A zero-timeout try is legal at DISPATCH_LEVEL for a KMUTEX.
        old = KeRaiseIrqlToDpcLevel();
        {
            auto g = m.try_lock();
            EXPECT_TRUE(g);
        }
        KeLowerIrql(old);
    } else if constexpr (is_fast<TypeParam>) {
        EXPECT_EQ(r.error().bug_check, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
        EXPECT_EQ(r.error().bug_check_parameter1, bugcheck::VERIFIER_FAST_MUTEX_ACQUIRE_IRQL);
    } else {
        EXPECT_EQ(r.error().bug_check, bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    }
    const BugCheck bc = r.error().to_bug_check();
    EXPECT_EQ(bc.code(), r.error().bug_check);
    EXPECT_TRUE(m.is_initial_state()) << "nothing was acquired";
}

TYPED_TEST(TypedMutex, RecursionRules) {
    TypeParam m(0L);
    auto outer = m.lock();
    ASSERT_TRUE(outer);
    if constexpr (is_kmutex<TypeParam>) {
        auto inner = m.lock();
        ASSERT_TRUE(inner) << "a KMUTEX is recursive";
        EXPECT_EQ(m.signal_state(), -1);
        EXPECT_EQ(KeGetCurrentThread()->KernelApcDisable, -1) << "APCs are disabled once";
        **inner = 5;
        EXPECT_THROW((void)**outer, std::logic_error) << "only the most recent guard gives access";
        auto early = outer->unlock();
        ASSERT_FALSE(early);
        EXPECT_EQ(early.error().code, Errc::nested_guard_alive);
        ASSERT_TRUE(inner->unlock());
        EXPECT_EQ(**outer, 5) << "the outer guard gives access again";
    } else {
        auto again = m.lock();
        ASSERT_FALSE(again);
        EXPECT_EQ(again.error().code, Errc::recursive_acquire);
        EXPECT_EQ(again.error().bug_check, bugcheck::MUTEX_ALREADY_OWNED);
        auto tried = m.try_lock();
        ASSERT_FALSE(tried);
        EXPECT_EQ(tried.error().code, Errc::busy) << "the kernel's try returns FALSE to the owner";
    }
    ASSERT_TRUE(outer->unlock());
    EXPECT_TRUE(m.is_initial_state());
}

TYPED_TEST(TypedMutex, GuardUnlockChecksFirstAndNeverReleasesTwice) {
    TypeParam m(0L);
    auto g = m.lock();
    ASSERT_TRUE(g);
    // Raise above what the release allows: unlock() refuses and keeps the lock.
    KIRQL old;
    KeRaiseIrql(HIGH_LEVEL, &old);
    auto bad = g->unlock();
    KeLowerIrql(old);
    ASSERT_FALSE(bad);
    EXPECT_TRUE(bad.error().code == Errc::irql_too_high ||
                bad.error().code == Errc::wrong_release_irql)
        << bad.error().message();
    EXPECT_TRUE(bad.error().is_bug_check());
    EXPECT_TRUE(g->owns_lock());
    EXPECT_EQ(m.owner(), KeGetCurrentThread());
    ASSERT_TRUE(g->unlock());
    EXPECT_FALSE(g->owns_lock());
    auto twice = g->unlock();
    ASSERT_FALSE(twice);
    EXPECT_EQ(twice.error().code, Errc::already_released);
    EXPECT_TRUE(m.is_initial_state()) << "released exactly once";
}

TYPED_TEST(TypedMutex, AGuardMovedToAnotherThreadCannotReleaseThere) {
    TypeParam m(0L);
    auto g = m.lock();
    ASSERT_TRUE(g);
    auto moved = std::move(*g);
    EXPECT_FALSE(g->owns_lock());
    kmlab::test::on_new_thread([&] {
        auto r = moved.unlock();
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::not_owner);
        if constexpr (is_kmutex<TypeParam>) {
            EXPECT_EQ(r.error().status, STATUS_MUTANT_NOT_OWNED);
        } else {
            EXPECT_EQ(r.error().bug_check, bugcheck::THREAD_NOT_MUTEX_OWNER);
        }
    });
    ASSERT_TRUE(moved.unlock());
    EXPECT_TRUE(m.is_initial_state());
}

TYPED_TEST(TypedMutex, ADroppedGuardAtAnIllegalIrqlReportsTheBugCheckInsteadOfReleasing) {
    TypeParam m(0L);
    {
        auto g = m.lock();
        ASSERT_TRUE(g);
        KIRQL old;
        KeRaiseIrql(HIGH_LEVEL, &old);
        auto doomed = std::move(*g);
        { auto sink = std::move(doomed); }  // destroyed at HIGH_LEVEL
        KeLowerIrql(old);
        auto fatal = kmlab::test::take_fatal_bug_checks();
        ASSERT_EQ(fatal.size(), 1u);
        EXPECT_NE(fatal[0].code(), 0u);
        EXPECT_EQ(m.owner(), KeGetCurrentThread()) << "not released";
    }
    // Clean up as the owner would have: the test leaves the kernel state clean.
    if constexpr (is_kmutex<TypeParam>) {
        m.raw().release(KeGetCurrentThread());
    } else {
        PKTHREAD t = KeGetCurrentThread();
        t->Irql = PASSIVE_LEVEL;
        t->CombinedApcDisable = 0;
    }
}

// Held at thread exit: a KMutex bug checks THREAD_TERMINATE_HELD_MUTEX; a
// FastMutex leaves the thread at APC_LEVEL and a GuardedMutex inside a guarded
// region, both KERNEL_APC_PENDING_DURING_EXIT (0x20: 0, CombinedApcDisable,
// IRQL, 0) [bc:0x20].
TYPED_TEST(TypedMutex, HeldAtThreadExitIsReported) {
    TypeParam m(0L);
    kmlab::test::on_new_thread([&] {
        auto g = m.lock();
        ASSERT_TRUE(g);
        // Keep the guard alive past the thread's end (never destroyed).
        kmlab::test::keep_forever(std::move(*g));
    });
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u) << TypeParam::kind() << " held at thread exit went unreported";
    if constexpr (is_kmutex<TypeParam>) {
        EXPECT_EQ(fatal[0].code(), bugcheck::THREAD_TERMINATE_HELD_MUTEX);
    } else if constexpr (is_fast<TypeParam>) {
        EXPECT_EQ(fatal[0].code(), bugcheck::KERNEL_APC_PENDING_DURING_EXIT);
        EXPECT_EQ(fatal[0].parameter(2), 0u);
        EXPECT_EQ(fatal[0].parameter(3), APC_LEVEL);
    } else {
        EXPECT_EQ(fatal[0].code(), bugcheck::KERNEL_APC_PENDING_DURING_EXIT);
        EXPECT_EQ(fatal[0].parameter(2), 0xFFFF0000u) << "SpecialApcDisable -1";
        EXPECT_EQ(fatal[0].parameter(3), PASSIVE_LEVEL);
    }
}
