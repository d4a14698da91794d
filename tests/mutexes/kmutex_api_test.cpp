// KMutex specifics over each backend: timed acquisition, the recursion limit
// and thread exit while owning it.
#include <atomic>
#include <new>
#include <thread>
#include <type_traits>

#include <kmlab/kmlab.hpp>
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::nt;
using namespace std::chrono_literals;

template <class B>
class KMutexApi : public kmlab::test::Nt {};
using Backends = ::testing::Types<backends::Futex, backends::Spin, backends::Dispatcher>;
struct BackendNames {
    template <class B>
    static std::string GetName(int) {
        return std::string(B::name());
    }
};
TYPED_TEST_SUITE(KMutexApi, Backends, BackendNames);

TYPED_TEST(KMutexApi, LockForTimesOutAfterReallyWaiting) {
    KMutex<int, TypeParam> m(1);
    auto g = m.lock();
    ASSERT_TRUE(g);
    kmlab::test::on_new_thread([&] {
        const auto t0 = std::chrono::steady_clock::now();
        auto r = m.lock_for(50ms);
        const auto took = std::chrono::steady_clock::now() - t0;
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::busy);
        EXPECT_EQ(r.error().status, STATUS_TIMEOUT);
        EXPECT_GE(took, 50ms);
        EXPECT_LT(took, 5s);
        EXPECT_EQ(KeGetCurrentThread()->KernelApcDisable, 0);
    });
    ASSERT_TRUE(g->unlock());
    kmlab::test::on_new_thread([&] {
        auto r = m.lock_for(50ms);
        ASSERT_TRUE(r);
        EXPECT_EQ(**r, 1);
    });
    EXPECT_TRUE(m.is_initial_state());
}

TYPED_TEST(KMutexApi, LockForSucceedsWhenReleasedDuringTheWait) {
    KMutex<int, TypeParam> m(0);
    auto g = m.lock();
    ASSERT_TRUE(g);
    std::thread waiter([&] {
        auto r = m.lock_for(10s);
        ASSERT_TRUE(r);
        **r = 42;
    });
    std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(g->unlock());
    waiter.join();
    EXPECT_EQ(*m.lock().value(), 42);
}

TYPED_TEST(KMutexApi, RecursionStopsAtMinlong) {
    KMutex<int, TypeParam> m(0);
    auto g = m.lock();
    ASSERT_TRUE(g);
    m.raw().debug_set_signal_state(MINLONG);  // as if acquired 2^31 + 1 times
    auto r = m.lock();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::recursion_limit);
    EXPECT_EQ(r.error().status, STATUS_MUTANT_LIMIT_EXCEEDED);
    EXPECT_EQ(m.signal_state(), MINLONG) << "unchanged";
    m.raw().debug_set_signal_state(0);
    ASSERT_TRUE(g->unlock());
    EXPECT_TRUE(m.is_initial_state());
}

// Every acquisition is a wait: above DISPATCH_LEVEL it answers as KeWait does
// (0xC4/0x3B), not with the 0xA of a routine's ceiling.
TYPED_TEST(KMutexApi, AboveDispatchLevelEveryAcquisitionIsTheWaitsBugCheck) {
    KMutex<int, TypeParam> m(0);
    KIRQL old;
    KeRaiseIrql(HIGH_LEVEL, &old);
    auto locked = m.lock();
    auto tried = m.try_lock();
    auto timed = m.lock_for(1ms);
    KeLowerIrql(old);
    for (auto* r : {&locked, &tried, &timed}) {
        ASSERT_FALSE(*r);
        EXPECT_EQ(r->error().code, Errc::irql_too_high);
        EXPECT_EQ(r->error().irql, HIGH_LEVEL);
        EXPECT_EQ(r->error().bug_check, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
        EXPECT_EQ(r->error().bug_check_parameter1, bugcheck::VERIFIER_WAIT_AT_DISPATCH);
    }
    EXPECT_TRUE(m.is_initial_state());
}

TYPED_TEST(KMutexApi, AThreadThatExitsOwningItBugChecksThreadTerminateHeldMutex) {
    using M = KMutex<int, TypeParam>;
    M m(0);
    PKTHREAD dead = nullptr;
    kmlab::test::on_new_thread([&] {
        dead = KeGetCurrentThread();
        auto g = m.lock();
        ASSERT_TRUE(g);
        // Move the guard into storage that is never destroyed: the thread
        // exits still owning the mutex, as a driver thread that forgot to
        // release it would.
        alignas(typename M::Guard) static unsigned char storage[sizeof(typename M::Guard)];
        new (storage) typename M::Guard(std::move(*g));
    });
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u);
    EXPECT_EQ(fatal[0].code(), kmlab::bugcheck::THREAD_TERMINATE_HELD_MUTEX);
    EXPECT_EQ(fatal[0].parameter(1), reinterpret_cast<ULONG_PTR>(dead));
}

