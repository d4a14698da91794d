// The explorer's choices: which options a step offers and what each costs in
// preemptions, and how one is picked, forced by a replayed schedule, from the
// depth-first search's trail of decisions, or by PCT's random priorities
// [Burckhardt et al., ASPLOS 2010]. explore() (explorer.cpp) backtracks the
// trail between runs.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "explorer_internal.hpp"

namespace kmlab::explore::internal {

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
            trail.push_back(std::move(d));
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

}  // namespace kmlab::explore::internal
