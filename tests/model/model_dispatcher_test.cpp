// ---- the emulated dispatcher itself ----
// KeWaitForSingleObject / KeReleaseMutex on a KMUTEX, run through the real
// dispatcher (wait blocks, FIFO wait lists, satisfying, timeouts, deferred
// wakes) with its lock and parking under the model (explore/dispatcher.hpp),
// in both dispatcher lock modes (one object here, so the per-object mode
// takes one stripe: the other objects and waits, several objects on several
// stripes among them, are model_dispatcher_objects_test.cpp). "timed" is a 1-hour relative timeout,
// which expires only when the scheduler says so: the real clock cannot
// reach it within a run, so runs stay deterministic.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kernel/routines.hpp>
#include "dispatcher_core.hpp"
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

struct DispatcherKMutex {
    nt::KMUTEX mutex;
    Atomic<int> data{0};
    int in_cs = 0;
    int acquired = 0;
    std::vector<nt::PKTHREAD> threads;
    explicit DispatcherKMutex(std::size_t n) {
        nt::KeInitializeMutex(&mutex, 0);
        for (std::size_t i = 0; i < n; ++i) threads.push_back(kernel::create_thread_object(false));
    }
    ~DispatcherKMutex() {
        for (auto* t : threads) kernel::dereference_thread(t);
    }
};

std::function<Program()> dispatcher_program(DispatcherUnderModel& dut, const Plan& plan) {
    return [&dut, plan] {
        dut.reset();
        auto s = std::make_shared<DispatcherKMutex>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) {
                    label(&s->mutex, sizeof s->mutex, "kmutex");
                    label(&s->data, sizeof s->data, "data");
                }
                kernel::detail::tls_current_thread = s->threads[i];  // this fiber's KTHREAD
                for (Op op : ops) {
                    nt::LARGE_INTEGER timeout{};
                    timeout.QuadPart = op == Op::timed ? -36'000'000'000LL : 0;  // 1 h, or poll
                    const nt::NTSTATUS st =
                        nt::KeWaitForSingleObject(&s->mutex, nt::Executive, nt::KernelMode,
                                                  nt::FALSE, op == Op::lock ? nullptr : &timeout);
                    if (st == nt::STATUS_TIMEOUT && op != Op::lock) continue;
                    if (st != nt::STATUS_SUCCESS) fail("KeWaitForSingleObject: unexpected status");
                    if (++s->in_cs != 1) fail("two threads own the KMUTEX");
                    s->data.store(s->data.load(std::memory_order_relaxed) + 1,
                                  std::memory_order_relaxed);
                    ++s->acquired;
                    --s->in_cs;
                    nt::KeReleaseMutex(&s->mutex, nt::FALSE);
                }
            });
        }
        p.check = [s]() -> std::string {
            if (nt::KeReadStateMutex(&s->mutex) != 1 || s->mutex.OwnerThread != nullptr ||
                !nt::IsListEmpty(&s->mutex.Header.WaitListHead))
                return "the KMUTEX is not back in its initial state";
            if (s->data.load() != s->acquired) return "a write made under the KMUTEX was lost";
            for (auto* t : s->threads) {
                if (t->Extra->waiting || !nt::IsListEmpty(&t->MutantListHead))
                    return "a thread still waits or owns a mutant";
            }
            return {};
        };
        return p;
    };
}

void explore_dispatcher(dispatcher::LockMode mode, const char* mode_name) {
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    for (Memory m : {Memory::sc, Memory::tso}) {
        // 3x2 here times out first and waits again after (a late wake must
        // not end the next wait).
        const Plan k3x2_timed_first = {
            {Op::lock, Op::lock}, {Op::timed, Op::lock}, {Op::try_lock, Op::timed}};
        for (const auto& [plan, pname] :
             {std::pair{k4x1, "4x1"}, std::pair{k3x2_timed_first, "3x2"}}) {
            Config c;
            c.memory = m;
            c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
            c.fiber_locals = DispatcherUnderModel::fiber_locals();
            const Result r = explore(c, dispatcher_program(dut, plan));
            report(std::string("dispatcher KMUTEX (") + mode_name + ") " + pname, c, r);
            EXPECT_FALSE(r.violation) << describe(r);
            EXPECT_TRUE(r.complete);
        }
    }
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
}

// ---- FAST_MUTEX and KGUARDED_MUTEX through their NT routines ----
// Their lock word is kernel/src/fast_mutex.cpp's (native atomics, which the
// explorer does not interleave); what runs under the model is their gate:
// the contended acquire's wait_internal and the release's signal_internal,
// through the real dispatcher in both lock modes. A fiber is preempted at
// the dispatcher's lock and parking, so a release can signal between a
// waiter's registering and its parking, and the other way round.
struct NtMutexes {
    nt::FAST_MUTEX fast;
    nt::KGUARDED_MUTEX guarded;
    Atomic<int> data{0};  // a model location: a holder can be preempted inside
    int in_cs = 0;
    int acquired = 0;
    std::vector<nt::PKTHREAD> threads;
    explicit NtMutexes(std::size_t n) {
        nt::ExInitializeFastMutex(&fast);
        nt::KeInitializeGuardedMutex(&guarded);
        for (std::size_t i = 0; i < n; ++i) threads.push_back(kernel::create_thread_object(false));
    }
    ~NtMutexes() {
        for (auto* t : threads) kernel::dereference_thread(t);
    }
};

