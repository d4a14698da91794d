// The schedule explorer's public entry points (explorer.hpp says what is
// modelled and why): explore(), which runs the program once per schedule and
// backtracks the depth-first search between runs, and the calls a model
// thread makes into the scheduler of the run in progress. The scheduler
// itself is declared in explorer_internal.hpp.
#include <kmlab/explore.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "explorer_internal.hpp"

namespace kmlab::explore {

namespace internal {
Scheduler* g_sched = nullptr;
std::string (*g_wait_describer)(int thread) = nullptr;
std::function<void()> (*g_spawn_wrapper)(std::function<void()> fn) = nullptr;
}  // namespace internal

namespace {
HeavyFence g_heavy_fence = HeavyFence::exact;
}  // namespace

using internal::Decision;
using internal::g_sched;
using internal::parse_schedule;
using internal::Scheduler;

namespace {
const char* env(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? v : nullptr;
}

long env_number(const char* name, const char* v) {
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(v, &end, 0);
    if (errno != 0 || end == v || *end != '\0' || n < 0)
        throw std::invalid_argument(std::string(name) + "='" + v + "' is not a number");
    return n;
}

// KMLAB_MODEL_REDUCTION: 0 / off, 1 / unbounded, all / always.
Reduction reduction_from(const char* v) {
    if (std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0) return Reduction::off;
    if (std::strcmp(v, "all") == 0 || std::strcmp(v, "always") == 0) return Reduction::always;
    if (std::strcmp(v, "1") == 0 || std::strcmp(v, "unbounded") == 0) return Reduction::unbounded;
    throw std::invalid_argument(std::string("KMLAB_MODEL_REDUCTION='") + v +
                                "' is not 0, unbounded or all");
}
}  // namespace

// Replay, break and verbose traces from the environment (explore.hpp):
// an explicit replay or break step wins.
Result explore(const Config& config_in, const std::function<Program()>& make) {
    Config config = config_in;
    if (config.replay.empty()) {
        if (const char* v = env("KMLAB_MODEL_REPLAY")) config.replay = v;
    }
    if (config.break_step == 0) {
        if (const char* v = env("KMLAB_MODEL_BREAK"))
            config.break_step = env_number("KMLAB_MODEL_BREAK", v);
    }
    if (const char* v = env("KMLAB_MODEL_VERBOSE")) config.verbose = std::strcmp(v, "0") != 0;
    if (const char* v = env("KMLAB_MODEL_REDUCTION")) config.reduction = reduction_from(v);
    Result r;
    r.reduced = Scheduler::reduces(config);
    Scheduler s(config);
    auto record = [&](Scheduler& sched, const std::vector<std::string>& schedule_names) {
        r.violation = true;
        r.what = sched.violation();
        r.schedule = sched.schedule();
        // Replay the failing schedule once more with tracing on.
        Scheduler tracer(config);
        std::vector<std::string> forced = schedule_names;
        std::vector<Decision> unused;
        r.step = sched.violation_step();
        const Program p = make();
        tracer.run_once(p, unused, &forced, true);
        r.trace = tracer.trace(60);
    };
    if (!config.replay.empty()) {
        std::vector<std::string> forced;
        try {
            forced = parse_schedule(config.replay);
        } catch (const std::exception& e) {
            r.violation = true;
            r.what = std::string("the replayed schedule does not fit this program: ") + e.what();
            r.schedule = config.replay;
            return r;
        }
        std::vector<Decision> unused;
        const Program p = make();
        const bool ok = s.run_once(p, unused, &forced, true);
        r.schedules = 1;
        r.max_steps = s.steps();
        r.violation = !ok;
        r.what = s.violation();
        r.step = s.violation_step();
        r.schedule = s.schedule();
        r.trace = s.trace(200);
        return r;
    }
    std::vector<Decision> trail;
    for (;;) {
        const Program p = make();
        const bool ok = s.run_once(p, trail, nullptr, false);
        ++r.schedules;
        if (s.redundant()) ++r.schedules_redundant;
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
        // Backtrack to the deepest decision with an alternative to run
        // (explorer_search.cpp).
        if (!Scheduler::next_schedule(trail, config, r.schedules_pruned)) {
            r.complete = true;
            return r;
        }
    }
}

void fail(const char* what) {
    if (g_sched == nullptr)
        throw std::logic_error(std::string("explore::fail outside a run: ") + what);
    g_sched->fail(what);
}
void destroy(const void* p, std::size_t size) {
    if (g_sched != nullptr && g_sched->current() >= 0) g_sched->touch_write(p, size);
    if (g_sched != nullptr) g_sched->destroy(p, size);
}
void label(const void* p, std::size_t size, const char* name) {
    if (g_sched != nullptr) g_sched->label(p, size, name);
}
int current_thread() {
    return g_sched != nullptr ? g_sched->current() : -1;
}
int spawn(std::function<void()> fn) {
    if (!active()) throw std::logic_error("explore::spawn outside a run");
    if (internal::g_spawn_wrapper != nullptr) fn = internal::g_spawn_wrapper(std::move(fn));
    return g_sched->spawn(std::move(fn));
}
void check(bool condition, const char* message) {
    if (!condition) fail(message);
}
void note(const char* line) {
    if (active()) g_sched->user_note(line);
}
void set_wait_describer(std::string (*describe)(int thread)) {
    internal::g_wait_describer = describe;
}
// Read by threads outside any run too (the kernel's seam copies ask whether
// the calling thread is a model thread), while a run on the explorer's OS
// thread installs g_sched: atomic, relaxed (such a thread is no model thread
// whatever it reads: current() is -1 outside the scheduler's own thread).
bool active() noexcept {
    const Scheduler* s = std::atomic_ref(g_sched).load(std::memory_order_relaxed);
    return s != nullptr && s->current() >= 0;
}
Config config_from_environment(Config defaults) {
    Config c = std::move(defaults);
    if (const char* v = env("KMLAB_MODEL_REPLAY")) c.replay = v;
    if (const char* v = env("KMLAB_MODEL_BOUND"))  // "none": no bound (with the reduction)
        c.preemption_bound =
            std::strcmp(v, "none") == 0 ? -1 : static_cast<int>(env_number("KMLAB_MODEL_BOUND", v));
    if (const char* v = env("KMLAB_MODEL_RANDOM")) {
        c.random_schedules = env_number("KMLAB_MODEL_RANDOM", v);
        c.random = c.random_schedules > 0;
    }
    if (const char* v = env("KMLAB_MODEL_SEED"))
        c.seed = static_cast<std::uint64_t>(env_number("KMLAB_MODEL_SEED", v));
    if (const char* v = env("KMLAB_MODEL_VERBOSE")) c.verbose = std::strcmp(v, "0") != 0;
    if (const char* v = env("KMLAB_MODEL_BREAK")) c.break_step = env_number("KMLAB_MODEL_BREAK", v);
    if (const char* v = env("KMLAB_MODEL_REDUCTION")) c.reduction = reduction_from(v);
    return c;
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
std::string label_of(const void* p) {
    return g_sched != nullptr ? g_sched->label_of(p) : std::string();
}
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
    g_sched->touch_spin_reads();  // no yield: it re-reads what it read, in the step in progress
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
bool deadline_passed() {
    return active() && g_sched->deadline_passed();
}
}  // namespace detail

}  // namespace kmlab::explore

// The debugger's hooks (explore.hpp): out of line and with a side effect,
// so that neither call is folded away.
extern "C" {
volatile int kmlab_explore_break_thread = -1;
volatile long kmlab_explore_break_step = 0;
__attribute__((noinline)) void kmlab_explore_step(int thread, long step) {
    asm volatile("" : : "r"(thread), "r"(step) : "memory");
}
__attribute__((noinline)) void kmlab_explore_break(int thread, long step) {
    kmlab_explore_break_thread = thread;
    kmlab_explore_break_step = step;
    asm volatile("" : : : "memory");
}
}
