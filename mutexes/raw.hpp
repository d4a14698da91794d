// Raw locks: state only, no data, no IRQL policy (the lock_api split of
// STYLE.md). The typed mutexes check the kernel's rules first and then call
// these. Each raw lock has a generic version over any WaitBackend and a
// Dispatcher version built on the real NT object.
#pragma once

#include <atomic>

#include "backends/backend.hpp"
#include "backends/dispatcher/core.hpp"
#include "backends/dispatcher/dispatcher.hpp"
#include "backends/dispatcher/gate.hpp"
#include "backends/dispatcher_backend.hpp"
#include "backends/futex_backend.hpp"
#include "backends/lock_bit.hpp"
#include "backends/spin.hpp"

namespace kmlab::detail {

using backends::deadline_t;
using nt::LONG;
using nt::PKTHREAD;

enum class Acquire { acquired, timeout, limit };

// ---- KMUTEX semantics: recursive, owner-tracked, APCs disabled while owned ----
//
// Generic version. `word_` is a three-state futex mutex (Drepper, "Futexes
// are tricky", mutex2): 0 free, 1 held, 2 held and maybe waited on. It takes
// timeouts easily (a waiter that gives up just leaves; a stale 2 costs one
// spurious wake). `signal_state_` mirrors KMUTEX.SignalState: 1 free, 1-n
// owned n times; only the owner writes it.
template <backends::WaitBackend Backend>
class RawKMutex {
  public:
    PKTHREAD owner() const noexcept { return owner_.load(std::memory_order_relaxed); }
    LONG signal_state() const noexcept {
        return std::atomic_ref<const LONG>(signal_state_).load(std::memory_order_relaxed);
    }

    Acquire acquire(PKTHREAD t, const deadline_t* deadline, bool poll) {
        if (owner() == t) {
            if (signal_state_ == nt::MINLONG) return Acquire::limit;
            set_state(signal_state_ - 1);
            return Acquire::acquired;
        }
        std::uint32_t expected = 0;
        if (!word_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
            if (poll || !acquire_contended(deadline)) return Acquire::timeout;
        }
        // Relaxed is enough for owner_: a thread only compares it with itself.
        owner_.store(t, std::memory_order_relaxed);
        set_state(0);
        t->KernelApcDisable = static_cast<nt::SHORT>(t->KernelApcDisable - 1);
        ++t->OwnedKMutexCount;
        t->LastOwnedKMutex = this;
        return Acquire::acquired;
    }

    void release(PKTHREAD t) noexcept {
        set_state(signal_state_ + 1);
        if (signal_state_ != 1) return;
        owner_.store(nullptr, std::memory_order_relaxed);
        t->KernelApcDisable = static_cast<nt::SHORT>(t->KernelApcDisable + 1);
        --t->OwnedKMutexCount;
        if constexpr (backends::never_sleeps<Backend>) {
            word_.store(0, std::memory_order_release);  // no sleeper to wake
        } else if (word_.exchange(0, std::memory_order_release) == 2) {
            Backend::wake_one(word_);
        }
    }

    // Test access: overwrite the recursion state (the kmtest MINLONG trick).
    void debug_set_signal_state(LONG s) noexcept { set_state(s); }
    bool debug_is_free() const noexcept {
        return word_.load() == 0 && owner() == nullptr && signal_state() == 1;
    }

  private:
    void set_state(LONG s) noexcept {
        std::atomic_ref<LONG>(signal_state_).store(s, std::memory_order_relaxed);
    }

    [[gnu::noinline]] bool acquire_contended(const deadline_t* deadline) {
        while (word_.exchange(2, std::memory_order_acquire) != 0) {
            if (!Backend::wait(word_, 2, deadline)) return false;
        }
        return true;
    }

    std::atomic<std::uint32_t> word_{0};
    std::atomic<PKTHREAD> owner_{nullptr};
    LONG signal_state_ = 1;
};

// Dispatcher version: a real KMUTEX, acquired with KeWaitForSingleObject.
template <>
class RawKMutex<backends::Dispatcher> {
  public:
    RawKMutex() { nt::KeInitializeMutex(&mutex_, 0); }
    PKTHREAD owner() const noexcept { return dispatcher::load_owner(&mutex_); }
    LONG signal_state() const noexcept { return dispatcher::load_state(&mutex_.Header); }

