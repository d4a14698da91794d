// ERESOURCE: the kmtest ntos_ex/ExResource.c port [kmt-ExResource] (fields,
// recursion, Wait = FALSE, the three shared routines' starvation rules with
// threads that really block, conversion, owner pointers), and each rule of
// rules_resource.hpp with its bug check [bc:0xC4][bc:0xE3].
#include <atomic>
#include <cstring>
#include <functional>
#include <thread>

#include <kmlab/kernel/resource.hpp>
#include <kmlab/kernel/resource_algorithm.hpp>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::eventually;
using kmlab::test::Nt;
using Resource = Nt;
namespace bugcheck = kmlab::bugcheck;

namespace {

// CheckResourceStatus of the kmtest.
void check_status(PERESOURCE r, bool exclusive, ULONG shared, ULONG exclusive_waiters,
                  ULONG shared_waiters) {
    EXPECT_EQ(ExIsResourceAcquiredExclusiveLite(r) != FALSE, exclusive);
    EXPECT_EQ(ExIsResourceAcquiredSharedLite(r), shared);
    EXPECT_EQ(ExGetExclusiveWaiterCount(r), exclusive_waiters);
    EXPECT_EQ(ExGetSharedWaiterCount(r), shared_waiters);
}

SHORT active_count(PERESOURCE r) {
    return static_cast<SHORT>(std::atomic_ref<ULONG>(r->ActiveState).load() & 0xFFFF);
}
USHORT flag(PERESOURCE r) {
    return static_cast<USHORT>(std::atomic_ref<ULONG>(r->ActiveState).load() >> 16);
}

// True once `n` threads really block (a dispatcher wait block queued) on the
// waiter object `field` points to, which the first waiter allocates.
template <class T>
bool blocked_on(T* const& field, unsigned n) {
    return eventually([&] {
        T* object = std::atomic_ref<T*>(const_cast<T*&>(field)).load(std::memory_order_acquire);
        return object != nullptr && kmlab::dispatcher::waiter_count(object) >= n;
    });
}

using AcquireFn = BOOLEAN (*)(PERESOURCE, BOOLEAN);

// The kmtest's AcquireResourceThread: acquires inside a critical region,
// reports, holds until finished, releases.
class Worker {
  public:
    Worker(PERESOURCE r, AcquireFn acquire, bool wait) {
        thread_ = std::thread([=, this] {
            KeEnterCriticalRegion();
            const bool got = acquire(r, wait ? TRUE : FALSE) != FALSE;
            got_ = got;
            returned_ = true;
            while (!finish_) std::this_thread::yield();
            if (got) ExReleaseResourceLite(r);
            KeLeaveCriticalRegion();
        });
    }
    ~Worker() {
        if (thread_.joinable()) finish();
    }
    bool returned() const { return returned_; }
    bool wait_returned() {
        return eventually([&] { return returned_.load(); });
    }
    bool got() const { return got_; }
    void finish() {
        finish_ = true;
        thread_.join();
    }

  private:
    std::thread thread_;
    std::atomic<bool> returned_{false};
    std::atomic<bool> got_{false};
    std::atomic<bool> finish_{false};
};

struct ScopedFlavor {
    explicit ScopedFlavor(kmlab::Flavor f) : old(kmlab::flavor()) { kmlab::set_flavor(f); }
    ~ScopedFlavor() { kmlab::set_flavor(old); }
    kmlab::Flavor old;
};

}  // namespace

TEST_F(Resource, InitializeClearsEveryField) {
    ERESOURCE r;
    std::memset(&r, 0x55, sizeof r);
    ASSERT_EQ(ExInitializeResourceLite(&r), STATUS_SUCCESS);
    // CheckResourceFields [kmt-ExResource]
    EXPECT_EQ(r.SystemResourcesList.Flink->Blink, &r.SystemResourcesList);
    EXPECT_EQ(r.SystemResourcesList.Blink->Flink, &r.SystemResourcesList);
    EXPECT_EQ(r.OwnerTable, nullptr);
    EXPECT_EQ(r.ActiveCount, 0);
    EXPECT_EQ(r.Flag, 0u);
    EXPECT_EQ(r.SharedWaiters, nullptr);
    EXPECT_EQ(r.ExclusiveWaiters, nullptr);
    EXPECT_EQ(r.OwnerEntry.OwnerThread, 0u);
    EXPECT_EQ(r.OwnerEntry.TableSize, 0u);
    EXPECT_EQ(r.ActiveEntries, 0u);
    EXPECT_EQ(r.ContentionCount, 0u);
    EXPECT_EQ(r.NumberOfSharedWaiters, 0u);
    EXPECT_EQ(r.NumberOfExclusiveWaiters, 0u);
    EXPECT_EQ(r.Reserved2, nullptr) << "the 2003 layout's ContentionCount overlays it";
    EXPECT_EQ(r.Address, nullptr);
    EXPECT_EQ(r.SpinLock, 0u);
    check_status(&r, false, 0, 0, 0);
    EXPECT_EQ(ExDeleteResourceLite(&r), STATUS_SUCCESS);
}

