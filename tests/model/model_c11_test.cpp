// The C++ memory model (Memory::cxx, explore/src/explorer_c11.cpp) under
// test: the classic litmus tests, each with the outcome C++20 allows found
// and the one it forbids never seen; must-find mutants of the lock-bit
// algorithm with a memory order weakened (the critical section's Plain data
// then races); and every lock algorithm and the dispatcher's KMUTEX,
// FAST_MUTEX and KGUARDED_MUTEX paths under the orders their code names.
// Each reported violation is replayed from its schedule, which names the
// store each load read (R<n>).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/spin_lock_algorithm.hpp>
#include <kmlab/mutexes/raw.hpp>
#include "asymmetric_lock.hpp"
#include "dispatcher_core.hpp"
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

constexpr auto relaxed = std::memory_order_relaxed;
constexpr auto acquire = std::memory_order_acquire;
constexpr auto release = std::memory_order_release;
constexpr auto seq_cst = std::memory_order_seq_cst;

// report() (model_program.hpp) with the memory model's own name.
void report_cxx(const std::string& name, const Config& c, const Result& r) {
    std::string summary = r.summary();
    summary = summary.substr(0, summary.find('\n'));
    const std::string search = "pb=" + std::to_string(c.preemption_bound) +
                               (kSanitized ? " (sanitizer build: bounds lowered)" : "");
    char line[640];
    std::snprintf(line, sizeof line, "model: %-44s %-3s %s  %s", name.c_str(),
                  memory_name(c.memory), search.c_str(), summary.c_str());
    std::printf("%s\n", line);
    std::ofstream("model-summary.txt", std::ios::app) << line << '\n';
}

Config cxx(int bound) {
    Config c;
    c.memory = Memory::cxx;
    c.preemption_bound = std::max(bound, bound_override());
    return c;
}

// A violation that must be found, named by `expected`, whose schedule
// chooses the store at least one load read, and which replays to the
// same violation.
void expect_found(const std::string& name, Config c, const std::function<Program()>& make,
                  const std::string& expected) {
    const Result r = explore(c, make);
    report_cxx(name + " (must fail)", c, r);
    ASSERT_TRUE(r.violation) << name << ": the C++ memory model missed it";
    EXPECT_NE(r.what.find(expected), std::string::npos) << describe(r);
    std::printf("%s\n", describe(r).c_str());
    // The trace names the store each load and read-modify-write read.
    EXPECT_TRUE(r.trace.find("; R") != std::string::npos ||
                r.trace.find("reads R") != std::string::npos)
        << r.trace;
    Config replay = c;
    replay.replay = r.schedule;
    const Result again = explore(replay, make);
    EXPECT_TRUE(again.violation) << again.trace;
    EXPECT_EQ(again.what, r.what);
}

void expect_clean(const std::string& name, Config c, const std::function<Program()>& make) {
    const Result r = explore(c, make);
    report_cxx(name, c, r);
    EXPECT_FALSE(r.violation) << name << ": " << describe(r);
    EXPECT_TRUE(r.complete) << name;
}

// ---- litmus tests ----

// Message passing: T0 writes data, then raises flag; T1 that sees the flag
// must see the data only if the flag's store releases and its load acquires
// (or fences do it for them).
struct MpOrders {
    std::memory_order data_store = relaxed, flag_store = release;
    std::memory_order flag_load = acquire, data_load = relaxed;
    bool release_fence = false, acquire_fence = false;
};

std::function<Program()> message_passing(MpOrders o) {
    return [o] {
        struct S {
            Atomic<int> data{0};
            Atomic<int> flag{0};
        };
        auto s = std::make_shared<S>();
        Program p;
        p.threads.push_back([s, o] {
            label(&s->data, sizeof s->data, "data");
            label(&s->flag, sizeof s->flag, "flag");
            s->data.store(42, o.data_store);
            if (o.release_fence) thread_fence(release);
            s->flag.store(1, o.flag_store);
        });
        p.threads.push_back([s, o] {
            if (s->flag.load(o.flag_load) != 1) return;
            if (o.acquire_fence) thread_fence(acquire);
            check(s->data.load(o.data_load) == 42, "saw the flag but read stale data");
        });
        return p;
    };
}

TEST(ModelC11, MessagePassingWithRelaxedFlagReadsStaleData) {
    MpOrders o;
    o.flag_store = relaxed;
    o.flag_load = relaxed;
    expect_found("message passing, relaxed flag", cxx(1), message_passing(o), "stale data");
    // The schedule names the stale read: the data's initial value, R0.
    const Result r = explore(cxx(1), message_passing(o));
    EXPECT_NE(r.schedule.find("R0"), std::string::npos) << r.schedule;
    EXPECT_NE(r.trace.find("stale"), std::string::npos) << r.trace;
}

