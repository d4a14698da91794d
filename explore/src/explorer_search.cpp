// The explorer's choices: which options a step offers and what each costs in
// preemptions, and how one is picked, forced by a replayed schedule, from the
// depth-first search's trail of decisions, or by PCT's random priorities
// [Burckhardt et al., ASPLOS 2010]. explore() (explorer.cpp) backtracks the
// trail between runs (next_schedule).
//
// Partial-order reduction (Config::reduction; exhaustive sc and tso searches)
// ---------------------------------------------------------------------------
// Actors: thread i (its T, X, W, D choices) and its store buffer (F<i>). A
// step is what runs from one choice to the next: the operation the chosen
// actor was paused before (announced before its yield(): Scheduler::Op), and
// what the thread does until its next yield (a spin's re-reads, a spawn, a
// destroy). Two steps of different actors are dependent if they touch one
// 4-byte granule and one writes it, or if either is "global". Global: a
// timeout, a spurious wake, a deadline check and its answer, a membarrier, a
// spawn, a destroy, an operation that yields unannounced, any choice kind
// not known here (another mode's, e.g. a reads-from choice). Under TSO a
// plain store is no access at all (it enters the own buffer) and its F step
// writes; whatever drains a buffer writes each buffered location. A futex
// wait / wake and an event wait / signal write their word (block and wake
// conflict). A thread that a step wakes (futex, event, a write a spinner
// read) or starts is ordered after it; an F step after the step that made
// its store.
//
// Algorithm: dynamic partial-order reduction [FG05: Flanagan & Godefroid,
// POPL 2005] over the stateless depth-first search. Each run keeps vector
// clocks of the happens-before order; when a step ends (por_close), the
// latest earlier step of another actor that conflicts with it and does not
// happen before its actor is a race: the actor joins the backtrack set
// (Decision::todo) of the choice before that step, or, where it could not
// move there, every option does. Because a buffered store may never be an F
// step of its own (its thread drains it), every F option offered at a choice
// is analysed there too, as [FG05] does every enabled transition. Timeouts,
// spurious wakes and deadline answers (and unknown kinds) are never pruned:
// each is explored at every choice that offers it, as unreduced.
//
// Without a bound (preemption_bound < 0), sleep sets [Godefroid 1996] too:
// a transition explored from a choice stays asleep below its later siblings
// while only steps independent of it run, and a run whose every option is
// asleep (a sleep-set block) is finished without analysis or alternatives
// (counted as a schedule run). Every run makes its program anew, at other
// addresses, so sleeping transitions take their footprints from the run in
// progress (por_refresh): the operation their thread announced, their
// buffer's oldest store; one that did more than that when it ran counts as
// global.
//
// What is guaranteed. Without a bound: every Mazurkiewicz trace of the
// program (under the dependency above) has a schedule that runs, so every
// deadlock, failed check, destroyed-memory access and final-state violation
// the unreduced search could find is found ([FG05] with sleep sets, over
// executions that all end: every run here ends, or is a violation or the
// step limit). With a bound: [CMM13: Coons, Musuvathi & McKinley, OOPSLA
// 2013] show that pruning with the bound naively loses traces the bounded
// search reaches; like their BPOR (and loom's path.rs) a race also adds its
// actor at the latest earlier choice that switched threads, where it costs
// no more than the choice made; no sleep sets. Their proof counts thread
// preemptions; this explorer also charges F, X, W and D choices: X, W, D are
// never pruned, an F step is an actor like a thread. So with a bound the
// reduction is BPOR extended to the store buffers, checked by
// tests/model/model_dpor_test.cpp (the same observations and verdicts as
// the bounded search at bounds 0-2), not proved. Memory a program shares
// outside the seam (plain fields) is invisible to the dependency: the
// reduction orders such accesses only as far as the seam's operations around
// them are ordered (the explorer already gives them no scheduling point).
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "explorer_internal.hpp"

