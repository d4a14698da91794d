// The one-locked-instruction lock-bit mutex (mutexes/raw.hpp, OneLockBit;
// issue 20) under the explorer: an exchange to acquire, a plain store to
// release, the waiters paying a membarrier and counting themselves in a
// table outside the lock. Exhausted at 3x2 and 4x1 under sequential
// consistency and x86-TSO, with the destroy-after-unlock check of every
// model configuration (model_program.hpp); then what must be found: the
// heavy fence switched off (the store-buffer lost wake-up, TSO only), the
// count read before the release store (a lost wake-up even under SC), and
// the count kept in the lock (read after the lock is destroyed).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include <kmlab/explore.hpp>
#include <kmlab/mutexes/raw.hpp>
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

using kmlab::detail::OneLockBit;
using kmlab::detail::OneLockPark;
using kmlab::detail::OneLockShortcut;
using kmlab::detail::ParkedWaiters;

// The parked-waiter table is a static of the platform, outside every lock:
// each run starts it at zero (a run that ended in a violation may have left
// a waiter counted).
template <OneLockShortcut S = OneLockShortcut::none, OneLockPark Park = OneLockPark::per_sleep>
struct OneLockFace : LockBitFace<OneLockBit<Futex, S, Park>> {
    OneLockFace() {
        for (auto& slot : ParkedWaiters<Platform>::slots) *slot.count.raw() = 0;
    }
};

// Restores the exact membarrier however the test leaves.
struct FenceMode {
    explicit FenceMode(HeavyFence m) { set_heavy_fence(m); }
    ~FenceMode() { set_heavy_fence(HeavyFence::exact); }
    FenceMode(const FenceMode&) = delete;
    FenceMode& operator=(const FenceMode&) = delete;
};

template <class Face>
Result search(const std::string& name, const Plan& plan, Memory memory, int bound,
              bool destroy_after_last = true) {
    Config c;
    c.memory = memory;
    c.preemption_bound = std::max(bound, bound_override());
    const Result r = explore(c, program<Face>(plan, destroy_after_last));
    report(name, c, r);
    return r;
}

// ---- the protocol: exhausted, 0 violations ----

// Bound 2 by default (seconds on the 2-core VM); bound 3 (KMLAB_MODEL_BOUND=3,
// the soak) takes minutes. Sanitizer builds: bound 1.
TEST(ModelOneLock, ExhaustedCleanAt3x2And4x1) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const int bound = kSanitized ? 1 : 2;
        for (const auto& [name, plan] :
             {std::pair{"OneLockBit<Futex> 4x1", k4x1}, std::pair{"OneLockBit<Futex> 3x2", k3x2}}) {
            const Result r = search<OneLockFace<>>(name, plan, m, bound);
            EXPECT_FALSE(r.violation) << name << ": " << describe(r);
            EXPECT_TRUE(r.complete) << name;
        }
    }
}

// Membarrier refused: the waiters' sleeps are bounded, so a wake missed for
// want of the pairing costs latency, never a hang. Two threads only: with two
// waiters whose timeouts take turns, the model may keep the releaser's free
// store in its store buffer for ever (it drains a buffer only as a choice,
// and a timeout while only a buffered store is pending is free), a livelock
// that hardware, whose store buffers drain in nanoseconds, cannot have (3x1
// reports "no end after 20000 steps" that way).
TEST(ModelOneLock, MembarrierRefusedNeverHangs) {
    FenceMode fallback(HeavyFence::fallback);
    const Result r = search<OneLockFace<>>("OneLockBit<Futex> 2x1, membarrier refused", k2x1,
                                           Memory::tso, kSanitized ? 1 : 2);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

// The variant that keeps a waiter counted from its first sleep until it owns
// the lock (fewer membarriers, a wake system call on every release meanwhile).
TEST(ModelOneLock, CountedPerAcquisitionExhaustedClean) {
    using Face = OneLockFace<OneLockShortcut::none, OneLockPark::per_acquisition>;
    for (Memory m : {Memory::sc, Memory::tso}) {
        const int bound = kSanitized ? 1 : 2;
        for (const auto& [name, plan] :
             {std::pair{"OneLockBit<Futex> per acquisition 4x1", k4x1},
              std::pair{"OneLockBit<Futex> per acquisition 3x2", k3x2}}) {
            const Result r = search<Face>(name, plan, m, bound);
            EXPECT_FALSE(r.violation) << name << ": " << describe(r);
            EXPECT_TRUE(r.complete) << name;
        }
    }
}

// ---- must-find mutants ----

// The heavy fence switched off (HeavyFence::broken: the waiter's fence
// drains only its own store buffer): the releaser's free store waits in its
// store buffer while it reads the count as 0, the waiter counts itself,
// still reads the lock held and sleeps on a lock that is about to be free
// with nobody to wake it. Only TSO shows it; SC cannot.
TEST(ModelOneLock, MissingHeavyFenceLosesAWakeup) {
    FenceMode broken(HeavyFence::broken);
    const Result r = search<OneLockFace<>>("OneLockBit<Futex> 2x1, no membarrier (must fail)", k2x1,
                                           Memory::tso, 1);
    ASSERT_TRUE(r.violation) << "TSO exploration missed the store-buffer lost wake-up";
    EXPECT_NE(r.what.find("deadlock"), std::string::npos) << describe(r);
    std::printf("%s\n", describe(r).c_str());

    const Result sc =
        search<OneLockFace<>>("OneLockBit<Futex> 2x1, no membarrier", k2x1, Memory::sc, 2);
    EXPECT_FALSE(sc.violation) << describe(sc);
    EXPECT_TRUE(sc.complete);
}

// The release reads the count first and then stores the free lock: a waiter
// that counts itself and sleeps between the two is never woken. No fence can
// close that window (the store has not been made yet), so SC finds it.
TEST(ModelOneLock, CountReadBeforeTheReleaseStoreLosesAWakeup) {
    const Result r = search<OneLockFace<OneLockShortcut::count_read_first>>(
        "OneLockBit count read before store 2x1 (must fail)", k2x1, Memory::sc, 2);
    ASSERT_TRUE(r.violation) << "the explorer no longer finds the release's window";
    EXPECT_NE(r.what.find("deadlock"), std::string::npos) << describe(r);
    std::printf("%s\n", describe(r).c_str());
}

// The count kept in the lock, read after the release store: the next owner
// may take the lock, release it and destroy it in between (POSIX allows the
// destroy), so the read is of freed memory.
TEST(ModelOneLock, CountInTheLockIsReadAfterDestroy) {
    const Result r = search<OneLockFace<OneLockShortcut::count_in_lock>>(
        "OneLockBit count in the lock 2x1, destroy (must fail)", k2x1, Memory::sc, 2);
    ASSERT_TRUE(r.violation) << "the explorer no longer finds the read after destroy";
    EXPECT_NE(r.what.find("destroyed"), std::string::npos) << describe(r);
    std::printf("%s\n", describe(r).c_str());
}

}  // namespace
}  // namespace kmlab::explore
