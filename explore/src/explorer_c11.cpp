// The C++20 memory model, Memory::cxx (explore.hpp's header says what it
// models and what it leaves out), after CDSChecker [Norris and Demsky,
// OOPSLA 2013] and loom [loom-atomic] [loom-vv] [loom-rt]:
//  * every model thread has a vector clock; an event's epoch is the thread's
//    own entry of it, which goes up after every snapshot a release takes, so
//    an event happens before thread U's present iff U's clock has reached
//    its epoch in its thread's entry;
//  * every atomic location keeps its modification order: the stores made to
//    it (the last kHistory of them), each with its storer and epoch, the view
//    an acquire that reads it joins (`sync`: the storer's clock for a
//    release, the clock at its last release fence otherwise, and for a
//    read-modify-write also the view of the store it read, which is how a
//    release sequence goes on through RMWs [intro.races] p5), and per thread
//    the epoch at which that thread first read or wrote it;
//  * a load may read any store from the newest one its thread can "see"
//    (written or read by an event that happens before it: coherence
//    [intro.races] p13-p18) to the newest of all. The newest is the default;
//    reading an older one is a choice (R<n>, n its place in modification
//    order) that costs a preemption, as a buffered store draining late does
//    under TSO: the search spends its bound on weak behaviours as on
//    preemptions, and the zero-cost schedules are the sequentially
//    consistent ones;
//  * a store joins its location's modification order when it runs (as in
//    loom): modification orders other than the run's are not explored;
//  * a read-modify-write reads the newest store [atomics.order] p10;
//  * seq_cst: S, the single total order of seq_cst operations and fences, is
//    taken to be the order the run makes them in. Each location keeps the
//    newest store that S has made unavoidable (`sc_floor`): a seq_cst store
//    or RMW sets it to itself, a seq_cst load to what it read, a seq_cst
//    fence to everything its thread can see; seq_cst loads read no older,
//    and a seq_cst fence makes its thread see it. That is [atomics.order]
//    p4's four cases for an S that follows the run, and no more: seq_cst
//    creates no happens-before of its own (a race between two threads
//    ordered only by seq_cst fences is still a race);
//  * fences [atomics.fences]: a release fence is the view that a later
//    relaxed store of the thread carries; an acquire fence joins the views
//    of every store its thread read before it.
// Memory itself always holds the newest store of each location (what code
// outside the seam reads: owner fields, final checks); a load that reads an
// older store gets that store's bytes.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "explorer_internal.hpp"

