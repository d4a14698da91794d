// The kernel's rules for KSPIN_LOCK and in-stack queued spin locks, in the
// pattern of rules.hpp: pure checks returning what the kernel does when a
// rule is broken. The NT routines (kernel/src/spin_lock.cpp) enforce them;
// the idiomatic SpinLock / QueuedSpinLock (mutexes/spin_lock.hpp) return
// them as Errors.
//
// Each rule says which part of Windows enforces it:
//  * "Driver Verifier": a DRIVER_VERIFIER_DETECTED_VIOLATION (0xC4) subcode
//    [bc:0xC4], reported by Verifier's thunks before the routine runs;
//  * "checked build": an ASSERT or a DBG-only bug check of a checked kernel
//    or HAL;
//  * "kmlab": the emulator's own, where Windows would hang or corrupt memory.
// The "checked build" rules are `.checked_build_only()` (the `free` flavour
// lets the call go on as a free build does); the "Driver Verifier" ones are
// `.verifier_only()`: only the `verifier` flavour reports them, as only a
// machine running Driver Verifier does (kernel/verifier.hpp).
#pragma once

#include <cstddef>
#include <optional>

#include <kmlab/kernel/rules.hpp>
#include <kmlab/kernel/spin_lock.hpp>

namespace kmlab::kernel {

namespace detail {
// Driver Verifier's reports on a spin lock: (subcode, IRQL, lock, p4) [bc:0xC4].
inline Violation spin_lock_verifier(nt::ULONG_PTR subcode, nt::KIRQL irql, const void* lock,
                                    nt::ULONG_PTR p4 = 0) noexcept {
    return Violation::bug_check(bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, lock, subcode, irql,
                                parameter(lock), p4)
        .verifier_only();
}
}  // namespace detail

// ---- IRQL ----

// KeAcquireSpinLock (KeAcquireSpinLockRaiseToDpc on amd64, which the WDK's
// macro calls) above DISPATCH_LEVEL: 0xC4/0x42
// (0x42, IRQL, lock, 0) [bc:0xC4]. Driver Verifier. A free build raises
// "to" DISPATCH_LEVEL from above it, which lowers the IRQL, and restores it
// at the release: kmtest's free-build run acquires at HIGH_LEVEL and reads
// DISPATCH_LEVEL while it holds the lock [kmt-KeSpinLock].
inline std::optional<Violation> check_spin_lock_acquire_irql(nt::KIRQL irql,
                                                             const void* lock) noexcept {
    if (irql > nt::DISPATCH_LEVEL) [[unlikely]]
        return detail::spin_lock_verifier(bugcheck::VERIFIER_SPIN_LOCK_ACQUIRE_IRQL, irql, lock);
    return std::nullopt;
}

// KeReleaseSpinLock at an IRQL other than DISPATCH_LEVEL: 0xC4/0x32 (0x32,
// IRQL, lock, 0) [bc:0xC4] ("may be due to a double-release"). Driver
// Verifier. kmtest's free-build run acquires with
// KeAcquireSpinLockAtDpcLevel at PASSIVE_LEVEL and releases with
// KeReleaseSpinLock there [kmt-KeSpinLock].
inline std::optional<Violation> check_spin_lock_release_irql(nt::KIRQL irql,
                                                             const void* lock) noexcept {
    if (irql != nt::DISPATCH_LEVEL) [[unlikely]]
        return detail::spin_lock_verifier(bugcheck::VERIFIER_SPIN_LOCK_RELEASE_IRQL, irql, lock);
    return std::nullopt;
}

// KeAcquireSpinLockAtDpcLevel below DISPATCH_LEVEL: 0xC4/0x40 (0x40, IRQL,
// lock, 0) [bc:0xC4]. Driver Verifier; the free-build run of kmtest acquires
// there [kmt-KeSpinLock]. Decision, kmlab: KeTryToAcquireSpinLockAtDpcLevel
// and KeAcquireInStackQueuedSpinLockAtDpcLevel, documented for the same
// IRQL [ddi:ketrytoacquirespinlockatdpclevel]
// [ddi:keacquireinstackqueuedspinlockatdpclevel] and given no subcode of
// their own by the page, report the same one.
inline std::optional<Violation> check_spin_lock_at_dpc_acquire_irql(nt::KIRQL irql,
                                                                    const void* lock) noexcept {
    if (irql < nt::DISPATCH_LEVEL) [[unlikely]]
        return detail::spin_lock_verifier(bugcheck::VERIFIER_SPIN_LOCK_AT_DPC_ACQUIRE_IRQL, irql,
                                          lock);
    return std::nullopt;
}

// KeReleaseSpinLockFromDpcLevel below DISPATCH_LEVEL: 0xC4/0x41 (0x41, IRQL,
// lock, 0) [bc:0xC4]. Driver Verifier; as above, also for
// KeReleaseInStackQueuedSpinLockFromDpcLevel (decision, kmlab).
inline std::optional<Violation> check_spin_lock_from_dpc_release_irql(nt::KIRQL irql,
                                                                      const void* lock) noexcept {
    if (irql < nt::DISPATCH_LEVEL) [[unlikely]]
        return detail::spin_lock_verifier(bugcheck::VERIFIER_SPIN_LOCK_FROM_DPC_RELEASE_IRQL, irql,
                                          lock);
    return std::nullopt;
}

// KeAcquireInStackQueuedSpinLock above DISPATCH_LEVEL: the routine is
// KfRaiseIrql(DISPATCH_LEVEL) then the queue [wrk-queuelock], and a checked
// HAL's KfRaiseIrql to a lower IRQL bug checks IRQL_NOT_GREATER_OR_EQUAL
// (current, DISPATCH_LEVEL, 0, 9) [ros-apic]: rules.hpp check_raise_irql.
// Checked build (the page has no Verifier subcode for it).
inline std::optional<Violation> check_queued_acquire_irql(nt::KIRQL irql) noexcept {
    return check_raise_irql(irql, nt::DISPATCH_LEVEL);
}

// KeReleaseInStackQueuedSpinLock at an IRQL other than DISPATCH_LEVEL:
// 0xC4/0x35 (0x35, IRQL, lock, OldIrql). Decision, kmlab (a guess): the
// page has no row that names the in-stack queued release; its 0x35 row says
// only "The kernel released a spin lock..." at a wrong IRQL and carries an
// old IRQL, as the handle does, and 0x32 names KeReleaseSpinLock [bc:0xC4].
// What Verifier reports here is unverified. Driver Verifier.
inline std::optional<Violation> check_queued_release_irql(nt::KIRQL irql, const void* lock,
                                                          nt::KIRQL old_irql) noexcept {
    if (irql != nt::DISPATCH_LEVEL) [[unlikely]]
        return detail::spin_lock_verifier(bugcheck::VERIFIER_KERNEL_SPIN_LOCK_RELEASE_IRQL, irql,
                                          lock, old_irql);
    return std::nullopt;
}

// The ...ForDpc routines: with no threaded DPC running (DpcThreadActive
// FALSE) they are the AtDpcLevel / FromDpcLevel routines after
// ASSERT(KeGetCurrentIrql() == DISPATCH_LEVEL), and KeAcquireSpinLockForDpc
// returns DISPATCH_LEVEL [wrk-ki]. The emulator runs no threaded DPCs, so
// that is all they do here. A failed ASSERT without a debugger is
// KMODE_EXCEPTION_NOT_HANDLED (STATUS_BREAKPOINT) [bc:0x1E]. Checked build;
// kmtest's free-build run calls the in-stack pair at PASSIVE_LEVEL and the
// IRQL stays there [kmt-KeSpinLock].
inline std::optional<Violation> check_for_dpc_irql(nt::KIRQL irql, const void* lock) noexcept {
    if (irql != nt::DISPATCH_LEVEL) [[unlikely]]
        return Violation::bug_check(bugcheck::KMODE_EXCEPTION_NOT_HANDLED, lock,
                                    static_cast<nt::ULONG>(nt::STATUS_BREAKPOINT))
            .checked_build_only();
    return std::nullopt;
}

// ---- Ownership ----
//
// A DBG kernel keeps the owner's KTHREAD | 1 in the word and bug checks
// SPIN_LOCK_ALREADY_OWNED (0xF) when the owner acquires again and
// SPIN_LOCK_NOT_OWNED (0x10) when another thread releases, both with
// parameters (lock, 0, 0, 0) [ros-spinlock-h]. Decision, kmlab: as for the
// FAST_MUTEX's 0xBF / 0x11 (rules.hpp), both stay in every flavour, a
// deliberate departure from a free build, which spins on its own lock
// forever at DISPATCH_LEVEL (the processor hangs) or silently frees another
// thread's lock; here they cost a compare with the word the fast path has
// read anyway. The one exception is the try below.

// An ordinary acquire by the owner (the word is the caller's tag).
inline std::optional<Violation> check_spin_lock_not_recursive(nt::KSPIN_LOCK seen,
                                                              nt::KSPIN_LOCK tag,
                                                              const void* lock) noexcept {
    if (seen == tag) [[unlikely]]
        return Violation::bug_check(bugcheck::SPIN_LOCK_ALREADY_OWNED, lock,
                                    detail::parameter(lock));
    return std::nullopt;
}

// KeTryToAcquireSpinLockAtDpcLevel by the owner: 0xF on a checked build; a
// free MP build returns FALSE, as to any holder [kmt-KeSpinLock]. Checked
// build.
inline std::optional<Violation> check_spin_lock_try_not_recursive(nt::KSPIN_LOCK seen,
                                                                  nt::KSPIN_LOCK tag,
                                                                  const void* lock) noexcept {
    if (seen == tag) [[unlikely]]
        return Violation::bug_check(bugcheck::SPIN_LOCK_ALREADY_OWNED, lock,
                                    detail::parameter(lock))
            .checked_build_only();
    return std::nullopt;
}

// An ordinary release by a thread whose tag is not in the word (another
// thread holds it, it is free, or it is held through the queue).
inline std::optional<Violation> check_spin_lock_owner(nt::KSPIN_LOCK word, nt::KSPIN_LOCK tag,
                                                      const void* lock) noexcept {
    if (word != tag) [[unlikely]]
        return Violation::bug_check(bugcheck::SPIN_LOCK_NOT_OWNED, lock, detail::parameter(lock));
    return std::nullopt;
}

// A queued acquire of a lock the caller already holds through the queue
// (it would queue behind itself and spin forever): 0xF (lock, 0, 0, 0).
// kmlab, from the ordinary lock's DBG check; every flavour.
inline std::optional<Violation> check_queued_not_recursive(bool caller_holds,
                                                           const void* lock) noexcept {
    if (caller_holds) [[unlikely]]
        return Violation::bug_check(bugcheck::SPIN_LOCK_ALREADY_OWNED, lock,
                                    detail::parameter(lock));
    return std::nullopt;
}

// The two kinds mixed on one lock, which the documentation forbids ("Drivers
// must not combine calls to KeAcquireSpinLock and
// KeAcquireInStackQueuedSpinLock on the same spin lock"
// [ddi:keacquireinstackqueuedspinlock]): 0xF (lock, word found, 0, 0).
// kmlab, every flavour; the word is left unchanged (spin_lock_algorithm.hpp).
//
// A queued acquire that finds an ordinary holder's tag (bit 0 set): Windows
// would take the tag for a queue entry and write through it.
inline std::optional<Violation> check_queued_not_mixed(nt::KSPIN_LOCK prev,
                                                       const void* lock) noexcept {
    if ((prev & 1) != 0) [[unlikely]]
        return Violation::bug_check(bugcheck::SPIN_LOCK_ALREADY_OWNED, lock,
                                    detail::parameter(lock), prev);
    return std::nullopt;
}

// An ordinary acquire whose first attempt finds a queue tail (nonzero, bit 0
// clear). Decision, kmlab: report it at once rather than wait for the queue
// to drain, as the other direction does (Windows' `lock bts` would set bit 0
// of the tail pointer and corrupt the queue). While it spins after a first
// attempt that found an ordinary holder, a queue that appears is waited for,
// never written over (its compare-exchange takes only a free word).
inline std::optional<Violation> check_spin_lock_not_mixed(nt::KSPIN_LOCK seen,
                                                          const void* lock) noexcept {
    if (seen != 0 && (seen & 1) == 0) [[unlikely]]
        return Violation::bug_check(bugcheck::SPIN_LOCK_ALREADY_OWNED, lock,
                                    detail::parameter(lock), seen);
    return std::nullopt;
}

// A queued release of a handle that does not hold its lock (never acquired,
// released twice, or acquired by another thread): 0x10 (lock, handle, 0, 0).
// kmlab, from the ordinary lock's DBG check (the kernel only ASSERTs the
// successor's WAIT bit [wrk-queuelock]); every flavour.
inline std::optional<Violation> check_queued_owner(bool caller_holds, const void* lock,
                                                   const void* handle) noexcept {
    if (!caller_holds) [[unlikely]]
        return Violation::bug_check(bugcheck::SPIN_LOCK_NOT_OWNED, lock, detail::parameter(lock),
                                    detail::parameter(handle));
    return std::nullopt;
}

namespace detail {
// The in-stack queued locks the calling OS thread holds, for the two queued
// ownership rules above (a KLOCK_QUEUE_HANDLE has no room for an owner).
// Drivers nest a few spin locks at most: kInline entries in place, and past
// them a heap array that grows, so that every hold is listed and contains()
// and remove() are exact at any depth (review finding: holds past 32 were
// only counted and could not be released). The heap array is freed when the
// list shrinks back to kInline (no destructor: a thread_local with one would
// cost every access a TLS wrapper call); a thread that exits holding more
// than kInline queued locks leaks it, and that thread has broken the rules
// anyway. The explorer runs the algorithm only (spin_lock_algorithm.hpp),
// never these rules, so a thread_local is enough.
struct QueuedHolds {
    static constexpr int kInline = 32;
    const nt::KSPIN_LOCK* locks[kInline] = {};
    const nt::KSPIN_LOCK** more = nullptr;  // entries kInline.. count-1
    int more_capacity = 0;
    int count = 0;

