// ERESOURCE under the schedule explorer: the algorithm of
// kernel/resource_algorithm.hpp instantiated with the model's Platform (its
// state word and internal lock are model memory, every compare-exchange and
// spin a scheduling point) and the real dispatcher's KSEMAPHORE / KEVENT
// waits, with the dispatcher's lock and parking under the model
// (dispatcher_model.hpp), as model_dispatcher_test.cpp runs them.
//
// Each run checks: exclusive and shared exclusion (an exclusive owner alone,
// shared owners together), writes made under the exclusive lock never lost
// (a plain read-modify-write under TSO), the starvation rule both ways (a
// new plain shared acquirer, ExAcquireResourceSharedLite or
// ExAcquireSharedWaitForExclusive, is never granted while an exclusive
// acquirer is registered as waiting; ExAcquireSharedStarveExclusive never
// waits while the resource is owned shared), no thread left blocked (a
// deadlock is a violation), and the resource, its semaphore and its event
// back in their initial state.
//
// Blind spots (fields outside the seam): NumberOfSharedWaiters,
// NumberOfExclusiveWaiters, ContentionCount and the waiter-object pointers
// are written under the internal lock only and read under it (the lock's
// model operations order them); OwnerEntry.OwnerThread / OwnerCount are the
// owner's, read lock-free only to answer "is it me?"; the per-thread shared
// holds are each thread's own (another thread's release of them,
// ExReleaseResourceForThreadLite, is not modelled: conformance_resource
// stresses it).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kernel/resource_algorithm.hpp>
#include "dispatcher_core.hpp"
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

using resource::Mutant;
using resource::SharedKind;

// The starvation rule, checked at the moment of each grant (the hooks run
// with no scheduling point between the grant and the check).
struct StarvationCheck {
    static void shared_granted(const nt::ERESOURCE* r, SharedKind kind, bool waited) {
        if (!waited && kind != SharedKind::starve_exclusive && r->NumberOfExclusiveWaiters != 0)
            fail("a new shared acquirer passed a waiting exclusive acquirer");
    }
    // The other side: StarveExclusive is granted whenever the resource is
    // owned shared [ddi:exacquiresharedstarveexclusive], so it may wait only
    // while it is owned exclusive.
    static void shared_waits(const nt::ERESOURCE*, SharedKind kind, nt::ULONG w) {
        if (kind == SharedKind::starve_exclusive && (w & resource::kExclusive) == 0 &&
            (w & resource::kCountMask) != 0)
            fail("ExAcquireSharedStarveExclusive waited while the resource was owned shared");
    }
    static void exclusive_registered(const nt::ERESOURCE*) {}
    static void exclusive_granted(const nt::ERESOURCE*, bool) {}
};

// The dispatcher's waits, on a semaphore and an event at fixed addresses:
// in per-object lock mode the dispatcher hashes an object's address onto its
// lock stripes, so objects allocated afresh in each run could share a stripe
// in one run and not in its replay. One resource per run uses them.
struct ModelWaits {
    static inline nt::KSEMAPHORE semaphore{};
    static inline nt::KEVENT event{};
    static nt::PKSEMAPHORE make_semaphore() {
        nt::KeInitializeSemaphore(&semaphore, 0, nt::MAXLONG);
        return &semaphore;
    }
    static nt::PKEVENT make_event() {
        nt::KeInitializeEvent(&event, nt::SynchronizationEvent, nt::FALSE);
        return &event;
    }
    static void wait(nt::PVOID object) { resource::DispatcherWaits::wait(object); }
    static void release_shared(nt::PKSEMAPHORE s, nt::ULONG n) {
        resource::DispatcherWaits::release_shared(s, n);
    }
    static void release_exclusive(nt::PKEVENT e) {
        resource::DispatcherWaits::release_exclusive(e);
    }
    static void discard(nt::PKSEMAPHORE) noexcept {}  // the fixed objects stay
    static void discard(nt::PKEVENT) noexcept {}
};

template <Mutant M>
using ModelResource = resource::Algorithm<Platform, ModelWaits, StarvationCheck, M>;

