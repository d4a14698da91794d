// S13: the schedule explorer's speed, in schedules run per second, on one
// reference configuration, so that a change that slows the explorer shows
// in the report as any regression does.
//
//   BM_ExplorerSpeed<dispatcher-KMUTEX>/threads:3/ops:2/bound:2
//       the model suite's dispatcher KMUTEX 3x2 (tests/model/
//       model_dispatcher_test.cpp): three model threads, two
//       KeWaitForSingleObject / KeReleaseMutex each ({wait, wait}
//       {timed wait, wait} {poll, timed wait}), through the real dispatcher
//       (global lock mode) with its lock and parking under the model,
//       sequentially consistent, explored exhaustively at preemption bound 2.
//
// One iteration is one whole exhaustive search (20,255 schedules, about
// 0.22 s of CPU on the 2-core VM of BENCHMARKING.md, 2026-12-07: some
// 93,000 schedules per second).
// schedules_per_s is the schedules it ran over the CPU time of the thread
// that ran them: the explorer runs every model thread on that one OS thread,
// so its CPU time is its whole cost, and unlike wall time it does not grow
// when other work shares the machine (the reported time is wall time).
// `schedules` is the search's size, which a change in the explorer's choice
// points (not its speed) moves; a comparison that sees it change compares
// different work.
#include <benchmark/benchmark.h>

#include <time.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kmlab_nt.hpp>
#include "common/context.hpp"

namespace {
using namespace kmlab::nt;
namespace explore = kmlab::explore;
namespace kernel = kmlab::kernel;

enum class Op { wait, poll, timed };

struct State {
    KMUTEX mutex;
    explore::Atomic<int> data{0};  // written under the mutex: a model location
    int in_cs = 0;
    std::vector<PKTHREAD> threads;
    explicit State(std::size_t n) {
        KeInitializeMutex(&mutex, 0);
        for (std::size_t i = 0; i < n; ++i) threads.push_back(kernel::create_thread_object(false));
    }
    ~State() {
        for (auto* t : threads) kernel::dereference_thread(t);
    }
    State(const State&) = delete;
    State& operator=(const State&) = delete;
};

using Plan = std::vector<std::vector<Op>>;

std::function<explore::Program()> kmutex_program(explore::DispatcherUnderModel& dut,
                                                 const Plan& plan) {
    return [&dut, plan] {
        dut.reset();
        auto s = std::make_shared<State>(plan.size());
        explore::Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                kernel::detail::tls_current_thread = s->threads[i];  // this fiber's KTHREAD
                for (Op op : ops) {
                    // "timed" is 1 hour: it expires only when the scheduler says so.
                    LARGE_INTEGER timeout{};
                    timeout.QuadPart = op == Op::timed ? -36'000'000'000LL : 0;
                    const NTSTATUS st =
                        KeWaitForSingleObject(&s->mutex, Executive, KernelMode, FALSE,
                                              op == Op::wait ? nullptr : &timeout);
                    if (st == STATUS_TIMEOUT && op != Op::wait) continue;
                    if (st != STATUS_SUCCESS)
                        explore::fail("KeWaitForSingleObject: unexpected status");
                    if (++s->in_cs != 1) explore::fail("two threads own the KMUTEX");
                    s->data.store(s->data.load() + 1);
                    --s->in_cs;
                    KeReleaseMutex(&s->mutex, FALSE);
                }
            });
        }
        p.check = [s]() -> std::string {
            if (KeReadStateMutex(&s->mutex) != 1 || s->mutex.OwnerThread != nullptr)
                return "the KMUTEX is not back in its initial state";
            return {};
        };
        return p;
    };
}

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void BM_ExplorerSpeed(benchmark::State& state) {
    const Plan plan = {{Op::wait, Op::wait}, {Op::timed, Op::wait}, {Op::poll, Op::timed}};
    explore::DispatcherUnderModel dut;
    explore::Config config;
    config.memory = explore::Memory::sc;
    config.preemption_bound = static_cast<int>(state.range(2));
    config.fiber_locals = explore::DispatcherUnderModel::fiber_locals();
    long schedules = 0;
    double cpu_seconds = 0;
    for (auto _ : state) {
        const auto start = std::chrono::steady_clock::now();
        const double cpu_start = thread_cpu_seconds();
        const explore::Result r = explore::explore(config, kmutex_program(dut, plan));
        cpu_seconds += thread_cpu_seconds() - cpu_start;
        const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
        state.SetIterationTime(elapsed.count());
        if (r.violation || !r.complete) {
            state.SkipWithError(("the reference search did not end clean: " + r.summary()).c_str());
            return;
        }
        schedules += r.schedules;
    }
    const auto iterations = static_cast<double>(state.iterations());
    state.counters["schedules_per_s"] =
        cpu_seconds > 0 ? static_cast<double>(schedules) / cpu_seconds : 0;
    state.counters["schedules"] = static_cast<double>(schedules) / iterations;
}

void register_all() {
    benchmark::RegisterBenchmark("BM_ExplorerSpeed<dispatcher-KMUTEX>", BM_ExplorerSpeed)
        ->ArgNames({"threads", "ops", "bound"})
        ->Args({3, 2, 2})
        ->UseManualTime()
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
}
}  // namespace

int main(int argc, char** argv) {
    return kmlab::bench::benchmark_main(argc, argv, register_all);
}
