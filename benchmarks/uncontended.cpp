// S1, S2 and S11 of BENCHMARKING.md: the uncontended cost of lock+unlock and
// try_lock+unlock for every kmlab type x backend, the NT routines and the
// peers, beside the physical floors (fetch_add, CAS, an empty loop), all in
// one binary so that every ratio comes from one run. A second thread is kept
// alive throughout (rule 1).
//
// S11, the cost of the kernel's rules, is BM_SafetyCost<L>: each kmlab type
// (IRQL check and update, owner tracking, APC accounting, an expected<Guard>)
// beside its bare raw lock (kmlab/mutexes/raw.hpp), measured as BM_LockUnlock is.
#include <benchmark/benchmark.h>

#include <atomic>

#include "common/context.hpp"
#include "common/locks.hpp"

namespace {
using namespace kmlab::bench;

// Each lock sits on its own 128-byte block (rule 6).
template <class L>
struct alignas(128) Padded {
    L lock{};
};

template <class L>
void BM_LockUnlock(benchmark::State& state) {
    auto* p = new Padded<L>();
    for (auto _ : state) LockAdapter<L>::lock_unlock(p->lock);
    state.SetItemsProcessed(state.iterations());
    delete p;
}

template <class L>
void BM_TryLockUnlock(benchmark::State& state) {
    auto* p = new Padded<L>();
    std::int64_t failures = 0;
    for (auto _ : state) failures += LockAdapter<L>::try_lock_unlock(p->lock) ? 0 : 1;
    if (failures != 0) state.SkipWithError("try_lock failed on a free lock");
    state.SetItemsProcessed(state.iterations());
    delete p;
}

void BM_Floor_FetchAdd(benchmark::State& state) {
    alignas(128) std::atomic<long> word{0};
    for (auto _ : state) word.fetch_add(1, std::memory_order_acq_rel);
    benchmark::DoNotOptimize(word.load());
}

void BM_Floor_CompareExchange(benchmark::State& state) {
    alignas(128) std::atomic<long> word{0};
    for (auto _ : state) {
        long expected = 0;
        word.compare_exchange_strong(expected, 1, std::memory_order_acquire);
        word.store(0, std::memory_order_release);
    }
}

void BM_Floor_EmptyLoop(benchmark::State& state) {
    for (auto _ : state) benchmark::ClobberMemory();
}

void register_all() {
    for_each_lock([]<class L>() {
        benchmark::RegisterBenchmark(bench_name("BM_LockUnlock", LockAdapter<L>::name()).c_str(),
                                     BM_LockUnlock<L>);
        benchmark::RegisterBenchmark(bench_name("BM_TryLockUnlock", LockAdapter<L>::name()).c_str(),
                                     BM_TryLockUnlock<L>);
    });
    benchmark::RegisterBenchmark("BM_Floor<fetch_add>", BM_Floor_FetchAdd);
    benchmark::RegisterBenchmark("BM_Floor<cas+store>", BM_Floor_CompareExchange);
    benchmark::RegisterBenchmark("BM_Floor<empty_loop>", BM_Floor_EmptyLoop);
    auto safety = []<class L>() {
        benchmark::RegisterBenchmark(bench_name("BM_SafetyCost", LockAdapter<L>::name()).c_str(),
                                     BM_LockUnlock<L>);
    };
    for_each_lock([&]<class L>() {
        if constexpr (requires { L::kind(); }) safety.template operator()<L>();
    });
    for_each_raw_lock(safety);
}
}  // namespace

int main(int argc, char** argv) {
    return kmlab::bench::benchmark_main(argc, argv, register_all);
}