namespace kmlab::explore::internal {

namespace {

// The stores each location keeps. loom keeps 7 (MAX_ATOMIC_HISTORY,
// [loom-rt]); a load then chooses among at most 7, which bounds the
// search's branching where a thread has not synchronized for long. A thread
// that could see only stores already dropped reads the oldest kept one:
// fewer behaviours than C++ allows, never more.
constexpr std::size_t kHistory = 7;

using Clock = std::vector<std::uint32_t>;

std::uint32_t entry(const Clock& c, int i) {
    return i >= 0 && static_cast<std::size_t>(i) < c.size() ? c[static_cast<std::size_t>(i)] : 0;
}

void join(Clock& a, const Clock& b) {
    if (a.size() < b.size()) a.resize(b.size(), 0);
    for (std::size_t i = 0; i < b.size(); ++i) a[i] = std::max(a[i], b[i]);
}

// memory_order_consume is promoted to acquire, as every compiler does.
bool acquires(std::memory_order o) {
    return o == std::memory_order_acquire || o == std::memory_order_acq_rel ||
           o == std::memory_order_seq_cst || o == std::memory_order_consume;
}
bool releases(std::memory_order o) {
    return o == std::memory_order_release || o == std::memory_order_acq_rel ||
           o == std::memory_order_seq_cst;
}

const char* order_name(std::memory_order o) {
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

}  // namespace

struct StoreRec {
    std::uint64_t bits = 0;
    int thread = -1;          // -1: a value no model store made (see location())
    std::uint32_t epoch = 0;  // the storer's own clock entry when it stored
    Clock sync;               // what an acquire that reads it joins
    Clock seen;               // per thread: the epoch it first read or wrote it at (0: never)
    bool release = false;     // for the trace
    bool rmw = false;
    long step = 0;
    long pos = 0;  // its place in the location's modification order (R<pos>)
};

struct Location {
    std::size_t size = 0;
    std::vector<StoreRec> history;  // modification order, oldest first, at most kHistory
    long next = 0;                  // the next store's pos
    long sc_floor = -1;             // the newest store S made unavoidable (above)
};

struct ThreadView {
    Clock clock;
    Clock fence_release;  // the clock at its last release fence (empty: none)
    Clock acquired;       // the views of every store it read: an acquire fence joins them
};

struct PlainAccess {
    int thread = -1;
    std::uint32_t epoch = 0;
    long step = 0;
};
struct PlainLocation {
    PlainAccess write;               // the last write
    std::vector<PlainAccess> reads;  // the last read of each thread since
};

struct C11State {
    // Ordered by address: a seq_cst fence walks every location, in an order
    // that does not depend on where the run's objects were allocated.
    std::map<const void*, Location> locations;
    std::deque<ThreadView> threads;  // a deque: views are held across a growth
    std::map<const void*, PlainLocation> plain;
    std::map<const void*, Clock> events;  // EventGate: the view its signals released
};

struct C11 {
    static ThreadView& view(Scheduler& s, int t) {
        auto& threads = s.c11_->threads;
        while (threads.size() <= static_cast<std::size_t>(t)) {
            ThreadView v;
            const auto i = threads.size();
            v.clock.assign(i + 1, 0);
            v.clock[i] = 1;  // epoch 0 is "before the run": every thread sees it
            threads.push_back(std::move(v));
        }
        return threads[static_cast<std::size_t>(t)];
    }
    static std::uint32_t now(Scheduler& s, int t) { return entry(view(s, t).clock, t); }
    // After a snapshot of the clock was taken: later events are not in it.
    static void tick(Scheduler& s, int t) { ++view(s, t).clock[static_cast<std::size_t>(t)]; }

    static void mark_seen(StoreRec& r, int t, std::uint32_t epoch) {
        const auto i = static_cast<std::size_t>(t);
        if (r.seen.size() <= i) r.seen.resize(i + 1, 0);
        if (r.seen[i] == 0) r.seen[i] = epoch;
    }

    // The location's state, its history in step with memory. Memory that
    // holds another value than the newest store (or that is accessed with
    // another size) was written outside the seam: constructed, reset,
    // re-initialized. Decision, kmlab: from there on that value is the
    // location's only store, and every thread sees it (as memory written
    // before the run is); a write outside the seam is thus taken to be
    // ordered before every later access, which code that initializes an
    // object and then publishes it satisfies.
    static Location& location(Scheduler& s, const void* p, std::size_t size) {
        Location& loc = s.c11_->locations[p];
        std::uint64_t bits = 0;
        std::memcpy(&bits, p, size);
        if (loc.history.empty() || loc.size != size || loc.history.back().bits != bits) {
            loc.size = size;
            loc.history.clear();
            StoreRec r;
            r.bits = bits;
            r.step = s.steps_;
            r.pos = loc.next++;
            loc.history.push_back(std::move(r));
            loc.sc_floor = -1;
        }
        return loc;
    }

    static void append(Location& loc, StoreRec r) {
        r.pos = loc.next++;
        loc.history.push_back(std::move(r));
        if (loc.history.size() > kHistory) loc.history.erase(loc.history.begin());
    }

    // Whether thread t must read `r` or a newer store: r happens before t's
    // present (its store, or a read or write of it by any thread).
    static bool visible(Scheduler& s, int t, const StoreRec& r) {
        if (r.thread < 0) return true;
        const Clock& c = view(s, t).clock;
        if (r.thread == t || entry(c, r.thread) >= r.epoch) return true;
        for (std::size_t u = 0; u < r.seen.size(); ++u) {
            if (r.seen[u] != 0 && entry(c, static_cast<int>(u)) >= r.seen[u]) return true;
        }
        return false;
    }

    static std::size_t index_of(const Location& loc, long pos) {
        const long i = pos - loc.history.front().pos;
        return static_cast<std::size_t>(
            std::clamp<long>(i, 0, static_cast<long>(loc.history.size()) - 1));
    }