namespace kmlab::explore::internal {

namespace {
// Two accesses conflict if they touch the same 4-byte granule (an access
// takes every granule it overlaps, so overlapping accesses of any sizes share
// one). 4: the lock words are 32-bit, and neighbouring ones must not look
// dependent; bytes in one granule do (conservative: more schedules, never
// fewer).
constexpr std::uintptr_t kGranule = 4;

// Thread i's steps are actor 2i, its store buffer's flushes actor 2i + 1.
int actor_of(OptKind kind, int thread) {
    return kind == OptKind::flush ? 2 * thread + 1 : 2 * thread;
}
int actor_of(const Option& o) {
    return actor_of(o.kind, o.thread);
}
// Choices the reduction never prunes (explored wherever the unreduced search
// would), and whose steps it takes as dependent with everything: a timeout,
// a spurious wake and a deadline answer are time passing or the kernel
// acting, not a thread's operation; and any kind this file does not know
// (a kind added later; the reads-from choice R is one).
bool always_explored(OptKind kind) {
    return kind != OptKind::run && kind != OptKind::flush;
}
void join(std::vector<int>& into, const std::vector<int>& from) {
    if (into.size() < from.size()) into.resize(from.size(), 0);
    for (std::size_t a = 0; a < from.size(); ++a) into[a] = std::max(into[a], from[a]);
}
int at(const std::vector<int>& clock, int actor) {
    return static_cast<std::size_t>(actor) < clock.size() ? clock[actor] : 0;
}
bool asleep(const Decision& d, const Option& o) {
    return std::any_of(d.sleep.begin(), d.sleep.end(),
                       [&](const Sleeper& s) { return s.kind == o.kind && s.thread == o.thread; });
}
bool affordable(const Decision& d, int i, const Config& config) {
    return config.preemption_bound < 0 || d.cost_before + d.costs[i] <= config.preemption_bound;
}
}  // namespace

void Footprint::add(const void* p, std::size_t size, bool write) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t last = (a + std::max<std::size_t>(size, 1) - 1) / kGranule;
    for (std::uintptr_t g = a / kGranule; g <= last; ++g) {
        auto it = std::find_if(acc.begin(), acc.end(), [&](const auto& x) { return x.first == g; });
        if (it == acc.end())
            acc.emplace_back(g, write);
        else
            it->second = it->second || write;
    }
}

void Footprint::merge(const Footprint& o) {
    global = global || o.global;
    for (const auto& [g, w] : o.acc) {
        auto it = std::find_if(acc.begin(), acc.end(), [&](const auto& x) { return x.first == g; });
        if (it == acc.end())
            acc.emplace_back(g, w);
        else
            it->second = it->second || w;
    }
}

bool dependent(const Footprint& a, const Footprint& b) {
    if (a.global || b.global) return true;
    for (const auto& [ga, wa] : a.acc) {
        for (const auto& [gb, wb] : b.acc) {
            if (ga == gb && (wa || wb)) return true;
        }
    }
    return false;
}

