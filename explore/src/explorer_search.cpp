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
// 4-byte granule and one writes it, or if either is "global". What a step
// touches is what it did, where that is less than announced (por_refine):
// an RMW that wrote nothing or the value there is a read; a futex wait
// reads its word and joins the word's queue (a granule of its own,
// queue_of) only if it sleeps; a wake writes the queue if it woke someone,
// else reads it. Under TSO a plain store is no access at all (it enters
// the own buffer) and its F step writes; whatever drains a buffer writes
// each buffered location; a membarrier drains every buffer. destroy()
// writes its range. Global: a spurious wake, a spawn, an operation that
// yields unannounced, any choice kind not known here (another mode's, e.g. a
// reads-from choice), and in a bounded search a timeout, a deadline check
// and its answer. A thread that a step wakes (futex, event, a write a
// spinner read) or starts is ordered after it; an F step after the step
// that made its store.
//
// Algorithm: dynamic partial-order reduction [FG05: Flanagan & Godefroid,
// POPL 2005] over the stateless depth-first search. Each run keeps vector
// clocks of the happens-before order; when a step ends (por_close), each
// earlier step of another actor that conflicts with it and does not happen
// before its actor is a race, to be reversed by exploring another option at
// the choice before that step (Decision::todo). Because a buffered store may
// never be an F step of its own in a bounded search (its thread drains it),
// every F option offered at a choice is analysed there too, as [FG05] does
// every enabled transition; so is every timeout in an unbounded search.
//
// Without a bound (preemption_bound < 0), the search is [AAJS14: Abdulla,
// Aronis, Jonsson & Sagonas, POPL 2014]'s source-set DPOR with sleep sets
// [Godefroid 1996]: a race adds one initial of the steps that must move
// (por_add_initial), unless one is explored, queued or asleep there; a
// transition explored from a choice stays asleep below its later siblings
// while only steps independent of it run, and a run whose every option is
// asleep (a sleep-set block) is finished without analysis or alternatives
// (counted as a schedule run, and in Result::schedules_redundant). Every
// run makes its program anew, at other addresses, so sleeping transitions
// take their footprints from the run in progress (por_refresh): the
// operation their thread announced, their buffer's oldest store; one that
// did more than that when it ran counts as global. Four rules make the
// unbounded search smaller without losing a run it must make:
// - threads are primed (run_once): each runs to its first operation before
//   the first choice, so a thread's first step has a footprint;
// - a draining operation waits for F steps to empty the buffers it drains
//   (drain_blocked), so every store reaches memory in an F step, never
//   inside another step (which made the same trace twice, and hid the value
//   of a drained store from a spinner that had to read it);
// - a timeout is the waiting thread's transition, dependent with what would
//   have woken it; a wake that disables it races with it (por_close);
// - a failed spin iteration is a stutter (por_spin_failed).
//
// What is guaranteed. Without a bound: every Mazurkiewicz trace of the
// program (under the dependency above, and counting a failed spin iteration
// as no step) has a schedule that runs, so every deadlock, failed check,
// destroyed-memory access and final-state violation the unreduced search
// could find is found ([AAJS14], over executions that all end: every run
// here ends, or is a violation or the step limit).
// tests/model/model_dpor_test.cpp checks it against the unreduced search:
// the same outcomes of litmus programs, every order in which threads take
// each lock, and every must-find mutant. With a bound: [CMM13: Coons,
// Musuvathi & McKinley, OOPSLA 2013] show that pruning with the bound
// naively loses traces the bounded search reaches; like their BPOR (and
// loom's path.rs) a race adds its actor at the latest race and at the latest
// earlier choice that switched threads, where it costs no more than the
// choice made; no sleep sets, and a step that drained a buffer also adds
// that buffer's F step before it. Their proof counts thread preemptions;
// this explorer also charges F, X, W and D choices: X, W, D are never
// pruned, an F step is an actor like a thread. So with a bound the
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
// would): a spurious wake is the kernel acting, not a thread's operation; a
// deadline answer is a choice of one thread alone, with no other option to
// race with; and any kind this file does not know (a kind added later; the
// reads-from choice R is one). A timeout too, in a bounded search; without
// a bound it is the blocked thread's transition like any other
// (Scheduler::unbounded_search).
bool always_explored(OptKind kind, bool unbounded) {
    if (kind == OptKind::timeout) return !unbounded;
    return kind != OptKind::run && kind != OptKind::flush;
}
// Steps the reduction takes as dependent with everything: a spurious wake,
// an unknown kind; a timeout and a deadline answer in a bounded search
// (where they are time passing, as they were before the unbounded search
// gave them footprints: the bounded reduction is checked as it stands).
bool global_step(OptKind kind, bool unbounded) {
    if (kind == OptKind::timeout || kind == OptKind::deadline) return !unbounded;
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
    auto can_run = [&](int i) { return threads_[i].state == State::runnable && !drain_blocked(i); };
    const bool cur_runnable = can_run(current_);
    const int alt = cur_runnable ? 1 : 0;
    if (cur_runnable) opts.push_back({OptKind::run, current_, 0});
    for (int k = 1; k <= n; ++k) {
        const int i = (current_ + k) % n;
        if (i != current_ && can_run(i)) opts.push_back({OptKind::run, i, alt});
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
            if (o.kind == OptKind::timeout && unbounded_search()) {
                // Likewise a timeout: a run may wake its thread instead.
                por_race(2 * o.thread, timeout_footprint(o.thread), actor_clock_[2 * o.thread]);
                continue;
            }
            if (o.kind != OptKind::flush) continue;
            const Footprint f = flush_footprint(o.thread);
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
    spin_from_.clear();
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
    next_drains_.resize(n, 0);
    buffered_.resize(n);
    spin_from_.resize(n, -1);
    actor_clock_.resize(2 * n);
    latest_event_.resize(2 * n, -1);
}

// What the operation after the running thread's next yield() touches.
// Under TSO a plain store only enters the thread's own buffer (its F step
// makes it visible, and conflicts then); whatever drains a buffer writes
// every buffered store's location: op_footprint adds them from the buffers
// as they are when the footprint is read (F steps may empty them first).
void Scheduler::por_announce(Op op, const void* p, std::size_t size) {
    if (running_ < 0) return;
    por_grow();
    Footprint f;
    bool drains = false;
    char drained = 0;
    switch (op) {
        case Op::load:
            f.add(p, size, false);
            break;
        case Op::store:
            if (config_.memory != Memory::tso)
                f.add(p, size, true);
            else if (unbounded_search())
                f.add(buffer_of(running_), 1, false);
            break;
        case Op::store_seq_cst:
        case Op::rmw:
            f.add(p, size, true);
            drains = true;
            break;
        case Op::sync:  // futex / event wait and wake: their word and its queue
            f.add(p, size, true);
            f.add(queue_of(p), 1, true);
            drains = true;
            break;
        case Op::fence:
            drains = true;
            break;
        case Op::fence_all:  // a membarrier: every buffer drains, nothing else
            drained = 2;
            break;
        case Op::time:  // "has my deadline passed?": no memory; in a bounded search, global
            f.global = !unbounded_search();
            break;
        case Op::global:
        default:
            f.global = true;
            break;
    }
    if (drains) drained = 1;
    next_op_[running_] = std::move(f);
    has_next_op_[running_] = 1;
    next_drains_[running_] = drained;
}

// Thread t's announced operation, with the stores it would drain now (and,
// for a membarrier in an unbounded search, every buffer's granule).
Footprint Scheduler::op_footprint(int t) const {
    const auto i = static_cast<std::size_t>(t);
    Footprint f = next_op_[i];
    for (std::size_t u = 0; u < threads_.size(); ++u) {
        if (next_drains_[i] == 2 || (next_drains_[i] == 1 && u == i)) {
            for (const Store& st : threads_[u].buffer) f.add(st.addr, st.size, true);
        }
        if (next_drains_[i] == 2 && unbounded_search())
            f.add(buffer_of(static_cast<int>(u)), 1, true);
    }
    return f;
}

// Thread t's F step: its oldest store (and its buffer's granule).
Footprint Scheduler::flush_footprint(int t) const {
    Footprint f;
    const Store& st = threads_[static_cast<std::size_t>(t)].buffer.front();
    f.add(st.addr, st.size, true);
    if (unbounded_search()) f.add(buffer_of(t), 1, false);
    return f;
}

void Scheduler::por_touch_global() {
    if (!por_open_) return;
    events_.back().fp.global = true;
    events_.back().extras = true;
}

// A spinner checks whether what it read changed before it blocks: reads.
void Scheduler::por_touch_spin_reads() {
    if (!por_open_ || running_ < 0) return;
    PorEvent& ev = events_.back();
    const std::size_t before = ev.fp.acc.size();
    for (const Store& r : threads_[running_].reads) ev.fp.add(r.addr, r.size, false);
    if (ev.fp.acc.size() != before) ev.extras = true;
}

// A spin iteration that fails (spin_wait: what it read says "not yet") is a
// stutter: it wrote nothing, and its thread goes on as if it had not run (it
// checks again once memory it read changes). Without a bound its reads are
// taken out of the per-granule tables, so no later write races with them:
// reversing such a race would only make the spinner read the write's value
// in that iteration instead of the next, which the run already does (the
// write wakes it, and its next check reads the value then, racing with any
// write in between). The iteration's races with earlier writes were taken
// when its steps ended: the spinner may read an older value, and succeed.
// GenMC's spin-assume (a side-effect-free spin loop becomes an assume of its
// exit condition; [KMV23: Kokologiannakis, Marmanis & Vafeiadis, "Unblocking
// dynamic partial order reduction", CAV 2023] builds on it) makes the same
// reduction. An iteration that wrote anything (a step of
// its thread since the iteration began wrote, or was global) is not touched.
void Scheduler::por_spin_begin() {
    if (!por_open_ || running_ < 0 || !unbounded_search()) return;
    por_grow();
    spin_from_[static_cast<std::size_t>(running_)] = static_cast<int>(events_.size()) - 1;
}

void Scheduler::por_spin_failed() {
    if (!por_open_ || running_ < 0 || !unbounded_search() || por_blocked_) return;
    const int p = 2 * running_;
    const int k = static_cast<int>(events_.size()) - 1;
    int& from = spin_from_[static_cast<std::size_t>(running_)];
    if (from < 0 || events_[k].actor != p) return;
    std::vector<int> mine;
    for (int i = from + 1; i <= k; ++i) {
        if (events_[i].actor != p) continue;
        const Footprint& f = events_[i].fp;
        if (f.global) return;
        for (const auto& [g, w] : f.acc) {
            if (w) return;
        }
        mine.push_back(i);
    }
    if (mine.empty() || mine.back() != k) return;
    for (PorCell& c : cells_) {
        std::erase_if(c.reads,
                      [&](int j) { return std::find(mine.begin(), mine.end(), j) != mine.end(); });
    }
    events_[k].stutter = true;  // its reads stay out of the tables when it ends
    from = k;                   // the next iteration starts after this step
}

// Freeing memory writes it (any later access conflicts; accesses elsewhere
// do not), after the thread's buffer drains.
void Scheduler::por_touch_write(const void* p, std::size_t size) {
    if (!por_open_ || running_ < 0) return;
    PorEvent& ev = events_.back();
    ev.fp.add(p, size, true);
    for (const Store& st : threads_[running_].buffer) ev.fp.add(st.addr, st.size, true);
    ev.extras = true;
}

bool Scheduler::buffered_in(const void* p, std::size_t size) const {
    if (running_ < 0) return false;
    const auto a = reinterpret_cast<std::uintptr_t>(p) / kGranule;
    const auto b =
        (reinterpret_cast<std::uintptr_t>(p) + std::max<std::size_t>(size, 1) - 1) / kGranule;
    for (const Store& st : threads_[running_].buffer) {
        const auto lo = reinterpret_cast<std::uintptr_t>(st.addr) / kGranule;
        const auto hi = (reinterpret_cast<std::uintptr_t>(st.addr) + st.size - 1) / kGranule;
        if (lo <= b && a <= hi) return true;
    }
    return false;
}

// Less than announced: an operation's effect is known only once it ran (an
// RMW whose update keeps the value, a failed compare-exchange, a futex_wait
// whose word moved, a wake with nobody to wake). Narrowing the step's
// footprint to what it did is sound for the race analysis, which reads the
// run that happened: two steps whose actual accesses commute reach the same
// state in either order, and each still does what it did (an RMW that found
// the value it keeps finds it again after a step that does not write there;
// a wake that found no sleeper finds none after a step that does not touch
// the queue). A sleeping transition keeps its announced footprint
// (por_refresh): what it may do, whatever it finds. Only the granules of
// [p, p + size) change, so whatever else the step touched keeps its access;
// the caller passes only granules its own buffered stores do not reach
// (buffered_in), since draining them wrote there.
void Scheduler::por_refine(const void* p, std::size_t size, bool untouched) {
    if (!por_open_ || running_ < 0 || events_.back().actor != 2 * running_) return;
    Footprint& fp = events_.back().fp;
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t lo = a / kGranule,
                         hi = (a + std::max<std::size_t>(size, 1) - 1) / kGranule;
    if (untouched) {
        std::erase_if(fp.acc, [&](const auto& x) { return x.first >= lo && x.first <= hi; });
        return;
    }
    for (auto& [g, w] : fp.acc) {
        if (g >= lo && g <= hi) w = false;
    }
}

// A thread's first step runs its code up to its first yield() and, with no
// choice there, the operation after it: all one step.
void Scheduler::por_fresh() {
    por_grow();
    if (por_open_ && has_next_op_[running_]) {
        events_.back().fp.merge(op_footprint(running_));
        events_.back().extras = true;
    }
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
        next_drains_[running_] = 0;
    }
}

