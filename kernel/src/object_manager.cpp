// The object manager, as far as driver code meets it beside its locks: one
// handle table of kernel handles, the thread and event object types,
// ObReferenceObjectByHandle and the reference counts, ZwClose / ObCloseHandle,
// and the Zw event and wait routines over handles.
//
// Objects the emulator allocates are reference counted: a thread object
// (ThreadExtra::references: the running thread, each handle, each
// ObReferenceObject), and an event created by ZwCreateEvent (EventObject:
// each handle, each reference). An object is freed when its last reference
// goes. Objects the caller owns (a KEVENT in a device extension) are not
// counted: ObReferenceObject / ObDereferenceObject do nothing to them, as the
// emulator cannot tell them from freed memory otherwise.
//
// Not emulated: named objects (an OBJECT_ATTRIBUTES with an ObjectName), user
// handles and handle inheritance, security descriptors, generic rights other
// than GENERIC_ALL. Every handle is a kernel handle (OBJ_KERNEL_HANDLE): its
// value carries the kernel-handle bit, and a UserMode reference or close,
// which searches the process's own table, cannot name it [ros-obref].
#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/verifier.hpp>
#include "dispatcher_core.hpp"
#include "object_manager.hpp"

namespace kmlab::nt {
using kernel::current_thread;

namespace {
OBJECT_TYPE g_thread_type{"Thread"};
OBJECT_TYPE g_event_type{"Event"};
POBJECT_TYPE g_thread_type_ptr = &g_thread_type;
POBJECT_TYPE g_event_type_ptr = &g_event_type;

// An event ZwCreateEvent allocated; `event` first, so that the object pointer
// ObReferenceObjectByHandle hands out is a PKEVENT.
struct EventObject {
    KEVENT event;
    std::atomic<int> references{1};
};
static_assert(offsetof(EventObject, event) == 0);

struct HandleEntry {
    PVOID object;
    ACCESS_MASK granted;
};

// The handle table, and the set of events the object manager allocated (to
// tell them from caller-owned ones). Handle values are multiples of 4 with the
// kernel-handle bit set, as amd64 NT's kernel handles are
// (KERNEL_HANDLE_FLAG, 0xFFFFFFFF80000000) [ros-obref]. The lock is never held
// while a reference is dropped, which may free an object.
constexpr ULONG_PTR kKernelHandleFlag = ~ULONG_PTR{0x7FFFFFFF};
struct ObjectManager {
    std::mutex lock;
    std::unordered_map<ULONG_PTR, HandleEntry> handles;
    std::unordered_set<const void*> events;
    ULONG_PTR next = kKernelHandleFlag | 4;
};
ObjectManager& manager() {
    static ObjectManager m;
    return m;
}

bool is_thread(PVOID object) noexcept {
    return dispatcher::header_of(object)->Type == ThreadObject;
}

// The allocated event `object` is, or nullptr (caller-owned, or not an event).
EventObject* allocated_event(PVOID object) {
    const UCHAR type = dispatcher::header_of(object)->Type;
    if (type != EventNotificationObject && type != EventSynchronizationObject) return nullptr;
    auto& m = manager();
    std::lock_guard g(m.lock);
    return m.events.contains(object) ? static_cast<EventObject*>(object) : nullptr;
}

// Takes one reference on an object the object manager counts.
void reference(PVOID object) {
    if (is_thread(object)) {
        kernel::reference_thread(static_cast<PKTHREAD>(object));
    } else if (EventObject* e = allocated_event(object)) {
        e->references.fetch_add(1, std::memory_order_relaxed);
    }
}

void dereference(PVOID object) {
    if (is_thread(object)) {
        kernel::dereference_thread(static_cast<PKTHREAD>(object));
    } else if (EventObject* e = allocated_event(object)) {
        // acq_rel: whoever frees sees every write made under earlier references.
        if (e->references.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            {
                auto& m = manager();
                std::lock_guard g(m.lock);
                m.events.erase(e);
            }
            delete e;
        }
    }
}

POBJECT_TYPE type_of(PVOID object) noexcept {
    return is_thread(object) ? g_thread_type_ptr : g_event_type_ptr;
}

// ObReferenceObjectByHandle's lookup for the Zw routines: kernel mode, so no
// access check [ddi:obreferenceobjectbyhandle].
NTSTATUS reference_by_handle(HANDLE handle, POBJECT_TYPE type, PVOID* object) {
    return ObReferenceObjectByHandle(handle, 0, type, KernelMode, object, nullptr);
}
}  // namespace

POBJECT_TYPE* PsThreadType = &g_thread_type_ptr;
POBJECT_TYPE* ExEventObjectType = &g_event_type_ptr;

NTSTATUS ObReferenceObjectByHandle(HANDLE Handle, ACCESS_MASK DesiredAccess,
                                   POBJECT_TYPE ObjectType, KPROCESSOR_MODE AccessMode,
                                   PVOID* Object, POBJECT_HANDLE_INFORMATION HandleInformation) {
    // Documented for PASSIVE_LEVEL; Windows accepts APC_LEVEL, which the free
    // flavour follows.
    kernel::require_irql_documented_verifier(PASSIVE_LEVEL, APC_LEVEL, Handle);
    // NULL on every failure, so that cleanup which tests it is safe [ros-obref].
    *Object = nullptr;
    // A UserMode reference searches the process's user handles, of which the
    // emulator has none. Kernel-mode callers skip the access check
    // [ddi:obreferenceobjectbyhandle], so DesiredAccess decides nothing.
    (void)DesiredAccess;
    if (AccessMode != KernelMode) return STATUS_INVALID_HANDLE;
    auto& m = manager();
    std::lock_guard g(m.lock);
    auto it = m.handles.find(reinterpret_cast<ULONG_PTR>(Handle));
    if (it == m.handles.end()) return STATUS_INVALID_HANDLE;
    PVOID object = it->second.object;
    if (ObjectType != nullptr && ObjectType != type_of(object)) return STATUS_OBJECT_TYPE_MISMATCH;
    // Under the table lock, so that a concurrent close cannot free it first.
    if (is_thread(object)) {
        kernel::reference_thread(static_cast<PKTHREAD>(object));
    } else {
        static_cast<EventObject*>(object)->references.fetch_add(1, std::memory_order_relaxed);
    }
    *Object = object;
    if (HandleInformation != nullptr) {
        HandleInformation->HandleAttributes = OBJ_KERNEL_HANDLE;
        HandleInformation->GrantedAccess = it->second.granted;
    }
    return STATUS_SUCCESS;
}

void ObReferenceObject(PVOID Object) {
    reference(Object);
}

void ObDereferenceObject(PVOID Object) {
    kernel::require_irql_at_most(DISPATCH_LEVEL, Object);
    dereference(Object);
}

void ObfReferenceObject(PVOID Object) {
    ObReferenceObject(Object);
}
void ObfDereferenceObject(PVOID Object) {
    ObDereferenceObject(Object);
}

NTSTATUS ZwClose(HANDLE Handle) {
    // As ObReferenceObjectByHandle: documented PASSIVE_LEVEL, APC_LEVEL in the
    // free flavour [ddi:zwclose].
    kernel::require_irql_documented_verifier(PASSIVE_LEVEL, APC_LEVEL, Handle);
    PVOID object;
    {
        auto& m = manager();
        std::lock_guard g(m.lock);
        auto it = m.handles.find(reinterpret_cast<ULONG_PTR>(Handle));
        if (it == m.handles.end()) return STATUS_INVALID_HANDLE;
        object = it->second.object;
        m.handles.erase(it);
    }
    dereference(object);
    return STATUS_SUCCESS;
}

NTSTATUS ObCloseHandle(HANDLE Handle, KPROCESSOR_MODE PreviousMode) {
    // PreviousMode says whose handle table to search [ddi:obclosehandle]: a
    // UserMode close searches the process's user handles, of which the
    // emulator has none [ros-obref].
    if (PreviousMode != KernelMode) {
        kernel::require_irql_documented_verifier(PASSIVE_LEVEL, APC_LEVEL, Handle);
        return STATUS_INVALID_HANDLE;
    }
    return ZwClose(Handle);
}

NTSTATUS ZwCreateEvent(PHANDLE EventHandle, ACCESS_MASK DesiredAccess,
                       POBJECT_ATTRIBUTES ObjectAttributes, EVENT_TYPE EventType,
                       BOOLEAN InitialState) {
    kernel::require_irql_at_most(PASSIVE_LEVEL, EventHandle);  // [ddi:zwcreateevent]
    if (EventHandle == nullptr) return STATUS_INVALID_PARAMETER;
    if (EventType != NotificationEvent && EventType != SynchronizationEvent)
        return STATUS_INVALID_PARAMETER;
    if (ObjectAttributes != nullptr && ObjectAttributes->ObjectName != nullptr)
        return STATUS_NOT_SUPPORTED;  // named objects are not emulated (see the top)
    auto e = std::make_unique<EventObject>();
    KeInitializeEvent(&e->event, EventType, InitialState);
    auto& m = manager();
    {
        std::lock_guard g(m.lock);
        m.events.insert(e.get());
    }
    // The reference the new EventObject holds is the handle's.
    try {
        *EventHandle = kernel::insert_handle(
            e.get(), kernel::map_generic_all(DesiredAccess, EVENT_ALL_ACCESS));
    } catch (...) {
        std::lock_guard g(m.lock);
        m.events.erase(e.get());
        throw;
    }
    e.release();
    return STATUS_SUCCESS;
}

namespace {
// Runs `op` on the event behind `handle`, holding a reference meanwhile.
template <class Op>
NTSTATUS with_event(HANDLE handle, Op op) {
    kernel::require_irql_at_most(PASSIVE_LEVEL, handle);  // [ddi:zwsetevent]
    PVOID object;
    const NTSTATUS status = reference_by_handle(handle, g_event_type_ptr, &object);
    if (status != STATUS_SUCCESS) return status;
    op(static_cast<PRKEVENT>(object));
    dereference(object);
    return STATUS_SUCCESS;
}
}  // namespace

// NtSetEvent boosts the woken thread by EVENT_INCREMENT [ros-event].
NTSTATUS ZwSetEvent(HANDLE EventHandle, PLONG PreviousState) {
    return with_event(EventHandle, [&](PRKEVENT e) {
        const LONG previous = KeSetEvent(e, EVENT_INCREMENT, FALSE);
        if (PreviousState != nullptr) *PreviousState = previous;
    });
}

NTSTATUS ZwResetEvent(HANDLE EventHandle, PLONG PreviousState) {
    return with_event(EventHandle, [&](PRKEVENT e) {
        const LONG previous = KeResetEvent(e);
        if (PreviousState != nullptr) *PreviousState = previous;
    });
}

NTSTATUS ZwClearEvent(HANDLE EventHandle) {
    return with_event(EventHandle, [](PRKEVENT e) { KeClearEvent(e); });
}

NTSTATUS ZwWaitForSingleObject(HANDLE Handle, BOOLEAN Alertable, PLARGE_INTEGER Timeout) {
    kernel::require_irql_at_most(PASSIVE_LEVEL, Handle);  // [ddi:zwwaitforsingleobject]
    PVOID object;
    const NTSTATUS status = reference_by_handle(Handle, nullptr, &object);
    if (status != STATUS_SUCCESS) return status;
    // The reference keeps the object alive through the wait, whoever closes
    // the handle meanwhile. The previous mode is KernelMode (ExGetPreviousMode).
    NTSTATUS result;
    try {
        result = KeWaitForSingleObject(object, UserRequest, KernelMode, Alertable, Timeout);
    } catch (...) {
        dereference(object);
        throw;
    }
    dereference(object);
    return result;
}

}  // namespace kmlab::nt

namespace kmlab::kernel {

nt::ACCESS_MASK map_generic_all(nt::ACCESS_MASK desired, nt::ACCESS_MASK all_access) noexcept {
    return (desired & nt::GENERIC_ALL) != 0 ? (desired & ~nt::GENERIC_ALL) | all_access : desired;
}

nt::HANDLE insert_handle(nt::PVOID object, nt::ACCESS_MASK granted) {
    auto& m = nt::manager();
    std::lock_guard g(m.lock);
    const nt::ULONG_PTR value = m.next;
    m.next += 4;
    m.handles.emplace(value, nt::HandleEntry{object, granted});
    return reinterpret_cast<nt::HANDLE>(value);
}

}  // namespace kmlab::kernel