    Acquire acquire(PKTHREAD t, const deadline_t* deadline, bool poll) {
        if (owner() == t && signal_state() == nt::MINLONG) return Acquire::limit;
        nt::LARGE_INTEGER timeout{};
        nt::PLARGE_INTEGER pt = nullptr;
        if (poll || deadline != nullptr) {
            pt = &timeout;
            if (!poll) {
                const auto left = *deadline - std::chrono::steady_clock::now();
                timeout.QuadPart = -std::max<std::int64_t>(
                    0, std::chrono::ceil<kernel::nt_duration>(left).count());
            }
        }
        const nt::NTSTATUS s =
            nt::KeWaitForSingleObject(&mutex_, nt::Executive, nt::KernelMode, nt::FALSE, pt);
        return s == nt::STATUS_TIMEOUT ? Acquire::timeout : Acquire::acquired;
    }
    void release(PKTHREAD) { nt::KeReleaseMutex(&mutex_, nt::FALSE); }

    nt::PKMUTEX native_handle() noexcept { return &mutex_; }
    void debug_set_signal_state(LONG s) noexcept { dispatcher::store_state(&mutex_.Header, s); }
    bool debug_is_free() const noexcept {
        return signal_state() == 1 && owner() == nullptr &&
               nt::IsListEmpty(&mutex_.Header.WaitListHead);
    }

  private:
    nt::KMUTEX mutex_;
};

// ---- FAST_MUTEX / KGUARDED_MUTEX ----
//
// One interface, three mechanisms; Count reads 1 when free and 0 when held
// without waiters on all of them, as the kernel's does:
//  * Dispatcher: the kernel's own lock-bit algorithm (backends/lock_bit.hpp)
//    with a SynchronizationEvent as the gate, exactly a FAST_MUTEX.
//  * a backend that sleeps (Futex): an asymmetric-fence lock, below.
//  * a backend whose waiters never sleep (Spin): test-and-test-and-set.
// A caller whose try_lock() fails decides (owner check) before calling
// lock_contended(), so the uncontended path makes no ownership test.

// What every RawLockBit has: Count (1 free, 0 held; the Dispatcher version
// also counts waiters in it), the owner (written by the owner only, compared
// by a thread with itself, so relaxed is enough) and the slow-path count.
class LockBitState {
  public:
    PKTHREAD owner() const noexcept { return owner_.load(std::memory_order_relaxed); }
    void set_owner(PKTHREAD t) noexcept { owner_.store(t, std::memory_order_relaxed); }
    LONG count() const noexcept {
        return std::atomic_ref<const LONG>(count_).load(std::memory_order_relaxed);
    }
    nt::ULONG contention() const noexcept {
        return std::atomic_ref<const nt::ULONG>(contention_).load(std::memory_order_relaxed);
    }

  protected:
    std::atomic_ref<LONG> count_ref() noexcept { return std::atomic_ref<LONG>(count_); }
    void count_contention() noexcept {
        std::atomic_ref<nt::ULONG>(contention_).fetch_add(1, std::memory_order_relaxed);
    }