void Scheduler::por_open(const Option& o) {
    por_grow();
    PorEvent ev{actor_of(o), {}, {}};
    flush_source_ = -1;
    if (o.kind == OptKind::flush) {
        ev.fp = flush_footprint(o.thread);
        if (!buffered_[o.thread].empty()) flush_source_ = buffered_[o.thread].front();
    } else if (o.kind == OptKind::run && has_next_op_[o.thread]) {
        ev.fp = op_footprint(o.thread);
        ev.drains = next_drains_[o.thread];
        next_op_[o.thread] = {};
        has_next_op_[o.thread] = 0;
        // Draining a buffer writes its stores as its F steps would: a step
        // that races with such a store may need the F step first, alone
        // (por_race), which this step's thread never made.
        for (std::size_t t = 0; t < threads_.size(); ++t) {
            const bool mine = static_cast<int>(t) == o.thread;
            if (threads_[t].buffer.empty() ||
                !(next_drains_[o.thread] == 2 || (next_drains_[o.thread] == 1 && mine)))
                continue;
            Footprint stores;
            for (const Store& st : threads_[t].buffer) stores.add(st.addr, st.size, true);
            ev.drained.emplace_back(static_cast<int>(2 * t + 1), std::move(stores));
        }
        next_drains_[o.thread] = 0;
    } else if (o.kind == OptKind::timeout && unbounded_search()) {
        ev.fp = timeout_footprint(o.thread);
    }
    if (global_step(o.kind, unbounded_search())) ev.fp.global = true;
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
    std::vector<int> races;
    for (int j : cands) {
        const PorEvent& e = events_[j];
        if (e.actor == actor) continue;                            // program order
        if (at(clock, e.actor) >= at(e.clock, e.actor)) continue;  // happens before
        latest = std::max(latest, j);
        if (std::find(races.begin(), races.end(), j) == races.end()) races.push_back(j);
    }
    if (latest < 0) return;
    if (unbounded_search()) {
        // Source sets: every race, each reversed through an initial of its
        // own v (por_add_initial), with this step's clock as it will be.
        std::vector<int> prospective = clock;
        for (int j : cands) join(prospective, events_[j].clock);
        for (int j : races) por_add_initial(static_cast<std::size_t>(j), actor, prospective);
        return;
    }
    por_backtrack(static_cast<std::size_t>(latest), actor);
    // That step drained buffers: their F steps alone, before it, are the
    // other way to order what it wrote with this step (a spinner reads a
    // drained store's value before the RMW that drained it writes over it).
    for (const auto& [f_actor, stores] : events_[latest].drained) {
        if (f_actor != actor && dependent(stores, f))
            por_backtrack(static_cast<std::size_t>(latest), f_actor);
    }
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
    if (static_cast<std::size_t>(k) < trail_->size()) (*trail_)[k].extras = ev.extras;
    const int p = ev.actor;
    if (!por_blocked_) {
        std::vector<int> clock = actor_clock_[p];
        if (flush_source_ >= 0) join(clock, events_[flush_source_].clock);
        // Without a bound an operation that drains waits for its buffers
        // (drain_blocked): every F step of those buffers so far happens
        // before it, as surely as its thread's own earlier steps do.
        // (A membarrier is ordered after other buffers' F steps by the
        // buffer granules it writes instead: a membarrier is enabled again
        // by an F step, but a store that came after it in the run need not
        // have; joining every F actor ordered it after such stores too, and
        // no race ever put the membarrier first.)
        if (unbounded_search() && ev.drains == 1 && p % 2 == 0) join(clock, actor_clock_[p + 1]);
        std::vector<int> deps;
        por_race(p, ev.fp, clock, &deps);
        std::vector<int> mine = clock;
        for (int j : deps) join(mine, events_[j].clock);
        if (mine.size() <= static_cast<std::size_t>(p)) mine.resize(p + 1, 0);
        mine[p] = std::max(mine[p], at(clock, p)) + 1;
        ev.clock = mine;
        actor_clock_[p] = mine;
        // A step that touched nothing (a deadline answer, a wake-up's
        // resumption) commutes with every step, a global one too: it does
        // not stand for its actor's earlier steps (por_race), which would
        // put a race at a choice where only its thread has options.
        if (ev.fp.global || !ev.fp.acc.empty()) latest_event_[p] = k;
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
            } else if (!ev.stutter) {
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
            // Waking a thread that waited with a deadline disabled its
            // timeout, which was an option here: the two race.
            if (woken && unbounded_search() && t < states_at_open_.size() &&
                threads_[t].has_deadline && static_cast<std::size_t>(k) < trail_->size())
                por_add((*trail_)[k], static_cast<int>(2 * t));
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
        if (always_explored(opts[i].kind, unbounded_search()) && d.todo[i] == 0) d.todo[i] = 1;
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
            s.fp = op_footprint(s.thread);
        } else if (s.kind == OptKind::flush && !threads_[t].buffer.empty()) {
            s.fp = flush_footprint(s.thread);
        } else if (s.kind == OptKind::timeout && unbounded_search()) {
            s.fp = timeout_footprint(s.thread);
        } else {
            s.fp.global = true;
        }
    }
}

