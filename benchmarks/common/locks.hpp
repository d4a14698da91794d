// Every lock the benchmarks measure, behind one small adapter so a benchmark
// is written once: kmlab's types over each backend, the NT routines
// themselves, and the peers C++ users already have.
//
//   LockAdapter<L>::name()             "FastMutex,futex", "std::mutex", ...
//   LockAdapter<L>::lock_unlock(l)     one acquisition and release
//   LockAdapter<L>::try_lock_unlock(l) one try (and release if it succeeded)
//   LockAdapter<L>::Scoped             RAII hold for contended benchmarks
//
// Three lists: for_each_lock (kmlab's mutexes, their NT routines and every
// peer), for_each_spin_lock (kmlab's spin locks and their NT routines, whose
// peers pthread_spinlock_t, tbb::spin_mutex and tbb::queuing_mutex are in the
// first list) and for_each_raw_lock (S11). The reader/writer locks are in
// common/rw_locks.hpp.
#pragma once

#include <pthread.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include <oneapi/tbb/mutex.h>
#include <oneapi/tbb/queuing_mutex.h>
#include <oneapi/tbb/spin_mutex.h>

#include <kmlab/kernel/verifier.hpp>
#include <kmlab/kmlab.hpp>
#include <kmlab/kmlab_nt.hpp>

#ifdef KMLAB_HAVE_ABSL
#include <absl/synchronization/mutex.h>
#endif

// The lock families beyond the mutexes, one switch each (idiomatic type, NT
// routines), all on: a family switched off (-DKMLAB_BENCH_HAVE_X=0, e.g. to
// shorten a run) is left out of every binary and every list, and the report
// names it as missing.
#ifndef KMLAB_BENCH_HAVE_SPIN_LOCK
#define KMLAB_BENCH_HAVE_SPIN_LOCK 1  // kmlab::SpinLock<T>, kmlab::QueuedSpinLock<T>
#endif
#ifndef KMLAB_BENCH_HAVE_NT_SPIN_LOCK
#define KMLAB_BENCH_HAVE_NT_SPIN_LOCK 1  // KeAcquireSpinLock, KeAcquireInStackQueuedSpinLock
#endif
#ifndef KMLAB_BENCH_HAVE_RESOURCE
#define KMLAB_BENCH_HAVE_RESOURCE 1  // kmlab::Resource<T>
#endif
#ifndef KMLAB_BENCH_HAVE_NT_RESOURCE
#define KMLAB_BENCH_HAVE_NT_RESOURCE 1  // ERESOURCE: ExAcquireResourceSharedLite / ExclusiveLite
#endif
#ifndef KMLAB_BENCH_HAVE_PUSH_LOCK
#define KMLAB_BENCH_HAVE_PUSH_LOCK 1  // kmlab::PushLock<T>
#endif
#ifndef KMLAB_BENCH_HAVE_NT_PUSH_LOCK
#define KMLAB_BENCH_HAVE_NT_PUSH_LOCK 1  // EX_PUSH_LOCK: ExAcquirePushLockShared / Exclusive
#endif
#ifndef KMLAB_BENCH_HAVE_RW_SPIN_LOCK
#define KMLAB_BENCH_HAVE_RW_SPIN_LOCK 1  // kmlab::RwSpinLock<T>
#endif
#ifndef KMLAB_BENCH_HAVE_NT_EX_SPIN_LOCK
#define KMLAB_BENCH_HAVE_NT_EX_SPIN_LOCK 1  // EX_SPIN_LOCK: ExAcquireSpinLockShared / Exclusive
#endif