TEST_F(Resource, InitializeAtDispatchLevelDeleteAtApcLevel) {
    ERESOURCE r;
    const KIRQL old = KeRaiseIrqlToDpcLevel();
    EXPECT_EQ(ExInitializeResourceLite(&r), STATUS_SUCCESS);
    KeLowerIrql(APC_LEVEL);
    EXPECT_EQ(ExDeleteResourceLite(&r), STATUS_SUCCESS);
    KeLowerIrql(old);
}

TEST_F(Resource, InitializeNullRaisesAccessViolation) {
    EXPECT_RAISES(ExInitializeResourceLite(nullptr), static_cast<NTSTATUS>(0xC0000005));
}

// TestResourceSharedAccess [kmt-ExResource].
TEST_F(Resource, SharedAccessIsRecursive) {
    ScopedFlavor checked(kmlab::Flavor::checked);  // checked-build and verifier rules
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ULONG count = 0;
    ASSERT_TRUE(ExAcquireResourceSharedLite(&r, FALSE));
    ++count;
    check_status(&r, false, count, 0, 0);
    EXPECT_TRUE(ExAcquireResourceSharedLite(&r, FALSE));
    EXPECT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
    EXPECT_TRUE(ExAcquireSharedStarveExclusive(&r, FALSE));
    EXPECT_TRUE(ExAcquireSharedStarveExclusive(&r, TRUE));
    EXPECT_TRUE(ExAcquireSharedWaitForExclusive(&r, FALSE));
    EXPECT_TRUE(ExAcquireSharedWaitForExclusive(&r, TRUE));
    count += 6;
    check_status(&r, false, count, 0, 0);
    EXPECT_EQ(active_count(&r), 1) << "recursion does not count";
    // "this one fails, TRUE would deadlock"
    EXPECT_FALSE(ExAcquireResourceExclusiveLite(&r, FALSE));
    check_status(&r, false, count, 0, 0);
    {
        // "this asserts" on a checked build; nothing changes on a free one.
        auto bc = EXPECT_BUG_CHECK(ExConvertExclusiveToSharedLite(&r),
                                   bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
        EXPECT_EQ(bc.parameter(1), static_cast<ULONG>(STATUS_BREAKPOINT));
        ScopedFlavor free(kmlab::Flavor::free);
        ExConvertExclusiveToSharedLite(&r);
        check_status(&r, false, count, 0, 0);
    }
    while (count--) ExReleaseResourceLite(&r);
    KeLeaveCriticalRegion();
    check_status(&r, false, 0, 0, 0);
    EXPECT_EQ(active_count(&r), 0);
    ExDeleteResourceLite(&r);
}

// TestResourceExclusiveAccess [kmt-ExResource]: a shared request by the
// exclusive owner counts as exclusive; conversion keeps the count.
TEST_F(Resource, ExclusiveAccessIsRecursiveAndConverts) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ULONG count = 0;
    ASSERT_TRUE(ExAcquireResourceExclusiveLite(&r, FALSE));
    ++count;
    check_status(&r, true, count, 0, 0);
    EXPECT_EQ(r.OwnerEntry.OwnerThread, ExGetCurrentResourceThread());
    EXPECT_EQ(r.OwnerEntry.OwnerCount, 1u);
    EXPECT_EQ(flag(&r) & ResourceOwnedExclusive, ResourceOwnedExclusive);
    EXPECT_TRUE(ExAcquireResourceExclusiveLite(&r, TRUE));
    ++count;
    check_status(&r, true, count, 0, 0);
    EXPECT_TRUE(ExAcquireResourceSharedLite(&r, FALSE));
    EXPECT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
    EXPECT_TRUE(ExAcquireSharedStarveExclusive(&r, FALSE));
    EXPECT_TRUE(ExAcquireSharedStarveExclusive(&r, TRUE));
    EXPECT_TRUE(ExAcquireSharedWaitForExclusive(&r, FALSE));
    EXPECT_TRUE(ExAcquireSharedWaitForExclusive(&r, TRUE));
    count += 6;
    check_status(&r, true, count, 0, 0);
    EXPECT_EQ(r.OwnerEntry.OwnerCount, count);
    EXPECT_EQ(active_count(&r), 1);
    ExConvertExclusiveToSharedLite(&r);
    check_status(&r, false, count, 0, 0);
    EXPECT_EQ(flag(&r) & ResourceOwnedExclusive, 0);
    EXPECT_EQ(r.OwnerEntry.OwnerThread, 0u);
    while (count--) ExReleaseResourceLite(&r);
    KeLeaveCriticalRegion();
    check_status(&r, false, 0, 0, 0);
    EXPECT_TRUE((kmlab::resource::Algorithm<kmlab::platform::Native,
                                            kmlab::resource::DispatcherWaits>::is_free(&r)));
    ExDeleteResourceLite(&r);
}