TEST(ModelC11, MessagePassingReleaseAcquireIsClean) {
    expect_clean("message passing, release/acquire", cxx(3), message_passing({}));
    MpOrders seq;
    seq.data_store = seq.flag_store = seq.flag_load = seq.data_load = seq_cst;
    expect_clean("message passing, seq_cst", cxx(3), message_passing(seq));
}

TEST(ModelC11, MessagePassingThroughFences) {
    MpOrders fences;
    fences.flag_store = fences.flag_load = relaxed;
    fences.release_fence = fences.acquire_fence = true;
    expect_clean("message passing, relaxed flag, fences", cxx(3), message_passing(fences));
    MpOrders one = fences;
    one.acquire_fence = false;  // a release fence alone: T1's read does not acquire
    expect_found("message passing, release fence only", cxx(2), message_passing(one), "stale data");
    MpOrders other = fences;
    other.release_fence = false;  // an acquire fence alone: T0's store does not release
    expect_found("message passing, acquire fence only", cxx(2), message_passing(other),
                 "stale data");
}

// The data as Plain memory: the relaxed flag makes its read a data race.
std::function<Program()> message_passing_plain(std::memory_order flag_store,
                                               std::memory_order flag_load) {
    return [=] {
        struct S {
            Plain<int> data{0};
            Atomic<int> flag{0};
        };
        auto s = std::make_shared<S>();
        Program p;
        p.threads.push_back([s, flag_store] {
            label(&s->data, sizeof s->data, "data");
            label(&s->flag, sizeof s->flag, "flag");
            s->data = 42;
            s->flag.store(1, flag_store);
        });
        p.threads.push_back([s, flag_load] {
            if (s->flag.load(flag_load) == 1) check(s->data == 42, "stale data");
        });
        return p;
    };
}

TEST(ModelC11, MessagePassingPlainDataRacesUnlessReleased) {
    expect_found("message passing, Plain data, relaxed flag", cxx(0),
                 message_passing_plain(relaxed, relaxed), "data race on data");
    expect_clean("message passing, Plain data, release/acquire", cxx(3),
                 message_passing_plain(release, acquire));
}

// Store buffering (Dekker): each thread stores its flag and reads the
// other's. Both reading 0 is allowed unless the operations are seq_cst (or
// seq_cst fences separate each store from its load).
std::function<Program()> store_buffering(std::memory_order o, bool fences) {
    return [=] {
        struct S {
            Atomic<int> x{0}, y{0};
            int r0 = -1, r1 = -1;
        };
        auto s = std::make_shared<S>();
        Program p;
        p.threads.push_back([s, o, fences] {
            label(&s->x, sizeof s->x, "x");
            label(&s->y, sizeof s->y, "y");
            s->x.store(1, o);
            if (fences) thread_fence(seq_cst);
            s->r0 = s->y.load(o);
        });
        p.threads.push_back([s, o, fences] {
            s->y.store(1, o);
            if (fences) thread_fence(seq_cst);
            s->r1 = s->x.load(o);
        });
        p.check = [s]() -> std::string {
            return s->r0 == 0 && s->r1 == 0 ? "both loads read 0" : "";
        };
        return p;
    };
}

TEST(ModelC11, StoreBufferingNeedsSeqCst) {
    expect_clean("store buffering, seq_cst", cxx(3), store_buffering(seq_cst, false));
    expect_clean("store buffering, relaxed + seq_cst fences", cxx(3),
                 store_buffering(relaxed, true));
    // release stores and acquire loads (one order for both here: each
    // operation takes the half that applies to it).
    expect_found("store buffering, acq_rel", cxx(1),
                 store_buffering(std::memory_order_acq_rel, false), "both loads read 0");
}

// Read-read coherence: a thread that read the newer of two stores to one
// location never reads the older one after it.
TEST(ModelC11, CoherenceReadRead) {
    const auto make = [] {
        auto x = std::make_shared<Atomic<int>>(0);
        Program p;
        p.threads.push_back([x] {
            x->store(1, relaxed);
            x->store(2, relaxed);
        });
        p.threads.push_back([x] {
            const int a = x->load(relaxed);
            const int b = x->load(relaxed);
            check(!(a > b), "read an older store after a newer one");
        });
        return p;
    };
    expect_clean("coherence read-read", cxx(4), make);
}

// A release sequence: T0 publishes data with a release store to flag, T1
// bumps flag with a relaxed RMW, T2 acquires the bumped value. The RMW
// continues the release sequence, so T2 synchronizes with T0 ([intro.races]
// p5). Replacing the RMW by a load and a store (the mutant) ends the
// sequence: T2 then reads data racing with T0's write.
std::function<Program()> release_sequence(bool broken) {
    return [broken] {
        struct S {
            Plain<int> data{0};
            Atomic<int> flag{0};
        };
        auto s = std::make_shared<S>();
        Program p;
        p.threads.push_back([s] {
            label(&s->data, sizeof s->data, "data");
            label(&s->flag, sizeof s->flag, "flag");
            s->data = 42;
            s->flag.store(1, release);
        });
        p.threads.push_back([s, broken] {
            if (broken) {
                const int v = s->flag.load(relaxed);
                if (v == 1) s->flag.store(2, relaxed);
            } else {
                int v = 1;
                s->flag.compare_exchange_strong(v, 2, relaxed, relaxed);
            }
        });
        p.threads.push_back([s] {
            if (s->flag.load(acquire) == 2) check(s->data == 42, "stale data");
        });
        return p;
    };
}