    // The oldest store thread t may read: the newest it must see, raised to
    // S's floor for a seq_cst load.
    static std::size_t floor_index(Scheduler& s, int t, const Location& loc, bool sc) {
        std::size_t i = loc.history.size() - 1;
        while (i > 0 && !visible(s, t, loc.history[i])) --i;
        if (sc && loc.sc_floor >= 0) i = std::max(i, index_of(loc, loc.sc_floor));
        return i;
    }

    static std::string describe(const StoreRec& r) {
        if (r.thread < 0) return "its value before the run (or written outside the seam)";
        return 'T' + std::to_string(r.thread) + "'s " + (r.rmw ? "RMW" : "store") +
               (r.release ? " (release)" : "") + " at step " + std::to_string(r.step);
    }

    // ---- the operations ----

    static void load(Scheduler& s, const void* p, void* out, std::size_t size,
                     std::memory_order o) {
        s.yield();
        s.check_alive(p, size);
        const int t = s.running_;
        const bool sc = o == std::memory_order_seq_cst;
        std::size_t pick = 0;
        bool aborted = false;
        {  // nothing owning memory may be alive on this stack if the run ends
            Location& loc = location(s, p, size);
            const std::size_t n = loc.history.size();
            const std::size_t lo = floor_index(s, t, loc, sc);
            pick = n - 1;
            if (lo + 1 < n) {
                std::vector<Option> opts;
                for (std::size_t i = n; i-- > lo;)
                    opts.push_back(
                        {OptKind::read, static_cast<int>(loc.history[i].pos), i + 1 == n ? 0 : 1});
                // A read choice is this thread's own progress, not another's:
                // decide() would count it as such for its timeout costs.
                const bool progressed = s.threads_[static_cast<std::size_t>(t)].others_progressed;
                const int c = s.decide_or_abort(opts);
                s.threads_[static_cast<std::size_t>(t)].others_progressed = progressed;
                if (c < 0)
                    aborted = true;
                else
                    pick = n - 1 - static_cast<std::size_t>(c);
            }
        }
        if (aborted) s.end_run();
        Location& loc = s.c11_->locations[p];
        StoreRec& r = loc.history[pick];
        std::memcpy(out, &r.bits, size);
        ThreadView& v = view(s, t);
        mark_seen(r, t, entry(v.clock, t));
        join(v.acquired, r.sync);
        if (acquires(o)) join(v.clock, r.sync);
        if (sc) loc.sc_floor = std::max(loc.sc_floor, r.pos);
        s.remember_read(p, out, size);
        if (s.tracing_) {
            const std::size_t newer = loc.history.size() - 1 - pick;
            s.note("load " + s.where(p) + " = " + Scheduler::show(out, size) + " (" +
                   order_name(o) + "; R" + std::to_string(r.pos) + ": " + describe(r) +
                   (newer ? "; stale, " + std::to_string(newer) + " newer" : "") + ")");
        }
    }

    static void store(Scheduler& s, void* p, const void* in, std::size_t size,
                      std::memory_order o) {
        s.yield();
        s.check_alive(p, size);
        const int t = s.running_;
        Location& loc = location(s, p, size);
        ThreadView& v = view(s, t);
        StoreRec r;
        std::memcpy(&r.bits, in, size);
        r.thread = t;
        r.epoch = entry(v.clock, t);
        // A relaxed store after a release fence carries the fence's view: an
        // acquire that reads it synchronizes with the fence [atomics.fences] p2.
        r.sync = releases(o) ? v.clock : v.fence_release;
        r.release = releases(o);
        r.step = s.steps_;
        mark_seen(r, t, r.epoch);
        append(loc, std::move(r));
        if (o == std::memory_order_seq_cst) loc.sc_floor = loc.history.back().pos;
        std::memcpy(p, in, size);
        tick(s, t);
        if (s.tracing_)
            s.note("store " + s.where(p) + " := " + Scheduler::show(in, size) + " (" +
                   order_name(o) + "; R" + std::to_string(loc.history.back().pos) + ")");
        s.memory_written();
    }