    LONG count_ = nt::FM_LOCK_BIT;
    nt::ULONG contention_ = 0;
    std::atomic<PKTHREAD> owner_{nullptr};
};

// Over a sleeping backend. Count holds only the lock bit; blocked waiters are
// counted in waiters_ and sleep on gate_, which holds wake tokens (a
// semaphore: a token persists until exactly one waiter consumes it) and the
// woken flag in one word, so that the two always change together:
//
//   gate_ = tokens * kToken | woken      (woken = kWoken, bit 0)
//
//   unlock:  Count = 1 (release); light fence; if waiters_ != 0: wake
//   wake:    unless woken is set: set woken and add a token in one CAS,
//            futex-wake one sleeper
//   waiter:  spin briefly; ++waiters_; heavy fence;
//            until try_lock(): consume a token (sleeping while there is none),
//            clear woken, retry
//
// Why no wake is lost:
//  * Registration. The heavy fence (membarrier) pairs with the unlocker's
//    light fence: either the unlocker sees waiters_ != 0, or the waiter's
//    next try sees Count = 1. That lets the uncontended release be a plain
//    store: one locked instruction per lock+unlock pair instead of two.
//  * Tokens persist, so a wake sent before its waiter sleeps is not missed.
//  * An unlocker that skips its wake because woken is set read it with an
//    RMW that precedes the woken waiter's clearing RMW, and stored Count
//    before that RMW;
//    the waiter's retry, after clearing, therefore sees the lock free, or the
//    lock taken by a thread whose release will wake again.
// The woken flag is the kernel's FM_LOCK_WAITER_WOKEN: without it every
// release under sustained contention paid a futex wake for a waiter that
// mostly lost to a running thread and slept again (measured: ~100 ns more CPU
// per acquisition than std::mutex at 16 threads on 2 cores, 2026-11-20,
// BM_Contended cs_ns:50).
// Without membarrier, the heavy fence is only a full fence on the waiter's
// side; waiters then sleep at most kFallbackSleep per round and re-check, so
// a missed wake costs latency, never a hang.
template <backends::WaitBackend Backend>
class RawLockBit : public LockBitState {
  public:
    static constexpr auto kFallbackSleep = std::chrono::milliseconds(1);
    // Spin before parking: about one futex sleep/wake round trip on the
    // 2-core VM of BENCHMARKING.md, so a waiter never spins much longer than
    // parking would have cost it. 1 us measured best of 0.5, 1 and 4 us at 2
    // threads (cs_ns:50) and made no difference at 16 (2026-11-20).
    static constexpr auto kSpinBeforePark = std::chrono::microseconds(1);

    bool try_lock() noexcept { return backends::lock_bit::try_acquire(count_); }
    void unlock() noexcept {
        count_ref().store(nt::FM_LOCK_BIT, std::memory_order_release);
        backends::sys::light_fence();
        if (waiters_.load(std::memory_order_relaxed) != 0) [[unlikely]]
            wake();
    }
    [[gnu::noinline]] void lock_contended() {
        count_contention();
        // A holder that is running releases within a critical section's time;
        // a lock taken while spinning skips registration and its heavy fence.
        const auto spin_until = std::chrono::steady_clock::now() + kSpinBeforePark;
        if (backends::Spin::spin_until([&] { return lock_seen_free_and_taken(); }, &spin_until))
            return;
        waiters_.fetch_add(1, std::memory_order_relaxed);
        const bool exact = backends::sys::heavy_fence();
        while (!try_lock()) {
            if (consume_token(exact)) gate_.fetch_and(~kWoken, std::memory_order_seq_cst);
        }
        if (waiters_.fetch_sub(1, std::memory_order_seq_cst) == 1) drain_stale_token();
    }

    bool debug_is_free() const noexcept {
        return count() == nt::FM_LOCK_BIT && owner() == nullptr && waiters_.load() == 0 &&
               gate_.load() == 0;
    }

  private:
    static constexpr std::uint32_t kWoken = 1;
    static constexpr std::uint32_t kToken = 2;

