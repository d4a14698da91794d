#include "harness/workload.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

namespace kmlab::bench {

namespace {
double seconds_of(const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

double process_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime);
}

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct ThreadUsage {
    double cpu = 0;
    long voluntary = 0, involuntary = 0;
    static ThreadUsage now() {
        rusage ru{};
        getrusage(RUSAGE_THREAD, &ru);
        return {thread_cpu_seconds(), ru.ru_nvcsw, ru.ru_nivcsw};
    }
};
}  // namespace

double tsc_per_ns() {
    static const double value = [] {
        const auto t0 = std::chrono::steady_clock::now();
        const std::uint64_t c0 = __rdtsc();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        const std::uint64_t c1 = __rdtsc();
        const auto t1 = std::chrono::steady_clock::now();
        const double ns = static_cast<double>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
        return static_cast<double>(c1 - c0) / ns;
    }();
    return value;
}

std::uint64_t WorkloadResult::total() const noexcept {
    std::uint64_t t = 0;
    for (auto c : per_worker) t += c;
    return t;
}

double WorkloadResult::jain_index() const noexcept {
    double sum = 0, sq = 0;
    for (auto c : per_worker) {
        sum += static_cast<double>(c);
        sq += static_cast<double>(c) * static_cast<double>(c);
    }
    return sq == 0 ? 0 : sum * sum / (static_cast<double>(per_worker.size()) * sq);
}

double WorkloadResult::coefficient_of_variation() const noexcept {
    if (per_worker.empty()) return 0;
    const double mean = static_cast<double>(total()) / static_cast<double>(per_worker.size());
    if (mean == 0) return 0;
    double var = 0;
    for (auto c : per_worker)
        var += (static_cast<double>(c) - mean) * (static_cast<double>(c) - mean);
    return std::sqrt(var / static_cast<double>(per_worker.size())) / mean;
}

std::uint64_t WorkloadResult::min_worker() const noexcept {
    return per_worker.empty() ? 0 : *std::min_element(per_worker.begin(), per_worker.end());
}
std::uint64_t WorkloadResult::max_worker() const noexcept {
    return per_worker.empty() ? 0 : *std::max_element(per_worker.begin(), per_worker.end());
}

void WorkloadResult::report_to(benchmark::State& state) const {
    state.SetIterationTime(seconds);
    const double ops = static_cast<double>(total());
    auto& c = state.counters;
    c["threads"] = threads;
    c["distinct_threads"] = distinct_threads;
    c["ops"] = ops;
    c["ops_per_s"] = throughput();
    c["jain"] = jain_index();
    c["cv"] = coefficient_of_variation();
    c["min_share"] = ops > 0 ? static_cast<double>(min_worker()) * threads / ops : 0;
    c["max_share"] = ops > 0 ? static_cast<double>(max_worker()) * threads / ops : 0;
    c["cpu_ns_per_op"] = ops > 0 ? process_cpu_seconds * 1e9 / ops : 0;
    c["worker_cpu_ns_per_op"] =
        ops > 0 ? worker_cpu_seconds * 1e9 / ops : 0;  // the workers' own threads only
    c["vcsw_per_op"] = ops > 0 ? static_cast<double>(voluntary_switches) / ops : 0;
    c["ivcsw_per_op"] = ops > 0 ? static_cast<double>(involuntary_switches) / ops : 0;
    if (latency.count() > 0) {
        c["p50_ns"] = static_cast<double>(latency.quantile(0.50));
        c["p99_ns"] = static_cast<double>(latency.quantile(0.99));
        c["p999_ns"] = static_cast<double>(latency.quantile(0.999));
        c["max_ns"] = static_cast<double>(latency.max());
        c["latency_samples"] = static_cast<double>(latency.count());
        if (keep_histogram && histograms_in_json()) state.SetLabel(latency.encode());
    }
}

std::chrono::nanoseconds default_duration() {
    if (const char* v = std::getenv("KMLAB_BENCH_DURATION_MS")) {
        const long ms = std::strtol(v, nullptr, 10);
        if (ms > 0) return std::chrono::milliseconds(ms);
    }
    return std::chrono::milliseconds(200);
}

bool histograms_in_json() {
    static const bool on = [] {
        const char* v = std::getenv("KMLAB_BENCH_HISTOGRAMS");
        return v != nullptr && std::string(v) == "1";
    }();
    return on;
}