// TestResourceUndocumentedShortcuts [kmt-ExResource], at PASSIVE_LEVEL and
// at APC_LEVEL.
TEST_F(Resource, EnterCriticalRegionAndAcquireShortcuts) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    for (KIRQL irql : {PASSIVE_LEVEL, APC_LEVEL}) {
        KIRQL old;
        KeRaiseIrql(irql, &old);
        EXPECT_FALSE(KeAreApcsDisabled());
        EXPECT_EQ(ExEnterCriticalRegionAndAcquireResourceShared(&r), nullptr);
        EXPECT_TRUE(KeAreApcsDisabled());
        EXPECT_EQ(ExEnterCriticalRegionAndAcquireResourceShared(&r), nullptr);
        EXPECT_EQ(ExEnterCriticalRegionAndAcquireSharedWaitForExclusive(&r), nullptr);
        check_status(&r, false, 3, 0, 0);
        ExReleaseResourceAndLeaveCriticalRegion(&r);
        ExReleaseResourceAndLeaveCriticalRegion(&r);
        EXPECT_TRUE(KeAreApcsDisabled());
        ExReleaseResourceAndLeaveCriticalRegion(&r);
        EXPECT_FALSE(KeAreApcsDisabled());
        check_status(&r, false, 0, 0, 0);

        EXPECT_EQ(ExEnterCriticalRegionAndAcquireResourceExclusive(&r), nullptr);
        EXPECT_EQ(ExEnterCriticalRegionAndAcquireResourceExclusive(&r), nullptr);
        check_status(&r, true, 2, 0, 0);
        ExReleaseResourceAndLeaveCriticalRegion(&r);
        EXPECT_TRUE(KeAreApcsDisabled());
        check_status(&r, true, 1, 0, 0);
        ExReleaseResourceAndLeaveCriticalRegion(&r);
        EXPECT_FALSE(KeAreApcsDisabled());
        check_status(&r, false, 0, 0, 0);
        KeLowerIrql(old);
    }
    ExDeleteResourceLite(&r);
}

// TestResourceWithThreads [kmt-ExResource], with every "it should block"
// seen as a thread really blocked in the dispatcher.
TEST_F(Resource, StarvationRulesWithThreads) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);

    Worker shared(&r, ExAcquireResourceSharedLite, false);
    ASSERT_TRUE(shared.wait_returned());
    EXPECT_TRUE(shared.got());
    check_status(&r, false, 0, 0, 0);
    EXPECT_EQ(active_count(&r), 1);
    {
        Worker shared2(&r, ExAcquireResourceSharedLite, false);
        ASSERT_TRUE(shared2.wait_returned());
        EXPECT_TRUE(shared2.got());
        EXPECT_EQ(active_count(&r), 2);
    }
    EXPECT_EQ(active_count(&r), 1);
    {
        Worker exclusive_try(&r, ExAcquireResourceExclusiveLite, false);
        ASSERT_TRUE(exclusive_try.wait_returned());
        EXPECT_FALSE(exclusive_try.got());
    }
    check_status(&r, false, 0, 0, 0);

    // An exclusive acquirer blocks behind the shared owner.
    Worker exclusive(&r, ExAcquireResourceExclusiveLite, true);
    ASSERT_TRUE(blocked_on(r.ExclusiveWaiters, 1));
    check_status(&r, false, 0, 1, 0);
    EXPECT_EQ(active_count(&r), 1);
    EXPECT_FALSE(exclusive.returned());

    // A new plain shared acquirer does not pass it...
    {
        Worker s(&r, ExAcquireResourceSharedLite, false);
        ASSERT_TRUE(s.wait_returned());
        EXPECT_FALSE(s.got());
        Worker w(&r, ExAcquireSharedWaitForExclusive, false);
        ASSERT_TRUE(w.wait_returned());
        EXPECT_FALSE(w.got());
    }
    check_status(&r, false, 0, 1, 0);
    // ... ExAcquireSharedStarveExclusive does.
    {
        Worker starve(&r, ExAcquireSharedStarveExclusive, true);
        ASSERT_TRUE(starve.wait_returned());
        EXPECT_TRUE(starve.got());
        EXPECT_EQ(active_count(&r), 2);
    }
    check_status(&r, false, 0, 1, 0);
    EXPECT_EQ(active_count(&r), 1);

    // A shared acquirer that may wait blocks on the semaphore.
    Worker shared_blocked(&r, ExAcquireResourceSharedLite, true);
    ASSERT_TRUE(blocked_on(r.SharedWaiters, 1));
    check_status(&r, false, 0, 1, 1);
    EXPECT_EQ(active_count(&r), 1);

    // The first shared owner leaves: the exclusive waiter owns it.
    shared.finish();
    ASSERT_TRUE(exclusive.wait_returned());
    EXPECT_TRUE(exclusive.got());
    check_status(&r, false, 0, 0, 1);
    EXPECT_EQ(active_count(&r), 1);
    EXPECT_NE(flag(&r) & ResourceOwnedExclusive, 0);
    EXPECT_FALSE(shared_blocked.returned());

    // It leaves: the shared waiter owns it.
    exclusive.finish();
    ASSERT_TRUE(shared_blocked.wait_returned());
    EXPECT_TRUE(shared_blocked.got());
    check_status(&r, false, 0, 0, 0);
    EXPECT_EQ(active_count(&r), 1);
    shared_blocked.finish();
    check_status(&r, false, 0, 0, 0);
    EXPECT_EQ(active_count(&r), 0);
    EXPECT_GE(r.ContentionCount, 2u);

    // ExReinitializeResourceLite keeps the waiter objects [kmt-ExResource].
    PKEVENT event = r.ExclusiveWaiters;
    EXPECT_EQ(ExReinitializeResourceLite(&r), STATUS_SUCCESS);
    EXPECT_EQ(r.ExclusiveWaiters, event);
    EXPECT_EQ(r.ActiveCount, 0);
    EXPECT_EQ(r.Flag, 0u);
    EXPECT_EQ(r.ContentionCount, 0u);
    ExDeleteResourceLite(&r);
}

