// Raw locks: state only, no data, no IRQL policy (the lock_api split of
// STYLE.md). The typed mutexes check the kernel's rules first and then call
// these. Each algorithm is written once; the backend's traits choose it:
//
//   raw lock         parking backend (Futex, Spin)       kernel objects (Dispatcher)
//   RawKMutex        three-state futex mutex, below      a KMUTEX, dispatcher::wait_for_mutex
//   RawLockBit       lock_bit.hpp over a FutexGate, or   lock_bit.hpp over the KEVENT
//                    TTAS if waiters never sleep (Spin)  (the FAST_MUTEX algorithm)
//
// The RawKMutexLock and RawLockBitLock concepts below say what a raw lock
// provides to the typed mutexes, and are checked for every backend.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <type_traits>

#include <kmlab/backends/backend.hpp>
#include <kmlab/backends/dispatcher.hpp>
#include <kmlab/backends/futex.hpp>
#include <kmlab/backends/futex_gate.hpp>
#include <kmlab/backends/spin.hpp>
#include <kmlab/kernel/dispatcher.hpp>
#include <kmlab/kernel/lock_bit.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/platform/platform.hpp>

namespace kmlab::detail {

using nt::LONG;
using nt::PKTHREAD;

// `abandoned`: acquired, and the mutex came abandoned (its owner exited
// holding it), where the kernel's wait returns STATUS_ABANDONED [ros-kex].
enum class Acquire { acquired, timeout, limit, abandoned };

// ---- KMUTEX semantics: recursive, owner-tracked, APCs disabled while owned ----
//
// Generic version. `word_` is a three-state futex mutex (Drepper, "Futexes
// are tricky", mutex2): 0 free, 1 held, 2 held and maybe waited on. It takes
// timeouts easily (a waiter that gives up just leaves; a stale 2 costs one
// spurious wake). `signal_state_` mirrors KMUTEX.SignalState: 1 free, 1-n
// owned n times; only the owner writes it.
template <backends::WaitBackend Backend>
class RawKMutex;

template <backends::ParkingBackend Backend>
class RawKMutex<Backend> : kernel::OwnedKMutexLink {  // the owner's list of KMutexes held
  public:
    RawKMutex() noexcept : kernel::OwnedKMutexLink{{}, &abandon_at_exit} {}
    // Destroyed while owned (a release the guard refused, the handler then
    // returning): take it off its owner's list, which would otherwise link
    // freed memory. What Windows would do with freed pool is undefined; this
    // keeps the emulator's own structures sound. (Destroying a mutex another
    // thread is using is a race in any case.)
    ~RawKMutex() {
        if (owner() != nullptr) kernel::unlink_owned_kmutex(this);
    }
    RawKMutex(const RawKMutex&) = delete;
    RawKMutex& operator=(const RawKMutex&) = delete;
    PKTHREAD owner() const noexcept { return owner_.load(std::memory_order_relaxed); }
    LONG signal_state() const noexcept {
        return std::atomic_ref<const LONG>(signal_state_).load(std::memory_order_relaxed);
    }
    // KMUTANT.Abandoned: set when its owner exited holding it, cleared by the
    // next first acquisition (which reports it).
    bool abandoned() const noexcept { return abandoned_.load(std::memory_order_relaxed); }

    Acquire acquire(PKTHREAD t, Deadline deadline) {
        if (owner() == t) {
            if (signal_state_ == nt::MINLONG) return Acquire::limit;
            set_state(signal_state_ - 1);
            return Acquire::acquired;
        }
        std::uint32_t expected = 0;
        if (!word_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
            if (deadline.is_poll() || !acquire_contended(deadline)) return Acquire::timeout;
        }
        // Relaxed is enough for owner_: a thread only compares it with itself.
        owner_.store(t, std::memory_order_relaxed);
        set_state(0);
        t->KernelApcDisable = static_cast<nt::SHORT>(t->KernelApcDisable - 1);
        kernel::link_owned_kmutex(t, this);
        // The dead owner set it before the release this acquisition read
        // (acquire on word_), so relaxed is enough.
        if (abandoned()) [[unlikely]] {
            abandoned_.store(false, std::memory_order_relaxed);
            return Acquire::abandoned;
        }
        return Acquire::acquired;
    }

