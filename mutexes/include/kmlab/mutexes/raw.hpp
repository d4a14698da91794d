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