// A shared owner asks again while an exclusive acquirer waits: the plain
// routines grant it (recursion), ExAcquireSharedWaitForExclusive lets the
// exclusive waiter go first [ddi:exacquiresharedwaitforexclusive].
TEST_F(Resource, OwnerRecursionPassesExclusiveWaiterExceptWaitForExclusive) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
    Worker exclusive(&r, ExAcquireResourceExclusiveLite, true);
    ASSERT_TRUE(blocked_on(r.ExclusiveWaiters, 1));
    EXPECT_TRUE(ExAcquireResourceSharedLite(&r, FALSE));
    EXPECT_TRUE(ExAcquireSharedStarveExclusive(&r, FALSE));
    EXPECT_FALSE(ExAcquireSharedWaitForExclusive(&r, FALSE));
    EXPECT_EQ(ExIsResourceAcquiredSharedLite(&r), 3u);
    for (int i = 0; i < 3; ++i) ExReleaseResourceLite(&r);
    ASSERT_TRUE(exclusive.wait_returned());
    EXPECT_TRUE(exclusive.got());
    exclusive.finish();
    KeLeaveCriticalRegion();
    check_status(&r, false, 0, 0, 0);
    ExDeleteResourceLite(&r);
}

// ExConvertExclusiveToSharedLite grants and wakes every shared waiter [ros-resource].
TEST_F(Resource, ConvertWakesSharedWaiters) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ASSERT_TRUE(ExAcquireResourceExclusiveLite(&r, TRUE));
    Worker a(&r, ExAcquireResourceSharedLite, true);
    Worker b(&r, ExAcquireSharedWaitForExclusive, true);
    ASSERT_TRUE(blocked_on(r.SharedWaiters, 2));
    check_status(&r, true, 1, 0, 2);
    ExConvertExclusiveToSharedLite(&r);
    ASSERT_TRUE(a.wait_returned());
    ASSERT_TRUE(b.wait_returned());
    EXPECT_TRUE(a.got() && b.got());
    check_status(&r, false, 1, 0, 0);
    EXPECT_EQ(active_count(&r), 3);
    ExReleaseResourceLite(&r);
    a.finish();
    b.finish();
    KeLeaveCriticalRegion();
    EXPECT_EQ(active_count(&r), 0);
    ExDeleteResourceLite(&r);
}

// An exclusive release prefers the shared waiters, then the next exclusive
// waiter gets it from the last shared owner [ros-resource].
TEST_F(Resource, ExclusiveReleaseGrantsSharedWaitersFirst) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ASSERT_TRUE(ExAcquireResourceExclusiveLite(&r, TRUE));
    Worker x(&r, ExAcquireResourceExclusiveLite, true);
    ASSERT_TRUE(blocked_on(r.ExclusiveWaiters, 1));
    Worker s(&r, ExAcquireResourceSharedLite, true);
    ASSERT_TRUE(blocked_on(r.SharedWaiters, 1));
    check_status(&r, true, 1, 1, 1);
    ExReleaseResourceLite(&r);
    ASSERT_TRUE(s.wait_returned());
    EXPECT_TRUE(s.got());
    EXPECT_FALSE(x.returned());
    check_status(&r, false, 0, 1, 0);
    s.finish();
    ASSERT_TRUE(x.wait_returned());
    EXPECT_TRUE(x.got());
    x.finish();
    KeLeaveCriticalRegion();
    check_status(&r, false, 0, 0, 0);
    EXPECT_EQ(r.Flag, 0u);
    ExDeleteResourceLite(&r);
}