    static void rmw(Scheduler& s, void* p, void* old, void* out, std::size_t size,
                    const std::function<bool(const void*, void*)>& update, const char* what,
                    std::memory_order success, std::memory_order failure) {
        s.yield();
        s.check_alive(p, size);
        const int t = s.running_;
        Location& loc = location(s, p, size);
        ThreadView& v = view(s, t);
        StoreRec& prev = loc.history.back();
        const long prev_pos = prev.pos;
        std::memcpy(old, &prev.bits, size);
        mark_seen(prev, t, entry(v.clock, t));
        const bool write = update(old, out);
        const std::memory_order o = write ? success : failure;
        join(v.acquired, prev.sync);
        if (acquires(o)) join(v.clock, prev.sync);
        if (write) {
            StoreRec r;
            std::memcpy(&r.bits, out, size);
            r.thread = t;
            r.epoch = entry(v.clock, t);
            // The release sequence of the store it read goes on through it
            // (C++20: through every RMW, whatever its order).
            r.sync = prev.sync;
            join(r.sync, releases(o) ? v.clock : v.fence_release);
            r.release = releases(o);
            r.rmw = true;
            r.step = s.steps_;
            mark_seen(r, t, r.epoch);
            append(loc, std::move(r));
            if (o == std::memory_order_seq_cst) loc.sc_floor = loc.history.back().pos;
            std::memcpy(p, out, size);
            tick(s, t);
        } else {
            if (o == std::memory_order_seq_cst) loc.sc_floor = std::max(loc.sc_floor, prev_pos);
            s.remember_read(p, old, size);
        }
        if (s.tracing_)
            s.note(std::string(what) + " " + s.where(p) + " " + Scheduler::show(old, size) +
                   (write ? " -> " + Scheduler::show(out, size) : " (no write)") + " (" +
                   order_name(o) + "; reads R" + std::to_string(prev_pos) +
                   (write ? ", writes R" + std::to_string(loc.history.back().pos) : "") + ")");
        if (write) s.memory_written();
    }

    // A seq_cst fence's part in S: every store thread t can see becomes one
    // no seq_cst load and no thread after a later seq_cst fence may read
    // below, and t sees whatever earlier ones made so.
    static void sc_publish(Scheduler& s, int t) {
        for (auto& [p, loc] : s.c11_->locations) {
            if (loc.history.empty()) continue;
            const std::size_t f = floor_index(s, t, loc, false);
            loc.sc_floor = std::max(loc.sc_floor, loc.history[f].pos);
        }
    }
    static void sc_subscribe(Scheduler& s, int t) {
        const std::uint32_t e = now(s, t);
        for (auto& [p, loc] : s.c11_->locations) {
            if (loc.history.empty() || loc.sc_floor < loc.history.front().pos) continue;
            mark_seen(loc.history[index_of(loc, loc.sc_floor)], t, e);
        }
    }
    // The fence's effects, without its scheduling step.
    static void fence_effects(Scheduler& s, int t, std::memory_order o) {
        ThreadView& v = view(s, t);
        if (acquires(o)) join(v.clock, v.acquired);
        if (o == std::memory_order_seq_cst) {
            sc_publish(s, t);
            sc_subscribe(s, t);
        }
        if (releases(o)) {
            v.fence_release = v.clock;
            tick(s, t);
        }
    }

    static void fence(Scheduler& s, std::memory_order o) {
        s.yield();
        if (s.running_ < 0) return;
        fence_effects(s, s.running_, o);
        if (s.tracing_) s.note(std::string("fence (") + order_name(o) + ")");
    }

    // membarrier (Platform::heavy_fence): every thread of the run passes a
    // full barrier at this point [man-membarrier], which the model takes as
    // a seq_cst fence in each, the caller's included.
    static void membarrier(Scheduler& s) {
        s.yield();
        if (s.running_ < 0) return;
        const int n = static_cast<int>(s.threads_.size());
        for (int t = 0; t < n; ++t) {
            if (s.threads_[static_cast<std::size_t>(t)].state == State::finished) continue;
            ThreadView& v = view(s, t);
            join(v.clock, v.acquired);
            sc_publish(s, t);
        }
        for (int t = 0; t < n; ++t) {
            if (s.threads_[static_cast<std::size_t>(t)].state == State::finished) continue;
            sc_subscribe(s, t);
            ThreadView& v = view(s, t);
            v.fence_release = v.clock;
            tick(s, t);
        }
        if (s.tracing_) s.note("membarrier (a seq_cst fence in every thread)");
    }

