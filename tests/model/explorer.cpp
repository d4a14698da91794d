// The schedule explorer's scheduler, fibers and memory model (explorer.hpp
// says what is modelled and why).
#include "explorer.hpp"

#include <setjmp.h>
#include <ucontext.h>

#include <csetjmp>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>

// Sanitizers must be told about fiber switches, or they take the new stack for
// a corrupted one (ASan) or every fiber for one thread (TSan).
#if defined(__SANITIZE_ADDRESS__)
#define KMLAB_MODEL_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define KMLAB_MODEL_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KMLAB_MODEL_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define KMLAB_MODEL_TSAN 1
#endif
#endif
#if KMLAB_MODEL_ASAN
extern "C" void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom,
                                               std::size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                                std::size_t* size_old);
#endif
#if KMLAB_MODEL_TSAN
extern "C" void* __tsan_get_current_fiber();
extern "C" void* __tsan_create_fiber(unsigned flags);
extern "C" void __tsan_destroy_fiber(void* fiber);
extern "C" void __tsan_switch_to_fiber(void* fiber, unsigned flags);
#endif

namespace kmlab::model {

namespace {

// Unwinds a fiber's run when the run ends early (violation, deadlock): the
// fiber is simply never resumed, so nothing is thrown across a context switch.
constexpr std::size_t kStackSize = 256 * 1024;

struct Store {
    void* addr;
    std::size_t size;
    std::uint64_t bits;
};

enum class State { runnable, futex, spin, event, finished };

struct Thread {
    State state = State::runnable;
    const void* wait_addr = nullptr;
    bool has_deadline = false;
    bool timed_out = false;
    std::uint64_t wait_seq = 0;  // FIFO order of futex / event waiters
    std::deque<Store> buffer;    // TSO store buffer, oldest first
    std::vector<Store> reads;    // what a spinner read since it began spinning
    ucontext_t ctx{};
    std::unique_ptr<char[]> stack;
    std::function<void()> body;
    bool started = false;
    bool fresh = false;
    bool others_progressed = true;          // since this thread's last timeout
    std::vector<std::vector<char>> locals;  // its copies of Config::fiber_locals
#if !(KMLAB_MODEL_ASAN || KMLAB_MODEL_TSAN)
    std::jmp_buf jb;
#endif
#if KMLAB_MODEL_TSAN
    void* tsan_fiber = nullptr;
#endif
};

enum class OptKind : char { run = 'T', timeout = 'X', flush = 'F' };
struct Option {
    OptKind kind;
    int thread;
    int cost = 0;  // preemptions this choice spends
    std::string name() const {
        return std::string(1, static_cast<char>(kind)) + std::to_string(thread);
    }
};

struct Decision {
    int chosen;
    int count;
    int cost_before;          // preemptions spent before this decision
    std::vector<char> costs;  // of each option
};

struct RunAbort {};

class Scheduler;
Scheduler* g_sched = nullptr;  // the scheduler of the run in progress
HeavyFence g_heavy_fence = HeavyFence::exact;

class Scheduler {
  public:
    Scheduler(const Config& c) : config_(c), rng_(c.seed) {}

    // ---- one run ----
    bool run_once(const Program& program, std::vector<Decision>& trail,
                  std::vector<std::string>* forced, bool tracing) {
        threads_.clear();
        threads_.resize(program.threads.size());
        destroyed_.clear();
        labels_.clear();
        steps_ = 0;
        cost_ = 0;
        seq_ = 0;
        current_ = 0;
        schedule_.clear();
        trace_.clear();
        tracing_ = tracing;
        violation_.clear();
        trail_ = &trail;
        forced_ = forced;
        decision_ = 0;
        has_pending_ = false;
        if (config_.random) pct_setup();

        for (std::size_t i = 0; i < threads_.size(); ++i) {
            Thread& t = threads_[i];
            t.body = program.threads[i];
            t.stack.reset(new char[kStackSize]);
            getcontext(&t.ctx);
            t.ctx.uc_stack.ss_sp = t.stack.get();
            t.ctx.uc_stack.ss_size = kStackSize;
            t.ctx.uc_link = nullptr;
            makecontext(&t.ctx, &Scheduler::trampoline, 0);
#if KMLAB_MODEL_TSAN
            t.tsan_fiber = __tsan_create_fiber(0);
#endif
        }
        g_sched = this;
        running_ = -1;
        bool ok = loop();
        if (ok) {
            for (std::size_t i = 0; i < threads_.size(); ++i) drain(static_cast<int>(i), 0);
            ok = violation_.empty();
        }
        if (ok) {
            if (program.check) {
                const std::string what = program.check();
                if (!what.empty()) {
                    violation_ = "final check: " + what;
                    ok = false;
                }
            }
        }
        g_sched = nullptr;
#if KMLAB_MODEL_TSAN
        for (auto& t : threads_) __tsan_destroy_fiber(t.tsan_fiber);
#endif
        return ok;
    }

