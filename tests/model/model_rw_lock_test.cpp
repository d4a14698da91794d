// The reader/writer algorithms of kernel/rw_lock_algorithm.hpp under the
// schedule explorer: EX_SPIN_LOCK (ex_spin) and EX_PUSH_LOCK (push), each as
// production compiles it with the model's platform (and, for the push lock,
// a model park: a futex sequence word, as NativePark's buckets).
//
// Configurations (S shared, X exclusive, TS / TX their tries, CV a shared
// acquire that then tries ExTryConvertSharedSpinLockExclusive):
//   EX_SPIN_LOCK   3x2 {X, S} {S, CV} {TS, TX}     4x1 {X} {S} {CV} {TS}
//   EX_PUSH_LOCK   3x2 {X, S} {S, X} {TS, TX}      4x1 {X} {S} {X} {TS}
// explored exhaustively at preemption bound 3 (1 under the sanitizers),
// sequentially consistent and under x86-TSO; the push lock again with a park
// that spins before it sleeps (NativePark's kSpinBeforePark), 3x2 at bound 3
// and 4x1 at bound 2. Every run checks: no writer shares the lock with
// anyone, no reader sees the data change under it, no write made under the
// lock is lost, no thread is left blocked, the lock ends free (the word
// back at exactly 0), and the lock word is safe to destroy right after the
// last acquisition's release; and writer preference: no reader enters
// while an EX_SPIN_LOCK writer has claimed the lock
// [ddi:reader-writer-spin-locks], nor while an EX_PUSH_LOCK writer that has
// parked still waits [ddi:exacquirepushlockshared].
//
// Must-find mutants (Mutant in rw_lock_algorithm.hpp), each asserted
// reported (the two that ignore the exclusive hold with the destroy and
// final-state checks off, so that the search goes on to the overlap itself
// rather than stopping at its aftermath: the owner releasing a lock the
// intruding reader destroyed, or a word left wrong): a shared acquire that
// ignores the exclusive hold (both locks), readers that pass a waiting
// writer (both locks: only the preference check can see it), a push-lock
// release that forgets its wake-up, and a push-lock park that reads its
// ticket after marking itself waiting (both a deadlock).
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <iterator>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/kernel/rw_lock_algorithm.hpp>
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

using rw_lock::Mutant;

enum class RwOp { shared, exclusive, try_shared, try_exclusive, convert };
using RwPlan = std::vector<std::vector<RwOp>>;

constexpr RwOp S = RwOp::shared, X = RwOp::exclusive, TS = RwOp::try_shared,
               TX = RwOp::try_exclusive, CV = RwOp::convert;

// The park of the push lock over the model: one futex sequence word, as a
// NativePark bucket. With Spin, the lock spins kSpinBeforePark first, as
// production does (NativePark): the explorer then also runs the spin phase
// (Platform::spin_until with a deadline may give up or see the lock turn
// grantable). The park also keeps the writer-preference bookkeeping: which
// threads are inside an exclusive acquire, and which of those have parked
// (called wait) at least once: from then until its acquire returns, a
// writer is an exclusive waiter, and no reader may enter
// [ddi:exacquirepushlockshared: "The caller is put into a wait state if
// there is an exclusive waiter"]. (Plain fields: the model threads are
// fibers, and this is the test's bookkeeping, not the lock's.)
template <bool Spin>
struct ModelPark {
    using platform = Platform;
    static constexpr std::chrono::nanoseconds kSpinBeforePark =
        Spin ? std::chrono::nanoseconds(1000) : std::chrono::nanoseconds::zero();
    static constexpr int kMaxThreads = 8;
    Atomic<std::uint32_t> seq{0};
    bool in_exclusive[kMaxThreads] = {};
    bool parked_writer[kMaxThreads] = {};
    std::uint32_t ticket(const void*) { return seq.load(); }
    void wait(const void*, std::uint32_t t) {
        const int me = current_thread();
        if (in_exclusive[me]) parked_writer[me] = true;
        detail::futex_wait(seq.raw(), t, false);
    }
    void wake_all(const void*) {
        seq.fetch_add(1);
        detail::futex_wake(seq.raw(), INT_MAX);
    }
    bool a_writer_waits() const {
        return std::find(std::begin(parked_writer), std::end(parked_writer), true) !=
               std::end(parked_writer);
    }
};