    // Test, then test-and-set: spinners read the line instead of bouncing it.
    bool lock_seen_free_and_taken() noexcept {
        return (count_ref().load(std::memory_order_relaxed) & nt::FM_LOCK_BIT) != 0 && try_lock();
    }
    [[gnu::noinline]] void wake() noexcept {
        // Read gate_ with an RMW, not a load: a plain load may be satisfied
        // before our Count store leaves the store buffer, and seeing a stale
        // woken flag there while its waiter clears it and retries (still
        // seeing Count = 0) lost a wake-up in the stress tests.
        std::uint32_t g = gate_.fetch_add(0, std::memory_order_seq_cst);
        do {
            if (g & kWoken) return;  // a woken waiter is already on its way
        } while (!gate_.compare_exchange_weak(g, (g | kWoken) + kToken, std::memory_order_seq_cst,
                                              std::memory_order_relaxed));
        // The last waiter may have left between our check of waiters_ and the
        // token: then nobody would consume it. Both sides make a seq_cst RMW
        // and then load the other's word, so at least one of us sees the
        // other and takes the token back.
        if (waiters_.load(std::memory_order_seq_cst) == 0) {
            drain_stale_token();
            return;
        }
        Backend::wake_one(gate_);
    }
    // Takes one token, sleeping while there is none; false if the fallback's
    // bounded sleep ended without one.
    bool consume_token(bool exact) noexcept {
        const auto deadline = std::chrono::steady_clock::now() + kFallbackSleep;
        for (;;) {
            std::uint32_t g = gate_.fetch_add(0, std::memory_order_seq_cst);
            while (g >= kToken) {
                if (gate_.compare_exchange_weak(g, g - kToken, std::memory_order_acquire,
                                                std::memory_order_relaxed))
                    return true;
            }
            if (!Backend::wait(gate_, g, exact ? nullptr : &deadline)) return false;
        }
    }
    // A waiter that got the lock by retrying while a wake was in flight for it
    // leaves that token (and the woken flag) behind. The last waiter out takes
    // both back in one CAS, unless a waiter already consumed the token (it
    // then clears the flag itself), so a quiescent lock is back in its
    // initial state.
    void drain_stale_token() noexcept {
        std::uint32_t g = gate_.load(std::memory_order_seq_cst);
        while ((g & kWoken) != 0 && g >= kToken) {
            if (gate_.compare_exchange_weak(g, (g - kToken) & ~kWoken, std::memory_order_acq_rel,
                                            std::memory_order_relaxed))
                return;
        }
    }

    std::atomic<std::uint32_t> waiters_{0};
    std::atomic<std::uint32_t> gate_{0};
};

// Over a backend whose waiters never sleep (Spin) Count is 1 or 0, taken with
// an exchange and released with a plain release store: a test-and-test-and-set
// lock with the cost of tbb::spin_mutex. Waiters spin on a load (no cache-line
// ping-pong) with the backend's backoff-then-yield policy.
template <backends::WaitBackend Backend>
requires backends::never_sleeps<Backend>
class RawLockBit<Backend> : public LockBitState {
  public:
    bool try_lock() noexcept {
        return count_ref().exchange(0, std::memory_order_acquire) == nt::FM_LOCK_BIT;
    }
    [[gnu::noinline]] void lock_contended() {
        count_contention();
        do {
            Backend::spin_until([&] { return count_ref().load(std::memory_order_relaxed) != 0; },
                                nullptr);
        } while (!try_lock());
    }
    void unlock() noexcept { count_ref().store(nt::FM_LOCK_BIT, std::memory_order_release); }

    bool debug_is_free() const noexcept { return count() == nt::FM_LOCK_BIT && owner() == nullptr; }

  private:
};

// Dispatcher: the kernel's lock-bit algorithm, waiters counted in Count and
// blocked on a SynchronizationEvent, as in a FAST_MUTEX.
template <>
class RawLockBit<backends::Dispatcher> : public LockBitState {
  public:
    RawLockBit() { nt::KeInitializeEvent(&event_, nt::SynchronizationEvent, nt::FALSE); }
    RawLockBit(const RawLockBit&) = delete;

    bool try_lock() noexcept { return backends::lock_bit::try_acquire(count_); }
    void lock_contended() { backends::lock_bit::acquire_slow(count_, contention_, gate_); }
    void unlock() { backends::lock_bit::release(count_, gate_); }

    bool debug_is_free() const noexcept {
        return count() == nt::FM_LOCK_BIT && owner() == nullptr &&
               dispatcher::load_state(&event_.Header) == 0 &&
               nt::IsListEmpty(&event_.Header.WaitListHead);
    }

  private:
    nt::KEVENT event_;
    dispatcher::ObjectGate gate_{&event_};
};

}  // namespace kmlab::detail