    const std::string& violation() const {
        return violation_;
    }
    std::string schedule() const {
        std::ostringstream o;
        for (std::size_t i = 0; i < schedule_.size();) {
            std::size_t j = i;
            while (j < schedule_.size() && schedule_[j] == schedule_[i]) ++j;
            if (i) o << ' ';
            o << schedule_[i];
            if (j - i > 1) o << '*' << (j - i);
            i = j;
        }
        return o.str();
    }
    std::string trace(std::size_t last) const {
        std::ostringstream o;
        const std::size_t from = trace_.size() > last ? trace_.size() - last : 0;
        if (from) o << "  ... " << from << " earlier operations\n";
        for (std::size_t i = from; i < trace_.size(); ++i) o << "  " << trace_[i] << '\n';
        return o.str();
    }
    long steps() const {
        return steps_;
    }

    // ---- called from model threads ----
    int current() const {
        return running_;
    }

    // Before a shared-memory operation: hand control to the scheduler.
    void yield() {
        if (running_ < 0) return;
        step();
    }
    // Ending a run leaves the fibers' stacks as they are (see end_run), so
    // nothing on them may own heap memory at that point: the message is
    // built into violation_ in a statement of its own first.
    [[noreturn]] void fail(const char* what) {
        if (violation_.empty()) violation_ = "T" + std::to_string(running_) + ": " + what;
        end_run();
    }

    void check_alive(const void* p, std::size_t size) {
        for (const auto& [lo, hi] : destroyed_) {
            const auto a = reinterpret_cast<std::uintptr_t>(p);
            if (a < hi && a + size > lo) {
                violation_ =
                    "T" + std::to_string(running_) + ": access to destroyed memory at " + where(p);
                end_run();
            }
        }
    }