// TestResourceWithOwner [kmt-ExResource]: owner pointers released from
// another thread, and a thread's hold released by another thread.
TEST_F(Resource, OwnerPointersAndReleaseForThread) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ASSERT_TRUE(ExAcquireResourceExclusiveLite(&r, FALSE));
    ExSetResourceOwnerPointer(&r, reinterpret_cast<PVOID>(ULONG_PTR{3}));
    EXPECT_EQ(r.OwnerEntry.OwnerThread, 3u);
    EXPECT_FALSE(ExIsResourceAcquiredExclusiveLite(&r));
    ExReleaseResourceForThreadLite(&r, 3);
    check_status(&r, false, 0, 0, 0);

    ASSERT_TRUE(ExAcquireResourceExclusiveLite(&r, FALSE));
    const ULONG_PTR owner = reinterpret_cast<ULONG_PTR>(&r) | 3;
    ExSetResourceOwnerPointer(&r, &r);
    KeLeaveCriticalRegion();
    kmlab::test::on_new_thread([&] {
        KeEnterCriticalRegion();
        EXPECT_FALSE(ExAcquireResourceExclusiveLite(&r, FALSE));
        ExReleaseResourceForThreadLite(&r, owner);
        KeLeaveCriticalRegion();
    });
    EXPECT_EQ(active_count(&r), 0);

    // A shared hold handed to an owner pointer.
    KeEnterCriticalRegion();
    ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
    ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
    ExSetResourceOwnerPointer(&r, &r);
    EXPECT_EQ(ExIsResourceAcquiredSharedLite(&r), 0u);
    ASSERT_NE(r.OwnerTable, nullptr);
    ExReleaseResourceForThreadLite(&r, owner);
    EXPECT_EQ(active_count(&r), 1);
    ExReleaseResourceForThreadLite(&r, owner);
    EXPECT_EQ(active_count(&r), 0);

    // Another thread's shared hold, released by this thread while that
    // thread lives (it has handed its hold over).
    std::atomic<ERESOURCE_THREAD> other{0};
    std::atomic<bool> released{false};
    std::thread holder([&] {
        KeEnterCriticalRegion();
        EXPECT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
        other = ExGetCurrentResourceThread();
        while (!released) std::this_thread::yield();
        EXPECT_EQ(ExIsResourceAcquiredSharedLite(&r), 0u);
        KeLeaveCriticalRegion();
    });
    ASSERT_TRUE(eventually([&] { return other.load() != 0; }));
    EXPECT_EQ(active_count(&r), 1);
    ExReleaseResourceForThreadLite(&r, other);
    EXPECT_EQ(active_count(&r), 0);
    released = true;
    holder.join();
    KeLeaveCriticalRegion();
    ExDeleteResourceLite(&r);
}

// ---- the rules and their bug checks ----

TEST_F(Resource, ReleaseByNonOwnerIsResourceNotOwned) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    auto bc = EXPECT_BUG_CHECK(ExReleaseResourceLite(&r), bugcheck::RESOURCE_NOT_OWNED);
    EXPECT_EQ(bc.parameter(1), reinterpret_cast<ULONG_PTR>(&r));
    EXPECT_EQ(bc.parameter(2), ExGetCurrentResourceThread());
    EXPECT_EQ(bc.parameter(4), 3u) << "[ros-resource]";
    ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
    kmlab::test::on_new_thread([&] {
        KeEnterCriticalRegion();
        EXPECT_BUG_CHECK(ExReleaseResourceLite(&r), bugcheck::RESOURCE_NOT_OWNED);
        KeLeaveCriticalRegion();
    });
    EXPECT_EQ(active_count(&r), 1) << "nothing released";
    ExReleaseResourceLite(&r);
    ASSERT_TRUE(ExAcquireResourceExclusiveLite(&r, TRUE));
    kmlab::test::on_new_thread([&] {
        KeEnterCriticalRegion();
        EXPECT_BUG_CHECK(ExReleaseResourceLite(&r), bugcheck::RESOURCE_NOT_OWNED);
        KeLeaveCriticalRegion();
    });
    EXPECT_TRUE(ExIsResourceAcquiredExclusiveLite(&r));
    ExReleaseResourceLite(&r);
    KeLeaveCriticalRegion();
    ExDeleteResourceLite(&r);
}

TEST_F(Resource, AcquireAndReleaseOutsideACriticalRegionAreVerifierViolations) {
    ScopedFlavor verifier(kmlab::Flavor::verifier);  // Driver Verifier's rules (0x37, 0x38)
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    for (AcquireFn acquire : {ExAcquireResourceExclusiveLite, ExAcquireResourceSharedLite,
                              ExAcquireSharedStarveExclusive, ExAcquireSharedWaitForExclusive}) {
        auto bc = EXPECT_BUG_CHECK(acquire(&r, TRUE), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
        EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_RESOURCE_ACQUIRE_APCS_ENABLED);
        EXPECT_EQ(bc.parameter(2), PASSIVE_LEVEL);
        EXPECT_EQ(bc.parameter(3), 0u);
        EXPECT_EQ(bc.parameter(4), reinterpret_cast<ULONG_PTR>(&r));
        EXPECT_EQ(active_count(&r), 0) << "nothing acquired";
    }
    // A guarded region, or APC_LEVEL, disables normal kernel APCs too.
    KeEnterGuardedRegion();
    ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
    KeLeaveGuardedRegion();
    auto bc =
        EXPECT_BUG_CHECK(ExReleaseResourceLite(&r), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_RESOURCE_RELEASE_APCS_ENABLED);
    EXPECT_EQ(active_count(&r), 1) << "nothing released";
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    ExReleaseResourceLite(&r);
    KeLowerIrql(old);
    {
        // The free flavour (no Driver Verifier) lets both go on.
        ScopedFlavor free(kmlab::Flavor::free);
        ASSERT_TRUE(ExAcquireResourceExclusiveLite(&r, TRUE));
        ExReleaseResourceLite(&r);
    }
    EXPECT_EQ(active_count(&r), 0);
    ExDeleteResourceLite(&r);
}

