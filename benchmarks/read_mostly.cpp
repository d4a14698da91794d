// S12: read-mostly work on one reader/writer lock. Each worker draws, per
// operation, a reader (with probability read_pct %) or a writer: a reader takes
// the lock shared and reads the guarded data, a writer takes it exclusive and
// changes it; either then busy-waits kCsNs inside and kOutsideNs outside.
//
//   BM_ReadMostly<L>/threads:T/read_pct:P    T = 2, 4, #cores, 2x #cores; P = 50, 90, 99
//
// Fixed time (rule 3): ops_per_s counts acquisitions of both kinds per second;
// std::shared_mutex is the reference. Decision, kmlab: the critical section
// (200 ns) is long beside the work outside (100 ns, not scaled with threads
// as S3 scales it), so that the lock, not the CPUs, bounds an exclusive-only
// lock (at most 1 / 200 ns = 5 M/s) and readers that really share can go past
// it, up to the cores' bound (2 cores: about 6.7 M/s).
#include <benchmark/benchmark.h>

#include <algorithm>

#include "common/context.hpp"
#include "common/rw_locks.hpp"
#include "common/workloads.hpp"

namespace {
using namespace kmlab::bench;

constexpr std::int64_t kCsNs = 200;
constexpr std::int64_t kOutsideNs = 100;

template <class L>
void BM_ReadMostly(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    const auto read_pct = static_cast<std::uint64_t>(state.range(1));
    auto g = std::make_unique<Guarded<L>>();
    WorkloadConfig cfg;
    cfg.threads = threads;
    cfg.duration = default_duration();
    cfg.latency_sample_every = 0;
    const std::uint64_t cs = ticks_for_ns(kCsNs);
    const std::uint64_t outside = ticks_for_ns(kOutsideNs);
    run_and_report(state, cfg, [&g = *g, read_pct, cs, outside](WorkerContext& ctx) {
        std::uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(ctx.index + 1);
        while (!ctx.stopped()) {
            x ^= x << 13;  // xorshift64, per thread
            x ^= x >> 7;
            x ^= x << 17;
            if (x % 100 < read_pct) {
                typename RwAdapter<L>::SharedScoped hold(g.lock);
                std::uint64_t sum = g.data[0] + g.data[1];
                benchmark::DoNotOptimize(sum);
                spin_ticks(cs);
            } else {
                typename RwAdapter<L>::Scoped hold(g.lock);
                ++g.data[0];
                g.data[1] = g.data[0];
                spin_ticks(cs);
            }
            ctx.done();
            spin_ticks(outside);
        }
    });
}

void register_all() {
    const int c = online_cores();
    std::vector<int> threads{2, 4, c, 2 * c};
    std::sort(threads.begin(), threads.end());
    threads.erase(std::unique(threads.begin(), threads.end()), threads.end());
    for_each_rw_lock([&]<class L>() {
        auto* b = benchmark::RegisterBenchmark(
            bench_name("BM_ReadMostly", RwAdapter<L>::name()).c_str(), BM_ReadMostly<L>);
        b->ArgNames({"threads", "read_pct"});
        for (int t : threads)
            for (int p : {50, 90, 99}) b->Args({t, p});
        b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
    });
}
}  // namespace

int main(int argc, char** argv) {
    return kmlab::bench::benchmark_main(argc, argv, register_all);
}