// The choices at this step, the default first. Cost: running another
// thread, draining a buffer or expiring a deadline while the thread that
// ran last could go on is a preemption. Expiring a thread's deadline is
// free otherwise only if another thread has made progress since that
// thread's last timeout: time passes while others work. (Free timeouts
// without that rule let a thread that polls with a deadline time out
// forever while a pending store never drains, an unfair schedule no
// machine makes.)
std::vector<Option> Scheduler::options() {
    std::vector<Option> opts;
    const int n = static_cast<int>(threads_.size());
    const bool cur_runnable = threads_[current_].state == State::runnable;
    const int alt = cur_runnable ? 1 : 0;
    if (cur_runnable) opts.push_back({OptKind::run, current_, 0});
    for (int k = 1; k <= n; ++k) {
        const int i = (current_ + k) % n;
        if (i != current_ && threads_[i].state == State::runnable)
            opts.push_back({OptKind::run, i, alt});
    }
    for (int k = 0; k < n; ++k) {
        const int i = (current_ + k) % n;
        const auto& t = threads_[i];
        if ((t.state == State::futex || t.state == State::spin) && t.has_deadline)
            opts.push_back({OptKind::timeout, i, cur_runnable || !t.others_progressed ? 1 : 0});
    }
    bool stuck = true;  // nothing but a timeout can move: it is free
    for (const auto& t : threads_) stuck = stuck && t.state != State::runnable && t.buffer.empty();
    for (auto& o : opts) {
        if (o.kind == OptKind::timeout && stuck) o.cost = 0;
    }
    for (int k = 0; k < n; ++k) {
        const int i = (current_ + k) % n;
        if (!threads_[i].buffer.empty()) opts.push_back({OptKind::flush, i, alt});
    }
    // A spurious wake-up, while some other thread can run: a correct waiter
    // checks its word and sleeps again, so where nothing else can move it
    // only re-runs that check (and would let a deadlock look like a
    // livelock). Always a preemption's cost: the search spends its bound on
    // it as on any other unexpected event. Offered at every choice while the
    // thread sleeps: the woken thread runs at once, so where it wakes orders
    // its next steps against every other thread's, reads included (offering
    // it only once per write to shared memory missed a one-preemption bug
    // whose wake had to come between another thread's two loads).
    if (config_.spurious_wakeups) {
        bool someone_runs = false;
        for (const auto& t : threads_) someone_runs = someone_runs || t.state == State::runnable;
        if (someone_runs) {
            for (int k = 0; k < n; ++k) {
                const int i = (current_ + k) % n;
                Thread& t = threads_[i];
                if (t.state == State::futex) opts.push_back({OptKind::spurious, i, 1});
            }
        }
    }
    // The cheapest choice is the default.
    std::stable_sort(opts.begin(), opts.end(),
                     [](const Option& a, const Option& b) { return a.cost < b.cost; });
    return opts;
}

int Scheduler::decide(const std::vector<Option>& opts) {
    if (por_) {
        por_close();  // the step that led here ends
        por_grow();
        // [FG05]'s analysis of every enabled transition, for the one kind a
        // run may never execute: a buffered store that its own thread drains
        // (an rmw, a fence) instead of an F step. Threads' operations are
        // analysed when they run (por_close): they stay enabled until then.
        for (const auto& o : opts) {
            if (o.kind != OptKind::flush) continue;
            const Thread& t = threads_[o.thread];
            Footprint f;
            f.add(t.buffer.front().addr, t.buffer.front().size, true);
            std::vector<int> c = actor_clock_[2 * o.thread + 1];
            if (!buffered_[o.thread].empty()) join(c, events_[buffered_[o.thread].front()].clock);
            por_race(2 * o.thread + 1, f, c);
        }
        if (config_.preemption_bound < 0 && decision_ < trail_->size()) {
            por_refresh((*trail_)[decision_].sleep);
            por_refresh((*trail_)[decision_].done);
        }
    }
    const bool cur_runnable = threads_[current_].state == State::runnable;
    int chosen = 0;
    if (forced_ != nullptr) {
        if (decision_ < forced_->size()) {
            const std::string& want = (*forced_)[decision_];
            auto it = std::find_if(opts.begin(), opts.end(),
                                   [&](const Option& o) { return o.name() == want; });
            if (it == opts.end()) {
                std::string what = "the replayed schedule does not fit this program: it chooses ";
                what += want;
                what += " here, which is not possible (possible:";
                for (const auto& o : opts) {
                    what += ' ';
                    what += o.name();
                }
                what += ')';
                set_violation(std::move(what));
                throw RunAbort{};
            }
            chosen = static_cast<int>(it - opts.begin());
        }
    } else if (config_.random) {
        chosen = pct_choose(opts, cur_runnable);
    } else {
        auto& trail = *trail_;
        if (decision_ < trail.size()) {
            chosen = trail[decision_].chosen;
            if (trail[decision_].count != static_cast<int>(opts.size())) {
                set_violation("a replayed run took another path at choice " +
                              std::to_string(decision_ + 1) + " (is the program deterministic?)");
                throw RunAbort{};
            }
        } else {
            Decision d{0, static_cast<int>(opts.size()), cost_, {}};
            for (const auto& o : opts) d.costs.push_back(static_cast<char>(o.cost));
            if (por_) chosen = d.chosen = por_new_decision(opts, d);
            trail.push_back(std::move(d));
        }
        if (por_) {
            const Option& c = opts[chosen];
            trail[decision_].switched =
                !(cur_runnable && c.kind == OptKind::run && c.thread == current_);
            por_open(c);
        }
    }
    cost_ += opts[chosen].cost;
    const Option& o = opts[chosen];
    for (std::size_t i = 0; i < threads_.size(); ++i) {
        if (static_cast<int>(i) != o.thread) threads_[i].others_progressed = true;
    }
    if (o.kind == OptKind::timeout) threads_[o.thread].others_progressed = false;
    ++decision_;
    schedule_.push_back(opts[chosen].name());
    return chosen;
}