template <Mutant M>
struct ExSpinFace {
    static constexpr bool kWriterPreference = true;
    nt::LONG word = 0;
    template <class Claimed>
    void acquire_exclusive(Claimed claimed) {
        rw_lock::ex_spin::acquire_exclusive<Platform>(word, claimed);
    }
    void acquire_shared() { rw_lock::ex_spin::acquire_shared<Platform, M>(word); }
    bool try_shared() { return rw_lock::ex_spin::try_acquire_shared<Platform, M>(word); }
    bool try_exclusive() { return rw_lock::ex_spin::try_acquire_exclusive<Platform>(word); }
    bool try_convert() { return rw_lock::ex_spin::try_convert_shared_to_exclusive<Platform>(word); }
    void release(bool exclusive) {
        if (exclusive)
            rw_lock::ex_spin::release_exclusive<Platform>(word);
        else
            rw_lock::ex_spin::release_shared<Platform>(word);
    }
    bool is_free() const { return word == 0; }
    bool a_writer_waits() const { return false; }  // bit 31 claimed: RwShared::claimed
    void label_parts() {}
};

template <Mutant M, bool Spin = false>
struct PushFace {
    // A writer that has parked holds back new readers until it owns the
    // lock (ModelPark's bookkeeping; rw_lock_algorithm.hpp, the waiting
    // writers' count).
    static constexpr bool kWriterPreference = true;
    nt::ULONG_PTR word = 0;
    ModelPark<Spin> park;
    template <class Claimed>
    void acquire_exclusive(Claimed claimed) {
        const int me = current_thread();
        park.in_exclusive[me] = true;
        rw_lock::push::acquire_exclusive<M>(word, park);
        park.in_exclusive[me] = false;
        park.parked_writer[me] = false;
        claimed();
    }
    void acquire_shared() { rw_lock::push::acquire_shared<M>(word, park); }
    bool try_shared() { return rw_lock::push::try_acquire_shared<Platform, M>(word); }
    bool try_exclusive() { return rw_lock::push::try_acquire_exclusive<Platform>(word); }
    bool try_convert() { return false; }  // no convert routine for drivers
    bool a_writer_waits() const { return park.a_writer_waits(); }
    void label_parts() { label(&park.seq, sizeof park.seq, "park"); }
    void release(bool exclusive) {
        if (exclusive)
            rw_lock::push::release_exclusive<M>(word, park);
        else
            rw_lock::push::release_shared<M>(word, park);
    }
    // Free and nobody waiting: exactly 0 (a free word with waiting writers
    // keeps their count).
    bool is_free() const { return word == 0; }
};

template <class Face>
struct RwShared {
    Face lock;
    Atomic<int> data{0};
    int writes = 0;
    int readers = 0;  // in the critical section (plain: the model threads are fibers)
    int writers = 0;
    int claimed = 0;  // writers that hold bit 31 (waiting or owning)
    int attempts_left = 0;
    bool destroyed = false;
};

