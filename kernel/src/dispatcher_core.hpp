// Internals of the emulated NT dispatcher, private to kernel/src (the
// schedule explorer's model of the dispatcher, in tests/model, reads them
// too). The public face is <kmlab/kernel/dispatcher.hpp>.
//
// Model (SEMANTICS.md 4.4): one global dispatcher lock guards every dispatcher
// object's SignalState and wait list and every thread's wait state, as the
// ReactOS and pre-Windows-7 kernels do. A thread that cannot be satisfied links
// one KWAIT_BLOCK per object at the tail of the object's wait list (FIFO),
// drops the lock and parks on its own futex word. Whoever makes an object
// signaled runs the wait test under the lock: it satisfies waiters from the head
// of the list, fills in their WaitStatus, unlinks all their wait blocks and,
// only once it has released the lock, publishes the wake (release store +
// futex wake): a woken thread may free the object it waited on as soon as its
// wait returns, so it must not return while the waker still walks that
// object's wait list. A wake cannot be lost: the waiter's state changes only
// under the lock, and the futex word is set before the futex wake, so a
// waiter that has not yet parked sees it.
#pragma once

#include <atomic>
#include <mutex>
#include <utility>

#include <kmlab/kernel/dispatcher.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/platform/deadline.hpp>

namespace kmlab::dispatcher {

using namespace kmlab::nt;

// A section of dispatcher work on behalf of the calling thread, holding the
// lock(s) that cover `object` (nullptr: every object).
//
// Wait = TRUE (KeSetEvent, KeReleaseMutex, ...) ends a section with the lock
// still held, WaitNext set and the IRQL raised to DISPATCH_LEVEL; the next
// KeWaitXxx of the same thread picks the lock up from there and restores
// WaitIrql. While WaitNext is set the thread owns the lock, so any dispatcher
// routine it calls continues inside the same hold (the kernel would deadlock
// on its own spin lock instead); only a wait gives the lock back. A section
// that may keep its hold is created for every object (object = nullptr).
// A raise or bug check (kernel::before_unwind) gives the hold back too, with
// the IRQL restored to WaitIrql, before it unwinds: the sections it unwinds
// through then own no lock.
class Section {
  public:
    // Routine: a dispatcher routine; inside a WaitNext hold it neither takes
    // nor releases the lock. Wait: a KeWaitXxx; it takes a WaitNext hold over
    // and ends it (restoring WaitIrql) when it returns.
    enum class Kind { Routine, Wait };
    explicit Section(PKTHREAD t, Kind kind = Kind::Routine, const void* object = nullptr);
    ~Section();
    Section(const Section&) = delete;
    Section& operator=(const Section&) = delete;

    // Keep the lock for the caller's next KeWaitXxx (a Wait = TRUE release).
    void keep_for_wait();
    // Drop and retake the lock around a block; leaving a WaitNext hold
    // restores the IRQL saved in WaitIrql.
    void unlock_for_block();
    void relock();
    PKTHREAD thread() const noexcept { return t_; }
    bool locked() const noexcept { return locked_; }

  private:
    void lock();
    void unlock();
    PKTHREAD t_;
    const void* object_;  // per_object mode: the one object covered, or nullptr for all
    LockMode mode_;
    bool locked_ = false;
    bool keep_ = false;
    bool in_hold_ = false;  // created inside a WaitNext hold, which may end under it
};

// Releases a WaitNext hold without a wait (before a raise or bug check
// unwinds; installed as the kernel's unwind hook).
void drop_wait_next_hold(PKTHREAD t) noexcept;

void init_header(DISPATCHER_HEADER* h, UCHAR type, std::size_t size, LONG state) noexcept;

// Under the lock: wake satisfiable waiters of `h`, FIFO from the head, each
// with the priority boost `increment` (see unwait). Inline for the common
// case, no waiters: every uncontended KeReleaseMutex / KeSetEvent runs it.
void wait_test_waiters(DISPATCHER_HEADER* h, KPRIORITY increment);
inline void wait_test(DISPATCHER_HEADER* h, KPRIORITY increment = 0) {
    if (h->WaitListHead.Flink != &h->WaitListHead) wait_test_waiters(h, increment);
}

// The body of every KeWaitXxx, entered with the lock held through `section`.
// It returns with the lock held, except after a wake by another thread, when
// it returns without retaking it (section.locked() says which).
// `objects` may be empty (KeDelayExecutionThread). The caller converted the
// NT timeout (kernel::deadline_from) before taking the lock. Raises
// STATUS_MUTANT_LIMIT_EXCEEDED (lock released first).
NTSTATUS wait(Section& section, ULONG count, PVOID const* objects, WAIT_TYPE type,
              KPROCESSOR_MODE mode, bool alertable, Deadline deadline, PKWAIT_BLOCK blocks);

// A kernel-internal wait used by the fast/guarded mutex slow paths: infinite,
// non-alertable, KernelMode, no IRQL check (they run at or below APC_LEVEL).
void wait_internal(PVOID object);
// Its counterpart for their releases: sets the gate (a synchronization event
// or a KGATE) and wakes one waiter, as KeSetEvent does, but with no IRQL
// rule: the kernel's KeSetEventBoostPriority / KeSignalGateBoostPriority
// have only ASSERTs, and a free-flavour release above DISPATCH_LEVEL must
// still wake its waiter (a report after the lock word has changed would
// strand it). No boost: the lock-ownership boost is not emulated.
void signal_internal(PVOID object);

// The calling OS thread's list of wakes to publish (thread_local): the
// schedule explorer, whose model threads share one OS thread, swaps it per
// model thread.
std::pair<void*, std::size_t> pending_wakes_storage() noexcept;
// True in the explorer's copy of the dispatcher (KMLAB_DISPATCHER_SEAM).
bool built_with_model_seam() noexcept;

// Under the lock: ends `t`'s wait with `status` and wakes it (the wake is
// published once this thread releases the lock). Alerts and user APCs use it.
// `increment` is the priority boost the waker gives (KeSetEvent's Increment,
// ...): see boost_priority.
void unwait(PKTHREAD t, NTSTATUS status, KPRIORITY increment = 0) noexcept;

// Under the lock: the boost a satisfied wait gives a thread, as the kernel's
// unwait adjustment computes it [ros-thrdschd]: a thread below the real-time
// range runs at BasePriority + increment if that is above its priority now,
// but not above LOW_REALTIME_PRIORITY - 1; a real-time thread is not boosted.
// Not emulated: the decay by one level at each quantum end back to the base
// (there are no quanta here), and the foreground and lock-ownership boosts.
void boost_priority(PKTHREAD t, KPRIORITY increment) noexcept;
// True once since a boost_priority by this thread readied a thread below the
// real-time range with a negative increment: the kernel's ASSERT
// (AdjustIncrement >= 0) fires there [ros-thrdschd]; rules.hpp
// check_unwait_increment says what the emulator does about it.
bool take_readied_with_negative_increment() noexcept;

// Thread rundown: kernel::exit_current_thread() calls it by name.
void rundown_thread(PKTHREAD t);

}  // namespace kmlab::dispatcher
