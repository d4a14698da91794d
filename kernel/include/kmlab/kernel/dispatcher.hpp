// The emulated dispatcher's public face below the NT routines: how its
// database is locked, lock-free reads of object fields, how many threads
// wait on an object, and the gate the FAST_MUTEX algorithm sleeps on. The
// NT routines themselves are <kmlab/kernel/routines.hpp>; the dispatcher's
// internals (sections, wait blocks, the wait test) are private to
// kernel/src.
#pragma once

#include <atomic>

#include <kmlab/kernel/objects.hpp>
#include <kmlab/platform/deadline.hpp>

namespace kmlab::dispatcher {

using namespace kmlab::nt;

// How the dispatcher database is locked (S8 of BENCHMARKING.md compares them):
//  * global: one lock for everything, as NT did before Windows 7 and ReactOS
//    does (SEMANTICS.md 4.4). The default.
//  * per_object: a lock per object (hashed onto 64 padded stripes), as
//    Windows 7 moved to. An operation on one object (set, release, a
//    single-object wait) takes only that object's stripe; anything that
//    spans objects or reaches into another thread's wait (multi-object
//    waits, alerts, user APCs, thread rundown, a Wait =
//    TRUE hold) takes every stripe, in index order. A single-object
//    operation that finds a multi-object waiter on its object's list takes
//    every stripe instead, since satisfying that waiter unlinks its blocks
//    from other objects (a multi-object waiter is queued under every stripe,
//    so the check cannot race with one arriving).
// Switch only while no dispatcher operation is in flight (between benchmark
// runs); KMLAB_DISPATCHER_LOCK=per-object selects it at start-up.
enum class LockMode { global, per_object };
void set_lock_mode(LockMode mode) noexcept;
LockMode lock_mode() noexcept;

// SignalState accessors: written under the lock, read with or without it.
inline LONG load_state(const DISPATCHER_HEADER* h) noexcept {
    return std::atomic_ref<LONG>(const_cast<LONG&>(h->SignalState)).load(std::memory_order_relaxed);
}
inline void store_state(DISPATCHER_HEADER* h, LONG v) noexcept {
    std::atomic_ref<LONG>(h->SignalState).store(v, std::memory_order_relaxed);
}
// Owner fields (KMUTANT.OwnerThread, FAST_MUTEX.Owner, KGUARDED_MUTEX.Owner)
// likewise: written by or for the owner, compared lock-free by a thread
// asking "do I own it?", which relaxed ordering answers correctly.
inline PKTHREAD load_owner(const PKTHREAD& field) noexcept {
    return std::atomic_ref<PKTHREAD>(const_cast<PKTHREAD&>(field)).load(std::memory_order_relaxed);
}
inline void store_owner(PKTHREAD& field, PKTHREAD t) noexcept {
    std::atomic_ref<PKTHREAD>(field).store(t, std::memory_order_relaxed);
}
inline PKTHREAD load_owner(const KMUTANT* m) noexcept {
    return load_owner(m->OwnerThread);
}
inline void store_owner(KMUTANT* m, PKTHREAD t) noexcept {
    store_owner(m->OwnerThread, t);
}
// An object's Type, which never changes after initialization, read as an
// atomic: the dispatcher's fast paths rewrite the header's first eight
// bytes whole with a compare-exchange (kernel/src/dispatcher_core.hpp), and a
// plain read beside one is a data race for the C++ memory model (and for
// ThreadSanitizer) though not for x86.
inline UCHAR load_type(const DISPATCHER_HEADER* h) noexcept {
    return std::atomic_ref<UCHAR>(const_cast<UCHAR&>(h->Type)).load(std::memory_order_relaxed);
}
inline DISPATCHER_HEADER* header_of(PVOID object) noexcept {
    return static_cast<DISPATCHER_HEADER*>(object);
}

// Number of wait blocks queued on `object` (read under the lock): lets tests
// and benchmarks know that a thread has really blocked.
ULONG waiter_count(PVOID object);

// KeWaitForSingleObject(mutex, Executive, KernelMode, FALSE, timeout), IRQL
// rule and bug check included, for a caller that holds a Deadline rather
// than a LARGE_INTEGER (KMutex over the Dispatcher backend): converting one
// to the other and back would round twice and read the clock twice.
// Deadline::poll() is the zero timeout. No timeout pointer exists here, so
// the 0xC4/0x3B bug check reports 0 as its parameter 4, as for a NULL one.
NTSTATUS wait_for_mutex(PKMUTEX mutex, Deadline deadline);
// The same wait, alertable in `mode` (Alertable = TRUE, WaitMode = mode): it
// may also end with STATUS_ALERTED or, in UserMode, STATUS_USER_APC, after
// the thread's queued user APCs have run, as KeWaitForSingleObject does. A
// function of its own, so that the non-alertable wait's callers pass nothing
// more.
NTSTATUS wait_for_mutex_alertable(PKMUTEX mutex, Deadline deadline, KPROCESSOR_MODE mode);

// A lock_bit gate (<kmlab/kernel/lock_bit.hpp>) over a dispatcher object that
// behaves as a synchronization event (a FAST_MUTEX's KEVENT, a
// KGUARDED_MUTEX's KGATE): wait() blocks in the dispatcher until signalled,
// signal() sets the object.
struct ObjectGate {
    void* object;  // PKEVENT or PKGATE
    void wait();
    void signal();
};

}  // namespace kmlab::dispatcher