namespace {
// What thread rundown names as the held mutex (bug check parameter 2): the
// KMUTEX for the dispatcher backend, the KMutex itself for the others.
template <class M>
ULONG_PTR reported_address(M& m) {
    if constexpr (std::is_same_v<typename M::backend, backends::Dispatcher>) {
        return reinterpret_cast<ULONG_PTR>(m.raw().native_handle());
    } else {
        return reinterpret_cast<ULONG_PTR>(&m);
    }
}

// Keeps `g` alive past the end of the calling thread: the thread exits still
// owning the mutex, as a driver thread that forgot to release it would.
template <class M>
void leak_guard(typename M::Guard&& g) {
    kmlab::test::keep_forever(std::move(g));
}
}  // namespace

// The kernel names a mutex the thread still owns (the first KMUTEX on its
// mutant list [ros-thrd]), not the last one it ever acquired.
TYPED_TEST(KMutexApi, ThreadExitReportsTheMutexStillHeldNotTheLastAcquired) {
    using M = KMutex<int, TypeParam>;
    M a(0), b(0);
    kmlab::test::on_new_thread([&] {
        auto ga = a.lock();
        ASSERT_TRUE(ga);
        {
            auto gb = b.lock();
            ASSERT_TRUE(gb);
        }
        leak_guard<M>(std::move(*ga));
    });
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u);
    EXPECT_EQ(fatal[0].code(), kmlab::bugcheck::THREAD_TERMINATE_HELD_MUTEX);
    EXPECT_EQ(fatal[0].parameter(2), reported_address(a))
        << "reported " << (fatal[0].parameter(2) == reported_address(b) ? "B" : "another mutex")
        << " instead of A, the mutex still held";
}

// A KMutex destroyed while its owner still holds it (its guard kept, as a
// refused release leaves it) must leave the owner's list of held KMutexes:
// before the fix the owner's next acquisition linked through the freed node
// (heap-use-after-free under ASan) and thread exit reported the destroyed
// mutex as held. (Over the dispatcher a KMUTEX freed while owned leaves the
// kernel's own MutantListHead dangling, as on Windows: not tested here.)
template <class Backend>
void destroyed_while_owned_leaves_its_owners_list() {
    using M = KMutex<int, Backend>;
    ULONG_PTR destroyed = 0;
    kmlab::test::on_new_thread([&] {
        auto* m = new M(0);
        auto g = m->lock();
        ASSERT_TRUE(g);
        destroyed = reported_address(*m);
        leak_guard<M>(std::move(*g));
        delete m;
        M other(0);
        auto g2 = other.lock();  // links after the destroyed one, if it is still there
        ASSERT_TRUE(g2);
    });
    for (const auto& f : kmlab::test::take_fatal_bug_checks()) {
        if (f.code() == kmlab::bugcheck::THREAD_TERMINATE_HELD_MUTEX) {
            EXPECT_NE(f.parameter(2), destroyed) << "thread exit reported the destroyed mutex";
        }
    }
}
TEST(KMutexDestroy, DestroyedWhileOwnedLeavesItsOwnersListFutex) {
    destroyed_while_owned_leaves_its_owners_list<kmlab::backends::Futex>();
}
TEST(KMutexDestroy, DestroyedWhileOwnedLeavesItsOwnersListSpin) {
    destroyed_while_owned_leaves_its_owners_list<kmlab::backends::Spin>();
}

