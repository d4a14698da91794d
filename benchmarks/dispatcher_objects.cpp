// S9: dispatcher objects. Two threads bounce a wake-up between them; each
// counted operation is one wait satisfied.
//
//   BM_EventPingPong<dispatcher>     KEVENT (synchronization) set/wait ping-pong
//   BM_EventPingPong<raw_futex>      the same handshake on two raw futex words:
//                                    the floor the emulated dispatcher is compared with
//   BM_SemaphorePingPong             KSEMAPHORE release/wait ping-pong
//   BM_WaitAny/objects:K             the ponger waits on K events (WaitAny), the
//                                    pinger sets them in rotation
//   BM_WaitAll/objects:K             the pinger sets all K, the ponger waits WaitAll
//
// Waits use a 10 ms timeout so a thread blocked when the stop flag rises
// notices it; a timed-out wait is not counted.
#include <benchmark/benchmark.h>

#include <atomic>
#include <vector>

#include <kmlab/kmlab_nt.hpp>
#include <kmlab/platform/futex.hpp>
#include "common/context.hpp"
#include "common/workloads.hpp"

namespace {
using namespace kmlab::bench;
using namespace kmlab::nt;

LARGE_INTEGER poll_timeout() {
    return kmlab::kernel::relative_timeout(std::chrono::milliseconds(10));
}

// One wait with the 10 ms poll timeout; true if the object satisfied it.
bool timed_wait(PVOID object) {
    LARGE_INTEGER t = poll_timeout();
    return KeWaitForSingleObject(object, Executive, KernelMode, FALSE, &t) == STATUS_SUCCESS;
}

WorkloadConfig pair_config() {
    WorkloadConfig cfg;
    cfg.threads = 2;
    cfg.duration = default_duration();
    cfg.latency_sample_every = 0;
    return cfg;
}

// Worker 0 signals `ping[k]` and waits for `pong`; worker 1 waits for the
// ping and signals `pong`. `signal` and `wait` are the object operations.
template <class Signal, class WaitPing, class WaitPong>
void ping_pong(benchmark::State& state, Signal signal, WaitPing wait_ping, WaitPong wait_pong) {
    run_and_report(state, pair_config(), [&](WorkerContext& ctx) {
        std::uint64_t round = 0;
        while (!ctx.stopped()) {
            if (ctx.index == 0) {
                signal(round);
                while (!wait_pong() && !ctx.stopped()) {
                }
                ++round;
            } else if (wait_ping(round)) {
                ++round;
                ctx.done();
                signal(~std::uint64_t{0});
            }
        }
    });
}

void BM_EventPingPong_Dispatcher(benchmark::State& state) {
    KEVENT ping, pong;
    KeInitializeEvent(&ping, SynchronizationEvent, FALSE);
    KeInitializeEvent(&pong, SynchronizationEvent, FALSE);
    ping_pong(
        state,
        [&](std::uint64_t r) {
            KeSetEvent(r == ~std::uint64_t{0} ? &pong : &ping, IO_NO_INCREMENT, FALSE);
        },
        [&](std::uint64_t) { return timed_wait(&ping); }, [&] { return timed_wait(&pong); });
}

// The same handshake on raw futexes: a flag word per direction, consumed
// with an exchange, slept on with a bounded futex wait.
void BM_EventPingPong_RawFutex(benchmark::State& state) {
    alignas(128) std::atomic<std::uint32_t> ping{0};
    alignas(128) std::atomic<std::uint32_t> pong{0};
    auto set = [](std::atomic<std::uint32_t>& w) {
        w.store(1, std::memory_order_release);
        kmlab::platform::sys::futex_wake(w, 1);
    };
    auto wait = [](std::atomic<std::uint32_t>& w) {
        const auto deadline = kmlab::Deadline::after(std::chrono::milliseconds(10));
        while (w.exchange(0, std::memory_order_acquire) == 0) {
            if (!kmlab::platform::sys::futex_wait(w, 0, deadline)) return false;
        }
        return true;
    };
    ping_pong(
        state, [&](std::uint64_t r) { set(r == ~std::uint64_t{0} ? pong : ping); },
        [&](std::uint64_t) { return wait(ping); }, [&] { return wait(pong); });
}

void BM_SemaphorePingPong(benchmark::State& state) {
    KSEMAPHORE ping, pong;
    KeInitializeSemaphore(&ping, 0, 1);
    KeInitializeSemaphore(&pong, 0, 1);
    ping_pong(
        state,
        [&](std::uint64_t r) {
            KeReleaseSemaphore(r == ~std::uint64_t{0} ? &pong : &ping, 1, 1, FALSE);
        },
        [&](std::uint64_t) { return timed_wait(&ping); }, [&] { return timed_wait(&pong); });
}

void BM_WaitMultiple(benchmark::State& state, WAIT_TYPE type) {
    const auto k = static_cast<ULONG>(state.range(0));
    std::vector<KEVENT> events(k);
    std::vector<PVOID> objects(k);
    for (ULONG i = 0; i < k; ++i) {
        KeInitializeEvent(&events[i], SynchronizationEvent, FALSE);
        objects[i] = &events[i];
    }
    KEVENT pong;
    KeInitializeEvent(&pong, SynchronizationEvent, FALSE);
    ping_pong(
        state,
        [&](std::uint64_t r) {
            if (r == ~std::uint64_t{0}) {
                KeSetEvent(&pong, IO_NO_INCREMENT, FALSE);
            } else if (type == WaitAny) {
                KeSetEvent(&events[r % k], IO_NO_INCREMENT, FALSE);
            } else {
                for (auto& e : events) KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
            }
        },
        [&](std::uint64_t) {
            thread_local std::vector<KWAIT_BLOCK> blocks(MAXIMUM_WAIT_OBJECTS);
            LARGE_INTEGER t = poll_timeout();
            const NTSTATUS s =
                KeWaitForMultipleObjects(k, objects.data(), type, Executive, KernelMode, FALSE, &t,
                                         k > THREAD_WAIT_OBJECTS ? blocks.data() : nullptr);
            return s != STATUS_TIMEOUT;
        },
        [&] { return timed_wait(&pong); });
}
}  // namespace

namespace {
void register_all() {
    auto setup = [](benchmark::internal::Benchmark* b) {
        b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
    };
    setup(
        benchmark::RegisterBenchmark("BM_EventPingPong<dispatcher>", BM_EventPingPong_Dispatcher));
    setup(benchmark::RegisterBenchmark("BM_EventPingPong<raw_futex>", BM_EventPingPong_RawFutex));
    setup(benchmark::RegisterBenchmark("BM_SemaphorePingPong<dispatcher>", BM_SemaphorePingPong));
    for (auto [name, type] : {std::pair{"BM_WaitAny<dispatcher>", WaitAny},
                              std::pair{"BM_WaitAll<dispatcher>", WaitAll}}) {
        auto* b = benchmark::RegisterBenchmark(
            name, [type](benchmark::State& s) { BM_WaitMultiple(s, type); });
        b->ArgNames({"objects"})->Arg(1)->Arg(3)->Arg(8)->Arg(64);
        setup(b);
    }
}
}  // namespace

int main(int argc, char** argv) {
    return kmlab::bench::benchmark_main(argc, argv, register_all);
}