template <class Face>
std::function<Program()> rw_program(const RwPlan& plan, bool destroy_after_last) {
    return [plan, destroy_after_last] {
        auto s = std::make_shared<RwShared<Face>>();
        for (const auto& ops : plan) s->attempts_left += static_cast<int>(ops.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i, destroy_after_last] {
                if (i == 0) {
                    label(&s->lock.word, sizeof s->lock.word, "lock");
                    label(&s->data, sizeof s->data, "data");
                    s->lock.label_parts();
                }
                // Right after the writer's claim (no scheduling point between).
                auto claimed = [&] { ++s->claimed; };
                for (RwOp op : ops) {
                    bool exclusive = op == X || op == TX;
                    bool got = true;
                    switch (op) {
                        case RwOp::shared:
                        case RwOp::convert:
                            s->lock.acquire_shared();
                            break;
                        case RwOp::exclusive:
                            s->lock.acquire_exclusive(claimed);
                            break;
                        case RwOp::try_shared:
                            got = s->lock.try_shared();
                            break;
                        case RwOp::try_exclusive:
                            got = s->lock.try_exclusive();
                            if (got) claimed();
                            break;
                    }
                    --s->attempts_left;
                    if (!got) continue;
                    if (exclusive) {
                        if (s->writers != 0 || s->readers != 0) fail("a writer shares the lock");
                        ++s->writers;
                    } else {
                        // Checked right after the entering compare-exchange.
                        if (s->writers != 0) fail("a reader shares the lock with a writer");
                        if (Face::kWriterPreference &&
                            (s->claimed != 0 || s->lock.a_writer_waits()))
                            fail("a reader entered while a writer waited for the lock");
                        ++s->readers;
                        const int seen = s->data.load(std::memory_order_relaxed);
                        if (op == RwOp::convert && s->lock.try_convert()) {
                            if (s->readers != 1 || s->writers != 0)
                                fail("a conversion succeeded with other holders");
                            ++s->claimed;
                            --s->readers;
                            ++s->writers;
                            exclusive = true;
                        } else if (s->data.load(std::memory_order_relaxed) != seen) {
                            fail("the data changed under a shared hold");
                        }
                    }
                    if (exclusive) {
                        // A plain read-modify-write: lost under TSO unless
                        // the lock orders the writers.
                        s->data.store(s->data.load(std::memory_order_relaxed) + 1,
                                      std::memory_order_relaxed);
                        ++s->writes;
                        --s->writers;
                        --s->claimed;
                    } else {
                        --s->readers;
                    }
                    s->lock.release(exclusive);
                    // No attempt is left and the word, as this thread sees
                    // it, is free: every other holder's releasing operation
                    // has taken effect, so POSIX lets this thread destroy the
                    // lock, although the others may still be inside their
                    // release (the push lock's wake-up).
                    // (The fence drains this thread's own stores; the word
                    // is then read as memory holds it, which is no model
                    // access: the check must not touch a lock that another
                    // thread destroyed meanwhile.)
                    if (destroy_after_last && s->attempts_left == 0) {
                        Platform::full_fence();
                        if (!s->destroyed && s->lock.word == 0) {
                            s->destroyed = true;
                            destroy(&s->lock.word, sizeof s->lock.word);
                        }
                    }
                }
            });
        }
        p.check = [s, destroy_after_last]() -> std::string {
            if (destroy_after_last && !s->lock.is_free())
                return "the lock is not back in its initial state";
            if (s->data.load() != s->writes)
                return "a write made under the lock was lost (" + std::to_string(s->data.load()) +
                       " of " + std::to_string(s->writes) + ")";
            return {};
        };
        return p;
    };
}

const RwPlan kSpin3x2 = {{X, S}, {S, CV}, {TS, TX}};
const RwPlan kSpin4x1 = {{X}, {S}, {CV}, {TS}};
const RwPlan kPush3x2 = {{X, S}, {S, X}, {TS, TX}};
const RwPlan kPush4x1 = {{X}, {S}, {X}, {TS}};
const RwPlan kWriterThenReader = {{X}, {S}};
const RwPlan kReaderWriterReader = {{S}, {X}, {S}};
// The review's repro of a reader passing a parked writer: T0 reads twice,
// T1 writes; T1 parks behind T0's first hold, and T0's second acquire must
// wait for T1.
const RwPlan kReadTwiceWriter = {{S, S}, {X}};
const RwPlan kReadTwiceTwoWriters = {{S, S}, {X}, {X}};

template <class Face>
Result run(const std::string& name, const RwPlan& plan, Memory memory, int bound,
           bool destroy_after_last = true) {
    Config c;
    c.memory = memory;
    c.preemption_bound = std::max(bound, bound_override());
    const Result r = explore(c, rw_program<Face>(plan, destroy_after_last));
    report(name, c, r);
    return r;
}

template <class Face>
void explore_clean(const std::string& name, const RwPlan& p4x1, const RwPlan& p3x2) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const int bound = kSanitized ? 1 : 3;  // bound 3: about 5 s for all eight
        for (const auto& [suffix, plan] : {std::pair{" 4x1", &p4x1}, std::pair{" 3x2", &p3x2}}) {
            const Result r = run<Face>(name + suffix, *plan, m, bound);
            EXPECT_FALSE(r.violation) << name << suffix << ": " << describe(r);
            EXPECT_TRUE(r.complete) << name << suffix;
        }
    }
}

// ---- production algorithms: exhausted, 0 violations ----

TEST(ModelRwLock, ExSpinLock) {
    explore_clean<ExSpinFace<Mutant::none>>("EX_SPIN_LOCK", kSpin4x1, kSpin3x2);
}