    // The common case (kInline holds or fewer) costs what the fixed array did.
    bool contains(const nt::KSPIN_LOCK* lock) const noexcept {
        if (count > kInline) [[unlikely]]
            return contains_slow(lock);
        for (int i = 0; i < count; ++i)
            if (locks[i] == lock) return true;
        return false;
    }
    void add(const nt::KSPIN_LOCK* lock) {
        if (count < kInline) [[likely]] {
            locks[count++] = lock;
            return;
        }
        add_slow(lock);
    }
    // False when this thread holds no such lock (nothing changes then).
    bool remove(const nt::KSPIN_LOCK* lock) noexcept {
        if (count > kInline) [[unlikely]]
            return remove_slow(lock);
        for (int i = count - 1; i >= 0; --i) {
            if (locks[i] == lock) {
                locks[i] = locks[--count];
                return true;
            }
        }
        return false;
    }

  private:
    const nt::KSPIN_LOCK*& at(int i) noexcept { return i < kInline ? locks[i] : more[i - kInline]; }
    [[gnu::noinline, gnu::cold]] bool contains_slow(const nt::KSPIN_LOCK* lock) const noexcept {
        for (int i = 0; i < kInline; ++i)
            if (locks[i] == lock) return true;
        for (int i = kInline; i < count; ++i)
            if (more[i - kInline] == lock) return true;
        return false;
    }
    [[gnu::noinline, gnu::cold]] void add_slow(const nt::KSPIN_LOCK* lock) {
        if (count - kInline == more_capacity) {
            const int capacity = more_capacity == 0 ? kInline : 2 * more_capacity;
            auto** bigger = new const nt::KSPIN_LOCK*[static_cast<std::size_t>(capacity)];
            for (int i = 0; i < more_capacity; ++i) bigger[i] = more[i];
            delete[] more;
            more = bigger;
            more_capacity = capacity;
        }
        more[count++ - kInline] = lock;
    }
    [[gnu::noinline, gnu::cold]] bool remove_slow(const nt::KSPIN_LOCK* lock) noexcept {
        for (int i = count - 1; i >= 0; --i) {
            if (at(i) == lock) {
                at(i) = at(count - 1);
                if (--count == kInline) {
                    delete[] more;
                    more = nullptr;
                    more_capacity = 0;
                }
                return true;
            }
        }
        return false;
    }
};
inline constinit thread_local QueuedHolds tls_queued_holds{};
}  // namespace detail

}  // namespace kmlab::kernel
