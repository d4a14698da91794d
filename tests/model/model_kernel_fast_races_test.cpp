// Races of the dispatcher's fast paths (issue 20), each written to fail on
// the first version of them and kept as a regression test: a raise
// inside a WaitNext hold that left a busy mark to be taken back under the
// wrong lock (a lost wake-up in per-object mode), more objects in one hold
// than the hold's record held (an abort), and a foreign abandon of another
// mutant while the owner's fast release undid its list edit (a corrupt
// MutantListHead). Each states the behaviour the kernel must have.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kernel/bugcheck.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/thread.hpp>
#include "dispatcher_core.hpp"
#include "kernel_fast_program.hpp"
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

using namespace kmlab::nt;

using namespace kernel_fast;

// ---- Race 1: a raise inside a WaitNext hold leaves a stale hold claim ----
// KeSetEvent(E, Wait = TRUE) starts a hold; a routine called in it that
// raises (here KeReleaseMutex by a non-owner) claims its object in a section
// whose lock is the hold's (locked_ == false). raise_status() calls
// drop_wait_next_hold(), which ends the hold; then ~Section sees !locked_
// and park_claims() appends the claim to ThreadExtra::hold_claimed of a
// hold that no longer exists. The thread's next Section::unlock() runs
// release_hold_claims() under whatever lock that section holds: in the
// per-object mode a stripe that is not the mutex's.
struct Shared {
    KMUTEX m;
    KEVENT e;  // the hold's event
    KEVENT x;  // an unrelated event on another stripe
    bool check_stale = false;
};

void raise_in_hold(Shared* s) {
    KeSetEvent(&s->e, 0, TRUE);  // WaitNext hold
    try {
        KeReleaseMutex(&s->m, FALSE);  // not the owner: raises STATUS_MUTANT_NOT_OWNED
    } catch (const NtException&) {
    }
}

void stale_body() {
    static Shared s;
    s = Shared{};
    KeInitializeMutex(&s.m, 0);
    KeInitializeEvent(&s.e, SynchronizationEvent, FALSE);
    KeInitializeEvent(&s.x, NotificationEvent, FALSE);
    PKTHREAD self = KeGetCurrentThread();
    raise_in_hold(&s);
    check(self->WaitNext == FALSE, "the raise did not end the hold");
    check(self->Extra->hold_claims == 0,
          "a raise inside a WaitNext hold left a hold claim after the hold ended");
    KePulseEvent(&s.x, 0, FALSE);
    check(!busy(s.m.Header), "the mutex is left busy");
}

TEST(ModelKernelFastRaces, RaiseInsideHoldLeavesNoHoldClaim) {
    const Config c = config(Memory::sc);
    const Result r = run_in(dispatcher::LockMode::global, c, &stale_body);
    report("fast-path race: raise inside a hold leaves a hold claim", c, r);
    EXPECT_FALSE(r.violation) << r.describe();
}

// The consequence in the per-object mode: B's stale claim on M is taken back
// (IsListEmpty(M), then clear_busy(M)) under X's stripe only. W links its
// wait block on M under M's stripe between B's emptiness test and B's
// clear; the mark comes off with W waiting, A's fast release then frees M
// without waking W: W is never woken (lost wake-up).
void b_side(PVOID context) {
    auto* s = static_cast<Shared*>(context);
    raise_in_hold(s);
    KePulseEvent(&s->x, 0, FALSE);  // a section on X's stripe: clears M's mark
}
void w_side(PVOID context) {
    auto* s = static_cast<Shared*>(context);
    check(KeWaitForSingleObject(&s->m, Executive, KernelMode, FALSE, nullptr) == STATUS_SUCCESS,
          "W's wait on the mutex failed");
    KeReleaseMutex(&s->m, FALSE);
}
void lost_wake_body() {
    static Shared s;
    s = Shared{};
    KeInitializeMutex(&s.m, 0);
    KeInitializeEvent(&s.e, SynchronizationEvent, FALSE);
    KeInitializeEvent(&s.x, NotificationEvent, FALSE);
    label(&s.m, sizeof s.m, "m");
    label(&s.e, sizeof s.e, "e");
    label(&s.x, sizeof s.x, "x");
    // Give X and M stripes of their own (the model assigns them in order of
    // first use).
    KePulseEvent(&s.x, 0, FALSE);
    try {
        KeReleaseMutex(&s.m, FALSE);  // free, not owned: raises under M's stripe
    } catch (const NtException&) {
    }
    check(KeWaitForSingleObject(&s.m, Executive, KernelMode, FALSE, nullptr) == STATUS_SUCCESS,
          "A's acquisition failed");
    PKTHREAD b = nullptr;
    PKTHREAD w = nullptr;
    start(&b_side, &s, &b);
    start(&w_side, &s, &w);
    KeReleaseMutex(&s.m, FALSE);
    join(b);
    join(w);
    check(KeReadStateMutex(&s.m) == 1, "the KMUTEX is not free at the end");
}

TEST(ModelKernelFastRaces, StaleHoldClaimLosesWakeUpPerObject) {
    // Bound 2 finds the lost wake-up on the tree before the fix (33,780
    // schedules); KMLAB_MODEL_BOUND=3 (the soak) runs 2.4 million.
    for (int bound : {2}) {
        const Config c = config(Memory::sc, bound);
        const Result r = run_in(dispatcher::LockMode::per_object, c, &lost_wake_body);
        report("fast-path race: stale hold claim, per-object, bound " + std::to_string(bound), c,
               r);
        std::printf("%s\n", r.summary().c_str());
        EXPECT_FALSE(r.violation) << r.describe();
        if (r.violation) break;
    }
}

