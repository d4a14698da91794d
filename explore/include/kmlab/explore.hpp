// The schedule explorer: runs a small concurrent program again and again, one
// schedule at a time, until every schedule within a preemption bound has run
// (or a seeded random sample of them, for larger programs), and reports the
// first schedule that breaks it in a form that replays.
//
// How it works (after CHESS [Musuvathi et al., OSDI 2008], folly's
// DeterministicSchedule, Rust's loom and Relacy):
//  * Each model thread is a fiber (ucontext) on one OS thread, so exactly one
//    runs at a time and a run is a pure function of its scheduling choices.
//  * The lock algorithms reach shared memory, wait/wake and spinning only
//    through the platform seam (kmlab/platform/platform.hpp). explore::Platform
//    implements it: before every shared-memory operation the fiber hands
//    control back to the scheduler, which picks who performs the next one.
//  * Search: stateless depth-first search over the choice points, replaying
//    each schedule from the start (no state capture). A preemption is a
//    choice other than "the thread that just ran goes on" while that thread
//    could go on; schedules with more than `preemption_bound` of them are not
//    run (CHESS: most concurrency bugs need very few).
//  * Threads: the program's threads are T0..Tn-1; explore::spawn() starts
//    another mid-run (PsCreateSystemThread under run()), numbered on in
//    creation order, so a schedule names the same threads when it replays.
//    A run ends when every thread, spawned ones included, has finished.
//  * Memory (Config::memory), three models:
//     - sc: sequentially consistent. Every operation acts on memory at once,
//       in the order the schedule runs them; the orders code names are not
//       read.
//     - tso: x86-TSO. Every plain store goes into its thread's FIFO store
//       buffer; loads forward from the thread's own buffer; read-modify-
//       writes, seq_cst stores, seq_cst fences, futex calls (the kernel takes
//       a lock) and the thread's end drain its own buffer (the end is a step
//       of its own while stores are pending, so others may run first); a
//       membarrier drains every thread's buffer. Draining the oldest store
//       of a buffer is a scheduling choice like running a thread (costing a
//       preemption unless nothing else could run), so the search covers
//       every moment a store can become visible. By default stores stay
//       buffered as long as they may: the cheapest schedules are the most
//       reordered ones. Every operation gets x86's ordering whatever
//       std::memory_order it names, so an all-relaxed lock passes here.
//     - cxx: the C++20 memory model for the orders the code names
//       (explore/src/explorer_c11.cpp, after CDSChecker and loom). Each
//       atomic location keeps its modification order (its last 7 stores,
//       as loom keeps), each thread a vector clock. A load may read any
//       store that coherence and happens-before leave it (R<n> in a
//       schedule names the store: the n-th of its location; the newest is
//       the default, an older one costs a preemption, so the zero-cost
//       schedules are the sequentially consistent ones); an acquire that
//       reads a release store, or a store of its release sequence (which
//       read-modify-writes continue), joins the storer's view; fences
//       synchronize as [atomics.fences] says; RMWs read the newest store.
//       seq_cst: S is the order the run makes seq_cst operations and fences
//       in; a seq_cst load reads no older than S makes it (the newest
//       seq_cst store, and whatever a seq_cst fence before it in S could
//       see), and after a seq_cst fence a thread reads no older than what
//       earlier seq_cst operations made unavoidable. seq_cst makes no
//       happens-before of its own. Plain<T> memory is checked for data
//       races by happens-before (a violation naming both accesses). Futex
//       calls read the word's newest value and are seq_cst fences (the
//       kernel's smp_mb()); a futex wake makes no happens-before, as in
//       C++ and Linux: a woken thread synchronizes through the atomics it
//       reads afterwards. An EventGate (a KEVENT: the dispatcher lock
//       orders its set and wait) releases at a signal and acquires at the
//       wait it ends. A membarrier is a seq_cst fence in every thread.
//       The explorer's spawn synchronizes with the new thread's start.
//   Not modelled, in any mode: the compiler's reordering and merging of
//   accesses beyond what the memory model allows it (the model runs the
//   code as written, so a data race that only an optimizer would turn
//   into a bug shows only as the race), out-of-thin-air values and other
//   load-buffering results (a load reads only stores already made in the
//   run: r1 = x; y = r1 || r2 = y; x = 42 never gives r1 == 42, which C++
//   allows and ARM and POWER do), modification orders other than the run's
//   (a store joins its location's modification order when it runs, so two
//   stores that no happens-before orders never land in the order opposite
//   to the one they ran in, which C++ allows: e.g. an entry's
//   initialisation landing after a successor's write to it; loom has the
//   same limit, CDSChecker explores them), a failed compare-exchange reading an
//   older store than the newest (it reads the newest, as an RMW does;
//   C++ lets it read older) and spurious compare-exchange failures,
//   consume (taken as acquire), mixed-size or overlapping atomic accesses
//   (a location is an address and a size; an access of another size
//   restarts its history, as a write outside the seam does), hardware
//   behaviours outside C++'s model (ARM's and POWER's orderings that only
//   dependencies or ISA barriers give, non-multi-copy-atomic POWER stores
//   beyond what C++ allows, instruction fetch, device memory), and the
//   mixing of native and model accesses to one location: memory written
//   outside the seam (a constructor, a reset) is taken as written before
//   every later model access. Memory a lock touches outside the seam (its
//   owner field, contention counter and recursion count, written by the
//   owner alone and before the operation that frees the lock) gets no
//   scheduling point, no destroy check and no race check.
//  * Futex waits: a futex_wait may return without a wake, as the backend
//    contract allows (Config::spurious_wakeups, on by default): waking a
//    sleeper spuriously is a choice costing a preemption, offered at every
//    choice while some other thread can run (where nothing else can, it would only re-run the
//    sleeper's check on unchanged memory). EventGate (a KEVENT) never wakes
//    spuriously.
//  * Time is virtual: a blocked wait or spin with a deadline may time out at
//    any choice point (a choice), and never otherwise; a running thread's
//    "has my deadline passed?" (detail::deadline_passed) is a choice too.
//    Nothing else reads a clock: Platform::now() stands still.
//  * Violations, each with the step it happened at: a deadlock (threads
//    left, none can run and no store is pending; each blocked thread named,
//    by set_wait_describer's function where one is set), a check failed
//    inside the program (explore::check / fail, e.g. two threads in the
//    critical section), a C++ exception escaping a thread (a kmlab::BugCheck
//    by code and parameters), a failed final check (e.g. the lock not back
//    in its initial state), an access to memory the program destroyed
//    (explore::destroy), and a run longer than `step_limit`. Code under test
//    may throw and catch freely: each fiber has its own C++ exception state.
//  * Reports: Result::summary() and describe() print the command that
//    replays the failure (KMLAB_MODEL_REPLAY='<schedule>' <program>); the
//    trace is kernel-level when the program notes its operations
//    (explore::note), raw memory operations otherwise or with
//    Config::verbose. Under gdb, a replay calls kmlab_explore_break() in the
//    thread that performs step KMLAB_MODEL_BREAK (end of this header).
//  * Choices a schedule names: T<n> run thread n, X<n> expire its deadline,
//    F<n> drain its oldest buffered store, W<n> wake it spuriously, D<n>
//    "its deadline has passed", R<n> (Memory::cxx) the load just made reads
//    the n-th store of its location; "T0*3" is three T0s.
//  * The kernel under run() (explore/src/kernel_run.cpp): link seams, so
//    production's objects are untouched. libkmlab_explore.a holds second
//    translations of kernel/src's dispatcher.cpp, objects.cpp,
//    fast_mutex.cpp, system_thread.cpp, thread.cpp, spin_lock.cpp,
//    resource.cpp, push_lock.cpp, ex_spin_lock.cpp, time.cpp and timer.cpp
//    (explore/src/*_seam.cpp, pulled ahead of libkmlab_kernel.a's by a
//    marker each that DispatcherUnderModel's constructor references). Under
//    the model there: the dispatcher's lock, parking and wake word,
//    FAST_MUTEX / KGUARDED_MUTEX Count, the lock words of KSPIN_LOCK, in-stack
//    queued spin locks (the entries too), EX_SPIN_LOCK, push locks (a sleeper
//    parks on a model futex) and ERESOURCE (its state word and internal
//    lock), each spin for them blocking on what it read (so a holder
//    switched out inside its section no longer hangs a spinner; threads at
//    DISPATCH_LEVEL are switched out like any other: explore/src/
//    lock_seam.hpp), the clocks (virtual, below), the KTHREAD reference
//    count (a freed KTHREAD, like freed pool, is destroyed memory until the
//    run ends), PsCreateSystemThread (a spawn), thread exit (the kernel's
//    rundown and its bug checks, which are violations), every deadline
//    (D<n> before blocking, X<n> after), alerts and user APCs. (A test's
//    own DispatcherUnderModel, without run(), gets Count and the lock words
//    too, and the wake word's reset and the reference count on request:
//    explore/dispatcher.hpp, model_thread_atomics.) Limits, with reasons:
//     - the dispatcher's state under its lock (wait lists, SignalState, a
//       KTHREAD's wait fields) is plain memory, one step with the lock that
//       orders it; its lock-free reads (KeReadStateXxx) are not steps;
//     - the idiomatic FastMutex / GuardedMutex<T, Dispatcher>'s Count
//       (mutexes/raw.hpp) stays native: inline header code compiled into the
//       caller, which no link seam reaches, and a run-time test on its fast
//       path would cost production. Its gate (a KEVENT) is under the model,
//       and the same algorithm runs over model backends in the model tests;
//     - the idiomatic types over the futex backend (their default) keep
//       their lock words native for the same reason, but park through
//       platform::sys::futex_wait, whose explorer copy (futex_seam.cpp) is
//       the model's futex: they switch at their futex calls only, and the
//       model's Futex / Spin backends (below) are what their own model tests
//       run, copies of the production bodies (one system call each) whose
//       spin budget is checked against backends::Futex's;
//     - likewise the idiomatic SpinLock, QueuedSpinLock, Resource<T>,
//       PushLock and RwSpinLock (mutexes/, inline header code) keep native
//       atomics: one holding such a lock across a scheduling point while
//       another spins for it still hangs the run. Their algorithms are
//       explored in their own model tests. ERESOURCE's OwnerEntry, its
//       waiter counters and the threads' shared-hold tables stay native
//       (written by the owner or under the internal lock);
//     - time stands still (lock_seam.hpp): KeQuerySystemTime returns
//       2026-01-01 00:00:00 UTC in every run, absolute timeouts and due
//       times count from it, relative ones from the model's epoch. A KTIMER
//       expires only when a thread of the test calls kernel::expire_timer
//       (the test plays the clock, as model_timer_test does; run() starts
//       no clock of its own), or inside KeSetTimer(Ex) for an absolute due
//       time already past. An absolute wait timeout already past is still a
//       choice as a relative one is (it may be taken as not yet passed): a
//       deadline carries no record of how it was given.
//       KeQueryInterruptTime and KeQueryTickCount are not emulated;
//     - per-object lock mode: inside a run each object takes one of 4
//       stripes in order of first use, not an address hash, so that a run
//       does not depend on where its objects were allocated (a schedule
//       replays); objects share a stripe only from the fifth on;
//     - object names in reports and kernel-level trace lines come from
//       explore::label (detail::label_of); an object never labelled is named
//       by its address, which differs from run to run.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <kmlab/backends/futex.hpp>
#include <kmlab/platform/platform.hpp>