    // A futex call on word p, inside the kernel: it compares the word's
    // newest value (the kernel's futex operations are totally ordered with
    // one another on a word, futex(2)) and is a full barrier (smp_mb(),
    // [linux-futex]): a seq_cst fence here. Decision, kmlab: a futex wake
    // does not by itself make happens-before (C++ has no such edge, and
    // Linux promises only the barrier); a woken waiter synchronizes through
    // the atomics it reads afterwards, as every lock here does.
    static void futex_call(Scheduler& s, const void* p, bool reads_word) {
        const int t = s.running_;
        if (reads_word) {
            Location& loc = location(s, p, 4);
            mark_seen(loc.history.back(), t, now(s, t));
        }
        fence_effects(s, t, std::memory_order_seq_cst);
    }

    // EventGate stands for a KEVENT, whose KeSetEvent and wait take the
    // dispatcher lock: a signal releases, the wait it ends (or the wait that
    // consumes it) acquires.
    static void event_release(Scheduler& s, const void* e) {
        const int t = s.running_;
        join(s.c11_->events[e], view(s, t).clock);
        tick(s, t);
    }
    static void event_acquire(Scheduler& s, const void* e) {
        join(view(s, s.running_).clock, s.c11_->events[e]);
    }

    // A data race is two accesses of different threads to the same memory,
    // at least one a write, neither happening before the other
    // [intro.races] p21.
    static void plain(Scheduler& s, const void* p, bool write) {
        const int t = s.running_;
        const Clock& c = view(s, t).clock;
        PlainLocation& pl = s.c11_->plain[p];
        const auto ordered = [&](const PlainAccess& a) {
            return a.thread < 0 || a.thread == t || entry(c, a.thread) >= a.epoch;
        };
        const PlainAccess* other = nullptr;
        bool other_writes = false;
        if (!ordered(pl.write)) {
            other = &pl.write;
            other_writes = true;
        }
        if (write && other == nullptr) {
            for (const auto& r : pl.reads) {
                if (!ordered(r)) {
                    other = &r;
                    break;
                }
            }
        }
        if (other != nullptr) {
            {
                std::string what =
                    'T' + std::to_string(t) + ": data race on " + s.where(p) + ": T" +
                    std::to_string(t) + (write ? " writes" : " reads") + " it after step " +
                    std::to_string(s.steps_) + ", T" + std::to_string(other->thread) +
                    (other_writes ? " wrote" : " read") + " it after step " +
                    std::to_string(other->step) + ", and neither happens before the other";
                s.set_violation(std::move(what));
            }
            if (s.tracing_)
                s.trace_line(t, (write ? "writes " : "reads ") + s.where(p) + " (plain)");
            s.end_run();
        }
        const PlainAccess here{t, entry(c, t), s.steps_};
        if (write) {
            pl.write = here;
            pl.reads.clear();
        } else {
            auto it = std::find_if(pl.reads.begin(), pl.reads.end(),
                                   [&](const PlainAccess& a) { return a.thread == t; });
            if (it != pl.reads.end())
                *it = here;
            else
                pl.reads.push_back(here);
        }
    }

    static void forget(Scheduler& s, const void* p, std::size_t size) {
        const void* end = static_cast<const char*>(p) + size;
        auto& locations = s.c11_->locations;
        locations.erase(locations.lower_bound(p), locations.lower_bound(end));
        auto& plain = s.c11_->plain;
        plain.erase(plain.lower_bound(p), plain.lower_bound(end));
    }