    void release(PKTHREAD t) noexcept {
        set_state(signal_state_ + 1);
        if (signal_state_ != 1) return;
        owner_.store(nullptr, std::memory_order_relaxed);
        t->KernelApcDisable = static_cast<nt::SHORT>(t->KernelApcDisable + 1);
        kernel::unlink_owned_kmutex(this);
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
    // Thread rundown, on the exiting owner's thread: release every level of
    // recursion at once, as the dispatcher abandons a mutant (SEMANTICS.md
    // 1.5), so that the next acquirer gets it.
    static void abandon_at_exit(kernel::OwnedKMutexLink* link, PKTHREAD t) noexcept {
        auto* self = static_cast<RawKMutex*>(link);
        self->abandoned_.store(true, std::memory_order_relaxed);  // published by the release
        self->set_state(0);
        self->release(t);
    }

    [[gnu::noinline]] bool acquire_contended(Deadline deadline) {
        while (word_.exchange(2, std::memory_order_acquire) != 0) {
            if (!Backend::wait(word_, 2, deadline)) return false;
        }
        return true;
    }

    backends::wait_word<Backend> word_{0};
    std::atomic<PKTHREAD> owner_{nullptr};
    LONG signal_state_ = 1;
    std::atomic<bool> abandoned_{false};
};

// Over kernel objects: a real KMUTEX, acquired as KeWaitForSingleObject
// acquires it, but with the caller's Deadline as it is (no LARGE_INTEGER).
template <backends::WaitBackend Backend>
requires backends::kernel_objects<Backend>
class RawKMutex<Backend> {
  public:
    RawKMutex() { nt::KeInitializeMutex(&mutex_, 0); }
    // A KMUTEX destroyed while owned (a release the guard refused, the
    // handler then returning; or a guard kept past the mutex) is released
    // as abandoned, as the kernel releases a mutant object deleted while
    // owned: ExpDeleteMutant calls KeReleaseMutant(Mutant, MUTANT_INCREMENT,
    // TRUE, FALSE) [ros-exmutant], which unlinks it from its owner's
    // MutantListHead (else the owner's list would link freed memory, which
    // thread rundown walks and writes) and gives the owner back the APCs it
    // disabled. Decision, kmlab: a KMUTEX in pool that a driver frees while
    // owned has no delete routine on Windows and leaves the list dangling;
    // the idiomatic type has a destructor, and uses it as an object's delete
    // routine does. A destructor cannot raise: above DISPATCH_LEVEL (where
    // KeReleaseMutant bug checks) the mutex is left as it is.
    ~RawKMutex() {
        if (owner() == nullptr) return;
        try {
            nt::KeReleaseMutant(&mutex_, nt::MUTANT_INCREMENT, nt::TRUE, nt::FALSE);
        } catch (...) {
        }
    }
    RawKMutex(const RawKMutex&) = delete;
    RawKMutex& operator=(const RawKMutex&) = delete;
    PKTHREAD owner() const noexcept { return dispatcher::load_owner(&mutex_); }
    LONG signal_state() const noexcept { return dispatcher::load_state(&mutex_.Header); }
    // KMUTANT.Abandoned, read without the dispatcher lock as owner() is.
    bool abandoned() const noexcept {
        return std::atomic_ref<const nt::BOOLEAN>(mutex_.Abandoned)
                   .load(std::memory_order_relaxed) != nt::FALSE;
    }

