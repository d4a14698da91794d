// A raise or bug check thrown inside a Wait = TRUE hold (SEMANTICS.md 4.4;
// kernel/src/dispatcher_core.hpp, Section): the dispatcher lock the thread kept
// for its next KeWaitXxx is given back, and the IRQL restored to WaitIrql,
// before the exception leaves the dispatcher; otherwise every other thread
// deadlocks on the lock. ctest runs this suite in both lock modes (the
// per_object_dispatcher label sets KMLAB_DISPATCHER_LOCK=per-object).
#include <functional>
#include <future>

#include "support.hpp"

using namespace kmlab::nt;
using namespace std::chrono_literals;
using kmlab::test::Nt;
namespace bugcheck = kmlab::bugcheck;

namespace {

// How the calling thread enters its Wait = TRUE hold.
enum class Hold { SetEvent, ReleaseMutex };

class WaitNextHold : public Nt, public ::testing::WithParamInterface<Hold> {
  protected:
    void SetUp() override {
        KeInitializeEvent(&event_, SynchronizationEvent, FALSE);
        KeInitializeMutex(&owned_, 0);
    }

    void enter_hold() {
        if (GetParam() == Hold::SetEvent) {
            KeSetEvent(&event_, IO_NO_INCREMENT, TRUE);
        } else {
            ASSERT_EQ(KeWaitForSingleObject(&owned_, Executive, KernelMode, FALSE, nullptr),
                      STATUS_SUCCESS);
            KeReleaseMutex(&owned_, TRUE);
        }
        ASSERT_TRUE(KeGetCurrentThread()->WaitNext);
        ASSERT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    }

    // After the exception was caught: the hold is over, the IRQL is back to
    // the one saved in WaitIrql, and another thread can set and wait on an
    // object within a bound (a regression fails here instead of hanging).
    void expect_the_dispatcher_lock_was_given_back() {
        PKTHREAD t = KeGetCurrentThread();
        EXPECT_FALSE(t->WaitNext) << "the exception left the Wait = TRUE hold in place";
        EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL) << "WaitIrql not restored";
        std::promise<NTSTATUS> done;
        auto result = done.get_future();
        std::thread other([&] {
            KEVENT e;
            KeInitializeEvent(&e, SynchronizationEvent, FALSE);
            KeSetEvent(&e, IO_NO_INCREMENT, FALSE);
            done.set_value(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nullptr));
        });
        const bool finished = result.wait_for(5s) == std::future_status::ready;
        EXPECT_TRUE(finished) << "another thread is deadlocked on the dispatcher lock";
        if (!finished && t->WaitNext) {
            // Let the blocked thread finish so that the suite does not hang:
            // a wait ends the hold.
            KEVENT signaled;
            KeInitializeEvent(&signaled, NotificationEvent, TRUE);
            KeWaitForSingleObject(&signaled, Executive, KernelMode, FALSE, nullptr);
        }
        other.join();
        if (finished) {
            EXPECT_EQ(result.get(), STATUS_SUCCESS);
        }
    }

    KEVENT event_;
    KMUTEX owned_;
};

INSTANTIATE_TEST_SUITE_P(, WaitNextHold, ::testing::Values(Hold::SetEvent, Hold::ReleaseMutex),
                         [](const ::testing::TestParamInfo<Hold>& p) {
                             return p.param == Hold::SetEvent ? "AfterKeSetEvent"
                                                              : "AfterKeReleaseMutex";
                         });

}  // namespace

TEST_P(WaitNextHold, ReleasingAMutexTheThreadDoesNotOwnRaisesAndGivesTheLockBack) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    enter_hold();
    EXPECT_RAISES(KeReleaseMutex(&m, FALSE), STATUS_MUTANT_NOT_OWNED);
    expect_the_dispatcher_lock_was_given_back();
}

TEST_P(WaitNextHold, ASemaphoreOverItsLimitRaisesAndGivesTheLockBack) {
    KSEMAPHORE s;
    KeInitializeSemaphore(&s, 1, 1);
    enter_hold();
    EXPECT_RAISES(KeReleaseSemaphore(&s, IO_NO_INCREMENT, 1, FALSE),
                  STATUS_SEMAPHORE_LIMIT_EXCEEDED);
    expect_the_dispatcher_lock_was_given_back();
}

TEST_P(WaitNextHold, ARoutineAboveItsIrqlCeilingBugChecksAndGivesTheLockBack) {
    KEVENT other;
    KeInitializeEvent(&other, NotificationEvent, FALSE);
    enter_hold();
    // Wait = TRUE needs IRQL <= APC_LEVEL; the hold runs at DISPATCH_LEVEL.
    EXPECT_BUG_CHECK(KeSetEvent(&other, IO_NO_INCREMENT, TRUE), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    expect_the_dispatcher_lock_was_given_back();
}

TEST_P(WaitNextHold, AFastMutexAcquiredInsideTheHoldBugChecksAndGivesTheLockBack) {
    FAST_MUTEX fm;
    ExInitializeFastMutex(&fm);
    enter_hold();
    EXPECT_BUG_CHECK(ExAcquireFastMutex(&fm), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    expect_the_dispatcher_lock_was_given_back();
}

TEST_P(WaitNextHold, TooManyObjectsInTheNextWaitBugChecksAndGivesTheLockBack) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, TRUE);
    PVOID objects[4] = {&e, &e, &e, &e};
    enter_hold();
    EXPECT_BUG_CHECK(KeWaitForMultipleObjects(4, objects, WaitAny, Executive, KernelMode, FALSE,
                                              nullptr, nullptr),
                     bugcheck::MAXIMUM_WAIT_OBJECTS_EXCEEDED);
    expect_the_dispatcher_lock_was_given_back();
}

TEST_P(WaitNextHold, TheMutantLimitInTheNextWaitRaisesAndGivesTheLockBack) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    ASSERT_EQ(KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    m.Header.SignalState = MINLONG;
    enter_hold();
    EXPECT_RAISES(KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr),
                  STATUS_MUTANT_LIMIT_EXCEEDED);
    expect_the_dispatcher_lock_was_given_back();
    m.Header.SignalState = 0;
    KeReleaseMutex(&m, FALSE);
}
