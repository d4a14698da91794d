// explore::run(): a driver's test under the explorer, the whole emulated
// kernel under the model (explore.hpp), and the kernel_seam calls that the
// explorer's copies of kernel sources make (kernel_seam.hpp).
//
// Per run: the dispatcher under the model (DispatcherUnderModel, either lock
// mode), T0 running the body with a fresh KTHREAD, each thread's kernel
// thread_local state swapped per fiber (Config::fiber_locals), a bug-check
// handler that turns a bug check no caller can catch (thread exit) into a
// violation, and a wait describer that names, per blocked thread, the object
// kind, its label and its owner. Each model thread ends as a real one does:
// kernel::exit_current_thread() (rundown: abandoned mutants, the thread
// object signalled, the held-mutex bug checks).
#include <atomic>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kernel/bugcheck.hpp>
#include <kmlab/kernel/dispatcher.hpp>
#include <kmlab/kernel/pool.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/rules_spin_lock.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/mutexes/spin_lock.hpp>

#include <kmlab/kernel/verifier.hpp>
#include "dispatcher_core.hpp"
#include "explorer_internal.hpp"
#include "kernel_seam.hpp"

namespace kmlab::explore {

namespace {

using nt::PKTHREAD;

// The run in progress (one at a time: the explorer runs on one OS thread).
struct RunState {
    std::vector<PKTHREAD> threads;       // by model thread index; nullptr once exited
    std::vector<std::string> routine;    // the signalling routine each thread is in
    std::vector<std::string> pending;    // its trace line, until its section locks
    std::vector<const void*> gate;       // the mutex gate each thread waits on, if any
    std::map<const void*, int> stripes;  // per-object lock mode: each object's stripe
    // KTHREADs freed during the run (free_thread_later): freed with it.
    std::vector<std::pair<PKTHREAD, kernel::detail::ThreadExtra*>> freed;
    std::vector<void*> freed_pool;  // ExFreePoolWithTag's blocks, likewise
    RunState() = default;
    RunState(const RunState&) = delete;
    RunState& operator=(const RunState&) = delete;
    ~RunState() { clear(); }
    void clear() {
        // A thread still listed never exited: its run ended early.
        for (PKTHREAD t : threads) {
            if (t != nullptr && !t->Terminated) kernel::detail::abandon_thread(t);
        }
        threads.clear();
        routine.clear();
        pending.clear();
        gate.clear();
        stripes.clear();
        for (auto [t, extra] : freed) {
            delete extra;
            delete t;
        }
        freed.clear();
        for (void* b : freed_pool) kernel::release_pool_block(b);
        freed_pool.clear();
    }
};
RunState* g_state = nullptr;

void register_thread(int index, PKTHREAD t) {
    if (index < 0) return;
    const auto i = static_cast<std::size_t>(index);
    if (g_state->threads.size() <= i) {
        g_state->threads.resize(i + 1, nullptr);
        g_state->routine.resize(i + 1);
        g_state->pending.resize(i + 1);
        g_state->gate.resize(i + 1, nullptr);
    }
    g_state->threads[i] = t;
}

int index_of(const void* t) {
    if (g_state == nullptr || t == nullptr) return -1;
    for (std::size_t i = 0; i < g_state->threads.size(); ++i) {
        if (g_state->threads[i] == t) return static_cast<int>(i);
    }
    return -1;
}

std::string thread_name(const void* t) {
    const int i = index_of(t);
    if (i >= 0) return 'T' + std::to_string(i);
    return t == nullptr ? std::string("none") : std::string("a thread outside the run");
}

// A dispatcher object (or KTHREAD) a routine is about to use: a violation if
// the run destroyed it (freed pool, a KTHREAD whose last reference went).
// Not a scheduling point: the dispatcher reads its objects as plain memory.
void require_alive(const void* object, std::size_t size = sizeof(nt::DISPATCHER_HEADER)) {
    if (internal::g_sched != nullptr) internal::g_sched->check_alive(object, size);
}

// The name the test gave `p` (explore::label), else its address.
std::string name_of(const void* p) {
    if (std::string s = detail::label_of(p); !s.empty()) return s;
    if (index_of(p) >= 0) return thread_name(p);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", p);
    return buf;
}

std::string kind_of(const void* object) {
    const auto* h = static_cast<const nt::DISPATCHER_HEADER*>(object);
    switch (h->Type) {
        case nt::EventNotificationObject:
            return "KEVENT (notification)";
        case nt::EventSynchronizationObject:
            return "KEVENT (synchronization)";
        case nt::MutantObject:
            return static_cast<const nt::KMUTANT*>(object)->ApcDisable != 0 ? "KMUTEX" : "KMUTANT";
        case nt::SemaphoreObject:
            return "KSEMAPHORE";
        case nt::ThreadObject:
            return "thread";
        case nt::GateObject:
            return "KGATE";
        case nt::TimerNotificationObject:
        case nt::TimerSynchronizationObject:
            return "KTIMER";
        default:
            return "object";
    }
}

std::string owner_of(const void* object) {
    const auto* h = static_cast<const nt::DISPATCHER_HEADER*>(object);
    if (h->Type == nt::MutantObject)
        return thread_name(static_cast<const nt::KMUTANT*>(object)->OwnerThread);
    return "none";
}

std::string status_name(nt::NTSTATUS s) {
    switch (s) {
        case nt::STATUS_SUCCESS:
            return "STATUS_SUCCESS";
        case nt::STATUS_TIMEOUT:
            return "STATUS_TIMEOUT";
        case nt::STATUS_ALERTED:
            return "STATUS_ALERTED";
        case nt::STATUS_USER_APC:
            return "STATUS_USER_APC";
        case nt::STATUS_KERNEL_APC:
            return "STATUS_KERNEL_APC";
        default:
            break;
    }
    char buf[48];
    if (s > 0 && s < 64) {
        std::snprintf(buf, sizeof buf, "STATUS_WAIT_%d", static_cast<int>(s));
    } else if (s >= nt::STATUS_ABANDONED && s < nt::STATUS_ABANDONED + 64) {
        std::snprintf(buf, sizeof buf, "STATUS_ABANDONED_WAIT_%d",
                      static_cast<int>(s - nt::STATUS_ABANDONED));
    } else {
        std::snprintf(buf, sizeof buf, "0x%08" PRIX32, static_cast<std::uint32_t>(s));
    }
    return buf;
}

// "KeWaitForSingleObject(done)", "KeWaitForMultipleObjects(a, b; WaitAll)",
// "KeDelayExecutionThread".
std::string wait_text(nt::ULONG count, nt::PVOID const* objects, nt::WAIT_TYPE type) {
    for (nt::ULONG i = 0; i < count; ++i) require_alive(objects[i]);
    if (count == 0) return "KeDelayExecutionThread";
    if (count == 1) return "KeWaitForSingleObject(" + name_of(objects[0]) + ")";
    std::string s = "KeWaitForMultipleObjects(";
    for (nt::ULONG i = 0; i < count; ++i) s += (i ? ", " : "") + name_of(objects[i]);
    return s + (type == nt::WaitAll ? "; WaitAll)" : "; WaitAny)");
}

void trace(const std::string& line) {
    note(line.c_str());
}

// The FAST_MUTEX or KGUARDED_MUTEX whose gate (KEVENT, KGATE) is `gate`:
// "ExAcquireFastMutex on FAST_MUTEX 'fm' (owner: T0)" and its name.
struct MutexOfGate {
    const char* acquire;
    const char* release;
    const char* kind;
    const void* mutex;
    PKTHREAD owner;
};
MutexOfGate mutex_of_gate(const void* gate) {
    const auto* h = static_cast<const nt::DISPATCHER_HEADER*>(gate);
    if (h->Type == nt::GateObject) {
        const auto* m = reinterpret_cast<const nt::KGUARDED_MUTEX*>(
            static_cast<const char*>(gate) - offsetof(nt::KGUARDED_MUTEX, Gate));
        return {"KeAcquireGuardedMutex", "KeReleaseGuardedMutex", "KGUARDED_MUTEX", m, m->Owner};
    }
    const auto* m = reinterpret_cast<const nt::FAST_MUTEX*>(static_cast<const char*>(gate) -
                                                            offsetof(nt::FAST_MUTEX, Event));
    return {"ExAcquireFastMutex", "ExReleaseFastMutex", "FAST_MUTEX", m, m->Owner};
}
const void* gate_of(std::size_t thread) {
    return g_state != nullptr && thread < g_state->gate.size() ? g_state->gate[thread] : nullptr;
}

// The deadlock report's line for model thread `thread` (set_wait_describer).
std::string describe_wait(int thread) {
    if (g_state == nullptr || thread < 0 ||
        static_cast<std::size_t>(thread) >= g_state->threads.size())
        return {};
    PKTHREAD t = g_state->threads[static_cast<std::size_t>(thread)];
    if (t == nullptr || !t->Extra->waiting) return {};
    std::string s = 'T' + std::to_string(thread) + " waits in ";
    if (const void* gate = gate_of(static_cast<std::size_t>(thread))) {
        const MutexOfGate m = mutex_of_gate(gate);
        return s + m.acquire + " on " + m.kind + " '" + name_of(m.mutex) +
               "' (owner: " + thread_name(m.owner) + ")";
    }
    nt::PKWAIT_BLOCK first = t->WaitBlockList;
    if (first == nullptr) return s + "KeDelayExecutionThread";
    std::vector<nt::PVOID> objects;
    nt::PKWAIT_BLOCK wb = first;
    do {
        objects.push_back(wb->Object);
        wb = wb->NextWaitBlock;
    } while (wb != first && objects.size() < nt::MAXIMUM_WAIT_OBJECTS);
    s += objects.size() == 1
             ? "KeWaitForSingleObject"
             : (first->WaitType == nt::WaitAll ? "KeWaitForMultipleObjects (WaitAll)"
                                               : "KeWaitForMultipleObjects (WaitAny)");
    s += " on ";
    for (std::size_t i = 0; i < objects.size(); ++i) {
        if (i) s += ", ";
        if (static_cast<const nt::DISPATCHER_HEADER*>(objects[i])->Type == nt::ThreadObject) {
            s += "thread " + thread_name(objects[i]) + " (not yet exited)";
            continue;
        }
        s += kind_of(objects[i]) + " '" + name_of(objects[i]) +
             "' (owner: " + owner_of(objects[i]) + ")";
    }
    return s;
}

// "bug check 0x4000008A THREAD_TERMINATE_HELD_MUTEX (p1, p2, p3, p4)": the
// explorer adds the thread and the step.
std::string describe(const BugCheck& bc) {
    char buf[256];
    std::snprintf(
        buf, sizeof buf,
        "bug check 0x%08" PRIX32 " %s (0x%" PRIxPTR ", 0x%" PRIxPTR ", 0x%" PRIxPTR ", 0x%" PRIxPTR
        ")",
        static_cast<std::uint32_t>(bc.code()), bugcheck::name(bc.code()),
        static_cast<std::uintptr_t>(bc.parameter(1)), static_cast<std::uintptr_t>(bc.parameter(2)),
        static_cast<std::uintptr_t>(bc.parameter(3)), static_cast<std::uintptr_t>(bc.parameter(4)));
    return buf;
}

// Ends the run with `what` (kept: the run ends inside fail(), so nothing of
// this frame is destroyed; one small string per failing run).
// The run ends inside fail() and this fiber is never resumed: the text is
// kept in a static (reachable, so no leak checker takes it for lost), and
// the moved-from parameter left on the abandoned stack owns nothing.
[[noreturn]] void fail_with(std::string what) {
    static std::string kept;
    kept = std::move(what);
    fail(kept.c_str());
}

kernel::PoolFreeHook g_previous_pool_hook = nullptr;
// Inside a run a freed pool block is marked destroyed (a later model access
// to it, or a dispatcher routine on an object in it, is a use after free)
// and freed once the run is over; outside one, the previous hook decides.
bool on_pool_free(void* block, std::size_t size) {
    if (kernel_seam::active()) {
        destroy(block, size);
        g_state->freed_pool.push_back(block);
        return true;
    }
    return g_previous_pool_hook != nullptr && g_previous_pool_hook(block, size);
}

BugCheckHandler g_previous_handler = nullptr;
// A bug check no caller can catch (thread exit's rundown): a violation inside
// a run, the previous handler's business otherwise.
void on_fatal_bug_check(const BugCheck& bc) {
    if (kernel_seam::active()) fail_with(describe(bc));
    if (g_previous_handler != nullptr) g_previous_handler(bc);
}

// A model thread's body: `fn` with `t` as its KTHREAD; what escapes it is a
// violation; then the thread's exit, as a real thread's (rundown).
template <class F>
void model_thread(PKTHREAD t, F&& fn, bool exits_itself) {
    register_thread(current_thread(), t);
    std::string failure;
    try {
        fn();
    } catch (const BugCheck& bc) {
        failure = describe(bc);
    } catch (const NtException& e) {
        failure = std::string("an NT exception not handled in T") +
                  std::to_string(current_thread()) + ": " + e.what();
    } catch (const std::exception& e) {
        failure = std::string("an exception not handled in T") + std::to_string(current_thread()) +
                  ": " + e.what();
    }
    if (!failure.empty()) fail_with(std::move(failure));
    if (!exits_itself) {
        kernel_seam::routine("thread exit", t);
        kernel::exit_current_thread();
    }
    register_thread(current_thread(), nullptr);
}

// explore::spawn() inside run(): the new model thread is a kernel thread,
// with a KTHREAD of its own and the kernel's exit at its end, as
// PsCreateSystemThread's (its fiber locals start as the OS thread's, whose
// KTHREAD, if it has one, is not this run's).
std::function<void()> as_kernel_thread(std::function<void()> fn) {
    return [fn = std::move(fn)] {
        PKTHREAD t = kernel::create_thread_object(true);
        kernel::detail::tls_current_thread = t;
        model_thread(t, fn, false);
    };
}

}  // namespace

Result run(const Config& config, const std::function<void()>& body) {
    if (g_state != nullptr) throw std::logic_error("explore::run: a run is already in progress");
    DispatcherUnderModel dut;
    Config c = config;
    for (auto l : DispatcherUnderModel::fiber_locals()) c.fiber_locals.push_back(l);
    c.fiber_locals.emplace_back(&kernel::detail::tls_queued_holds,
                                sizeof kernel::detail::tls_queued_holds);
    c.fiber_locals.emplace_back(&kmlab::detail::tls_queued_slots,
                                sizeof kmlab::detail::tls_queued_slots);

    RunState state;
    std::atomic_ref(g_state).store(&state, std::memory_order_relaxed);
    g_previous_handler = set_bug_check_handler(&on_fatal_bug_check);
    g_previous_pool_hook = kernel::set_pool_free_hook(&on_pool_free);
    set_wait_describer(&describe_wait);
    internal::g_spawn_wrapper = &as_kernel_thread;
    struct Restore {
        ~Restore() {
            internal::g_spawn_wrapper = nullptr;
            set_wait_describer(nullptr);
            set_bug_check_handler(g_previous_handler);
            kernel::set_pool_free_hook(g_previous_pool_hook);
            g_previous_pool_hook = nullptr;
            g_previous_handler = nullptr;
            std::atomic_ref(g_state).store(nullptr, std::memory_order_relaxed);
            dispatcher::reset_timer_list();
        }
    } restore;

    Result r = explore(c, [&] {
        dut.reset();
        dispatcher::reset_timer_list();
        // Deadlock Detection's graph is process-wide: an edge another run
        // recorded would make this run's report depend on the runs before
        // it, and its schedule replay differently alone.
        kernel::verifier::reset();
        // A run that ended early leaves its threads' KTHREADs behind (their
        // fibers are never resumed): not freed, since a handle or a waiter of
        // that run may still name them.
        state.clear();
        Program p;
        p.threads.push_back([&body] {
            PKTHREAD t = kernel::create_thread_object(false);
            kernel::detail::tls_current_thread = t;
            model_thread(t, body, false);
        });
        return p;
    });
    return r;
}

namespace {
FastMutexRelease g_fast_mutex_release = FastMutexRelease::faithful;
bool g_thread_atomics_modelled = false;
}  // namespace

void model_thread_atomics(bool on) noexcept {
    g_thread_atomics_modelled = on;
}

void set_fast_mutex_release(FastMutexRelease how) noexcept {
    g_fast_mutex_release = how;
}

namespace kernel_seam {

bool fast_mutex_release_mutant() noexcept {
    return g_fast_mutex_release == FastMutexRelease::load_and_store;
}

// Both are asked by real threads too (a system thread outside any run, an
// exiting thread's futex wake): their reads of the globals a run installs
// are atomic, as are the installing writes.
bool active() noexcept {
    return std::atomic_ref(g_state).load(std::memory_order_relaxed) != nullptr && explore::active();
}

bool model_memory() noexcept {
    return std::atomic_ref(platform::g_dispatcher_seam).load(std::memory_order_relaxed) !=
               nullptr &&
           explore::active();
}

bool model_thread_atomics() noexcept {
    return active() || (g_thread_atomics_modelled && model_memory());
}

bool deadline_expired(Deadline deadline) {
    if (!model_memory()) return deadline.expired();
    if (deadline.is_poll()) return true;
    if (deadline.is_never()) return false;
    return detail::deadline_passed();
}

int model_stripe(const void* object, int stripes) noexcept {
    const auto [it, added] =
        g_state->stripes.try_emplace(object, static_cast<int>(g_state->stripes.size()) % stripes);
    return it->second;
}

void routine(const char* name, const void* object) noexcept {
    if (!active()) return;
    require_alive(object);
    const auto i = static_cast<std::size_t>(current_thread());
    if (i >= g_state->routine.size()) {
        g_state->threads.resize(i + 1, nullptr);
        g_state->routine.resize(i + 1);
        g_state->pending.resize(i + 1);
        g_state->gate.resize(i + 1, nullptr);
    }
    // A thread's own exit names no object: the line is the thread's already.
    std::string text = object == kernel::detail::tls_current_thread
                           ? std::string(name)
                           : std::string(name) + "(" + name_of(object) + ")";
    g_state->pending[i] = text;
    g_state->routine[i] = std::move(text);
}

void section_entered() noexcept {
    if (!active()) return;
    const auto i = static_cast<std::size_t>(current_thread());
    if (i >= g_state->pending.size() || g_state->pending[i].empty()) return;
    trace(g_state->pending[i]);
    g_state->pending[i].clear();
}

void mutex_gate(const void* gate, bool waiting) noexcept {
    if (!active()) return;
    const auto i = static_cast<std::size_t>(current_thread());
    if (i >= g_state->gate.size()) return;
    g_state->gate[i] = waiting ? gate : nullptr;
}

void mutex_gate_signal(const void* gate) noexcept {
    if (!active()) return;
    const MutexOfGate m = mutex_of_gate(gate);
    routine(m.release, m.mutex);
}

void blocks(nt::ULONG count, nt::PVOID const* objects, nt::WAIT_TYPE type, bool alertable,
            bool has_timeout) noexcept {
    if (!active()) return;
    const void* gate = gate_of(static_cast<std::size_t>(current_thread()));
    if (gate != nullptr && count == 1 && objects[0] == gate) {
        const MutexOfGate m = mutex_of_gate(gate);
        trace(std::string(m.acquire) + "(" + name_of(m.mutex) +
              ") blocks (owner: " + thread_name(m.owner) + ")");
        return;
    }
    std::string s = wait_text(count, objects, type) + " blocks";
    if (alertable) s += " (alertable)";
    if (has_timeout) s += " (with a timeout)";
    trace(s);
}

void unwaits(nt::PKTHREAD woken, nt::NTSTATUS status) noexcept {
    if (!active()) return;
    const auto i = static_cast<std::size_t>(current_thread());
    std::string cause = i < g_state->routine.size() ? g_state->routine[i] : std::string();
    if (status == nt::STATUS_ALERTED) cause = "the alert";
    if (status == nt::STATUS_USER_APC || status == nt::STATUS_KERNEL_APC) cause = "the APC";
    if (cause.empty()) cause = "it";
    trace(cause + " wakes " + thread_name(woken) + " (" + status_name(status) + ")");
}

void times_out(nt::ULONG count, nt::PVOID const* objects) noexcept {
    if (!active()) return;
    trace(wait_text(count, objects, nt::WaitAny) +
          (count == 0 ? " ends: the interval passed" : " times out"));
}

void satisfied(nt::ULONG count, nt::PVOID const* objects, nt::NTSTATUS status) noexcept {
    if (!active()) return;
    const void* gate = gate_of(static_cast<std::size_t>(current_thread()));
    if (gate != nullptr && count == 1 && objects[0] == gate) {
        const MutexOfGate m = mutex_of_gate(gate);
        trace(std::string(m.acquire) + "(" + name_of(m.mutex) + ") finds its gate signalled");
        return;
    }
    trace(wait_text(count, objects, nt::WaitAny) + " returns " + status_name(status));
}

bool start_system_thread(PKTHREAD t, void (*main)(PKTHREAD, nt::PKSTART_ROUTINE, nt::PVOID),
                         nt::PKSTART_ROUTINE start, nt::PVOID context) {
    if (!active()) return false;
    const int index = internal::g_sched->spawn([t, main, start, context] {
        model_thread(
            t, [&] { main(t, start, context); }, true);
    });
    register_thread(index, t);
    trace(std::string("PsCreateSystemThread starts T") + std::to_string(index));
    return true;
}

int fetch_add(std::atomic<int>& count, int delta, std::memory_order order) noexcept {
    static_assert(sizeof(std::atomic<int>) == sizeof(int));
    if (model_thread_atomics())
        return explore::AtomicRef<int>(*reinterpret_cast<int*>(&count)).fetch_add(delta, order);
    return count.fetch_add(delta, order);
}

bool free_thread_later(PKTHREAD thread, kernel::detail::ThreadExtra* extra) noexcept {
    if (!active()) return false;
    destroy(thread, sizeof *thread);
    destroy(extra, sizeof *extra);
    g_state->freed.emplace_back(thread, extra);
    return true;
}

void store_wake(std::atomic<std::uint32_t>& word, std::uint32_t value) noexcept {
    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
    if (model_thread_atomics()) {
        explore::AtomicRef<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(&word))
            .store(value, std::memory_order_relaxed);
        return;
    }
    word.store(value, std::memory_order_relaxed);
}

}  // namespace kernel_seam

}  // namespace kmlab::explore
