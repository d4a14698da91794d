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
// no thread is left blocked, that the owner field names the holder through
// its whole hold and a recursive lock counts each level (checks below), that
// the lock ends in its initial state, and
// that the lock is safe to destroy right after unlock: the thread that makes
// the last acquisition destroys the lock right after its release, and any
// later access to it by a thread still inside unlock() is a violation.
//
// Summaries go to stdout and to model-summary.txt in the working directory
// (scripts/lab test prints them).
#pragma once

#include <concepts>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/explore/gtest.hpp>
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
    nt::PKTHREAD owner() const { return raw.owner(); }
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
    nt::PKTHREAD owner() const { return raw.owner(); }
    // KMUTEX recursion: the owner acquires again without waiting, and each
    // level lowers SignalState by one (1 free, 1 - n owned n times).
    bool acquire_again(nt::PKTHREAD t) {
        return raw.acquire(t, Deadline::poll()) == kmlab::detail::Acquire::acquired;
    }
    int depth() const { return 1 - static_cast<int>(raw.signal_state()); }
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

// ---- ownership and recursion ----
// A lock's owner field and recursion count live outside the seam (no
// scheduling point of their own, explore.hpp), so a wrong value there shows
// only where the program reads it. A face that exposes them (owner(); and
// acquire_again() / depth() for a recursive lock) is checked right after each
// acquire, at every nesting level, and again just before its release: by
// then the critical section's seam operations have let the other threads
// run, so a previous owner that clears the field after it freed the lock
// word (a late clear) has overwritten this owner's name. The final check
// wants the field cleared.
template <class Face>
concept NamesOwner = requires(const Face& f) {
    { f.owner() } -> std::same_as<nt::PKTHREAD>;
};
template <class Face>
concept Recursive = requires(Face& f, const Face& cf, nt::PKTHREAD t) {
    { f.acquire_again(t) } -> std::same_as<bool>;
    { cf.depth() } -> std::same_as<int>;
};

template <class Face>
void check_owned_by(const Face& lock, nt::PKTHREAD t, const char* what) {
    if constexpr (NamesOwner<Face>) {
        if (lock.owner() != t) fail(what);
    }
}

// One nested acquire and release by the owner: the level counts up and down
// and the lock stays held by it.
template <class Face>
void check_recursion(Face& lock, nt::PKTHREAD t) {
    if constexpr (Recursive<Face>) {
        if (lock.depth() != 1) fail("the owner's recursion level is not 1 after its first acquire");
        if (!lock.acquire_again(t)) fail("the owner's recursive acquire failed");
        if (lock.depth() != 2)
            fail("a recursive acquire did not count its level (depth 2 expected)");
        lock.release(t);
        if (lock.depth() != 1)
            fail("releasing a recursive acquire did not bring the level back to 1");
        check_owned_by(lock, t, "releasing a recursive acquire cleared the owner");
    }
}

// ---- the program every algorithm runs ----

using Plan = std::vector<std::vector<Op>>;
inline const Plan k3x2 = {{Op::lock, Op::lock}, {Op::try_lock, Op::lock}, {Op::lock, Op::timed}};
inline const Plan k4x1 = {{Op::lock}, {Op::lock}, {Op::try_lock}, {Op::timed}};
inline const Plan k3x1 = {{Op::lock}, {Op::lock}, {Op::lock}};
inline const Plan k2x1 = {{Op::lock}, {Op::lock}};

// `data` is model memory (its write is lost under TSO unless the lock
// orders it); in_cs and acquired are Plain: under Memory::cxx an access to
// them that the lock's acquire and release do not order is a data race.
template <class Face>
struct Shared {
    Face lock;
    Atomic<int> data{0};
    Plain<int> in_cs{0};
    Plain<int> acquired{0};
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
                    label(&s->in_cs, sizeof s->in_cs, "in_cs");
                    label(&s->acquired, sizeof s->acquired, "acquired");
                }
                nt::PKTHREAD t = &s->threads[i];
                for (Op op : ops) {
                    if (!s->lock.acquire(t, op)) {
                        --s->attempts_left;
                        continue;
                    }
                    if (++s->in_cs != 1) fail("two threads in the critical section");
                    check_owned_by(s->lock, t, "the owner field does not name the acquirer");
                    check_recursion(s->lock, t);
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
                    check_owned_by(s->lock, t,
                                   "the owner field changed while its owner held the lock");
                    --s->in_cs;
                    s->lock.release(t);
                    if (last && destroy_after_last) destroy(&s->lock, sizeof s->lock);
                }
            });
        }
        p.check = [s]() -> std::string {
            if constexpr (NamesOwner<Face>) {
                if (s->lock.owner() != nullptr) return "the lock still names an owner";
            }
            if (!s->lock.is_free()) return "the lock is not back in its initial state";
            if (s->data.load() != s->acquired)
                return "a write made under the lock was lost (" + std::to_string(s->data.load()) +
                       " of " + std::to_string(s->acquired.load()) + ")";
            return {};
        };
        return p;
    };
}

// ---- reporting ----

// Under the sanitizers every step costs ~50x (fiber switches are system
// calls there): the same configurations, smaller bounds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KMLAB_MODEL_SANITIZED 1
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// One line per search. A random (PCT) search has no preemption bound: it
// prints its depth; a sanitizer build, whose searches run at a lower bound
// (kSanitized), says so on every line. An exhaustive search says how many
// schedules ran and how many branches the partial-order reduction pruned
// (each one schedule or more), or that it ran unreduced. A violation's
// replay command is in describe(), not here.
inline void report(const std::string& name, const Config& c, const Result& r) {
    const std::string search =
        c.random ? "pct d=" + std::to_string(c.pct_depth)
                 : (c.preemption_bound < 0 ? std::string("pb=none")
                                           : "pb=" + std::to_string(c.preemption_bound)) +
                       (kSanitized ? " (sanitizer build: bounds lowered)" : "");
    std::string summary = r.summary();
    summary = summary.substr(0, summary.find('\n'));
    if (!c.random && c.replay.empty()) {
        const bool reduced = r.reduced;
        summary += reduced ? "; ran " + std::to_string(r.schedules) + " (" +
                                 std::to_string(r.schedules_redundant) +
                                 " sleep-set blocked), reduction pruned " +
                                 std::to_string(r.schedules_pruned)
                           : "; ran " + std::to_string(r.schedules) + ", unreduced";
    }
    char line[640];
    std::snprintf(line, sizeof line, "model: %-44s %-3s %s  %s", name.c_str(),
                  c.memory == Memory::tso ? "tso" : "sc", search.c_str(), summary.c_str());
    std::printf("%s\n", line);
    std::ofstream("model-summary.txt", std::ios::app) << line << '\n';
}

// A failure in full, with the command that replays it in this test.
inline std::string describe(const Result& r) {
    return describe_in_gtest(r);
}

// KMLAB_MODEL_BOUND raises every exhaustive search's preemption bound
// (scripts/lab test --soak runs 3).
inline int bound_override() {
    const char* v = std::getenv("KMLAB_MODEL_BOUND");
    return v != nullptr ? std::atoi(v) : 0;
}

}  // namespace kmlab::explore
