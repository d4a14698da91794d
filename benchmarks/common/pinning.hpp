// Pinning worker threads to one CPU, as `taskset -c 0` does to a whole
// process: two threads that must share one core, as on any loaded machine,
// without the machine having to be loaded (S16, benchmarks/handoff.cpp).
//
// A oneTBB worker outlives the benchmark that used it, so a pin is scoped:
// PinToCpu saves the thread's own mask and puts it back, and the next
// benchmark's workers run where the scheduler likes again.
#pragma once

#include <sched.h>

#include <atomic>
#include <utility>

#include "harness/workload.hpp"

namespace kmlab::bench {

// The first CPU this thread may run on: on an unrestricted machine CPU 0,
// what `taskset -c 0` names; under `taskset -c 3-5`, CPU 3. -1 if the mask
// cannot be read.
inline int first_allowed_cpu() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) return cpu;
    return -1;
}

// Pins the calling thread to `cpu` for its lifetime. ok() is true only when
// the thread then runs on that CPU: sched_setaffinity migrates the caller
// before it returns when its current CPU is outside the new mask, so
// sched_getcpu() checks that the pin took.
class PinToCpu {
  public:
    explicit PinToCpu(int cpu) {
        CPU_ZERO(&saved_);
        if (cpu < 0 || sched_getaffinity(0, sizeof saved_, &saved_) != 0) return;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) return;
        restore_ = true;
        ok_ = sched_getcpu() == cpu;
    }
    ~PinToCpu() {
        if (restore_) sched_setaffinity(0, sizeof saved_, &saved_);
    }
    PinToCpu(const PinToCpu&) = delete;
    PinToCpu& operator=(const PinToCpu&) = delete;
    bool ok() const noexcept { return ok_; }

  private:
    cpu_set_t saved_;
    bool restore_ = false;
    bool ok_ = false;
};

// `body` run by a worker pinned to `cpu` for the whole of its part of the
// run. A worker whose pin fails runs nothing and sets `failed`, which the
// benchmark turns into an error (the other worker then finds no partner and
// stops with the stop flag: every body here loops `while (!ctx.stopped())`).
inline WorkerBody pinned(WorkerBody body, int cpu, std::atomic<bool>& failed) {
    return [body = std::move(body), cpu, &failed](WorkerContext& ctx) {
        PinToCpu pin(cpu);
        if (!pin.ok()) {
            failed.store(true, std::memory_order_relaxed);
            return;
        }
        body(ctx);
    };
}

}  // namespace kmlab::bench
