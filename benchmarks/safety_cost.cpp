// S11: what the kernel's rules cost. Each kmlab type's lock+unlock (IRQL
// check and update, owner tracking, APC accounting, an expected<Guard>)
// beside its raw lock alone (mutexes/raw.hpp), uncontended, with a second
// thread alive. `instructions` counts the same pairs under callgrind.
#include <benchmark/benchmark.h>

#include "common/context.hpp"
#include "common/locks.hpp"

namespace {
using namespace kmlab::bench;

template <class L>
struct alignas(128) Padded {
    L lock{};
};

template <class L>
void BM_SafetyCost(benchmark::State& state) {
    auto l = std::make_unique<Padded<L>>();
    for (auto _ : state) LockAdapter<L>::lock_unlock(l->lock);
}
}  // namespace

namespace {
void register_all() {
    auto add = []<class L>() {
        benchmark::RegisterBenchmark(bench_name("BM_SafetyCost", LockAdapter<L>::name()).c_str(),
                                     BM_SafetyCost<L>);
    };
    for_each_lock([&]<class L>() {
        if constexpr (requires { L::kind(); }) add.template operator()<L>();
    });
    for_each_raw_lock(add);
}
}  // namespace

int main(int argc, char** argv) {
    return kmlab::bench::benchmark_main(argc, argv, register_all);
}