TEST(ModelRwLock, PushLock) {
    explore_clean<PushFace<Mutant::none>>("EX_PUSH_LOCK", kPush4x1, kPush3x2);
    // The review's repro (a reader re-entering past a parked writer) and two
    // writers parked behind two reads (one woken writer takes the lock while
    // the other must still hold the readers back).
    for (Memory m : {Memory::sc, Memory::tso}) {
        for (const auto& [name, plan] :
             {std::pair{"EX_PUSH_LOCK {S,S} {X}", &kReadTwiceWriter},
              std::pair{"EX_PUSH_LOCK {S,S} {X} {X}", &kReadTwiceTwoWriters}}) {
            const Result r = run<PushFace<Mutant::none>>(name, *plan, m, kSanitized ? 1 : 3);
            EXPECT_FALSE(r.violation) << name << ": " << describe(r);
            EXPECT_TRUE(r.complete) << name;
        }
    }
}

// The spin phase before the park (NativePark's kSpinBeforePark): 3x2 at
// bound 3 and 4x1 at bound 2 (4x1 at bound 3 is ~2.9M schedules, ~1 min).
TEST(ModelRwLock, PushLockSpinningBeforeItParks) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        for (const auto& [suffix, plan, bound] :
             {std::tuple{" 4x1", &kPush4x1, 2}, std::tuple{" 3x2", &kPush3x2, 3}}) {
            const Result r = run<PushFace<Mutant::none, true>>(
                "EX_PUSH_LOCK spin" + std::string(suffix), *plan, m, kSanitized ? 1 : bound);
            EXPECT_FALSE(r.violation) << suffix << ": " << describe(r);
            EXPECT_TRUE(r.complete) << suffix;
        }
    }
}

// ---- must-find mutants ----

void expect_found(const Result& r, const std::string& what) {
    ASSERT_TRUE(r.violation) << "the explorer no longer finds: " << what;
    EXPECT_NE(r.what.find(what), std::string::npos) << describe(r);
}

TEST(ModelRwLockMutant, ExSpinSharedIgnoresExclusiveBit) {
    const Result r = run<ExSpinFace<Mutant::shared_ignores_exclusive>>(
        "EX_SPIN_LOCK shared ignores bit 31 (must fail)", kWriterThenReader, Memory::sc, 2, false);
    expect_found(r, "a reader shares the lock with a writer");
}

TEST(ModelRwLockMutant, ExSpinReadersPassAWaitingWriter) {
    const Result r = run<ExSpinFace<Mutant::readers_pass_waiting_writer>>(
        "EX_SPIN_LOCK readers pass a waiting writer (must fail)", kReaderWriterReader, Memory::sc,
        2);
    expect_found(r, "a reader entered while a writer waited for the lock");
}

TEST(ModelRwLockMutant, PushSharedIgnoresExclusiveHold) {
    const Result r = run<PushFace<Mutant::shared_ignores_exclusive>>(
        "EX_PUSH_LOCK shared ignores the writer (must fail)", kWriterThenReader, Memory::sc, 2,
        false);
    expect_found(r, "a reader shares the lock with a writer");
}

TEST(ModelRwLockMutant, PushReadersPassAWaitingWriter) {
    const Result r = run<PushFace<Mutant::readers_pass_waiting_writer>>(
        "EX_PUSH_LOCK readers pass a waiting writer (must fail)", kReadTwiceWriter, Memory::sc, 2);
    expect_found(r, "a reader entered while a writer waited for the lock");
}

// park_once must read the ticket before the compare-exchange that sets
// kWaiting: read after, a release between the two is missed and the
// sleeper never wakes.
TEST(ModelRwLockMutant, PushTicketReadAfterTheMark) {
    const Result r = run<PushFace<Mutant::ticket_after_mark>>(
        "EX_PUSH_LOCK ticket read after the mark (must fail)", kWriterThenReader, Memory::sc, 2);
    expect_found(r, "deadlock");
}

// The final check proves the word returns to exactly 0: a release that
// keeps kWaiting is reported.
TEST(ModelRwLockMutant, PushReleaseKeepsTheWaitingBit) {
    const Result r = run<PushFace<Mutant::release_keeps_waiting>>(
        "EX_PUSH_LOCK release keeps kWaiting (must fail)", kWriterThenReader, Memory::sc, 2);
    expect_found(r, "the lock is not back in its initial state");
}

TEST(ModelRwLockMutant, PushReleaseForgetsTheWake) {
    const Result r = run<PushFace<Mutant::release_forgets_wake>>(
        "EX_PUSH_LOCK release forgets the wake (must fail)", kWriterThenReader, Memory::sc, 2);
    expect_found(r, "deadlock");
}

}  // namespace
}  // namespace kmlab::explore
