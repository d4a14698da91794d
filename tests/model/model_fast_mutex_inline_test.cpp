// The inline FAST_MUTEX / KGUARDED_MUTEX routines (kmlab/kernel/
// fast_mutex_inline.hpp, issue 20) under explore::run(). Inline code is
// compiled here, where no link seam reaches it; in a program that links the
// explorer's copy of kernel/src/fast_mutex.cpp, as this one does, the inline
// routines' own thread-local (kernel::detail::tls_gate_lock_thread) is never
// set, so every call fails into the out-of-line routines, whose explorer
// copies go through the model. These tests show the explorer still
// interleaving Count and Owner there:
//  * a known-bad program (it asserts that a mutex whose lock bit is taken
//    names an owner, which is false inside an acquire, between the Count
//    acquire and the Owner store, and inside a release, between the Owner
//    clear and the Count release) is reported through the public routines:
//    the explorer preempts the holder inside the routine;
//  * the escape's mutant (gate_lock::Escape::no_model_escape: the inline
//    routine takes tls_current_thread, which the explorer sets per model
//    thread; test-only) runs the holder's routines natively, with no
//    scheduling point between Count and Owner, and the same program is then
//    NOT reported: the must-find test above is what fails for it;
//  * the public routines at 3 x 1 (threads x acquisitions), sc and tso,
//    exhaustive within the bound, with no violation.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include <kmlab/explore.hpp>
#include <kmlab/kernel/routines.hpp>
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

using namespace kmlab::nt;
using nt::gate_lock::Escape;

Config base_config(Memory m) {
    Config c;
    c.memory = m;
    c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
    return c;
}

// PsCreateSystemThread, then the driver's join (as model_kernel_test.cpp).
void start(PKSTART_ROUTINE routine, PVOID context, PKTHREAD* thread) {
    HANDLE h = nullptr;
    check(PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, nullptr, routine,
                               context) == STATUS_SUCCESS,
          "PsCreateSystemThread failed");
    PVOID object = nullptr;
    check(ObReferenceObjectByHandle(h, SYNCHRONIZE, *PsThreadType, KernelMode, &object, nullptr) ==
              STATUS_SUCCESS,
          "ObReferenceObjectByHandle failed");
    ZwClose(h);
    *thread = static_cast<PKTHREAD>(object);
}
void join(PKTHREAD thread) {
    check(KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, nullptr) == STATUS_SUCCESS,
          "the join's wait failed");
    ObDereferenceObject(thread);
}

struct Mutexes {
    FAST_MUTEX fast;
    KGUARDED_MUTEX guarded;
    Atomic<int> data{0};  // model memory: a holder can be preempted inside
    int in_cs = 0;
};

// One acquisition and release through the inline routines, with escape E.
template <bool G, Escape E>
void acquire(Mutexes& s) {
    if constexpr (G)
        gate_lock::guarded_mutex_acquire<E>(&s.guarded);
    else
        gate_lock::fast_mutex_acquire<E>(&s.fast);
}
template <bool G, Escape E>
void release(Mutexes& s) {
    if constexpr (G)
        gate_lock::guarded_mutex_release<E>(&s.guarded);
    else
        gate_lock::fast_mutex_release<E>(&s.fast);
}

// ---- the window between Count and Owner ----
template <bool G, Escape E>
void holder(PVOID context) {
    auto& s = *static_cast<Mutexes*>(context);
    acquire<G, E>(s);
    release<G, E>(s);
}

// T0 tries the mutex while T1 takes and frees it; when the try fails, the
// mutex is held, and the program (wrongly) asserts that it names an owner.
template <bool G, Escape E>
void window_body() {
    Mutexes s;
    ExInitializeFastMutex(&s.fast);
    KeInitializeGuardedMutex(&s.guarded);
    label(&s.fast, sizeof s.fast, "fm");
    label(&s.guarded, sizeof s.guarded, "gm");
    check(kernel::detail::tls_gate_lock_thread == nullptr,
          "a model thread whose inline routines bypass the explorer");
    PKTHREAD a = nullptr;
    start(&holder<G, E>, &s, &a);
    const bool got = G ? KeTryToAcquireGuardedMutex(&s.guarded) != FALSE
                       : ExTryToAcquireFastMutex(&s.fast) != FALSE;
    if (got) {
        if constexpr (G)
            KeReleaseGuardedMutex(&s.guarded);
        else
            ExReleaseFastMutex(&s.fast);
    } else {
        PKTHREAD& owner = G ? s.guarded.Owner : s.fast.Owner;
        check(AtomicRef<PKTHREAD>(owner).load() != nullptr, "the mutex is held and names no owner");
    }
    join(a);
}

