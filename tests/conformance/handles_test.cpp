// The object manager as driver code meets it: event objects by handle
// (ZwCreateEvent, ZwSetEvent, ZwResetEvent, ZwClearEvent,
// ZwWaitForSingleObject), ObReferenceObjectByHandle with *ExEventObjectType,
// ObCloseHandle, and the process and thread-id queries.
#include <atomic>
#include <string>
#include <thread>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using kmlab::test::waiters_reach;
using Handles = Nt;
using Process = Nt;
namespace bugcheck = kmlab::bugcheck;

namespace {
HANDLE create_event(EVENT_TYPE type, BOOLEAN state) {
    HANDLE h = nullptr;
    OBJECT_ATTRIBUTES attributes;
    InitializeObjectAttributes(&attributes, nullptr, OBJ_KERNEL_HANDLE, nullptr, nullptr);
    EXPECT_EQ(ZwCreateEvent(&h, EVENT_ALL_ACCESS, &attributes, type, state), STATUS_SUCCESS);
    return h;
}

LARGE_INTEGER zero_timeout() {
    LARGE_INTEGER t;
    t.QuadPart = 0;
    return t;
}
}  // namespace

// Wine's test_ob_reference: an event handle references to the KEVENT, by
// its own type or by none, and not as another type [wine-test].
TEST_F(Handles, AnEventHandleReferencesItsKevent) {
    const HANDLE h = create_event(NotificationEvent, TRUE);
    PVOID by_type = nullptr;
    PVOID untyped = nullptr;
    ASSERT_EQ(ObReferenceObjectByHandle(h, SYNCHRONIZE, *ExEventObjectType, KernelMode, &by_type,
                                        nullptr),
              STATUS_SUCCESS);
    ASSERT_EQ(ObReferenceObjectByHandle(h, SYNCHRONIZE, nullptr, KernelMode, &untyped, nullptr),
              STATUS_SUCCESS);
    EXPECT_EQ(by_type, untyped);
    auto* e = static_cast<PKEVENT>(by_type);
    EXPECT_EQ(e->Header.Type, NotificationEvent);
    EXPECT_EQ(KeReadStateEvent(e), 1);
    // A failed reference stores NULL [ros-obref], so cleanup that tests it is safe.
    PVOID other = &other;
    EXPECT_EQ(ObReferenceObjectByHandle(h, SYNCHRONIZE, *PsThreadType, KernelMode, &other, nullptr),
              STATUS_OBJECT_TYPE_MISMATCH);
    EXPECT_EQ(other, nullptr);
    other = &other;
    EXPECT_EQ(ObReferenceObjectByHandle(reinterpret_cast<HANDLE>(0x7FF0), 0, nullptr, KernelMode,
                                        &other, nullptr),
              STATUS_INVALID_HANDLE);
    EXPECT_EQ(other, nullptr);
    // Every handle is a kernel handle: a UserMode reference or close cannot
    // name it [ros-obref].
    other = &other;
    EXPECT_EQ(ObReferenceObjectByHandle(h, SYNCHRONIZE, nullptr, UserMode, &other, nullptr),
              STATUS_INVALID_HANDLE);
    EXPECT_EQ(other, nullptr);
    EXPECT_EQ(ObCloseHandle(h, UserMode), STATUS_INVALID_HANDLE);
    OBJECT_HANDLE_INFORMATION info{};
    PVOID again = nullptr;
    ASSERT_EQ(ObReferenceObjectByHandle(h, 0, nullptr, KernelMode, &again, &info), STATUS_SUCCESS);
    EXPECT_EQ(info.HandleAttributes, OBJ_KERNEL_HANDLE);
    EXPECT_EQ(info.GrantedAccess, EVENT_ALL_ACCESS);
    ObDereferenceObject(again);
    ObDereferenceObject(by_type);
    ObDereferenceObject(untyped);
    EXPECT_EQ(ZwClose(h), STATUS_SUCCESS);
}