TEST(ModelC11, ReleaseSequenceContinuesThroughRmw) {
    expect_clean("release sequence through a relaxed RMW", cxx(3), release_sequence(false));
    expect_found("release sequence broken by a relaxed store", cxx(1), release_sequence(true),
                 "data race on data");
}

// ---- the lock-bit algorithm with an order weakened (must find) ----
// A platform that forwards to the model's with one memory order of the lock
// word replaced: the lock headers stay as they are, and the test names the
// weakened operation.
enum class Weaken { nothing, acquires, releases };
Weaken g_weaken = Weaken::nothing;

std::memory_order weakened(std::memory_order o, Weaken which) {
    if (g_weaken != which) return o;
    if (which == Weaken::acquires)
        return o == acquire ? relaxed : o == std::memory_order_acq_rel ? release : o;
    return o == release ? relaxed : o == std::memory_order_acq_rel ? acquire : o;
}

template <class T>
class WeakRef : public AtomicRef<T> {
  public:
    explicit WeakRef(T& v) : AtomicRef<T>(v) {}
    // try_acquire's InterlockedBitTestAndReset: Weaken::acquires makes it relaxed.
    T fetch_and(T d, std::memory_order o) {
        return AtomicRef<T>::fetch_and(d, weakened(o, Weaken::acquires));
    }
    // The releases' compare-exchanges: Weaken::releases makes them relaxed.
    bool compare_exchange_strong(T& e, T d, std::memory_order s, std::memory_order f) {
        return AtomicRef<T>::compare_exchange_strong(e, d, weakened(s, Weaken::releases), f);
    }
    bool compare_exchange_weak(T& e, T d, std::memory_order s, std::memory_order f) {
        return AtomicRef<T>::compare_exchange_weak(e, d, weakened(s, Weaken::releases), f);
    }
};

struct WeakPlatform : Platform {
    template <class T>
    using atomic_ref = WeakRef<T>;
};
struct WeakFutex : Futex {
    using platform = WeakPlatform;
};

using WeakLockBit = LockBitFace<kmlab::detail::RawLockBit<WeakFutex>>;

TEST(ModelC11, LockBitAcquireWeakenedToRelaxedRaces) {
    g_weaken = Weaken::acquires;
    expect_found("RawLockBit<Futex> 2x1, acquire relaxed", cxx(0),
                 program<WeakLockBit>(k2x1, false), "data race on");
    g_weaken = Weaken::nothing;
}

TEST(ModelC11, LockBitReleaseWeakenedToRelaxedRaces) {
    g_weaken = Weaken::releases;
    expect_found("RawLockBit<Futex> 2x1, release relaxed", cxx(0),
                 program<WeakLockBit>(k2x1, false), "data race on");
    g_weaken = Weaken::nothing;
}

// The wrapper itself changes nothing when it weakens nothing.
TEST(ModelC11, LockBitThroughTheWrapperIsClean) {
    expect_clean("RawLockBit<Futex> 3x1 (wrapper, nothing weakened)", cxx(1),
                 program<WeakLockBit>(k3x1, true));
}

// ---- the membarrier pairing (asymmetric_lock.hpp: RawLockBit<Futex> as it
// was before issue 9): its releaser's store and its waiter's count are a
// Dekker pair that only the heavy fence (a seq_cst fence in every thread
// here) orders; with the fence broken the waiter sleeps on a free lock.
struct AsymmetricFace {
    AsymmetricLockBit<Futex> raw;
    bool acquire(nt::PKTHREAD, Op op) {
        if (op == Op::try_lock) return raw.try_lock();
        if (!raw.try_lock()) raw.lock_contended();
        return true;
    }
    void release(nt::PKTHREAD) { raw.unlock(); }
    bool is_free() const { return raw.debug_is_free(); }
};

TEST(ModelC11, MembarrierPairingNeedsTheHeavyFence) {
    set_heavy_fence(HeavyFence::broken);
    // Three: the preemption into the holder's section, the waiter's spin
    // timing out while the holder could run, and the releaser's stale read
    // of the waiter count (TSO has it for free: a buffered store).
    const Result broken = explore(cxx(3), program<AsymmetricFace>(k2x1, false));
    set_heavy_fence(HeavyFence::exact);
    report_cxx("old RawLockBit<Futex> 2x1, no membarrier (must fail)", cxx(3), broken);
    EXPECT_TRUE(broken.violation) << "the C++ model missed the Dekker pair's lost wake-up";
    EXPECT_NE(broken.what.find("deadlock"), std::string::npos) << describe(broken);
    expect_clean("old RawLockBit<Futex> 2x1, membarrier", cxx(3),
                 program<AsymmetricFace>(k2x1, false));
}