    Acquire acquire(PKTHREAD t, Deadline deadline) {
        if (owner() == t && signal_state() == nt::MINLONG) return Acquire::limit;
        const nt::NTSTATUS s = dispatcher::wait_for_mutex(&mutex_, deadline);
        if (s == nt::STATUS_TIMEOUT) return Acquire::timeout;
        return s == nt::STATUS_ABANDONED ? Acquire::abandoned : Acquire::acquired;
    }
    // An alertable wait in `mode`, as KeWaitForSingleObject(.., mode, TRUE, ..):
    // its status (STATUS_ALERTED and STATUS_USER_APC besides the others), or
    // STATUS_MUTANT_LIMIT_EXCEEDED where acquire() says Acquire::limit. Not
    // an Acquire: two more outcomes there lengthen every backend's
    // non-alertable lock() (KMutex::acquire_alertable says by how much).
    nt::NTSTATUS acquire_alertable(PKTHREAD t, Deadline deadline, nt::KPROCESSOR_MODE mode) {
        if (owner() == t && signal_state() == nt::MINLONG) return nt::STATUS_MUTANT_LIMIT_EXCEEDED;
        return dispatcher::wait_for_mutex_alertable(&mutex_, deadline, mode);
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
// One interface, two algorithms; Count reads 1 when free and 0 when held
// without waiters on both, as the kernel's does:
//  * a backend whose waiters sleep (Futex, Dispatcher): the kernel's lock-bit
//    algorithm (kmlab/kernel/lock_bit.hpp), waiters counted in Count. Its gate is
//    the backend's choice: over Dispatcher a SynchronizationEvent, exactly a
//    FAST_MUTEX; over any other backend a FutexGate on the backend's wait word,
//    spinning first for the backend's spin_before_park().
//  * a backend whose waiters never sleep (Spin): test-and-test-and-set.
// A caller whose try_lock() fails decides (owner check) before calling
// lock_contended(), so the uncontended path makes no ownership test.
//
// Both are safe to destroy right after unlock(): no unlock touches the lock's
// memory once another thread can see it free and finish with it
// (lock_bit.hpp says why for the lock-bit release).

// What every RawLockBit has: Count (1 free, 0 held; the lock-bit algorithm
// also counts waiters in it), the owner (written by the owner only, compared
// by a thread with itself, so relaxed is enough) and the slow-path count.
template <class P>
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
    typename P::template atomic_ref<LONG> count_ref() noexcept {
        return typename P::template atomic_ref<LONG>(count_);
    }

    LONG count_ = nt::FM_LOCK_BIT;
    nt::ULONG contention_ = 0;
    std::atomic<PKTHREAD> owner_{nullptr};
};

// The gate a lock-bit mutex over Backend sleeps on.
template <backends::WaitBackend Backend>
struct LockBitGate : backends::FutexGate<Backend> {
    bool quiescent() const noexcept { return this->word.load() == 0; }
};
// Over kernel objects: a SynchronizationEvent, as in a FAST_MUTEX.
template <backends::WaitBackend Backend>
requires backends::kernel_objects<Backend>
struct LockBitGate<Backend> {
    LockBitGate() { nt::KeInitializeEvent(&event, nt::SynchronizationEvent, nt::FALSE); }
    LockBitGate(const LockBitGate&) = delete;
    void wait() { gate.wait(); }
    void signal() { gate.signal(); }
    bool quiescent() const noexcept {
        return dispatcher::load_state(&event.Header) == 0 &&
               nt::IsListEmpty(&event.Header.WaitListHead);
    }

    nt::KEVENT event;
    dispatcher::ObjectGate gate{&event};
};

template <backends::WaitBackend Backend>
class RawLockBit : public LockBitState<platform::platform_of<Backend>> {
    using P = platform::platform_of<Backend>;

  public:
    RawLockBit() = default;
    RawLockBit(const RawLockBit&) = delete;

    bool try_lock() noexcept { return lock_bit::try_acquire<P>(this->count_); }
    void lock_contended() { lock_bit::acquire_slow(this->count_, this->contention_, gate_); }
    void unlock() { lock_bit::release(this->count_, gate_); }

    bool debug_is_free() const noexcept {
        return this->count() == nt::FM_LOCK_BIT && this->owner() == nullptr && gate_.quiescent();
    }

