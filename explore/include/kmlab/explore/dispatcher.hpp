// The emulated dispatcher under the schedule explorer: while an instance
// lives, the dispatcher's lock and parking (kernel/src/dispatcher.cpp)
// go through platform::g_dispatcher_seam to the model (explorer.hpp), and
// fiber_locals() names the thread_local state that each model thread must
// have to itself (its current KTHREAD, its list of wakes to publish with the
// negative-increment flag kept beside it).
//
// The dispatcher lock becomes a model lock (an exchange, then a spin until
// free: each a scheduling point), the waiter's wake word model memory, and its
// park a model futex wait, which a deadline lets the scheduler time out.
// The dispatcher's own work under its lock (wait lists, SignalState,
// satisfying waiters) runs between those points, as one step, which is what
// the lock guarantees; its lock-free reads (KeReadStateXxx, the idiomatic
// owner checks) are not scheduling points. Publishing a wake while holding
// the lock is a violation in itself.
//
// explore::run() installs one for its runs (explore/src/kernel_run.cpp), with
// the rest of the kernel: the explorer's copies of objects.cpp,
// fast_mutex.cpp, system_thread.cpp and thread.cpp (explore/src/*_seam.cpp,
// kernel_seam.hpp) are linked wherever this class is.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include <kmlab/platform/platform.hpp>

namespace kmlab::explore {

class DispatcherUnderModel {
  public:
    DispatcherUnderModel();
    ~DispatcherUnderModel();
    DispatcherUnderModel(const DispatcherUnderModel&) = delete;
    DispatcherUnderModel& operator=(const DispatcherUnderModel&) = delete;

    // Call at the start of every run: a run that ended early may have left
    // a model lock held.
    void reset() { lock_words_.clear(); }
    static std::vector<std::pair<void*, std::size_t>> fiber_locals();

  private:
  public:
    static std::uint32_t* word_for_seam(const void* m) { return word_for(m); }
    // Whether model thread `thread` holds a dispatcher lock now (read in the
    // running fiber: the words are model memory it may have buffered, but a
    // lock is taken and released with read-modify-writes, never buffered).
    static bool holds_a_lock(int thread);

  private:
    static std::uint32_t* word_for(const void* m);
    static DispatcherUnderModel* current_;
    std::map<const void*, std::uint32_t> lock_words_;
};

// Under a DispatcherUnderModel of the test's own (not explore::run(), where
// they always are): whether the wake word's reset under the dispatcher lock
// and the KTHREAD reference count are model memory, each change a scheduling
// point (off by default: on, the dispatcher's model suite runs about twice
// the schedules). FAST_MUTEX / KGUARDED_MUTEX Count is model memory whenever
// the dispatcher is under the model.
void model_thread_atomics(bool on) noexcept;

// Test-only: the explorer's copy of the FAST_MUTEX / KGUARDED_MUTEX routines
// (kernel/src/fast_mutex.cpp through explore/src/fast_mutex_seam.cpp) with
// their release's compare-exchange on Count replaced by a load and a plain
// store (load_and_store), a mutant the model must find now that Count is
// model memory. Production has no such switch.
enum class FastMutexRelease { faithful, load_and_store };
void set_fast_mutex_release(FastMutexRelease how) noexcept;

}  // namespace kmlab::explore