TEST(ModelFastMutexInline, HeldWithoutOwnerWindowFoundThroughInlineRoutines) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        // Bound 2 in every build (the sanitizers' lowered bound 1 misses the
        // window): a few hundred schedules.
        Config c = base_config(m);
        c.preemption_bound = std::max(2, bound_override());
        const Result f = run(c, &window_body<false, Escape::faithful>);
        report("inline FAST_MUTEX: held-without-owner window (must find)", c, f);
        EXPECT_TRUE(f.violation);
        EXPECT_NE(f.what.find("names no owner"), std::string::npos) << f.what;
        const Result g = run(c, &window_body<true, Escape::faithful>);
        report("inline KGUARDED_MUTEX: held-without-owner window (must find)", c, g);
        EXPECT_TRUE(g.violation);
        EXPECT_NE(g.what.find("names no owner"), std::string::npos) << g.what;
    }
}

// The mutant: the holder's inline routines take tls_current_thread and run
// natively; Count and Owner change with no scheduling point between them,
// and the window above is never seen. Exhaustive, and clean: the must-find
// test above fails for this mutant.
TEST(ModelFastMutexInline, EscapeMutantHidesTheWindow) {
    const Config c = base_config(Memory::sc);
    const Result f = run(c, &window_body<false, Escape::no_model_escape>);
    report("inline FAST_MUTEX without the model escape (mutant: window unseen)", c, f);
    EXPECT_FALSE(f.violation) << describe(f);
    EXPECT_TRUE(f.complete);
    const Result g = run(c, &window_body<true, Escape::no_model_escape>);
    report("inline KGUARDED_MUTEX without the model escape (mutant: window unseen)", c, g);
    EXPECT_FALSE(g.violation) << describe(g);
    EXPECT_TRUE(g.complete);
}

// ---- the public routines, exhaustive ----
template <bool G, int Ops>
void worker(PVOID context) {
    auto& s = *static_cast<Mutexes*>(context);
    for (int i = 0; i < Ops; ++i) {
        if constexpr (G)
            KeAcquireGuardedMutex(&s.guarded);
        else
            ExAcquireFastMutex(&s.fast);
        check(++s.in_cs == 1, "two threads own the mutex");
        s.data.store(s.data.load() + 1);
        --s.in_cs;
        if constexpr (G)
            KeReleaseGuardedMutex(&s.guarded);
        else
            ExReleaseFastMutex(&s.fast);
    }
}

// T0 and Threads - 1 system threads, Ops acquisitions each.
template <bool G, int Threads, int Ops>
void workers_body() {
    Mutexes s;
    ExInitializeFastMutex(&s.fast);
    KeInitializeGuardedMutex(&s.guarded);
    label(&s.fast, sizeof s.fast, "fm");
    label(&s.guarded, sizeof s.guarded, "gm");
    PKTHREAD t[Threads - 1] = {};
    for (auto& th : t) start(&worker<G, Ops>, &s, &th);
    worker<G, Ops>(&s);
    for (auto* th : t) join(th);
    check(s.data.load() == Threads * Ops, "a write made under the mutex was lost");
    check((G ? s.guarded.Count : s.fast.Count) == FM_LOCK_BIT, "the mutex is not free at the end");
    check((G ? s.guarded.Owner : s.fast.Owner) == nullptr, "the mutex still names an owner");
    PKTHREAD me = KeGetCurrentThread();
    check(me->Irql == PASSIVE_LEVEL && me->CombinedApcDisable == 0,
          "T0 left at a raised IRQL or in a region");
}

template <bool G, int Threads, int Ops>
void explore_workers(const char* name) {
    for (Memory m : {Memory::sc, Memory::tso}) {
        const Config c = base_config(m);
        const Result r = run(c, &workers_body<G, Threads, Ops>);
        report(name, c, r);
        EXPECT_FALSE(r.violation) << describe(r);
        EXPECT_TRUE(r.complete);
    }
}

TEST(ModelFastMutexInline, FastMutexRoutines3x1) {
    explore_workers<false, 3, 1>("inline FAST_MUTEX routines 3x1");
}
TEST(ModelFastMutexInline, GuardedMutexRoutines3x1) {
    explore_workers<true, 3, 1>("inline KGUARDED_MUTEX routines 3x1");
}

}  // namespace
}  // namespace kmlab::explore
