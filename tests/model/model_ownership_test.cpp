// ---- the Owner field of the kernel's FAST_MUTEX and KGUARDED_MUTEX ----
// ExAcquireFastMutex / KeAcquireGuardedMutex write Owner once they hold the
// lock bit, and the releases clear it before they free it (SEMANTICS.md 2.3);
// Owner is a plain field with no scheduling point of its own (explore.hpp),
// so a release that clears it after the Count release (mutant
// tests/mutants/14-fast-mutex-owner-cleared-after-count.patch, survivor s3 of
// issue 19's audit) overwrites the next owner's name only in a schedule with
// three preemptions: the holder preempted in its critical section so that a
// second thread waits, the holder preempted inside the release's gate signal
// so that a third thread takes the free lock bit, and that third thread
// preempted inside its critical section so that the late clear lands there.
// ModelDispatcher's FAST_MUTEX configurations run at bound 2 and never see
// it; this one runs the 3 x 1 program at bound 3 (about a thousand schedules
// per search) and checks, in every run, that Owner names the acquirer right
// after its acquire and still names it just before its release, and that it
// is cleared at the end.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kernel/dispatcher.hpp>
#include <kmlab/kernel/routines.hpp>
#include "dispatcher_core.hpp"
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

struct OwnedMutexes {
    nt::FAST_MUTEX fast;
    nt::KGUARDED_MUTEX guarded;
    Atomic<int> data{0};  // model memory: the holder can be preempted inside
    int acquired = 0;
    std::vector<nt::PKTHREAD> threads;
    explicit OwnedMutexes(std::size_t n) {
        nt::ExInitializeFastMutex(&fast);
        nt::KeInitializeGuardedMutex(&guarded);
        for (std::size_t i = 0; i < n; ++i) threads.push_back(kernel::create_thread_object(false));
    }
    ~OwnedMutexes() {
        for (auto* t : threads) kernel::dereference_thread(t);
    }
    OwnedMutexes(const OwnedMutexes&) = delete;
    OwnedMutexes& operator=(const OwnedMutexes&) = delete;
};

template <bool Guarded>
nt::PKTHREAD owner_of(const OwnedMutexes& s) {
    return dispatcher::load_owner(Guarded ? s.guarded.Owner : s.fast.Owner);
}

template <bool Guarded>
std::function<Program()> owned_program(DispatcherUnderModel& dut, std::size_t threads) {
    return [&dut, threads] {
        dut.reset();
        auto s = std::make_shared<OwnedMutexes>(threads);
        Program p;
        for (std::size_t i = 0; i < threads; ++i) {
            p.threads.push_back([s, i] {
                if (i == 0) {
                    if constexpr (Guarded) {
                        label(&s->guarded, sizeof s->guarded, "guarded mutex");
                    } else {
                        label(&s->fast, sizeof s->fast, "fast mutex");
                    }
                    label(&s->data, sizeof s->data, "data");
                }
                nt::PKTHREAD me = s->threads[i];
                kernel::detail::tls_current_thread = me;  // this fiber's KTHREAD
                if constexpr (Guarded) {
                    nt::KeAcquireGuardedMutex(&s->guarded);
                } else {
                    nt::ExAcquireFastMutex(&s->fast);
                }
                if (owner_of<Guarded>(*s) != me)
                    fail("Owner does not name the thread that just acquired the mutex");
                s->data.store(s->data.load(std::memory_order_relaxed) + 1,
                              std::memory_order_relaxed);
                ++s->acquired;
                if (owner_of<Guarded>(*s) != me)
                    fail(
                        "Owner changed while its owner held the mutex (a release cleared it late)");
                if constexpr (Guarded) {
                    nt::KeReleaseGuardedMutex(&s->guarded);
                } else {
                    nt::ExReleaseFastMutex(&s->fast);
                }
            });
        }
        p.check = [s]() -> std::string {
            if (owner_of<Guarded>(*s) != nullptr) return "the mutex still names an owner";
            if ((Guarded ? s->guarded.Count : s->fast.Count) != nt::FM_LOCK_BIT)
                return "the mutex's Count is not back to free";
            if (s->data.load() != s->acquired) return "a write made under the mutex was lost";
            return {};
        };
        return p;
    };
}

template <bool Guarded>
void explore_owned(dispatcher::LockMode mode, const char* mode_name) {
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    Config c;
    c.memory = Memory::sc;
    c.preemption_bound = std::max(kSanitized ? 1 : 3, bound_override());
    c.fiber_locals = DispatcherUnderModel::fiber_locals();
    const Result r = explore(c, owned_program<Guarded>(dut, 3));
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    report(std::string(Guarded ? "KGUARDED_MUTEX Owner (" : "FAST_MUTEX Owner (") + mode_name +
               ") 3x1",
           c, r);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

TEST(ModelOwnership, FastMutexOwnerGlobalLock) {
    explore_owned<false>(dispatcher::LockMode::global, "global lock");
}
TEST(ModelOwnership, FastMutexOwnerPerObjectLocks) {
    explore_owned<false>(dispatcher::LockMode::per_object, "per-object locks");
}
TEST(ModelOwnership, GuardedMutexOwnerGlobalLock) {
    explore_owned<true>(dispatcher::LockMode::global, "global lock");
}
TEST(ModelOwnership, GuardedMutexOwnerPerObjectLocks) {
    explore_owned<true>(dispatcher::LockMode::per_object, "per-object locks");
}

}  // namespace
}  // namespace kmlab::explore
