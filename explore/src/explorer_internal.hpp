// The explorer's insides, shared by its source files and by nothing else
// (programs and tests see explorer.hpp only): a model thread's state, the
// choices a schedule is made of, and the Scheduler that runs one schedule.
// Its members are defined by concern: explorer_scheduler.cpp runs one
// schedule and switches the fibers, explorer_memory.cpp models memory
// (x86-TSO store buffers, destroyed memory) and the waits, explorer_search.cpp
// makes the choices (depth-first trail, PCT), explorer_report.cpp writes
// schedules and traces; explorer.cpp holds the public entry points.
#pragma once

#include <setjmp.h>
#include <ucontext.h>

#include <csetjmp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <kmlab/explore.hpp>

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

namespace kmlab::explore::internal {

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
    // Its copy of the C++ runtime's per-thread exception state (see EhGlobals).
    std::array<char, 16> eh{};
#if !(KMLAB_MODEL_ASAN || KMLAB_MODEL_TSAN)
    std::jmp_buf jb;
#endif
#if KMLAB_MODEL_TSAN
    void* tsan_fiber = nullptr;
#endif
};

// Every choice a schedule names: run a thread, expire a blocked thread's
// deadline, drain the oldest store of a buffer, wake a futex sleeper
// spuriously, answer "yes" to a running thread's detail::deadline_passed().
// Under Memory::cxx also: which store a load reads (R<n>: the n-th store of
// its location in modification order; explorer_c11.cpp).
enum class OptKind : char {
    run = 'T',
    timeout = 'X',
    flush = 'F',
    spurious = 'W',
    deadline = 'D',
    read = 'R'
};
struct Option {
    OptKind kind;
    int thread;
    int cost = 0;  // preemptions this choice spends
    // Here and wherever a thread is named: a char + std::string, since GCC 12
    // reports a false -Wrestrict on a string literal + std::string&& in some
    // inlining contexts.
    std::string name() const { return static_cast<char>(kind) + std::to_string(thread); }
};

// ---- partial-order reduction (explorer_search.cpp) ----
// What one step (the run from a choice to the next) did to shared state, as
// far as the reduction needs it: the 4-byte granules it read or wrote (two
// steps conflict if they touch a granule and one of them writes it; whole
// granules, so that overlapping accesses of different sizes conflict too),
// or "global": dependent with every other step (timeouts, spurious wakes,
// deadline checks, membarriers, destroy, spawn, and any operation the
// reduction does not know).
struct Footprint {
    bool global = false;
    std::vector<std::pair<std::uintptr_t, bool>> acc;  // granule, written
    void add(const void* p, std::size_t size, bool write);
    void merge(const Footprint& o);
};
bool dependent(const Footprint& a, const Footprint& b);

// A transition explored from a decision (or asleep there). Its footprint is
// taken afresh in each run, from the state the run is in (every run makes its
// program anew, at other addresses): the operation its thread announced, or
// its buffer's oldest store; `extras`: when it ran it did more than that (a
// thread's first step, a spin, a spawn, a destroy), so it counts as global.
struct Sleeper {
    OptKind kind;
    int thread;
    bool extras;
    Footprint fp{};
};

struct Decision {
    int chosen;
    int count;
    int cost_before;          // preemptions spent before this decision
    std::vector<char> costs;  // of each option
    // Only under reduction (Config::reduction):
    std::vector<Option> opts{};    // the options, to name an actor's ones
    std::vector<char> todo{};      // per option: 0 not wanted, 1 to explore, 2 explored
    bool switched = false;         // the choice was not "the thread that ran goes on"
    bool frozen = false;           // in a run past a sleep-set block: no alternatives
    bool extras = false;           // the chosen option's step did more than announced
    std::vector<Sleeper> sleep{};  // asleep when the search arrived here
    std::vector<Sleeper> done{};   // options explored here before the chosen one
};

struct RunAbort {};