  private:
    LockBitGate<Backend> gate_;
};

// ---- One locked instruction per uncontended pair (issue 20) ----
//
// OneLockBit: a FAST_MUTEX-semantics lock over a parking backend whose
// uncontended acquire is one exchange and whose uncontended release is a
// plain store, the waiters paying an asymmetric fence instead
// (platform/membarrier.hpp). Explored in tests/model/model_one_lock_test.cpp.
//
// Decision, kmlab (issue 20): not the default RawLockBit<Futex>; an explored
// alternative (KMLAB_ONE_LOCK_RELEASE=1 makes it the default in a build that
// measures it). Measured 2026-12-07 on the 2-core VM of BENCHMARKING.md
// (load ~5 from other builds), one script, binaries alternated round by
// round, medians of 7 rounds (a 9-round run agreed within 0.04x), ratio to
// std::mutex in the same binary, per_sleep (per_acquisition within 0.05x):
// uncontended FastMutex<T, Futex> 0.85x (today's 1.29x), GuardedMutex 0.56x
// (0.96x), the raw lock alone 0.43x (0.87x); callgrind 38 instructions per
// typed pair against today's 31 (raw: 11 against 9). Contended S3 at 4
// threads (cs_ns 50) 0.87x against today's 1.00x and S4 (8 threads) 0.90x
// against 0.99x; 2 threads cs_ns 50 even. The rule (FastMutex at
// most 0.6x uncontended, contended rows not worse) is not met: FastMutex's
// own IRQL raise and lower cost ~6 ns per pair over GuardedMutex in both
// builds, and under contention every release while a waiter is counted makes
// a wake system call (no woken mark: one in the lock could not be cleared
// after the release store, one in a shared slot could hide another lock's
// waiter): at 2 threads 35,000 futex calls per run (per_sleep; 14,000
// per_acquisition) against 1,700 today, at 4 threads 47,000 (49,000)
// against 1,800; membarriers are few (300 and 130 per run per_sleep, under
// 10 per_acquisition) (perf stat, the S3 rows above, one run each).
//
// State:
//   word_ (in the lock, the futex word)   1 = free, 0 = held (Count's encoding
//                                         of FM_LOCK_BIT: count() reads it)
//   ParkedWaiters slot (outside the lock) the number of threads registered to
//                                         park on some lock hashed to it
//
// Why the waiter count lives outside the lock: a release by plain store
// cannot learn of a waiter before the store (a waiter that registers between
// the releaser's read and its store is missed, as the count_read_first
// mutant shows), so it reads the count after the store; but after the store
// the next owner may take the lock, release it and destroy it, which
// std::mutex ([cpp-mutex-destroy]) and POSIX ([posix-mutex-destroy]) allow,
// so a count inside the lock would be read after free (the count_in_lock
// mutant). A table that is
// never freed, indexed by the lock's address, can be read at any time;
// parking_lot and WebKit's ParkingLot keep their waiter queues in such a
// global table for the same reason [pl-parking][webkit-parkinglot]. After
// its store the releaser touches nothing of the lock but the futex wake, a
// system call on an address, harmless on freed memory (backend.hpp).
// Locks that share a slot cost each other a spurious wake system call while
// one of them has parked waiters; never a lost one.
//
// The pairing (asymmetric Dekker): the releaser does
//   store word_ = 1; light fence (compiler only); load slot
// and a waiter does
//   slot += 1 (locked RMW); heavy fence (membarrier); then every check of
//   word_ (the exchange, and the futex_wait's compare in the kernel)
// The membarrier puts a full barrier into every other thread at some point
// during the call. A releaser whose barrier point falls before its store
// loads the slot after the barrier, so it sees the count (the RMW was
// globally visible before the call) and wakes. A releaser whose barrier
// point falls after its store has that store visible to the waiter when the
// call returns, so the waiter's next check sees the lock free and does not
// sleep. A waiter sleeps only while counted, and counts itself anew (with a
// new fence) after every time it was uncounted (OneLockPark::per_sleep), or
// stays counted from its first sleep until it owns the lock, one fence
// covering all its sleeps (per_acquisition). A woken waiter that loses the
// lock to a barging thread sleeps again, counted; that thread's release sees
// the count and wakes again: a free lock with a counted sleeper always has a
// wake in flight or a waiter about to re-check.
//
// Memory orders: the exchange that acquires is acquire, the release store is
// release (the critical section is published by it, as by any unlock). The
// slot load is relaxed and may pass the release store in hardware (x86 store
// buffer) and in C++: that reordering is exactly what the heavy fence
// answers, and the light fence keeps the compiler from making it.
//
// Fallback: where membarrier is refused, the pairing is gone; a waiter then
// sleeps at most kFallbackSleep at a time before it re-checks the lock, so a
// missed wake costs latency, never a hang (explored as HeavyFence::fallback).
//
// Illegal uses (as for every FAST_MUTEX): recursive acquisition, release by
// a thread that does not own it (the typed mutexes check both first).

// The parked-waiter counts, one cache line pair each (128 bytes: the
// adjacent-line prefetcher pairs lines), indexed by a lock's address.
// Written only by waiters (twice per parking acquisition); read by every
// release of a lock hashed to the slot, which keeps the line shared and
// cached while nobody parks.
template <class P>
struct ParkedWaiters {
    static constexpr std::size_t kSlots = 64;
    struct alignas(128) Slot {
        typename P::template atomic<std::uint32_t> count{0};
    };
    static inline Slot slots[kSlots];
    // Fibonacci hashing: locks 64 or 4096 bytes apart still spread.
    static typename P::template atomic<std::uint32_t>& of(const void* lock) noexcept {
        const auto a = reinterpret_cast<std::uintptr_t>(lock);
        return slots[static_cast<std::size_t>((a * 0x9E3779B97F4A7C15ull) >> 58)].count;
    }
};

// How long a waiter stays counted (both explored; the measurements of issue
// 20's closing note compare them): from its first sleep until it owns the
// lock (one membarrier per contended acquisition, but a wake system call on
// every release meanwhile), or around each sleep alone (a membarrier per
// sleep, and a release wakes only while someone sleeps or is about to).
enum class OneLockPark { per_sleep, per_acquisition };

// Test-only shortcuts, each a plausible simplification that
// tests/model/model_one_lock_test.cpp must see fail (must-find mutants).
enum class OneLockShortcut {
    none,
    count_read_first,  // the release reads the count, then stores the free lock
    count_in_lock,     // the count is a field of the lock, read after the release store
};

template <backends::ParkingBackend Backend, OneLockShortcut Shortcut = OneLockShortcut::none,
          OneLockPark Park = OneLockPark::per_sleep>
class OneLockBit {
    using P = platform::platform_of<Backend>;
    static constexpr std::uint32_t kFree = 1;
    static constexpr std::uint32_t kHeld = 0;

