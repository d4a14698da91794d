// The reader/writer locks the benchmarks measure (S1's shared and exclusive
// pairs, S12's read-mostly mix), behind one adapter as common/locks.hpp does
// for the exclusive ones:
//
//   RwAdapter<L>::name()                  "Resource", "ERESOURCE", "std::shared_mutex", ...
//   RwAdapter<L>::lock_unlock(l)          one exclusive acquisition and release
//   RwAdapter<L>::lock_shared_unlock(l)   one shared acquisition and release
//   RwAdapter<L>::Scoped / SharedScoped   RAII holds for the contended benchmarks
//   RwAdapter<L>::needs_region            a critical region must be held around it;
//   RwAdapter<L>::lock_shared_unlock_in_region(l)  then: one shared pair by a caller already in one
//
// ERESOURCE, EX_PUSH_LOCK and their idiomatic types need normal kernel APCs
// disabled around the acquisition [ddi:exacquireresourceexclusivelite]; each
// acquisition here enters a critical region first and leaves it after the
// release, as a driver that takes the lock once does, so the region's cost
// is in every pair (S1 also measures the region alone, BM_Floor<critical_region>).
#pragma once

#include <pthread.h>

#include <cstdlib>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <utility>

#include <oneapi/tbb/queuing_rw_mutex.h>
#include <oneapi/tbb/spin_rw_mutex.h>

#include "common/locks.hpp"

