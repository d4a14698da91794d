// ---- the verifier flavour under the schedule explorer ----
// Driver Verifier's Deadlock Detection (kernel/verifier.hpp) reports a lock
// order cycle at its closing acquisition whether or not the threads overlap
// [dv-deadlock]. Here two model threads take two FAST_MUTEXes (and two
// KMUTEXes) in opposite orders through the real NT routines and dispatcher,
// and the explorer runs every schedule up to preemption bound 2: in EVERY
// schedule, the one where the threads run one after the other as much as the
// ones where each holds its first lock while the other waits, exactly one
// 0xC4 / 0x1001 must come [bc:0xC4], at the second acquisition of whichever
// thread acquires its second lock last. Taken in one order, no schedule
// reports.
//
// The verifier's state is one process-wide std::mutex and maps keyed by
// KTHREAD pointer. Under the explorer every model thread is a fiber on one OS
// thread, with a KTHREAD of its own (so its holds are its own), and a fiber
// switches only at a model operation; the verifier makes none while it holds
// its std::mutex (its hooks touch only its maps, and deliver a report through
// the bug-check handler after letting the mutex go), so no fiber ever blocks
// on it. verifier::reset() starts every run from an empty graph.
//
// When the threads overlap, the report predicts a deadlock that then really
// happens: Windows would have stopped at the bug check. The test's handler
// plays the debugger's `g` and backs the reporting thread out: it releases
// the lock that thread holds, so the other one can finish and the run ends
// (the thread then skips its own release of it). Each hook runs before the
// routine it watches waits, with no dispatcher lock held, so the handler may
// call the release routines.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/verifier.hpp>
#include <kmlab/kmlab.hpp>
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

namespace verifier = kernel::verifier;

enum class Type { fast_mutex, kmutex };

struct Locks {
    Type type;
    nt::FAST_MUTEX fast[2];
    nt::KMUTEX mutex[2];
    std::vector<nt::PKTHREAD> threads;
    // Per model thread: its first and second lock's index, and whether the
    // handler released its first lock for it.
    int order[2][2] = {{0, 1}, {1, 0}};
    bool backed_out[2] = {false, false};
    int reports = 0;
    std::string wrong;  // what the handler saw that it should not have

    explicit Locks(Type ty, bool opposite) : type(ty) {
        if (!opposite) {
            order[1][0] = 0;
            order[1][1] = 1;
        }
        for (int i = 0; i < 2; ++i) {
            nt::ExInitializeFastMutex(&fast[i]);
            nt::KeInitializeMutex(&mutex[i], 0);
        }
        verifier::set_name(lock(0), "A");
        verifier::set_name(lock(1), "B");
        for (int i = 0; i < 2; ++i) threads.push_back(kernel::create_thread_object(false));
    }
    ~Locks() {
        for (auto* t : threads) kernel::dereference_thread(t);
    }
    const void* lock(int i) const {
        return type == Type::fast_mutex ? static_cast<const void*>(&fast[i]) : &mutex[i];
    }
    void acquire(int i) {
        if (type == Type::fast_mutex) {
            nt::ExAcquireFastMutex(&fast[i]);
        } else {
            nt::KeWaitForSingleObject(&mutex[i], nt::Executive, nt::KernelMode, nt::FALSE, nullptr);
        }
    }
    void release(int i) {
        if (type == Type::fast_mutex) {
            nt::ExReleaseFastMutex(&fast[i]);
        } else {
            nt::KeReleaseMutex(&mutex[i], nt::FALSE);
        }
    }
};

Locks* g_run = nullptr;  // the run in progress (one OS thread: no race)
// Over a search: reports made while the other thread held its first lock
// (the threads overlap: a real deadlock was next) and while it held nothing.
long g_overlapped = 0;
long g_apart = 0;

// The bug-check handler of these tests: records, checks, and backs the
// reporting thread out of the lock it holds.
void on_bug_check(const BugCheck& bc) {
    Locks& s = *g_run;
    ++s.reports;
    int me = -1;
    for (int i = 0; i < 2; ++i) {
        if (s.threads[static_cast<std::size_t>(i)] == kernel::detail::tls_current_thread) me = i;
    }
    if (bc.code() != bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION ||
        bc.parameter(1) != bugcheck::VERIFIER_DEADLOCK_DETECTED) {
        s.wrong = std::string("not 0xC4/0x1001: ") + bc.what();
        return;
    }
    if (me < 0) {
        s.wrong = "reported on no model thread";
        return;
    }
    // At the closing acquisition: parameter 2 is the lock being acquired,
    // this thread's second; parameter 3 the held one, its first.
    const int first = s.order[me][0], second = s.order[me][1];
    if (bc.parameter(2) != reinterpret_cast<nt::ULONG_PTR>(s.lock(second)) ||
        bc.parameter(3) != reinterpret_cast<nt::ULONG_PTR>(s.lock(first))) {
        s.wrong = "the report names the wrong locks";
        return;
    }
    auto r = verifier::last_report();
    if (!r || r->threads.size() != 2 || r->locks.size() != 2) {
        s.wrong = "the report is not a 2-lock, 2-thread cycle";
        return;
    }
    const nt::PKTHREAD other = s.threads[static_cast<std::size_t>(1 - me)];
    const int other_first = s.order[1 - me][0];
    const bool overlapped = s.type == Type::fast_mutex ? s.fast[other_first].Owner == other
                                                       : s.mutex[other_first].OwnerThread == other;
    ++(overlapped ? g_overlapped : g_apart);
    s.backed_out[me] = true;
    s.release(first);
}