// X: ExAcquireResourceExclusiveLite(TRUE); C: the same, then
// ExConvertExclusiveToSharedLite; S: ExAcquireResourceSharedLite (TRUE); s:
// the same with Wait = FALSE; T: ExAcquireSharedStarveExclusive(TRUE); W:
// ExAcquireSharedWaitForExclusive(TRUE); R: ExAcquireResourceSharedLite
// twice (the second a recursion, granted past exclusive waiters), released
// twice. Each runs as kernel/src/resource.cpp composes it: the uncontended
// path first, then the general routine.
enum class ROp { X, C, S, s, T, W, R };
using RPlan = std::vector<std::vector<ROp>>;
const RPlan k3x2 = {{ROp::X, ROp::S}, {ROp::S, ROp::C}, {ROp::T, ROp::s}};
const RPlan k4x1 = {{ROp::S}, {ROp::X}, {ROp::S}, {ROp::X}};
// Two exclusive waiters beside shared ones, WaitForExclusive and a recursion.
const RPlan k4x1w = {{ROp::R}, {ROp::X}, {ROp::W}, {ROp::X}};

struct State {
    nt::ERESOURCE r{};
    Atomic<int> data{0};
    int exclusive_in = 0;
    int shared_in = 0;
    int exclusive_acquired = 0;
    std::vector<nt::PKTHREAD> threads;
    explicit State(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) threads.push_back(kernel::create_thread_object(false));
    }
    ~State() {
        for (auto* t : threads) kernel::dereference_thread(t);
    }
};

template <Mutant M>
std::function<Program()> resource_program(DispatcherUnderModel& dut, const RPlan& plan) {
    using A = ModelResource<M>;
    return [&dut, plan] {
        dut.reset();
        auto s = std::make_shared<State>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) {
                    label(&s->r, sizeof s->r, "eresource");
                    label(&s->data, sizeof s->data, "data");
                }
                nt::PKTHREAD t = s->threads[i];
                kernel::detail::tls_current_thread = t;  // this fiber's KTHREAD
                for (ROp op : ops) {
                    if (op == ROp::X || op == ROp::C) {
                        if (A::try_exclusive_fast(&s->r)) {
                            s->r.OwnerEntry.OwnerCount = 1;
                            resource::store_owner(&s->r, resource::thread_id(t));
                        } else {
                            A::acquire_exclusive(t, &s->r, true);
                        }
                        if (++s->exclusive_in != 1 || s->shared_in != 0)
                            fail("an exclusive owner is not alone");
                        s->data.store(s->data.load(std::memory_order_relaxed) + 1,
                                      std::memory_order_relaxed);
                        ++s->exclusive_acquired;
                        --s->exclusive_in;
                        if (op == ROp::C) {
                            A::convert_to_shared(t, &s->r);
                            ++s->shared_in;
                            if (s->exclusive_in != 0)
                                fail("a shared owner beside an exclusive one");
                            (void)s->data.load(std::memory_order_relaxed);
                            --s->shared_in;
                        }
                    } else {
                        const SharedKind kind = op == ROp::T   ? SharedKind::starve_exclusive
                                                : op == ROp::W ? SharedKind::wait_for_exclusive
                                                               : SharedKind::shared;
                        if (!A::acquire_shared_fast(t, &s->r, kind) &&
                            !A::acquire_shared(t, &s->r, kind, op != ROp::s))
                            continue;
                        ++s->shared_in;
                        if (s->exclusive_in != 0) fail("a shared owner beside an exclusive one");
                        if (op == ROp::R) {
                            if (!A::acquire_shared(t, &s->r, kind, true))
                                fail("a recursive shared acquire was refused");
                            (void)s->data.load(std::memory_order_relaxed);
                            if (!A::release_shared_fast(t, &s->r) && !A::release(t, &s->r))
                                fail("release: the thread owns nothing");
                        }
                        (void)s->data.load(std::memory_order_relaxed);
                        --s->shared_in;
                    }
                    if (!A::release_shared_fast(t, &s->r) && !A::release_exclusive_fast(t, &s->r) &&
                        !A::release(t, &s->r))
                        fail("release: the thread owns nothing");
                }
            });
        }
        p.check = [s]() -> std::string {
            if (!A::is_free(&s->r)) return "the resource is not back in its initial state";
            if (s->r.SpinLock != 0) return "the internal lock is held";
            if (s->data.load() != s->exclusive_acquired)
                return "a write made under the exclusive lock was lost";
            if (auto* sem = s->r.SharedWaiters) {
                if (sem->Header.SignalState != 0 || !nt::IsListEmpty(&sem->Header.WaitListHead))
                    return "the shared waiters' semaphore is not back to 0, unwaited";
            }
            if (auto* ev = s->r.ExclusiveWaiters) {
                if (ev->Header.SignalState != 0 || !nt::IsListEmpty(&ev->Header.WaitListHead))
                    return "the exclusive waiters' event is not back to unsignaled, unwaited";
            }
            for (auto* t : s->threads) {
                if (t->Extra->waiting || !t->Extra->resource_holds.empty())
                    return "a thread still waits or holds the resource shared";
            }
            return {};
        };
        return p;
    };
}