// ---- the audit: which orders the model needs ----
// A platform that records every (word, operation, order) the algorithm
// performs, and weakens one of them by one step (seq_cst to acq_rel /
// acquire / release, acq_rel to acquire or release, acquire and release to
// relaxed; a compare-exchange's success order only). Each weakening runs the
// same exploration: a violation says the order is needed, a clean run says
// it is stronger than the model needs within the bound (which the audit
// reports, and nothing weakens in the code).
struct AuditSite {
    std::string key;  // "<word> <operation> <order>"
    std::memory_order to;
};
std::vector<std::string> g_audit_seen;
std::string g_audit_site;  // the site weakened now ("": none)
std::memory_order g_audit_to = relaxed;

const char* order_text(std::memory_order o) {
    switch (o) {
        case std::memory_order_relaxed:
            return "relaxed";
        case std::memory_order_consume:
            return "consume";
        case std::memory_order_acquire:
            return "acquire";
        case std::memory_order_release:
            return "release";
        case std::memory_order_acq_rel:
            return "acq_rel";
        case std::memory_order_seq_cst:
            return "seq_cst";
    }
    return "?";
}

std::memory_order audited(const char* word, const char* op, std::memory_order o) {
    const std::string key = std::string(word) + " " + op + " " + order_text(o);
    // Only what runs under the model: a final check's load is no site.
    if (active() && std::find(g_audit_seen.begin(), g_audit_seen.end(), key) == g_audit_seen.end())
        g_audit_seen.push_back(key);
    return key == g_audit_site ? g_audit_to : o;
}

std::vector<std::memory_order> one_step_weaker(const std::string& op, std::memory_order o) {
    const bool load = op == "load", store = op == "store";
    switch (o) {
        case std::memory_order_seq_cst:
            return {load ? acquire : store ? release : std::memory_order_acq_rel};
        case std::memory_order_acq_rel:
            return {acquire, release};
        case std::memory_order_acquire:
        case std::memory_order_release:
            return {relaxed};
        default:
            return {};
    }
}

template <class Base, class T>
struct Audited : Base {
    using Base::Base;
    static constexpr const char* kWord = std::is_same_v<Base, AtomicRef<T>> ? "ref" : "atomic";
    T load(std::memory_order o = seq_cst) const { return Base::load(audited(kWord, "load", o)); }
    void store(T v, std::memory_order o = seq_cst) { Base::store(v, audited(kWord, "store", o)); }
    T exchange(T v, std::memory_order o = seq_cst) {
        return Base::exchange(v, audited(kWord, "exchange", o));
    }
    bool compare_exchange_strong(T& e, T d, std::memory_order s, std::memory_order f) {
        return Base::compare_exchange_strong(e, d, audited(kWord, "cas", s), f);
    }
    bool compare_exchange_weak(T& e, T d, std::memory_order s, std::memory_order f) {
        return Base::compare_exchange_weak(e, d, audited(kWord, "cas", s), f);
    }
    bool compare_exchange_strong(T& e, T d, std::memory_order o = seq_cst) {
        return Base::compare_exchange_strong(e, d, audited(kWord, "cas", o));
    }
    T fetch_add(T d, std::memory_order o = seq_cst) {
        return Base::fetch_add(d, audited(kWord, "fetch_add", o));
    }
    T fetch_sub(T d, std::memory_order o = seq_cst) {
        return Base::fetch_sub(d, audited(kWord, "fetch_sub", o));
    }
    T fetch_and(T d, std::memory_order o = seq_cst) {
        return Base::fetch_and(d, audited(kWord, "fetch_and", o));
    }
    T fetch_or(T d, std::memory_order o = seq_cst) {
        return Base::fetch_or(d, audited(kWord, "fetch_or", o));
    }
};
template <class T>
using AuditedAtomic = Audited<Atomic<T>, T>;
template <class T>
using AuditedRef = Audited<AtomicRef<T>, T>;