void Scheduler::pct_setup() {
    const int n = static_cast<int>(threads_.size());
    priority_.resize(n);
    for (int i = 0; i < n; ++i) priority_[i] = config_.pct_depth + i;
    std::shuffle(priority_.begin(), priority_.end(), rng_);
    change_points_.clear();
    const long horizon = std::max<long>(expected_steps_, 16);
    for (int d = 1; d < config_.pct_depth; ++d)
        change_points_.push_back(std::uniform_int_distribution<long>(0, horizon)(rng_));
}

// A thread spawned mid-run gets a random rank among the priorities above
// the change points' (PCT draws a random permutation; a new thread takes a
// uniformly random place in it).
void Scheduler::pct_add_thread(int i) {
    if (priority_.size() < static_cast<std::size_t>(i))
        priority_.resize(static_cast<std::size_t>(i), config_.pct_depth);
    const int rank =
        std::uniform_int_distribution<int>(0, static_cast<int>(priority_.size()))(rng_);
    for (int& p : priority_) {
        if (p >= config_.pct_depth + rank) ++p;
    }
    priority_.push_back(config_.pct_depth + rank);
}

int Scheduler::pct_choose(const std::vector<Option>& opts, bool) {
    for (std::size_t d = 0; d < change_points_.size(); ++d) {
        if (change_points_[d] == steps_) priority_[current_] = static_cast<int>(d);
    }
    std::vector<int> runs, others;
    for (std::size_t i = 0; i < opts.size(); ++i)
        (opts[i].kind == OptKind::run ? runs : others).push_back(static_cast<int>(i));
    // Stores drain and deadlines expire at random moments, one in eight steps.
    if (!others.empty() && (runs.empty() || std::uniform_int_distribution<int>(0, 7)(rng_) == 0))
        return others[std::uniform_int_distribution<std::size_t>(0, others.size() - 1)(rng_)];
    int best = runs[0];
    for (int i : runs)
        if (priority_[opts[i].thread] > priority_[opts[best].thread]) best = i;
    return best;
}

// ---- partial-order reduction ----

bool Scheduler::reduces(const Config& config) {
    const bool on = config.reduction == Reduction::always ||
                    (config.reduction == Reduction::unbounded && config.preemption_bound < 0);
    return on && !config.random && config.replay.empty() &&
           (config.memory == Memory::sc || config.memory == Memory::tso);
}

void Scheduler::por_begin() {
    por_open_ = false;
    por_blocked_ = false;
    events_.clear();
    next_op_.clear();
    has_next_op_.clear();
    actor_clock_.clear();
    latest_event_.clear();
    buffered_.clear();
    cells_.clear();
    last_global_ = -1;
    flush_source_ = -1;
    por_grow();
}

// Threads spawned mid-run get their slots here.
void Scheduler::por_grow() {
    const std::size_t n = threads_.size();
    if (next_op_.size() >= n) return;
    next_op_.resize(n);
    has_next_op_.resize(n, 0);
    buffered_.resize(n);
    actor_clock_.resize(2 * n);
    latest_event_.resize(2 * n, -1);
}