TEST_F(Resource, IrqlCeilings) {
    ScopedFlavor checked(kmlab::Flavor::checked);  // checked-build and verifier rules
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    const KIRQL old = KeRaiseIrqlToDpcLevel();
    // IRQL <= APC_LEVEL, Wait = TRUE or FALSE alike
    // [ddi:exacquireresourcesharedlite][ddi:exacquireresourceexclusivelite].
    for (BOOLEAN wait : {TRUE, FALSE}) {
        auto bc = EXPECT_BUG_CHECK(ExAcquireResourceExclusiveLite(&r, wait),
                                   bugcheck::IRQL_NOT_LESS_OR_EQUAL);
        EXPECT_EQ(bc.parameter(1), reinterpret_cast<ULONG_PTR>(&r));
        EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
        EXPECT_BUG_CHECK(ExAcquireResourceSharedLite(&r, wait), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    }
    EXPECT_EQ(active_count(&r), 0);
    {
        ScopedFlavor free(kmlab::Flavor::free);
        ASSERT_TRUE(ExAcquireResourceSharedLite(&r, FALSE));
        ExReleaseResourceLite(&r);
        // Uncontended, the free flavour acquires as a free build does.
        ASSERT_TRUE(ExAcquireResourceExclusiveLite(&r, TRUE));
        kmlab::test::on_new_thread([&] {
            KeRaiseIrqlToDpcLevel();
            // Contended, it would block at DISPATCH_LEVEL: the wait's bug check.
            auto wbc = EXPECT_BUG_CHECK(ExAcquireResourceSharedLite(&r, TRUE),
                                        bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
            EXPECT_EQ(wbc.parameter(1), bugcheck::VERIFIER_WAIT_AT_DISPATCH);
            KeLowerIrql(PASSIVE_LEVEL);
        });
        ExReleaseResourceLite(&r);
    }
    KeLowerIrql(old);
    EXPECT_EQ(ExGetSharedWaiterCount(&r), 0u);
    ExDeleteResourceLite(&r);
}

TEST_F(Resource, ExclusiveWaitBySharedOwnerIsADeadlock) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
    EXPECT_FALSE(ExAcquireResourceExclusiveLite(&r, FALSE)) << "[kmt-ExResource]";
    auto bc = EXPECT_BUG_CHECK(ExAcquireResourceExclusiveLite(&r, TRUE),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_DEADLOCK_DETECTED);
    EXPECT_EQ(bc.parameter(2), reinterpret_cast<ULONG_PTR>(&r));
    EXPECT_EQ(ExGetExclusiveWaiterCount(&r), 0u) << "it never registered";
    ExReleaseResourceLite(&r);
    KeLeaveCriticalRegion();
    ExDeleteResourceLite(&r);
}

TEST_F(Resource, DeletingAResourceInUse) {
    ScopedFlavor checked(kmlab::Flavor::checked);  // checked-build and verifier rules
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ASSERT_TRUE(ExAcquireResourceExclusiveLite(&r, TRUE));
    auto bc = EXPECT_BUG_CHECK(ExDeleteResourceLite(&r), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_EQ(bc.parameter(1), static_cast<ULONG>(STATUS_BREAKPOINT));
    ExReleaseResourceLite(&r);
    KeLeaveCriticalRegion();
    EXPECT_EQ(ExDeleteResourceLite(&r), STATUS_SUCCESS);
}

// A thread's shared holds of many resources at once (past the table's
// in-place entries), released out of order: each answers for itself.
TEST_F(Resource, ManySharedHoldsPerThread) {
    constexpr int kResources = 13;
    ERESOURCE r[kResources];
    for (auto& x : r) ExInitializeResourceLite(&x);
    KeEnterCriticalRegion();
    for (int i = 0; i < kResources; ++i) {
        ASSERT_TRUE(ExAcquireResourceSharedLite(&r[i], TRUE));
        if (i % 3 == 0) {
            ASSERT_TRUE(ExAcquireSharedWaitForExclusive(&r[i], FALSE));
        }
    }
    for (int i = 0; i < kResources; ++i)
        EXPECT_EQ(ExIsResourceAcquiredSharedLite(&r[i]), i % 3 == 0 ? 2u : 1u) << i;
    for (int i : {0, 12, 5, 9, 1, 3, 0, 11, 7, 2, 4, 6, 8, 10, 3, 9, 6, 12}) {
        ExReleaseResourceLite(&r[i]);
        for (int k = 0; k < kResources; ++k) EXPECT_LE(ExIsResourceAcquiredSharedLite(&r[k]), 2u);
    }
    KeLeaveCriticalRegion();
    for (auto& x : r) {
        EXPECT_EQ(x.ActiveCount, 0);
        EXPECT_EQ(ExIsResourceAcquiredSharedLite(&x), 0u);
        ExDeleteResourceLite(&x);
    }
}

// ---- ExReleaseResourceForThreadLite naming another thread (review fixes) ----

// The holder keeps acquiring and releasing other resources (its own hold
// table changes) while another thread releases its hold of r0 by its id, as
// Windows allows: the kernel finds the hold in r0's OwnerTable under r0's
// lock [ros-resource]. Each released hold is gone from the holder's view,
// and every resource ends free.
TEST_F(Resource, ReleaseForThreadWhileTheHolderUsesItsTable) {
    constexpr int kOthers = 10;
    constexpr int kRounds = 3000;
    ERESOURCE r0;
    ERESOURCE others[kOthers];
    ExInitializeResourceLite(&r0);
    for (auto& x : others) ExInitializeResourceLite(&x);
    std::atomic<ERESOURCE_THREAD> handed{0};
    std::atomic<int> done{0};
    std::atomic<int> still_held{0};
    std::thread releaser([&] {
        KeEnterCriticalRegion();
        for (int i = 0; i < kRounds; ++i) {
            ERESOURCE_THREAD id;
            while ((id = handed.exchange(0)) == 0) std::this_thread::yield();
            ExReleaseResourceForThreadLite(&r0, id);
            done.store(i + 1);
        }
        KeLeaveCriticalRegion();
    });
    KeEnterCriticalRegion();
    for (int i = 0; i < kRounds; ++i) {
        ASSERT_TRUE(ExAcquireResourceSharedLite(&r0, TRUE));
        handed.store(ExGetCurrentResourceThread());
        while (done.load() != i + 1) {
            for (auto& x : others) ExAcquireResourceSharedLite(&x, TRUE);
            for (int k = kOthers - 1; k >= 0; --k)
                ExReleaseResourceLite(&others[(k * 7) % kOthers]);
        }
        if (ExIsResourceAcquiredSharedLite(&r0) != 0) ++still_held;
    }
    KeLeaveCriticalRegion();
    releaser.join();
    EXPECT_EQ(still_held.load(), 0);
    EXPECT_EQ(active_count(&r0), 0);
    for (auto& x : others) EXPECT_EQ(active_count(&x), 0);
    ExDeleteResourceLite(&r0);
    for (auto& x : others) ExDeleteResourceLite(&x);
}

// A thread that exits holding the resource shared leaves its hold in the
// resource's table, as the kernel's OwnerTable keeps it [ros-resource]: a
// later release by that thread's id succeeds (decision, kmlab: the hold
// moves to the OwnerTable at thread exit, kernel/src/resource.cpp).
TEST_F(Resource, ReleaseForThreadOfAnExitedThread) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    ERESOURCE_THREAD id = 0;
    kmlab::test::on_new_thread([&] {
        KeEnterCriticalRegion();
        ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
        ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
        id = ExGetCurrentResourceThread();
        KeLeaveCriticalRegion();
    });
    kmlab::test::on_new_thread(
        [] { (void)ExGetCurrentResourceThread(); });  // may reuse its KTHREAD
    EXPECT_EQ(active_count(&r), 1);
    KeEnterCriticalRegion();
    ExReleaseResourceForThreadLite(&r, id);
    EXPECT_EQ(active_count(&r), 1) << "one of its two acquisitions";
    ExReleaseResourceForThreadLite(&r, id);
    EXPECT_EQ(active_count(&r), 0);
    EXPECT_BUG_CHECK(ExReleaseResourceForThreadLite(&r, id), bugcheck::RESOURCE_NOT_OWNED);
    KeLeaveCriticalRegion();
    ExDeleteResourceLite(&r);
}

// An ERESOURCE_THREAD is its KTHREAD's address, and a thread that exits
// holding a resource stays named by it: a later thread must not take over
// that name. Thread A exits holding R shared and T exclusive; thread B then
// takes R shared: releasing for A must release A's hold, not B's, and B
// must not find itself T's owner (review finding: B was created at A's
// freed address, and both went wrong).
TEST_F(Resource, AThreadCreatedAfterAnOwnerExitedDoesNotTakeOverItsHolds) {
    ERESOURCE r;
    ERESOURCE t;
    ExInitializeResourceLite(&r);
    ExInitializeResourceLite(&t);
    ERESOURCE_THREAD a = 0;
    kmlab::test::on_new_thread([&] {
        KeEnterCriticalRegion();
        ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
        ASSERT_TRUE(ExAcquireResourceExclusiveLite(&t, TRUE));
        a = ExGetCurrentResourceThread();
        KeLeaveCriticalRegion();
    });
    // Several new threads, so that an allocator that reuses A's block would
    // hand it to one of them.
    for (int i = 0; i < 8; ++i) {
        kmlab::test::on_new_thread([&] {
            KeEnterCriticalRegion();
            EXPECT_NE(ExGetCurrentResourceThread(), a) << "a new thread named as the exited A";
            EXPECT_FALSE(ExAcquireResourceExclusiveLite(&t, FALSE)) << "T is still A's";
            ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
            EXPECT_EQ(ExIsResourceAcquiredSharedLite(&r), 1u);
            ExReleaseResourceLite(&r);
            KeLeaveCriticalRegion();
        });
    }
    KeEnterCriticalRegion();
    ExReleaseResourceForThreadLite(&r, a);  // A's shared hold
    ExReleaseResourceForThreadLite(&t, a);  // A's exclusive hold
    EXPECT_EQ(active_count(&r), 0);
    EXPECT_EQ(active_count(&t), 0);
    KeLeaveCriticalRegion();
    ExDeleteResourceLite(&r);
    ExDeleteResourceLite(&t);
}

// An id that names no owner of the resource (not a thread, or an owner
// pointer without its low bits) is never dereferenced: RESOURCE_NOT_OWNED
// [bc:0xE3], as Windows answers a release it finds no entry for
// [ros-resource], and nothing changes.
TEST_F(Resource, ReleaseForThreadWithAnUnknownIdIsResourceNotOwned) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
    static long owner_object[64] = {};
    ExSetResourceOwnerPointer(&r, owner_object);
    const auto plain = reinterpret_cast<ERESOURCE_THREAD>(owner_object);
    auto bc =
        EXPECT_BUG_CHECK(ExReleaseResourceForThreadLite(&r, plain), bugcheck::RESOURCE_NOT_OWNED);
    EXPECT_EQ(bc.parameter(2), plain);
    EXPECT_BUG_CHECK(ExReleaseResourceForThreadLite(&r, 0x1000), bugcheck::RESOURCE_NOT_OWNED);
    EXPECT_BUG_CHECK(ExReleaseResourceForThreadLite(&r, 0), bugcheck::RESOURCE_NOT_OWNED);
    EXPECT_EQ(active_count(&r), 1) << "nothing released";
    ExReleaseResourceForThreadLite(&r, plain | 3);
    EXPECT_EQ(active_count(&r), 0);
    KeLeaveCriticalRegion();
    ExDeleteResourceLite(&r);
}

