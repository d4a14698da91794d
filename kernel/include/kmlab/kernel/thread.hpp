// Per-thread kernel state: every OS thread that calls into the emulator (a
// std::thread, a oneTBB worker, a PsCreateSystemThread thread) gets its
// emulated KTHREAD on first use. Also the IRQL routines, critical and guarded
// regions, and the APC-state queries.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include <kmlab/kernel/bugcheck.hpp>
#include <kmlab/kernel/objects.hpp>

namespace kmlab::kernel {

namespace detail {
using UserApcRoutine = void (*)(void* NormalContext, void* SystemArgument1, void* SystemArgument2);
struct UserApc {
    UserApcRoutine routine;
    void* context;
    void* argument1;
    void* argument2;
};

// One ERESOURCE (or idiomatic Resource) this thread owns shared, and how many
// times (kernel/resource_algorithm.hpp).
struct ResourceHold {
    const void* resource;
    nt::ULONG count;
};

// A thread's shared holds, most recent last: the first kInline in place (the
// shared fast path touches no allocation), the rest in `more`.
//
// Another thread may release one of these holds (ExReleaseResourceForThread-
// Lite naming this thread), so the table is shared, with this protocol:
//   * the owner's fast paths (add_inline, drop_last_inline, reads) take no
//     lock: every field is read and written through relaxed atomic_refs
//     (plain moves on x86-64), size with release / acquire, and they change
//     only the last slot;
//   * every other change (recursion counts, removal, `more`, compaction) is
//     made under `lock`, by the owner's slow paths or by another thread;
//   * another thread never moves an entry (it would race with the owner's
//     fast path at the end of the table): a hold it releases entirely
//     becomes a tombstone (kReleased), which the owner compacts away later.
// Correct as long as the owner does not touch the very hold that another
// thread releases for it meanwhile (Windows' contract: it handed it over).
class ResourceHolds {
  public:
    static constexpr std::uint32_t kInline = 8;
    // A slot another thread released; never equal to a resource's address.
    static const void* released() noexcept { return reinterpret_cast<const void*>(1); }

    std::uint32_t size() const noexcept {
        return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(size_))
            .load(std::memory_order_acquire);
    }
    bool empty() const noexcept { return size() == 0; }
    // The in-place entries, for the fast path: [0, min(size, kInline)).
    ResourceHold* inline_entries() noexcept { return inline_; }
    static const void* resource_of(ResourceHold& h) noexcept {
        return std::atomic_ref<const void*>(h.resource).load(std::memory_order_relaxed);
    }
    static nt::ULONG count_of(ResourceHold& h) noexcept {
        return std::atomic_ref<nt::ULONG>(h.count).load(std::memory_order_relaxed);
    }
    // The hold of `r`, or nullptr: the owner, or a thread holding `lock`.
    ResourceHold* find(const void* r) noexcept {
        const std::uint32_t size = this->size();
        const std::uint32_t n = size < kInline ? size : kInline;
        for (std::uint32_t i = n; i-- > 0;) {
            if (resource_of(inline_[i]) == r) return &inline_[i];
        }
        if (size > kInline) {
            for (auto& h : more_) {
                if (resource_of(h) == r) return &h;
            }
        }
        return nullptr;
    }
    nt::ULONG count(const void* r) noexcept {
        ResourceHold* h = find(r);
        return h == nullptr ? 0 : count_of(*h);
    }
    // The fast path's add and drop, given the size n it read (the owner's
    // own value: nobody else changes it): add with n < kInline; drop when
    // the last entry is its hold, count 1.
    void add_inline(const void* r, std::uint32_t n) noexcept {
        set(inline_[n], r, 1);
        set_size(n + 1);
        named_ = true;
    }
    // Whether a resource has ever named this thread (as a shared holder, or
    // as exclusive owner: mark_named): its KTHREAD's address is then an
    // ERESOURCE_THREAD that may outlive the thread, so the KTHREAD is never
    // freed for another thread to reuse (kernel/thread.cpp,
    // dereference_thread). Written by the owner thread alone.
    void mark_named() noexcept { named_ = true; }
    bool named() const noexcept { return named_; }
    void drop_last_inline(std::uint32_t n) noexcept { set_size(n - 1); }

