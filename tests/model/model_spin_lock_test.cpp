// The KSPIN_LOCK algorithms of kmlab/kernel/spin_lock_algorithm.hpp under the
// schedule explorer: the ordinary spin lock (compare-exchange, test and
// test-and-set) and the in-stack queued one (MCS), each over the program of
// model_program.hpp at 3x2 and 4x1 (spin locks have no timed acquire: the
// plans' "timed" is a lock), sequentially consistent and under x86-TSO,
// exhaustively within the bound, with the queued lock's FIFO order checked
// on every run: the order of acquisitions equals the order of the enqueue
// exchanges. And the mutants each search must find.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/kernel/spin_lock_algorithm.hpp>
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

using spin_lock::Mutant;

// The ordinary acquisition as the NT routines make it: lock = the
// compare-exchange then the contended spin; try = test, then set
// (KeTryToAcquireSpinLockAtDpcLevel). The word holds the owner's tag.
template <Mutant M = Mutant::none>
struct SpinFace {
    nt::KSPIN_LOCK word = 0;
    bool acquire(nt::PKTHREAD t, Op op) {
        const nt::KSPIN_LOCK tag = spin_lock::owner_tag(t);
        if (op == Op::try_lock) {
            nt::KSPIN_LOCK seen = spin_lock::load<Platform>(word);
            return seen == 0 && spin_lock::try_acquire<Platform, M>(word, tag, seen);
        }
        spin_lock::acquire<Platform, M>(word, tag);
        return true;
    }
    void release(nt::PKTHREAD t) {
        if (spin_lock::load<Platform>(word) != spin_lock::owner_tag(t))
            fail("released a spin lock whose word is not the owner's tag");
        spin_lock::release<Platform>(word);
    }
    bool is_free() const { return word == 0; }
};

// The queue entries live outside the face, as a KLOCK_QUEUE_HANDLE lives on
// its thread's stack: the last owner destroys the lock (the face) after its
// release, while an earlier owner may still be clearing its own entry.
struct Entries {
    nt::KSPIN_LOCK_QUEUE entry[8]{};
};

template <Mutant M = Mutant::none>
struct QueuedFace {
    nt::KSPIN_LOCK word = 0;
    std::shared_ptr<Entries> entries = std::make_shared<Entries>();
    // Model threads run one at a time and switch only at the seam, so these
    // plain vectors, written by the algorithm's hook right after the exchange,
    // record each exchange in the same step as the exchange.
    std::shared_ptr<std::vector<int>> enqueued = std::make_shared<std::vector<int>>();
    std::shared_ptr<std::vector<int>> acquired = std::make_shared<std::vector<int>>();

    bool acquire(nt::PKTHREAD, Op op) {
        const int self = current_thread();
        nt::KSPIN_LOCK_QUEUE& q = entries->entry[self];
        auto record = [&] { enqueued->push_back(self); };
        if (op == Op::try_lock) {
            if (!spin_lock::try_acquire_queued<Platform>(word, q, record)) return false;
        } else if (const nt::KSPIN_LOCK prev = spin_lock::enqueue<Platform, M>(word, q, record);
                   prev != 0) {
            spin_lock::wait_for_handoff<Platform, M>(q, prev);
        }
        const auto flags =
            reinterpret_cast<nt::ULONG_PTR>(AtomicRef<nt::PKSPIN_LOCK>(q.Lock).load()) &
            spin_lock::kQueueFlags;
        if (flags != spin_lock::LOCK_QUEUE_OWNER) fail("acquired without LOCK_QUEUE_OWNER");
        acquired->push_back(self);
        if ((*enqueued)[acquired->size() - 1] != self)
            fail("queued spin lock not FIFO: acquisition order differs from enqueue order");
        return true;
    }
    void release(nt::PKTHREAD) {
        spin_lock::release_queued<Platform, M>(entries->entry[current_thread()]);
    }
    bool is_free() const {
        return word == 0 && std::all_of(std::begin(entries->entry), std::end(entries->entry),
                                        [](const nt::KSPIN_LOCK_QUEUE& q) {
                                            return q.Next == nullptr &&
                                                   (reinterpret_cast<nt::ULONG_PTR>(q.Lock) &
                                                    spin_lock::kQueueFlags) == 0;
                                        });
    }
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
template <class Face>
void explore_all(const std::string& name, int bound) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const int b = kSanitized ? 1 : bound;
        expect_clean<Face>(name + " 4x1", k4x1, m, b);
        expect_clean<Face>(name + " 3x2", k3x2, m, b);
    }
}

TEST(ModelSpinLock, OrdinarySpinLock) {
    explore_all<SpinFace<>>("KSPIN_LOCK (cmpxchg, TTAS)", 2);
}

// The queued lock under x86-TSO: every access to an entry goes through the
// seam (spin_lock_algorithm.hpp), so each private store of an entry (its
// initialisation, OWNER, the reset after the hand-off) sits in the store
// buffer too, and a release that hands off makes no RMW that would drain it:
// at 3 threads or more the exhaustive search explodes (3x1 at bound 1: over
// 2,000,000 schedules, unfinished after 94 s; bound 0 is a handful). Decision
// (spinfix): sequentially consistent as every algorithm (4x1, 3x2 at bound
// 2, exhaustive); under TSO exhaustive at 2x1 (bound 2) and 3x1, 4x1, 3x2
// at bound 0, plus a seeded random (PCT) sample of 4x1 and 3x2
// (KMLAB_MODEL_RANDOM schedules each, default 300,000 here). Making the
// private stores plain again is no way out: mixed with buffered stores to
// the same field the model reorders them (a plain store is visible at once,
// an older buffered one drains after it), a false "not back in its initial
// state" found in a quick trial.
long queued_tso_random_budget() {
    const char* v = std::getenv("KMLAB_MODEL_RANDOM");
    const long n = v != nullptr ? std::atol(v) : 0;
    return n > 0 ? n : (kSanitized ? 2000 : 300000);
}

