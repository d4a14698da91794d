// Driver Verifier, the `verifier` flavour (kmlab::set_flavor(Flavor::verifier),
// KMLAB_FLAVOR=verifier, KmlabSetFlavor(KmlabFlavorVerifier)): its lock checks
// and its Deadlock Detection, in one place.
//
// Deadlock Detection [dv-deadlock] watches every lock kmlab has and keeps a
// graph of "held X while acquiring Y" edges, across threads. The acquisition
// that would close a cycle is reported, whether or not the threads ever ran
// at the same time: DRIVER_VERIFIER_DETECTED_VIOLATION (0xC4) with parameter
// 1 = 0x1001 and parameter 2 the lock being acquired [bc:0xC4]. The report
// (`last_report()`, and printed by the default bug-check handler) has the
// shape of the debugger's !deadlock [dbg-deadlock]: each thread of the cycle
// with the locks it took in order, each lock's type, name and where it was
// initialized, and, with stacks on (set_capture_stacks, or
// KMLAB_VERIFIER_STACKS=1), the stack of each acquisition (!deadlock 1).
//
// How a violation is delivered. The NT routines deliver Deadlock Detection's
// subcodes (0x1000-0x100B) through the replaceable bug-check handler
// (kmlab::set_bug_check_handler; the default prints the stop message and the
// report, and aborts). If a handler returns, the routine goes on as if the
// verifier had not looked, as a debugger's `g` lets Windows go on (decision,
// kmlab: a test can record the report and carry on). The idiomatic types
// return the same violation as an Error (Errc::deadlock) and do not acquire.
//
// Lock classes (decision, kmlab, after Linux's lockdep [lockdep-design]): the
// graph's nodes are classes, not lock addresses, so that one lock per object
// (many objects, one initialization site) is one node, and per-object locks
// taken in a consistent order add one edge, not one per object pair.
//  * A lock initialized by its NT routine (KeInitializeMutex, ExInitialize-
//    FastMutex, ...) while the verifier is on belongs to the class of (lock
//    type, the caller's return address): its initialization site. Through
//    the C face (<kmlab/wdm.h>) the site is the C entry point's caller
//    (InitSite below), not the C++ call inside nt/src/wdm.cpp.
//  * set_name(lock, "name") names a lock and makes the name its class (every
//    lock of one name is one class), whatever initialized it, before or
//    after its initialization routine.
//  * Any other lock (initialized while the verifier was off, or a type with no
//    initialization routine: EX_SPIN_LOCK, the idiomatic types) is a class of
//    its own, keyed by its address, as Driver Verifier keys every lock
//    [dv-deadlock].
// Two locks of one class held together add no class edge (a class cycle of
// one node); lockdep reports such a nesting unless annotated
// [lockdep-design] ("Nested data dependencies leading to nested locking").
// Decision, kmlab: no annotation; the pair adds an instance edge (lock
// address -> lock address) instead, and a cycle among instances is reported
// as a class cycle is: per-object locks of one class taken in a consistent
// order (an ordered walk) are silent, a real A-B / B-A between two of them
// is 0x1001.
//
// Address reuse. A lock's record lives at its address; when that memory
// holds a new lock, the record must go, or the new lock inherits the dead
// one's edges. An initialization routine starts a new record (keeping a
// name given before it), ExFreePool forgets the locks in the block, and the
// idiomatic types' destructors call forget_if_known. Not hooked: an
// EX_SPIN_LOCK (it has no initialization or destruction routine) whose
// memory is reused for another EX_SPIN_LOCK outside pool (a stack local, a
// reused global) keeps the old lock's address class and edges, as a lock
// initialized while the verifier was off and reused does: a known limit
// (call forget(lock) where the memory changes owner).
//
// What is an acquisition. Every blocking acquire, exclusive or shared
// (decision, kmlab: a shared acquire waits behind an exclusive waiter on
// ERESOURCE and push locks, so it is part of a cycle as an exclusive one is),
// checks for a cycle and adds its edges, before it waits (decision, kmlab,
// as lockdep does: two threads that overlap, each holding the lock the other
// waits for, are reported at the second one's acquisition, not left
// deadlocked unreported; lockdep.c's lock_acquire, which the lock primitives
// call before they take the lock, adds the dependencies then [lockdep-c];
// tests/model/model_verifier_test.cpp explores
// both). A try (KeTryToAcquire..., the idiomatic try_lock) never waits, so it
// closes no cycle and adds no edge into its lock; the locks taken while it is
// held do get edges from it (lockdep does the same: validate_chain adds no
// dependency for a trylock, "because trylock can be done in any order", and
// check_prevs_add adds them from the held trylocks above the first held
// non-trylock [lockdep-c]). A KeWaitForMultipleObjects(WaitAll) acquires its
// mutants at once: each is checked against the locks held before it and
// recorded as held, with no edge among the wait's own objects.
//
// Decisions on the documented subcodes [bc:0xC4]:
//  * 0x1000 self-deadlock ("tried to recursively acquire a resource"): for
//    the non-recursive types only (decision, kmlab: a recursion the contract
//    allows deadlocks nothing). A KMUTEX, an ERESOURCE and the idiomatic
//    KMutex and Resource are recursive by contract [ddi:kewaitforsingleobject]
//    [ddi:exacquireresourceexclusivelite]; an ERESOURCE held shared and
//    acquired exclusive is rules_resource.hpp's 0x1001 already. Reported
//    before the kernel's own answer (0xBF, 0xF), as Verifier's thunk runs
//    first; the idiomatic types return Errc::deadlock instead of
//    Errc::recursive_acquire in this flavour.
//  * 0x1001 deadlock: above.
//  * 0x1003 "released in an incorrect order": not reported (decision,
//    kmlab). No lock routine's documentation asks for the reverse order of
//    acquisition, drivers release out of order legitimately (hand-over-hand
//    traversal), and a release cannot take part in a deadlock; the lock-order
//    edges are what Deadlock Detection's 0x1001 needs.
//  * 0x1004 wrong thread (resource, owner, caller) and 0x1007 a release of a
//    lock nobody holds: only for a lock whose whole history the verifier saw
//    (initialized while it was on), so a lock acquired before the flavour was
//    switched is not misreported. ExReleaseResourceForThreadLite names the
//    thread it releases for, and is not a wrong-thread release.
//  * 0x1005 initialized again: reported when the lock is held (a lock whose
//    memory is reused is initialized again legitimately; kmlab sees no free).
//  * 0x100A a thread exits holding a lock (thread, lock, 0): at thread exit,
//    before the kernel's own exit checks (0x4000008A for a KMUTEX).
//  * 0x100B a lock deleted while held (lock, owner, 0): ExDeleteResourceLite,
//    and ExFreePool of a block holding a lock still held (decision, kmlab:
//    the page has no subcode for a held lock freed with its memory; freeing
//    it deletes it, and 0x100B is "the deleted lock is still owned").
//  * 0xD2 ExFreePool of a block holding an ERESOURCE not deleted (resource,
//    block, size) [bc:0xC4]: before 0x100B when both apply. The page lists
//    0xD2 "(Windows Vista and later)" with exactly these parameters; the
//    older subcode 0x17 (resource entry, pool type, pool address: the
//    debugger's bugcodes list, and the live page's 0x00-0x70 table) is the
//    pre-Vista form of the same check (decision, kmlab: 0xD2, the current
//    one, whose parameters kmlab reports).
//  * ERESOURCE is monitored: the Deadlock Detection page lists it with spin
//    locks, mutexes and fast mutexes among the owned resources that cause
//    deadlocks [dv-deadlock].
//
// The verifier's other lock checks (kept in the rules headers, enforced by
// every routine in this flavour): the IRQL of every acquire and release (the
// rules marked checked_build_only and verifier_only), waiting at
// DISPATCH_LEVEL (0xC4/0x3B, which covers a wait while holding a spin lock:
// that thread runs at DISPATCH_LEVEL).
//
// Where the hooks are. NT routines: KeInitializeMutex/Mutant,
// KeWaitForSingleObject / KeWaitForMutexObject / KeWaitForMultipleObjects on
// a mutant, KeReleaseMutex/Mutant; ExInitialize/Acquire/TryToAcquire/
// ReleaseFastMutex(Unsafe); Ke...GuardedMutex(Unsafe); KeInitializeSpinLock,
// KeAcquire/ReleaseSpinLock(AtDpcLevel/FromDpcLevel), KeTryToAcquireSpinLock-
// AtDpcLevel, KeAcquire/ReleaseInStackQueuedSpinLock; every ERESOURCE acquire,
// release, initialize, reinitialize and delete; Ex...PushLock...; ExAcquire/
// ReleaseSpinLockShared/Exclusive(AtDpcLevel/FromDpcLevel). Idiomatic types,
// every backend: KMutex, FastMutex, GuardedMutex, SpinLock, Resource,
// PushLock, RwSpinLock, QueuedSpinLock (lock, try_lock, the guards' release;
// no constructor hook, so each is a class of its own unless named; the
// destructor forgets it, forget_if_known). Also:
// the ...ForDpc spin lock routines (KSPIN_LOCK and in-stack queued), the
// in-stack queued ...AtDpcLevel forms, ExTryAcquireSpinLockShared/
// ExclusiveAtDpcLevel, KeWaitForSingleObject right after a Wait = TRUE
// signal (WaitNext: the saved WaitIrql is compared with the gate byte above
// it), and ExFreePool(WithTag) (check_free: 0xD2, 0x100B).
// Not hooked: a lock freed while only waited on (the verifier records
// holds, not waiters).
//
// Zero cost when off. Each thread's KTHREAD has a VerifierGate byte beside its
// Irql (objects.hpp): nonzero in the verifier flavour. The lock routines'
// fast paths compare the two bytes as one word (KTHREAD::IrqlGate) with the
// IRQL ceiling they compared Irql with before, one instruction either way; a
// set gate fails the compare into the routine's slow path, which applies the
// IRQL rule and calls the hooks below. Free and checked run the same
// instructions as before the verifier existed, or fewer (the slow paths
// moved out of line). Where a routine's compare has no gate-word form (a
// floor, as the ...AtDpcLevel routines' IRQL >= DISPATCH_LEVEL, or a compare
// of two IRQLs, as EX_SPIN_LOCK's release), the routine tests the gate byte
// itself (1-2 instructions): KeAcquire/ReleaseSpinLockAtDpcLevel/
// FromDpcLevel (a subtract folded into their compare), ExReleaseSpinLock-
// Shared/Exclusive and the EX_SPIN_LOCK ...AtDpcLevel forms,
// KeWaitForMultipleObjects, and a successful KeTryToAcquireSpinLockAtDpcLevel.
// Measured (callgrind, lock/unlock pairs, HEAD -> with the verifier's hooks,
// verifier off): ExAcquire/ReleaseFastMutex 53 -> 52, KeAcquire/Release-
// GuardedMutex 51 -> 49, KeWaitForSingleObject/KeReleaseMutex 460 -> 460,
// KeAcquire/ReleaseSpinLock 52 -> 45, KeAcquireSpinLockAtDpcLevel pair
// 40 -> 37, in-stack queued 121 -> 116, ERESOURCE exclusive 81 -> 72, push
// lock 59 -> 57, EX_SPIN_LOCK exclusive 45 -> 44, ExTryAcquireSpinLock-
// Exclusive/SharedAtDpcLevel + release pair 44 -> 42 / 46 -> 44, KeAcquire/
// ReleaseSpinLockForDpc 40 -> 35, in-stack queued ...AtDpcLevel pair
// 107 -> 105, ...ForDpc pair 105 -> 101, a Wait = TRUE KeSetEvent + the
// KeWaitForSingleObject after it 364 -> 365; idiomatic FastMutex
// 54 -> 38, GuardedMutex 53 -> 37, SpinLock 54 -> 38, RwSpinLock 53 -> 38,
// PushLock 54 -> 52, Resource 61 -> 61, KMutex (futex) 113 -> 112 (113: the
// tree with another change to KMutex in progress; HEAD 108), QueuedSpinLock
// 129 -> 123 (its IRQL compares moved onto the gate word, the rule and the
// hooks out of line into lock_gate / release_gate).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <kmlab/kernel/rules.hpp>
#include <kmlab/kernel/thread.hpp>

