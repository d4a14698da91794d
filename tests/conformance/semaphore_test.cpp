// SEMANTICS.md 4.3: semaphores.
#include <atomic>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using Semaphore = Nt;

namespace {
NTSTATUS poll(PVOID o) {
    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    return KeWaitForSingleObject(o, Executive, KernelMode, FALSE, &zero);
}
}  // namespace

TEST_F(Semaphore, ReleaseReturnsThePreviousCountAndWaitsDecrement) {
    KSEMAPHORE s;
    KeInitializeSemaphore(&s, 0, 3);
    EXPECT_EQ(s.Header.Type, SemaphoreObject);
    EXPECT_EQ(s.Limit, 3);
    EXPECT_EQ(KeReadStateSemaphore(&s), 0);
    EXPECT_EQ(poll(&s), STATUS_TIMEOUT);
    EXPECT_EQ(KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, 2, FALSE), 0);
    EXPECT_EQ(KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, 1, FALSE), 2);
    EXPECT_EQ(poll(&s), STATUS_SUCCESS);
    EXPECT_EQ(KeReadStateSemaphore(&s), 2);
    EXPECT_EQ(poll(&s), STATUS_SUCCESS);
    EXPECT_EQ(poll(&s), STATUS_SUCCESS);
    EXPECT_EQ(poll(&s), STATUS_TIMEOUT);
}

TEST_F(Semaphore, PassingTheLimitRaisesAndChangesNothing) {
    KSEMAPHORE s;
    KeInitializeSemaphore(&s, 2, 3);
    EXPECT_RAISES(KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, 2, FALSE),
                  STATUS_SEMAPHORE_LIMIT_EXCEEDED);
    EXPECT_EQ(KeReadStateSemaphore(&s), 2);
    EXPECT_RAISES(KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, -1, FALSE),
                  STATUS_SEMAPHORE_LIMIT_EXCEEDED);
    EXPECT_EQ(KeReadStateSemaphore(&s), 2);
    KSEMAPHORE big;
    KeInitializeSemaphore(&big, MAXLONG, MAXLONG);
    EXPECT_RAISES(KeReleaseSemaphore(&big, SEMAPHORE_INCREMENT, 1, FALSE),
                  STATUS_SEMAPHORE_LIMIT_EXCEEDED);
}

TEST_F(Semaphore, AReleaseOfNWakesNWaiters) {
    KSEMAPHORE s;
    KeInitializeSemaphore(&s, 0, 10);
    std::atomic<int> woken{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 3; ++i) {
        waiters.emplace_back([&] {
            EXPECT_EQ(KeWaitForSingleObject(&s, Executive, KernelMode, FALSE, nullptr),
                      STATUS_SUCCESS);
            woken.fetch_add(1);
        });
    }
    ASSERT_TRUE(kmlab::test::waiters_reach(&s, 3));
    KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, 2, FALSE);
    ASSERT_TRUE(kmlab::test::eventually([&] { return woken.load() == 2; }));
    EXPECT_EQ(kmlab::dispatcher::waiter_count(&s), 1u);
    EXPECT_EQ(KeReadStateSemaphore(&s), 0);
    KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, 1, FALSE);
    for (auto& w : waiters) w.join();
    EXPECT_EQ(woken.load(), 3);
}