WorkloadResult run_workload(const WorkloadConfig& config, const WorkerBody& body) {
    WorkloadResult result;
    const int n = config.threads;
    result.threads = n;
    result.keep_histogram = config.keep_histogram;
    if (n <= 0) {
        result.error = "threads must be positive";
        return result;
    }

    // Room for n workers plus this (coordinating) thread.
    tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism,
                                    static_cast<std::size_t>(n) + 1);
    tbb::task_arena arena(n, 0);

    // Shared with the tasks by ownership: after a start timeout, tasks still
    // queued in oneTBB may run later; they find `abort_start` set and return
    // without touching the body or anything on this stack.
    struct Shared {
        std::atomic<bool> stop{false};
        std::atomic<bool> abort_start{false};
        std::atomic<bool> go{false};
        std::atomic<int> arrived{0};
        std::atomic<int> finished{0};
        std::mutex ids_lock;
        std::set<long> ids;
        std::vector<WorkerContext> contexts;
        std::vector<ThreadUsage> usage;
        WorkerBody body;
    };
    auto sh = std::make_shared<Shared>();
    sh->contexts.resize(static_cast<std::size_t>(n));
    sh->usage.resize(static_cast<std::size_t>(n));
    sh->body = body;

    std::uint64_t mask = ~std::uint64_t{0};
    if (config.latency_sample_every > 0)
        mask = std::bit_ceil(static_cast<std::uint64_t>(config.latency_sample_every)) - 1;

    for (int i = 0; i < n; ++i) {
        WorkerContext& ctx = sh->contexts[static_cast<std::size_t>(i)];
        ctx.index = i;
        ctx.stop = &sh->stop;
        ctx.sample_mask = mask;
        arena.enqueue([sh, i] {
            {
                std::lock_guard g(sh->ids_lock);
                sh->ids.insert(static_cast<long>(syscall(SYS_gettid)));
            }
            sh->arrived.fetch_add(1);
            // The start barrier: a task that cannot see its peers arrive is
            // sharing a thread with them, or the pool is too small.
            while (!sh->go.load(std::memory_order_acquire)) {
                if (sh->abort_start.load(std::memory_order_relaxed)) {
                    sh->finished.fetch_add(1);
                    return;
                }
                std::this_thread::yield();
            }
            const ThreadUsage before = ThreadUsage::now();
            sh->body(sh->contexts[static_cast<std::size_t>(i)]);
            const ThreadUsage after = ThreadUsage::now();
            sh->usage[static_cast<std::size_t>(i)] = {after.cpu - before.cpu,
                                                      after.voluntary - before.voluntary,
                                                      after.involuntary - before.involuntary};
            sh->finished.fetch_add(1);
        });
    }

    const auto start_deadline = std::chrono::steady_clock::now() + config.start_timeout;
    while (sh->arrived.load() < n) {
        if (std::chrono::steady_clock::now() > start_deadline) {
            sh->abort_start = true;
            std::lock_guard g(sh->ids_lock);
            result.distinct_threads = static_cast<int>(sh->ids.size());
            result.error = "only " + std::to_string(sh->arrived.load()) + " of " +
                           std::to_string(n) + " worker threads started within " +
                           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                              config.start_timeout)
                                              .count()) +
                           " s (oneTBB pool too small?)";
            return result;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    {
        std::lock_guard g(sh->ids_lock);
        result.distinct_threads = static_cast<int>(sh->ids.size());
    }
    if (result.distinct_threads != n) {
        sh->abort_start = true;
        while (sh->finished.load() < n) std::this_thread::yield();
        result.error = std::to_string(n) + " tasks ran on only " +
                       std::to_string(result.distinct_threads) + " distinct threads";
        return result;
    }

    std::atomic<bool> hog_stop{false};
    std::thread hog;
    if (config.cpu_hog) {
        hog = std::thread([&] {
            volatile std::uint64_t x = 0;
            while (!hog_stop.load(std::memory_order_relaxed)) x = x + 1;
        });
    }

    const double cpu0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    sh->go.store(true, std::memory_order_release);
    std::this_thread::sleep_for(config.duration);
    sh->stop.store(true, std::memory_order_relaxed);
    while (sh->finished.load() < n) std::this_thread::sleep_for(std::chrono::microseconds(100));
    const auto t1 = std::chrono::steady_clock::now();
    const double cpu1 = process_cpu_seconds();
    if (hog.joinable()) {
        hog_stop = true;
        hog.join();
    }

    result.ok = true;
    result.seconds = std::chrono::duration<double>(t1 - t0).count();
    result.process_cpu_seconds = cpu1 - cpu0;
    for (int i = 0; i < n; ++i) {
        const auto& ctx = sh->contexts[static_cast<std::size_t>(i)];
        const auto& u = sh->usage[static_cast<std::size_t>(i)];
        result.per_worker.push_back(ctx.operations);
        result.latency.merge(ctx.latency);
        result.worker_cpu_seconds += u.cpu;
        result.voluntary_switches += u.voluntary;
        result.involuntary_switches += u.involuntary;
    }
    return result;
}

void run_and_report(benchmark::State& state, const WorkloadConfig& config, const WorkerBody& body) {
    for (auto _ : state) {
        WorkloadResult r = run_workload(config, body);
        if (!r.ok) {
            state.SkipWithError(r.error.c_str());
            return;
        }
        r.report_to(state);
    }
}

}  // namespace kmlab::bench