// In an unbounded reduced search a thread whose next operation drains
// buffers (an RMW, a fence, a seq_cst store, a futex or event call, its end;
// a membarrier: every buffer) waits until they are empty, and F steps drain
// them. x86 lets other threads act between the drain's stores as between F
// steps, so the runs are the same; but every store then reaches memory in an
// F step of its own, where a drain inside a step would make the same trace a
// second time (F0 F0 T0 against T0 draining both) and a spinner that must
// read a drained store before the RMW writes over it would need that F step
// split out (por_race's `drained`, which bounded searches keep).
bool Scheduler::drain_blocked(int i) const {
    if (!por_ || !unbounded_search()) return false;
    const auto t = static_cast<std::size_t>(i);
    if (t >= has_next_op_.size() || !has_next_op_[t] || next_drains_[t] == 0) return false;
    if (next_drains_[t] == 1) return !threads_[t].buffer.empty();
    return std::any_of(threads_.begin(), threads_.end(),
                       [](const Thread& x) { return !x.buffer.empty(); });
}

// The rules that only an unbounded search takes (the file's header lists
// them); a bounded one keeps [CMM13]'s, as checked against the bounded
// unreduced search.
bool Scheduler::unbounded_search() const {
    return config_.preemption_bound < 0;
}

// Without a bound a timeout is its thread's transition (actor 2i), with what
// it touches: a futex sleeper leaves the word's queue (a wake of that queue
// and it are dependent: one disables the other); a spinner stops waiting for
// the memory it read (a write there would have woken it instead). With a
// bound it stays what it was: explored at every choice that offers it, and
// dependent with everything.

