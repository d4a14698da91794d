// What every test of the model_explorer binary shares: the lock algorithms
// behind one face, the program every algorithm runs, and the reporting.
//
// Each algorithm runs as it is compiled for production, with the model's
// platform in place of platform::Native, in small configurations:
//   3x2  three threads, two acquisitions each: {lock, lock} {try, lock}
//        {lock, timed}
//   4x1  four threads, one each: {lock} {lock} {try} {timed}
// ("timed" is lock_for with a deadline the scheduler may expire; a lock
// without a timed acquire uses lock there). Each configuration is explored
// exhaustively within a preemption bound, sequentially consistent and
// under x86-TSO. Every run checks mutual exclusion, that the data written
// under the lock is never lost (a plain read-modify-write under TSO), that
// no thread is left blocked, that the lock ends in its initial state, and
// that the lock is safe to destroy right after unlock: the thread that makes
// the last acquisition destroys the lock right after its release, and any
// later access to it by a thread still inside unlock() is a violation.
//
// Summaries go to stdout and to model-summary.txt in the working directory
// (scripts/lab test prints them).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/kernel/lock_bit.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/mutexes/raw.hpp>

namespace kmlab::explore {

enum class Op { lock, try_lock, timed };

// ---- the algorithms, behind one face ----

template <class Raw>
struct LockBitFace {  // RawLockBit over a model backend: FastMutex / GuardedMutex
    Raw raw;
    bool acquire(nt::PKTHREAD t, Op op) {
        if (op == Op::try_lock) {
            if (!raw.try_lock()) return false;
        } else if (!raw.try_lock()) {
            raw.lock_contended();
        }
        raw.set_owner(t);
        return true;
    }
    void release(nt::PKTHREAD) {
        raw.set_owner(nullptr);
        raw.unlock();
    }
    bool is_free() const { return raw.debug_is_free(); }
};

template <class Backend>
struct KMutexFace {  // RawKMutex over a model backend: KMutex
    kmlab::detail::RawKMutex<Backend> raw;
    bool acquire(nt::PKTHREAD t, Op op) {
        const Deadline deadline = op == Op::try_lock ? Deadline::poll()
                                  : op == Op::timed  ? Deadline::at(Platform::now())
                                                     : Deadline::never();
        return raw.acquire(t, deadline) == kmlab::detail::Acquire::acquired;
    }
    void release(nt::PKTHREAD t) { raw.release(t); }
    bool is_free() const { return raw.debug_is_free(); }
};

// The kernel's own FAST_MUTEX / KGUARDED_MUTEX routines: the lock-bit
// algorithm over a synchronization event, as kernel/src/fast_mutex.cpp
// runs it. `Try` picks ExTryToAcquireFastMutex's compare-exchange (true) or
// KeTryToAcquireGuardedMutex's bit test-and-reset (false).
template <bool FastMutexTry>
struct EventLockBitFace {
    nt::LONG count = nt::FM_LOCK_BIT;
    nt::ULONG contention = 0;
    EventGate gate;
    bool acquire(nt::PKTHREAD, Op op) {
        if (op == Op::try_lock) {
            return FastMutexTry ? lock_bit::try_acquire_uncontended<Platform>(count)
                                : lock_bit::try_acquire<Platform>(count);
        }
        lock_bit::acquire(count, contention, gate);
        return true;
    }
    void release(nt::PKTHREAD) { lock_bit::release(count, gate); }
    bool is_free() const { return count == nt::FM_LOCK_BIT && gate.quiescent(); }
};

// ---- the program every algorithm runs ----

using Plan = std::vector<std::vector<Op>>;
inline const Plan k3x2 = {{Op::lock, Op::lock}, {Op::try_lock, Op::lock}, {Op::lock, Op::timed}};
inline const Plan k4x1 = {{Op::lock}, {Op::lock}, {Op::try_lock}, {Op::timed}};
inline const Plan k3x1 = {{Op::lock}, {Op::lock}, {Op::lock}};
inline const Plan k2x1 = {{Op::lock}, {Op::lock}};

template <class Face>
struct Shared {
    Face lock;
    Atomic<int> data{0};
    int in_cs = 0;
    int acquired = 0;
    int attempts_left = 0;
    nt::KTHREAD threads[8]{};
    Shared() {
        for (auto& t : threads) nt::InitializeListHead(&t.OwnedKMutexListHead);
    }
};

template <class Face>
std::function<Program()> program(const Plan& plan, bool destroy_after_last) {
    return [plan, destroy_after_last] {
        auto s = std::make_shared<Shared<Face>>();
        for (const auto& ops : plan) s->attempts_left += static_cast<int>(ops.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i, destroy_after_last] {
                if (i == 0) {
                    label(&s->lock, sizeof s->lock, "lock");
                    label(&s->data, sizeof s->data, "data");
                }
                nt::PKTHREAD t = &s->threads[i];
                for (Op op : ops) {
                    if (!s->lock.acquire(t, op)) {
                        --s->attempts_left;
                        continue;
                    }
                    if (++s->in_cs != 1) fail("two threads in the critical section");
                    // A plain read-modify-write: under TSO it is lost unless
                    // the lock orders it with the other owners' ones.
                    s->data.store(s->data.load(std::memory_order_relaxed) + 1,
                                  std::memory_order_relaxed);
                    ++s->acquired;
                    // The last acquisition of the run: every other attempt has
                    // returned, so POSIX lets this owner destroy the lock once
                    // it has released it, although earlier owners may still
                    // be inside their unlock().
                    const bool last = --s->attempts_left == 0;
                    --s->in_cs;
                    s->lock.release(t);
                    if (last && destroy_after_last) destroy(&s->lock, sizeof s->lock);
                }
            });
        }
        p.check = [s]() -> std::string {
            if (!s->lock.is_free()) return "the lock is not back in its initial state";
            if (s->data.load() != s->acquired)
                return "a write made under the lock was lost (" + std::to_string(s->data.load()) +
                       " of " + std::to_string(s->acquired) + ")";
            return {};
        };
        return p;
    };
}

// ---- reporting ----

inline void report(const std::string& name, const Config& c, const Result& r) {
    char line[512];
    std::snprintf(line, sizeof line, "model: %-44s %-3s pb=%d  %s", name.c_str(),
                  c.memory == Memory::tso ? "tso" : "sc", c.preemption_bound, r.summary().c_str());
    std::printf("%s\n", line);
    std::ofstream("model-summary.txt", std::ios::app) << line << '\n';
}

inline std::string describe(const Result& r) {
    std::string schedule = r.schedule;
    if (schedule.size() > 600) schedule = schedule.substr(0, 600) + " ... (cut)";
    return r.what + "\n  schedule (Config::replay): " + schedule + "\n  trace of its end:\n" +
           r.trace;
}

// Under the sanitizers every step costs ~50x (fiber switches are system
// calls there): the same configurations, smaller bounds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KMLAB_MODEL_SANITIZED 1
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// KMLAB_MODEL_BOUND raises every exhaustive search's preemption bound
// (scripts/lab test --soak runs 3).
inline int bound_override() {
    const char* v = std::getenv("KMLAB_MODEL_BOUND");
    return v != nullptr ? std::atoi(v) : 0;
}

}  // namespace kmlab::explore