std::function<Program()> cycle_program(DispatcherUnderModel& dut, Type type, bool opposite) {
    return [&dut, type, opposite] {
        dut.reset();
        verifier::reset();
        auto s = std::make_shared<Locks>(type, opposite);
        g_run = s.get();
        Program p;
        for (int i = 0; i < 2; ++i) {
            p.threads.push_back([s, i] {
                kernel::detail::tls_current_thread = s->threads[static_cast<std::size_t>(i)];
                if (kernel::detail::tls_current_thread->VerifierGate == 0)
                    fail("the model thread's KTHREAD has no verifier gate");
                s->acquire(s->order[i][0]);
                s->acquire(s->order[i][1]);
                s->release(s->order[i][1]);
                if (!s->backed_out[i]) s->release(s->order[i][0]);
            });
        }
        p.check = [s, opposite]() -> std::string {
            if (!s->wrong.empty()) return s->wrong;
            const int expected = opposite ? 1 : 0;
            if (s->reports != expected)
                return "0xC4/0x1001 reported " + std::to_string(s->reports) + " times, not " +
                       std::to_string(expected);
            for (int i = 0; i < 2; ++i) {
                if (s->type == Type::fast_mutex ? s->fast[i].Count != nt::FM_LOCK_BIT
                                                : nt::KeReadStateMutex(&s->mutex[i]) != 1)
                    return "a lock is not back in its initial state";
            }
            for (auto* t : s->threads) {
                if (t->Extra->waiting || t->Irql != nt::PASSIVE_LEVEL ||
                    t->CombinedApcDisable != 0 || !nt::IsListEmpty(&t->MutantListHead))
                    return "a thread still waits, holds a mutant or was left raised";
            }
            return {};
        };
        return p;
    };
}

class ModelVerifier : public ::testing::Test {
  protected:
    void SetUp() override {
        saved_flavor_ = kmlab::flavor();
        kmlab::set_flavor(Flavor::verifier);
        saved_handler_ = set_bug_check_handler(on_bug_check);
    }
    void TearDown() override {
        set_bug_check_handler(saved_handler_);
        kmlab::set_flavor(saved_flavor_);
        verifier::reset();
        g_run = nullptr;
    }

    void explore_both(Type type, const char* name, bool opposite) {
        DispatcherUnderModel dut;
        for (Memory m : {Memory::sc, Memory::tso}) {
            g_overlapped = g_apart = 0;
            Config c;
            c.memory = m;
            c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
            c.fiber_locals = DispatcherUnderModel::fiber_locals();
            const Result r = explore(c, cycle_program(dut, type, opposite));
            report(std::string("verifier ") + name + (opposite ? " A-B/B-A" : " A-B/A-B"), c, r);
            EXPECT_FALSE(r.violation) << describe(r);
            EXPECT_TRUE(r.complete);
            EXPECT_GT(r.schedules, 1);
            if (opposite) {
                // Both kinds of schedule were explored, and reported.
                EXPECT_GT(g_overlapped, 0);
                EXPECT_GT(g_apart, 0);
                std::printf("  reports: %ld with the threads overlapping, %ld apart\n",
                            g_overlapped, g_apart);
            }
        }
    }

  private:
    Flavor saved_flavor_ = Flavor::checked;
    BugCheckHandler saved_handler_ = nullptr;
};

TEST_F(ModelVerifier, FastMutexCycleIsReportedInEverySchedule) {
    explore_both(Type::fast_mutex, "FAST_MUTEX", true);
}

TEST_F(ModelVerifier, KmutexCycleIsReportedInEverySchedule) {
    explore_both(Type::kmutex, "KMUTEX", true);
}

TEST_F(ModelVerifier, FastMutexConsistentOrderIsNeverReported) {
    explore_both(Type::fast_mutex, "FAST_MUTEX", false);
}

TEST_F(ModelVerifier, KmutexConsistentOrderIsNeverReported) {
    explore_both(Type::kmutex, "KMUTEX", false);
}

}  // namespace
}  // namespace kmlab::explore
