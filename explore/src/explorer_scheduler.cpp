// The explorer's runs: Scheduler::run_once() sets up one fiber per model
// thread and runs the schedule to its end; the fibers themselves, the switches
// between them and the scheduler's context (with the sanitizers told of each),
// and the two places a choice is made: step() on the fiber that runs, loop()
// in the scheduler's context.
#include <setjmp.h>
#include <ucontext.h>

#include <csetjmp>

#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "explorer_internal.hpp"

namespace kmlab::explore::internal {

bool Scheduler::run_once(const Program& program, std::vector<Decision>& trail,
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
        make_fiber(t);
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

// Apart from run_once: getcontext returns twice, which puts every local of
// its caller at risk of being clobbered (GCC warns, under ASan, for run_once's
// strings), and a function that calls it is never inlined.
void Scheduler::make_fiber(Thread& t) {
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

void Scheduler::trampoline() {
    Scheduler* s = g_sched;
    s->resumed(nullptr);
    // The scheduler chose this fiber for its first operation already.
    s->threads_[s->running_].fresh = true;
    try {
        s->threads_[s->running_].body();
    } catch (const std::exception& e) {
        s->violation_ = 'T' + std::to_string(s->running_) + ": exception: " + e.what();
    }
    if (!s->violation_.empty()) s->end_run();
    s->finish_thread();
}

// A finished thread's stores may still sit in its buffer: they drain at
// a scheduling choice, as everybody's do.
void Scheduler::finish_thread() {
    Thread& t = threads_[running_];
    t.state = State::finished;
    note("ends");
    leave_fiber(true);
}

// A run that ends early leaves its fibers where they are: they are never
// resumed, and their stacks are reused by the next run. (Nothing may be
// thrown across a context switch.)
void Scheduler::end_run() {
    leave_fiber(true);
}

void Scheduler::leave_fiber(bool) {
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

void Scheduler::switch_to_scheduler() {
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
void Scheduler::resumed([[maybe_unused]] void* fake) {
#if KMLAB_MODEL_ASAN
    __sanitizer_finish_switch_fiber(fake, &main_stack_bottom_, &main_stack_size_);
#endif
}

void Scheduler::switch_to(int i) {
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
void Scheduler::swap_fiber_locals(Thread& t, bool in) {
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
void Scheduler::jump_to_scheduler(Thread& t) {
    swapcontext(&t.ctx, &main_ctx_);
}
void Scheduler::jump_to_fiber(Thread& t) {
    swapcontext(&main_ctx_, &t.ctx);
}
#else
void Scheduler::jump_to_scheduler(Thread& t) {
    if (_setjmp(t.jb) == 0) _longjmp(main_jb_, 1);
}
void Scheduler::jump_to_fiber(Thread& t) {
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
void Scheduler::step() {
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

int Scheduler::decide_or_abort(const std::vector<Option>& opts) {
    int c = -1;
    try {
        c = decide(opts);
    } catch (const RunAbort&) {
    }
    return c;  // -1: the run ends (outside the handler, so the exception is freed)
}

bool Scheduler::loop() {
    try {
        for (;;) {
            if (!violation_.empty()) return false;
            Option o{};
            if (has_pending_) {  // decided on a fiber, before it switched here
                o = pending_;
                has_pending_ = false;
            } else {
                bool all_done = true;
                for (const auto& t : threads_) all_done = all_done && t.state == State::finished;
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

}  // namespace kmlab::explore::internal