    void load(const void* p, void* out, std::size_t size) {
        yield();
        check_alive(p, size);
        if (running_ >= 0) {
            auto& buf = threads_[running_].buffer;
            for (auto it = buf.rbegin(); it != buf.rend(); ++it) {
                if (it->addr == p) {
                    std::memcpy(out, &it->bits, size);
                    note("load " + where(p) + " = " + show(out, size) + " (own buffer)");
                    return;
                }
            }
        }
        std::memcpy(out, p, size);
        note("load " + where(p) + " = " + show(out, size));
        remember_read(p, out, size);
    }
    void store(void* p, const void* in, std::size_t size, bool seq_cst) {
        yield();
        check_alive(p, size);
        if (running_ >= 0 && config_.memory == Memory::tso) {
            Store s{p, size, 0};
            std::memcpy(&s.bits, in, size);
            threads_[running_].buffer.push_back(s);
            note("store " + where(p) + " := " + show(in, size) +
                 (seq_cst ? " (seq_cst)" : " (buffered)"));
            if (seq_cst) drain(running_, 0);
            return;
        }
        std::memcpy(p, in, size);
        note("store " + where(p) + " := " + show(in, size));
        memory_written();
    }
    void rmw(void* p, void* old, void* out, std::size_t size,
             const std::function<bool(const void*, void*)>& update, const char* what) {
        yield();
        check_alive(p, size);
        if (running_ >= 0) drain(running_, 0);
        std::memcpy(old, p, size);
        const bool write = update(old, out);
        if (write) {
            std::memcpy(p, out, size);
            memory_written();
        } else if (running_ >= 0) {
            remember_read(p, old, size);
        }
        note(std::string(what) + " " + where(p) + " " + show(old, size) +
             (write ? " -> " + show(out, size) : " (no write)"));
    }
    void fence(bool all) {
        yield();
        if (running_ < 0) return;
        if (all) {
            for (std::size_t i = 0; i < threads_.size(); ++i) drain(static_cast<int>(i), 0);
        } else {
            drain(running_, 0);
        }
        note(all ? "membarrier (every buffer drained)" : "fence");
    }
    bool futex_wait(const void* p, std::uint32_t expected, bool has_deadline) {
        yield();
        check_alive(p, 4);
        drain(running_, 0);
        std::uint32_t v;
        std::memcpy(&v, p, 4);
        if (v != expected) {
            note("futex_wait " + where(p) + ": value " + std::to_string(v) +
                 " != " + std::to_string(expected) + ", returns");
            return true;
        }
        note("futex_wait " + where(p) + " (value " + std::to_string(v) + ")" +
             (has_deadline ? " with deadline" : "") + ": sleeps");
        return block(State::futex, p, has_deadline);
    }
    void futex_wake(const void* p, int count) {
        yield();
        drain(running_, 0);
        int woken = wake(State::futex, p, count);
        note("futex_wake " + where(p) + ": woke " + std::to_string(woken));
    }
    // A spinner sleeps until memory it read while deciding to spin holds
    // another value: spinning on unchanged memory changes nothing, so
    // schedules that only re-run the check are not worth exploring, and a
    // spinner nobody will release is reported as a deadlock.
    bool spin_wait(bool has_deadline) {
        Thread& t = threads_[running_];
        // A write between two of the reads made them stale already: check
        // again at once rather than wait for a write that may never come.
        bool stale = false;
        for (const Store& r : t.reads) stale = stale || std::memcmp(r.addr, &r.bits, r.size) != 0;
        if (stale) {
            t.reads.clear();
            note("spins: memory already changed, checks again");
            return true;
        }
        note(std::string("spins") + (has_deadline ? " with deadline" : ""));
        const bool ok = block(State::spin, nullptr, has_deadline);
        threads_[running_].reads.clear();
        return ok;
    }
    void spin_begin() {
        if (running_ >= 0) threads_[running_].reads.clear();
    }
    void event_wait(const void* e) {
        yield();
        check_alive(e, 1);
        drain(running_, 0);
        auto* signalled =
            static_cast<bool*>(const_cast<void*>(e));  // EventGate::signalled is its first member
        if (*signalled) {
            *signalled = false;
            note("event_wait " + where(e) + ": signalled, consumed");
            return;
        }
        note("event_wait " + where(e) + ": sleeps");
        block(State::event, e, false);
    }
    void event_signal(const void* e, bool* signalled) {
        yield();
        check_alive(e, 1);
        drain(running_, 0);
        if (wake(State::event, e, 1) == 1) {
            note("event_signal " + where(e) + ": woke a waiter");
        } else {
            *signalled = true;
            note("event_signal " + where(e) + ": set");
        }
    }
    // Freeing memory orders the thread's own earlier stores before it (the
    // allocator makes locked operations): its buffer drains first.
    void destroy(const void* p, std::size_t size) {
        if (running_ >= 0) drain(running_, 0);
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        destroyed_.emplace_back(a, a + size);
        note("destroys " + where(p));
    }
    void label(const void* p, std::size_t size, const char* name) {
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        labels_.push_back({a, a + size, name});
    }

  private:
    struct Label {
        std::uintptr_t lo, hi;
        std::string name;
    };

    static void trampoline() {
        Scheduler* s = g_sched;
        s->resumed(nullptr);
        // The scheduler chose this fiber for its first operation already.
        s->threads_[s->running_].fresh = true;
        try {
            s->threads_[s->running_].body();
        } catch (const std::exception& e) {
            s->violation_ = "T" + std::to_string(s->running_) + ": exception: " + e.what();
        }
        if (!s->violation_.empty()) s->end_run();
        s->finish_thread();
    }

    // A finished thread's stores may still sit in its buffer: they drain at
    // a scheduling choice, as everybody's do.
    [[noreturn]] void finish_thread() {
        Thread& t = threads_[running_];
        t.state = State::finished;
        note("ends");
        leave_fiber(true);
    }

    // A run that ends early leaves its fibers where they are: they are never
    // resumed, and their stacks are reused by the next run. (Nothing may be
    // thrown across a context switch.)
    [[noreturn]] void end_run() {
        leave_fiber(true);
    }