    // ---- the seam's entry points: this model, or the Scheduler's own ----
    static void dispatch_load(Scheduler& s, const void* p, void* out, std::size_t size,
                              std::memory_order o) {
        if (s.c11_)
            load(s, p, out, size, o);
        else
            s.load(p, out, size);
    }
    static void dispatch_store(Scheduler& s, void* p, const void* in, std::size_t size,
                               std::memory_order o) {
        if (s.c11_)
            store(s, p, in, size, o);
        else
            s.store(p, in, size, o == std::memory_order_seq_cst);
    }
    static void dispatch_rmw(Scheduler& s, void* p, void* old, void* out, std::size_t size,
                             const std::function<bool(const void*, void*)>& update,
                             const char* what, std::memory_order success,
                             std::memory_order failure) {
        if (s.c11_)
            rmw(s, p, old, out, size, update, what, success, failure);
        else
            s.rmw(p, old, out, size, update, what);
    }
    // Under sc and tso only a seq_cst fence does anything (x86 keeps loads
    // and stores in order but for the store buffer, which it drains).
    static void dispatch_fence(Scheduler& s, std::memory_order o) {
        if (s.c11_)
            fence(s, o);
        else if (o == std::memory_order_seq_cst)
            s.fence(false);
    }
    static void dispatch_plain(Scheduler& s, const void* p, std::size_t size, bool write) {
        if (!s.c11_) return;
        s.check_alive(p, size);
        plain(s, p, write);
    }
};

void Scheduler::c11_reset() {
    if (config_.memory == Memory::cxx)
        c11_ = std::make_shared<C11State>();
    else
        c11_.reset();
}

// A spawn synchronizes with the start of the thread it starts
// [thread.thread.constr]: the child begins with its parent's view.
void Scheduler::c11_spawned(int parent, int child) {
    if (!c11_ || parent < 0) return;
    ThreadView& c = C11::view(*this, child);
    join(c.clock, C11::view(*this, parent).clock);
    C11::tick(*this, parent);
}

// The Scheduler's own operations (explorer_memory.cpp) under Memory::cxx,
// where an operation names no order: seq_cst, as std::atomic's default.
void c11_load(Scheduler& s, const void* p, void* out, std::size_t size) {
    C11::load(s, p, out, size, std::memory_order_seq_cst);
}
void c11_store(Scheduler& s, void* p, const void* in, std::size_t size) {
    C11::store(s, p, in, size, std::memory_order_seq_cst);
}
void c11_rmw(Scheduler& s, void* p, void* old, void* out, std::size_t size,
             const std::function<bool(const void*, void*)>& update, const char* what) {
    C11::rmw(s, p, old, out, size, update, what, std::memory_order_seq_cst,
             std::memory_order_seq_cst);
}
void c11_fence(Scheduler& s, bool all) {
    if (all)
        C11::membarrier(s);
    else
        C11::fence(s, std::memory_order_seq_cst);
}
void c11_futex(Scheduler& s, const void* p, bool reads_word) {
    C11::futex_call(s, p, reads_word);
}
void c11_event(Scheduler& s, const void* e, bool signal) {
    if (signal)
        C11::event_release(s, e);
    else
        C11::event_acquire(s, e);
}

// Destroyed memory (explore::destroy) forgets its stores and accesses: an
// object that a later allocation puts at the same address starts afresh
// rather than with its predecessor's history.
void c11_forget(Scheduler& s, const void* p, std::size_t size) {
    C11::forget(s, p, size);
}

}  // namespace kmlab::explore::internal

// The seam's entry points with orders (explore.hpp, detail): Memory::cxx
// models the order; sc and tso run the operations they always ran.
namespace kmlab::explore::detail {

using internal::C11;
using internal::g_sched;
using internal::Scheduler;

namespace {
Scheduler* model() {
    Scheduler* s = g_sched;
    return s != nullptr && s->current() >= 0 ? s : nullptr;
}
}  // namespace

void load(const void* p, void* out, std::size_t size, std::memory_order order) {
    Scheduler* s = model();
    if (s == nullptr)
        std::memcpy(out, p, size);
    else
        C11::dispatch_load(*s, p, out, size, order);
}
void store(void* p, const void* in, std::size_t size, std::memory_order order) {
    Scheduler* s = model();
    if (s == nullptr)
        std::memcpy(p, in, size);
    else
        C11::dispatch_store(*s, p, in, size, order);
}
void rmw(void* p, void* old, void* out, std::size_t size,
         const std::function<bool(const void*, void*)>& update, const char* what,
         std::memory_order success, std::memory_order failure) {
    Scheduler* s = model();
    if (s == nullptr) {
        std::memcpy(old, p, size);
        if (update(old, out)) std::memcpy(p, out, size);
    } else {
        C11::dispatch_rmw(*s, p, old, out, size, update, what, success, failure);
    }
}
void thread_fence(std::memory_order order) {
    if (Scheduler* s = model()) C11::dispatch_fence(*s, order);
}
void plain_access(const void* p, std::size_t size, bool write) {
    if (Scheduler* s = model()) C11::dispatch_plain(*s, p, size, write);
}

}  // namespace kmlab::explore::detail