// What the operation after the running thread's next yield() touches.
// Under TSO a plain store only enters the thread's own buffer (its F step
// makes it visible, and conflicts then); whatever drains the buffer writes
// every buffered store's location (the buffer as it is now: a superset of
// what is left when the step runs, as only F steps shrink it meanwhile).
void Scheduler::por_announce(Op op, const void* p, std::size_t size) {
    if (running_ < 0) return;
    por_grow();
    Footprint f;
    bool drains = false;
    switch (op) {
        case Op::load:
            f.add(p, size, false);
            break;
        case Op::store:
            if (config_.memory != Memory::tso) f.add(p, size, true);
            break;
        case Op::store_seq_cst:
        case Op::rmw:
        case Op::sync:  // futex / event wait and wake: conflicting on their word
            f.add(p, size, true);
            drains = true;
            break;
        case Op::fence:
            drains = true;
            break;
        case Op::global:
        default:
            f.global = true;
            break;
    }
    if (drains) {
        for (const Store& st : threads_[running_].buffer) f.add(st.addr, st.size, true);
    }
    next_op_[running_] = std::move(f);
    has_next_op_[running_] = 1;
}

void Scheduler::por_touch_global() {
    if (por_open_) events_.back().fp.global = true;
}

// A spinner checks whether what it read changed before it blocks: reads.
void Scheduler::por_touch_spin_reads() {
    if (!por_open_ || running_ < 0) return;
    for (const Store& r : threads_[running_].reads) events_.back().fp.add(r.addr, r.size, false);
}

// A thread's first step runs its code up to its first yield() and, with no
// choice there, the operation after it: all one step.
void Scheduler::por_fresh() {
    por_grow();
    if (por_open_ && has_next_op_[running_]) events_.back().fp.merge(next_op_[running_]);
    next_op_[running_] = {};
    has_next_op_[running_] = 0;
}

// A thread that yields without announcing its operation performs one the
// reduction does not know: dependent with everything.
void Scheduler::por_at_yield() {
    por_grow();
    if (!has_next_op_[running_]) {
        next_op_[running_] = {};
        next_op_[running_].global = true;
        has_next_op_[running_] = 1;
    }
}

void Scheduler::por_open(const Option& o) {
    por_grow();
    PorEvent ev{actor_of(o), {}, {}};
    flush_source_ = -1;
    if (o.kind == OptKind::flush) {
        const Store& st = threads_[o.thread].buffer.front();
        ev.fp.add(st.addr, st.size, true);
        if (!buffered_[o.thread].empty()) flush_source_ = buffered_[o.thread].front();
    } else if (o.kind == OptKind::run && has_next_op_[o.thread]) {
        ev.fp = std::move(next_op_[o.thread]);
        next_op_[o.thread] = {};
        has_next_op_[o.thread] = 0;
    }
    if (always_explored(o.kind)) ev.fp.global = true;
    ev.announced_acc = ev.fp.acc.size();
    ev.announced_global = ev.fp.global;
    states_at_open_.clear();
    for (const auto& t : threads_) states_at_open_.push_back(t.state);
    events_.push_back(std::move(ev));
    por_open_ = true;
}

void Scheduler::por_race(int actor, const Footprint& f, const std::vector<int>& clock,
                         std::vector<int>* deps) {
    std::vector<int> local;
    std::vector<int>& cands = deps != nullptr ? *deps : local;
    cands.clear();
    if (f.global) {
        // Dependent with every step: each actor's latest stands for its
        // earlier ones (they happen before it).
        for (int e : latest_event_) {
            if (e >= 0) cands.push_back(e);
        }
    } else {
        for (const auto& [g, w] : f.acc) {
            for (const PorCell& c : cells_) {
                if (c.granule != g) continue;
                if (c.last_write >= 0) cands.push_back(c.last_write);
                if (w) cands.insert(cands.end(), c.reads.begin(), c.reads.end());
            }
        }
        if (last_global_ >= 0) cands.push_back(last_global_);
    }
    int latest = -1;
    for (int j : cands) {
        const PorEvent& e = events_[j];
        if (e.actor == actor) continue;                            // program order
        if (at(clock, e.actor) >= at(e.clock, e.actor)) continue;  // happens before
        latest = std::max(latest, j);
    }
    if (latest >= 0) por_backtrack(static_cast<std::size_t>(latest), actor);
}