struct AuditPlatform : Platform {
    template <class T>
    using atomic = AuditedAtomic<T>;
    template <class T>
    using atomic_ref = AuditedRef<T>;
};
// The model backends over it: their own bodies (the futex wait's compare, the
// spinner's load) are the model's and stay as they are.
struct AuditFutex : Futex {
    using platform = AuditPlatform;
};
struct AuditSpin : Spin {
    using platform = AuditPlatform;
    static bool wait(Atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline) {
        return Spin::wait(word, expected, deadline);
    }
};
struct AuditEventGate : EventGate {
    using platform = AuditPlatform;
};
// EventLockBitFace (model_program.hpp) over the audited platform.
template <bool FastMutexTry>
struct AuditEventLockBitFace {
    nt::LONG count = nt::FM_LOCK_BIT;
    nt::ULONG contention = 0;
    AuditEventGate gate;
    bool acquire(nt::PKTHREAD, Op op) {
        if (op == Op::try_lock) {
            return FastMutexTry ? lock_bit::try_acquire_uncontended<AuditPlatform>(count)
                                : lock_bit::try_acquire<AuditPlatform>(count);
        }
        lock_bit::acquire(count, contention, gate);
        return true;
    }
    void release(nt::PKTHREAD) { lock_bit::release(count, gate); }
    bool is_free() const { return count == nt::FM_LOCK_BIT && gate.quiescent(); }
};

// Runs the plans once as they are (recording the sites), then once per
// weakening; prints a line per weakening and returns them.
template <class Face>
std::vector<std::string> audit(const std::string& name, int bound) {
    g_audit_seen.clear();
    g_audit_site.clear();
    std::vector<std::string> lines;
    const auto run = [&] {
        Result worst;
        for (const Plan* plan : {&k3x1, &k3x2}) {
            Result r = explore(cxx(bound), program<Face>(*plan, true));
            if (r.violation || !worst.violation) worst = std::move(r);
        }
        return worst;
    };
    const Result clean = run();
    EXPECT_FALSE(clean.violation) << name << ": " << describe(clean);
    const std::vector<std::string> sites = g_audit_seen;
    for (const auto& site : sites) {
        const std::string op =
            site.substr(site.find(' ') + 1, site.rfind(' ') - site.find(' ') - 1);
        std::memory_order from = relaxed;
        for (auto o : {acquire, release, std::memory_order_acq_rel, seq_cst})
            if (site.substr(site.rfind(' ') + 1) == order_text(o)) from = o;
        for (auto to : one_step_weaker(op, from)) {
            g_audit_site = site;
            g_audit_to = to;
            const Result r = run();
            g_audit_site.clear();
            std::string what = r.what.substr(0, r.what.find(" (step"));
            const std::string line =
                "audit: " + name + ": " + site + " -> " + order_text(to) + ": " +
                (r.violation ? "needed (" + what + ")"
                             : "stronger than the model needs (pb=" + std::to_string(bound) +
                                   ", 3x1 and 3x2)");
            std::printf("%s\n", line.c_str());
            std::ofstream("model-summary.txt", std::ios::app) << line << '\n';
            lines.push_back(line);
        }
    }
    return lines;
}

std::size_t count_needed(const std::vector<std::string>& lines) {
    return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), [](const auto& l) {
        return l.find(": needed (") != std::string::npos;
    }));
}

TEST(ModelC11, AuditLockBitOverFutex) {
    const auto lines =
        audit<LockBitFace<kmlab::detail::RawLockBit<AuditFutex>>>("RawLockBit<Futex>", 2);
    EXPECT_GE(count_needed(lines), 1u);
}
TEST(ModelC11, AuditLockBitOverSpin) {
    const auto lines =
        audit<LockBitFace<kmlab::detail::RawLockBit<AuditSpin>>>("RawLockBit<Spin>", 2);
    EXPECT_GE(count_needed(lines), 1u);
}
TEST(ModelC11, AuditKMutexOverFutex) {
    const auto lines = audit<KMutexFace<AuditFutex>>("RawKMutex<Futex>", 2);
    EXPECT_GE(count_needed(lines), 1u);
}
TEST(ModelC11, AuditKMutexOverSpin) {
    const auto lines = audit<KMutexFace<AuditSpin>>("RawKMutex<Spin>", 2);
    EXPECT_GE(count_needed(lines), 1u);
}
TEST(ModelC11, AuditFastMutexRoutines) {
    const auto lines = audit<AuditEventLockBitFace<true>>("lock-bit over an event (FAST_MUTEX)", 2);
    EXPECT_GE(count_needed(lines), 1u);
}

// ---- every lock algorithm under the orders its code names ----
// The bounds: 3 where that search takes seconds (Release, the 2-core
// machine, 2026-12-07), else 2: RawLockBit<Futex> at 3 is 3.05M schedules,
// 81 s. RawKMutex<Futex> at 3 explores what sc at 3 does (135k schedules:
// its only loads are its RMWs and the futex's compare, which read the
// newest store), and model_test.cpp runs that already. The summary lines
// say which bound each ran at.
template <class Face>
void explore_cxx(const std::string& name, int bound_4x1, int bound_3x2) {
    const int b1 = kSanitized ? 1 : bound_4x1, b2 = kSanitized ? 1 : bound_3x2;
    expect_clean(name + " 4x1", cxx(b1), program<Face>(k4x1, true));
    expect_clean(name + " 3x2", cxx(b2), program<Face>(k3x2, true));
}

