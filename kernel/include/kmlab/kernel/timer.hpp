// KTIMER, a waitable dispatcher object, and the KDPC a timer may queue when it
// expires: the WDK's amd64 layouts [ros-xket][wine-wdm] and routines
// [ddi:keinitializetimerex][ddi:kesettimerex][ddi:kecanceltimer]
// [ddi:keflushqueueddpcs].
//
// Semantics (ReactOS ntoskrnl/ke/timerobj.c [ros-timerobj], kmtests
// ntos_ke/KeTimer.c [kmt-KeTimer]):
//  * a notification timer, once expired, stays signaled and releases every
//    waiter; a synchronization timer releases one waiter and resets, as the
//    two kinds of event do;
//  * KeSetTimer(Ex) on a timer that is already set cancels it first (returns
//    TRUE); it clears the signal state, so that the timer is non-signaled
//    until it expires again, unless the new due time has passed already, when
//    it signals the timer at once [ros-timerobj];
//  * DueTime < 0: relative to now, in 100 ns units; DueTime >= 0: an absolute
//    system time (KeQuerySystemTime). Only an absolute time already past
//    (DueTime == 0 is 1601) expires the timer at once, inside KeSetTimer; a
//    relative one, however short, is inserted and expires on the service, as
//    KiComputeDueTime decides [ros-timerobj];
//  * Period (ms, >= 0): a periodic timer is re-armed each time it expires,
//    one period after the due time it had (or from now, if that has passed
//    too), until KeCancelTimer; it stays set, and a notification timer stays
//    signaled between expiries;
//  * a non-NULL Dpc is queued when the timer expires (unless it is queued
//    already) and its DeferredRoutine runs at DISPATCH_LEVEL, with no
//    dispatcher lock held, with SystemArgument1/2 the low and high parts of
//    the system time of expiry, as KiSignalTimer queues it [ros-timerobj].
//    It never runs on the caller of KeSetTimer(Ex): Windows runs a DPC when
//    the queueing processor's IRQL drops below DISPATCH_LEVEL [ros-dpc], so
//    a caller may hold a spin lock the routine takes, or be inside a
//    Wait = TRUE hold, when it sets a timer already due. The timer service
//    runs the DPCs of the timers it expires and those a KeSetTimer(Ex)
//    already due queued to it (decision, kmlab: on another thread, so
//    possibly while the caller is still at DISPATCH_LEVEL, as another
//    processor's would); kernel::expire_timer runs those of its timer on its
//    caller. KeCancelTimer does not dequeue a DPC already queued, nor wait
//    for one running: KeFlushQueuedDpcs does, before the caller frees what a
//    DPC uses [ddi:kecanceltimer][ddi:keflushqueueddpcs]. Not emulated:
//    KeInsertQueueDpc, KeRemoveQueueDpc, threaded DPCs, importance and target
//    processors. An exception escaping a DPC is fatal: the bug check itself,
//    or KMODE_EXCEPTION_NOT_HANDLED (0x1E) for a raised status [bc:0x1E],
//    through the bug-check handler; if the handler returns, the DPCs queued
//    behind it still run.
//
// Illegal uses:
//  * any of these routines above DISPATCH_LEVEL, the documented ceiling
//    [ddi:kesettimerex][ddi:kecanceltimer], and KeFlushQueuedDpcs above
//    PASSIVE_LEVEL [ddi:keflushqueueddpcs]: IRQL_NOT_LESS_OR_EQUAL (0xA:
//    timer or 0, IRQL, 0, 0). The pages name no bug check: 0xA and its
//    parameters are the project's IRQL-ceiling rule (rules.hpp
//    check_irql_at_most), not Windows' documented behaviour;
//  * KeSetTimerEx with Period < 0: STATUS_INVALID_PARAMETER is raised and
//    nothing changes (the kernel takes it as given and its re-arm then never
//    ends [ros-timerobj]; decision, kmlab: a status the caller can see);
//  * freeing or re-initializing a timer that is still set (the timer service
//    would touch freed memory, as Windows' timer table would).
//
// Emulator notes: the timer is expired by one lazily started service thread,
// which sleeps until the earliest due time and is woken when a timer is set
// earlier than that; it is detached, so process exit never waits for it.
// Due times follow the steady clock: an absolute due time is converted to it
// when the timer is set, as the waits convert theirs. Departure from Windows,
// kept on purpose: an absolute due time does not follow a change of the
// system clock made after the timer was set (Windows re-evaluates absolute
// timers when the clock is set; nothing here sets it). Switch the dispatcher lock mode
// (dispatcher::set_lock_mode) only while no timer is set: the service is a
// dispatcher operation in flight. Under the schedule explorer there is no
// service: expiry is a scheduling choice, made by a model thread that calls
// kmlab::kernel::expire_timer.
#pragma once

