// The workload harness: N worker threads driven by oneTBB for a fixed time.
//
// * oneTBB runs the workers: a tbb::global_control lets the pool grow past
//   the core count, a tbb::task_arena with N slots (none reserved for this
//   thread) receives N enqueued tasks. oneTBB does not promise each task its
//   own thread, so every task registers its thread id at a start barrier and
//   waits there until N distinct threads have arrived; if that takes longer
//   than `start_timeout`, the run is an error (never a hang, never a silent
//   run with fewer threads).
// * Fixed time, not fixed work (rule 3): each worker loops until a stop flag
//   the coordinator raises after `duration`; per-worker counts show fairness.
// * The benchmark thread only coordinates (it is not a worker) and reports
//   manual time and counters to Google Benchmark (report_to()).
#pragma once

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "harness/clock.hpp"
#include "harness/histogram.hpp"

namespace kmlab::bench {

struct WorkloadConfig {
    int threads = 1;
    std::chrono::nanoseconds duration = std::chrono::milliseconds(200);
    std::chrono::nanoseconds start_timeout = std::chrono::seconds(10);
    // Sample one acquisition in this many for the latency histogram
    // (rule in S6: sampled to limit the probe's cost); 0 turns it off.
    int latency_sample_every = 8;
    // Put the whole latency histogram into the JSON (where latency is the
    // subject, S6): about 1.5 KB per run, too much for every sweep point.
    bool keep_histogram = false;
    // S4: a thread outside the pool that burns a core for the whole run.
    bool cpu_hog = false;
};

// What one worker sees. The body loops `while (!ctx.stopped())`, counts each
// operation with ctx.done(), and may record acquire latencies.
struct alignas(128) WorkerContext {
    int index = 0;
    std::uint64_t operations = 0;
    LogHistogram latency;
    const std::atomic<bool>* stop = nullptr;
    std::uint64_t sample_mask = 0;  // sample when (operations & mask) == 0; ~0 = never

    bool stopped() const noexcept { return stop->load(std::memory_order_relaxed); }
    bool sample_now() const noexcept { return (operations & sample_mask) == 0; }
    void done() noexcept { ++operations; }
};

struct WorkloadResult {
    bool ok = false;
    std::string error;
    int threads = 0;
    int distinct_threads = 0;
    double seconds = 0;
    std::vector<std::uint64_t> per_worker;
    LogHistogram latency;  // merged, in nanoseconds
    bool keep_histogram = false;
    double process_cpu_seconds = 0;
    double worker_cpu_seconds = 0;
    long voluntary_switches = 0;  // summed over workers (RUSAGE_THREAD)
    long involuntary_switches = 0;

    std::uint64_t total() const noexcept;
    double throughput() const noexcept {
        return seconds > 0 ? static_cast<double>(total()) / seconds : 0;
    }
    double jain_index() const noexcept;  // (sum x)^2 / (n sum x^2): 1 = perfectly fair
    double coefficient_of_variation() const noexcept;
    std::uint64_t min_worker() const noexcept;
    std::uint64_t max_worker() const noexcept;

    // Manual time = the measured interval; counters named as in BENCHMARKING.md.
    void report_to(benchmark::State& state) const;
};

using WorkerBody = std::function<void(WorkerContext&)>;

// Runs `body` on `config.threads` distinct oneTBB worker threads.
WorkloadResult run_workload(const WorkloadConfig& config, const WorkerBody& body);

// Convenience for benchmarks: run, report, or SkipWithError with the reason.
void run_and_report(benchmark::State& state, const WorkloadConfig& config, const WorkerBody& body);

// Workload settings from the environment, so a quick profile can shorten
// every run without touching benchmark names: KMLAB_BENCH_DURATION_MS.
std::chrono::nanoseconds default_duration();

// KMLAB_BENCH_HISTOGRAMS=1 (set by scripts/lab run): runs that keep their
// histogram write it, encoded, as the benchmark's label. Off by default so
// that a console run by hand stays readable.
bool histograms_in_json();

}  // namespace kmlab::bench
