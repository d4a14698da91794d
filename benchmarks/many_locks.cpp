// S8: many locks. Each operation takes one of N locks chosen at random
// (N = 1, 16, 1024), holds it for 50 ns and works 100 ns outside. With one
// lock, the lock itself is the bottleneck; with many, contention on any one
// lock is rare and what remains shared is the implementation's own state:
// for the locks that live in the emulated dispatcher, its database lock.
//
//   BM_ManyLocks<L>/locks:N/threads:T/dispatcher_lock:M
//     M = 0: one global dispatcher lock (NT before Windows 7, ReactOS)
//     M = 1: per-object locks (Windows 7 and later)
// Locks that never enter the dispatcher run with M = 0 only.
#include <benchmark/benchmark.h>

#include "backends/dispatcher/core.hpp"
#include "common/context.hpp"
#include "common/workloads.hpp"

namespace {
using namespace kmlab::bench;
using kmlab::dispatcher::LockMode;

template <class L>
constexpr bool uses_dispatcher() {
    if constexpr (requires { L::kind(); }) {
        return L::backend::name() == "dispatcher";
    } else {
        return std::is_same_v<L, NtKMutex> || std::is_same_v<L, NtFastMutex> ||
               std::is_same_v<L, NtGuardedMutex>;
    }
}

template <class L>
void BM_ManyLocks(benchmark::State& state) {
    const auto nlocks = static_cast<std::size_t>(state.range(0));
    const LockMode mode = state.range(2) != 0 ? LockMode::per_object : LockMode::global;
    kmlab::dispatcher::set_lock_mode(mode);  // quiescent here: no worker runs yet
    std::vector<std::unique_ptr<Guarded<L>>> locks;
    for (std::size_t i = 0; i < nlocks; ++i) locks.push_back(std::make_unique<Guarded<L>>());
    const std::uint64_t cs = ticks_for_ns(50);
    const std::uint64_t outside = ticks_for_ns(100);
    WorkloadConfig cfg;
    cfg.threads = static_cast<int>(state.range(1));
    cfg.duration = default_duration();
    run_and_report(state, cfg, [&](WorkerContext& ctx) {
        std::uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(ctx.index + 1);
        while (!ctx.stopped()) {
            x ^= x << 13;  // xorshift64: cheap, per-thread, good enough to spread the choice
            x ^= x >> 7;
            x ^= x << 17;
            auto& g = *locks[x % nlocks];
            const bool sample = ctx.sample_now();
            const std::uint64_t t0 = sample ? now_ticks() : 0;
            {
                typename LockAdapter<L>::Scoped hold(g.lock);
                if (sample) ctx.latency.add(ticks_to_ns(now_ticks() - t0));
                ++g.data[0];
                spin_ticks(cs);
            }
            ctx.done();
            spin_ticks(outside);
        }
    });
    kmlab::dispatcher::set_lock_mode(LockMode::global);
}
}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    keep_second_thread_alive();
    add_run_context();
    const int c = online_cores();
    for_each_lock([&]<class L>() {
        auto* b = benchmark::RegisterBenchmark(
            ("BM_ManyLocks<" + LockAdapter<L>::name() + ">").c_str(), BM_ManyLocks<L>);
        b->ArgNames({"locks", "threads", "dispatcher_lock"});
        for (int n : {1, 16, 1024})
            for (int t : {c, 4 * c})
                for (int m : {0, 1})
                    if (m == 0 || uses_dispatcher<L>()) b->Args({n, t, m});
        b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
    });
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
