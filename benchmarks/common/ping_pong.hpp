// The two-thread handshakes shared by S7, S9 and S16: a ping-pong (one
// thread wakes the other and waits to be woken back), and the turn-passing
// through a lock that S7 calls a handoff. One protocol in one place, so the
// raw-futex floor that S7 and S16 (handoff.cpp) and S9
// (dispatcher_objects.cpp) compare with is the same code in every binary.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <kmlab/kmlab_nt.hpp>
#include <kmlab/platform/futex.hpp>
#include "common/workloads.hpp"

namespace kmlab::bench {

// Two workers for the configured duration; no latency probe (each operation
// is a wake-up, the figure is their rate).
inline WorkloadConfig pair_config() {
    WorkloadConfig cfg;
    cfg.threads = 2;
    cfg.duration = default_duration();
    cfg.latency_sample_every = 0;
    return cfg;
}

// Worker 0 signals `ping` and waits for `pong`; worker 1 waits for the ping
// and signals `pong`. Each counted operation is one round trip (worker 1
// counts it): two wake-ups, one each way. `signal(round)` signals the ping
// of that round, `signal(~0)` the pong. The waits must time out now and
// then (10 ms here) so that a thread blocked when the stop flag rises
// notices it; a wait that timed out returns false and is not counted.
template <class Signal, class WaitPing, class WaitPong>
WorkerBody ping_pong_body(Signal signal, WaitPing wait_ping, WaitPong wait_pong) {
    return [signal, wait_ping, wait_pong](WorkerContext& ctx) {
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
    };
}

// The handshake on raw futexes: a flag word per direction, consumed with an
// exchange, slept on with a bounded futex wait. No emulation at all: the
// floor the dispatcher's waits are compared with.
struct RawFutexPingPong {
    alignas(128) std::atomic<std::uint32_t> ping{0};
    alignas(128) std::atomic<std::uint32_t> pong{0};

    static void set(std::atomic<std::uint32_t>& w) {
        w.store(1, std::memory_order_release);
        kmlab::platform::sys::futex_wake(w, 1);
    }
    static bool wait(std::atomic<std::uint32_t>& w) {
        const auto deadline = kmlab::Deadline::after(std::chrono::milliseconds(10));
        while (w.exchange(0, std::memory_order_acquire) == 0) {
            if (!kmlab::platform::sys::futex_wait(w, 0, deadline)) return false;
        }
        return true;
    }
    WorkerBody body() {
        return ping_pong_body(
            [this](std::uint64_t r) { set(r == ~std::uint64_t{0} ? pong : ping); },
            [this](std::uint64_t) { return wait(ping); }, [this] { return wait(pong); });
    }
};

// One dispatcher wait with a 10 ms timeout; true if the object satisfied it.
inline bool timed_dispatcher_wait(nt::PVOID object) {
    nt::LARGE_INTEGER t = kmlab::kernel::relative_timeout(std::chrono::milliseconds(10));
    return nt::KeWaitForSingleObject(object, nt::Executive, nt::KernelMode, nt::FALSE, &t) ==
           nt::STATUS_SUCCESS;
}

// The same handshake on two synchronization KEVENTs through the emulated
// dispatcher (KeSetEvent / KeWaitForSingleObject).
struct KeventPingPong {
    nt::KEVENT ping, pong;

    KeventPingPong() {
        nt::KeInitializeEvent(&ping, nt::SynchronizationEvent, nt::FALSE);
        nt::KeInitializeEvent(&pong, nt::SynchronizationEvent, nt::FALSE);
    }
    WorkerBody body() {
        return ping_pong_body(
            [this](std::uint64_t r) {
                nt::KeSetEvent(r == ~std::uint64_t{0} ? &pong : &ping, nt::IO_NO_INCREMENT,
                               nt::FALSE);
            },
            [this](std::uint64_t) { return timed_dispatcher_wait(&ping); },
            [this] { return timed_dispatcher_wait(&pong); });
    }
};

// Turn-passing through a lock (S7's handoff): each worker takes the lock,
// and if the shared turn is its own, gives it to the other; every counted
// operation is one handoff of the turn. A lock that hands ownership to its
// first waiter (KMUTEX) passes the turn at every release; a lock that lets
// the releasing thread barge back in passes it only when the other thread
// gets the lock first.
template <class L>
WorkerBody turn_passing_body(Guarded<L>& g) {
    return [&g](WorkerContext& ctx) {
        const auto me = static_cast<std::uint64_t>(ctx.index);
        while (!ctx.stopped()) {
            bool handed = false;
            {
                typename LockAdapter<L>::Scoped hold(g.lock);
                if (g.data[0] == me) {
                    g.data[0] = 1 - me;
                    handed = true;
                }
            }
            if (handed) ctx.done();
        }
    };
}

}  // namespace kmlab::bench
