// Internals of the emulated NT dispatcher, private to kernel/src (the
// schedule explorer's model of the dispatcher, in explore/, reads them
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
#include <string>
#include <utility>

#include <kmlab/kernel/dispatcher.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/kernel/timer.hpp>
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
    // Under the lock: marks `h` busy (see "The fast paths" below) before this
    // section reads and changes its state or wait list, so that no routine
    // running without the lock changes it meanwhile. The mark stays while the
    // object has waiters; the section takes it back, where the wait list is
    // empty, when it gives up the lock (or keeps it for a WaitNext hold). A
    // no-op for objects that have no fast path.
    void claim(DISPATCHER_HEADER* h);
    // Takes every mark back now (thread rundown claims one mutant at a time).
    void release_claims() noexcept;
    // The section that keeps the lock for a WaitNext hold leaves its marks
    // to the hold (sections inside one record theirs there at once, claim):
    // the objects stay busy, so that no fast path changes what the holder did
    // until the hold ends (Wait = TRUE: "the return to the caller is executed
    // without ... releasing the dispatcher database lock" [ddi:kesetevent]).
    void park_claims() noexcept;
    // Drop and retake the lock around a block; leaving a WaitNext hold
    // restores the IRQL saved in WaitIrql.
    void unlock_for_block();
    void relock();
    PKTHREAD thread() const noexcept { return t_; }
    bool locked() const noexcept { return locked_; }
    // Per-object mode: the section holds one object's stripe only (not
    // every stripe, as it does for nullptr, after an escalation, or in a
    // WaitNext hold).
    bool covers_one_stripe() const noexcept {
        return mode_ == LockMode::per_object && object_ != nullptr;
    }

  private:
    void lock();
    void unlock();
    PKTHREAD t_;
    const void* object_;  // per_object mode: the one object covered, or nullptr for all
    LockMode mode_;
    bool locked_ = false;
    bool keep_ = false;
    bool in_hold_ = false;  // created inside a WaitNext hold, which may end under it
    // Objects this section marked busy outside a hold: one wait's
    // (MAXIMUM_WAIT_OBJECTS) or one routine's object at a time.
    static constexpr int kMaxClaims = 64;
    int claims_ = 0;
    DISPATCHER_HEADER* claimed_[kMaxClaims];
};

// ---- The fast paths: a routine that needs no waiter's wait block ----
// KeWaitForSingleObject on an object that satisfies it at once, and the
// release of a mutant, the set and reset of an event and the release of a
// semaphore with nobody waiting, run without the dispatcher lock, as
// Windows 7's per-object locking lets them run without the global one
// [ros-kex]. They read and change the object's first eight bytes,
// DISPATCHER_HEADER's Lock word and SignalState, with one 64-bit
// compare-exchange, and only while the busy bit is clear:
//
//   bit 23 of Lock (kObjectBusy: the top bit of byte 2, Size) set while a
//   section holding the dispatcher lock works on the object (Section::claim)
//   and for as long as its wait list is not empty.
//
// Invariants: (1) every wait block is linked under a claim, so an object
// with waiters is busy and never taken by a fast path: the FIFO handoff to
// the first waiter stays the kernel's; (2) while busy, only sections (which
// exclude one another through the dispatcher lock) change SignalState,
// owner or list, so the slow paths are unchanged; (3) a claim is one atomic
// RMW of the same word, so a fast path either completed before it (and the
// section sees its result) or fails after it and goes the slow way.
// Decision, kmlab: the kernel marks its per-object lock in bit 7 of Lock,
// the top bit of Type [ros-kex]; every routine here compares Type,
// none reads Size, and every Size of a fast-path object is below 128, so the
// top bit of Size carries the mark instead. Objects of other kinds (timers,
// threads, gates, whose sizes may reach bit 7) have no fast path and are
// never marked.
inline constexpr LONG kObjectBusy = 0x00800000;
inline bool has_fast_path(UCHAR type) noexcept {
    return type == MutantObject || type == EventNotificationObject ||
           type == EventSynchronizationObject || type == SemaphoreObject;
}
// A wait on one object that is satisfied at once: its status, or
// STATUS_PENDING if it must take the slow path (the object is busy or not
// signaled, the compare-exchange lost a race, or the thread holds the lock
// for a WaitNext hold). The caller checked the IRQL rule.
NTSTATUS wait_at_once(PKTHREAD t, PVOID object) noexcept;
// The releases' fast paths (KeReleaseMutant by its owner with Abandon and
// Wait FALSE, KeSetEvent / KeResetEvent / KeClearEvent, KeReleaseSemaphore
// within its limit, each with nobody waiting) are inline in their routines:
// header_word.hpp.

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