namespace kmlab::explore {

// What a run's shared memory is (the header comment above says what each
// models and what it leaves out): sequentially consistent, x86-TSO, or the
// C++20 memory model with the orders the code names.
enum class Memory { sc, tso, cxx };

// Partial-order reduction of the exhaustive search (Config::reduction):
// never; only in searches with no preemption bound (the default); or in
// bounded searches too. It sees shared memory only through the seam (model
// atomics, futex and event calls): where threads share plain memory outside
// it (the dispatcher's lists under its locks, a test's plain counters), two
// steps that touch it only look independent, and a bug that lives in that
// memory alone can be pruned away (the timer-list mutant of
// model_timer_test.cpp is, in a reduced bounded search). So the bounded
// searches, which every existing configuration runs, stay unreduced unless
// a test asks; an unbounded search, only possible reduced, states the
// limit. explorer_search.cpp has the algorithm and what it guarantees.
enum class Reduction { off, unbounded, always };
// "sc", "tso", "c++": the name a summary line prints.
constexpr const char* memory_name(Memory m) noexcept {
    return m == Memory::sc ? "sc" : m == Memory::tso ? "tso" : "c++";
}

struct Config {
    Memory memory = Memory::sc;
    // Negative: no bound (every schedule; only sensible with `reduction`).
    int preemption_bound = 2;
    // Partial-order reduction of the exhaustive search (sc and tso): of
    // schedules that differ only in the order of independent steps, run one
    // (dynamic partial-order reduction [Flanagan & Godefroid, POPL 2005];
    // without a bound, sleep sets and source sets [Abdulla et al., POPL
    // 2014], failed spin iterations as stutters, timeouts as the waiting
    // thread's steps; with a bound, the conservative extra backtracking of
    // [Coons et al., OOPSLA 2013]). KMLAB_MODEL_REDUCTION: 0 (off),
    // unbounded, all (always).
    Reduction reduction = Reduction::unbounded;
    // Stop after this many schedules (0: no limit). A search stopped early
    // reports complete = false.
    long max_schedules = 0;
    long step_limit = 20000;
    // Random (PCT-style) search instead of exhaustive: `random_schedules`
    // runs, each with random thread priorities and pct_depth - 1 priority
    // change points [Burckhardt et al., ASPLOS 2010], from `seed`.
    bool random = false;
    long random_schedules = 0;
    std::uint64_t seed = 1;
    int pct_depth = 3;
    // Run exactly this schedule (as printed in a Result) and record a trace.
    std::string replay;
    // thread_local variables of the code under test: the model threads share
    // one OS thread, so each gets its own copy of these blocks, swapped in
    // whenever it runs (its copy starts as the scheduler's).
    std::vector<std::pair<void*, std::size_t>> fiber_locals;
    // Traces list raw memory operations too, not only kernel-level ones.
    bool verbose = false;
    // A futex_wait may return without a wake (the backend contract allows
    // it): while another thread can run, waking a sleeper spuriously is a
    // choice costing one preemption (W<n> in a schedule).
    bool spurious_wakeups = true;
    // In a replay: call kmlab_explore_break() on the first model thread to
    // go on at or after this step (0: never; KMLAB_MODEL_BREAK).
    long break_step = 0;
};

struct Result {
    long schedules = 0;  // runs made
    // Branches of the search the reduction skipped (Config::reduction): each
    // is one or more schedules equivalent to one that ran.
    long schedules_pruned = 0;
    // Runs that ended in a sleep-set block (counted in `schedules`): each
    // only finished a schedule equivalent to one explored elsewhere.
    long schedules_redundant = 0;
    bool reduced = false;   // the search ran with partial-order reduction
    bool complete = false;  // exhaustive search finished within the bound
    bool violation = false;
    std::string what;      // the first violation
    std::string schedule;  // the schedule that led there (Config::replay takes it)
    std::string trace;     // its last operations, one per line
    long max_steps = 0;    // the longest run, in scheduling steps
    long step = 0;         // the step the violation happened at (KMLAB_MODEL_BREAK)
    // One line; on a violation a second one, the command that replays it.
    std::string summary() const;
    // The line to paste: KMLAB_MODEL_REPLAY='<schedule>' <program>
    // [--gtest_filter=<test>] (empty without a violation).
    std::string replay_command(const std::string& test = {}) const;
    // A violation in full: what, the replay command, the trace of its end.
    std::string describe(const std::string& test = {}) const;
};

// One run of the program: a function per model thread, and a check that runs
// after every thread has finished (empty string: fine, else what is wrong).
struct Program {
    std::vector<std::function<void()>> threads;
    std::function<std::string()> check;
};

// Calls make() for every run, so each run starts from fresh state.
Result explore(const Config& config, const std::function<Program()>& make);

// ---- a driver's own test under the explorer ----
// (Declared here, implemented in explore/src/kernel_run.cpp; the API a driver
// author uses. See README "Explore your own test".)
//
// Runs `body` as model thread T0, once per schedule, with the whole emulated
// kernel under the model: the dispatcher (both lock modes), system threads
// (PsCreateSystemThread starts a model thread), thread exit and its rundown,
// virtual time (a timeout fires only as a scheduling choice). Each run starts
// from fresh kernel state for the threads it creates, and with Driver
// Verifier's lock graph empty (kernel/verifier.hpp: reset() per run).
Result run(const Config& config, const std::function<void()>& body);

// Inside a run: starts a model thread running `fn` (what PsCreateSystemThread
// does under the model); returns its index (T<index> in traces). Indices go
// up in creation order, so a schedule replays with the same names. The new
// thread first runs at a later scheduling choice (the creator goes on by
// default); its Config::fiber_locals start as the explorer's OS thread has
// them, as T0's do. Inside run() it is a kernel thread: a KTHREAD of its own,
// and the kernel's thread exit at its end. The run ends when every thread,
// spawned ones included, has finished.
int spawn(std::function<void()> fn);
// Inside a run: unless `condition`, a violation naming `message`.
void check(bool condition, const char* message);
// Inside a run: one kernel-level trace line for the running thread
// ("KeSetEvent(done) wakes T1"). A run that notes anything traces its notes
// and the scheduling events (start, end, sleeps, wakes, timeouts, the
// violation); its raw memory operations show only with Config::verbose. A
// run without notes (a lock algorithm's) traces its memory operations.
void note(const char* line);
// Deadlock reports: called once per blocked thread (outside any model
// thread), it returns that thread's line, e.g. "T1 waits in
// KeWaitForSingleObject on KEVENT 'done' (owner: none)"; an empty string
// (or no describer: nullptr) gives the explorer's own "T1 sleeps in
// futex_wait on <address>".
void set_wait_describer(std::string (*describe)(int thread));
// True inside a run (in a model thread).
bool active() noexcept;
// `defaults`, overridden by the environment: KMLAB_MODEL_REPLAY (a schedule
// as a Result prints it), KMLAB_MODEL_BOUND (the preemption bound;
// "none": no bound), KMLAB_MODEL_REDUCTION (0: no partial-order reduction),
// KMLAB_MODEL_RANDOM (a count of PCT runs: random search), KMLAB_MODEL_SEED,
// KMLAB_MODEL_VERBOSE (1: raw memory operations in traces), KMLAB_MODEL_BREAK
// (a step). A value that is not a number throws std::invalid_argument.
// explore() (and so run()) itself honours KMLAB_MODEL_REPLAY and
// KMLAB_MODEL_BREAK where Config::replay / break_step are unset, and
// KMLAB_MODEL_VERBOSE (traces only). Under KMLAB_MODEL_REPLAY every
// explore() call in the process runs that one schedule, so a test binary
// takes --gtest_filter to pick the test, as Result::replay_command() prints
// it. A schedule that names a choice the program cannot make is a violation
// ("the replayed schedule does not fit this program ..."), never a crash.
Config config_from_environment(Config defaults = {});

// Inside a model thread: record a violation and end the run.
// (A C string: the run ends inside this call, so its caller's temporaries
// are never destroyed.)
[[noreturn]] void fail(const char* what);
// Marks [p, p + size) destroyed: any later model access to it is a violation
// (futex wakes are exempt: they are system calls on an address).
void destroy(const void* p, std::size_t size);
// Names [p, p + size) in traces ("lock+4" instead of an address).
void label(const void* p, std::size_t size, const char* name);
// The running model thread's index, or -1 outside a run.
int current_thread();

// Test-only switch for the membarrier seam of Platform::heavy_fence():
//   exact    membarrier: every thread's store buffer drains; returns true
//   fallback membarrier refused: a fence on this thread only; returns false
//   broken   returns true but drains only this thread's buffer, as if the
//            membarrier pairing were switched off (the explorer must then
//            find the lost wake-up it prevents)
enum class HeavyFence { exact, fallback, broken };
void set_heavy_fence(HeavyFence mode);

namespace detail {
// The operations behind Atomic / AtomicRef; each is one scheduling step.
void load(const void* p, void* out, std::size_t size);
void store(void* p, const void* in, std::size_t size, bool seq_cst);
// Read-modify-write: drains this thread's buffer, reads the old value into
// `old`, and if `update(old, out)` returns true writes `out`.
void rmw(void* p, void* old, void* out, std::size_t size,
         const std::function<bool(const void*, void*)>& update, const char* what);
void fence(bool all_threads);
bool futex_wait(const void* p, std::uint32_t expected, bool has_deadline);
void futex_wake(const void* p, int count);
// Blocks until what the spinner read since spin_begin() would read
// otherwise (another thread's store, or its own buffered store drained and
// another landing after it), or until memory it read is destroyed (it checks
// again, and touches it); with a deadline, until the scheduler times it out:
// then false. A spinner that read nothing wakes at any write.
bool spin_wait(bool has_deadline);
void spin_begin();
void event_wait(const void* event);
void event_signal(const void* event, bool* signalled);
// A time check made while not blocked ("has this deadline passed yet?"):
// a scheduling step, then a choice: false (the default) or true (D<n> in a
// schedule; costs one preemption, as a timeout does while others could run).
// Virtual time never passes by itself, so once this answered true for a
// deadline the caller must treat that deadline as passed for good. Outside
// a run: false.
bool deadline_passed();
// The name label() gave the memory at `p` in the run in progress ("done",
// "lock+4"), or "" if none: the kernel's trace lines and deadlock reports
// under run() name objects with it.
std::string label_of(const void* p);
// The operations with the order the code names (explorer_c11.cpp). Under
// Memory::sc and Memory::tso they are the operations above (a store is
// seq_cst there only when it names seq_cst, as before; the other orders
// change nothing); under Memory::cxx the order is modelled. `failure` is a
// compare-exchange's order when it writes nothing.
void load(const void* p, void* out, std::size_t size, std::memory_order order);
void store(void* p, const void* in, std::size_t size, std::memory_order order);
void rmw(void* p, void* old, void* out, std::size_t size,
         const std::function<bool(const void*, void*)>& update, const char* what,
         std::memory_order success, std::memory_order failure);
// std::atomic_thread_fence(order): under sc and tso a seq_cst fence is
// fence(false) and the others are no-ops (x86 orders loads and stores so).
void thread_fence(std::memory_order order);
// An access to Plain memory: under Memory::cxx checked for a data race, not
// a scheduling point; nothing under sc and tso.
void plain_access(const void* p, std::size_t size, bool write);
}  // namespace detail

// std::atomic_thread_fence over the model memory (another name: a call with
// a std::memory_order would find std::atomic_thread_fence too, by ADL).
inline void thread_fence(std::memory_order order) {
    detail::thread_fence(order);
}

// Plain (non-atomic) memory that threads of a run share, such as the data a
// lock protects. Under Memory::cxx every access is checked against the
// others by happens-before: two accesses of different threads, at least one
// a write, with no happens-before between them are a data race, a violation
// that names both (thread, step, label). Happens-before comes from the
// program's own synchronization (an acquire that reads a release, or a
// store of its release sequence; fences; a spawn; an EventGate), never from
// the order the scheduler happened to run them in, so the check needs no
// scheduling point of its own: a race shows in any run where both accesses
// happen. Under sc and tso it is plain memory. Outside a run (a final
// check) an access is unchecked.
template <class T>
class Plain {
    static_assert(std::is_trivially_copyable_v<T>);

