// Every production lock algorithm under the schedule explorer, each
// configuration explored exhaustively within a preemption bound, sequentially
// consistent and under x86-TSO (model_program.hpp: the program and its
// checks). The other suites of this binary: model_regression_test.cpp (what
// the explorer must find), model_random_test.cpp, model_explorer_test.cpp
// (the explorer itself), model_dispatcher_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include <kmlab/explore.hpp>
#include <kmlab/mutexes/raw.hpp>
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

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

// The bounds per algorithm: 3 where that search takes seconds, else 2 (the
// soak raises all to 3: RawLockBit<Futex> 4x1 under TSO is 3.5M schedules
// there). Under the sanitizers, where a step costs ~50x, every search runs at
// bound 1.
template <class Face>
void explore_all(const std::string& name, int sc_bound, int tso_bound) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const int bound = kSanitized ? 1 : m == Memory::sc ? sc_bound : tso_bound;
        expect_clean<Face>(name + " 4x1", k4x1, m, bound);
        expect_clean<Face>(name + " 3x2", k3x2, m, bound);
    }
}

// ---- production algorithms: exhausted, 0 violations ----

TEST(Model, LockBitOverFutex) {
    explore_all<LockBitFace<kmlab::detail::RawLockBit<Futex>>>("RawLockBit<Futex> (FastMutex)", 2,
                                                               2);
}
TEST(Model, LockBitOverSpin) {
    explore_all<LockBitFace<kmlab::detail::RawLockBit<Spin>>>("RawLockBit<Spin> (TTAS)", 3, 2);
}
TEST(Model, KMutexOverFutex) {
    explore_all<KMutexFace<Futex>>("RawKMutex<Futex>", 3, 3);
}
TEST(Model, KMutexOverSpin) {
    explore_all<KMutexFace<Spin>>("RawKMutex<Spin>", 3, 2);
}
TEST(Model, FastMutexRoutines) {
    explore_all<EventLockBitFace<true>>("lock-bit over an event (FAST_MUTEX)", 3, 3);
}
TEST(Model, GuardedMutexRoutines) {
    explore_all<EventLockBitFace<false>>("lock-bit over an event (KGUARDED_MUTEX)", 3, 3);
}

}  // namespace
}  // namespace kmlab::explore
