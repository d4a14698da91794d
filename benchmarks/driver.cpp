// S10: driver-shaped work.
//
//   BM_IrpQueue<L>/threads:T   an IRP-like queue (a deque of small request
//                              records) guarded by L; even workers produce,
//                              odd workers consume; each counted operation is
//                              one request completed (items per second)
//   BM_GrtLookupLock<L>/threads:T   look a named mutex up in Grt, then lock it
//                              and update its value (kmlab types only)
#include <benchmark/benchmark.h>

#include <deque>
#include <thread>

#include "common/context.hpp"
#include "common/workloads.hpp"

namespace {
using namespace kmlab::bench;

struct Irp {
    std::uint32_t major_function;
    std::uint32_t length;
    std::uint64_t buffer;
};

template <class L>
struct alignas(128) IrpQueue {
    L lock{};
    alignas(128) std::deque<Irp> pending;
};

template <class L>
void BM_IrpQueue(benchmark::State& state) {
    constexpr std::size_t kMaxPending = 1024;
    auto q = std::make_unique<IrpQueue<L>>();
    WorkloadConfig cfg;
    cfg.threads = static_cast<int>(state.range(0));
    cfg.duration = default_duration();
    run_and_report(state, cfg, [&q = *q](WorkerContext& ctx) {
        const bool producer = ctx.index % 2 == 0;
        std::uint32_t n = 0;
        while (!ctx.stopped()) {
            bool progressed = false;
            {
                typename LockAdapter<L>::Scoped hold(q.lock);
                if (producer && q.pending.size() < kMaxPending) {
                    q.pending.push_back(Irp{3, ++n, n * 4096ull});
                    progressed = true;
                } else if (!producer && !q.pending.empty()) {
                    q.pending.pop_front();
                    progressed = true;
                }
            }
            if (progressed && !producer) ctx.done();
            if (!progressed)
                std::this_thread::yield();  // queue full or empty: let the other side run
        }
    });
}

template <class M>
void BM_GrtLookupLock(benchmark::State& state) {
    static int generation = 0;
    const std::string key = "bench-" + std::to_string(++generation);
    (void)kmlab::Grt::init();  // already initialized by an earlier run: fine
    auto registered = kmlab::Grt::register_mutex<M>(key, 0L).value();
    WorkloadConfig cfg;
    cfg.threads = static_cast<int>(state.range(0));
    cfg.duration = default_duration();
    run_and_report(state, cfg, [&key](WorkerContext& ctx) {
        while (!ctx.stopped()) {
            std::shared_ptr<M> m = kmlab::Grt::get<M>(key).value();
            auto g = m->lock();
            if (!g) std::abort();
            ++**g;
            ctx.done();
        }
    });
    (void)kmlab::Grt::unregister(key);
}
}  // namespace

namespace {
void register_all() {
    const int c = online_cores();
    for_each_lock([&]<class L>() {
        auto* q = benchmark::RegisterBenchmark(
            bench_name("BM_IrpQueue", LockAdapter<L>::name()).c_str(), BM_IrpQueue<L>);
        q->ArgNames({"threads"})->Arg(2)->Arg(4 * c);
        q->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
        if constexpr (requires { L::kind(); }) {
            auto* g = benchmark::RegisterBenchmark(
                bench_name("BM_GrtLookupLock", LockAdapter<L>::name()).c_str(),
                BM_GrtLookupLock<L>);
            g->ArgNames({"threads"})->Arg(1)->Arg(4 * c);
            g->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
        }
    });
}
}  // namespace

int main(int argc, char** argv) {
    return kmlab::bench::benchmark_main(argc, argv, register_all);
}