template <Mutant M>
Result explore_resource(DispatcherUnderModel& dut, const RPlan& plan, const char* pname, Memory m,
                        int bound, const char* what) {
    Config c;
    c.memory = m;
    c.preemption_bound = bound;
    c.fiber_locals = DispatcherUnderModel::fiber_locals();
    const Result r = explore(c, resource_program<M>(dut, plan));
    report(std::string(what) + " " + pname, c, r);
    return r;
}

void explore_all(dispatcher::LockMode mode, const char* what) {
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    const int bound = std::max(kSanitized ? 1 : 2, bound_override());
    for (Memory m : {Memory::sc, Memory::tso}) {
        for (const auto& [plan, pname] :
             {std::pair{k3x2, "3x2"}, std::pair{k4x1, "4x1"}, std::pair{k4x1w, "4x1 R,X,W,X"}}) {
            const Result r = explore_resource<Mutant::none>(dut, plan, pname, m, bound, what);
            EXPECT_FALSE(r.violation) << describe(r);
            EXPECT_TRUE(r.complete);
        }
    }
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
}

TEST(ModelResource, ExclusionAndStarvationRuleGlobalLock) {
    explore_all(dispatcher::LockMode::global, "ERESOURCE (global lock)");
}
TEST(ModelResource, ExclusionAndStarvationRulePerObjectLocks) {
    explore_all(dispatcher::LockMode::per_object, "ERESOURCE (per-object locks)");
}

// Must-find mutants: the explorer has to report each.
TEST(ModelResource, FindsSharedAcquireIgnoringTheExclusiveOwner) {
    DispatcherUnderModel dut;
    const Result r = explore_resource<Mutant::shared_ignores_exclusive_owner>(
        dut, k4x1, "4x1", Memory::sc, 1, "mutant: shared ignores exclusive owner");
    EXPECT_TRUE(r.violation);
    EXPECT_NE(r.what.find("beside an exclusive"), std::string::npos) << r.what;
}

TEST(ModelResource, FindsAReleaseThatForgetsTheSharedWaiters) {
    DispatcherUnderModel dut;
    const Result r = explore_resource<Mutant::release_forgets_shared_waiters>(
        dut, k3x2, "3x2", Memory::sc, 1, "mutant: release forgets shared waiters");
    EXPECT_TRUE(r.violation);
    EXPECT_NE(r.what.find("deadlock"), std::string::npos) << r.what;
}

TEST(ModelResource, FindsASharedAcquirePassingAWaitingExclusive) {
    DispatcherUnderModel dut;
    const Result r = explore_resource<Mutant::shared_passes_exclusive_waiter>(
        dut, k4x1, "4x1", Memory::sc, 2, "mutant: shared passes exclusive waiter");
    EXPECT_TRUE(r.violation);
    EXPECT_NE(r.what.find("passed a waiting exclusive"), std::string::npos) << r.what;
}

// A waiter that sets WAITERS with fetch_or, not re-checking that it still
// cannot be granted: the owner's fast release may free the resource between
// the waiter's test and its registration, and nobody wakes it (a lost
// wake-up). It takes two preemptions to expose (not found at bound 1), so
// this test runs at bound 2 in every build, sanitizers included: the explorer
// stops at the first violation.
TEST(ModelResource, FindsRegistrationWithoutRecheck) {
    DispatcherUnderModel dut;
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Result r = explore_resource<Mutant::register_without_recheck>(
            dut, k4x1, "4x1", m, 2, "mutant: register without recheck");
        EXPECT_TRUE(r.violation);
    }
}

// ExAcquireSharedStarveExclusive waiting like a plain shared acquirer behind
// a waiting exclusive one: the starvation check's other side reports it.
TEST(ModelResource, FindsStarveExclusiveWaitingBehindAnExclusiveWaiter) {
    DispatcherUnderModel dut;
    const Result r = explore_resource<Mutant::starve_as_plain_shared>(
        dut, k3x2, "3x2", Memory::sc, 2, "mutant: StarveExclusive waits like plain shared");
    EXPECT_TRUE(r.violation);
    EXPECT_NE(r.what.find("StarveExclusive waited"), std::string::npos) << r.what;
}

}  // namespace
}  // namespace kmlab::explore