// The step in progress ends: it races with the latest conflicting step not
// ordered before it [FG05]; then the happens-before clocks and the per-granule
// tables take it in. Nothing after a sleep-set block is analysed: that run
// only finishes a schedule equivalent to one explored elsewhere.
void Scheduler::por_close() {
    if (!por_open_) return;
    por_open_ = false;
    por_grow();
    const int k = static_cast<int>(events_.size()) - 1;
    PorEvent& ev = events_[k];
    if (static_cast<std::size_t>(k) < trail_->size())
        (*trail_)[k].extras =
            ev.fp.acc.size() != ev.announced_acc || ev.fp.global != ev.announced_global;
    const int p = ev.actor;
    if (!por_blocked_) {
        std::vector<int> clock = actor_clock_[p];
        if (flush_source_ >= 0) join(clock, events_[flush_source_].clock);
        std::vector<int> deps;
        por_race(p, ev.fp, clock, &deps);
        std::vector<int> mine = clock;
        for (int j : deps) join(mine, events_[j].clock);
        if (mine.size() <= static_cast<std::size_t>(p)) mine.resize(p + 1, 0);
        mine[p] = std::max(mine[p], at(clock, p)) + 1;
        ev.clock = mine;
        actor_clock_[p] = mine;
        latest_event_[p] = k;
        for (const auto& [g, w] : ev.fp.acc) {
            auto it = std::find_if(cells_.begin(), cells_.end(),
                                   [&](const PorCell& c) { return c.granule == g; });
            if (it == cells_.end()) {
                cells_.push_back({g, -1, {}});
                it = cells_.end() - 1;
            }
            if (w) {
                it->last_write = k;
                it->reads.clear();
            } else {
                auto r = std::find_if(it->reads.begin(), it->reads.end(),
                                      [&](int j) { return events_[j].actor == p; });
                if (r != it->reads.end())
                    *r = k;
                else
                    it->reads.push_back(k);
            }
        }
        if (ev.fp.global) last_global_ = k;
        // A thread this step woke (a futex or event wake, a write that
        // changed what a spinner read) or started runs after it.
        for (std::size_t t = 0; t < threads_.size(); ++t) {
            if (static_cast<int>(2 * t) == p) continue;
            const bool woken =
                t >= states_at_open_.size() ||
                (states_at_open_[t] != State::runnable && states_at_open_[t] != State::finished &&
                 threads_[t].state == State::runnable);
            if (woken) join(actor_clock_[2 * t], mine);
        }
    }
    // Which step made each store still buffered (an F step happens after it).
    for (std::size_t t = 0; t < threads_.size(); ++t) {
        auto& b = buffered_[t];
        while (b.size() > threads_[t].buffer.size()) b.pop_front();
        while (b.size() < threads_[t].buffer.size()) b.push_back(k);
    }
}

// A new decision of the run: its sleep set (unbounded searches only), the
// first option not asleep, and the options always explored.
int Scheduler::por_new_decision(const std::vector<Option>& opts, Decision& d) {
    const std::size_t n = opts.size();
    d.opts = opts;
    d.todo.assign(n, 0);
    if (por_blocked_) {
        d.frozen = true;
        return 0;
    }
    const std::size_t k = decision_;
    if (config_.preemption_bound < 0 && k > 0) {
        // [God96] sleep sets: a transition explored from an earlier decision
        // (or asleep there) stays asleep while only steps independent of it
        // run; any order of the two is then covered by the one explored.
        const Decision& prev = (*trail_)[k - 1];
        const PorEvent& ev = events_[k - 1];
        for (const auto* set : {&prev.sleep, &prev.done}) {
            for (const Sleeper& s : *set) {
                if (actor_of(s.kind, s.thread) != ev.actor && !dependent(s.fp, ev.fp))
                    d.sleep.push_back(s);
            }
        }
    }
    por_refresh(d.sleep);
    int chosen = -1;
    for (std::size_t i = 0; i < n && chosen < 0; ++i) {
        if (!asleep(d, opts[i])) chosen = static_cast<int>(i);
    }
    if (chosen < 0) {  // every option asleep: this schedule is covered already
        por_blocked_ = true;
        d.frozen = true;
        return 0;
    }
    d.todo[chosen] = 2;
    for (std::size_t i = 0; i < n; ++i) {
        if (always_explored(opts[i].kind) && d.todo[i] == 0) d.todo[i] = 1;
    }
    return chosen;
}

