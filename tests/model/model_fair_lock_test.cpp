// The dispatcher's database lock (kmlab/kernel/fair_lock.hpp: a FIFO ticket
// lock whose waiters spin, then sleep on a futex slot of their own) under the
// schedule explorer: the program of model_program.hpp at 3x2 and 4x1 (the
// lock has no timed acquire: the plans' "timed" is a lock), sequentially
// consistent and under x86-TSO, exhaustively within the bound, the lock
// destroyed right after its last release. Every run also checks FIFO: the
// order of acquisitions equals the order in which the tickets were taken (a
// thread that has its ticket is served before any thread that takes one
// later). And the mutants each search must find.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/kernel/fair_lock.hpp>
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

using kernel::fair_lock::Mutant;

// FairLock's parking over the model's futex: a wait the scheduler may end
// spuriously (Config::spurious_wakeups), a wake of every sleeper on the word.
struct ModelPark {
    using platform = Platform;
    static void wait(Atomic<std::uint32_t>& word, std::uint32_t expected) {
        detail::futex_wait(word.raw(), expected, false);
    }
    static void wake_all(Atomic<std::uint32_t>& word) { detail::futex_wake(word.raw(), INT_MAX); }
};

// The order records live outside the face, which the last owner destroys.
// Model threads run one at a time and switch only at the seam, so these
// plain vectors, written by the hook right after the ticket's RMW (no seam
// operation in between), record each ticket in the same step as its RMW.
template <Mutant M = Mutant::none, int Slots = 8>
struct FairFace {
    kernel::FairLock<ModelPark, M, Slots> lock;
    std::shared_ptr<std::vector<int>> ticketed = std::make_shared<std::vector<int>>();
    std::shared_ptr<std::vector<int>> acquired = std::make_shared<std::vector<int>>();

    bool acquire(nt::PKTHREAD, Op op) {
        const int self = current_thread();
        auto record = [&](std::uint32_t) { ticketed->push_back(self); };
        if (op == Op::try_lock) {
            if (!lock.try_lock(record)) return false;
        } else {
            lock.lock(record);
        }
        acquired->push_back(self);
        if ((*ticketed)[acquired->size() - 1] != self)
            fail("FairLock not FIFO: a later ticket was served before an earlier one");
        return true;
    }
    void release(nt::PKTHREAD) { lock.unlock(); }
    bool is_free() const { return lock.quiescent(); }
};

template <class Face>
void expect_clean(const std::string& name, const Plan& plan, Memory memory, int bound) {
    Config c;
    c.memory = memory;
    c.preemption_bound = std::max(bound, bound_override());
    const Result r = explore(c, program<Face>(plan, true));
    report(name, c, r);
    EXPECT_FALSE(r.violation) << name << ": " << describe(r);
    EXPECT_TRUE(r.complete) << name;
}

// Under the sanitizers every search runs at bound 1 (kSanitized).
TEST(ModelFairLock, TicketLockWithFutexSlots) {
    const std::string name = "FairLock (ticket, futex slots, FIFO)";
    for (Memory m : {Memory::sc, Memory::tso}) {
        const int b = kSanitized ? 1 : 2;
        expect_clean<FairFace<>>(name + " 4x1", k4x1, m, b);
        expect_clean<FairFace<>>(name + " 3x2", k3x2, m, b);
    }
}

// With 2 slots, tickets 2 apart share a futex word, as a 9th waiter shares
// one with the 1st in production: a release then wakes a sleeper whose turn
// it is not, which must go back to sleep (and re-announce itself) without
// losing the wake of the one whose turn it is.
TEST(ModelFairLock, SharedSlotsWakeTheWrongSleeperHarmlessly) {
    const std::string name = "FairLock 2 slots (shared futex words)";
    for (Memory m : {Memory::sc, Memory::tso}) {
        const int b = kSanitized ? 1 : 2;
        expect_clean<FairFace<Mutant::none, 2>>(name + " 4x1", k4x1, m, b);
        expect_clean<FairFace<Mutant::none, 2>>(name + " 3x2", k3x2, m, b);
    }
}

// ---- must-find mutants ----

template <class Face>
Result explore_mutant(const std::string& name, const Plan& plan, Memory memory) {
    Config c;
    c.memory = memory;
    c.preemption_bound = 2;
    // No destroy after the last release: the mutant's own failure is the one
    // to find first.
    const Result r = explore(c, program<Face>(plan, false));
    report(name, c, r);
    return r;
}

// (1) The release grants the next ticket but never wakes: a waiter that
// announced itself (kSleeping) and went to sleep before the grant sleeps on.
// T0 takes ticket 0; T1 takes ticket 1, spins until the scheduler expires
// its spin, sets kSleeping and sleeps; T0's exchange reads the bit and does
// not wake: T1 sleeps for good (a deadlock).
TEST(ModelFairLockMutant, ReleaseWithoutWakeLosesTheWakeUp) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Result r = explore_mutant<FairFace<Mutant::no_wake>>(
            "FairLock release w/o wake 2x1 (must fail)", k2x1, m);
        ASSERT_TRUE(r.violation) << "the explorer no longer finds the lost wake-up";
        EXPECT_NE(r.what.find("deadlock"), std::string::npos) << describe(r);
    }
}

// (2) The release as a load then a plain store: T0 reads its successor's slot
// (no kSleeping yet); T1 sets kSleeping and sleeps on the word; T0's store
// overwrites the bit and, having read none, wakes nobody. Why the release is
// an exchange even though only the holder grants.
TEST(ModelFairLockMutant, ReleaseByPlainStoreLosesTheWakeUp) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Result r = explore_mutant<FairFace<Mutant::plain_store_release>>(
            "FairLock release by load+store 2x1 (must fail)", k2x1, m);
        ASSERT_TRUE(r.violation) << "the explorer no longer finds the overwritten kSleeping";
        EXPECT_NE(r.what.find("deadlock"), std::string::npos) << describe(r);
    }
}

// (3) Barging, std::mutex's unfairness: a release that finds its successor
// asleep hands the lock to a later ticket (a thread still running) instead.
// The order of acquisitions departs from the order of the tickets, which
// every run checks.
TEST(ModelFairLockMutant, HandOffPastASleepingSuccessorIsNotFifo) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Result r = explore_mutant<FairFace<Mutant::barge_past_sleeper>>(
            "FairLock hand-off past sleeper 3x1 (must fail)", k3x1, m);
        ASSERT_TRUE(r.violation) << "the explorer no longer finds the barging hand-off";
        EXPECT_NE(r.what.find("not FIFO"), std::string::npos) << describe(r);
    }
}

}  // namespace
}  // namespace kmlab::explore