  public:
    Plain() : v_{} {}
    Plain(T v) : v_(v) {}  // NOLINT: as a T
    Plain(const Plain&) = delete;
    T load() const {
        detail::plain_access(&v_, sizeof(T), false);
        return v_;
    }
    void store(T v) {
        detail::plain_access(&v_, sizeof(T), true);
        v_ = v;
    }
    operator T() const { return load(); }  // NOLINT: reads as a T does
    Plain& operator=(T v) {
        store(v);
        return *this;
    }
    // A read, then a write (both checked), as `++x` on a plain int is.
    T operator++() {
        const T v = static_cast<T>(load() + 1);
        store(v);
        return v;
    }
    T operator--() {
        const T v = static_cast<T>(load() - 1);
        store(v);
        return v;
    }

  private:
    T v_;
};

// std::atomic<T> / std::atomic_ref<T> look-alikes over the model memory.
// Every operation passes on the order it names (seq_cst where it names
// none, as std::atomic); Memory::cxx models them, sc and tso do not (a
// store is seq_cst there only when it names seq_cst: x86 drains its store
// buffer for those alone). A compare-exchange given one order fails with
// that order less its release part, as std::atomic's does.
template <class T, bool Ref>
class AtomicBase {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8);
    static constexpr auto kSeqCst = std::memory_order_seq_cst;