  public:
    // Where membarrier is refused: a sleep is bounded by this, so a missed
    // wake costs at most this much latency. 1 ms, as the plain-store release
    // before issue 9 bounded it (tests/model/asymmetric_lock.hpp).
    static constexpr auto kFallbackSleep = std::chrono::milliseconds(1);

    OneLockBit() = default;
    OneLockBit(const OneLockBit&) = delete;
    OneLockBit& operator=(const OneLockBit&) = delete;

    PKTHREAD owner() const noexcept { return owner_.load(std::memory_order_relaxed); }
    void set_owner(PKTHREAD t) noexcept { owner_.store(t, std::memory_order_relaxed); }
    LONG count() const noexcept { return static_cast<LONG>(word_.load(std::memory_order_relaxed)); }
    nt::ULONG contention() const noexcept {
        return std::atomic_ref<const nt::ULONG>(contention_).load(std::memory_order_relaxed);
    }

    // The one locked instruction. Acquire: the previous owner's critical
    // section, published by its release store, is visible from here.
    bool try_lock() noexcept { return word_.exchange(kHeld, std::memory_order_acquire) == kFree; }

    // A plain store, then the slot (see the pairing above). Nothing of the
    // lock is touched after the store but the futex wake's address.
    void unlock() noexcept {
        if constexpr (Shortcut == OneLockShortcut::count_read_first) {
            const bool waiters = parked().load(std::memory_order_relaxed) != 0;
            word_.store(kFree, std::memory_order_release);
            if (waiters) wake();
        } else {
            word_.store(kFree, std::memory_order_release);
            P::light_fence();
            if (parked().load(std::memory_order_relaxed) != 0) [[unlikely]]
                wake();
        }
    }

