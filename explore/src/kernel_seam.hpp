// What the explorer's copies of kernel sources call into the explorer (the
// KMLAB_DISPATCHER_SEAM blocks of kernel/src/*.cpp). Each explore/src/*_seam.cpp
// includes this header, then the kernel source it compiles again: those
// blocks exist only in that second translation, in libkmlab_explore.a, so
// production's objects (libkmlab_kernel.a) neither see nor pay for any of it.
//
// Every function here behaves as production does while no explore::run() is
// in progress on the calling fiber (active() false): a program that links
// kmlab::explore may still run the kernel on real threads outside a run.
//
// How the copies are pulled into a link: dispatcher_under_model.cpp (which
// every user of the kernel under the model reaches, explore::run included)
// references one marker per copy (*_seam_marker below), so each copy is taken
// from libkmlab_explore.a before the linker reaches libkmlab_kernel.a, and
// that library's original object, every symbol of which the copy defines,
// is never pulled (a duplicate would be a link error, not a silent choice).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <kmlab/explore.hpp>
#include <kmlab/kernel/ntdef.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/platform/deadline.hpp>

namespace kmlab::explore::kernel_seam {

// True while the calling fiber runs inside explore::run() (kernel_run.cpp).
bool active() noexcept;
// True while the calling fiber runs with the dispatcher under the model
// (DispatcherUnderModel installed, explore::run() or a test's own explore()):
// FAST_MUTEX / KGUARDED_MUTEX Count (AtomicRef below) is model memory then.
bool model_memory() noexcept;
// True where the wake word's reset and the KTHREAD reference count are model
// memory too: inside explore::run(), and under a test's own
// DispatcherUnderModel once it asked (explore/dispatcher.hpp,
// model_thread_atomics): each adds steps to every wait and wake, which
// roughly doubles the schedules of the dispatcher's own model suite.
bool model_thread_atomics() noexcept;

// ---- virtual time (dispatcher.cpp) ----
// Has `deadline` passed? poll(): yes; never(): no; any other: the scheduler
// decides (a choice), so "expired before blocking" is explored as well as
// "still running". Outside a run: the real clock.
bool deadline_expired(Deadline deadline);

// ---- the kernel-level trace (dispatcher.cpp, objects.cpp) ----
// A dispatcher routine starts on `object` ("KeSetEvent", &done): the trace
// line "KeSetEvent(done)", written once its section holds the dispatcher
// lock (section_entered), and the text a wake it causes is named after.
void routine(const char* name, const void* object) noexcept;
void section_entered() noexcept;
// The running thread blocks in a wait on `count` objects (0: a delay).
void blocks(nt::ULONG count, nt::PVOID const* objects, nt::WAIT_TYPE type, bool alertable,
            bool has_timeout) noexcept;
// Under the dispatcher lock: the running thread unwaits `woken` with `status`.
void unwaits(nt::PKTHREAD woken, nt::NTSTATUS status) noexcept;
// The FAST_MUTEX / KGUARDED_MUTEX routines (fast_mutex.cpp): the running
// thread enters (waiting true) or leaves the wait on `gate`, the KEVENT or
// KGATE inside one, or signals it for the next owner.
void mutex_gate(const void* gate, bool waiting) noexcept;
void mutex_gate_signal(const void* gate) noexcept;
// The running thread's wait ended by its timeout (after blocking or before).
void times_out(nt::ULONG count, nt::PVOID const* objects) noexcept;
// The running thread's wait was satisfied at once, with `status`.
void satisfied(nt::ULONG count, nt::PVOID const* objects, nt::NTSTATUS status) noexcept;

// ---- the per-object lock mode (dispatcher.cpp) ----
// The stripe (0 .. stripes - 1) that `object` takes in this run: the next
// one, round robin, at the run's first use of it (so a run does not depend
// on the addresses its objects get).
int model_stripe(const void* object, int stripes) noexcept;

// ---- system threads (system_thread.cpp) ----
// Inside a run: starts a model thread (explore::spawn) that runs
// main(t, start, context), and returns true; outside one, false (the caller
// starts an OS thread).
bool start_system_thread(nt::PKTHREAD t, void (*main)(nt::PKTHREAD, nt::PKSTART_ROUTINE, nt::PVOID),
                         nt::PKSTART_ROUTINE start, nt::PVOID context);

// ---- the wake word and the KTHREAD reference count ----
// A store to a waiter's wake word under the dispatcher lock (its reset before
// blocking): model memory where model_thread_atomics().
void store_wake(std::atomic<std::uint32_t>& word, std::uint32_t value) noexcept;
// ThreadExtra::references' read-modify-writes (thread.cpp): model memory
// where model_thread_atomics().
int fetch_add(std::atomic<int>& count, int delta, std::memory_order order) noexcept;
// Inside a run: marks the KTHREAD and its ThreadExtra destroyed (a later
// model access to either is a violation, explore::destroy) and frees them
// once the run is over; true. Outside one: false (the caller frees them).
bool free_thread_later(nt::PKTHREAD thread, kernel::detail::ThreadExtra* extra) noexcept;

// ---- atomics of the kernel's own fields (fast_mutex.cpp's Count) ----
// A std::atomic_ref look-alike over a plain T: explore::AtomicRef (each
// operation a scheduling point over model memory) while model_memory(), a
// std::atomic_ref otherwise. The test costs a load and a branch per
// operation, in the explorer's copy only.
template <class T>
class AtomicRef {
  public:
    explicit AtomicRef(T& v) noexcept : v_(v) {}
    T load(std::memory_order o = std::memory_order_seq_cst) const {
        if (model_memory()) return explore::AtomicRef<T>(v_).load(o);
        return std::atomic_ref<T>(v_).load(o);
    }
    void store(T x, std::memory_order o = std::memory_order_seq_cst) {
        if (model_memory()) return explore::AtomicRef<T>(v_).store(x, o);
        std::atomic_ref<T>(v_).store(x, o);
    }
    T exchange(T x, std::memory_order o = std::memory_order_seq_cst) {
        if (model_memory()) return explore::AtomicRef<T>(v_).exchange(x, o);
        return std::atomic_ref<T>(v_).exchange(x, o);
    }
    T fetch_add(T x, std::memory_order o = std::memory_order_seq_cst) {
        if (model_memory()) return explore::AtomicRef<T>(v_).fetch_add(x, o);
        return std::atomic_ref<T>(v_).fetch_add(x, o);
    }
    T fetch_sub(T x, std::memory_order o = std::memory_order_seq_cst) {
        if (model_memory()) return explore::AtomicRef<T>(v_).fetch_sub(x, o);
        return std::atomic_ref<T>(v_).fetch_sub(x, o);
    }
    T fetch_and(T x, std::memory_order o = std::memory_order_seq_cst) {
        if (model_memory()) return explore::AtomicRef<T>(v_).fetch_and(x, o);
        return std::atomic_ref<T>(v_).fetch_and(x, o);
    }
    T fetch_or(T x, std::memory_order o = std::memory_order_seq_cst) {
        if (model_memory()) return explore::AtomicRef<T>(v_).fetch_or(x, o);
        return std::atomic_ref<T>(v_).fetch_or(x, o);
    }
    bool compare_exchange_strong(T& expected, T desired,
                                 std::memory_order s = std::memory_order_seq_cst,
                                 std::memory_order f = std::memory_order_seq_cst) {
        if (model_memory())
            return explore::AtomicRef<T>(v_).compare_exchange_strong(expected, desired, s, f);
        return std::atomic_ref<T>(v_).compare_exchange_strong(expected, desired, s, f);
    }
    bool compare_exchange_weak(T& expected, T desired,
                               std::memory_order s = std::memory_order_seq_cst,
                               std::memory_order f = std::memory_order_seq_cst) {
        if (model_memory())
            return explore::AtomicRef<T>(v_).compare_exchange_strong(expected, desired, s, f);
        return std::atomic_ref<T>(v_).compare_exchange_weak(expected, desired, s, f);
    }