    [[noreturn]] void leave_fiber(bool) {
        Thread& t = threads_[running_];
#if KMLAB_MODEL_TSAN
        __tsan_switch_to_fiber(main_tsan_, 0);
#endif
#if KMLAB_MODEL_ASAN
        __sanitizer_start_switch_fiber(nullptr, main_stack_bottom_, main_stack_size_);
#endif
        jump_to_scheduler(t);
        __builtin_unreachable();
    }

    void switch_to_scheduler() {
        Thread& t = threads_[running_];
#if KMLAB_MODEL_TSAN
        __tsan_switch_to_fiber(main_tsan_, 0);
#endif
        void* fake = nullptr;
#if KMLAB_MODEL_ASAN
        __sanitizer_start_switch_fiber(&fake, main_stack_bottom_, main_stack_size_);
#endif
        jump_to_scheduler(t);
        resumed(fake);
    }

    // On a fiber, after a switch into it: record where the scheduler's stack is.
    void resumed([[maybe_unused]] void* fake) {
#if KMLAB_MODEL_ASAN
        __sanitizer_finish_switch_fiber(fake, &main_stack_bottom_, &main_stack_size_);
#endif
    }

    void switch_to(int i) {
        running_ = i;
        Thread& t = threads_[i];
        swap_fiber_locals(t, true);
#if KMLAB_MODEL_TSAN
        if (main_tsan_ == nullptr) main_tsan_ = __tsan_get_current_fiber();
        __tsan_switch_to_fiber(t.tsan_fiber, 0);
#endif
#if KMLAB_MODEL_ASAN
        void* fake = nullptr;
        __sanitizer_start_switch_fiber(&fake, t.stack.get(), kStackSize);
#endif
        jump_to_fiber(t);
#if KMLAB_MODEL_ASAN
        __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
        swap_fiber_locals(t, false);
        running_ = -1;
    }

    // In: the scheduler's values are saved and the fiber's put in place;
    // out: the reverse.
    void swap_fiber_locals(Thread& t, bool in) {
        const auto& locals = config_.fiber_locals;
        if (locals.empty()) return;
        if (t.locals.empty()) {  // first entry: the fiber starts with the scheduler's values
            for (const auto& [p, n] : locals) {
                const char* c = static_cast<const char*>(p);
                t.locals.emplace_back(c, c + n);
            }
        }
        if (main_locals_.size() != locals.size()) main_locals_.resize(locals.size());
        for (std::size_t k = 0; k < locals.size(); ++k) {
            auto* p = static_cast<char*>(locals[k].first);
            const std::size_t n = locals[k].second;
            if (in) {
                main_locals_[k].assign(p, p + n);
                std::memcpy(p, t.locals[k].data(), n);
            } else {
                std::memcpy(t.locals[k].data(), p, n);
                std::memcpy(p, main_locals_[k].data(), n);
            }
        }
    }

    // The switches themselves. swapcontext saves and restores the signal mask
    // with a system call each time; outside the sanitizers (which intercept
    // longjmp and need the ucontext path) a fiber is entered once through
    // its ucontext and switched with _setjmp/_longjmp after that, about 20x
    // cheaper.
#if KMLAB_MODEL_ASAN || KMLAB_MODEL_TSAN
    void jump_to_scheduler(Thread& t) {
        swapcontext(&t.ctx, &main_ctx_);
    }
    void jump_to_fiber(Thread& t) {
        swapcontext(&main_ctx_, &t.ctx);
    }
#else
    void jump_to_scheduler(Thread& t) {
        if (_setjmp(t.jb) == 0) _longjmp(main_jb_, 1);
    }
    void jump_to_fiber(Thread& t) {
        if (_setjmp(main_jb_) == 0) {
            if (!t.started) {
                t.started = true;
                setcontext(&t.ctx);
            }
            _longjmp(t.jb, 1);
        }
    }
#endif