  public:
    T load(std::memory_order o = kSeqCst) const {
        T v;
        detail::load(addr(), &v, sizeof(T), o);
        return v;
    }
    void store(T v, std::memory_order o = kSeqCst) { detail::store(addr(), &v, sizeof(T), o); }
    T exchange(T v, std::memory_order o = kSeqCst) {
        return update([&](T) { return v; }, "exchange", o);
    }
    bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                                 std::memory_order failure) {
        T old, out = desired;
        bool ok = false;
        detail::rmw(
            addr(), &old, &out, sizeof(T),
            [&](const void* o, void*) { return ok = std::memcmp(o, &expected, sizeof(T)) == 0; },
            "cas", success, failure);
        if (!ok) expected = old;
        return ok;
    }
    // Never fails spuriously here (explore.hpp's header: not modelled).
    bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                               std::memory_order failure) {
        return compare_exchange_strong(expected, desired, success, failure);
    }
    bool compare_exchange_strong(T& expected, T desired, std::memory_order o = kSeqCst) {
        return compare_exchange_strong(expected, desired, o, failure_order(o));
    }
    bool compare_exchange_weak(T& expected, T desired, std::memory_order o = kSeqCst) {
        return compare_exchange_strong(expected, desired, o, failure_order(o));
    }
    T fetch_add(T d, std::memory_order o = kSeqCst) {
        return update([&](T v) { return static_cast<T>(v + d); }, "fetch_add", o);
    }
    T fetch_sub(T d, std::memory_order o = kSeqCst) {
        return update([&](T v) { return static_cast<T>(v - d); }, "fetch_sub", o);
    }
    T fetch_and(T d, std::memory_order o = kSeqCst) {
        return update([&](T v) { return static_cast<T>(v & d); }, "fetch_and", o);
    }
    T fetch_or(T d, std::memory_order o = kSeqCst) {
        return update([&](T v) { return static_cast<T>(v | d); }, "fetch_or", o);
    }

  protected:
    // [atomics.types.operations]: acq_rel fails as acquire, release as relaxed.
    static constexpr std::memory_order failure_order(std::memory_order o) noexcept {
        return o == std::memory_order_acq_rel   ? std::memory_order_acquire
               : o == std::memory_order_release ? std::memory_order_relaxed
                                                : o;
    }
    template <class F>
    T update(F f, const char* what, std::memory_order o) {
        T old, out;
        detail::rmw(
            addr(), &old, &out, sizeof(T),
            [&](const void* p, void* n) {
                T v;
                std::memcpy(&v, p, sizeof(T));
                const T r = f(v);
                std::memcpy(n, &r, sizeof(T));
                return true;
            },
            what, o, o);
        return old;
    }
    void* addr() const;
};