TEST(ModelC11, LockBitOverFutex) {
    explore_cxx<LockBitFace<kmlab::detail::RawLockBit<Futex>>>("RawLockBit<Futex> (FastMutex)", 2,
                                                               2);
}
TEST(ModelC11, LockBitOverSpin) {
    explore_cxx<LockBitFace<kmlab::detail::RawLockBit<Spin>>>("RawLockBit<Spin> (TTAS)", 3, 3);
}
TEST(ModelC11, KMutexOverFutex) {
    explore_cxx<KMutexFace<Futex>>("RawKMutex<Futex>", 2, 2);
}
TEST(ModelC11, KMutexOverSpin) {
    explore_cxx<KMutexFace<Spin>>("RawKMutex<Spin>", 3, 3);
}
TEST(ModelC11, FastMutexRoutines) {
    explore_cxx<EventLockBitFace<true>>("lock-bit over an event (FAST_MUTEX)", 3, 3);
}
TEST(ModelC11, GuardedMutexRoutines) {
    explore_cxx<EventLockBitFace<false>>("lock-bit over an event (KGUARDED_MUTEX)", 3, 3);
}

// The KSPIN_LOCK algorithms (kernel/spin_lock_algorithm.hpp), with
// model_spin_lock_test.cpp's faces: the ordinary lock (compare-exchange,
// then test and test-and-set) and the in-stack queued one (MCS).
template <class P = Platform>
struct SpinFace {
    nt::KSPIN_LOCK word = 0;
    bool acquire(nt::PKTHREAD t, Op op) {
        const nt::KSPIN_LOCK tag = spin_lock::owner_tag(t);
        if (op == Op::try_lock) {
            nt::KSPIN_LOCK seen = spin_lock::load<P>(word);
            return seen == 0 && spin_lock::try_acquire<P>(word, tag, seen);
        }
        spin_lock::acquire<P>(word, tag);
        return true;
    }
    void release(nt::PKTHREAD t) {
        if (spin_lock::load<P>(word) != spin_lock::owner_tag(t))
            fail("released a spin lock whose word is not the owner's tag");
        spin_lock::release<P>(word);
    }
    bool is_free() const { return word == 0; }
};

template <class P = Platform>
struct QueuedFace {
    nt::KSPIN_LOCK word = 0;
    // The entries outlive the face, as a KLOCK_QUEUE_HANDLE on its thread's
    // stack outlives the lock's destruction by the last owner.
    std::shared_ptr<std::array<nt::KSPIN_LOCK_QUEUE, 8>> entries =
        std::make_shared<std::array<nt::KSPIN_LOCK_QUEUE, 8>>();
    bool acquire(nt::PKTHREAD, Op op) {
        nt::KSPIN_LOCK_QUEUE& q = (*entries)[static_cast<std::size_t>(current_thread())];
        auto record = [] {};
        if (op == Op::try_lock) {
            if (!spin_lock::try_acquire_queued<P>(word, q, record)) return false;
        } else if (const nt::KSPIN_LOCK prev = spin_lock::enqueue<P>(word, q, record); prev != 0) {
            spin_lock::wait_for_handoff<P>(q, prev);
        }
        return true;
    }
    void release(nt::PKTHREAD) {
        spin_lock::release_queued<P>((*entries)[static_cast<std::size_t>(current_thread())]);
    }
    bool is_free() const { return word == 0; }
};

TEST(ModelC11, SpinLock) {
    explore_cxx<SpinFace<>>("KSPIN_LOCK (cmpxchg, TTAS)", 2, 2);
}
TEST(ModelC11, InStackQueuedSpinLock) {
    explore_cxx<QueuedFace<>>("in-stack queued KSPIN_LOCK (MCS)", 2, 2);
}
TEST(ModelC11, AuditSpinLock) {
    EXPECT_GE(count_needed(audit<SpinFace<AuditPlatform>>("KSPIN_LOCK", 2)), 1u);
}
TEST(ModelC11, AuditInStackQueuedSpinLock) {
    EXPECT_GE(count_needed(audit<QueuedFace<AuditPlatform>>("in-stack queued KSPIN_LOCK", 2)), 1u);
}

// ---- the dispatcher (model_dispatcher_test.cpp's programs, under c++) ----
// Its state under its lock (wait lists, SignalState) is plain memory, ordered
// by the model lock's seq_cst compare-exchange and exchange; `in_cs` and
// `acquired` are Plain, so a KMUTEX that does not order its owners races.
struct DispatcherKMutex {
    nt::KMUTEX mutex;
    Atomic<int> data{0};
    Plain<int> in_cs{0};
    Plain<int> acquired{0};
    std::vector<nt::PKTHREAD> threads;
    explicit DispatcherKMutex(std::size_t n) {
        nt::KeInitializeMutex(&mutex, 0);
        for (std::size_t i = 0; i < n; ++i) threads.push_back(kernel::create_thread_object(false));
    }
    ~DispatcherKMutex() {
        for (auto* t : threads) kernel::dereference_thread(t);
    }
};