    // Before an operation of the running fiber: decide who performs the next
    // operation. Most decisions let this fiber go on, and cost no switch;
    // draining a store buffer is done here too; only a choice of another
    // thread goes through the scheduler's context.
    void step() {
        if (threads_[running_].fresh) {
            threads_[running_].fresh = false;
            return;
        }
        for (;;) {
            // Nothing that owns heap memory may be alive on this stack when
            // the run ends or another fiber runs (it might never resume).
            Option o{};
            bool abort = false;
            {
                const auto opts = options();
                if (++steps_ > config_.step_limit) {
                    violation_ = "no end after " + std::to_string(config_.step_limit) +
                                 " steps (livelock?): " + blocked_threads();
                    abort = true;
                } else {
                    const int c = decide_or_abort(opts);
                    if (c < 0)
                        abort = true;
                    else
                        o = opts[c];
                }
            }
            if (abort) end_run();
            if (o.kind == OptKind::run && o.thread == running_) return;
            if (o.kind == OptKind::flush) {
                flush_one(o.thread);
                continue;
            }
            pending_ = o;
            has_pending_ = true;
            switch_to_scheduler();
            return;  // resumed: the scheduler chose this fiber
        }
    }
    int decide_or_abort(const std::vector<Option>& opts) {
        int c = -1;
        try {
            c = decide(opts);
        } catch (const RunAbort&) {
        }
        return c;  // -1: the run ends (outside the handler, so the exception is freed)
    }
    void flush_one(int i) {
        const Store st = threads_[i].buffer.front();
        trace_line(i, "buffer drains " + where(st.addr) + " := " + show(&st.bits, st.size));
        drain(i, 1);
    }

    bool block(State s, const void* addr, bool has_deadline) {
        Thread& t = threads_[running_];
        t.state = s;
        t.wait_addr = addr;
        t.has_deadline = has_deadline;
        t.timed_out = false;
        t.wait_seq = ++seq_;
        switch_to_scheduler();
        return !t.timed_out;
    }
    int wake(State s, const void* addr, int count) {
        int woken = 0;
        while (woken < count) {
            Thread* first = nullptr;
            for (auto& t : threads_) {
                if (t.state == s && t.wait_addr == addr && (!first || t.wait_seq < first->wait_seq))
                    first = &t;
            }
            if (!first) break;
            first->state = State::runnable;
            ++woken;
        }
        return woken;
    }
    void remember_read(const void* p, const void* value, std::size_t size) {
        if (running_ < 0) return;
        Store r{const_cast<void*>(p), size, 0};
        std::memcpy(&r.bits, value, size);
        threads_[running_].reads.push_back(r);
    }
    void memory_written() {
        for (auto& t : threads_) {
            if (t.state != State::spin) continue;
            bool changed = t.reads.empty();
            for (const Store& r : t.reads)
                changed = changed || std::memcmp(r.addr, &r.bits, r.size) != 0;
            if (changed) t.state = State::runnable;
        }
    }
    // Drains `n` stores (0: all) of thread i's buffer, oldest first.
    // A store that reaches destroyed memory is a violation of the thread
    // that made it, whenever its buffer drains (on a fiber the run ends at
    // once; in the scheduler the loop sees violation_).
    void drain(int i, std::size_t n) {
        auto& buf = threads_[i].buffer;
        if (buf.empty()) return;
        if (n == 0) n = buf.size();
        for (; n > 0 && !buf.empty(); --n) {
            const Store s = buf.front();
            buf.pop_front();
            if (destroyed(s.addr, s.size) && violation_.empty()) {
                violation_ = "T" + std::to_string(i) +
                             ": a buffered store reached destroyed memory at " + where(s.addr);
                if (running_ >= 0) end_run();
                return;
            }
            std::memcpy(s.addr, &s.bits, s.size);
        }
        memory_written();
    }
    bool destroyed(const void* p, std::size_t size) const {
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        for (const auto& [lo, hi] : destroyed_) {
            if (a < hi && a + size > lo) return true;
        }
        return false;
    }

    // ---- choices ----
    // The choices at this step, the default first. Cost: running another
    // thread, draining a buffer or expiring a deadline while the thread that
    // ran last could go on is a preemption. Expiring a thread's deadline is
    // free otherwise only if another thread has made progress since that
    // thread's last timeout: time passes while others work. (Free timeouts
    // without that rule let a thread that polls with a deadline time out
    // forever while a pending store never drains, an unfair schedule no
    // machine makes.)
    std::vector<Option> options() const {
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
        for (const auto& t : threads_)
            stuck = stuck && t.state != State::runnable && t.buffer.empty();
        for (auto& o : opts) {
            if (o.kind == OptKind::timeout && stuck) o.cost = 0;
        }
        for (int k = 0; k < n; ++k) {
            const int i = (current_ + k) % n;
            if (!threads_[i].buffer.empty()) opts.push_back({OptKind::flush, i, alt});
        }
        // The cheapest choice is the default.
        std::stable_sort(opts.begin(), opts.end(),
                         [](const Option& a, const Option& b) { return a.cost < b.cost; });
        return opts;
    }