// ExAcquireSharedWaitForExclusive by a shared owner while an exclusive
// acquirer waits would wait behind it for the caller's own hold: answered as
// the upgrade deadlock is, 0xC4/0x1001, nothing changed (decision, kmlab:
// rules_resource.hpp check_resource_shared_reacquire); Wait = FALSE: FALSE.
TEST_F(Resource, WaitForExclusiveBySharedOwnerBehindAWaiterIsADeadlock) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
    Worker exclusive(&r, ExAcquireResourceExclusiveLite, true);
    ASSERT_TRUE(blocked_on(r.ExclusiveWaiters, 1));
    auto bc = EXPECT_BUG_CHECK(ExAcquireSharedWaitForExclusive(&r, TRUE),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_DEADLOCK_DETECTED);
    EXPECT_EQ(bc.parameter(2), reinterpret_cast<ULONG_PTR>(&r));
    EXPECT_FALSE(ExAcquireSharedWaitForExclusive(&r, FALSE));
    EXPECT_EQ(ExIsResourceAcquiredSharedLite(&r), 1u);
    EXPECT_EQ(ExGetSharedWaiterCount(&r), 0u) << "it never registered";
    ExReleaseResourceLite(&r);
    ASSERT_TRUE(exclusive.wait_returned());
    EXPECT_TRUE(exclusive.got());
    exclusive.finish();
    KeLeaveCriticalRegion();
    check_status(&r, false, 0, 0, 0);
    ExDeleteResourceLite(&r);
}

