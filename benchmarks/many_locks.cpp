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

#include <kmlab/kernel/dispatcher.hpp>
#include "common/context.hpp"
#include "common/workloads.hpp"

namespace {
using namespace kmlab::bench;
using kmlab::dispatcher::LockMode;

template <class L>
constexpr bool uses_dispatcher() {
    if constexpr (requires { L::kind(); }) {
        return kmlab::backends::kernel_objects<typename L::backend>;
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
    WorkloadConfig cfg;
    cfg.threads = static_cast<int>(state.range(1));
    cfg.duration = default_duration();
    run_and_report(
        state, cfg,
        contended_body_with<L>([&](std::uint64_t x) -> Guarded<L>& { return *locks[x % nlocks]; },
                               50, 100));
    kmlab::dispatcher::set_lock_mode(LockMode::global);
}
}  // namespace

namespace {
void register_all() {
    const int c = online_cores();
    for_each_lock([&]<class L>() {
        auto* b = benchmark::RegisterBenchmark(
            bench_name("BM_ManyLocks", LockAdapter<L>::name()).c_str(), BM_ManyLocks<L>);
        b->ArgNames({"locks", "threads", "dispatcher_lock"});
        for (int n : {1, 16, 1024})
            for (int t : {c, 4 * c})
                for (int m : {0, 1})
                    if (m == 0 || uses_dispatcher<L>()) b->Args({n, t, m});
        b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
    });
}
}  // namespace

int main(int argc, char** argv) {
    return kmlab::bench::benchmark_main(argc, argv, register_all);
}