// ---- Timers (timer.cpp) ----
// The list of set timers (KTIMER.TimerListEntry, sorted by due time) spans
// objects: in global mode the dispatcher lock guards it; in per-object mode
// a section covers only its timer's stripe, so the list has a lock of its
// own, taken inside a section that covers the timer and never held while
// taking a dispatcher lock (order: section, then list). Through the link
// seam, as the dispatcher's own locks are, so that the explorer sees it.
// `section` is the caller's: only one that holds a single stripe takes the
// list lock; one that holds every stripe excludes every other list writer
// already (and a 65th lock would pass ThreadSanitizer's limit of 64 held
// at once, which the 64 stripes reach).
void lock_timer_list(const Section& section);
void unlock_timer_list(const Section& section);
// kernel::expire_timer, with the explorer's must-find mutant: an expiry that
// signals the timer but forgets the wait test (its waiters are never woken).
enum class TimerExpiry { faithful, forget_wait_test };
bool expire_timer(PKTIMER timer, TimerExpiry how);
// The explorer's scheduling point inside each edit of the timer list
// (timer.cpp): a seam load of this word between reading a timer's neighbours
// and linking or unlinking it, so that two edits the list lock fails to
// exclude interleave there. Nobody writes it. Production pays one load of
// platform::g_dispatcher_seam (null) per edit.
extern std::atomic<std::uint32_t> g_timer_list_word;
// For the explorer's programs, with no thread running dispatcher work: an
// empty timer list (a run that ended early may leave it anyhow), and a walk
// of it without its lock that says what is wrong ("" if it is a well-linked
// ring of timers marked set, in due order).
void reset_timer_list() noexcept;
std::string check_timer_list();
// Which of the 64 stripes covers `object` in the per-object mode.
int stripe_index(const void* object) noexcept;
// The explorer's must-find mutant of the list lock: while set, lock_timer_list
// and unlock_timer_list do nothing. Defined only in the explorer's copy of
// dispatcher.cpp (KMLAB_DISPATCHER_SEAM); production has no such switch.
void set_timer_list_lock_mutant(bool on) noexcept;

// The explorer's must-find mutants of the dispatcher itself
// (tests/model/model_dispatcher_objects_test.cpp): each breaks one step of
// dispatcher.cpp that a kind of object or wait relies on, and the model suite
// must report it. Like set_timer_list_lock_mutant, set_mutant is defined only
// in the explorer's copy of dispatcher.cpp (KMLAB_DISPATCHER_SEAM); in
// production's every hook is a constant false (no code, no load).
namespace testing {
enum class Mutant {
    none,
    event_wake_removed,         // the wait test of an event wakes nobody (KeSetEvent, KePulseEvent)
    notification_wakes_one,     // a notification event's wait test stops after one waiter
    semaphore_wakes_one,        // a semaphore's wait test stops after one waiter
    mutant_wake_removed,        // the wait test of a mutant wakes nobody (KeReleaseMutex/Mutant)
    wait_all_satisfies_one,     // a WaitAll woken by the wait test consumes only that object
    unwait_leaves_blocks,       // ending a wait unlinks its first wait block only
    timeout_leaves_blocks,      // a timed-out waiter returns without withdrawing its wait
    alert_unwait_forgotten,     // KeAlertThread's unwait of an alertable waiter does nothing
    user_apc_unwait_forgotten,  // KeInsertQueueUserApc's unwait of a user-mode waiter does nothing
    pending_alert_ignored,      // a wait does not consume an alert pending before it
    pending_user_apc_ignored,   // a user-mode alertable wait ignores queued user APCs
    abandon_not_marked,         // thread rundown releases a mutant without marking it abandoned
    thread_exit_no_wake,        // the thread object is signalled at exit without its wait test
    // The fast paths (see "The fast paths" above):
    fast_path_ignores_busy,    // a fast path takes or frees an object that has waiters
    wait_leaves_unclaimed,     // a wait links its blocks without marking the object busy
    fast_release_frees_first,  // the mutant's fast release frees it, then disowns it
};
void set_mutant(Mutant m) noexcept;
// The switch as set_mutant left it (the explorer's copies only).
bool mutant_is(Mutant m) noexcept;
// Outside explore::run() (which picks stripes itself), a model test's own
// choice of stripe for each object in the per-object mode (nullptr: the
// address hash): a hash of addresses that differ from run to run would make
// a schedule take another path when replayed. While set, as inside
// explore::run(), only the first `stripes` (1 to 64) stripes are used (the
// choice modulo `stripes`), and a section over every object takes those alone.
void set_stripe_of(int (*stripe)(const void* object), int stripes) noexcept;
}  // namespace testing

}  // namespace kmlab::dispatcher
