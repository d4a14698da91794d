// KTIMER and KDPC: the timer routines, the list of set timers, expiry, and
// the timer service that expires them in production (timer.hpp says what
// each routine promises).
//
// The explorer compiles it again (explore/src/timer_seam.cpp) for its
// virtual clock alone (now_count). Every lock this
// file takes is a dispatcher Section or the timer-list lock, both defined in
// dispatcher.cpp and so modelled there, and every edit of the timer list's
// links has a scheduling point (timer_list_step) between reading its
// neighbours and writing them, so that an edit the list lock fails to
// exclude interleaves with another under the explorer. In a binary built
// with the explorer's dispatcher no service runs (poke_service does nothing
// there): a timer expires only when a model thread calls
// kernel::expire_timer, a scheduling choice.
#include <kmlab/kernel/timer.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <thread>

#include <kmlab/kernel/rules.hpp>
#include <kmlab/platform/futex.hpp>
#include <kmlab/platform/platform.hpp>
#include "dispatcher_core.hpp"

namespace kmlab::dispatcher {

namespace {
using Clock = Deadline::clock;
using kernel::current_thread;

// Due times, as KTIMER.DueTime holds them: the steady clock's count since its
// epoch (nanoseconds on Linux; never negative, CLOCK_MONOTONIC). Windows keeps
// an absolute interrupt time there, in 100 ns units; nothing outside this file
// reads it (decision, kmlab: the count the wait deadlines use, so that no
// conversion rounds). kNever: a due time beyond the clock's range.
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

// In the explorer's copy (explore/src/timer_seam.cpp) the clock is virtual
// under the model and stands still (lock_seam.hpp): due times are counted
// from its epoch, and a timer expires only through kernel::expire_timer.
std::int64_t now_count() noexcept {
#ifdef KMLAB_DISPATCHER_SEAM
    return explore::kernel_seam::steady_now().time_since_epoch().count();
#else
    return Clock::now().time_since_epoch().count();
#endif
}
std::int64_t due_of(const KTIMER* t) noexcept {
    return static_cast<std::int64_t>(t->DueTime.QuadPart);
}
void set_due(KTIMER* t, std::int64_t due) noexcept {
    t->DueTime.QuadPart = static_cast<ULONGLONG>(due);
}

// The set timers, earliest first; timers due at the same time keep the order
// they were set in, as KiInsertTimerTable's backward walk keeps it
// [ros-timerobj]. Guarded as dispatcher_core.hpp's lock_timer_list says.
// A timer's DueTime changes only while it is off this list, so a walk under
// the list lock may read the due times of timers it does not cover.
constinit LIST_ENTRY g_timers{&g_timers, &g_timers};
}  // namespace

constinit std::atomic<std::uint32_t> g_timer_list_word{0};

namespace {

PKTIMER timer_at(PLIST_ENTRY e) noexcept {
    return containing_record(e, &KTIMER::TimerListEntry);
}

// The explorer's scheduling point inside an edit of the timer list (see
// dispatcher_core.hpp, g_timer_list_word). Only where the list lock alone
// orders the edit: a section on one stripe (per-object mode); one that holds
// every stripe, or the global lock, excludes every other list writer already,
// and a point there would only multiply the explorer's schedules. Production
// pays one load of a pointer that is null and a branch never taken.
void timer_list_step(const Section& section) noexcept {
    if (const platform::DispatcherSeam* seam = platform::g_dispatcher_seam) [[unlikely]] {
        if (section.covers_one_stripe()) (void)seam->load(g_timer_list_word);
    }
}

// The timer service. Trivially destructible on purpose: the service thread is
// detached and may still be asleep on `wake` while static objects are
// destroyed at exit, which must neither wait for it nor pull the word away.
struct Service {
    // Bumped (then futex-woken) whenever a timer is set earlier than
    // `next_due`; the service reads it before each scan and sleeps only while
    // it is unchanged, so a timer set after the scan cannot be slept through.
    std::atomic<std::uint32_t> wake{0};
    // The due time the service sleeps until: written by the service at the
    // end of each scan, and lowered by a setter (which then pokes), both under
    // a lock covering the timer set; atomic because per-object setters of
    // different timers hold different stripes.
    std::atomic<std::int64_t> next_due{kNever};
    std::atomic<bool> started{false};
    // DPCs that a KeSetTimer(Ex) already due queued for the service to run:
    // the kernel runs them when the caller's IRQL drops below DISPATCH_LEVEL,
    // never inside the call [ros-dpc]; here the service runs them, after its
    // next scan. A lock-free stack linked through KDPC.DpcListEntry.Flink
    // (pushed by a compare-exchange, taken whole by the service's exchange,
    // so no ABA), not a mutex: a caller inside a Wait = TRUE hold in the
    // per-object mode holds all 64 stripes, and a 65th lock would pass
    // ThreadSanitizer's limit of 64 held at once.
    std::atomic<PLIST_ENTRY> handed{nullptr};
};
Service g_service;
static_assert(std::is_trivially_destructible_v<Service>);

// KeFlushQueuedDpcs' word: the DPCs queued (claimed in queue_dpc) or
// running, in two phases: bits 0..14 count phase 0's, bits 15..29 phase 1's,
// and bit 31 names the phase a DPC claimed now joins. Each DPC keeps its
// phase in bit 0 of DpcData (a pointer to a list head otherwise, so the bit
// is free) and leaves that phase once its routine has returned. A flush
// first lets the other phase drain (nothing joins it, so it only drains),
// then switches the current phase over and waits for the old one to drain:
// every DPC queued before the flush started was in one of the two, and a
// DPC queued meanwhile, even by a routine that queues itself again, joins
// the new phase and cannot hold the flush off (an earlier single count that
// had to come back to 0 could be held off for good that way). A KDPC is
// queued at most once at a time, so a phase counts at most the KDPCs queued
// at once: 32,767 is far beyond any test's. Orders: every change is a
// read-modify-write and each finish a release, so the flush's acquire load
// that sees its phase at 0 reads the end of a release sequence that every
// finished routine's decrement heads: what the routines did happens before
// the flush returns.
std::atomic<std::uint32_t> g_dpcs_pending{0};
constexpr std::uint32_t kDpcCountMask = 0x7FFF;
constexpr int kDpcPhaseShift = 15;
constexpr std::uint32_t kDpcPhaseBit = 0x80000000u;
constexpr std::uint32_t dpc_one(std::uint32_t phase) noexcept {
    return 1u << (phase * kDpcPhaseShift);
}
constexpr std::uint32_t dpc_count(std::uint32_t w, std::uint32_t phase) noexcept {
    return (w >> (phase * kDpcPhaseShift)) & kDpcCountMask;
}

// Counts a DPC just claimed into the current phase, and returns that phase.
std::uint32_t dpc_queued() noexcept {
    std::uint32_t w = g_dpcs_pending.load(std::memory_order_relaxed);
    std::uint32_t phase = w >> 31;
    while (!g_dpcs_pending.compare_exchange_weak(w, w + dpc_one(phase), std::memory_order_relaxed,
                                                 std::memory_order_relaxed))
        phase = w >> 31;
    return phase;
}

void dpc_finished(std::uint32_t phase) noexcept {
    const std::uint32_t next =
        g_dpcs_pending.fetch_sub(dpc_one(phase), std::memory_order_release) - dpc_one(phase);
    if (dpc_count(next, phase) == 0) platform::sys::futex_wake(g_dpcs_pending, INT32_MAX);
}

void service_main();

// Wakes the service (starting it on first use) so that it rescans. Outside
// any section: thread creation and the futex wake need no lock.
void poke_service() {
    // Under the explorer time is virtual: no thread may expire timers behind
    // the model's back (model threads call kernel::expire_timer instead). In
    // a binary linked with the explorer's dispatcher a service would take the
    // model's locks whenever a model is installed, so none starts there at
    // all, even while no model is (set_before_run-style setup).
    if (platform::g_dispatcher_seam != nullptr || built_with_model_seam()) return;
    if (!g_service.started.exchange(true, std::memory_order_acq_rel)) {
        // Detached: it never returns and the process never joins it, so
        // exit cannot hang on it (it holds the dispatcher lock only briefly).
        std::thread(service_main).detach();
    }
    g_service.wake.fetch_add(1, std::memory_order_release);
    platform::sys::futex_wake(g_service.wake, 1);
}

// Under `section` (covering `timer`): links `timer` in due order and marks it
// set. Returns true when the service must be poked: it is due before what the
// service sleeps until.
bool insert_timer(const Section& section, PKTIMER timer, std::int64_t due) {
    set_due(timer, due);
    lock_timer_list(section);
    PLIST_ENTRY prev = g_timers.Blink;
    while (prev != &g_timers && due < due_of(timer_at(prev))) prev = prev->Blink;
    // InsertHeadList(prev, entry), split at the scheduling point.
    PLIST_ENTRY next = prev->Flink;
    timer_list_step(section);
    PLIST_ENTRY entry = &timer->TimerListEntry;
    entry->Flink = next;
    entry->Blink = prev;
    next->Blink = entry;
    prev->Flink = entry;
    unlock_timer_list(section);
    timer->Header.Inserted = TRUE;
    if (due < g_service.next_due.load(std::memory_order_relaxed)) {
        g_service.next_due.store(due, std::memory_order_relaxed);
        return true;
    }
    return false;
}

void remove_timer(const Section& section, PKTIMER timer) {
    lock_timer_list(section);
    // RemoveEntryList, split at the scheduling point.
    PLIST_ENTRY entry = &timer->TimerListEntry;
    PLIST_ENTRY next = entry->Flink;
    PLIST_ENTRY prev = entry->Blink;
    timer_list_step(section);
    prev->Flink = next;
    next->Blink = prev;
    unlock_timer_list(section);
    timer->Header.Inserted = FALSE;
}

// Queues `dpc` on the caller's local `queue` unless it is queued already (then
// KeInsertQueueDpc does nothing and returns FALSE [ros-dpc]). DpcData is
// non-NULL while queued; it is claimed with a compare-exchange, as the
// kernel's KeInsertQueueDpc claims it, because two timers covered by
// different stripes may share one DPC. SystemArgument1/2: the system time of
// expiry, low and high parts [ros-timerobj].
void queue_dpc(PKDPC dpc, PLIST_ENTRY queue) {
    PVOID expected = nullptr;
    if (!std::atomic_ref<PVOID>(const_cast<PVOID&>(dpc->DpcData))
             .compare_exchange_strong(expected, queue, std::memory_order_acquire))
        return;
    // The claim is this thread's until the service runs the DPC: the phase
    // goes into DpcData's spare bit 0 (still non-NULL while queued).
    const std::uint32_t phase = dpc_queued();
    std::atomic_ref<PVOID>(const_cast<PVOID&>(dpc->DpcData))
        .store(reinterpret_cast<PVOID>(reinterpret_cast<ULONG_PTR>(queue) | phase),
               std::memory_order_relaxed);
    LARGE_INTEGER now;
    nt::KeQuerySystemTime(&now);
    dpc->SystemArgument1 = reinterpret_cast<PVOID>(static_cast<ULONG_PTR>(now.u.LowPart));
    dpc->SystemArgument2 =
        reinterpret_cast<PVOID>(static_cast<ULONG_PTR>(static_cast<ULONG>(now.u.HighPart)));
    InsertTailList(queue, &dpc->DpcListEntry);
}

// Under `section`, with `timer` off the list: what KiSignalTimer does
// [ros-timerobj]. The timer is signaled and its waiters satisfied by the wait
// test (a notification timer stays signaled and releases all of them, a
// synchronization timer releases one and resets: satisfy.hpp); a periodic
// timer is re-armed one period after the due time it had (decision, kmlab:
// the kernel re-arms relative to the time of expiry, which drifts by the
// expiry's lateness; a periodic timer here keeps its phase), or one period
// from now if that has passed already (a late service skips the periods it
// missed rather than expiring in a burst); its DPC is queued on `dpcs`.
// Returns true when the service must be poked.
bool signal_timer(const Section& section, PKTIMER timer, std::int64_t now, PLIST_ENTRY dpcs,
                  TimerExpiry how) {
    store_state(&timer->Header, 1);
    if (how == TimerExpiry::faithful) wait_test(&timer->Header, IO_NO_INCREMENT);
    bool poke = false;
    if (timer->Period != 0) {
        const std::int64_t period = std::int64_t{timer->Period} * 1'000'000;  // ms -> ns
        const std::int64_t due = due_of(timer);
        std::int64_t next = due <= kNever - period ? due + period : kNever;
        if (next <= now) next = now <= kNever - period ? now + period : kNever;
        poke = insert_timer(section, timer, next);
    }
    if (timer->Dpc != nullptr) queue_dpc(timer->Dpc, dpcs);
    return poke;
}

// Reports an exception that escaped a DPC routine: nothing in a DPC's
// caller can handle it, so it is fatal, through the bug-check handler: the
// bug check itself, or KMODE_EXCEPTION_NOT_HANDLED (0x1E) for a raised
// status [bc:0x1E]. If the handler returns, the caller carries on with the
// DPCs queued behind it (decision, kmlab: one bad routine must not strand
// the others, whose DpcData would stay set for good).
void report_dpc_exception() noexcept {
    try {
        throw;
    } catch (const BugCheck& bc) {
        report_fatal_bug_check(bc);
    } catch (const NtException& e) {
        report_fatal_bug_check(BugCheck(bugcheck::KMODE_EXCEPTION_NOT_HANDLED,
                                        static_cast<ULONG>(e.status()), 0, 0, 0));
    } catch (...) {
        report_fatal_bug_check(
            BugCheck(bugcheck::KMODE_EXCEPTION_NOT_HANDLED, 0xE06D7363, 0, 0, 0));  // C++ EH code
    }
}

// Runs the DPCs expiry queued, on this thread at DISPATCH_LEVEL, with no
// dispatcher lock held, as the kernel's DPC retirement does [ros-dpc]: each
// is dequeued (DpcData cleared) before its routine runs, and not touched
// after, so that the routine may queue it again or its owner free it. Each
// one counts as pending (KeFlushQueuedDpcs) until its routine has returned.
void run_dpcs(PLIST_ENTRY queue) noexcept {
    PKTHREAD t = current_thread();
    while (!IsListEmpty(queue)) {
        PLIST_ENTRY e = queue->Flink;
        RemoveEntryList(e);
        PKDPC dpc = containing_record(e, &KDPC::DpcListEntry);
        const PKDEFERRED_ROUTINE routine = dpc->DeferredRoutine;
        const PVOID context = dpc->DeferredContext;
        const PVOID a1 = dpc->SystemArgument1;
        const PVOID a2 = dpc->SystemArgument2;
        std::atomic_ref<PVOID> data(const_cast<PVOID&>(dpc->DpcData));
        const auto phase = static_cast<std::uint32_t>(
            reinterpret_cast<ULONG_PTR>(data.load(std::memory_order_relaxed)) & 1);
        data.store(nullptr, std::memory_order_release);
        const KIRQL irql = t->Irql;
        kernel::set_irql(t, DISPATCH_LEVEL);
        try {
            routine(dpc, context, a1, a2);
        } catch (...) {
            report_dpc_exception();
        }
        kernel::set_irql(t, irql);
        dpc_finished(phase);
    }
}

// Moves the DPCs a KeSetTimer(Ex) queued onto the service's stack and pokes
// the service, which runs them after its next scan. Outside any section. The
// release publishes each DPC's fields (SystemArgument1/2) to the service.
void hand_to_service(PLIST_ENTRY dpcs) {
    if (IsListEmpty(dpcs)) return;
    while (!IsListEmpty(dpcs)) {
        PLIST_ENTRY e = dpcs->Flink;
        RemoveEntryList(e);
        e->Flink = g_service.handed.load(std::memory_order_relaxed);
        while (!g_service.handed.compare_exchange_weak(e->Flink, e, std::memory_order_release,
                                                       std::memory_order_relaxed)) {
        }
    }
    poke_service();
}

// Moves the service's stack onto `dpcs`, oldest first (the service, after its
// scan; in a model binary, kernel::expire_timer, the clock that plays the
// service).
void take_from_service(PLIST_ENTRY dpcs) {
    PLIST_ENTRY e = g_service.handed.exchange(nullptr, std::memory_order_acquire);
    LIST_ENTRY reversed;
    InitializeListHead(&reversed);
    while (e != nullptr) {
        PLIST_ENTRY next = e->Flink;
        InsertHeadList(&reversed, e);  // the stack is newest first
        e = next;
    }
    while (!IsListEmpty(&reversed)) {
        PLIST_ENTRY first = reversed.Flink;
        RemoveEntryList(first);
        InsertTailList(dpcs, first);
    }
}

void service_main() {
    // Never in a binary linked with the explorer's dispatcher (poke_service
    // starts none there): its locks would go through a model's seam.
    if (built_with_model_seam()) {
        std::fputs(
            "kmlab: the timer service started in a binary built with the explorer's "
            "dispatcher (KMLAB_DISPATCHER_SEAM); timers expire there only through "
            "kernel::expire_timer\n",
            stderr);
        std::abort();
    }
    PKTHREAD self = current_thread();
    for (;;) {
        const std::uint32_t seen = g_service.wake.load(std::memory_order_acquire);
        LIST_ENTRY dpcs;
        InitializeListHead(&dpcs);
        std::int64_t next;
        {
            // Every object: the timers due are found on the list, and a timer
            // this thread does not cover could be cancelled and freed between
            // finding it and locking it. Holding every stripe (per-object
            // mode) also excludes every list writer, so the list is read
            // without its own lock.
            Section section(self);
            const std::int64_t now = now_count();
            while (!IsListEmpty(&g_timers)) {
                PKTIMER timer = timer_at(g_timers.Flink);
                if (due_of(timer) > now) break;
                remove_timer(section, timer);
                (void)signal_timer(section, timer, now, &dpcs, TimerExpiry::faithful);
            }
            next = IsListEmpty(&g_timers) ? kNever : due_of(timer_at(g_timers.Flink));
            g_service.next_due.store(next, std::memory_order_relaxed);
        }
        take_from_service(&dpcs);
        run_dpcs(&dpcs);
        const Deadline until = next == kNever
                                   ? Deadline::never()
                                   : Deadline::at(Clock::time_point(Clock::duration(next)));
        // Returns at the deadline, on a poke, or spuriously: each rescans.
        (void)platform::sys::futex_wait(g_service.wake, seen, until);
    }
}
}  // namespace

bool expire_timer(PKTIMER timer, TimerExpiry how) {
    LIST_ENTRY dpcs;
    InitializeListHead(&dpcs);
    bool expired = false;
    bool poke = false;
    {
        Section section(current_thread(), Section::Kind::Routine, timer);
        if (timer->Header.Inserted) {
            expired = true;
            remove_timer(section, timer);
            poke = signal_timer(section, timer, now_count(), &dpcs, how);
        }
    }
    if (poke) poke_service();
    // In a model binary no service runs: the clock runs what KeSetTimer(Ex)
    // handed to it too.
    if (built_with_model_seam()) take_from_service(&dpcs);
    run_dpcs(&dpcs);
    return expired;
}

void reset_timer_list() noexcept {
    InitializeListHead(&g_timers);
    g_service.next_due.store(kNever, std::memory_order_relaxed);
}

std::string check_timer_list() {
    std::size_t n = 0;
    std::int64_t last = std::numeric_limits<std::int64_t>::min();
    for (PLIST_ENTRY e = &g_timers;;) {
        PLIST_ENTRY next = e->Flink;
        if (next->Blink != e) return "the timer list's links disagree (Flink->Blink)";
        e = next;
        if (e == &g_timers) break;
        if (++n > 1000) return "the timer list does not come back to its head";
        const PKTIMER t = timer_at(e);
        if (!t->Header.Inserted) return "a timer on the timer list is not marked set";
        if (due_of(t) < last) return "the timer list is out of due order";
        last = due_of(t);
    }
    return {};
}

}  // namespace kmlab::dispatcher