TEST_F(Handles, ZwSetResetAndClearWorkThroughTheHandle) {
    const HANDLE h = create_event(SynchronizationEvent, FALSE);
    LARGE_INTEGER zero = zero_timeout();
    EXPECT_EQ(ZwWaitForSingleObject(h, FALSE, &zero), STATUS_TIMEOUT);
    LONG previous = -1;
    EXPECT_EQ(ZwSetEvent(h, &previous), STATUS_SUCCESS);
    EXPECT_EQ(previous, 0);
    EXPECT_EQ(ZwSetEvent(h, &previous), STATUS_SUCCESS);
    EXPECT_EQ(previous, 1);
    EXPECT_EQ(ZwWaitForSingleObject(h, FALSE, &zero), STATUS_SUCCESS);
    EXPECT_EQ(ZwWaitForSingleObject(h, FALSE, &zero), STATUS_TIMEOUT)
        << "a synchronization event resets when a wait is satisfied";
    EXPECT_EQ(ZwSetEvent(h, nullptr), STATUS_SUCCESS);
    EXPECT_EQ(ZwResetEvent(h, &previous), STATUS_SUCCESS);
    EXPECT_EQ(previous, 1);
    EXPECT_EQ(ZwSetEvent(h, nullptr), STATUS_SUCCESS);
    EXPECT_EQ(ZwClearEvent(h), STATUS_SUCCESS);
    EXPECT_EQ(ZwWaitForSingleObject(h, FALSE, &zero), STATUS_TIMEOUT);
    EXPECT_EQ(ObCloseHandle(h, KernelMode), STATUS_SUCCESS);
    EXPECT_EQ(ObCloseHandle(h, KernelMode), STATUS_INVALID_HANDLE) << "already closed";
}

// NtSetEvent wakes with EVENT_INCREMENT [ros-event]; the waiter blocks in
// ZwWaitForSingleObject, which waits in KernelMode for UserRequest.
TEST_F(Handles, ZwSetEventWakesAThreadInZwWaitForSingleObjectWithABoostOfOne) {
    const HANDLE h = create_event(SynchronizationEvent, FALSE);
    PVOID e = nullptr;
    ASSERT_EQ(ObReferenceObjectByHandle(h, 0, *ExEventObjectType, KernelMode, &e, nullptr),
              STATUS_SUCCESS);
    std::atomic<NTSTATUS> status{STATUS_PENDING};
    std::atomic<KPRIORITY> priority{0};
    std::thread waiter([&] {
        status = ZwWaitForSingleObject(h, FALSE, nullptr);
        priority = KeQueryPriorityThread(KeGetCurrentThread());
    });
    ASSERT_TRUE(waiters_reach(e, 1));
    EXPECT_EQ(ZwSetEvent(h, nullptr), STATUS_SUCCESS);
    waiter.join();
    EXPECT_EQ(status.load(), STATUS_SUCCESS);
    EXPECT_EQ(priority.load(), 8 + EVENT_INCREMENT);
    ObDereferenceObject(e);
    ZwClose(h);
}

// A reference keeps the event alive after its handle is closed, a waiter's
// included; the last dereference frees it (AddressSanitizer checks both).
TEST_F(Handles, AReferenceOutlivesTheHandle) {
    const HANDLE h = create_event(NotificationEvent, FALSE);
    PVOID e = nullptr;
    ASSERT_EQ(ObReferenceObjectByHandle(h, 0, *ExEventObjectType, KernelMode, &e, nullptr),
              STATUS_SUCCESS);
    std::atomic<NTSTATUS> status{STATUS_PENDING};
    std::thread waiter([&] { status = ZwWaitForSingleObject(h, FALSE, nullptr); });
    ASSERT_TRUE(waiters_reach(e, 1));
    EXPECT_EQ(ZwClose(h), STATUS_SUCCESS);
    EXPECT_EQ(ZwSetEvent(h, nullptr), STATUS_INVALID_HANDLE);
    ObReferenceObject(e);
    KeSetEvent(static_cast<PKEVENT>(e), IO_NO_INCREMENT, FALSE);
    waiter.join();
    EXPECT_EQ(status.load(), STATUS_SUCCESS);
    ObDereferenceObject(e);
    EXPECT_EQ(KeReadStateEvent(static_cast<PKEVENT>(e)), 1) << "one reference is left";
    ObDereferenceObject(e);
}

TEST_F(Handles, ZwWaitForSingleObjectJoinsASystemThread) {
    HANDLE h;
    auto routine = [](PVOID) {};
    ASSERT_EQ(
        PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, nullptr, routine, nullptr),
        STATUS_SUCCESS);
    EXPECT_EQ(ZwWaitForSingleObject(h, FALSE, nullptr), STATUS_SUCCESS);
    EXPECT_EQ(ZwSetEvent(h, nullptr), STATUS_OBJECT_TYPE_MISMATCH);
    EXPECT_EQ(ObCloseHandle(h, KernelMode), STATUS_SUCCESS);
}

