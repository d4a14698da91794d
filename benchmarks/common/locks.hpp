// Every lock the benchmarks measure, behind one small adapter so a benchmark
// is written once: kmlab's types over each backend, the NT routines
// themselves, and the peers C++ users already have.
//
//   LockAdapter<L>::name()             "FastMutex,futex", "std::mutex", ...
//   LockAdapter<L>::lock_unlock(l)     one acquisition and release
//   LockAdapter<L>::try_lock_unlock(l) one try (and release if it succeeded)
//   LockAdapter<L>::Scoped             RAII hold for contended benchmarks
#pragma once

#include <pthread.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include <oneapi/tbb/mutex.h>
#include <oneapi/tbb/queuing_mutex.h>
#include <oneapi/tbb/spin_mutex.h>

#include <kmlab/kmlab.hpp>
#include <kmlab/kmlab_nt.hpp>

#ifdef KMLAB_HAVE_ABSL
#include <absl/synchronization/mutex.h>
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

}  // namespace kmlab::bench
