// The emulated dispatcher: its lock (global or per object) and the link seam
// the explorer compiles it through, wait blocks, the wait test, the wait
// itself and thread rundown. See dispatcher_core.hpp for the model; what a
// satisfied wait does to each object is satisfy.hpp, the NT wait routines
// around it waits.cpp.
#include <sched.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include <kmlab/kernel/fair_lock.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/rules.hpp>
#include <kmlab/platform/futex.hpp>
#include <kmlab/platform/platform.hpp>
#include "dispatcher_core.hpp"
#include "header_word.hpp"
#include "satisfy.hpp"

namespace kmlab::dispatcher {

namespace {
using kernel::current_thread;

// The dispatcher's own locks: FIFO ticket locks (kernel/fair_lock.hpp).
// The kernel's dispatcher lock is a queued spin lock held at DISPATCH_LEVEL,
// so a thread that asks for it is served in turn and no running thread can
// take it back ahead of one already waiting; std::mutex lets the releaser
// barge back in (1999 of 2000 times in fair_lock.hpp's measurement), which
// a thread trying to join a wait list would pay for until the next tick.
using DbLock = kernel::FairLock<>;
DbLock g_database_lock;

// The dispatcher's lock and parking. A link seam, not a run-time one: the
// schedule explorer's library compiles this file again with
// KMLAB_DISPATCHER_SEAM (explore/src/dispatcher_seam.cpp) and its test links
// that object instead of libkmlab's, so there every lock, unlock, wake and
// park goes through platform::g_dispatcher_seam to the model, and
// production pays nothing (benchmarks/instructions counts are unchanged).
#ifdef KMLAB_DISPATCHER_SEAM
// The explorer's copy: through the model while one is installed, and as
// production does otherwise (thread exit, tests that run no model).
const platform::DispatcherSeam* seam() noexcept {
    // Atomic: real threads read it while a model run installs it.
    return std::atomic_ref(platform::g_dispatcher_seam).load(std::memory_order_relaxed);
}
void lock_db(DbLock& m) {
    if (seam()) return seam()->lock(&m);
    m.lock();
}
void unlock_db(DbLock& m) {
    if (seam()) return seam()->unlock(&m);
    m.unlock();
}
std::uint32_t load_wake(std::atomic<std::uint32_t>& w) {
    if (seam()) return seam()->load(w);
    return w.load(std::memory_order_acquire);
}
void publish_wake(std::atomic<std::uint32_t>& w) {
    if (seam()) {
        seam()->store(w, 1);
        return seam()->futex_wake(w);
    }
    w.store(1, std::memory_order_release);
    platform::sys::futex_wake(w, 1);
}
bool park(std::atomic<std::uint32_t>& w, Deadline dl) {
    if (seam()) return seam()->futex_wait(w, 0, dl);
    return platform::sys::futex_wait(w, 0, dl);
}
// Inside explore::run() (explore/src/kernel_seam.hpp, which the copy's
// translation unit includes first): the wake word's reset is model memory,
// whether a deadline has passed is the scheduler's choice (virtual time), and
// the wait's steps are kernel-level trace lines.
void reset_wake(std::atomic<std::uint32_t>& w) {
    explore::kernel_seam::store_wake(w, 0);
}
bool deadline_expired(Deadline dl) {
    return explore::kernel_seam::deadline_expired(dl);
}
void trace_blocks(ULONG count, PVOID const* objects, WAIT_TYPE type, bool alertable, Deadline dl) {
    explore::kernel_seam::blocks(count, objects, type, alertable, !dl.is_never());
}
void trace_unwait(PKTHREAD t, NTSTATUS status) {
    explore::kernel_seam::unwaits(t, status);
}
void trace_timeout(ULONG count, PVOID const* objects) {
    explore::kernel_seam::times_out(count, objects);
}
NTSTATUS trace_satisfied(ULONG count, PVOID const* objects, NTSTATUS status) {
    explore::kernel_seam::satisfied(count, objects, status);
    return status;
}
// A routine's trace line is written once its section holds the lock: the
// moment its effect is ordered with the other threads'.
void trace_section() {
    explore::kernel_seam::section_entered();
}
#else
void lock_db(DbLock& m) {
    m.lock();
}
void unlock_db(DbLock& m) {
    m.unlock();
}
std::uint32_t load_wake(std::atomic<std::uint32_t>& w) {
    return w.load(std::memory_order_acquire);
}
// The release store publishes WaitStatus and every side effect of
// satisfying the wait to the waiter.
void publish_wake(std::atomic<std::uint32_t>& w) {
    w.store(1, std::memory_order_release);
    platform::sys::futex_wake(w, 1);
}
bool park(std::atomic<std::uint32_t>& w, Deadline dl) {
    return platform::sys::futex_wait(w, 0, dl);
}
// Reset under the lock before parking; the waker's release store follows it.
void reset_wake(std::atomic<std::uint32_t>& w) {
    w.store(0, std::memory_order_relaxed);
}
bool deadline_expired(Deadline dl) {
    return dl.expired();
}
inline void trace_blocks(ULONG, PVOID const*, WAIT_TYPE, bool, Deadline) {}
inline void trace_unwait(PKTHREAD, NTSTATUS) {}
inline void trace_timeout(ULONG, PVOID const*) {}
inline NTSTATUS trace_satisfied(ULONG, PVOID const*, NTSTATUS status) {
    return status;
}
inline void trace_section() {}
#endif

// Threads unwaited by this thread whose wake is still to be published, in
// unwait order, linked through ThreadExtra::next_pending_wake (a thread is
// unwaited at most once per wait, so it is on one list at a time). Trivially
// destructible on purpose: thread rundown runs from a thread_local destructor
// and may be the first to use it, when a std::vector would never be freed
// (LeakSanitizer found that). Also the flag boost_priority sets when it
// readied a thread below the real-time range with a negative increment (the
// kernel's ASSERT fires there), which the signalling routine takes once it is
// done (objects.cpp): here, so that the explorer's per-fiber swap of this
// storage (pending_wakes_storage) covers it too.
struct PendingWakes {
    PKTHREAD head;
    PKTHREAD tail;
    bool readied_with_negative_increment;
};
thread_local PendingWakes t_pending_wakes{};
}  // namespace

bool built_with_model_seam() noexcept {
#ifdef KMLAB_DISPATCHER_SEAM
    return true;
#else
    return false;
#endif
}

std::pair<void*, std::size_t> pending_wakes_storage() noexcept {
    return {&t_pending_wakes, sizeof t_pending_wakes};
}

// The explorer's must-find mutants (dispatcher_core.hpp, testing::Mutant):
// switched on only in the explorer's copy; production's hooks are
// `if (false)`, which the compiler drops.
using testing::Mutant;
#ifdef KMLAB_DISPATCHER_SEAM
namespace {
Mutant g_mutant = Mutant::none;
bool mutated(Mutant m) noexcept {
    return g_mutant == m;
}
int (*g_stripe_of)(const void*) = nullptr;
int g_stripes_of_test = 1;
}  // namespace
void testing::set_mutant(Mutant m) noexcept {
    g_mutant = m;
}
bool testing::mutant_is(Mutant m) noexcept {
    return g_mutant == m;
}
void testing::set_stripe_of(int (*stripe)(const void* object), int stripes) noexcept {
    g_stripe_of = stripe;
    g_stripes_of_test = std::clamp(stripes, 1, 64);
}
#else
namespace {
constexpr bool mutated(Mutant) noexcept {
    return false;
}
}  // namespace
#endif

namespace {

// Under the lock: unlinks `t`'s wait blocks and records `status`.
void end_wait(PKTHREAD t, NTSTATUS status) noexcept {
    if (PKWAIT_BLOCK first = t->WaitBlockList) {
        PKWAIT_BLOCK wb = first;
        do {
            if (wb->BlockState) {
                RemoveEntryList(&wb->WaitListEntry);
                wb->BlockState = 0;
            }
            wb = wb->NextWaitBlock;
        } while (wb != first && !mutated(Mutant::unwait_leaves_blocks));
    }
    t->WaitBlockList = nullptr;
    t->WaitStatus = status;
    t->Extra->waiting = false;
}

// Under the lock: a waiter that timed out withdraws its own wait. The kernel
// unwaits it with the timer's increment, 0, which brings a priority set below
// the base back to it [ros-thrdschd].
void withdraw(PKTHREAD t) noexcept {
    end_wait(t, STATUS_TIMEOUT);
    boost_priority(t, 0);
}

}  // namespace

bool take_readied_with_negative_increment() noexcept {
    return std::exchange(t_pending_wakes.readied_with_negative_increment, false);
}

void boost_priority(PKTHREAD t, KPRIORITY increment) noexcept {
    std::atomic_ref<SCHAR> priority(t->Priority);
    const KPRIORITY now = priority.load(std::memory_order_relaxed);
    if (now >= LOW_REALTIME_PRIORITY) return;
    if (static_cast<SCHAR>(increment) < 0) [[unlikely]]
        t_pending_wakes.readied_with_negative_increment = true;
    // The kernel keeps the increment in a SCHAR (AdjustIncrement): truncated
    // the same way, a huge one cannot overflow the sum [ros-thrdschd].
    const KPRIORITY boosted =
        static_cast<KPRIORITY>(t->BasePriority) + static_cast<SCHAR>(increment);
    if (boosted > now)
        priority.store(static_cast<SCHAR>(std::min(boosted, LOW_REALTIME_PRIORITY - 1)),
                       std::memory_order_relaxed);
}

// A thread woken with a mutant it now owns, and the thread that woke it, on
// one CPU: NT readies a woken thread behind a running thread of its own
// priority or higher, so the waker runs on until it blocks [ros-thrdschd]
// (KiReadyThread preempts only for a strictly higher priority). Linux's
// scheduler instead lets the woken thread preempt its waker at once. With a
// mutex passed between two threads on one CPU that inverts the protocol: the
// woken owner releases before its waker is back on the wait list, finds the
// mutex free, and re-takes it until the next tick, while the waker cannot
// even queue (issue 20 measured 265 handoffs/s against 180,000 futex round
// trips). So the woken owner yields once to a waker that shares its CPU and
// whose priority is not below its own (decision, kmlab: after a mutant's
// handoff only; an event's or semaphore's waker cannot take the object
// back, and a yield there would only slow S9's ping-pong). Threads on
// different CPUs pay two sched_getcpu() reads (the vDSO), on the slow path.
namespace {
#ifdef KMLAB_DISPATCHER_SEAM
// The explorer's copy: every order of the two threads is a schedule already.
void note_waker(PKTHREAD) noexcept {}
void yield_to_waker(PKTHREAD, ULONG, PVOID const*) noexcept {}
#else
void note_waker(PKTHREAD t) noexcept {
    t->Extra->waker_cpu = sched_getcpu();
    t->Extra->waker_priority =
        std::atomic_ref<SCHAR>(current_thread()->Priority).load(std::memory_order_relaxed);
}
void yield_to_waker(PKTHREAD t, ULONG count, PVOID const* objects) noexcept {
    if (count != 1 || load_type(header_of(objects[0])) != MutantObject) return;
    if (t->Extra->waker_cpu < 0 || t->Extra->waker_cpu != sched_getcpu()) return;
    if (std::atomic_ref<SCHAR>(t->Priority).load(std::memory_order_relaxed) <=
        t->Extra->waker_priority)
        sched_yield();
}
#endif
}  // namespace

// Under the lock: ends `t`'s wait with `status` and wakes it. The wake itself
// is published by flush_wakes() once the lock is released (see there).
void unwait(PKTHREAD t, NTSTATUS status, KPRIORITY increment) noexcept {
    if ((status == STATUS_ALERTED && mutated(Mutant::alert_unwait_forgotten)) ||
        (status == STATUS_USER_APC && mutated(Mutant::user_apc_unwait_forgotten)))
        return;
    trace_unwait(t, status);
    end_wait(t, status);
    boost_priority(t, increment);
    note_waker(t);
    // The reference keeps its KTHREAD (and wake word) alive until the flush.
    kernel::reference_thread(t);
    t->Extra->next_pending_wake = nullptr;
    PendingWakes& pending = t_pending_wakes;
    if (pending.tail != nullptr) {
        pending.tail->Extra->next_pending_wake = t;
    } else {
        pending.head = t;
    }
    pending.tail = t;
}

namespace {

// Publishes the wakes deferred by unwait(); called after unlocking. Not
// before: the woken thread returns from its wait as soon as it sees its wake
// word, and may then free the object it waited on (destroy after wake, as
// std::mutex allows) while this thread, still inside the section that woke
// it, walks that object's wait list. The release store publishes WaitStatus
// and every object side effect to the waiter.
void flush_wakes() noexcept {
    PendingWakes& pending = t_pending_wakes;
    PKTHREAD t = std::exchange(pending.head, nullptr);
    pending.tail = nullptr;
    while (t != nullptr) {
        // Read the link first: once woken, t may wait again and be relinked.
        PKTHREAD next = t->Extra->next_pending_wake;
        publish_wake(t->Extra->wake);
        kernel::dereference_thread(t);
        t = next;
    }
}

}  // namespace

namespace {
constexpr int kStripes = 64;
struct alignas(64) Stripe {
    DbLock m;
};
Stripe g_stripes[kStripes];

LockMode initial_mode() noexcept {
    const char* v = std::getenv("KMLAB_DISPATCHER_LOCK");
    return v != nullptr && std::string_view(v) == "per-object" ? LockMode::per_object
                                                               : LockMode::global;
}
std::atomic<LockMode> g_mode{initial_mode()};

#ifdef KMLAB_DISPATCHER_SEAM
// Inside explore::run() (kernel_seam.hpp): an address hash would make a run
// depend on where its objects happen to be allocated, so that a schedule
// would not replay. There each object takes one of the first
// kModelStripes stripes in the order the run first uses it (objects share a
// stripe only past that many), and a section over every object takes those
// alone: the other stripes are then never used, so taking them orders nothing.
constexpr int kModelStripes = 4;
int stripes_in_use() noexcept {
    if (explore::kernel_seam::active()) return kModelStripes;
    return g_stripe_of != nullptr ? g_stripes_of_test : kStripes;
}
#else
constexpr int stripes_in_use() noexcept {
    return kStripes;
}
#endif

DbLock& stripe_of(const void* object) noexcept {
#ifdef KMLAB_DISPATCHER_SEAM
    if (explore::kernel_seam::active())
        return g_stripes[explore::kernel_seam::model_stripe(object, kModelStripes)].m;
    // A model test on fixed fibers (testing::set_stripe_of): its own
    // address-free choice, for the same reason.
    if (g_stripe_of != nullptr) return g_stripes[g_stripe_of(object) % g_stripes_of_test].m;
#endif
    // Fibonacci hashing of the address: neighbouring objects spread out.
    const auto h = (reinterpret_cast<std::uintptr_t>(object) >> 4) * 0x9E3779B97F4A7C15ull;
    return g_stripes[h >> 58].m;  // top 6 bits: 0..63
}
static_assert(kStripes == 64);

// A multi-object waiter's blocks form a ring of more than one.
bool has_multi_object_waiter(const void* object) noexcept {
    const PLIST_ENTRY head = &header_of(const_cast<void*>(object))->WaitListHead;
    for (PLIST_ENTRY e = head->Flink; e != head; e = e->Flink) {
        const KWAIT_BLOCK* wb = containing_record(e, &KWAIT_BLOCK::WaitListEntry);
        if (wb->NextWaitBlock != wb) return true;
    }
    return false;
}
}  // namespace

void set_lock_mode(LockMode mode) noexcept {
    g_mode.store(mode);
}
LockMode lock_mode() noexcept {
    return g_mode.load(std::memory_order_relaxed);
}

void Section::lock() {
    if (mode_ == LockMode::global) {
        lock_db(g_database_lock);
    } else if (object_ != nullptr) {
        lock_db(stripe_of(object_));
        if (has_multi_object_waiter(object_)) {
            unlock_db(stripe_of(object_));
            object_ = nullptr;
            lock();
            return;
        }
    } else {
        for (int i = 0; i < stripes_in_use(); ++i) lock_db(g_stripes[i].m);
    }
    locked_ = true;
}

void Section::claim(DISPATCHER_HEADER* h) {
    if (!has_fast_path(load_type(h))) return;
    if (mutated(Mutant::fast_path_ignores_busy)) return;
    // Inside a WaitNext hold the mark belongs to the hold: whoever ends it
    // (its wait, or drop_wait_next_hold before a raise unwinds) takes it back
    // while it still holds every stripe. A section of the hold may end
    // without the lock (a routine's) or after the hold did (a raise): its
    // own list would then be taken back under whatever lock the thread held
    // next, in per-object mode one that does not exclude a waiter.
    if (in_hold_) {
        auto& x = *t_->Extra;
        if (std::find(x.hold_claimed, x.hold_claimed + x.hold_claims, h) !=
            x.hold_claimed + x.hold_claims)
            return;
        mark_busy(h);
        // A mark nobody records stays set: fast paths then fail and the next
        // section over the object takes it back (it costs time only).
        if (x.hold_claims < x.kMaxHoldClaims) x.hold_claimed[x.hold_claims++] = h;
        return;
    }
    for (int i = 0; i < claims_; ++i) {
        if (claimed_[i] == h) return;
    }
    mark_busy(h);
    if (claims_ < kMaxClaims) claimed_[claims_++] = h;  // else it stays set, as above
}

void Section::release_claims() noexcept {
    for (int i = 0; i < claims_; ++i) {
        DISPATCHER_HEADER* h = claimed_[i];
        if (IsListEmpty(&h->WaitListHead)) clear_busy(h);
    }
    claims_ = 0;
}

void Section::park_claims() noexcept {
    auto& x = *t_->Extra;
    for (int i = 0; i < claims_; ++i) {
        void* h = claimed_[i];
        if (std::find(x.hold_claimed, x.hold_claimed + x.hold_claims, h) !=
            x.hold_claimed + x.hold_claims)
            continue;
        // Past the array the mark stays set (see claim).
        if (x.hold_claims < x.kMaxHoldClaims) x.hold_claimed[x.hold_claims++] = h;
    }
    claims_ = 0;
}

namespace {
// Under the lock, as a hold ends: the marks it kept come off where no one waits.
void release_hold_claims(PKTHREAD t) noexcept {
    auto& x = *t->Extra;
    for (int i = 0; i < x.hold_claims; ++i) {
        auto* h = static_cast<DISPATCHER_HEADER*>(x.hold_claimed[i]);
        if (IsListEmpty(&h->WaitListHead)) clear_busy(h);
    }
    x.hold_claims = 0;
}
}  // namespace

void Section::unlock() {
    // Before the lock goes: a section that clears the mark holds the lock,
    // so no waiter can link itself in between. An unlock ends any hold too.
    release_claims();
    if (t_->Extra->hold_claims != 0) release_hold_claims(t_);
    locked_ = false;
    if (mode_ == LockMode::global) {
        unlock_db(g_database_lock);
    } else if (object_ != nullptr) {
        unlock_db(stripe_of(object_));
    } else {
        for (int i = stripes_in_use() - 1; i >= 0; --i) unlock_db(g_stripes[i].m);
    }
}

Section::Section(PKTHREAD t, Kind kind, const void* object)
    : t_(t), object_(object), mode_(lock_mode()) {
    if (t_->WaitNext) {
        object_ = nullptr;             // a WaitNext hold covers every object
        locked_ = kind == Kind::Wait;  // a wait takes the hold over and ends it
        in_hold_ = true;
    } else {
        lock();
    }
    trace_section();
}

Section::~Section() {
    // A section of a hold recorded its marks with the hold (claim); one that
    // keeps the lock hands them over in keep_for_wait; a woken wait gave
    // them back before it blocked.
    if (keep_ || !locked_) return;
    // A raise or bug check already gave the hold back (drop_wait_next_hold).
    if (in_hold_ && !t_->WaitNext) return;
    if (t_->WaitNext) {
        t_->WaitNext = FALSE;
        t_->Irql = t_->WaitIrql;
    }
    unlock();
    flush_wakes();
}

void Section::keep_for_wait() {
    if (mode_ == LockMode::per_object && object_ != nullptr) {
        // Only sections over every object may keep their hold (see dispatcher_core.hpp).
        std::abort();
    }
    park_claims();
    if (!t_->WaitNext) {
        t_->WaitNext = TRUE;
        t_->WaitIrql = t_->Irql;
        if (t_->Irql < DISPATCH_LEVEL) t_->Irql = DISPATCH_LEVEL;
    }
    keep_ = true;
}

void Section::unlock_for_block() {
    in_hold_ = false;  // relock() takes a lock of this section's own
    if (t_->WaitNext) {
        t_->WaitNext = FALSE;
        t_->Irql = t_->WaitIrql;
    }
    unlock();
    flush_wakes();
}

void Section::relock() {
    lock();
}

void drop_wait_next_hold(PKTHREAD t) noexcept {
    if (!t->WaitNext) return;
    t->WaitNext = FALSE;
    t->Irql = t->WaitIrql;
    release_hold_claims(t);
    if (lock_mode() == LockMode::global) {
        unlock_db(g_database_lock);
    } else {
        for (int i = stripes_in_use() - 1; i >= 0; --i) unlock_db(g_stripes[i].m);
    }
    flush_wakes();
}

namespace {
DbLock g_timer_list_lock;
}  // namespace

#ifdef KMLAB_DISPATCHER_SEAM
namespace {
bool g_timer_list_lock_mutant = false;
}  // namespace
void set_timer_list_lock_mutant(bool on) noexcept {
    g_timer_list_lock_mutant = on;
}
void lock_timer_list(const Section& section) {
    if (section.covers_one_stripe() && !g_timer_list_lock_mutant) lock_db(g_timer_list_lock);
}
void unlock_timer_list(const Section& section) {
    if (section.covers_one_stripe() && !g_timer_list_lock_mutant) unlock_db(g_timer_list_lock);
}
#else
void lock_timer_list(const Section& section) {
    if (section.covers_one_stripe()) lock_db(g_timer_list_lock);
}
void unlock_timer_list(const Section& section) {
    if (section.covers_one_stripe()) unlock_db(g_timer_list_lock);
}
#endif

int stripe_index(const void* object) noexcept {
    // A Stripe is standard layout with its mutex first.
    return static_cast<int>(reinterpret_cast<const Stripe*>(&stripe_of(object)) - g_stripes);
}

void init_header(DISPATCHER_HEADER* h, UCHAR type, std::size_t size, LONG state) noexcept {
    // Bytes 1 and 3 keep what the caller's memory held [kmt-KeMutex][kmt-KeEvent].
    h->Type = type;
    h->Size = static_cast<UCHAR>(size / sizeof(ULONG));
    h->SignalState = state;
    InitializeListHead(&h->WaitListHead);
}

void wait_test_waiters(DISPATCHER_HEADER* h, KPRIORITY increment) {
    PLIST_ENTRY head = &h->WaitListHead;
    PLIST_ENTRY e = head->Flink;
    if ((mutated(Mutant::event_wake_removed) &&
         (load_type(h) == EventNotificationObject || load_type(h) == EventSynchronizationObject)) ||
        (mutated(Mutant::mutant_wake_removed) && load_type(h) == MutantObject))
        return;
    while (e != head && load_state(h) > 0) {
        KWAIT_BLOCK* wb = containing_record(e, &KWAIT_BLOCK::WaitListEntry);
        PKTHREAD waiter = wb->Thread;
        if (wb->WaitType == WaitAny) {
            const NTSTATUS s = satisfy(h, waiter);
            unwait(waiter, s | wb->WaitKey, increment);
            if ((mutated(Mutant::notification_wakes_one) &&
                 load_type(h) == EventNotificationObject) ||
                (mutated(Mutant::semaphore_wakes_one) && load_type(h) == SemaphoreObject))
                return;
            e = head->Flink;  // unwait unlinked every block of that waiter
            continue;
        }
        // A WaitAll waiter: ReactOS wakes it to re-evaluate and requeue at the
        // tail; evaluating in place is equivalent and keeps its FIFO place.
        const auto objects = wait_objects_of(waiter);
        const auto n = static_cast<ULONG>(objects.size());
        if (all_satisfiable(n, objects.data(), waiter)) {
            unwait(waiter,
                   mutated(Mutant::wait_all_satisfies_one) ? satisfy(h, waiter)
                                                           : satisfy_all(n, objects.data(), waiter),
                   increment);
            e = head->Flink;
        } else {
            e = e->Flink;
        }
    }
}

NTSTATUS wait(Section& section, ULONG count, PVOID const* objects, WAIT_TYPE type,
              KPROCESSOR_MODE mode, bool alertable, Deadline deadline, PKWAIT_BLOCK blocks) {
    PKTHREAD t = section.thread();
    for (;;) {
        if (!mutated(Mutant::wait_leaves_unclaimed)) {
            for (ULONG i = 0; i < count; ++i) section.claim(header_of(objects[i]));
        }
        // 1. Satisfy now if possible: the lowest index wins for WaitAny.
        if (type == WaitAny) {
            for (ULONG i = 0; i < count; ++i) {
                DISPATCHER_HEADER* h = header_of(objects[i]);
                check_mutant_limit(h, t);
                if (satisfiable(h, t))
                    return trace_satisfied(count, objects,
                                           satisfy(h, t) | static_cast<NTSTATUS>(i));
            }
        } else if (count > 0) {
            for (ULONG i = 0; i < count; ++i) check_mutant_limit(header_of(objects[i]), t);
            if (all_satisfiable(count, objects, t))
                return trace_satisfied(count, objects, satisfy_all(count, objects, t));
        }
        // 2. A signaled object wins over a pending alert (KiCheckAlertability).
        if (alertable) {
            if (t->Alerted[static_cast<int>(mode)] && !mutated(Mutant::pending_alert_ignored)) {
                t->Alerted[static_cast<int>(mode)] = FALSE;
                return STATUS_ALERTED;
            }
            if (mode == UserMode && !t->Extra->user_apcs.empty() &&
                !mutated(Mutant::pending_user_apc_ignored))
                return STATUS_USER_APC;
            if (t->Alerted[KernelMode] && !mutated(Mutant::pending_alert_ignored)) {
                t->Alerted[KernelMode] = FALSE;
                return STATUS_ALERTED;
            }
        }
        // 3. Zero or expired timeout.
        if (deadline_expired(deadline)) {
            trace_timeout(count, objects);
            return STATUS_TIMEOUT;
        }

        // 4. Block: link a wait block per object at the tail of its list.
        for (ULONG i = 0; i < count; ++i) {
            KWAIT_BLOCK* wb = &blocks[i];
            wb->Thread = t;
            wb->Object = objects[i];
            wb->WaitKey = static_cast<USHORT>(i);
            wb->WaitType = static_cast<UCHAR>(type);
            wb->NextWaitBlock = &blocks[(i + 1) % count];
            wb->BlockState = 1;
            InsertTailList(&header_of(objects[i])->WaitListHead, &wb->WaitListEntry);
        }
        t->WaitBlockList = count > 0 ? blocks : nullptr;
        t->Alertable = alertable ? TRUE : FALSE;
        t->WaitMode = mode;
        t->WaitStatus = STATUS_PENDING;
        t->Extra->waiting = true;
        reset_wake(t->Extra->wake);
        trace_blocks(count, objects, type, alertable, deadline);
        section.unlock_for_block();

        // Park until unwaited or the deadline passes; futex returns early on
        // signals, so re-check the word rather than trusting one return.
        while (load_wake(t->Extra->wake) == 0) {
            if (!park(t->Extra->wake, deadline)) break;
        }

        // Unwaited: the waker published WaitStatus (and every side effect of
        // satisfying the wait) before its release store, so the result is
        // read without retaking the lock, which the waker may still hold.
        if (load_wake(t->Extra->wake) != 0) {
            const auto status = static_cast<NTSTATUS>(t->WaitStatus);
            if (status != STATUS_KERNEL_APC) {
                yield_to_waker(t, count, objects);
                return status;
            }
            section.relock();
            continue;
        }
        section.relock();
        // Withdrawing unlinks blocks: the mark comes off where a list empties.
        for (ULONG i = 0; i < count; ++i) section.claim(header_of(objects[i]));
        if (t->Extra->waiting) {
            // Timed out and nobody unwaited us in the meantime: withdraw.
            if (!mutated(Mutant::timeout_leaves_blocks)) withdraw(t);
            trace_timeout(count, objects);
            return STATUS_TIMEOUT;
        }
        // Unwaited after the timeout, by a thread that has released the lock
        // (we hold it) but may not have published the wake yet: wait for it,
        // so that the late store cannot end this thread's next wait.
        while (load_wake(t->Extra->wake) == 0) park(t->Extra->wake, Deadline::never());
        const auto status = static_cast<NTSTATUS>(t->WaitStatus);
        if (status != STATUS_KERNEL_APC) return status;
        // STATUS_KERNEL_APC: re-evaluate with the remaining timeout.
    }
}

void signal_internal(PVOID object) {
    Section section(current_thread(), Section::Kind::Routine, object);
    DISPATCHER_HEADER* h = header_of(object);
    section.claim(h);
    const LONG previous = load_state(h);
    store_state(h, 1);
    if (previous == 0) wait_test(h);
}

void wait_internal(PVOID object) {
    PKTHREAD t = current_thread();
    Section section(t, Section::Kind::Wait, object);
    PVOID objects[1] = {object};
    wait(section, 1, objects, WaitAny, KernelMode, false, Deadline::never(), t->WaitBlock);
}

// ---- The fast paths (dispatcher_core.hpp) ----
// Each reads the word once, tests the mark and tries one compare-exchange;
// a failure of any kind goes to the slow path, which decides as it always
// did (no retry loop: a lost race means another thread is at the object).

NTSTATUS wait_at_once(PKTHREAD t, PVOID object) noexcept {
    // A WaitNext hold's wait ends the hold: the slow path's business.
    if (t->WaitNext) return STATUS_PENDING;
    DISPATCHER_HEADER* h = header_of(object);
    // The type first, on its own: the word of an object of another kind
    // (a timer's flags in byte 3) is written without atomics.
    const UCHAR type = load_type(h);
    if (!has_fast_path(type)) return STATUS_PENDING;
    const std::uint64_t w = load_word(h);
    if ((w & kBusyBit) != 0 && !mutated(Mutant::fast_path_ignores_busy)) return STATUS_PENDING;
    const LONG state = state_of(w);
    NTSTATUS status = STATUS_SUCCESS;
    // Acquire: what the last release or set published is visible to the
    // caller once its wait returns.
    switch (type) {
        case MutantObject: {
            PKMUTANT m = as_mutant(h);
            if (state == 1) {
                // Only a thread that holds no other mutant: its list is then
                // edited by no one else while it runs (see the fast release,
                // header_word.hpp). The owner field is written last, after the
                // list edit, for KeReleaseMutant(Abandon = TRUE)'s settle_owner.
                if (!IsListEmpty(&t->MutantListHead) || !cas_word(h, w, with_state(w, 0)))
                    return STATUS_PENDING;
                status = own_mutant_owned(m, t);
                store_owner_seen(m, t);
            } else if (state <= 0 && state != MINLONG && load_owner(m) == t) {
                // Its owner again. At MINLONG the slow path raises
                // STATUS_MUTANT_LIMIT_EXCEEDED. Only the owner changes a
                // state at or below 0 while no thread waits.
                if (!cas_word(h, w, with_state(w, state - 1))) return STATUS_PENDING;
            } else {
                return STATUS_PENDING;
            }
            break;
        }
        case EventNotificationObject:
            if (state <= 0) return STATUS_PENDING;  // signaled: stays so, the load acquired
            break;
        case EventSynchronizationObject:
        case SemaphoreObject:
            if (state <= 0 ||
                !cas_word(h, w, with_state(w, type == SemaphoreObject ? state - 1 : 0)))
                return STATUS_PENDING;
            break;
        default:
            return STATUS_PENDING;
    }
    PVOID objects[1] = {object};
    return trace_satisfied(1, objects, status);
}

ULONG waiter_count(PVOID object) {
    Section section(current_thread(), Section::Kind::Routine, object);
    ULONG n = 0;
    const PLIST_ENTRY head = &header_of(object)->WaitListHead;
    for (PLIST_ENTRY e = head->Flink; e != head; e = e->Flink) ++n;
    return n;
}

// kernel/src/fast_mutex.cpp: records a thread that exits at a raised IRQL or
// with APCs disabled as one that may still own FAST_MUTEXes and
// KGUARDED_MUTEXes, and releases those that threads already wait for.
void release_gate_locks_at_exit(PKTHREAD t);

void rundown_thread(PKTHREAD t) {
    PKMUTANT held_kmutex = nullptr;
    {
        Section section(t, Section::Kind::Wait);  // ends a WaitNext hold left by the thread
        // SEMANTICS.md 1.5: mutants are abandoned; holding a KMUTEX is fatal.
        // If the bug-check handler returns, the KMUTEX is abandoned too, so
        // that its waiters are not stranded behind a dead owner.
        while (!IsListEmpty(&t->MutantListHead)) {
            PKMUTANT m = containing_record(t->MutantListHead.Flink, &KMUTANT::MutantListEntry);
            section.claim(&m->Header);
            if (m->ApcDisable != 0 && held_kmutex == nullptr) held_kmutex = m;
            RemoveEntryList(&m->MutantListEntry);
            t->KernelApcDisable = static_cast<SHORT>(t->KernelApcDisable + m->ApcDisable);
            store_owner(m, nullptr);
            if (!mutated(Mutant::abandon_not_marked)) m->Abandoned = TRUE;
            store_state(&m->Header, 1);
            wait_test(&m->Header, MUTANT_INCREMENT);  // as KeRundownThread [ros-thrd]
            section.release_claims();
        }
        t->Extra->user_apcs.clear();
    }
    // A KMutex over futex or spin still held: the first one on the thread's
    // list, the oldest acquisition not yet released. Abandoned like the
    // mutants above (each release unlinks it and gives back its APC disable).
    const void* held = held_kmutex;
    if (held == nullptr && !IsListEmpty(&t->OwnedKMutexListHead)) {
        held = containing_record(t->OwnedKMutexListHead.Flink, &kernel::OwnedKMutexLink::entry);
    }
    while (!IsListEmpty(&t->OwnedKMutexListHead)) {
        auto* m = containing_record(t->OwnedKMutexListHead.Flink, &kernel::OwnedKMutexLink::entry);
        m->abandon(m, t);
    }
    // Every FAST_MUTEX / KGUARDED_MUTEX holder exits so (see below).
    const bool may_hold_gate_locks = t->KernelApcDisable != t->Extra->base_kernel_apc_disable ||
                                     t->SpecialApcDisable != 0 || t->Irql != PASSIVE_LEVEL;
    if (held != nullptr) {
        report_fatal_bug_check(BugCheck(bugcheck::THREAD_TERMINATE_HELD_MUTEX,
                                        reinterpret_cast<ULONG_PTR>(t),
                                        reinterpret_cast<ULONG_PTR>(held)));
    } else if (may_hold_gate_locks) {
        // KERNEL_APC_PENDING_DURING_EXIT: parameter 2 is the APC disable
        // count, parameter 3 the current IRQL, which "should be zero"
        // [bc:0x20]. The kernel keeps fast and guarded mutexes on no per-thread list,
        // so this is how an exit holding one is reported (decision, kmlab):
        //  * a FAST_MUTEX / FastMutex holder is at APC_LEVEL (ExAcquireFastMutex
        //    raised it), so the IRQL is non-zero: 0x20 with parameter 3 = 1.
        //    Windows' page for 0x20 names a raised IRQL at exit as a cause;
        //    ReactOS's PspExitThread instead lowers the IRQL silently first
        //    [ros-kill], which would leave the mutex owned with no report, so
        //    kmlab follows the documented, strict behaviour;
        //  * a KGUARDED_MUTEX / GuardedMutex holder is inside a guarded region
        //    (SpecialApcDisable != 0): 0x20, as PspExitThread bug checks on
        //    CombinedApcDisable != 0 [ros-kill];
        //  * an *Unsafe acquisition holder is inside the caller's critical or
        //    guarded region: 0x20 as well.
        // If the handler returns, the mutex is released on the thread's
        // behalf (below).
        report_fatal_bug_check(BugCheck(bugcheck::KERNEL_APC_PENDING_DURING_EXIT, 0,
                                        static_cast<ULONG>(t->CombinedApcDisable), t->Irql, 0));
    }
    // Fast and guarded mutexes still held (no record says which): released
    // on the thread's behalf, by this rundown for the ones already waited
    // for and by their next acquirers for the others, so that no waiter is
    // stranded behind a dead owner, as the mutants above are abandoned
    // (fast_mutex.cpp, "A mutex held by a thread that exits").
    if (may_hold_gate_locks) release_gate_locks_at_exit(t);
    Section section(t);
    t->Terminated = TRUE;
    store_state(&t->Header, 1);
    // A thread object wakes every waiter and stays signaled.
    if (!mutated(Mutant::thread_exit_no_wake)) wait_test(&t->Header);
}

}  // namespace kmlab::dispatcher