// One trace line and who sees it: raw lines (memory operations) in a run
// without notes or with Config::verbose; events in every trace; quiet events
// (sleeps, wakes: the raw lines say as much) only where raw lines do not
// show; notes (explore::note) wherever the run made some.
enum class Level : char { raw, event, quiet, note };
struct TraceLine {
    long step;
    Level level;
    std::string text;
};

class Scheduler;
struct C11;                 // the C++ memory model's operations (explorer_c11.cpp)
struct C11State;            // and its state for one run
extern Scheduler* g_sched;  // the scheduler of the run in progress
extern std::string (*g_wait_describer)(int thread);  // set_wait_describer
// Set by explore::run(): wraps what explore::spawn() starts, so that a
// thread spawned inside run() is a kernel thread with a KTHREAD of its own.
extern std::function<void()> (*g_spawn_wrapper)(std::function<void()> fn);

class Scheduler {
  public:
    // The name label() gave the memory at p ("lock+4"), or "".
    std::string label_of(const void* p) const;
    Scheduler(const Config& c) : config_(c), rng_(c.seed) {}

    // ---- one run ----
    bool run_once(const Program& program, std::vector<Decision>& trail,
                  std::vector<std::string>* forced, bool tracing);

    const std::string& violation() const { return violation_; }
    std::string schedule() const;
    std::string trace(std::size_t last) const;
    long steps() const { return steps_; }
    long violation_step() const { return violation_step_; }

    // ---- called from model threads ----
    int current() const { return running_; }
    int spawn(std::function<void()> fn);
    void user_note(const char* line);
    bool deadline_passed();

    // Before a shared-memory operation: hand control to the scheduler.
    void yield() {
        if (running_ < 0) return;
        step();
    }
    [[noreturn]] void fail(const char* what);
    void check_alive(const void* p, std::size_t size);
    void load(const void* p, void* out, std::size_t size);
    void store(void* p, const void* in, std::size_t size, bool seq_cst);
    void rmw(void* p, void* old, void* out, std::size_t size,
             const std::function<bool(const void*, void*)>& update, const char* what);
    void fence(bool all);
    bool futex_wait(const void* p, std::uint32_t expected, bool has_deadline);
    void futex_wake(const void* p, int count);
    bool spin_wait(bool has_deadline);
    void spin_begin();
    void event_wait(const void* e);
    void event_signal(const void* e, bool* signalled);
    void destroy(const void* p, std::size_t size);
    void label(const void* p, std::size_t size, const char* name);