namespace kmlab::bench {

template <class L>
struct RwAdapter;

// Peers with lock() / unlock() / lock_shared() / unlock_shared().
template <class L, const char* Name>
struct StdSharedLockable {
    static std::string name() { return Name; }
    static void lock_unlock(L& l) {
        l.lock();
        l.unlock();
    }
    static void lock_shared_unlock(L& l) {
        l.lock_shared();
        l.unlock_shared();
    }
    // The NT routines that need a critical region have _bare forms without it.
    static constexpr bool needs_region = requires(L & l) { l.lock_shared_bare(); };
    static void lock_shared_unlock_in_region(L& l) requires needs_region {
        l.lock_shared_bare();
        l.unlock_shared_bare();
    }
    struct Scoped {
        explicit Scoped(L& l) : lock(l) { l.lock(); }
        ~Scoped() { lock.unlock(); }
        L& lock;
    };
    struct SharedScoped {
        explicit SharedScoped(L& l) : lock(l) { l.lock_shared(); }
        ~SharedScoped() { lock.unlock_shared(); }
        L& lock;
    };
};

inline constexpr char kStdSharedMutex[] = "std::shared_mutex";
inline constexpr char kTbbSpinRwMutex[] = "tbb::spin_rw_mutex";
template <>
struct RwAdapter<std::shared_mutex> : StdSharedLockable<std::shared_mutex, kStdSharedMutex> {};
template <>
struct RwAdapter<tbb::spin_rw_mutex> : StdSharedLockable<tbb::spin_rw_mutex, kTbbSpinRwMutex> {};

struct PthreadRwlock {
    pthread_rwlock_t l;
    PthreadRwlock() { pthread_rwlock_init(&l, nullptr); }
    ~PthreadRwlock() { pthread_rwlock_destroy(&l); }
    void lock() { pthread_rwlock_wrlock(&l); }
    void unlock() { pthread_rwlock_unlock(&l); }
    void lock_shared() { pthread_rwlock_rdlock(&l); }
    void unlock_shared() { pthread_rwlock_unlock(&l); }
};
inline constexpr char kPthreadRwlock[] = "pthread_rwlock_t";
template <>
struct RwAdapter<PthreadRwlock> : StdSharedLockable<PthreadRwlock, kPthreadRwlock> {};

// tbb::queuing_rw_mutex has only scoped locks (each waiter brings its node).
template <>
struct RwAdapter<tbb::queuing_rw_mutex> {
    static std::string name() { return "tbb::queuing_rw_mutex"; }
    static void lock_unlock(tbb::queuing_rw_mutex& m) {
        tbb::queuing_rw_mutex::scoped_lock g(m, true);
    }
    static void lock_shared_unlock(tbb::queuing_rw_mutex& m) {
        tbb::queuing_rw_mutex::scoped_lock g(m, false);
    }
    struct Scoped {
        explicit Scoped(tbb::queuing_rw_mutex& m) : g(m, true) {}
        tbb::queuing_rw_mutex::scoped_lock g;
    };
    struct SharedScoped {
        explicit SharedScoped(tbb::queuing_rw_mutex& m) : g(m, false) {}
        tbb::queuing_rw_mutex::scoped_lock g;
    };
};

#ifdef KMLAB_HAVE_ABSL
// absl::Mutex's reader locks (ReaderLock / ReaderUnlock).
struct AbslRwMutex {
    absl::Mutex m;
    void lock() { m.Lock(); }
    void unlock() { m.Unlock(); }
    void lock_shared() { m.ReaderLock(); }
    void unlock_shared() { m.ReaderUnlock(); }
};
template <>
struct RwAdapter<AbslRwMutex> : StdSharedLockable<AbslRwMutex, kAbslMutex> {};
#endif

// ---- kmlab's idiomatic reader/writer types ----
// Enter(): what must be held around the acquisition (a CriticalRegion for
// Resource and PushLock; nothing for RwSpinLock, which raises the IRQL).
struct NoRegion {
    static int enter() { return 0; }
};
struct InCriticalRegion {
    static CriticalRegion enter() {
        auto r = CriticalRegion::enter();
        if (!r) [[unlikely]]
            std::abort();
        return *std::move(r);
    }
};

template <class M, const char* Name, class Region>
struct GuardSharedLockable {
    static std::string name() { return Name; }
    template <class G>
    static G checked(G g) {
        if (!g) [[unlikely]]
            std::abort();
        return g;
    }
    static void lock_unlock(M& m) {
        [[maybe_unused]] auto r = Region::enter();
        [[maybe_unused]] auto g = checked(m.lock());
    }
    static void lock_shared_unlock(M& m) {
        [[maybe_unused]] auto r = Region::enter();
        [[maybe_unused]] auto g = checked(m.lock_shared());
    }
    static constexpr bool needs_region = std::is_same_v<Region, InCriticalRegion>;
    static void lock_shared_unlock_in_region(M& m) requires needs_region {
        [[maybe_unused]] auto g = checked(m.lock_shared());
    }
    // Members are destroyed in reverse: the guard releases, then the region is left.
    struct Scoped {
        explicit Scoped(M& m) : region(Region::enter()), g(checked(m.lock())) {}
        decltype(Region::enter()) region;
        decltype(std::declval<M&>().lock()) g;
    };
    struct SharedScoped {
        explicit SharedScoped(M& m) : region(Region::enter()), g(checked(m.lock_shared())) {}
        decltype(Region::enter()) region;
        decltype(std::declval<M&>().lock_shared()) g;
    };
};

#if KMLAB_BENCH_HAVE_RESOURCE
inline constexpr char kResource[] = "Resource";
template <>
struct RwAdapter<Resource<long>>
    : GuardSharedLockable<Resource<long>, kResource, InCriticalRegion> {};
#endif
#if KMLAB_BENCH_HAVE_PUSH_LOCK
inline constexpr char kPushLock[] = "PushLock";
template <>
struct RwAdapter<PushLock<long>>
    : GuardSharedLockable<PushLock<long>, kPushLock, InCriticalRegion> {};
#endif
#if KMLAB_BENCH_HAVE_RW_SPIN_LOCK
inline constexpr char kRwSpinLock[] = "RwSpinLock";
template <>
struct RwAdapter<RwSpinLock<long>> : GuardSharedLockable<RwSpinLock<long>, kRwSpinLock, NoRegion> {
};
#endif

// ---- The NT routines themselves ----
#if KMLAB_BENCH_HAVE_NT_RESOURCE
// The *_bare members acquire and release without the critical region, for a
// caller already inside one (BM_RwSharedInRegion).
struct NtResource {
    nt::ERESOURCE r;
    NtResource() { nt::ExInitializeResourceLite(&r); }
    ~NtResource() { nt::ExDeleteResourceLite(&r); }
    NtResource(const NtResource&) = delete;
    void lock_shared_bare() { nt::ExAcquireResourceSharedLite(&r, nt::TRUE); }
    void unlock_shared_bare() { nt::ExReleaseResourceLite(&r); }
    void lock() {
        nt::KeEnterCriticalRegion();
        nt::ExAcquireResourceExclusiveLite(&r, nt::TRUE);
    }
    void unlock() {
        nt::ExReleaseResourceLite(&r);
        nt::KeLeaveCriticalRegion();
    }
    void lock_shared() {
        nt::KeEnterCriticalRegion();
        lock_shared_bare();
    }
    void unlock_shared() {
        unlock_shared_bare();
        nt::KeLeaveCriticalRegion();
    }
};
inline constexpr char kNtResource[] = "ERESOURCE";
template <>
struct RwAdapter<NtResource> : StdSharedLockable<NtResource, kNtResource> {};
#endif

#if KMLAB_BENCH_HAVE_NT_PUSH_LOCK
struct NtPushLock {
    nt::EX_PUSH_LOCK p;
    NtPushLock() { nt::ExInitializePushLock(&p); }
    void lock_shared_bare() { nt::ExAcquirePushLockShared(&p); }
    void unlock_shared_bare() { nt::ExReleasePushLockShared(&p); }
    void lock() {
        nt::KeEnterCriticalRegion();
        nt::ExAcquirePushLockExclusive(&p);
    }
    void unlock() {
        nt::ExReleasePushLockExclusive(&p);
        nt::KeLeaveCriticalRegion();
    }
    void lock_shared() {
        nt::KeEnterCriticalRegion();
        lock_shared_bare();
    }
    void unlock_shared() {
        unlock_shared_bare();
        nt::KeLeaveCriticalRegion();
    }
};
inline constexpr char kNtPushLock[] = "EX_PUSH_LOCK";
template <>
struct RwAdapter<NtPushLock> : StdSharedLockable<NtPushLock, kNtPushLock> {};
#endif

#if KMLAB_BENCH_HAVE_NT_EX_SPIN_LOCK
// ExAcquireSpinLockShared / Exclusive return the previous IRQL; each holder
// keeps its own in its scope, as a driver keeps it in a local.
struct NtExSpinLock {
    nt::EX_SPIN_LOCK l = 0;
};
inline constexpr char kNtExSpinLock[] = "EX_SPIN_LOCK";
template <>
struct RwAdapter<NtExSpinLock> {
    static std::string name() { return kNtExSpinLock; }
    static void lock_unlock(NtExSpinLock& l) {
        const nt::KIRQL old = nt::ExAcquireSpinLockExclusive(&l.l);
        nt::ExReleaseSpinLockExclusive(&l.l, old);
    }
    static void lock_shared_unlock(NtExSpinLock& l) {
        const nt::KIRQL old = nt::ExAcquireSpinLockShared(&l.l);
        nt::ExReleaseSpinLockShared(&l.l, old);
    }
    struct Scoped {
        explicit Scoped(NtExSpinLock& l) : lock(l), old(nt::ExAcquireSpinLockExclusive(&l.l)) {}
        ~Scoped() { nt::ExReleaseSpinLockExclusive(&lock.l, old); }
        NtExSpinLock& lock;
        nt::KIRQL old;
    };
    struct SharedScoped {
        explicit SharedScoped(NtExSpinLock& l) : lock(l), old(nt::ExAcquireSpinLockShared(&l.l)) {}
        ~SharedScoped() { nt::ExReleaseSpinLockShared(&lock.l, old); }
        NtExSpinLock& lock;
        nt::KIRQL old;
    };
};
#endif

// Whether L must be acquired inside a critical region (false for an adapter
// that does not say).
template <class L>
constexpr bool needs_region() {
    if constexpr (requires { RwAdapter<L>::needs_region; })
        return RwAdapter<L>::needs_region;
    else
        return false;
}

// Calls f.template operator()<L>() for every reader/writer lock whose family
// is in: kmlab's types, the NT routines, then the peers (absl::Mutex's reader
// locks where built).
template <class F>
void for_each_rw_lock(F&& f) {
#if KMLAB_BENCH_HAVE_RESOURCE
    f.template operator()<Resource<long>>();
#endif
#if KMLAB_BENCH_HAVE_PUSH_LOCK
    f.template operator()<PushLock<long>>();
#endif
#if KMLAB_BENCH_HAVE_RW_SPIN_LOCK
    f.template operator()<RwSpinLock<long>>();
#endif
#if KMLAB_BENCH_HAVE_NT_RESOURCE
    f.template operator()<NtResource>();
#endif
#if KMLAB_BENCH_HAVE_NT_PUSH_LOCK
    f.template operator()<NtPushLock>();
#endif
#if KMLAB_BENCH_HAVE_NT_EX_SPIN_LOCK
    f.template operator()<NtExSpinLock>();
#endif
    f.template operator()<std::shared_mutex>();
    f.template operator()<PthreadRwlock>();
    f.template operator()<tbb::spin_rw_mutex>();
    f.template operator()<tbb::queuing_rw_mutex>();
#ifdef KMLAB_HAVE_ABSL
    f.template operator()<AbslRwMutex>();
#endif
}

}  // namespace kmlab::bench