namespace kmlab::bench {

template <class L>
struct LockAdapter;

// kmlab's idiomatic types: a failed lock() in a benchmark is a bug, not data.
template <class M>
requires requires {
    M::kind();
}
struct LockAdapter<M> {
    static std::string name() {
        return std::string(M::kind()) + "," + std::string(M::backend::name());
    }
    static void lock_unlock(M& m) {
        auto g = m.lock();
        if (!g) [[unlikely]]
            std::abort();
    }
    static bool try_lock_unlock(M& m) { return m.try_lock().has_value(); }
    struct Scoped {
        explicit Scoped(M& m) : g(m.lock()) {
            if (!g) [[unlikely]]
                std::abort();
        }
        decltype(std::declval<M&>().lock()) g;
    };
};

// Peers with the standard Lockable interface.
template <class L, const char* Name>
struct StdLockable {
    static std::string name() { return Name; }
    static void lock_unlock(L& l) {
        l.lock();
        l.unlock();
    }
    static bool try_lock_unlock(L& l) {
        if (!l.try_lock()) return false;
        l.unlock();
        return true;
    }
    struct Scoped {
        explicit Scoped(L& l) : lock(l) { l.lock(); }
        ~Scoped() { lock.unlock(); }
        L& lock;
    };
};
inline constexpr char kStdMutex[] = "std::mutex";
inline constexpr char kStdRecursiveMutex[] = "std::recursive_mutex";
inline constexpr char kTbbSpinMutex[] = "tbb::spin_mutex";
inline constexpr char kTbbMutex[] = "tbb::mutex";
template <>
struct LockAdapter<std::mutex> : StdLockable<std::mutex, kStdMutex> {};
template <>
struct LockAdapter<std::recursive_mutex> : StdLockable<std::recursive_mutex, kStdRecursiveMutex> {};
template <>
struct LockAdapter<tbb::spin_mutex> : StdLockable<tbb::spin_mutex, kTbbSpinMutex> {};
template <>
struct LockAdapter<tbb::mutex> : StdLockable<tbb::mutex, kTbbMutex> {};

// tbb::queuing_mutex has only scoped locks (each waiter brings its own node).
template <>
struct LockAdapter<tbb::queuing_mutex> {
    static std::string name() { return "tbb::queuing_mutex"; }
    static void lock_unlock(tbb::queuing_mutex& m) { tbb::queuing_mutex::scoped_lock g(m); }
    static bool try_lock_unlock(tbb::queuing_mutex& m) {
        tbb::queuing_mutex::scoped_lock g;
        return g.try_acquire(m);
    }
    struct Scoped {
        explicit Scoped(tbb::queuing_mutex& m) : g(m) {}
        tbb::queuing_mutex::scoped_lock g;
    };
};

struct PthreadSpinlock {
    pthread_spinlock_t s;
    PthreadSpinlock() { pthread_spin_init(&s, PTHREAD_PROCESS_PRIVATE); }
    ~PthreadSpinlock() { pthread_spin_destroy(&s); }
    void lock() { pthread_spin_lock(&s); }
    bool try_lock() { return pthread_spin_trylock(&s) == 0; }
    void unlock() { pthread_spin_unlock(&s); }
};
inline constexpr char kPthreadSpin[] = "pthread_spinlock_t";
template <>
struct LockAdapter<PthreadSpinlock> : StdLockable<PthreadSpinlock, kPthreadSpin> {};

#ifdef KMLAB_HAVE_ABSL
// absl::Mutex spells its Lockable interface in CamelCase.
struct AbslMutex {
    absl::Mutex m;
    void lock() { m.Lock(); }
    bool try_lock() { return m.TryLock(); }
    void unlock() { m.Unlock(); }
};
inline constexpr char kAbslMutex[] = "absl::Mutex";
template <>
struct LockAdapter<AbslMutex> : StdLockable<AbslMutex, kAbslMutex> {};
#endif

// ---- The NT routines themselves ----
struct NtFastMutex {
    nt::FAST_MUTEX m;
    NtFastMutex() { nt::ExInitializeFastMutex(&m); }
    void lock() { nt::ExAcquireFastMutex(&m); }
    bool try_lock() { return nt::ExTryToAcquireFastMutex(&m) != 0; }
    void unlock() { nt::ExReleaseFastMutex(&m); }
};
struct NtKMutex {
    nt::KMUTEX m;
    NtKMutex() { nt::KeInitializeMutex(&m, 0); }
    void lock() {
        nt::KeWaitForSingleObject(&m, nt::Executive, nt::KernelMode, nt::FALSE, nullptr);
    }
    bool try_lock() {
        nt::LARGE_INTEGER zero{};
        return nt::KeWaitForSingleObject(&m, nt::Executive, nt::KernelMode, nt::FALSE, &zero) ==
               nt::STATUS_SUCCESS;
    }
    void unlock() { nt::KeReleaseMutex(&m, nt::FALSE); }
};
struct NtGuardedMutex {
    nt::KGUARDED_MUTEX m;
    NtGuardedMutex() { nt::KeInitializeGuardedMutex(&m); }
    void lock() { nt::KeAcquireGuardedMutex(&m); }
    bool try_lock() { return nt::KeTryToAcquireGuardedMutex(&m) != 0; }
    void unlock() { nt::KeReleaseGuardedMutex(&m); }
};
inline constexpr char kNtFastMutex[] = "ExAcquireFastMutex";
inline constexpr char kNtKMutex[] = "KeWaitForSingleObject(KMUTEX)";
inline constexpr char kNtGuardedMutex[] = "KeAcquireGuardedMutex";
template <>
struct LockAdapter<NtFastMutex> : StdLockable<NtFastMutex, kNtFastMutex> {};
template <>
struct LockAdapter<NtKMutex> : StdLockable<NtKMutex, kNtKMutex> {};
template <>
struct LockAdapter<NtGuardedMutex> : StdLockable<NtGuardedMutex, kNtGuardedMutex> {};

// ---- Spin locks: the idiomatic types and the NT routines ----
// A kmlab type whose lock() gives an std::expected<Guard, Error>, named
// explicitly (the spin locks have no backend to name).
template <class M, const char* Name>
struct GuardLockable {
    static std::string name() { return Name; }
    static void lock_unlock(M& m) {
        auto g = m.lock();
        if (!g) [[unlikely]]
            std::abort();
    }
    static bool try_lock_unlock(M& m) { return m.try_lock().has_value(); }
    struct Scoped {
        explicit Scoped(M& m) : g(m.lock()) {
            if (!g) [[unlikely]]
                std::abort();
        }
        decltype(std::declval<M&>().lock()) g;
    };
};

#if KMLAB_BENCH_HAVE_SPIN_LOCK
inline constexpr char kSpinLock[] = "SpinLock";
inline constexpr char kQueuedSpinLock[] = "QueuedSpinLock";
template <>
struct LockAdapter<SpinLock<long>> : GuardLockable<SpinLock<long>, kSpinLock> {};
template <>
struct LockAdapter<QueuedSpinLock<long>> : GuardLockable<QueuedSpinLock<long>, kQueuedSpinLock> {};
#endif

#if KMLAB_BENCH_HAVE_NT_SPIN_LOCK
// KeAcquireSpinLock returns the previous IRQL through its second argument; the
// owner keeps it in the lock's block (written only by the holder after it
// acquires, read by it before it releases), as a driver keeps it in a local.
struct NtSpinLock {
    nt::KSPIN_LOCK s;
    nt::KIRQL old_irql = 0;
    NtSpinLock() { nt::KeInitializeSpinLock(&s); }
    void lock() {
        nt::KIRQL old;
        nt::KeAcquireSpinLock(&s, &old);
        old_irql = old;
    }
    void unlock() { nt::KeReleaseSpinLock(&s, old_irql); }
};
inline constexpr char kNtSpinLock[] = "KeAcquireSpinLock";
template <>
struct LockAdapter<NtSpinLock> {
    static std::string name() { return kNtSpinLock; }
    static void lock_unlock(NtSpinLock& l) {
        nt::KIRQL old;
        nt::KeAcquireSpinLock(&l.s, &old);
        nt::KeReleaseSpinLock(&l.s, old);
    }
    // KeTryToAcquireSpinLockAtDpcLevel needs DISPATCH_LEVEL already; the
    // benchmarks have no try for KSPIN_LOCK at PASSIVE_LEVEL.
    static bool try_lock_unlock(NtSpinLock& l) {
        lock_unlock(l);
        return true;
    }
    struct Scoped {
        explicit Scoped(NtSpinLock& l) : lock(l) { l.lock(); }
        ~Scoped() { lock.unlock(); }
        NtSpinLock& lock;
    };
};

// The in-stack queued spin lock: each acquirer brings its KLOCK_QUEUE_HANDLE
// (its queue node, and where the previous IRQL is kept) on its own stack.
struct NtQueuedSpinLock {
    nt::KSPIN_LOCK s;
    NtQueuedSpinLock() { nt::KeInitializeSpinLock(&s); }
};
inline constexpr char kNtQueuedSpinLock[] = "KeAcquireInStackQueuedSpinLock";
template <>
struct LockAdapter<NtQueuedSpinLock> {
    static std::string name() { return kNtQueuedSpinLock; }
    static void lock_unlock(NtQueuedSpinLock& l) {
        nt::KLOCK_QUEUE_HANDLE h;
        nt::KeAcquireInStackQueuedSpinLock(&l.s, &h);
        nt::KeReleaseInStackQueuedSpinLock(&h);
    }
    static bool try_lock_unlock(NtQueuedSpinLock& l) {
        lock_unlock(l);
        return true;
    }
    struct Scoped {
        explicit Scoped(NtQueuedSpinLock& l) { nt::KeAcquireInStackQueuedSpinLock(&l.s, &h); }
        ~Scoped() { nt::KeReleaseInStackQueuedSpinLock(&h); }
        Scoped(const Scoped&) = delete;
        nt::KLOCK_QUEUE_HANDLE h;
    };
};
#endif

// Whether a lock has a try that can fail (the NT spin locks have none at
// PASSIVE_LEVEL, so S1 has no try row for them).
template <class L>
inline constexpr bool kHasTry = true;
#if KMLAB_BENCH_HAVE_NT_SPIN_LOCK
template <>
inline constexpr bool kHasTry<NtSpinLock> = false;
template <>
inline constexpr bool kHasTry<NtQueuedSpinLock> = false;
#endif

// Calls f.template operator()<L>() for each spin lock whose family is in
// (S1, S3-S7; their peers are in for_each_lock).
template <class F>
void for_each_spin_lock([[maybe_unused]] F&& f) {
#if KMLAB_BENCH_HAVE_SPIN_LOCK
    f.template operator()<SpinLock<long>>();
    f.template operator()<QueuedSpinLock<long>>();
#endif
#if KMLAB_BENCH_HAVE_NT_SPIN_LOCK
    f.template operator()<NtSpinLock>();
    f.template operator()<NtQueuedSpinLock>();
#endif
}

// ---- The raw locks under the typed mutexes, with no kernel rules (S11) ----
template <backends::WaitBackend B>
struct RawFast {
    detail::RawLockBit<B> raw;
    void lock() {
        if (!raw.try_lock()) raw.lock_contended();
    }
    bool try_lock() { return raw.try_lock(); }
    void unlock() { raw.unlock(); }
};
template <backends::WaitBackend B>
struct RawRecursive {
    detail::RawKMutex<B> raw;
    void lock() { raw.acquire(kernel::current_thread(), Deadline::never()); }
    bool try_lock() {
        return raw.acquire(kernel::current_thread(), Deadline::poll()) == detail::Acquire::acquired;
    }
    void unlock() { raw.release(kernel::current_thread()); }
};
template <backends::WaitBackend B>
struct LockAdapter<RawFast<B>> : StdLockable<RawFast<B>, nullptr> {
    static std::string name() { return "raw-lock-bit," + std::string(B::name()); }
};
template <backends::WaitBackend B>
struct LockAdapter<RawRecursive<B>> : StdLockable<RawRecursive<B>, nullptr> {
    static std::string name() { return "raw-kmutex," + std::string(B::name()); }
};

// Calls f.template operator()<L>() for each raw lock (S11).
template <class F>
void for_each_raw_lock(F&& f) {
    f.template operator()<RawRecursive<backends::Futex>>();
    f.template operator()<RawRecursive<backends::Spin>>();
    f.template operator()<RawRecursive<backends::Dispatcher>>();
    f.template operator()<RawFast<backends::Futex>>();
    f.template operator()<RawFast<backends::Spin>>();
    f.template operator()<RawFast<backends::Dispatcher>>();
}

// Calls f.template operator()<L>() for every lock: kmlab's 9 type x backend
// combinations, the 3 NT routines, and the peers (absl::Mutex where built).
template <class F>
void for_each_lock(F&& f) {
    using backends::Dispatcher;
    using backends::Futex;
    using backends::Spin;
    f.template operator()<KMutex<long, Futex>>();
    f.template operator()<KMutex<long, Spin>>();
    f.template operator()<KMutex<long, Dispatcher>>();
    f.template operator()<FastMutex<long, Futex>>();
    f.template operator()<FastMutex<long, Spin>>();
    f.template operator()<FastMutex<long, Dispatcher>>();
    f.template operator()<GuardedMutex<long, Futex>>();
    f.template operator()<GuardedMutex<long, Spin>>();
    f.template operator()<GuardedMutex<long, Dispatcher>>();
    f.template operator()<NtKMutex>();
    f.template operator()<NtFastMutex>();
    f.template operator()<NtGuardedMutex>();
    f.template operator()<std::mutex>();
    f.template operator()<std::recursive_mutex>();
    f.template operator()<tbb::spin_mutex>();
    f.template operator()<tbb::mutex>();
    f.template operator()<tbb::queuing_mutex>();
    f.template operator()<PthreadSpinlock>();
#ifdef KMLAB_HAVE_ABSL
    f.template operator()<AbslMutex>();
#endif
}

// Every exclusive lock: for_each_lock, then the spin locks (S1, S3-S7).
template <class F>
void for_each_exclusive_lock(F&& f) {
    for_each_lock(f);
    for_each_spin_lock(f);
}

// ---- Driver Verifier's cost (S14, S15) ----
// Verified<L> is L measured with the verifier flavour on (kernel/verifier.hpp):
// a benchmark of one holds a VerifierScope, which turns the flavour on (the
// gate of every live thread, and of the threads it starts) and back off with
// the verifier's graph cleared. Its rows (BM_VerifierLockUnlock,
// BM_VerifierContended) name the lock as its off rows do, so that the report
// pairs them into on/off ratios.
template <class L>
struct Verified : L {
    Verified() : L() {}
};
template <class L>
struct LockAdapter<Verified<L>> : LockAdapter<L> {};
template <class L>
inline constexpr bool kVerified = false;
template <class L>
inline constexpr bool kVerified<Verified<L>> = true;

class VerifierScope {
  public:
    explicit VerifierScope(bool on) : on_(on), saved_(kmlab::flavor()) {
        if (on_) kmlab::set_flavor(kmlab::Flavor::verifier);
    }
    ~VerifierScope() {
        if (!on_) return;
        kmlab::set_flavor(saved_);
        kmlab::kernel::verifier::reset();
    }
    VerifierScope(const VerifierScope&) = delete;
    VerifierScope& operator=(const VerifierScope&) = delete;

  private:
    bool on_;
    kmlab::Flavor saved_;
};

// The locks measured with the verifier on: the NT FAST_MUTEX, KMUTEX and
// KSPIN_LOCK routines, and the idiomatic FastMutex.
template <class F>
void for_each_verified_lock(F&& f) {
    f.template operator()<Verified<NtFastMutex>>();
    f.template operator()<Verified<NtKMutex>>();
#if KMLAB_BENCH_HAVE_NT_SPIN_LOCK
    f.template operator()<Verified<NtSpinLock>>();
#endif
    f.template operator()<Verified<FastMutex<long, backends::Futex>>>();
}

}  // namespace kmlab::bench
