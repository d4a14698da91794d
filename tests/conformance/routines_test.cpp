// The smaller routines driver code calls beside its locks: the fast-mutex
// shortcuts, pool allocation, previous mode, the current thread id.
#include <atomic>
#include <cstdint>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using Routines = Nt;
namespace bugcheck = kmlab::bugcheck;

// kmtest acquires with the shortcut and checks KeAreApcsDisabled
// [kmt-ExFastMutex][ddi:exentercriticalregionandacquirefastmutexunsafe].
TEST_F(Routines, EnterCriticalRegionAndAcquireFastMutexUnsafeIsBothInOne) {
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    ExEnterCriticalRegionAndAcquireFastMutexUnsafe(&m);
    EXPECT_TRUE(KeAreApcsDisabled());
    EXPECT_EQ(KeGetCurrentThread()->KernelApcDisable, -1);
    EXPECT_EQ(m.Owner, KeGetCurrentThread());
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL) << "the IRQL is not raised";
    ExReleaseFastMutexUnsafeAndLeaveCriticalRegion(&m);
    EXPECT_FALSE(KeAreApcsDisabled());
    EXPECT_EQ(m.Owner, nullptr);
    EXPECT_EQ(m.Count, FM_LOCK_BIT);
}

// [ddi:exallocatepoolwithtag]: nonpaged pool up to DISPATCH_LEVEL, paged
// pool up to APC_LEVEL; blocks are 16-byte aligned on amd64.
TEST_F(Routines, PoolBlocksAreAlignedAndUsable) {
    auto* p = static_cast<unsigned char*>(
        ExAllocatePoolWithTag(NonPagedPool, 40, 0x74736554u /* 'tseT' */));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 16, 0u);
    std::memset(p, 0xAB, 40);
    EXPECT_EQ(p[39], 0xAB);
    ExFreePoolWithTag(p, 0x74736554u /* 'tseT' */);
    ExFreePoolWithTag(nullptr, 0);
}

// A request the pool cannot satisfy returns NULL (what wdk-mutex reports as
// PagedPoolAllocFailed) [ddi:exallocatepoolwithtag]: a size near SIZE_MAX
// does not wrap around to a small block. (Sizes above PTRDIFF_MAX, which no
// address space holds, so that no sanitizer's allocator is asked for them.)
TEST_F(Routines, AnImpossibleRequestReturnsNull) {
    const std::size_t huge = static_cast<std::size_t>(-1);
    EXPECT_EQ(ExAllocatePoolWithTag(PagedPool, huge, 0x74736554u), nullptr);
    EXPECT_EQ(ExAllocatePoolWithTag(PagedPool, huge - 8, 0x74736554u), nullptr);
    EXPECT_EQ(ExAllocatePoolWithTag(NonPagedPool, huge / 2 + 1, 0x74736554u), nullptr);
}

TEST_F(Routines, PagedPoolAtDispatchLevelBugChecksAndNonPagedPoolDoesNot) {
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    EXPECT_BUG_CHECK(ExAllocatePoolWithTag(PagedPool, 8, 0), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    PVOID p = ExAllocatePoolWithTag(NonPagedPoolNx, 8, 0);
    EXPECT_NE(p, nullptr);
    ExFreePoolWithTag(p, 0);
    KeLowerIrql(old);
}

// [ddi:exgetpreviousmode]: the emulator's threads are kernel threads called
// from kernel mode.
TEST_F(Routines, PreviousModeIsKernelMode) {
    EXPECT_EQ(ExGetPreviousMode(), KernelMode);
}

namespace {
struct IdProbe {
    HANDLE seen = nullptr;
};
void record_id(PVOID context) {
    static_cast<IdProbe*>(context)->seen = PsGetCurrentThreadId();
}
}  // namespace

// [ddi:psgetcurrentthreadid]: the id PsCreateSystemThread reported in
// CLIENT_ID.UniqueThread, distinct per thread.
TEST_F(Routines, PsGetCurrentThreadIdIsTheClientIdsThread) {
    IdProbe probe;
    HANDLE h = nullptr;
    CLIENT_ID cid{};
    ASSERT_EQ(
        PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, &cid, record_id, &probe),
        STATUS_SUCCESS);
    PVOID thread = nullptr;
    ASSERT_EQ(ObReferenceObjectByHandle(h, THREAD_ALL_ACCESS, *PsThreadType, KernelMode, &thread,
                                        nullptr),
              STATUS_SUCCESS);
    ZwClose(h);
    EXPECT_EQ(KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    ObDereferenceObject(thread);
    EXPECT_EQ(probe.seen, cid.UniqueThread);
    EXPECT_NE(probe.seen, PsGetCurrentThreadId());
}

// The WDK's helper macros come with the C++ face as with the C one
// (<kmlab/nt/wdk_macros.h>), so driver code that uses them compiles unchanged.
namespace {
struct WorkItem {
    ULONG Cookie;
    LIST_ENTRY Link;
};
C_ASSERT(FIELD_OFFSET(WorkItem, Link) == 8);
NTSTATUS NTAPI annotated(_In_ PVOID context, _Out_opt_ PULONG out, _Inout_ PLONG both) {
    UNREFERENCED_PARAMETER(context);
    if (out != nullptr) *out = 1;
    return ++*both;
}
}  // namespace

TEST_F(Routines, TheWdkMacrosComeWithTheCppFace) {
    WorkItem item;
    RtlZeroMemory(&item, sizeof item);
    item.Cookie = 0xC0FFEE;
    EXPECT_EQ(CONTAINING_RECORD(&item.Link, WorkItem, Link)->Cookie, 0xC0FFEEu);
    UCHAR bytes[6];
    RtlFillMemory(bytes, sizeof bytes, 0x55);
    EXPECT_EQ(RTL_NUMBER_OF(bytes), 6u);
    EXPECT_TRUE(RtlEqualMemory(bytes, "UUUUUU", 6));
    LONG n = 1;
    ULONG out = 0;
    EXPECT_EQ(annotated(nullptr, &out, &n), 2);
    EXPECT_EQ(out, 1u);
}