TEST_F(Handles, BadArgumentsAndIrql) {
    HANDLE h = nullptr;
    EXPECT_EQ(ZwSetEvent(reinterpret_cast<HANDLE>(0x7FF0), nullptr), STATUS_INVALID_HANDLE);
    EXPECT_EQ(ZwWaitForSingleObject(reinterpret_cast<HANDLE>(0x7FF0), FALSE, nullptr),
              STATUS_INVALID_HANDLE);
    wchar_t name_text[] = L"\\BaseNamedObjects\\kmlab";
    UNICODE_STRING name;
    RtlInitUnicodeString(&name, name_text);
    OBJECT_ATTRIBUTES named;
    InitializeObjectAttributes(&named, &name, OBJ_KERNEL_HANDLE, nullptr, nullptr);
    EXPECT_EQ(ZwCreateEvent(&h, EVENT_ALL_ACCESS, &named, NotificationEvent, FALSE),
              STATUS_NOT_SUPPORTED)
        << "named objects are not emulated";
    // A kernel handle's value has the kernel-handle bit set, as Windows'
    // (0xFFFFFFFF80000000 on amd64) [ros-obref].
    HANDLE kernel_handle = nullptr;
    ASSERT_EQ(ZwCreateEvent(&kernel_handle, GENERIC_ALL, nullptr, NotificationEvent, FALSE),
              STATUS_SUCCESS);
    EXPECT_NE(reinterpret_cast<ULONG_PTR>(kernel_handle) & 0x80000000u, 0u);
    OBJECT_HANDLE_INFORMATION info{};
    PVOID e = nullptr;
    ASSERT_EQ(ObReferenceObjectByHandle(kernel_handle, 0, nullptr, KernelMode, &e, &info),
              STATUS_SUCCESS);
    EXPECT_EQ(info.GrantedAccess, EVENT_ALL_ACCESS) << "GENERIC_ALL maps to the type's all access";
    ObDereferenceObject(e);
    ZwClose(kernel_handle);
    // RtlInitUnicodeString clamps a length a USHORT cannot hold [ros-rtl].
    std::wstring long_name(20000, L'x');
    UNICODE_STRING clamped;
    RtlInitUnicodeString(&clamped, long_name.c_str());
    EXPECT_EQ(clamped.Length, (0xFFFFu & ~(sizeof(wchar_t) - 1)) - sizeof(wchar_t));
    EXPECT_EQ(clamped.MaximumLength, clamped.Length + sizeof(wchar_t));
    // A caller-owned KEVENT is not reference counted: these do nothing.
    KEVENT own;
    KeInitializeEvent(&own, NotificationEvent, FALSE);
    ObReferenceObject(&own);
    ObDereferenceObject(&own);
    // PASSIVE_LEVEL only [ddi:zwcreateevent][ddi:zwsetevent].
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    EXPECT_BUG_CHECK(ZwCreateEvent(&h, EVENT_ALL_ACCESS, nullptr, NotificationEvent, FALSE),
                     bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_BUG_CHECK(ZwSetEvent(h, nullptr), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
}

// One process, of type ProcessObject (Wine checks Type 3 [wine-test]), whose id
// is the one CLIENT_ID reports.
TEST_F(Process, OneProcessWhoseIdIsTheClientIds) {
    PEPROCESS p = IoGetCurrentProcess();
    EXPECT_EQ(p, PsInitialSystemProcess);
    EXPECT_EQ(p, PsGetCurrentProcess());
    EXPECT_EQ(p->Header.Type, ProcessObject);
    LARGE_INTEGER zero = zero_timeout();
    EXPECT_EQ(KeWaitForSingleObject(p, Executive, KernelMode, FALSE, &zero), STATUS_TIMEOUT)
        << "a running process is not signaled";

    HANDLE h;
    CLIENT_ID id{};
    std::atomic<HANDLE> inside{nullptr};
    auto routine = [](PVOID context) {
        static_cast<std::atomic<HANDLE>*>(context)->store(PsGetCurrentProcessId());
    };
    ASSERT_EQ(PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, &id, routine, &inside),
              STATUS_SUCCESS);
    PVOID thread = nullptr;
    ASSERT_EQ(ObReferenceObjectByHandle(h, 0, *PsThreadType, KernelMode, &thread, nullptr),
              STATUS_SUCCESS);
    EXPECT_EQ(ZwWaitForSingleObject(h, FALSE, nullptr), STATUS_SUCCESS);
    EXPECT_EQ(PsGetThreadId(static_cast<PETHREAD>(thread)), id.UniqueThread);
    EXPECT_EQ(inside.load(), id.UniqueProcess);
    EXPECT_EQ(PsGetCurrentProcessId(), id.UniqueProcess);
    EXPECT_EQ(PsGetProcessId(p), id.UniqueProcess);
    EXPECT_EQ(PsGetThreadId(KeGetCurrentThread()), PsGetCurrentThreadId());
    ObDereferenceObject(thread);
    ZwClose(h);
}