std::function<Program()> dispatcher_program(DispatcherUnderModel& dut, const Plan& plan) {
    return [&dut, plan] {
        dut.reset();
        auto s = std::make_shared<DispatcherKMutex>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) {
                    label(&s->mutex, sizeof s->mutex, "kmutex");
                    label(&s->data, sizeof s->data, "data");
                    label(&s->in_cs, sizeof s->in_cs, "in_cs");
                }
                kernel::detail::tls_current_thread = s->threads[i];
                for (Op op : ops) {
                    nt::LARGE_INTEGER timeout{};
                    timeout.QuadPart = op == Op::timed ? -36'000'000'000LL : 0;  // 1 h, or poll
                    const nt::NTSTATUS st =
                        nt::KeWaitForSingleObject(&s->mutex, nt::Executive, nt::KernelMode,
                                                  nt::FALSE, op == Op::lock ? nullptr : &timeout);
                    if (st == nt::STATUS_TIMEOUT && op != Op::lock) continue;
                    if (st != nt::STATUS_SUCCESS) fail("KeWaitForSingleObject: unexpected status");
                    if (++s->in_cs != 1) fail("two threads own the KMUTEX");
                    s->data.store(s->data.load(relaxed) + 1, relaxed);
                    ++s->acquired;
                    --s->in_cs;
                    nt::KeReleaseMutex(&s->mutex, nt::FALSE);
                }
            });
        }
        p.check = [s]() -> std::string {
            if (nt::KeReadStateMutex(&s->mutex) != 1 || s->mutex.OwnerThread != nullptr ||
                !nt::IsListEmpty(&s->mutex.Header.WaitListHead))
                return "the KMUTEX is not back in its initial state";
            if (s->data.load() != s->acquired) return "a write made under the KMUTEX was lost";
            return {};
        };
        return p;
    };
}

void explore_dispatcher_cxx(dispatcher::LockMode mode, const char* mode_name) {
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    const Plan k3x2_timed_first = {
        {Op::lock, Op::lock}, {Op::timed, Op::lock}, {Op::try_lock, Op::timed}};
    for (const auto& [plan, pname] : {std::pair{k4x1, "4x1"}, std::pair{k3x2_timed_first, "3x2"}}) {
        Config c = cxx(kSanitized ? 1 : 2);
        c.fiber_locals = DispatcherUnderModel::fiber_locals();
        expect_clean(std::string("dispatcher KMUTEX (") + mode_name + ") " + pname, c,
                     dispatcher_program(dut, plan));
    }
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
}

TEST(ModelC11, DispatcherKMutexGlobalLock) {
    explore_dispatcher_cxx(dispatcher::LockMode::global, "global lock");
}
TEST(ModelC11, DispatcherKMutexPerObjectLocks) {
    explore_dispatcher_cxx(dispatcher::LockMode::per_object, "per-object locks");
}

// FAST_MUTEX and KGUARDED_MUTEX through their NT routines: Count is model
// memory (with the orders kernel/src/fast_mutex.cpp names), the gate the
// dispatcher's.
struct NtMutexes {
    nt::FAST_MUTEX fast;
    nt::KGUARDED_MUTEX guarded;
    Atomic<int> data{0};
    Plain<int> in_cs{0};
    Plain<int> acquired{0};
    std::vector<nt::PKTHREAD> threads;
    explicit NtMutexes(std::size_t n) {
        nt::ExInitializeFastMutex(&fast);
        nt::KeInitializeGuardedMutex(&guarded);
        for (std::size_t i = 0; i < n; ++i) threads.push_back(kernel::create_thread_object(false));
    }
    ~NtMutexes() {
        for (auto* t : threads) kernel::dereference_thread(t);
    }
};

template <bool Guarded>
std::function<Program()> nt_mutex_program(DispatcherUnderModel& dut, const Plan& plan) {
    return [&dut, plan] {
        dut.reset();
        auto s = std::make_shared<NtMutexes>(plan.size());
        Program p;
        for (std::size_t i = 0; i < plan.size(); ++i) {
            p.threads.push_back([s, ops = plan[i], i] {
                if (i == 0) {
                    label(&s->fast, sizeof s->fast, "fast mutex");
                    label(&s->guarded, sizeof s->guarded, "guarded mutex");
                    label(&s->in_cs, sizeof s->in_cs, "in_cs");
                }
                kernel::detail::tls_current_thread = s->threads[i];
                for (Op op : ops) {
                    bool got = true;
                    if constexpr (Guarded) {
                        if (op == Op::lock)
                            nt::KeAcquireGuardedMutex(&s->guarded);
                        else
                            got = nt::KeTryToAcquireGuardedMutex(&s->guarded) != nt::FALSE;
                    } else {
                        if (op == Op::lock)
                            nt::ExAcquireFastMutex(&s->fast);
                        else
                            got = nt::ExTryToAcquireFastMutex(&s->fast) != nt::FALSE;
                    }
                    if (!got) continue;
                    if (++s->in_cs != 1) fail("two threads own the mutex");
                    s->data.store(s->data.load(relaxed) + 1, relaxed);
                    ++s->acquired;
                    --s->in_cs;
                    if constexpr (Guarded)
                        nt::KeReleaseGuardedMutex(&s->guarded);
                    else
                        nt::ExReleaseFastMutex(&s->fast);
                }
            });
        }
        p.check = [s]() -> std::string {
            const nt::LONG count = Guarded ? s->guarded.Count : s->fast.Count;
            if (count != nt::FM_LOCK_BIT) return "the mutex's Count is not back to free";
            if (s->data.load() != s->acquired) return "a write made under the mutex was lost";
            return {};
        };
        return p;
    };
}