TEST(ModelSpinLock, InStackQueuedSpinLock) {
    using Face = QueuedFace<>;
    const std::string name = "in-stack queued KSPIN_LOCK (MCS, FIFO)";
    const int b = kSanitized ? 1 : 2;
    expect_clean<Face>(name + " 4x1", k4x1, Memory::sc, b);
    expect_clean<Face>(name + " 3x2", k3x2, Memory::sc, b);
    expect_clean<Face>(name + " 2x1", k2x1, Memory::tso, b);
    for (const auto& [plan, label] : {std::pair{&k3x1, " 3x1"}, {&k4x1, " 4x1"}, {&k3x2, " 3x2"}})
        expect_clean<Face>(name + label, *plan, Memory::tso, 0);
    for (const auto& [plan, label] : {std::pair{&k4x1, " 4x1 random"}, {&k3x2, " 3x2 random"}}) {
        Config c;
        c.memory = Memory::tso;
        c.random = true;
        c.random_schedules = queued_tso_random_budget();
        c.seed = 0x6b6d6c6162;  // fixed: a failure replays
        const Result r = explore(c, program<Face>(*plan, true));
        report(name + label, c, r);
        EXPECT_FALSE(r.violation) << name << label << ": " << describe(r);
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

// (1) The acquire as a load then a plain store: two threads both read 0 and
// both store their tag. The explorer reports the lost mutual exclusion by
// whichever check sees it first: two threads inside at once, a write made
// under the lock lost (TSO), or an owner whose tag another acquirer has
// overwritten in the word (the face's release check).
TEST(ModelSpinLockMutant, AcquireAsLoadThenStoreLosesMutualExclusion) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Result r = explore_mutant<SpinFace<Mutant::load_then_store>>(
            "KSPIN_LOCK load+store acquire 3x1 (must fail)", k3x1, m);
        ASSERT_TRUE(r.violation) << "the explorer no longer finds the lost mutual exclusion";
        const bool exclusion_lost =
            r.what.find("two threads in the critical section") != std::string::npos ||
            r.what.find("a write made under the lock was lost") != std::string::npos ||
            r.what.find("word is not the owner's tag") != std::string::npos;
        EXPECT_TRUE(exclusion_lost) << describe(r);
    }
}

// (2) An MCS release that does not wait for its successor's link: the
// successor exchanged itself in, the releaser saw no link, left, and nobody
// hands the lock over: the successor spins forever.
TEST(ModelSpinLockMutant, ReleaseWithoutWaitingForTheLinkLosesTheHandOff) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Result r = explore_mutant<QueuedFace<Mutant::no_wait_for_link>>(
            "queued KSPIN_LOCK release w/o link wait 2x1 (must fail)", k2x1, m);
        ASSERT_TRUE(r.violation) << "the explorer no longer finds the lost hand-off";
        EXPECT_NE(r.what.find("deadlock"), std::string::npos) << describe(r);
    }
}

// (3) The reviewer's: a hand-off to the successor's successor (when one has
// linked). The skipped entry waits on; the order of acquisitions departs
// from the order of the exchanges, which every run checks.
TEST(ModelSpinLockMutant, HandOffPastTheSuccessorIsNotFifo) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Result r = explore_mutant<QueuedFace<Mutant::skip_successor>>(
            "queued KSPIN_LOCK hand-off skips successor 3x1 (must fail)", k3x1, m);
        ASSERT_TRUE(r.violation) << "the explorer no longer finds the skipped successor";
        EXPECT_NE(r.what.find("not FIFO"), std::string::npos) << describe(r);
    }
}

// (4) The classic MCS bug: Next cleared after the exchange has published the
// entry, wiping the link a successor made in between: the successor is never
// handed the lock. Found only because the entry's fields go through the seam
// (review finding: as plain writes they ran in the exchange's step).
TEST(ModelSpinLockMutant, NextClearedAfterTheExchangeLosesTheLink) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Result r = explore_mutant<QueuedFace<Mutant::next_after_exchange>>(
            "queued KSPIN_LOCK Next cleared after exchange 3x2 (must fail)", k3x2, m);
        ASSERT_TRUE(r.violation) << "the explorer no longer finds the wiped link";
        EXPECT_NE(r.what.find("deadlock"), std::string::npos) << describe(r);
    }
}

// (5) WAIT set after the link: the predecessor can hand off between the link
// and our WAIT store, which then overwrites the hand-off: we spin forever.
TEST(ModelSpinLockMutant, WaitSetAfterTheLinkOverwritesTheHandOff) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Result r = explore_mutant<QueuedFace<Mutant::wait_after_link>>(
            "queued KSPIN_LOCK WAIT set after link 2x1 (must fail)", k2x1, m);
        ASSERT_TRUE(r.violation) << "the explorer no longer finds the overwritten hand-off";
        EXPECT_NE(r.what.find("deadlock"), std::string::npos) << describe(r);
    }
}

}  // namespace
}  // namespace kmlab::explore
