// S3-S6 of BENCHMARKING.md for every kmlab type x backend, the NT routines,
// kmlab's spin locks and every peer, in one binary so that every ratio comes
// from one run.
//
//   BM_Contended<L>/threads:T/cs_ns:C      S3: throughput sweep (T over the sweep at
//                                           C = 50; C over 0, 200, 2000 at T = cores, 4x cores)
//   BM_Oversubscribed<L>/threads:T/hog:H   S4: T = 4x, 16x cores, with and without a CPU hog
//   BM_Fairness<L>/threads:T               S5: no work outside the lock, C = 200
//   BM_Latency<L>/threads:T                S6: every 2nd acquisition timed, the whole
//                                           histogram kept (KMLAB_BENCH_HISTOGRAMS=1)
//
// Outside work is C x T nanoseconds: the offered load on the lock stays about
// the same as threads are added, so the sweep shows the lock, not a queue
// that grows without bound.
#include <benchmark/benchmark.h>

#include "common/context.hpp"
#include "common/workloads.hpp"

namespace {
using namespace kmlab::bench;

template <class L>
void BM_Contended(benchmark::State& state) {
    VerifierScope verifier(kVerified<L>);  // S15: on for Verified<L> only
    const int threads = static_cast<int>(state.range(0));
    const std::int64_t cs = state.range(1);
    auto g = std::make_unique<Guarded<L>>();
    WorkloadConfig cfg;
    cfg.threads = threads;
    cfg.duration = default_duration();
    run_and_report(state, cfg, contended_body(*g, cs, cs * threads));
}

template <class L>
void BM_Oversubscribed(benchmark::State& state) {
    auto g = std::make_unique<Guarded<L>>();
    WorkloadConfig cfg;
    cfg.threads = static_cast<int>(state.range(0));
    cfg.cpu_hog = state.range(1) != 0;
    cfg.duration = default_duration();
    run_and_report(state, cfg, contended_body(*g, 50, 50 * cfg.threads));
}

template <class L>
void BM_Fairness(benchmark::State& state) {
    auto g = std::make_unique<Guarded<L>>();
    WorkloadConfig cfg;
    cfg.threads = static_cast<int>(state.range(0));
    cfg.duration = default_duration();
    run_and_report(state, cfg, contended_body(*g, 200, 0));
}

template <class L>
void BM_Latency(benchmark::State& state) {
    auto g = std::make_unique<Guarded<L>>();
    WorkloadConfig cfg;
    cfg.threads = static_cast<int>(state.range(0));
    cfg.duration = default_duration();
    cfg.latency_sample_every = 2;
    cfg.keep_histogram = true;
    run_and_report(state, cfg, contended_body(*g, 50, 50 * cfg.threads));
}

void register_all() {
    const int c = online_cores();
    const auto sweep = sweep_thread_counts();
    for_each_exclusive_lock([&]<class L>() {
        auto* s3 = benchmark::RegisterBenchmark(
            bench_name("BM_Contended", LockAdapter<L>::name()).c_str(), BM_Contended<L>);
        s3->ArgNames({"threads", "cs_ns"});
        for (int t : sweep) s3->Args({t, 50});
        for (int t : {c, 4 * c})
            for (int cs : {0, 200, 2000}) s3->Args({t, cs});
        auto* s4 = benchmark::RegisterBenchmark(
            bench_name("BM_Oversubscribed", LockAdapter<L>::name()).c_str(), BM_Oversubscribed<L>);
        s4->ArgNames({"threads", "hog"});
        for (int t : {4 * c, 16 * c})
            for (int hog : {0, 1}) s4->Args({t, hog});
        auto* s5 = benchmark::RegisterBenchmark(
            bench_name("BM_Fairness", LockAdapter<L>::name()).c_str(), BM_Fairness<L>);
        s5->ArgNames({"threads"});
        for (int t : {2, 8 * c}) s5->Args({t});
        auto* s6 = benchmark::RegisterBenchmark(
            bench_name("BM_Latency", LockAdapter<L>::name()).c_str(), BM_Latency<L>);
        s6->ArgNames({"threads"});
        for (int t : {c, 8 * c}) s6->Args({t});
        for (auto* b : {s3, s4, s5, s6})
            b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
    });
    // S15: Driver Verifier's cost under contention, two points of S3's sweep
    // (C = 50) with the verifier on.
    for_each_verified_lock([&]<class L>() {
        auto* s15 = benchmark::RegisterBenchmark(
            bench_name("BM_VerifierContended", LockAdapter<L>::name()).c_str(), BM_Contended<L>);
        s15->ArgNames({"threads", "cs_ns"});
        for (int t : {2, 4 * c}) s15->Args({t, 50});
        s15->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
    });
}
}  // namespace

int main(int argc, char** argv) {
    return kmlab::bench::benchmark_main(argc, argv, register_all);
}