    // ---- the owner's slow paths (each takes `lock`) ----
    // One more acquisition of a hold it has: false if it has none.
    bool add_recursion(const void* r) noexcept {
        std::lock_guard g(lock);
        ResourceHold* h = find(r);
        if (h == nullptr) return false;
        set_count(*h, count_of(*h) + 1);
        return true;
    }
    void add(const void* r, nt::ULONG count) {
        std::lock_guard g(lock);
        named_ = true;
        if (foreign_releases_) compact();
        if (size_ < kInline) {
            set(inline_[size_], r, count);
        } else {
            more_.push_back({r, count});
        }
        set_size(size_ + 1);
    }
    // Takes all of its hold of `r` (ExSetResourceOwnerPointer): its count, 0
    // if none.
    nt::ULONG take(const void* r) noexcept {
        std::lock_guard g(lock);
        ResourceHold* h = find(r);
        if (h == nullptr) return 0;
        const nt::ULONG c = count_of(*h);
        remove(h);
        return c;
    }
    enum class Release : std::uint8_t { not_held, held, last };
    // One acquisition of `r` released, by the owner (`foreign` false) or by
    // another thread holding the table.
    Release release(const void* r, bool foreign) noexcept {
        std::lock_guard g(lock);
        ResourceHold* h = find(r);
        if (h == nullptr) return Release::not_held;
        const nt::ULONG c = count_of(*h) - 1;
        if (c != 0) {
            set_count(*h, c);
            return Release::held;
        }
        if (foreign) {
            set(*h, released(), 0);
            foreign_releases_ = true;
        } else {
            remove(h);
        }
        return Release::last;
    }
    // Every hold, emptied out (thread exit), under `lock`.
    template <class F>
    void drain(F&& each) {
        std::lock_guard g(lock);
        const std::uint32_t n = size_ < kInline ? size_ : kInline;
        for (std::uint32_t i = 0; i < n; ++i) {
            if (inline_[i].resource != released()) each(inline_[i].resource, inline_[i].count);
        }
        for (auto& h : more_) {
            if (h.resource != released()) each(h.resource, h.count);
        }
        more_.clear();
        set_size(0);
        foreign_releases_ = false;
    }

    // Held by the owner's slow-path changes and by another thread's release.
    std::mutex lock;

  private:
    bool named_ = false;
    static void set(ResourceHold& h, const void* r, nt::ULONG count) noexcept {
        std::atomic_ref<const void*>(h.resource).store(r, std::memory_order_relaxed);
        set_count(h, count);
    }
    static void set_count(ResourceHold& h, nt::ULONG count) noexcept {
        std::atomic_ref<nt::ULONG>(h.count).store(count, std::memory_order_relaxed);
    }
    void set_size(std::uint32_t n) noexcept {
        std::atomic_ref<std::uint32_t>(size_).store(n, std::memory_order_release);
    }
    // Removes `h` (an entry of this table), keeping the order of the rest
    // (the fast release looks at the last entry). Under `lock`, by the owner.
    void remove(ResourceHold* h) noexcept {
        std::uint32_t n = size_;
        std::uint32_t i = static_cast<std::uint32_t>(
            h >= inline_ && h < inline_ + kInline ? h - inline_ : kInline + (h - more_.data()));
        for (; i + 1 < n; ++i) at(i) = at(i + 1);
        if (n > kInline) more_.pop_back();
        set_size(n - 1);
    }
    void compact() noexcept {
        std::uint32_t kept = 0;
        const std::uint32_t n = size_;
        for (std::uint32_t i = 0; i < n; ++i) {
            if (at(i).resource != released()) at(kept++) = at(i);
        }
        if (kept < kInline) {
            more_.clear();
        } else {
            more_.resize(kept - kInline);
        }
        set_size(kept);
        foreign_releases_ = false;
    }
    ResourceHold& at(std::uint32_t i) noexcept {
        return i < kInline ? inline_[i] : more_[i - kInline];
    }

