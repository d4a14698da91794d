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

#include <memory>
#include <vector>

#include <kmlab/kmlab_nt.hpp>
#include "common/context.hpp"
#include "common/ping_pong.hpp"
#include "common/workloads.hpp"

namespace {
using namespace kmlab::bench;
using namespace kmlab::nt;

LARGE_INTEGER poll_timeout() {
    return kmlab::kernel::relative_timeout(std::chrono::milliseconds(10));
}

bool timed_wait(PVOID object) {
    return timed_dispatcher_wait(object);
}

// The handshake of common/ping_pong.hpp (shared with S7 and S16, whose
// raw-futex floor must be this one), over `signal` and the two waits.
template <class Signal, class WaitPing, class WaitPong>
void ping_pong(benchmark::State& state, Signal signal, WaitPing wait_ping, WaitPong wait_pong) {
    run_and_report(state, pair_config(), ping_pong_body(signal, wait_ping, wait_pong));
}

void BM_EventPingPong_Dispatcher(benchmark::State& state) {
    auto pp = std::make_unique<KeventPingPong>();
    run_and_report(state, pair_config(), pp->body());
}

// The same handshake on raw futexes: a flag word per direction, consumed
// with an exchange, slept on with a bounded futex wait.
void BM_EventPingPong_RawFutex(benchmark::State& state) {
    auto pp = std::make_unique<RawFutexPingPong>();
    run_and_report(state, pair_config(), pp->body());
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
