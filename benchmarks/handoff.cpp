// S7: handoff. Two threads pass a turn back and forth through the lock: each
// takes the lock, and if the turn is its own, hands it to the other. Every
// counted operation is one handoff, so ops_per_s is handoffs per second and
// vcsw_per_op how many times a thread had to sleep per handoff.
#include <benchmark/benchmark.h>

#include "common/context.hpp"
#include "common/workloads.hpp"

namespace {
using namespace kmlab::bench;

template <class L>
void BM_Handoff(benchmark::State& state) {
    auto g = std::make_unique<Guarded<L>>();
    WorkloadConfig cfg;
    cfg.threads = 2;
    cfg.duration = default_duration();
    cfg.latency_sample_every = 0;
    run_and_report(state, cfg, [&g = *g](WorkerContext& ctx) {
        const auto me = static_cast<std::uint64_t>(ctx.index);
        while (!ctx.stopped()) {
            bool handed = false;
            {
                typename LockAdapter<L>::Scoped hold(g.lock);
                if (g.data[0] == me) {
                    g.data[0] = 1 - me;
                    handed = true;
                }
            }
            if (handed) ctx.done();
        }
    });
}
}  // namespace

namespace {
void register_all() {
    for_each_exclusive_lock([]<class L>() {
        benchmark::RegisterBenchmark(bench_name("BM_Handoff", LockAdapter<L>::name()).c_str(),
                                     BM_Handoff<L>)
            ->UseManualTime()
            ->Iterations(1)
            ->Unit(benchmark::kMillisecond);
    });
}
}  // namespace

int main(int argc, char** argv) {
    return kmlab::bench::benchmark_main(argc, argv, register_all);
}