template <class T>
class Atomic : public AtomicBase<T, false> {
  public:
    Atomic() : v_{} {}
    Atomic(T v) : v_(v) {}  // NOLINT: as std::atomic
    Atomic(const Atomic&) = delete;
    T* raw() noexcept { return &v_; }

  private:
    friend class AtomicBase<T, false>;
    T v_;
};

template <class T>
class AtomicRef : public AtomicBase<T, true> {
  public:
    explicit AtomicRef(T& v) : p_(&v) {}

  private:
    friend class AtomicBase<T, true>;
    T* p_;
};

template <class T, bool Ref>
void* AtomicBase<T, Ref>::addr() const {
    if constexpr (Ref)
        return static_cast<const AtomicRef<T>*>(this)->p_;
    else
        return const_cast<T*>(&static_cast<const Atomic<T>*>(this)->v_);
}

// The platform seam over the model (kmlab/platform/platform.hpp).
struct Platform {
    template <class T>
    using atomic = Atomic<T>;
    template <class T>
    using atomic_ref = AtomicRef<T>;

    // Virtual time stands still: deadlines expire only by a scheduling choice.
    static std::chrono::steady_clock::time_point now() noexcept { return {}; }
    template <class Done>
    static bool spin_until(Done&& done, Deadline deadline) {
        detail::spin_begin();
        while (!done()) {
            if (!detail::spin_wait(!deadline.is_never())) return false;
        }
        return true;
    }
    // The asymmetric fence pair (see set_heavy_fence).
    static bool heavy_fence();
    static void light_fence() noexcept {}  // a compiler-only fence: no hardware effect
    static void full_fence() { detail::fence(false); }
};