namespace kmlab::kernel::verifier {

enum class LockType : std::uint8_t {
    kmutex,            // KMUTEX / KMUTANT
    fast_mutex,        // FAST_MUTEX
    guarded_mutex,     // KGUARDED_MUTEX
    spin_lock,         // KSPIN_LOCK
    queued_spin_lock,  // KSPIN_LOCK through KLOCK_QUEUE_HANDLE
    resource,          // ERESOURCE
    push_lock,         // EX_PUSH_LOCK
    ex_spin_lock,      // EX_SPIN_LOCK
    // The idiomatic types (mutexes/), every backend:
    idiomatic_kmutex,
    idiomatic_fast_mutex,
    idiomatic_guarded_mutex,
    idiomatic_spin_lock,
    idiomatic_queued_spin_lock,
    idiomatic_resource,
    idiomatic_push_lock,
    idiomatic_rw_spin_lock,
};
// "Mutex", "FastMutex", "Spinlock", ... (the !deadlock type names where it has one).
const char* type_name(LockType type) noexcept;
// Whether the owner may acquire it again.
constexpr bool recursive(LockType type) noexcept {
    return type == LockType::kmutex || type == LockType::resource ||
           type == LockType::idiomatic_kmutex || type == LockType::idiomatic_resource;
}

// ---- Switches ----

// Whether the verifier runs for `t` (its gate is set).
inline bool on(nt::PKTHREAD t) noexcept {
    return t != nullptr && t->VerifierGate != 0;
}
// The calling thread's KTHREAD as an initialization routine hands it to the
// hooks. An initialization is often a thread's first kernel call, before it
// has a KTHREAD; with the verifier on that thread is adopted here, or the
// lock would stay unknown to the verifier and its misuse (0x1004, 0x1007)
// unreported. Off, a thread without a KTHREAD gets none (initializers stay
// callable from threads the kernel never adopts).
[[gnu::cold]] nt::PKTHREAD adopt_if_verifying() noexcept;
inline nt::PKTHREAD initializing_thread() noexcept {
    nt::PKTHREAD t = kernel::detail::tls_current_thread;
    if (t == nullptr) [[unlikely]]
        t = adopt_if_verifying();
    return t;
}
// Acquisition stacks in the report (backtrace(), symbolized when reported).
// Default: the environment variable KMLAB_VERIFIER_STACKS=1, else off.
void set_capture_stacks(bool on) noexcept;
bool capture_stacks() noexcept;
// Forgets every lock, class, edge and hold, and the last report (tests).
void reset() noexcept;
// Forgets what the verifier knows of the lock at `lock`: its information, its
// holds, its instance edges and, for a class keyed by its address, the class's
// edges (a new lock at that address starts with no history). The idiomatic
// types call it from their destructors (through forget_if_known).
void forget(const void* lock) noexcept;
// Whether the verifier has recorded any lock since the last reset (set under
// its lock by every record, cleared by reset): the one test an idiomatic
// type's destructor pays, verifier on or off.
extern std::atomic<bool> g_knows_locks;
inline void forget_if_known(const void* lock) noexcept {
    if (g_knows_locks.load(std::memory_order_relaxed)) [[unlikely]]
        forget(lock);
}
// Drops every thread's holds (set_flavor, when the flavour enters or leaves
// verifier: a release made in another flavour is unseen, so a hold recorded
// before would go stale; one made after the switch has no record to drop).
void clear_holds() noexcept;

// The initialization site of the C face's routines (nt/src/wdm.cpp): the C
// entry point names its own caller, or every lock a C driver initializes
// would have the site of the C++ call inside wdm.cpp, one class for all.
// Null: the NT routine's own caller is the site. on_initialize takes it
// (reads and clears it), so that a C handler's longjmp past ~InitSite after
// the hook leaves nothing behind.
extern constinit thread_local const void* tls_init_site;
class InitSite {
  public:
    explicit InitSite(const void* site) noexcept { tls_init_site = site; }
    ~InitSite() { tls_init_site = nullptr; }
    InitSite(const InitSite&) = delete;
    InitSite& operator=(const InitSite&) = delete;
};

// ---- Naming ----

// Names `lock` in reports and makes the name its class (every lock of one
// name is one node of the graph). `name` must outlive the verifier's use of
// it (a string literal).
void set_name(const void* lock, const char* name) noexcept;

// ---- The report ----

struct ReportLock {
    const void* address = nullptr;
    LockType type = LockType::kmutex;
    std::string name;            // set_name's, or a symbol at the address, or ""
    std::string initialized_at;  // the initialization site, symbolized; "" if unknown
};
struct ReportThread {
    const void* thread = nullptr;    // the KTHREAD
    std::uint64_t id = 0;            // the emulator's thread id
    std::vector<std::size_t> locks;  // indices into Report::locks, in acquisition order
    // With stacks on: the stack of each acquisition in `locks`, symbolized.
    std::vector<std::vector<std::string>> stacks;
};
struct Report {
    nt::ULONG_PTR subcode = 0;          // parameter 1 of the 0xC4
    std::vector<ReportLock> locks;      // "Lock A", "Lock B", ... (index 0 is A)
    std::vector<ReportThread> threads;  // for 0x1001 the cycle; else the thread at fault
    // The report as !deadlock prints it ("Deadlock detected (2 resources in 2
    // threads):", "Thread 0: A B", ...), with stacks if captured.
    std::string text() const;
};
// The last report made (Deadlock Detection subcodes only), or nothing.
std::optional<Report> last_report();
void clear_last_report() noexcept;

// ---- Hooks (call them only when on(t)) ----
//
// The check_ functions return the violation the verifier finds (and make it
// the last report), changing nothing else; the note_ functions record what
// happened. The NT routines use the void wrappers below, which deliver a
// violation through the bug-check handler.

// An initialization routine: `site` is its caller (__builtin_return_address(0)).
std::optional<Violation> check_initialize(nt::PKTHREAD t, const void* lock, LockType type) noexcept;
void note_initialize(const void* lock, LockType type, const void* site) noexcept;
// A lock deleted (ExDeleteResourceLite): 0x100B if held.
std::optional<Violation> check_delete(const void* lock) noexcept;
void note_delete(const void* lock) noexcept;
// Before an acquisition that may wait: 0x1000 or 0x1001.
std::optional<Violation> check_acquire(nt::PKTHREAD t, const void* lock, LockType type) noexcept;
// After it succeeded (`tried`: a try that never waited).
void note_acquire(nt::PKTHREAD t, const void* lock, LockType type, bool shared = false,
                  bool tried = false) noexcept;
// Before a release by `t` of the hold of `for_thread` (nullptr: `t`'s own):
// 0x1004 or 0x1007; the hold is dropped when it returns nothing.
std::optional<Violation> check_release(nt::PKTHREAD t, const void* lock, LockType type,
                                       nt::PKTHREAD for_thread = nullptr) noexcept;
// The hold, dropped without a check (a routine that checked already).
void note_release(nt::PKTHREAD t, const void* lock) noexcept;
// A thread exits: 0x100A if it holds a lock; forgets its holds.
void thread_exit(nt::PKTHREAD t) noexcept;
// ExFreePool of [block, block + size): 0xD2 for an ERESOURCE in it that was
// not deleted, else 0x100B for a lock in it still held; either way the locks
// in the block are forgotten (its memory may hold other locks next).
std::optional<Violation> check_free(const void* block, std::size_t size) noexcept;

// Delivers `v` through the bug-check handler (kmlab::report_fatal_bug_check);
// returns if the handler does.
[[gnu::cold]] void report(const Violation& v) noexcept;

// The NT routines' hooks: each checks, delivers, and records.
[[gnu::cold]] void on_initialize(nt::PKTHREAD t, const void* lock, LockType type,
                                 const void* site) noexcept;
[[gnu::cold]] void on_acquire(nt::PKTHREAD t, const void* lock, LockType type) noexcept;
inline void on_acquired(nt::PKTHREAD t, const void* lock, LockType type, bool shared = false,
                        bool tried = false) noexcept {
    if (on(t)) note_acquire(t, lock, type, shared, tried);
}
[[gnu::cold]] void on_release(nt::PKTHREAD t, const void* lock, LockType type,
                              nt::PKTHREAD for_thread = nullptr) noexcept;
[[gnu::cold]] void on_free(nt::PKTHREAD t, const void* block, std::size_t size) noexcept;

}  // namespace kmlab::kernel::verifier

namespace kmlab::kernel {
// require_irql_documented (thread.hpp) for a routine whose documented
// ceiling only Driver Verifier enforces (rules.hpp,
// check_irql_documented_verifier).
void require_irql_documented_verifier(nt::KIRQL documented, nt::KIRQL windows,
                                      const void* object = nullptr);
}  // namespace kmlab::kernel

namespace kmlab::kernel::detail {
// Sets (or clears) every live thread's VerifierGate (kernel/src/thread.cpp);
// set_flavor calls it.
void set_verifier_gates(bool on) noexcept;
}  // namespace kmlab::kernel::detail
