// System threads, thread handles and the Ob/Zw routines that join them.
//
// A thread object is reference counted (ThreadExtra::references): the running
// thread holds one, each handle one, each ObReferenceObject one. So the seeds'
// join idiom (reference by handle, close the handle, wait, dereference) works
// in any order, and a thread that finished long ago can still be waited on.
#include <unistd.h>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <kmlab/kernel/routines.hpp>
#include "dispatcher_core.hpp"

namespace kmlab::nt {
using kernel::current_thread;

namespace {
OBJECT_TYPE g_thread_type{"Thread"};
OBJECT_TYPE g_event_type{"Event"};
POBJECT_TYPE g_thread_type_ptr = &g_thread_type;
POBJECT_TYPE g_event_type_ptr = &g_event_type;

struct HandleEntry {
    PKTHREAD object;
    ACCESS_MASK granted;
};

// The handle table. Handle values are multiples of 4, as NT's are.
struct HandleTable {
    std::mutex lock;
    std::unordered_map<ULONG_PTR, HandleEntry> entries;
    ULONG_PTR next = 4;
};
HandleTable& handles() {
    static HandleTable table;
    return table;
}

// Unwinds a system thread's stack from PsTerminateSystemThread.
struct ThreadTermination {
    NTSTATUS status;
};

void system_thread_main(PKTHREAD t, PKSTART_ROUTINE start, PVOID context) {
    kernel::attach_current_thread(t);
    try {
        start(context);
    } catch (const ThreadTermination&) {
        // PsTerminateSystemThread: the normal way out.
    } catch (const BugCheck& bc) {
        report_fatal_bug_check(bc);
    } catch (const NtException& e) {
        report_fatal_bug_check(BugCheck(bugcheck::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED,
                                        static_cast<ULONG>(e.status()), 0, 0, 0));
    }
    kernel::exit_current_thread();
}
}  // namespace

POBJECT_TYPE* PsThreadType = &g_thread_type_ptr;
POBJECT_TYPE* ExEventObjectType = &g_event_type_ptr;

NTSTATUS PsCreateSystemThread(PHANDLE ThreadHandle, ULONG DesiredAccess,
                              POBJECT_ATTRIBUTES ObjectAttributes, HANDLE ProcessHandle,
                              PCLIENT_ID ClientId, PKSTART_ROUTINE StartRoutine,
                              PVOID StartContext) {
    (void)ObjectAttributes;
    (void)ProcessHandle;
    // Documented for PASSIVE_LEVEL; Windows accepts APC_LEVEL, which the free
    // flavour follows.
    kernel::require_irql_documented(PASSIVE_LEVEL, APC_LEVEL, ThreadHandle);
    if (ThreadHandle == nullptr || StartRoutine == nullptr) return STATUS_INVALID_PARAMETER;
    PKTHREAD t = kernel::create_thread_object(true);
    // Started inside a critical region [ddi:pscreatesystemthread].
    t->KernelApcDisable = -1;
    t->Extra->base_kernel_apc_disable = -1;
    kernel::reference_thread(t);  // the handle's reference
    HANDLE handle;
    {
        auto& table = handles();
        std::lock_guard g(table.lock);
        const ULONG_PTR value = table.next;
        table.next += 4;
        table.entries.emplace(value, HandleEntry{t, DesiredAccess | SYNCHRONIZE});
        handle = reinterpret_cast<HANDLE>(value);
    }
    try {
        std::thread(system_thread_main, t, StartRoutine, StartContext).detach();
    } catch (const std::system_error&) {
        ZwClose(handle);
        kernel::dereference_thread(t);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    if (ClientId != nullptr) {
        ClientId->UniqueProcess = reinterpret_cast<HANDLE>(static_cast<ULONG_PTR>(getpid()));
        ClientId->UniqueThread = reinterpret_cast<HANDLE>(static_cast<ULONG_PTR>(t->Extra->id));
    }
    *ThreadHandle = handle;
    return STATUS_SUCCESS;
}

NTSTATUS PsTerminateSystemThread(NTSTATUS ExitStatus) {
    kernel::require_irql_at_most(PASSIVE_LEVEL);
    if (!current_thread()->SystemThread) return STATUS_INVALID_PARAMETER;
    throw ThreadTermination{ExitStatus};
}

NTSTATUS ObReferenceObjectByHandle(HANDLE Handle, ACCESS_MASK DesiredAccess,
                                   POBJECT_TYPE ObjectType, KPROCESSOR_MODE AccessMode,
                                   PVOID* Object, POBJECT_HANDLE_INFORMATION HandleInformation) {
    kernel::require_irql_documented(PASSIVE_LEVEL, APC_LEVEL, Handle);  // as PsCreateSystemThread
    auto& table = handles();
    std::lock_guard g(table.lock);
    auto it = table.entries.find(reinterpret_cast<ULONG_PTR>(Handle));
    if (it == table.entries.end()) return STATUS_INVALID_HANDLE;
    if (ObjectType != nullptr && ObjectType != g_thread_type_ptr)
        return STATUS_OBJECT_TYPE_MISMATCH;
    // Kernel-mode callers skip the access check [ddi:obreferenceobjectbyhandle].
    if (AccessMode == UserMode && (DesiredAccess & ~it->second.granted) != 0)
        return STATUS_ACCESS_DENIED;
    kernel::reference_thread(it->second.object);
    *Object = it->second.object;
    if (HandleInformation != nullptr) {
        HandleInformation->HandleAttributes = OBJ_KERNEL_HANDLE;
        HandleInformation->GrantedAccess = it->second.granted;
    }
    return STATUS_SUCCESS;
}

void ObReferenceObject(PVOID Object) {
    auto* h = dispatcher::header_of(Object);
    if (h->Type == ThreadObject) kernel::reference_thread(static_cast<PKTHREAD>(Object));
}

void ObDereferenceObject(PVOID Object) {
    kernel::require_irql_at_most(DISPATCH_LEVEL, Object);
    auto* h = dispatcher::header_of(Object);
    if (h->Type == ThreadObject) kernel::dereference_thread(static_cast<PKTHREAD>(Object));
}

void ObfReferenceObject(PVOID Object) {
    ObReferenceObject(Object);
}
void ObfDereferenceObject(PVOID Object) {
    ObDereferenceObject(Object);
}

NTSTATUS ZwClose(HANDLE Handle) {
    kernel::require_irql_documented(PASSIVE_LEVEL, APC_LEVEL, Handle);  // as PsCreateSystemThread
    PKTHREAD object;
    {
        auto& table = handles();
        std::lock_guard g(table.lock);
        auto it = table.entries.find(reinterpret_cast<ULONG_PTR>(Handle));
        if (it == table.entries.end()) return STATUS_INVALID_HANDLE;
        object = it->second.object;
        table.entries.erase(it);
    }
    kernel::dereference_thread(object);
    return STATUS_SUCCESS;
}

}  // namespace kmlab::nt