    std::uint32_t size_ = 0;
    bool foreign_releases_ = false;  // under `lock`: tombstones to compact
    ResourceHold inline_[kInline]{};
    std::vector<ResourceHold> more_;
};

// Emulator-only thread state, behind KTHREAD::Extra so that KTHREAD keeps a
// standard layout.
struct ThreadExtra {
    // Parking word of a blocked wait: 0 while waiting, 1 once the dispatcher
    // has unwaited the thread. Stored with release by the waker (which filled in
    // WaitStatus first) and loaded with acquire by the waiter.
    std::atomic<std::uint32_t> wake{0};
    // Object references: the running thread holds one, each handle one, each
    // ObReferenceObject one. The KTHREAD is freed when the last goes.
    std::atomic<int> references{1};
    std::deque<UserApc> user_apcs;  // guarded by the dispatcher lock
    bool waiting = false;           // guarded by the dispatcher lock
    // The next thread on the list of wakes its waker publishes after
    // unlocking (owned by that waker between unwait and publication).
    nt::PKTHREAD next_pending_wake = nullptr;
    // Who unwaited this thread last: the CPU it ran on and its priority,
    // written by the waker under the dispatcher lock and published by the
    // wake (kernel/src/dispatcher.cpp, yield_to_waker).
    int waker_cpu = -1;
    nt::SCHAR waker_priority = 0;
    // The dispatcher objects a WaitNext hold keeps marked busy until it ends
    // (DISPATCHER_HEADER*, kernel/src/dispatcher.cpp, Section::park_claims):
    // under the dispatcher lock, which the hold owns.
    static constexpr int kMaxHoldClaims = 64;
    int hold_claims = 0;
    void* hold_claimed[kMaxHoldClaims];
    // KernelApcDisable at thread start: system threads start inside a critical
    // region [ddi:pscreatesystemthread], so they must leave with -1, not 0.
    nt::SHORT base_kernel_apc_disable = 0;
    std::uint64_t id = 0;
    // The resources this thread owns shared, most recent last (see
    // ResourceHolds for who may change what): the shared fast path keeps its
    // per-thread accounting without an interlocked operation. The kernel keeps
    // the same facts in each resource's owner table, under its spin lock
    // [ros-resource]; at thread exit the holds left move there
    // (kernel/src/resource.cpp, resource_thread_exit).
    ResourceHolds resource_holds;
    // The FAST_MUTEX / KGUARDED_MUTEX this thread is acquiring on its
    // contended path (0 otherwise), with the number of exiting threads
    // examining it in the low 3 bits: written on the slow path only, through
    // the mutexes' Count platform (kernel/src/fast_mutex.cpp, "A mutex held
    // by a thread that exits").
    std::uintptr_t gate_lock_wanted = 0;
};
}  // namespace detail

namespace detail {
// The calling thread's KTHREAD, or nullptr before its first call into the
// emulator. Inline so that a lock's fast path reads it with one TLS load.
inline thread_local nt::PKTHREAD tls_current_thread = nullptr;
nt::PKTHREAD adopt_current_thread();
}  // namespace detail

