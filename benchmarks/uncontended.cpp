// S1, S2 and S11 of BENCHMARKING.md: the uncontended cost of lock+unlock and
// try_lock+unlock for every kmlab type x backend, the NT routines and the
// peers, beside the physical floors (fetch_add, CAS, an empty loop), all in
// one binary so that every ratio comes from one run. A second thread is kept
// alive throughout (rule 1).
//
// The spin locks join the exclusive pairs (BM_LockUnlock, BM_TryLockUnlock
// where a try exists); the reader/writer locks have pairs of their own,
// BM_RwShared and BM_RwExclusive, each including what the lock needs around it
// (a critical region for ERESOURCE and push locks: BM_Floor<critical_region>
// is that region alone), and BM_RwSharedInRegion, the shared pair of those
// locks by a thread already in a region.
//
// S11, the cost of the kernel's rules, is BM_SafetyCost<L>: each kmlab type
// (IRQL check and update, owner tracking, APC accounting, an expected<Guard>)
// beside its bare raw lock (kmlab/mutexes/raw.hpp), measured as BM_LockUnlock is.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <type_traits>

#include "common/context.hpp"
#include "common/locks.hpp"
#include "common/rw_locks.hpp"

namespace {
using namespace kmlab::bench;

// Each lock sits on its own 128-byte block (rule 6).
template <class L>
struct alignas(128) Padded {
    L lock{};
};

template <class L>
void BM_LockUnlock(benchmark::State& state) {
    VerifierScope verifier(kVerified<L>);  // S14: on for Verified<L> only
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

template <class L>
void BM_RwExclusive(benchmark::State& state) {
    auto* p = new Padded<L>();
    for (auto _ : state) RwAdapter<L>::lock_unlock(p->lock);
    state.SetItemsProcessed(state.iterations());
    delete p;
}

template <class L>
void BM_RwShared(benchmark::State& state) {
    auto* p = new Padded<L>();
    for (auto _ : state) RwAdapter<L>::lock_shared_unlock(p->lock);
    state.SetItemsProcessed(state.iterations());
    delete p;
}

// Shared pairs by a thread already inside a critical region, for the locks
// that need one (a driver that takes several locks in one region pays for it
// once); std::shared_mutex, which needs none, beside them as the reference.
template <class L>
void BM_RwSharedInRegion(benchmark::State& state) {
    auto* p = new Padded<L>();
    {
        auto region = kmlab::CriticalRegion::enter();
        if (!region) std::abort();
        for (auto _ : state) {
            if constexpr (needs_region<L>())
                RwAdapter<L>::lock_shared_unlock_in_region(p->lock);
            else
                RwAdapter<L>::lock_shared_unlock(p->lock);
        }
    }
    state.SetItemsProcessed(state.iterations());
    delete p;
}

// KeEnterCriticalRegion + KeLeaveCriticalRegion through kmlab::CriticalRegion:
// what the ERESOURCE and push lock pairs pay besides the lock.
void BM_Floor_CriticalRegion(benchmark::State& state) {
    for (auto _ : state) {
        auto r = kmlab::CriticalRegion::enter();
        benchmark::DoNotOptimize(r);
    }
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
    for_each_exclusive_lock([]<class L>() {
        benchmark::RegisterBenchmark(bench_name("BM_LockUnlock", LockAdapter<L>::name()).c_str(),
                                     BM_LockUnlock<L>);
        if constexpr (kHasTry<L>)
            benchmark::RegisterBenchmark(
                bench_name("BM_TryLockUnlock", LockAdapter<L>::name()).c_str(),
                BM_TryLockUnlock<L>);
    });
    for_each_rw_lock([]<class L>() {
        benchmark::RegisterBenchmark(bench_name("BM_RwShared", RwAdapter<L>::name()).c_str(),
                                     BM_RwShared<L>);
        benchmark::RegisterBenchmark(bench_name("BM_RwExclusive", RwAdapter<L>::name()).c_str(),
                                     BM_RwExclusive<L>);
        if constexpr (needs_region<L>() || std::is_same_v<L, std::shared_mutex>)
            benchmark::RegisterBenchmark(
                bench_name("BM_RwSharedInRegion", RwAdapter<L>::name()).c_str(),
                BM_RwSharedInRegion<L>);
    });
    benchmark::RegisterBenchmark("BM_Floor<fetch_add>", BM_Floor_FetchAdd);
    benchmark::RegisterBenchmark("BM_Floor<cas+store>", BM_Floor_CompareExchange);
    benchmark::RegisterBenchmark("BM_Floor<empty_loop>", BM_Floor_EmptyLoop);
    benchmark::RegisterBenchmark("BM_Floor<critical_region>", BM_Floor_CriticalRegion);
    auto safety = []<class L>() {
        benchmark::RegisterBenchmark(bench_name("BM_SafetyCost", LockAdapter<L>::name()).c_str(),
                                     BM_LockUnlock<L>);
    };
    for_each_lock([&]<class L>() {
        if constexpr (requires { L::kind(); }) safety.template operator()<L>();
    });
    for_each_raw_lock(safety);
    // S14: Driver Verifier's cost, the same pair with the verifier on.
    for_each_verified_lock([]<class L>() {
        benchmark::RegisterBenchmark(
            bench_name("BM_VerifierLockUnlock", LockAdapter<L>::name()).c_str(), BM_LockUnlock<L>);
    });
}
}  // namespace

int main(int argc, char** argv) {
    return kmlab::bench::benchmark_main(argc, argv, register_all);
}