template <bool Guarded>
std::function<Program()> nt_mutex_program(DispatcherUnderModel& dut, const Plan& plan) {
    return [&dut, plan] {
        dut.reset();
        auto s = std::make_shared<NtMutexes>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) {
                    if constexpr (Guarded) {
                        label(&s->guarded, sizeof s->guarded, "guarded mutex");
                    } else {
                        label(&s->fast, sizeof s->fast, "fast mutex");
                    }
                    label(&s->data, sizeof s->data, "data");
                }
                kernel::detail::tls_current_thread = s->threads[i];  // this fiber's KTHREAD
                for (Op op : ops) {
                    bool got = true;
                    if constexpr (Guarded) {
                        if (op == Op::lock) {
                            nt::KeAcquireGuardedMutex(&s->guarded);
                        } else {
                            got = nt::KeTryToAcquireGuardedMutex(&s->guarded) != nt::FALSE;
                        }
                    } else {
                        if (op == Op::lock) {
                            nt::ExAcquireFastMutex(&s->fast);
                        } else {
                            got = nt::ExTryToAcquireFastMutex(&s->fast) != nt::FALSE;
                        }
                    }
                    if (!got) continue;
                    if (++s->in_cs != 1) fail("two threads own the mutex");
                    s->data.store(s->data.load(std::memory_order_relaxed) + 1,
                                  std::memory_order_relaxed);
                    ++s->acquired;
                    --s->in_cs;
                    if constexpr (Guarded) {
                        nt::KeReleaseGuardedMutex(&s->guarded);
                    } else {
                        nt::ExReleaseFastMutex(&s->fast);
                    }
                }
            });
        }
        p.check = [s]() -> std::string {
            const nt::LONG count = Guarded ? s->guarded.Count : s->fast.Count;
            const nt::DISPATCHER_HEADER& gate =
                Guarded ? s->guarded.Gate.Header : s->fast.Event.Header;
            if (count != nt::FM_LOCK_BIT) return "the mutex's Count is not back to free";
            if ((Guarded ? s->guarded.Owner : s->fast.Owner) != nullptr)
                return "the mutex still names an owner";
            if (s->data.load() != s->acquired) return "a write made under the mutex was lost";
            if (!nt::IsListEmpty(&gate.WaitListHead)) return "a thread still waits on the gate";
            if (gate.SignalState != 0) return "the gate was left signaled";
            for (auto* t : s->threads) {
                if (t->Extra->waiting || t->CombinedApcDisable != 0 || t->Irql != nt::PASSIVE_LEVEL)
                    return "a thread still waits, or was left in a region or at a raised IRQL";
            }
            return {};
        };
        return p;
    };
}

template <bool Guarded>
void explore_nt_mutex(dispatcher::LockMode mode, const char* mode_name) {
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    // "timed" has no NT counterpart here: it tries instead.
    for (const auto& [plan, pname] : {std::pair{k3x1, "3x1"}, std::pair{k4x1, "4x1"}}) {
        Config c;
        c.memory = Memory::sc;
        c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
        c.fiber_locals = DispatcherUnderModel::fiber_locals();
        const Result r = explore(c, nt_mutex_program<Guarded>(dut, plan));
        report(std::string(Guarded ? "dispatcher KGUARDED_MUTEX (" : "dispatcher FAST_MUTEX (") +
                   mode_name + ") " + pname,
               c, r);
        EXPECT_FALSE(r.violation) << describe(r);
        EXPECT_TRUE(r.complete);
    }
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
}

TEST(ModelDispatcher, FastMutexGateGlobalLock) {
    explore_nt_mutex<false>(dispatcher::LockMode::global, "global lock");
}
TEST(ModelDispatcher, FastMutexGatePerObjectLocks) {
    explore_nt_mutex<false>(dispatcher::LockMode::per_object, "per-object locks");
}
TEST(ModelDispatcher, GuardedMutexGateGlobalLock) {
    explore_nt_mutex<true>(dispatcher::LockMode::global, "global lock");
}
TEST(ModelDispatcher, GuardedMutexGatePerObjectLocks) {
    explore_nt_mutex<true>(dispatcher::LockMode::per_object, "per-object locks");
}

// Must-find mutants of the KMUTEX path (dispatcher::testing::set_mutant, in
// the explorer's copy of dispatcher.cpp only): KeReleaseMutex's wait test
// wakes nobody (a waiter sleeps for good), and a timed-out waiter returns
// without withdrawing its wait (its wait block stays linked).
void expect_kmutex_mutant_found(dispatcher::testing::Mutant mutant, const char* name,
                                const Plan& plan, const char* expected) {
    DispatcherUnderModel dut;
    dispatcher::testing::set_mutant(mutant);
    Config c;
    c.memory = Memory::sc;
    c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
    c.fiber_locals = DispatcherUnderModel::fiber_locals();
    const Result r = explore(c, dispatcher_program(dut, plan));
    dispatcher::testing::set_mutant(dispatcher::testing::Mutant::none);
    report(std::string("dispatcher KMUTEX (global lock) ") + name + " (must fail)", c, r);
    EXPECT_TRUE(r.violation) << "the explorer misses mutant " << name;
    EXPECT_NE(r.what.find(expected), std::string::npos) << describe(r);
}

TEST(ModelDispatcher, FindsKMutexReleaseThatWakesNobody) {
    expect_kmutex_mutant_found(dispatcher::testing::Mutant::mutant_wake_removed, "no wake", k4x1,
                               "deadlock");
}
TEST(ModelDispatcher, FindsKMutexTimeoutLeavingItsWaitBlock) {
    expect_kmutex_mutant_found(dispatcher::testing::Mutant::timeout_leaves_blocks,
                               "timeout leaves its block", k4x1, "not back in its initial state");
}

TEST(ModelDispatcher, KMutexGlobalLock) {
    explore_dispatcher(dispatcher::LockMode::global, "global lock");
}
TEST(ModelDispatcher, KMutexPerObjectLocks) {
    explore_dispatcher(dispatcher::LockMode::per_object, "per-object locks");
}

}  // namespace
}  // namespace kmlab::explore