#include <type_traits>

#include <kmlab/kernel/routines.hpp>

namespace kmlab::nt {

// ---- KDPC ----
// The Win7 / ReactOS amd64 layout [ros-xket]; Windows 8 replaced DpcListEntry
// with a SINGLE_LIST_ENTRY and ProcessorHistory, at the same total size.
struct KDPC;
using PKDPC = KDPC*;
using PRKDPC = KDPC*;
using KDEFERRED_ROUTINE = void(KDPC* Dpc, PVOID DeferredContext, PVOID SystemArgument1,
                               PVOID SystemArgument2);
using PKDEFERRED_ROUTINE = KDEFERRED_ROUTINE*;

// KOBJECTS value of a DPC [ros-xket] (ntdef.hpp's enum lists the waitable ones).
inline constexpr UCHAR DpcObject = 19;
// KDPC_IMPORTANCE [ros-xket].
enum KDPC_IMPORTANCE { LowImportance = 0, MediumImportance = 1, HighImportance = 2 };

struct KDPC {
    UCHAR Type;  // DpcObject
    UCHAR Importance;
    volatile USHORT Number;
    LIST_ENTRY DpcListEntry;  // while queued: link in the expiring thread's DPC queue
    PKDEFERRED_ROUTINE DeferredRoutine;
    PVOID DeferredContext;
    PVOID SystemArgument1;
    PVOID SystemArgument2;
    volatile PVOID DpcData;  // non-NULL while queued
};

// Type = DpcObject, Importance = MediumImportance, Number = 0, DpcData = NULL
// [ros-dpc]. Any IRQL.
void KeInitializeDpc(PRKDPC Dpc, PKDEFERRED_ROUTINE DeferredRoutine, PVOID DeferredContext);

// ---- KTIMER ----
enum TIMER_TYPE { NotificationTimer = 0, SynchronizationTimer = 1 };

union ULARGE_INTEGER {
    struct {
        ULONG LowPart;
        ULONG HighPart;
    } u;
    ULONGLONG QuadPart;
};
using PULARGE_INTEGER = ULARGE_INTEGER*;

struct KTIMER {
    // Type: TimerNotificationObject + TIMER_TYPE; SignalState 1 once expired
    // (until a synchronization timer satisfies a wait, or KeSetTimer);
    // Inserted (byte 3): TRUE while the timer is set [ros-timerobj].
    DISPATCHER_HEADER Header;
    // While set: the due time as an absolute interrupt time in 100 ns units.
    // The emulator keeps its own steady-clock count here (written under the
    // timer's dispatcher lock; not meaningful to compare with system time).
    ULARGE_INTEGER DueTime;
    LIST_ENTRY TimerListEntry;  // link in the timer service's list while set
    PKDPC Dpc;                  // queued at expiry, or NULL
    ULONG Processor;            // unused: the emulator has one list of set timers
    ULONG Period;               // ms; 0 for a one-shot timer
};
using PKTIMER = KTIMER*;
using PRKTIMER = KTIMER*;

static_assert(std::is_standard_layout_v<KTIMER> && offsetof(KTIMER, Header) == 0);
static_assert(std::is_standard_layout_v<KDPC>);
#if defined(__x86_64__)
// The WDK's amd64 layouts [ros-xket].
static_assert(sizeof(KTIMER) == 64 && offsetof(KTIMER, DueTime) == 24);
static_assert(offsetof(KTIMER, TimerListEntry) == 32 && offsetof(KTIMER, Dpc) == 48);
static_assert(offsetof(KTIMER, Processor) == 56 && offsetof(KTIMER, Period) == 60);
static_assert(sizeof(KDPC) == 64 && offsetof(KDPC, Importance) == 1);
static_assert(offsetof(KDPC, Number) == 2 && offsetof(KDPC, DpcListEntry) == 8);
static_assert(offsetof(KDPC, DeferredRoutine) == 24 && offsetof(KDPC, DeferredContext) == 32);
static_assert(offsetof(KDPC, SystemArgument1) == 40 && offsetof(KDPC, SystemArgument2) == 48);
static_assert(offsetof(KDPC, DpcData) == 56);
#endif

// A timer of the type, not set, not signaled. Documented for IRQL <=
// DISPATCH_LEVEL. kmtest initializes it at HIGH_LEVEL on a free build, and
// skips that on a checked one, whose stop its comment names
// DRIVER_IRQL_NOT_LESS_OR_EQUAL (0xD1, "TODO: on MP only?") [kmt-KeTimer].
// Here the free flavour initializes the timer and the checked one bug checks
// IRQL_NOT_LESS_OR_EQUAL (0xA: timer, IRQL, 0, 0), the project's convention
// for an IRQL ceiling (rules.hpp check_irql_documented), not the 0xD1 that
// kmtest's comment names.
void KeInitializeTimer(PKTIMER Timer);
void KeInitializeTimerEx(PKTIMER Timer, TIMER_TYPE Type);
// KeSetTimerEx(Timer, DueTime, 0, Dpc).
BOOLEAN KeSetTimer(PKTIMER Timer, LARGE_INTEGER DueTime, PKDPC Dpc);
// Returns TRUE if the timer was already set (it is cancelled and re-armed).
BOOLEAN KeSetTimerEx(PKTIMER Timer, LARGE_INTEGER DueTime, LONG Period, PKDPC Dpc);
// Returns TRUE if the timer was set; its signal state is left as it is
// [ros-timerobj].
BOOLEAN KeCancelTimer(PKTIMER Timer);
// TRUE while signaled (SignalState != 0).
BOOLEAN KeReadStateTimer(PKTIMER Timer);
// Returns once every DPC queued (or running) when it was called has run
// [ddi:keflushqueueddpcs]: DPCs a timer queues afterwards are not waited
// for, so a periodic timer's cannot hold it off. PASSIVE_LEVEL only (above
// it: 0xA, the project's rule). Use it after KeCancelTimer before freeing
// what a timer's DPC uses [ddi:kecanceltimer]. Not under the explorer (it
// parks on a real futex).
void KeFlushQueuedDpcs();

}  // namespace kmlab::nt

namespace kmlab::kernel {
// Expires `timer` now if it is set, as the timer service does when its due
// time comes: under the dispatcher lock it unlinks the timer, signals it,
// runs the wait test and re-arms a periodic timer at due + period; then, with
// the lock released, runs its DPC at DISPATCH_LEVEL on the caller (which
// plays the service). In a binary built with the explorer's dispatcher, where
// no service runs, it also runs the DPCs that a KeSetTimer(Ex) already due
// queued to the service. Returns false (and does
// nothing) if the timer was not set. The schedule explorer's clock thread
// calls it: there, expiry is a scheduling choice, not a clock's.
bool expire_timer(nt::PKTIMER timer);
// How many timers are set (on the service's list), read under the lock.
std::size_t set_timer_count();
}  // namespace kmlab::kernel
