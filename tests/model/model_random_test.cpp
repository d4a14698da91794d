// Seeded random (PCT) exploration of the production lock algorithms in a
// configuration too large to exhaust: five threads, three acquisitions each.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include <kmlab/explore.hpp>
#include <kmlab/mutexes/raw.hpp>
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

// ---- seeded random (PCT) exploration of larger configurations ----
// KMLAB_MODEL_RANDOM sets the number of schedules per configuration (the
// default suite runs 2000; `scripts/lab test --soak` runs 50000).
long random_budget() {
    const char* v = std::getenv("KMLAB_MODEL_RANDOM");
    const long n = v != nullptr ? std::atol(v) : 0;
    return n > 0 ? n : (kSanitized ? 300 : 2000);
}

template <class Face>
void explore_random(const std::string& name) {
    const Plan big = {{Op::lock, Op::try_lock, Op::lock},
                      {Op::lock, Op::lock, Op::timed},
                      {Op::try_lock, Op::lock, Op::lock},
                      {Op::lock, Op::timed, Op::lock},
                      {Op::lock, Op::lock, Op::lock}};
    for (Memory m : {Memory::sc, Memory::tso}) {
        Config c;
        c.memory = m;
        c.random = true;
        c.random_schedules = random_budget();
        c.seed = 0x6b6d6c6162;  // fixed: a failure replays
        const Result r = explore(c, program<Face>(big, true));
        report(name + " 5x3 random", c, r);
        EXPECT_FALSE(r.violation) << name << ": " << describe(r);
    }
}

TEST(ModelRandom, LockBitOverFutex) {
    explore_random<LockBitFace<kmlab::detail::RawLockBit<Futex>>>("RawLockBit<Futex>");
}
TEST(ModelRandom, LockBitOverSpin) {
    explore_random<LockBitFace<kmlab::detail::RawLockBit<Spin>>>("RawLockBit<Spin>");
}
TEST(ModelRandom, KMutexOverFutex) {
    explore_random<KMutexFace<Futex>>("RawKMutex<Futex>");
}
TEST(ModelRandom, KMutexOverSpin) {
    explore_random<KMutexFace<Spin>>("RawKMutex<Spin>");
}
TEST(ModelRandom, FastMutexRoutines) {
    explore_random<EventLockBitFace<true>>("lock-bit over an event");
}

}  // namespace
}  // namespace kmlab::explore