template <bool Guarded>
void explore_nt_mutex_cxx(dispatcher::LockMode mode, const char* mode_name) {
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(mode);
    for (const auto& [plan, pname] : {std::pair{k3x1, "3x1"}, std::pair{k4x1, "4x1"}}) {
        Config c = cxx(kSanitized ? 1 : 2);
        c.fiber_locals = DispatcherUnderModel::fiber_locals();
        expect_clean(
            std::string(Guarded ? "dispatcher KGUARDED_MUTEX (" : "dispatcher FAST_MUTEX (") +
                mode_name + ") " + pname,
            c, nt_mutex_program<Guarded>(dut, plan));
    }
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
}

TEST(ModelC11, DispatcherFastMutexGlobalLock) {
    explore_nt_mutex_cxx<false>(dispatcher::LockMode::global, "global lock");
}
TEST(ModelC11, DispatcherGuardedMutexPerObjectLocks) {
    explore_nt_mutex_cxx<true>(dispatcher::LockMode::per_object, "per-object locks");
}

// ---- a driver's own test under explore::run(), under c++ ----
// The worker writes Plain data and sets a KEVENT. Waiting on the event
// orders the data (the dispatcher's lock makes KeSetEvent release and the
// wait acquire); KeReadStateEvent, a lock-free read of SignalState outside
// the seam, orders nothing, so reading the data after it is a data race.
struct Published {
    nt::KEVENT done;
    Plain<int> data{0};
};

void publish(nt::PVOID context) {
    auto* s = static_cast<Published*>(context);
    s->data = 42;
    nt::KeSetEvent(&s->done, 0, nt::FALSE);
}

template <bool Waits>
void publish_body() {
    Published s;
    nt::KeInitializeEvent(&s.done, nt::NotificationEvent, nt::FALSE);
    label(&s.done, sizeof s.done, "done");
    label(&s.data, sizeof s.data, "data");
    nt::HANDLE h = nullptr;
    check(nt::PsCreateSystemThread(&h, nt::THREAD_ALL_ACCESS, nullptr, nullptr, nullptr, &publish,
                                   &s) == nt::STATUS_SUCCESS,
          "PsCreateSystemThread failed");
    nt::PVOID thread = nullptr;
    check(nt::ObReferenceObjectByHandle(h, nt::SYNCHRONIZE, *nt::PsThreadType, nt::KernelMode,
                                        &thread, nullptr) == nt::STATUS_SUCCESS,
          "ObReferenceObjectByHandle failed");
    nt::ZwClose(h);
    if constexpr (Waits) {
        nt::KeWaitForSingleObject(&s.done, nt::Executive, nt::KernelMode, nt::FALSE, nullptr);
        check(s.data == 42, "the data is not there after the wait");
    } else {
        if (nt::KeReadStateEvent(&s.done) != 0) check(s.data == 42, "stale data");
    }
    nt::KeWaitForSingleObject(thread, nt::Executive, nt::KernelMode, nt::FALSE, nullptr);
    nt::ObDereferenceObject(thread);
}

TEST(ModelC11, DriverTestPublishingThroughAnEvent) {
    const Config c = cxx(kSanitized ? 1 : 2);
    const Result waits = run(c, &publish_body<true>);
    report_cxx("run(): data published through KeSetEvent / wait", c, waits);
    EXPECT_FALSE(waits.violation) << describe(waits);
    EXPECT_TRUE(waits.complete);
    // The must-fail search at bound 2 in every build: the sanitizers'
    // lowered bound 1 does not reach the stale read (a few hundred schedules).
    const Config c2 = cxx(2);
    const Result polls = run(c2, &publish_body<false>);
    report_cxx("run(): data read after KeReadStateEvent (must fail)", c2, polls);
    ASSERT_TRUE(polls.violation);
    EXPECT_NE(polls.what.find("data race on data"), std::string::npos) << describe(polls);
}

}  // namespace
}  // namespace kmlab::explore