    int decide(const std::vector<Option>& opts) {
        const bool cur_runnable = threads_[current_].state == State::runnable;
        int chosen = 0;
        if (forced_ != nullptr) {
            if (decision_ < forced_->size()) {
                const std::string& want = (*forced_)[decision_];
                auto it = std::find_if(opts.begin(), opts.end(),
                                       [&](const Option& o) { return o.name() == want; });
                if (it == opts.end()) {
                    violation_ = "replay diverged at step " + std::to_string(decision_) + ": " +
                                 want + " is not possible here";
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
                    violation_ = "a replayed run took another path at step " +
                                 std::to_string(decision_) + " (is the program deterministic?)";
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

    void pct_setup() {
        const int n = static_cast<int>(threads_.size());
        priority_.resize(n);
        for (int i = 0; i < n; ++i) priority_[i] = config_.pct_depth + i;
        std::shuffle(priority_.begin(), priority_.end(), rng_);
        change_points_.clear();
        const long horizon = std::max<long>(expected_steps_, 16);
        for (int d = 1; d < config_.pct_depth; ++d)
            change_points_.push_back(std::uniform_int_distribution<long>(0, horizon)(rng_));
    }
    int pct_choose(const std::vector<Option>& opts, bool) {
        for (std::size_t d = 0; d < change_points_.size(); ++d) {
            if (change_points_[d] == steps_) priority_[current_] = static_cast<int>(d);
        }
        std::vector<int> runs, others;
        for (std::size_t i = 0; i < opts.size(); ++i)
            (opts[i].kind == OptKind::run ? runs : others).push_back(static_cast<int>(i));
        // Stores drain and deadlines expire at random moments, one in eight steps.
        if (!others.empty() &&
            (runs.empty() || std::uniform_int_distribution<int>(0, 7)(rng_) == 0))
            return others[std::uniform_int_distribution<std::size_t>(0, others.size() - 1)(rng_)];
        int best = runs[0];
        for (int i : runs)
            if (priority_[opts[i].thread] > priority_[opts[best].thread]) best = i;
        return best;
    }

    bool loop() {
        try {
            for (;;) {
                if (!violation_.empty()) return false;
                Option o{};
                if (has_pending_) {  // decided on a fiber, before it switched here
                    o = pending_;
                    has_pending_ = false;
                } else {
                    bool all_done = true;
                    for (const auto& t : threads_)
                        all_done = all_done && t.state == State::finished;
                    if (all_done) return true;
                    const auto opts = options();
                    if (opts.empty()) {
                        violation_ = "deadlock: " + blocked_threads();
                        return false;
                    }
                    if (++steps_ > config_.step_limit) {
                        violation_ = "no end after " + std::to_string(config_.step_limit) +
                                     " steps (livelock?): " + blocked_threads();
                        return false;
                    }
                    o = opts[decide(opts)];
                }
                switch (o.kind) {
                    case OptKind::run:
                        current_ = o.thread;
                        switch_to(o.thread);
                        break;
                    case OptKind::timeout:
                        threads_[o.thread].timed_out = true;
                        threads_[o.thread].state = State::runnable;
                        current_ = o.thread;
                        trace_line(o.thread, "deadline expires");
                        switch_to(o.thread);
                        break;
                    case OptKind::flush:
                        flush_one(o.thread);
                        break;
                }
            }
        } catch (const RunAbort&) {
            return false;
        }
    }

    std::string blocked_threads() const {
        std::ostringstream o;
        for (std::size_t i = 0; i < threads_.size(); ++i) {
            const auto& t = threads_[i];
            if (t.state == State::finished) continue;
            o << "T" << i << ' ';
            switch (t.state) {
                case State::futex:
                    o << "sleeps in futex_wait on " << where(t.wait_addr);
                    break;
                case State::event:
                    o << "sleeps on event " << where(t.wait_addr);
                    break;
                case State::spin:
                    o << "spins";
                    break;
                default:
                    o << "runnable";
                    break;
            }
            o << "; ";
        }
        return o.str();
    }

    std::string where(const void* p) const {
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        for (const auto& l : labels_) {
            if (a >= l.lo && a < l.hi)
                return a == l.lo ? l.name : l.name + "+" + std::to_string(a - l.lo);
        }
        std::ostringstream o;
        o << p;
        return o.str();
    }
    static std::string show(const void* v, std::size_t size) {
        std::uint64_t bits = 0;
        std::memcpy(&bits, v, size);
        if (size == 8 && bits > 0xffffffffull) {
            std::ostringstream o;
            o << "0x" << std::hex << bits;
            return o.str();
        }
        if (size == 4) return std::to_string(static_cast<std::int32_t>(bits));
        return std::to_string(bits);
    }
    void note(const std::string& what) {
        if (tracing_ && running_ >= 0) trace_line(running_, what);
    }
    void trace_line(int thread, const std::string& what) {
        if (tracing_) trace_.push_back("T" + std::to_string(thread) + " " + what);
    }

  public:
    long expected_steps_ = 64;  // PCT's horizon, learned from earlier runs

  private:
    Config config_;
    std::mt19937_64 rng_;
    std::vector<Thread> threads_;
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> destroyed_;
    std::vector<Label> labels_;
    ucontext_t main_ctx_{};
#if KMLAB_MODEL_ASAN
    const void* main_stack_bottom_ = nullptr;
    std::size_t main_stack_size_ = 0;
#endif
#if KMLAB_MODEL_TSAN
    void* main_tsan_ = nullptr;
#endif
    int running_ = -1;  // the fiber executing now, -1 in the scheduler
    Option pending_{};
    bool has_pending_ = false;
    std::vector<std::vector<char>> main_locals_;
#if !(KMLAB_MODEL_ASAN || KMLAB_MODEL_TSAN)
    std::jmp_buf main_jb_;
#endif
    int current_ = 0;  // the thread that ran last (preemption accounting)
    long steps_ = 0;
    int cost_ = 0;
    std::uint64_t seq_ = 0;
    std::vector<Decision>* trail_ = nullptr;
    std::vector<std::string>* forced_ = nullptr;
    std::size_t decision_ = 0;
    std::vector<std::string> schedule_;
    std::vector<std::string> trace_;
    bool tracing_ = false;
    std::string violation_;
    std::vector<int> priority_;
    std::vector<long> change_points_;
};

std::vector<std::string> parse_schedule(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string tok;
    while (in >> tok) {
        long n = 1;
        const auto star = tok.find('*');
        if (star != std::string::npos) {
            n = std::stol(tok.substr(star + 1));
            tok = tok.substr(0, star);
        }
        if (tok.size() < 2 || (tok[0] != 'T' && tok[0] != 'X' && tok[0] != 'F'))
            throw std::invalid_argument("model: bad schedule token '" + tok + "'");
        for (long i = 0; i < n; ++i) out.push_back(tok);
    }
    return out;
}

}  // namespace

std::string Result::summary() const {
    std::ostringstream o;
    o << schedules << " schedules" << (complete ? " (all within the bound)" : "") << ", longest "
      << max_steps << " steps, " << (violation ? "VIOLATION: " + what : "0 violations");
    return o.str();
}

Result explore(const Config& config, const std::function<Program()>& make) {
    Result r;
    Scheduler s(config);
    auto record = [&](Scheduler& sched, const std::vector<std::string>& schedule_names) {
        r.violation = true;
        r.what = sched.violation();
        r.schedule = sched.schedule();
        // Replay the failing schedule once more with tracing on.
        Scheduler tracer(config);
        std::vector<std::string> forced = schedule_names;
        std::vector<Decision> unused;
        const Program p = make();
        tracer.run_once(p, unused, &forced, true);
        r.trace = tracer.trace(60);
    };
    if (!config.replay.empty()) {
        std::vector<std::string> forced = parse_schedule(config.replay);
        std::vector<Decision> unused;
        const Program p = make();
        const bool ok = s.run_once(p, unused, &forced, true);
        r.schedules = 1;
        r.max_steps = s.steps();
        r.violation = !ok;
        r.what = s.violation();
        r.schedule = s.schedule();
        r.trace = s.trace(200);
        return r;
    }
    std::vector<Decision> trail;
    for (;;) {
        const Program p = make();
        const bool ok = s.run_once(p, trail, nullptr, false);
        ++r.schedules;
        r.max_steps = std::max(r.max_steps, s.steps());
        if (!ok) {
            record(s, parse_schedule(s.schedule()));
            return r;
        }
        if (config.random) {
            s.expected_steps_ = std::max(s.expected_steps_, s.steps());
            if (r.schedules >= config.random_schedules) return r;
            continue;
        }
        if (config.max_schedules > 0 && r.schedules >= config.max_schedules) return r;
        // Backtrack to the deepest decision with an affordable alternative.
        while (!trail.empty()) {
            Decision& d = trail.back();
            int next = d.chosen + 1;
            while (next < d.count && d.cost_before + d.costs[next] > config.preemption_bound)
                ++next;
            if (next < d.count) {
                d.chosen = next;
                break;
            }
            trail.pop_back();
        }
        if (trail.empty()) {
            r.complete = true;
            return r;
        }
    }
}

void fail(const char* what) {
    if (g_sched == nullptr)
        throw std::logic_error(std::string("model::fail outside a run: ") + what);
    g_sched->fail(what);
}
void destroy(const void* p, std::size_t size) {
    if (g_sched != nullptr) g_sched->destroy(p, size);
}
void label(const void* p, std::size_t size, const char* name) {
    if (g_sched != nullptr) g_sched->label(p, size, name);
}
int current_thread() {
    return g_sched != nullptr ? g_sched->current() : -1;
}
void set_heavy_fence(HeavyFence mode) {
    g_heavy_fence = mode;
}

bool Platform::heavy_fence() {
    switch (g_heavy_fence) {
        case HeavyFence::exact:
            detail::fence(true);
            return true;
        case HeavyFence::fallback:
            detail::fence(false);
            return false;
        case HeavyFence::broken:
            detail::fence(false);
            return true;
    }
    return false;
}

namespace detail {
void load(const void* p, void* out, std::size_t size) {
    if (g_sched == nullptr || g_sched->current() < 0) {
        std::memcpy(out, p, size);
        return;
    }
    g_sched->load(p, out, size);
}
void store(void* p, const void* in, std::size_t size, bool seq_cst) {
    if (g_sched == nullptr || g_sched->current() < 0) {
        std::memcpy(p, in, size);
        return;
    }
    g_sched->store(p, in, size, seq_cst);
}
void rmw(void* p, void* old, void* out, std::size_t size,
         const std::function<bool(const void*, void*)>& update, const char* what) {
    if (g_sched == nullptr || g_sched->current() < 0) {
        std::memcpy(old, p, size);
        if (update(old, out)) std::memcpy(p, out, size);
        return;
    }
    g_sched->rmw(p, old, out, size, update, what);
}
void fence(bool all_threads) {
    if (g_sched != nullptr) g_sched->fence(all_threads);
}
bool futex_wait(const void* p, std::uint32_t expected, bool has_deadline) {
    if (g_sched == nullptr || g_sched->current() < 0)
        throw std::logic_error("model: futex_wait outside a run");
    return g_sched->futex_wait(p, expected, has_deadline);
}
void futex_wake(const void* p, int count) {
    if (g_sched != nullptr && g_sched->current() >= 0) g_sched->futex_wake(p, count);
}
void spin_begin() {
    if (g_sched != nullptr) g_sched->spin_begin();
}
bool spin_wait(bool has_deadline) {
    if (g_sched == nullptr || g_sched->current() < 0)
        throw std::logic_error("model: spin outside a run");
    return g_sched->spin_wait(has_deadline);
}
void event_wait(const void* event) {
    if (g_sched == nullptr || g_sched->current() < 0)
        throw std::logic_error("model: event_wait outside a run");
    g_sched->event_wait(event);
}
void event_signal(const void* event, bool* signalled) {
    if (g_sched == nullptr || g_sched->current() < 0) {
        *signalled = true;
        return;
    }
    g_sched->event_signal(event, signalled);
}
}  // namespace detail

}  // namespace kmlab::model
