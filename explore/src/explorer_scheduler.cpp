// The explorer's runs: Scheduler::run_once() sets up one fiber per model
// thread and runs the schedule to its end; the fibers themselves, the switches
// between them and the scheduler's context (with the sanitizers told of each),
// and the two places a choice is made: step() on the fiber that runs, loop()
// in the scheduler's context.
#include <setjmp.h>
#include <ucontext.h>
#include <atomic>

#include <csetjmp>

#include <cxxabi.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <kmlab/kernel/bugcheck.hpp>
#include "explorer_internal.hpp"

namespace kmlab::explore::internal {

bool Scheduler::run_once(const Program& program, std::vector<Decision>& trail,
                         std::vector<std::string>* forced, bool tracing) {
    threads_.clear();
    threads_.resize(program.threads.size());
    noted_ = false;
    hooks_ = forced != nullptr;
    break_done_ = false;
    violation_step_ = 0;
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
    por_ = forced == nullptr && reduces(config_);  // search part: partial-order reduction
    if (por_) por_begin();
    c11_reset();

    for (std::size_t i = 0; i < threads_.size(); ++i) {
        Thread& t = threads_[i];
        t.body = program.threads[i];
        make_fiber(t);
    }
    std::atomic_ref(g_sched).store(this, std::memory_order_relaxed);  // explorer.cpp, active()
    running_ = -1;
    // Each thread runs its code up to its first operation's yield before
    // the first choice, and waits there (step(): priming_): the code before
    // a thread's first shared-memory operation touches nothing the explorer
    // sees, so running it now or when the thread is first chosen is the
    // same run, the same choices and the same schedule names. What it buys:
    // the first operation is announced before any choice, so the reduction
    // knows what each thread's first step touches (a thread started lazily
    // announces it only after the choice that ran it, and its first step
    // had to count as dependent with everything: every thread's start raced
    // with every step, as the sleep sets could not keep it asleep).
    // Threads spawned mid-run still start lazily (fresh).
    priming_ = true;
    for (std::size_t i = 0; i < threads_.size() && violation_.empty(); ++i) {
        if (threads_[i].state == State::runnable) switch_to(static_cast<int>(i));
    }
    priming_ = false;
    bool ok = loop();
    if (por_) por_close();  // the last step ends with the run
    if (ok) {
        for (std::size_t i = 0; i < threads_.size(); ++i) drain(static_cast<int>(i), 0);
        ok = violation_.empty();
    }
    if (ok) {
        if (program.check) {
            const std::string what = program.check();
            if (!what.empty()) {
                set_violation("final check: " + what);
                ok = false;
            }
        }
    }
    if (!ok) {
        trace_line(-1, "VIOLATION: " + violation_);
        keep_abandoned_stacks();
    }
    std::atomic_ref(g_sched).store(nullptr, std::memory_order_relaxed);
#if KMLAB_MODEL_TSAN
    for (auto& t : threads_) __tsan_destroy_fiber(t.tsan_fiber);
#endif
    return ok;
}

// Apart from run_once: getcontext returns twice, which puts every local of
// its caller at risk of being clobbered (GCC warns, under ASan, for run_once's
// strings), and a function that calls it is never inlined.
// A run that ends in a violation leaves fibers that are never resumed, and
// what their frames own (a BugCheck's text, a string being built) is never
// destroyed. Their stacks are kept, reachable, for the process's life, so
// that memory stays owned (a leak checker scans them) instead of lost: a
// stack per unfinished thread per violating run (a search reports one
// violation and replays it once). Runs cut short by the preemption bound
// are not kept: the code under test has not failed there, and keeping them
// would hold a stack per schedule.
void Scheduler::keep_abandoned_stacks() {
    static auto* kept = new std::vector<std::unique_ptr<char[]>>;
    for (auto& t : threads_) {
        if (t.state != State::finished && t.stack) kept->push_back(std::move(t.stack));
    }
}

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
    // The scheduler chose this fiber for its first operation already (or
    // primes it: run_once).
    s->threads_[s->running_].fresh = true;
    if (!s->priming_) s->went_on();
    s->run_body();
    if (!s->violation_.empty()) s->end_run();
    s->finish_thread();
}

namespace {
std::string hex(unsigned long long v) {
    char b[24];
    std::snprintf(b, sizeof b, "0x%llX", v);
    return b;
}
}  // namespace

// An exception that escapes a thread's body is caught here, at the bottom
// of its fiber's stack (an exception never unwinds across a switch), and is
// the run's violation. The message is built inside the handler, so nothing
// on this stack owns memory when the run ends.
void Scheduler::run_body() {
    const auto who = [this] { return 'T' + std::to_string(running_); };
    try {
        threads_[running_].body();
    } catch (const BugCheck& b) {
        const auto& p = b.parameters();
        set_violation(who() + ": bug check " + hex(b.code()) + " (" + hex(p[0]) + ", " + hex(p[1]) +
                      ", " + hex(p[2]) + ", " + hex(p[3]) + ") " + bugcheck::name(b.code()));
    } catch (const std::exception& e) {
        set_violation(who() + ": uncaught exception: " + e.what());
    } catch (...) {
        set_violation(who() + ": uncaught exception (not a std::exception)");
    }
}