    [[gnu::noinline, gnu::cold]] void lock_contended() {
        std::atomic_ref<nt::ULONG>(contention_).fetch_add(1, std::memory_order_relaxed);
        auto& slot = parked();
        for (;;) {
            // A holder that is running releases within a critical section's
            // time: test, then test-and-set, before paying for a membarrier, a
            // sleep and a wake (the backend's spin_before_park, 1 us for Futex).
            if constexpr (backends::spin_before_park<Backend>() >
                          std::chrono::nanoseconds::zero()) {
                const auto until = Deadline::at(P::now() + backends::spin_before_park<Backend>());
                if (P::spin_until([&] { return seen_free_and_taken(); }, until)) return;
            }
            // Seq_cst RMW (a locked instruction): globally visible before the
            // heavy fence starts, so a releaser past its barrier point sees it.
            slot.fetch_add(1, std::memory_order_seq_cst);
            const bool paired = P::heavy_fence();
            if constexpr (Park == OneLockPark::per_sleep) {
                // Counted only around one sleep: a release while we are awake
                // makes no wake system call for us. A woken waiter spins
                // again, and counts itself (one more membarrier) before it
                // sleeps again.
                const bool taken = seen_free_and_taken();
                // The kernel compares word_ with kHeld under its futex lock:
                // a release store visible by then makes it return at once.
                if (!taken)
                    Backend::wait(
                        word_, kHeld,
                        paired ? Deadline::never() : Deadline::at(P::now() + kFallbackSleep));
                slot.fetch_sub(1, std::memory_order_relaxed);
                if (taken) return;
            } else {
                // Counted from the first sleep until we own the lock: every
                // release meanwhile makes a wake system call (measured: tens
                // of thousands a second at 2 threads; issue 20's note).
                while (!seen_free_and_taken()) {
                    Backend::wait(
                        word_, kHeld,
                        paired ? Deadline::never() : Deadline::at(P::now() + kFallbackSleep));
                }
                slot.fetch_sub(1, std::memory_order_relaxed);
                return;
            }
        }
    }

    bool debug_is_free() const noexcept {
        return count() == nt::FM_LOCK_BIT && owner() == nullptr &&
               const_cast<OneLockBit*>(this)->parked().load(std::memory_order_relaxed) == 0;
    }

  private:
    bool seen_free_and_taken() noexcept {
        return word_.load(std::memory_order_relaxed) == kFree && try_lock();
    }
    typename P::template atomic<std::uint32_t>& parked() noexcept {
        if constexpr (Shortcut == OneLockShortcut::count_in_lock)
            return in_lock_count_;
        else
            return ParkedWaiters<P>::of(this);
    }
    // The futex wake is a system call on an address: harmless on a lock
    // destroyed since (backend.hpp), and then at worst a spurious wake of
    // whatever waits there now, which every futex waiter tolerates.
    [[gnu::noinline, gnu::cold]] void wake() noexcept { Backend::wake_one(word_); }