// OwnerEntry.OwnerCount keeps its WDK place (bits 2..31 of its word, which
// the emulator changes as a whole: resource_algorithm.hpp count_word), and an
// exclusive recursion released by another thread (ExReleaseResourceForThread-
// Lite naming the owner) while the owner recurses loses no count.
TEST_F(Resource, ExclusiveRecursionReleasedByAnotherThread) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ASSERT_TRUE(ExAcquireResourceExclusiveLite(&r, TRUE));
    ASSERT_TRUE(ExAcquireResourceExclusiveLite(&r, TRUE));
    EXPECT_EQ(r.OwnerEntry.OwnerCount, 2u);
    EXPECT_EQ(r.OwnerEntry.IoPriorityBoosted, 0u);
    constexpr int kRounds = 20000;
    const ERESOURCE_THREAD me = ExGetCurrentResourceThread();
    std::atomic<int> acquired{0};
    std::thread other([&] {
        KeEnterCriticalRegion();
        for (int i = 0; i < kRounds; ++i) {
            while (acquired.load() <= i) std::this_thread::yield();  // the count stays >= 2
            ExReleaseResourceForThreadLite(&r, me);
        }
        KeLeaveCriticalRegion();
    });
    for (int i = 0; i < kRounds; ++i) {
        ASSERT_TRUE(ExAcquireResourceSharedLite(&r, TRUE));
        acquired.store(i + 1);
    }
    other.join();
    EXPECT_EQ(ExIsResourceAcquiredSharedLite(&r), 2u);
    ExReleaseResourceLite(&r);
    ExReleaseResourceLite(&r);
    KeLeaveCriticalRegion();
    check_status(&r, false, 0, 0, 0);
    ExDeleteResourceLite(&r);
}