// A thread's end drains its store buffer: leaving a thread is a system
// call on x86, which serializes (and whoever joins it reads its stores).
// The end is a step of its own where stores are pending, so other threads
// may run first while they still sit in the buffer (a real thread does more
// work before it exits; the stores may stay buffered through it).
// Decision, kmlab: leaving a thread there costs a preemption, as leaving any
// runnable thread does. (Free, it made the TSO searches explode: every
// flush and switch at a thread's end became free.) A store-buffer bug that
// needs a thread's stores delayed past its end therefore costs one
// preemption more than when the end left its buffer alone; such a search
// found fewer schedules within the same bound (KSPIN_LOCK TTAS 4x1 TSO pb=2:
// 257642 before, 37908 now).
void Scheduler::finish_thread() {
    prime_park();
    if (!threads_[running_].buffer.empty()) {
        announce(Op::fence);  // the end drains the buffer
        yield();
    }
    drain(running_, 0);
    Thread& t = threads_[running_];
    t.state = State::finished;
    trace_line(running_, "ends");
    leave_fiber(true);
}

int Scheduler::spawn(std::function<void()> fn) {
    prime_park();
    const int i = static_cast<int>(threads_.size());
    touch_global();  // a new thread: the reduction orders it with everything
    Thread& t = threads_.emplace_back();
    t.body = std::move(fn);
    make_fiber(t);
    if (config_.random) pct_add_thread(i);
    c11_spawned(running_, i);
    trace_line(running_, "starts T" + std::to_string(i));
    // The choice that let the creator make its first operation was made
    // without the new thread: the next operation is a choice again.
    threads_[running_].fresh = false;
    return i;
}

void Scheduler::user_note(const char* line) {
    noted_ = true;
    if (tracing_) trace_line(running_, line, Level::note);
}

// The hooks a debugger stops at (explore.hpp): called on the fiber that
// goes on, so its frames are the ones gdb shows.
void Scheduler::went_on() {
    if (!hooks_) return;
    kmlab_explore_step(running_, steps_);
    if (config_.break_step > 0 && !break_done_ && steps_ >= config_.break_step) {
        break_done_ = true;
        kmlab_explore_break(running_, steps_);
    }
}

void Scheduler::set_violation(std::string what) {
    if (!violation_.empty()) return;
    violation_step_ = steps_;
    violation_ = std::move(what) + " (step " + std::to_string(steps_) + ")";
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
    went_on();
}

// On a fiber, after a switch into it: record where the scheduler's stack is.
void Scheduler::resumed([[maybe_unused]] void* fake) {
#if KMLAB_MODEL_ASAN
    __sanitizer_finish_switch_fiber(fake, &main_stack_bottom_, &main_stack_size_);
#endif
}

// The C++ runtime keeps the exceptions being handled (and the count of those
// in flight) per OS thread, in __cxa_get_globals(): a fiber that switches
// away inside a catch handler would leave its exception there for the next
// fiber to find (and rethrow, or free). Each fiber has its own copy, swapped
// as fiber_locals are; a new fiber's is empty. 16 bytes: libstdc++'s
// __cxa_eh_globals is a pointer and an unsigned int.
namespace {
void* eh_globals() {
    return abi::__cxa_get_globals();
}
}  // namespace

void Scheduler::switch_to(int i) {
    running_ = i;
    Thread& t = threads_[i];
    swap_fiber_locals(t, true);
    void* const eh = eh_globals();
    std::memcpy(main_eh_.data(), eh, main_eh_.size());
    std::memcpy(eh, t.eh.data(), t.eh.size());
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
    std::memcpy(t.eh.data(), eh, t.eh.size());
    std::memcpy(eh, main_eh_.data(), main_eh_.size());
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

// run_once primes each thread up to its first yield (step()), where it waits
// for its first choice. A spawn, a failure and the thread's end stop it
// too: each is what the first choice of the thread used to start, so that
// every schedule names the same choices as before priming.
void Scheduler::prime_park() {
    if (!priming_) return;
    threads_[running_].fresh = false;
    switch_to_scheduler();
}

// Before an operation of the running fiber: decide who performs the next
// operation. Most decisions let this fiber go on, and cost no switch;
// draining a store buffer is done here too; only a choice of another
// thread goes through the scheduler's context.
void Scheduler::step() {
    if (priming_) {
        prime_park();
        return;
    }
    if (threads_[running_].fresh) {
        threads_[running_].fresh = false;
        if (por_) por_fresh();
        return;
    }
    if (por_) por_at_yield();
    for (;;) {
        // Nothing that owns heap memory may be alive on this stack when
        // the run ends or another fiber runs (it might never resume).
        Option o{};
        bool abort = false;
        {
            const auto opts = options();
            if (++steps_ > config_.step_limit) {
                set_violation("no end after " + std::to_string(config_.step_limit) +
                              " steps (livelock?): " + blocked_threads());
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
        if (o.kind == OptKind::run && o.thread == running_) {
            went_on();
            return;
        }
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
                    set_violation("deadlock: " + blocked_threads());
                    return false;
                }
                if (++steps_ > config_.step_limit) {
                    set_violation("no end after " + std::to_string(config_.step_limit) +
                                  " steps (livelock?): " + blocked_threads());
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
                case OptKind::spurious:
                    threads_[o.thread].state = State::runnable;
                    current_ = o.thread;
                    trace_line(o.thread, "wakes up spuriously (no futex_wake)");
                    switch_to(o.thread);
                    break;
                case OptKind::flush:
                    flush_one(o.thread);
                    break;
                case OptKind::deadline:  // made on the fiber (deadline_passed)
                case OptKind::read:      // made on the fiber (explorer_c11.cpp)
                    break;
            }
        }
    } catch (const RunAbort&) {
        return false;
    }
}

}  // namespace kmlab::explore::internal