namespace kmlab::kernel {
bool expire_timer(nt::PKTIMER timer) {
    return dispatcher::expire_timer(timer, dispatcher::TimerExpiry::faithful);
}

std::size_t set_timer_count() {
    dispatcher::Section section(current_thread());
    dispatcher::lock_timer_list(section);
    std::size_t n = 0;
    for (nt::PLIST_ENTRY e = dispatcher::g_timers.Flink; e != &dispatcher::g_timers; e = e->Flink)
        ++n;
    dispatcher::unlock_timer_list(section);
    return n;
}
}  // namespace kmlab::kernel

namespace kmlab::nt {
using dispatcher::load_state;
using dispatcher::Section;
using dispatcher::store_state;
using kernel::current_thread;
using kernel::require_irql_at_most;

void KeInitializeDpc(PRKDPC Dpc, PKDEFERRED_ROUTINE DeferredRoutine, PVOID DeferredContext) {
    // KiInitializeDpc [ros-dpc]: DpcListEntry and the system arguments are
    // left as they were.
    Dpc->Type = DpcObject;
    Dpc->Importance = MediumImportance;
    Dpc->Number = 0;
    Dpc->DeferredRoutine = DeferredRoutine;
    Dpc->DeferredContext = DeferredContext;
    Dpc->DpcData = nullptr;
}

void KeInitializeTimer(PKTIMER Timer) {
    KeInitializeTimerEx(Timer, NotificationTimer);
}

void KeInitializeTimerEx(PKTIMER Timer, TIMER_TYPE Type) {
    // Documented for IRQL <= DISPATCH_LEVEL; a checked kernel stops above it
    // (kmtest's comment: 0xD1) and a free one initializes the timer anyway
    // [kmt-KeTimer]; the checked flavour's 0xA is the project's convention
    // (timer.hpp).
    kernel::require_irql_documented(DISPATCH_LEVEL, HIGH_LEVEL, Timer);
    // Byte 1 (TimerControlFlags) is left as it was, byte 3 (Inserted)
    // cleared, Hand/Size = sizeof(KTIMER) / sizeof(ULONG) [kmt-KeTimer]
    // [ros-timerobj]. Dpc, Processor and TimerListEntry are not written.
    dispatcher::init_header(&Timer->Header,
                            static_cast<UCHAR>(TimerNotificationObject + static_cast<int>(Type)),
                            sizeof(KTIMER), 0);
    Timer->Header.Inserted = FALSE;
    Timer->DueTime.QuadPart = 0;
    Timer->Period = 0;
}

BOOLEAN KeSetTimer(PKTIMER Timer, LARGE_INTEGER DueTime, PKDPC Dpc) {
    return KeSetTimerEx(Timer, DueTime, 0, Dpc);
}

BOOLEAN KeSetTimerEx(PKTIMER Timer, LARGE_INTEGER DueTime, LONG Period, PKDPC Dpc) {
    require_irql_at_most(DISPATCH_LEVEL, Timer);
    // The kernel takes Period as given: a negative one becomes an absolute
    // due time in 1601 at the first re-arm and ReactOS's re-arm loop never
    // ends [ros-timerobj]. Decision, kmlab: refuse it with a status the caller
    // sees, before anything is changed.
    if (Period < 0) [[unlikely]]
        raise_status(STATUS_INVALID_PARAMETER);
    // Converted before the lock, as the waits convert their timeouts. Only an
    // absolute due time (DueTime >= 0; 0 is 1601) can be already past: as
    // KiComputeDueTime decides [ros-timerobj], a relative one, however short,
    // is inserted and expires on the service, never inside this call.
    const bool absolute = DueTime.QuadPart >= 0;
    const Deadline due = kernel::deadline_from(&DueTime);
    LIST_ENTRY dpcs;
    InitializeListHead(&dpcs);
    BOOLEAN was_set;
    bool poke = false;
    {
        Section section(current_thread(), Section::Kind::Routine, Timer);
        was_set = Timer->Header.Inserted;
        if (was_set) dispatcher::remove_timer(section, Timer);
        Timer->Dpc = Dpc;
        Timer->Period = static_cast<ULONG>(Period);
        const std::int64_t now = dispatcher::now_count();
        if (absolute && due.expired(Deadline::clock::time_point(Deadline::clock::duration(now)))) {
            // Already due: KeSetTimerEx signals it at once [ros-timerobj].
            dispatcher::set_due(Timer, now);
            poke = dispatcher::signal_timer(section, Timer, now, &dpcs,
                                            dispatcher::TimerExpiry::faithful);
        } else {
            store_state(&Timer->Header, 0);
            poke = dispatcher::insert_timer(
                section, Timer,
                due.is_never() ? dispatcher::kNever : due.time_point().time_since_epoch().count());
        }
    }
    if (poke) dispatcher::poke_service();
    // The DPC of a timer signaled here is queued, never run on the caller:
    // the kernel runs it once the caller's IRQL drops below DISPATCH_LEVEL
    // [ros-dpc], which may be after the caller releases a spin lock its
    // routine takes, or ends a Wait = TRUE hold with its wait. The service
    // runs it (decision, kmlab: on another thread, so possibly while the
    // caller is still at DISPATCH_LEVEL, as another processor's DPC would).
    dispatcher::hand_to_service(&dpcs);
    return was_set;
}

BOOLEAN KeCancelTimer(PKTIMER Timer) {
    require_irql_at_most(DISPATCH_LEVEL, Timer);
    Section section(current_thread(), Section::Kind::Routine, Timer);
    // The signal state is left as it is, and a DPC already queued still runs
    // [ros-timerobj].
    const BOOLEAN was_set = Timer->Header.Inserted;
    if (was_set) dispatcher::remove_timer(section, Timer);
    return was_set;
}

BOOLEAN KeReadStateTimer(PKTIMER Timer) {
    require_irql_at_most(DISPATCH_LEVEL, Timer);
    return load_state(&Timer->Header) != 0 ? TRUE : FALSE;
}

void KeFlushQueuedDpcs() {
    // Documented for PASSIVE_LEVEL [ddi:keflushqueueddpcs]; above it, the
    // project's IRQL-ceiling rule (rules.hpp check_irql_at_most): 0xA.
    require_irql_at_most(PASSIVE_LEVEL);
    using dispatcher::dpc_count;
    using dispatcher::g_dpcs_pending;
    // Waits until `phase`, not the current one, has drained: its count is 0,
    // or another flush has made it current again, which its switch did only
    // after seeing that count at 0 (a concurrent flush's switch can make the
    // phase current again and let a self-queueing DPC keep its count above 0,
    // so waiting for the count alone could wait for good).
    auto drain = [](std::uint32_t phase) {
        std::uint32_t w = g_dpcs_pending.load(std::memory_order_acquire);
        while (dpc_count(w, phase) != 0 && (w >> 31) != phase) {
            (void)platform::sys::futex_wait(g_dpcs_pending, w, Deadline::never());
            w = g_dpcs_pending.load(std::memory_order_acquire);
        }
    };
    std::uint32_t w = g_dpcs_pending.load(std::memory_order_acquire);
    for (;;) {
        const std::uint32_t phase = w >> 31;
        if (dpc_count(w, phase ^ 1) != 0) {
            drain(phase ^ 1);  // an earlier flush's old phase: it only drains
            w = g_dpcs_pending.load(std::memory_order_acquire);
            continue;
        }
        // Switch: DPCs claimed from now on join the other phase.
        if (g_dpcs_pending.compare_exchange_weak(w, w ^ dispatcher::kDpcPhaseBit,
                                                 std::memory_order_acquire,
                                                 std::memory_order_acquire)) {
            drain(phase);
            return;
        }
    }
}

}  // namespace kmlab::nt