// The calling thread's KTHREAD, created on first use.
inline nt::PKTHREAD current_thread() {
    nt::PKTHREAD t = detail::tls_current_thread;
    if (t == nullptr) [[unlikely]]
        t = detail::adopt_current_thread();
    return t;
}
// A new, unstarted thread object with one reference (for system threads).
nt::PKTHREAD create_thread_object(bool system_thread);
// Makes `thread` the calling OS thread's KTHREAD (system-thread start-up).
void attach_current_thread(nt::PKTHREAD thread);
// Runs the thread-exit checks and signals the thread object
// (dispatcher::rundown_thread, called directly), then drops the running
// thread's reference and detaches it from the OS thread.
void exit_current_thread();
void reference_thread(nt::PKTHREAD thread) noexcept;
void dereference_thread(nt::PKTHREAD thread) noexcept;
// The live KTHREAD whose address is `id`, referenced (the caller
// dereferences it), or nullptr if no live thread has that address: an
// ERESOURCE_THREAD from a caller is checked here before it is dereferenced
// (ExReleaseResourceForThreadLite).
nt::PKTHREAD reference_thread_by_id(nt::ULONG_PTR id) noexcept;
namespace detail {
// Moves the shared resource holds a thread still has at exit into each
// resource's OwnerTable (kernel/src/resource.cpp).
void resource_thread_exit(nt::PKTHREAD t);
// A thread that exits holding FAST_MUTEXes / KGUARDED_MUTEXes (once the
// bug-check handler returned, kernel/src/fast_mutex.cpp): recorded as such,
// and its KTHREAD never freed, so that an Owner naming it stays its name.
void retire_gate_lock_holder(nt::PKTHREAD t);
bool exited_holding_gate_locks(nt::PKTHREAD t) noexcept;
// Every live thread but `except`, each referenced (the caller dereferences).
std::vector<nt::PKTHREAD> reference_live_threads(nt::PKTHREAD except);
// The schedule explorer's: `t` belongs to a model thread whose run ended
// before it did (its fiber is never resumed). It leaves the live threads, so
// no later thread's exit visits the mutex it was waiting for (freed with that
// run's state) and no lookup by id finds it; its wanted mutex is forgotten.
// The KTHREAD itself is not freed: a handle or a waiter of that run may
// still name it.
void abandon_thread(nt::PKTHREAD t) noexcept;
}  // namespace detail

// A KMUTEX-semantics lock that is not a dispatcher mutant (the generic
// RawKMutex, over Futex or Spin) derives from this link. Its owner links it
// into KTHREAD::OwnedKMutexListHead on the first acquisition and unlinks it on
// the last release; only the owner thread touches its own list, so no lock is
// needed. Thread rundown reports the first one still linked, as the kernel
// reports the first KMUTEX on the thread's mutant list [ros-thrd], and
// abandons each one through `abandon` (on the exiting owner's thread), so
// that when the bug-check handler returns no waiter is stranded and no stale
// owner is left to match a later KTHREAD at the same address.
struct OwnedKMutexLink {
    nt::LIST_ENTRY entry;
    void (*abandon)(OwnedKMutexLink* self, nt::PKTHREAD owner) noexcept;
};
inline void link_owned_kmutex(nt::PKTHREAD t, OwnedKMutexLink* m) noexcept {
    nt::InsertTailList(&t->OwnedKMutexListHead, &m->entry);
}
inline void unlink_owned_kmutex(OwnedKMutexLink* m) noexcept {
    nt::RemoveEntryList(&m->entry);
}

// Work done by the dispatcher layer before a raise or bug check unwinds a
// thread that holds the dispatcher lock for its next wait (Wait = TRUE): the
// lock is given back and the IRQL restored, or every other thread would
// deadlock. raise_status() and bug_check() call before_unwind() first.
void before_unwind() noexcept;

// Bug checks IRQL_NOT_LESS_OR_EQUAL (parameters: object, IRQL, 0, 0) when the
// caller's IRQL is above `max` (kernel/rules.hpp, check_irql_at_most). NT
// routines whose ceiling is no rule of their own call this.
void require_irql_at_most(nt::KIRQL max, const void* object = nullptr);
// The same for a routine whose documented ceiling is below the IRQL Windows
// accepts (rules.hpp check_irql_documented: the free flavour accepts up to
// `windows`).
void require_irql_documented(nt::KIRQL documented, nt::KIRQL windows, const void* object = nullptr);