// The footprints of a decision's sleeping and explored transitions, from the
// state this run is in at the decision: a thread's announced operation (it
// stays paused before it while others run), a buffer's oldest store.
void Scheduler::por_refresh(std::vector<Sleeper>& set) {
    for (Sleeper& s : set) {
        s.fp = {};
        const auto t = static_cast<std::size_t>(s.thread);
        if (s.extras || t >= threads_.size()) {
            s.fp.global = true;
        } else if (s.kind == OptKind::run && t < has_next_op_.size() && has_next_op_[t]) {
            s.fp = next_op_[t];
        } else if (s.kind == OptKind::flush && !threads_[t].buffer.empty()) {
            s.fp.add(threads_[t].buffer.front().addr, threads_[t].buffer.front().size, true);
        } else {
            s.fp.global = true;
        }
    }
}

void Scheduler::por_add(Decision& d, int actor) {
    if (d.frozen || d.todo.empty()) return;
    bool found = false;
    for (std::size_t i = 0; i < d.opts.size(); ++i) {
        if (actor_of(d.opts[i]) != actor) continue;
        found = true;
        if (d.todo[i] == 0) d.todo[i] = 1;
    }
    if (found) return;
    // The actor could not move there (blocked, not started, buffer empty):
    // every option, as [FG05] does.
    for (auto& t : d.todo) {
        if (t == 0) t = 1;
    }
}

// With a preemption bound, running `actor` at decision j may cost a
// preemption the bound no longer allows, where the unreduced search reaches
// an equivalent schedule through a switch made earlier. [CMM13] (and loom's
// path.rs) add the actor also at the latest earlier decision that switched
// away from the thread that ran: there every other choice costs what the
// one made did.
void Scheduler::por_backtrack(std::size_t j, int actor) {
    auto& trail = *trail_;
    por_add(trail[j], actor);
    if (config_.preemption_bound < 0) return;
    std::size_t c = 0;
    for (std::size_t i = j; i-- > 0;) {
        if (trail[i].switched) {
            c = i;
            break;
        }
    }
    if (c != j) por_add(trail[c], actor);
}

bool Scheduler::next_schedule(std::vector<Decision>& trail, const Config& config, long& pruned) {
    if (!reduces(config)) {
        // The unreduced search: the deepest decision with an affordable
        // alternative, in order.
        while (!trail.empty()) {
            Decision& d = trail.back();
            int next = d.chosen + 1;
            while (next < d.count && d.cost_before + d.costs[next] > config.preemption_bound)
                ++next;
            if (next < d.count) {
                d.chosen = next;
                return true;
            }
            trail.pop_back();
        }
        return false;
    }
    while (!trail.empty()) {
        Decision& d = trail.back();
        if (d.frozen || d.todo.empty()) {
            trail.pop_back();
            continue;
        }
        d.todo[d.chosen] = 2;
        if (config.preemption_bound < 0) {
            const Option& o = d.opts[d.chosen];
            d.done.push_back({o.kind, o.thread, d.extras});
        }
        for (int i = 0; i < d.count; ++i) {
            if (d.todo[i] != 1 || !affordable(d, i, config)) continue;
            if (asleep(d, d.opts[i])) {
                d.todo[i] = 2;
                ++pruned;
                continue;
            }
            d.chosen = i;
            return true;
        }
        for (int i = 0; i < d.count; ++i) {
            if (d.todo[i] == 0 && affordable(d, i, config)) ++pruned;
        }
        trail.pop_back();
    }
    return false;
}

}  // namespace kmlab::explore::internal