    backends::wait_word<Backend> word_{kFree};
    nt::ULONG contention_ = 0;
    std::atomic<PKTHREAD> owner_{nullptr};
    struct Empty {};
    [[no_unique_address]] std::conditional_t<Shortcut == OneLockShortcut::count_in_lock,
                                             typename P::template atomic<std::uint32_t>, Empty>
        in_lock_count_{};
};

#if KMLAB_ONE_LOCK_RELEASE
// A build that measures the one-locked-instruction lock as the default
// FastMutex / GuardedMutex over a sleeping parking backend (Futex):
// KMLAB_ONE_LOCK_RELEASE=1 counts waiters per sleep, =2 per acquisition.
template <backends::WaitBackend Backend>
requires(backends::ParkingBackend<Backend> && !backends::never_sleeps<Backend> &&
         !backends::kernel_objects<Backend>) class RawLockBit<Backend>
    : public OneLockBit<Backend, OneLockShortcut::none,
                        KMLAB_ONE_LOCK_RELEASE == 2 ? OneLockPark::per_acquisition
                                                    : OneLockPark::per_sleep> {
};
#endif

// Over a backend whose waiters never sleep (Spin) Count is 1 or 0, taken with
// an exchange and released with a plain release store: a test-and-test-and-set
// lock with the cost of tbb::spin_mutex. Waiters spin on a load (no cache-line
// ping-pong) with the backend's backoff-then-yield policy.
template <backends::WaitBackend Backend>
requires backends::never_sleeps<Backend>
class RawLockBit<Backend> : public LockBitState<platform::platform_of<Backend>> {
  public:
    bool try_lock() noexcept {
        return this->count_ref().exchange(0, std::memory_order_acquire) == nt::FM_LOCK_BIT;
    }
    [[gnu::noinline]] void lock_contended() {
        std::atomic_ref<nt::ULONG>(this->contention_).fetch_add(1, std::memory_order_relaxed);
        do {
            platform::platform_of<Backend>::spin_until(
                [&] { return this->count_ref().load(std::memory_order_relaxed) != 0; },
                Deadline::never());
        } while (!try_lock());
    }
    void unlock() noexcept { this->count_ref().store(nt::FM_LOCK_BIT, std::memory_order_release); }

    bool debug_is_free() const noexcept {
        return this->count() == nt::FM_LOCK_BIT && this->owner() == nullptr;
    }
};

// What a raw lock gives the typed mutexes (kmutex.hpp, lock_bit_mutex.hpp).
// KMUTEX semantics: recursion and ownership inside the raw lock.
template <class R>
concept RawKMutexLock = requires(R r, const R cr, PKTHREAD t, Deadline dl) {
    { r.acquire(t, dl) } -> std::same_as<Acquire>;
    { r.release(t) } -> std::same_as<void>;
    { cr.owner() } -> std::same_as<PKTHREAD>;
    { cr.signal_state() } -> std::same_as<LONG>;
    { cr.abandoned() } -> std::same_as<bool>;
    { cr.debug_is_free() } -> std::same_as<bool>;
};
// FAST_MUTEX semantics: a non-recursive lock whose owner field the typed
// mutex writes; try_lock() is the whole fast path, lock_contended() the
// slow one (after the caller's ownership check).
template <class R>
concept RawLockBitLock = requires(R r, const R cr, PKTHREAD t) {
    { r.try_lock() } -> std::same_as<bool>;
    { r.lock_contended() } -> std::same_as<void>;
    { r.unlock() } -> std::same_as<void>;
    { r.set_owner(t) } -> std::same_as<void>;
    { cr.owner() } -> std::same_as<PKTHREAD>;
    { cr.count() } -> std::same_as<LONG>;
    { cr.debug_is_free() } -> std::same_as<bool>;
};
static_assert(RawKMutexLock<RawKMutex<backends::Futex>> &&
              RawKMutexLock<RawKMutex<backends::Spin>> &&
              RawKMutexLock<RawKMutex<backends::Dispatcher>>);
static_assert(RawLockBitLock<RawLockBit<backends::Futex>> &&
              RawLockBitLock<RawLockBit<backends::Spin>> &&
              RawLockBitLock<RawLockBit<backends::Dispatcher>>);

}  // namespace kmlab::detail