    // ---- partial-order reduction (explorer_search.cpp) ----
    // Every operation that yield()s first announces itself, before its
    // yield(): the reduction attributes it to the step that the choice at
    // that yield() starts. An operation that yields unannounced is taken as
    // dependent with everything. touch_*: what the step in progress does
    // without a yield of its own.
    enum class Op : char { load, store, store_seq_cst, rmw, sync, fence, fence_all, time, global };
    void announce(Op op, const void* p = nullptr, std::size_t size = 0) {
        if (por_) por_announce(op, p, size);
    }
    void touch_global() {
        if (por_) por_touch_global();
    }
    void touch_spin_reads() {
        if (por_) por_touch_spin_reads();
    }
    // The step in progress writes [p, p + size) and drains its thread's
    // buffer, without a yield of its own (destroy()).
    void touch_write(const void* p, std::size_t size) {
        if (por_) por_touch_write(p, size);
    }
    // What the running thread's announced operation turned out to do, where
    // that is less than its announcement said: `read_only`: the granules of
    // [p, p + size) it only read (an RMW that wrote nothing or the value
    // there already, a futex_wait that returned at once); `untouched`: ones
    // it did not touch at all. Granules its own buffered stores reach keep
    // their write (draining them wrote there).
    void refine(const void* p, std::size_t size, bool untouched) {
        if (por_) por_refine(p, size, untouched);
    }
    // Where a futex's or an event's wait queue is, to the reduction: a
    // granule of its own beside the word's (a wait that sleeps and a wake
    // that wakes write it; a wake that finds no sleeper reads it), so that
    // the queue's operations do not conflict with the word's loads.
    static const void* queue_of(const void* p) {
        return reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(p) |
                                             (std::uintptr_t{1} << 62));
    }
    // Thread t's store buffer as a granule of its own (unbounded searches,
    // por_announce): a membarrier waits for every buffer to be empty, so a
    // plain store (which fills one) and an F step (which may empty it) are
    // dependent with it, though not with each other: they read the granule,
    // the membarrier writes it.
    static const void* buffer_of(int t) {
        return reinterpret_cast<const void*>((std::uintptr_t{1} << 61) +
                                             16 * static_cast<std::uintptr_t>(t));
    }
    // Between runs of an exhaustive search: moves the trail to the next
    // schedule (false: none left); counts the branches the reduction skips.
    static bool next_schedule(std::vector<Decision>& trail, const Config& config, long& pruned);
    // Whether this configuration's search is reduced (Config::reduction, an
    // exhaustive search, a memory model the reduction knows).
    static bool reduces(const Config& config);
    bool redundant() const { return por_blocked_; }

  private:
    struct Label {
        std::uintptr_t lo, hi;
        std::string name;
    };

    // ---- fibers and the switches between them (explorer_scheduler.cpp) ----
    void make_fiber(Thread& t);
    void keep_abandoned_stacks();
    static void trampoline();
    [[noreturn]] void finish_thread();
    [[noreturn]] void end_run();
    [[noreturn]] void leave_fiber(bool);
    void switch_to_scheduler();
    void resumed(void* fake);
    void switch_to(int i);
    void swap_fiber_locals(Thread& t, bool in);
    void run_body();
    // On a fiber, each time it goes on after a choice: the replay hooks.
    void went_on();
    // Records the first violation (later ones are consequences), with its step.
    void set_violation(std::string what);
    void jump_to_scheduler(Thread& t);
    void jump_to_fiber(Thread& t);
    // A choice is made in one of two places: step() on the running fiber,
    // loop() in the scheduler's context when no fiber runs.
    void step();
    void prime_park();
    int decide_or_abort(const std::vector<Option>& opts);
    bool loop();

    // ---- memory and waits (explorer_memory.cpp) ----
    void flush_one(int i);
    bool block(State s, const void* addr, bool has_deadline);
    int wake(State s, const void* addr, int count);
    void remember_read(const void* p, const void* value, std::size_t size);
    void memory_written();
    bool read_changed(const Thread& t, const Store& r) const;
    void drain(int i, std::size_t n);
    bool destroyed(const void* p, std::size_t size) const;

    // ---- choices (explorer_search.cpp) ----
    void por_begin();
    void por_announce(Op op, const void* p, std::size_t size);
    void por_touch_global();
    void por_touch_spin_reads();
    void por_touch_write(const void* p, std::size_t size);
    void por_spin_begin();
    void por_spin_failed();
    void por_refine(const void* p, std::size_t size, bool untouched);
    bool buffered_in(const void* p, std::size_t size) const;
    void por_fresh();     // step(): a fresh thread's first operation is in the step in progress
    void por_at_yield();  // step(): the running thread is paused before an operation
    void por_close();     // the step in progress ends (a choice, or the run's end)
    void por_open(const Option& o);
    int por_new_decision(const std::vector<Option>& opts, Decision& d);
    void por_grow();
    // The latest step that conflicts with `actor` doing `f` and does not
    // happen before it (clock: the actor's), backtracked; `deps` gets every
    // step it conflicts with.
    void por_race(int actor, const Footprint& f, const std::vector<int>& clock,
                  std::vector<int>* deps = nullptr);
    void por_backtrack(std::size_t j, int actor);
    void por_add(Decision& d, int actor);
    void por_add_initial(std::size_t j, int actor, const std::vector<int>& clock);
    Footprint timeout_footprint(int thread) const;
    bool unbounded_search() const;
    bool drain_blocked(int i) const;
    Footprint op_footprint(int t) const;
    Footprint flush_footprint(int t) const;
    void por_refresh(std::vector<Sleeper>& set);
    std::vector<Option> options();
    int decide(const std::vector<Option>& opts);
    void pct_setup();
    void pct_add_thread(int i);
    int pct_choose(const std::vector<Option>& opts, bool);

    // ---- text (explorer_report.cpp) ----
    std::string blocked_threads() const;
    std::string where(const void* p) const;
    static std::string show(const void* v, std::size_t size);
    // A raw line for the running thread (memory operations).
    void note(const std::string& what);
    void trace_line(int thread, const std::string& what, Level level = Level::event);

  public:
    long expected_steps_ = 64;  // PCT's horizon, learned from earlier runs

  private:
    Config config_;
    std::mt19937_64 rng_;
    // A deque: spawn() appends while fibers hold references to their Thread
    // (and a ucontext_t must not move: it points into itself).
    std::deque<Thread> threads_;
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
    int running_ = -1;      // the fiber executing now, -1 in the scheduler
    bool priming_ = false;  // run_once runs each thread up to its first yield
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
    std::vector<TraceLine> trace_;
    bool tracing_ = false;
    bool noted_ = false;  // the run made a note: kernel-level trace
    bool hooks_ = false;  // a replay: call the gdb hooks
    bool break_done_ = false;
    std::string violation_;
    long violation_step_ = 0;
    std::array<char, 16> main_eh_{};
    std::vector<int> priority_;
    std::vector<long> change_points_;

    // ---- partial-order reduction, per run (explorer_search.cpp) ----
    // Actors: thread i is 2i, its store buffer (its F<i> flushes) 2i + 1.
    struct PorEvent {
        int actor;
        Footprint fp;
        std::vector<int> clock;  // vector clock of the happens-before order
        bool extras = false;     // did more than announced (see Sleeper::extras)
        char drains = 0;         // its operation drains: 1 its own buffer, 2 every buffer
        bool stutter = false;    // a failed spin iteration's last step (por_spin_failed)
        // The buffers (F actors) this step drained, non-empty when it began:
        // it wrote their stores as their F steps would have (por_race).
        std::vector<std::pair<int, Footprint>> drained{};  // F actor, the stores it wrote
    };
    struct PorCell {  // per granule: its last write, and the reads since
        std::uintptr_t granule;
        int last_write;
        std::vector<int> reads;  // every read since (a failed spin's are taken out)
    };
    bool por_ = false;
    bool por_open_ = false;  // a step is in progress (events_.back())
    bool por_blocked_ = false;
    std::vector<PorEvent> events_;  // one per decision of this run
    std::vector<Footprint> next_op_;
    std::vector<char> has_next_op_;
    // Per thread: its announced operation drains 1 its own buffer, 2 all.
    std::vector<char> next_drains_;
    std::vector<int> spin_from_;  // per thread: the step its spin iteration began in
    std::vector<std::vector<int>> actor_clock_;
    std::vector<int> latest_event_;          // per actor: its latest step that touched anything
    std::vector<std::deque<int>> buffered_;  // per thread: the step that made each buffered store
    std::vector<State> states_at_open_;
    std::vector<PorCell> cells_;
    int last_global_ = -1;
    int flush_source_ = -1;  // the step that made the store an F step drains

    // ---- the C++ memory model, Memory::cxx (explorer_c11.cpp) ----
    friend struct C11;
    void c11_reset();                         // at a run's start
    void c11_spawned(int parent, int child);  // the child starts with its parent's view
    std::shared_ptr<C11State> c11_;           // null unless Memory::cxx
};

// The inverse of Scheduler::schedule(): one name per choice.
std::vector<std::string> parse_schedule(const std::string& s);

}  // namespace kmlab::explore::internal
