// S7: handoff. Two threads pass a turn back and forth through the lock: each
// takes the lock, and if the turn is its own, hands it to the other. Every
// counted operation is one handoff, so ops_per_s is handoffs per second and
// vcsw_per_op how many times a thread had to sleep per handoff.
//
//   BM_Handoff<L>                 the turn-passing through every exclusive lock
//   BM_HandoffFloor<raw_futex>    a ping-pong on two raw futex words (common/ping_pong.hpp),
//                                 in this binary so that the KMUTEX handoff's ratio to it
//                                 comes from interleaved rounds; its operation is one round
//                                 trip (a wake each way), as in S9
//
// S16: the same two threads pinned to one CPU (the first this process may
// use: what `taskset -c 0` gives), as on a loaded machine where they share a
// core. A lock whose release lets the running thread take it straight back
// passes the turn only when the scheduler preempts that thread; a KMUTEX
// hands ownership to its first waiter, so its rate should stay near the
// futex's. Issue 20 found 265 handoffs/s against 180,000 futex round trips/s:
// the emulated dispatcher's own lock let the running thread starve the one
// trying to join the wait list.
//
//   BM_OneCore<KeWaitForSingleObject(KMUTEX)>  turn-passing through the NT routines
//   BM_OneCore<KMutex,dispatcher>              the same KMUTEX through the idiomatic type
//   BM_OneCore<std::mutex>                     turn-passing through glibc's barging mutex
//   BM_OneCore<KEVENT>                         S9's KEVENT ping-pong (round trips)
//   BM_OneCore<raw_futex>                      the raw-futex ping-pong (round trips): the reference
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>

#include "common/context.hpp"
#include "common/ping_pong.hpp"
#include "common/pinning.hpp"
#include "common/workloads.hpp"

namespace {
using namespace kmlab::bench;

template <class L>
void BM_Handoff(benchmark::State& state) {
    auto g = std::make_unique<Guarded<L>>();
    run_and_report(state, pair_config(), turn_passing_body(*g));
}

void BM_HandoffFloor_RawFutex(benchmark::State& state) {
    auto pp = std::make_unique<RawFutexPingPong>();
    run_and_report(state, pair_config(), pp->body());
}

// `body` with both workers pinned to the first CPU this process may use; a
// pin that did not take is an error, not a figure. The counter `cpu` names
// the CPU.
void run_on_one_core(benchmark::State& state, WorkerBody body) {
    const int cpu = first_allowed_cpu();
    if (cpu < 0) {
        state.SkipWithError("cannot read this thread's CPU affinity mask");
        return;
    }
    for (auto _ : state) {
        std::atomic<bool> failed{false};
        WorkloadResult r = run_workload(pair_config(), pinned(body, cpu, failed));
        if (!r.ok) {
            state.SkipWithError(r.error.c_str());
            return;
        }
        if (failed.load()) {
            state.SkipWithError("a worker could not be pinned to the CPU (sched_setaffinity)");
            return;
        }
        r.report_to(state);
        state.counters["cpu"] = cpu;
    }
}

template <class L>
void BM_OneCore_TurnPassing(benchmark::State& state) {
    auto g = std::make_unique<Guarded<L>>();
    run_on_one_core(state, turn_passing_body(*g));
}

void BM_OneCore_Kevent(benchmark::State& state) {
    auto pp = std::make_unique<KeventPingPong>();
    run_on_one_core(state, pp->body());
}

void BM_OneCore_RawFutex(benchmark::State& state) {
    auto pp = std::make_unique<RawFutexPingPong>();
    run_on_one_core(state, pp->body());
}
}  // namespace

namespace {
void setup(benchmark::internal::Benchmark* b) {
    b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
}

void register_all() {
    for_each_exclusive_lock([]<class L>() {
        setup(benchmark::RegisterBenchmark(bench_name("BM_Handoff", LockAdapter<L>::name()).c_str(),
                                           BM_Handoff<L>));
    });
    setup(benchmark::RegisterBenchmark("BM_HandoffFloor<raw_futex>", BM_HandoffFloor_RawFutex));

    auto one_core = []<class L>() {
        setup(benchmark::RegisterBenchmark(bench_name("BM_OneCore", LockAdapter<L>::name()).c_str(),
                                           BM_OneCore_TurnPassing<L>));
    };
    one_core.template operator()<NtKMutex>();
    one_core.template operator()<kmlab::KMutex<long, kmlab::backends::Dispatcher>>();
    one_core.template operator()<std::mutex>();
    setup(benchmark::RegisterBenchmark("BM_OneCore<KEVENT>", BM_OneCore_Kevent));
    setup(benchmark::RegisterBenchmark("BM_OneCore<raw_futex>", BM_OneCore_RawFutex));
}
}  // namespace

int main(int argc, char** argv) {
    return kmlab::bench::benchmark_main(argc, argv, register_all);
}