// Backends over the model: a futex (sleeping waiters) and a spinner.
struct Futex {
    using platform = Platform;
    static constexpr std::string_view name() { return "model-futex"; }
    // As backends::Futex: the spin phase is explored too.
    static constexpr std::chrono::nanoseconds kSpinBeforePark = std::chrono::microseconds(1);
    static bool wait(Atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline) {
        return detail::futex_wait(word.raw(), expected, !deadline.is_never());
    }
    static void wake_one(Atomic<std::uint32_t>& word) { detail::futex_wake(word.raw(), 1); }
};
static_assert(Futex::kSpinBeforePark == backends::Futex::kSpinBeforePark,
              "the model's futex backend spins as long as production's");

struct Spin {
    using platform = Platform;
    static constexpr std::string_view name() { return "model-spin"; }
    static constexpr bool kNeverSleeps = true;
    template <class Done>
    static bool spin_until(Done&& done, Deadline deadline) {
        return Platform::spin_until(std::forward<Done>(done), deadline);
    }
    static bool wait(Atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline) {
        return spin_until([&] { return word.load() != expected; }, deadline);
    }
    static void wake_one(Atomic<std::uint32_t>&) {}
};

// A synchronization event with the dispatcher's semantics (KeSetEvent wakes
// the first waiter, FIFO, or leaves the event signalled for the next wait;
// a wait consumes the signal): the gate of FAST_MUTEX and KGUARDED_MUTEX.
struct EventGate {
    using platform = Platform;
    void wait() { detail::event_wait(this); }
    void signal() { detail::event_signal(this, &signalled); }
    bool quiescent() const noexcept { return !signalled; }
    bool signalled = false;
};

}  // namespace kmlab::explore

// Replays under gdb. In a replay (Config::replay, KMLAB_MODEL_REPLAY) every
// model thread calls kmlab_explore_step(thread, step) when it goes on after
// a scheduling choice, and the first one at or after Config::break_step
// (KMLAB_MODEL_BREAK=<step>, the step a violation names) calls
// kmlab_explore_break(thread, step) too, on its own stack:
//   KMLAB_MODEL_REPLAY='...' KMLAB_MODEL_BREAK=57 gdb -ex 'break kmlab_explore_break' ...
// stops in the model thread that performs step 57, with its frames above.
// The last break's arguments stay in kmlab_explore_break_thread / _step.
extern "C" {
void kmlab_explore_step(int thread, long step);
void kmlab_explore_break(int thread, long step);
extern volatile int kmlab_explore_break_thread;
extern volatile long kmlab_explore_break_step;
}