  private:
    T& v_;
};

// The platform (kmlab/platform/platform.hpp) of the explorer's copy of the
// FAST_MUTEX / KGUARDED_MUTEX routines: their Count through AtomicRef above.
struct Platform {
    template <class T>
    using atomic_ref = AtomicRef<T>;
    static std::chrono::steady_clock::time_point now() noexcept {
        return model_memory() ? explore::Platform::now() : platform::Native::now();
    }
    template <class Done>
    static bool spin_until(Done&& done, Deadline deadline) {
        if (model_memory())
            return explore::Platform::spin_until(std::forward<Done>(done), deadline);
        return platform::Native::spin_until(std::forward<Done>(done), deadline);
    }
};

// The must-find mutant of the FAST_MUTEX / KGUARDED_MUTEX release
// (set_fast_mutex_release in kmlab/explore/dispatcher.hpp).
bool fast_mutex_release_mutant() noexcept;

// ---- the markers that pull each copy into a link (see above) ----
void objects_seam_marker() noexcept;
void futex_seam_marker() noexcept;  // platform/src/futex.cpp's copy (futex_seam.cpp)
void fast_mutex_seam_marker() noexcept;
void system_thread_seam_marker() noexcept;
void thread_seam_marker() noexcept;

}  // namespace kmlab::explore::kernel_seam