// After the bug-check handler returns (tests install one that does), the
// mutex held at exit is abandoned as a mutant is on the dispatcher
// (SEMANTICS.md 1.5): unowned and free, and the next acquirer gets it.
TYPED_TEST(KMutexApi, AfterTheHandlerReturnsAMutexHeldAtExitIsAbandonedToTheNextAcquirer) {
    using M = KMutex<int, TypeParam>;
    M m(0);
    std::atomic<bool> owned{false};
    bool acquired = false;
    std::thread waiter([&] {
        while (!owned) std::this_thread::yield();
        auto r = m.lock_for(5s);
        acquired = r.has_value();
        if (acquired) {
            EXPECT_EQ(m.owner(), KeGetCurrentThread());
            EXPECT_EQ(m.signal_state(), 0) << "a first acquisition, not a recursive one";
        }
    });
    kmlab::test::on_new_thread([&] {
        auto g = m.lock();
        ASSERT_TRUE(g);
        owned = true;
        std::this_thread::sleep_for(20ms);  // let the waiter block
        leak_guard<M>(std::move(*g));
    });
    waiter.join();
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u);
    EXPECT_EQ(fatal[0].code(), kmlab::bugcheck::THREAD_TERMINATE_HELD_MUTEX);
    EXPECT_TRUE(acquired) << "the waiter hung behind the dead owner (lock_for(5s) timed out)";
    EXPECT_TRUE(m.is_initial_state());
}

// A stale owner must not match a new thread whose KTHREAD reuses the dead
// owner's address: the new thread's first lock() is a first acquisition.
TYPED_TEST(KMutexApi, ANewThreadAtTheDeadOwnersKthreadAddressDoesNotOwnItsMutex) {
    using M = KMutex<int, TypeParam>;
    M m(0);
    PKTHREAD dead = nullptr;
    kmlab::test::on_new_thread([&] {
        dead = KeGetCurrentThread();
        auto g = m.lock();
        ASSERT_TRUE(g);
        leak_guard<M>(std::move(*g));
    });
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u);
    // Start threads until one gets the freed KTHREAD's address (the allocator
    // hands it back quickly; give up after many tries).
    bool reused = false;
    for (int i = 0; i < 1000 && !reused; ++i) {
        kmlab::test::on_new_thread([&] {
            if (KeGetCurrentThread() != dead) return;
            reused = true;
            auto r = m.lock_for(1s);
            ASSERT_TRUE(r) << "the new thread could not take the abandoned mutex";
            EXPECT_EQ(m.signal_state(), 0)
                << "the new thread acquired it recursively: the stale owner matched it";
        });
    }
    if (!reused) GTEST_SKIP() << "no new KTHREAD reused the dead thread's address";
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
    EXPECT_TRUE(m.is_initial_state());
}

TEST(KMutexNative, TheDispatcherBackendIsARealKmutex) {
    KMutex<int, backends::Dispatcher> m(0);
    PKMUTEX native = m.raw().native_handle();
    EXPECT_EQ(native->Header.Type, MutantObject);
    auto g = m.lock();
    ASSERT_TRUE(g);
    EXPECT_EQ(native->OwnerThread, KeGetCurrentThread());
    EXPECT_EQ(KeReadStateMutex(native), 0);
    // The NT face and the idiomatic type share the object: recursion through either.
    ASSERT_EQ(KeWaitForSingleObject(native, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    EXPECT_EQ(m.signal_state(), -1);
    EXPECT_EQ(KeReleaseMutex(native, FALSE), -1);
    ASSERT_TRUE(g->unlock());
    EXPECT_EQ(KeReadStateMutex(native), 1);
}

// A KMutex over the dispatcher is KeWaitForSingleObject, which may follow a
// Wait = TRUE release (KeSetEvent(..., TRUE)): its IRQL rule reads the saved
// WaitIrql, not the DISPATCH_LEVEL the hold raised to, and the wait ends the
// hold. KMutex once checked the raised IRQL, refused with 0xC4/0x3B and left
// the thread holding the dispatcher lock.
TEST(KMutexNative, TheDispatcherBackendMayFollowAWaitTrueRelease) {
    KMutex<int, backends::Dispatcher> m(0);
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    KeSetEvent(&e, IO_NO_INCREMENT, TRUE);
    ASSERT_TRUE(KeGetCurrentThread()->WaitNext);
    auto g = m.lock();
    ASSERT_TRUE(g) << g.error().message();
    EXPECT_FALSE(KeGetCurrentThread()->WaitNext);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    EXPECT_TRUE(g->unlock());
}