// Control: in the global mode the stale claim is taken back under the one
// lock, so the wake-up is not lost (the stale claim itself still is a bug).
TEST(ModelKernelFastRaces, StaleHoldClaimGlobalModeControl) {
    const Config c = config(Memory::sc);
    const Result r = run_in(dispatcher::LockMode::global, c, &lost_wake_body);
    report("fast-path race: stale hold claim, global (control)", c, r);
    EXPECT_FALSE(r.violation) << r.describe();
}

// ---- Race 3: the hold-claim array is a fixed 64 ----
// Routines called inside a WaitNext hold neither take nor release the lock
// (dispatcher_core.hpp, Section::Kind::Routine); each parks its claim in
// ThreadExtra::hold_claimed, 64 entries: the 65th distinct object aborts the
// process. Before the change such a hold ran to its wait.
int g_in_hold = 65;
void many_in_hold_body() {
    static KEVENT events[66];
    for (auto& e : events) KeInitializeEvent(&e, NotificationEvent, FALSE);
    KeSetEvent(&events[0], 0, TRUE);                                        // the hold
    for (int i = 1; i <= g_in_hold; ++i) KeSetEvent(&events[i], 0, FALSE);  // inside it
    LARGE_INTEGER zero{};
    KeWaitForSingleObject(&events[0], Executive, KernelMode, FALSE, &zero);  // ends it
}
TEST(ModelKernelFastRacesDeathTest, SixtyThreeObjectsInOneHoldControl) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    g_in_hold = 63;  // 64 objects with the hold's own: fits
    const Config c = config(Memory::sc);
    EXPECT_EXIT(
        {
            const Result r = run_in(dispatcher::LockMode::global, c, &many_in_hold_body);
            std::exit(r.violation ? 2 : 0);
        },
        ::testing::ExitedWithCode(0), "");
    g_in_hold = 65;
}
TEST(ModelKernelFastRacesDeathTest, SixtyFiveObjectsInOneHoldDoNotAbort) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const Config c = config(Memory::sc);
    EXPECT_EXIT(
        {
            const Result r = run_in(dispatcher::LockMode::global, c, &many_in_hold_body);
            std::exit(r.violation ? 2 : 0);
        },
        ::testing::ExitedWithCode(0), "");
}

// ---- Race 2b: the same abandon on *another* mutant the owner holds ----
// A owns M2 then M1 (A's list: head, M2, M1). B deletes M2 (ExpDeleteMutant:
// KeReleaseMutant(M2, Abandon = TRUE) from a non-owner, under the lock), W
// waits for M1. A's fast release of M1 unlinks M1 (prev = M2's entry); B
// unlinks M2 from A's list; W marks M1 busy, so A's compare-exchange fails
// and the undo re-inserts M1 after M2's stale entry: A's list head is left
// with Flink == head but Blink != head, and M1's slow release then points
// head.Blink at M2's entry.
struct TwoShared {
    KMUTEX m1;
    KMUTEX m2;
};
void delete_m2(PVOID context) {
    auto* s = static_cast<TwoShared*>(context);
    KeReleaseMutant(&s->m2, MUTANT_INCREMENT, TRUE, FALSE);
}
void wait_m1(PVOID context) {
    auto* s = static_cast<TwoShared*>(context);
    check(KeWaitForSingleObject(&s->m1, Executive, KernelMode, FALSE, nullptr) == STATUS_SUCCESS,
          "W's wait on M1 failed");
    KeReleaseMutex(&s->m1, FALSE);
}
void two_body() {
    static TwoShared s;
    s = TwoShared{};
    KeInitializeMutex(&s.m1, 0);
    KeInitializeMutex(&s.m2, 0);
    label(&s.m1, sizeof s.m1, "m1");
    label(&s.m2, sizeof s.m2, "m2");
    PKTHREAD self = KeGetCurrentThread();
    check(KeWaitForSingleObject(&s.m2, Executive, KernelMode, FALSE, nullptr) == STATUS_SUCCESS,
          "A's M2 failed");
    check(KeWaitForSingleObject(&s.m1, Executive, KernelMode, FALSE, nullptr) == STATUS_SUCCESS,
          "A's M1 failed");
    PKTHREAD b = nullptr;
    PKTHREAD w = nullptr;
    start(&delete_m2, &s, &b);
    start(&wait_m1, &s, &w);
    KeReleaseMutex(&s.m1, FALSE);
    join(b);
    join(w);
    // M2 was abandoned by B: A's critical region for it was left by B's
    // release (owner->KernelApcDisable += ApcDisable).
    const PLIST_ENTRY head = &self->MutantListHead;
    check(head->Flink == head && head->Blink == head,
          "A's MutantListHead is not a consistent empty list");
    check(KeReadStateMutex(&s.m1) == 1 && KeReadStateMutex(&s.m2) == 1,
          "a mutex is not free at the end");
}
TEST(ModelKernelFastRaces, AbandonOfAnotherMutantDuringFastReleaseUndo) {
    for (auto mode : {dispatcher::LockMode::global, dispatcher::LockMode::per_object}) {
        const Config c = config(Memory::sc);
        const Result r = run_in(mode, c, &two_body);
        report("fast-path race: abandon of another mutant during the fast release's undo", c, r);
        std::printf("%s\n", r.summary().c_str());
        EXPECT_FALSE(r.violation) << r.describe();
    }
}

}  // namespace
}  // namespace kmlab::explore
