// Worker bodies shared by the contention-style benchmarks.
#pragma once

#include <cstdint>

#include "common/locks.hpp"
#include "harness/workload.hpp"

namespace kmlab::bench {

// A lock and the data it guards, each on its own cache lines (rule 6).
template <class L>
struct alignas(128) Guarded {
    L lock{};
    alignas(128) std::uint64_t data[16] = {};
};

// One operation: pick a lock (pick(x) gets a per-thread xorshift value),
// acquire it (sampled: time to acquire), touch the guarded data, busy-wait
// cs_ns inside, release, busy-wait outside_ns.
template <class L, class Pick>
WorkerBody contended_body_with(Pick pick, std::int64_t cs_ns, std::int64_t outside_ns) {
    const std::uint64_t cs = ticks_for_ns(cs_ns);
    const std::uint64_t outside = ticks_for_ns(outside_ns);
    return [pick, cs, outside](WorkerContext& ctx) {
        std::uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(ctx.index + 1);
        while (!ctx.stopped()) {
            x ^= x << 13;  // xorshift64: cheap, per-thread
            x ^= x >> 7;
            x ^= x << 17;
            Guarded<L>& g = pick(x);
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
    };
}

// The same with one lock.
template <class L>
WorkerBody contended_body(Guarded<L>& g, std::int64_t cs_ns, std::int64_t outside_ns) {
    return contended_body_with<L>([&g](std::uint64_t) -> Guarded<L>& { return g; }, cs_ns,
                                  outside_ns);
}

// Thread counts of the sweeps: 1, 2, 3, 4 and 2x, 4x, 8x, 16x the cores.
std::vector<int> sweep_thread_counts();
int online_cores();

}  // namespace kmlab::bench