Footprint Scheduler::timeout_footprint(int thread) const {
    Footprint f;
    const Thread& t = threads_[static_cast<std::size_t>(thread)];
    if (t.state == State::futex) {
        f.add(queue_of(t.wait_addr), 1, true);
    } else if (t.state == State::spin && !t.reads.empty()) {
        for (const Store& r : t.reads) f.add(r.addr, r.size, false);
    } else {
        f.global = true;
    }
    return f;
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

// Without a bound: source sets [AAJS14: Abdulla, Aronis, Jonsson & Sagonas,
// POPL 2014]. To reverse the race of step j with the step in progress (or an
// enabled F or timeout not yet run), v is the run's steps after j that do not
// happen after step j, then the racing step (`clock`: its happens-before
// clock). Any of v's initials (a step of v that no other step of v happens
// before) can go first at j and start a run that reverses the race, so one
// is enough, and none is added if one is explored, queued or asleep at j
// already (asleep: its runs from j are covered by those of the decision
// that put it to sleep). [FG05]'s rule instead adds the racing actor if it
// can move at j; with sleep sets that loses runs: in
//   T0: x = 1; r = y     T1: y = 1; r = x     T2: r = x; r = y
// the run T2 rx, T2 ry, T0 wx, T0 ry, T1 wy races T1's wy with T2's ry, and
// T1 is asleep after T2 rx (its wy was explored first); the run T2 rx,
// T0 wx, T0 ry, T1 wy, T2 ry (T2 reads x = 0, y = 1; T0 reads y = 0) needs
// T0 there, v's one initial (ModelDpor.UnboundedReductionObservesEveryOutcome
// failed so, once threads' first steps were no longer global).
// An initial's actor has an option at j: a thread woken after j, or a store
// buffered after j, happens after step j. Where none has one (not expected),
// every option, as [FG05].
void Scheduler::por_add_initial(std::size_t j, int actor, const std::vector<int>& clock) {
    Decision& d = (*trail_)[j];
    if (d.frozen || d.todo.empty()) return;
    // Step b's clock, b < events_.size(); the step in progress has none yet.
    auto hb = [&](std::size_t a, const std::vector<int>& b_clock) {
        const PorEvent& ea = events_[a];
        return at(b_clock, ea.actor) >= at(ea.clock, ea.actor);
    };
    std::vector<std::size_t> v;
    int pick = -1;
    auto consider = [&](int who, bool initial) {  // false: covered at j
        if (!initial) return true;
        for (std::size_t o = 0; o < d.opts.size(); ++o) {
            if (actor_of(d.opts[o]) != who) continue;
            if (d.todo[o] != 0 || asleep(d, d.opts[o])) return false;
            if (pick < 0) pick = static_cast<int>(o);
        }
        return true;
    };
    for (std::size_t i = j + 1; i < events_.size(); ++i) {
        if (events_[i].clock.empty()) continue;  // the step in progress: last, below
        if (hb(j, events_[i].clock)) continue;
        bool initial = true;
        for (std::size_t x : v) initial = initial && !hb(x, events_[i].clock);
        v.push_back(i);
        if (!consider(events_[i].actor, initial)) return;
    }
    bool initial = true;
    for (std::size_t x : v) initial = initial && !hb(x, clock);
    if (!consider(actor, initial)) return;
    if (pick >= 0) {
        d.todo[static_cast<std::size_t>(pick)] = 1;
        return;
    }
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