// KeEnterGuardedRegion / KeLeaveGuardedRegion without their IRQL check, for
// the guarded mutex routines, whose IRQL rule is their own (rules.hpp,
// check_guarded_mutex_irql). Leaving a region never entered bug checks
// APC_INDEX_MISMATCH as KeLeaveGuardedRegion does (in the checked flavour:
// rules.hpp check_region_leave).
namespace detail {
[[gnu::cold]] void guarded_region_mismatch(nt::PKTHREAD t);
}
inline void enter_guarded_region(nt::PKTHREAD t) noexcept {
    --t->SpecialApcDisable;
}
inline void leave_guarded_region(nt::PKTHREAD t) {
    if (t->SpecialApcDisable >= 0) [[unlikely]]
        detail::guarded_region_mismatch(t);
    ++t->SpecialApcDisable;
}

// KeEnterCriticalRegion / KeLeaveCriticalRegion inline, for a caller that has
// checked the IRQL already (the idiomatic CriticalRegion: an out-of-line call
// pair cost a Resource<T> shared pair 61 instructions on top of its 57, more
// than the lock). Leaving a region never entered reports as
// KeLeaveCriticalRegion does (rules.hpp check_region_leave).
namespace detail {
[[gnu::cold]] void critical_region_mismatch(nt::PKTHREAD t);
}
inline void enter_critical_region(nt::PKTHREAD t) noexcept {
    --t->KernelApcDisable;
}
inline void leave_critical_region(nt::PKTHREAD t) {
    if (t->KernelApcDisable >= 0) [[unlikely]]
        detail::critical_region_mismatch(t);
    ++t->KernelApcDisable;
}

// Internal IRQL change without the ordering checks (used by routines that
// raise and restore on the caller's behalf, such as ExAcquireFastMutex).
inline void set_irql(nt::PKTHREAD t, nt::KIRQL irql) noexcept {
    t->Irql = irql;
}

}  // namespace kmlab::kernel

namespace kmlab::nt {

PKTHREAD KeGetCurrentThread();
PETHREAD PsGetCurrentThread();
BOOLEAN PsIsSystemThread(PETHREAD Thread);

KIRQL KeGetCurrentIrql();
// Raising to a lower IRQL bug checks IRQL_NOT_GREATER_OR_EQUAL (0x9) and
// lowering to a higher one IRQL_NOT_LESS_OR_EQUAL (0xA), parameters
// (current, new, 0, 9) as the checked HAL reports them [ros-apic]. Free builds
// do not check [kmt-KeIrql]: in kmlab's free flavour (kmlab::set_flavor) both
// succeed and set the IRQL asked for.
KIRQL KfRaiseIrql(KIRQL NewIrql);
void KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql);
void KfLowerIrql(KIRQL NewIrql);
void KeLowerIrql(KIRQL NewIrql);
KIRQL KeRaiseIrqlToDpcLevel();
KIRQL KeRaiseIrqlToSynchLevel();

// Regions nest; APCs come back when the outermost is left. Leaving a region
// that was never entered bug checks APC_INDEX_MISMATCH (0x1) with parameter 3
// the CombinedApcDisable the leave would have produced [bc:0x1], in the
// checked flavour; in the free one the count goes positive and thread exit
// reports it (0x20). Documented for IRQL <= APC_LEVEL: the checked flavour
// checks it, the free one does not (rules.hpp, thread.cpp).
void KeEnterCriticalRegion();
void KeLeaveCriticalRegion();
void KeEnterGuardedRegion();
void KeLeaveGuardedRegion();
BOOLEAN KeAreApcsDisabled();     // inside a critical or guarded region [ros-apc]
BOOLEAN KeAreAllApcsDisabled();  // inside a guarded region or at IRQL >= APC_LEVEL

}  // namespace kmlab::nt
