// System threads. Their handles and the Ob/Zw routines that join them are
// the object manager's (object_manager.cpp).
//
// A thread object is reference counted (ThreadExtra::references): the running
// thread holds one, each handle one, each ObReferenceObject one. So the seeds'
// join idiom (reference by handle, close the handle, wait, dereference) works
// in any order, and a thread that finished long ago can still be waited on.
#include <unistd.h>
#include <cstdio>
#include <thread>

#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/verifier.hpp>
#include "dispatcher_core.hpp"
#include "object_manager.hpp"

namespace kmlab::nt {
using kernel::current_thread;

namespace {
// Unwinds a system thread's stack from PsTerminateSystemThread.
struct ThreadTermination {
    NTSTATUS status;
};

// The explorer's copy (explore/src/system_thread_seam.cpp): inside
// explore::run() a system thread is a model thread (explore::spawn) on the
// explorer's one OS thread, whose KTHREAD is a fiber-local (no OS-thread exit
// registration); otherwise, and in production, an OS thread.
#ifdef KMLAB_DISPATCHER_SEAM
void attach(PKTHREAD t) {
    if (explore::kernel_seam::active()) {
        kernel::detail::tls_current_thread = t;
        return;
    }
    kernel::attach_current_thread(t);
}
void system_thread_main(PKTHREAD t, PKSTART_ROUTINE start, PVOID context);
void start_thread(PKTHREAD t, PKSTART_ROUTINE start, PVOID context) {
    if (explore::kernel_seam::start_system_thread(t, &system_thread_main, start, context)) return;
    std::thread(system_thread_main, t, start, context).detach();
}
void trace_exit(PKTHREAD t) {
    explore::kernel_seam::routine("thread exit", t);
}
#else
void attach(PKTHREAD t) {
    kernel::attach_current_thread(t);
}
void system_thread_main(PKTHREAD t, PKSTART_ROUTINE start, PVOID context);
void start_thread(PKTHREAD t, PKSTART_ROUTINE start, PVOID context) {
    std::thread(system_thread_main, t, start, context).detach();
}
inline void trace_exit(PKTHREAD) {}
#endif

void system_thread_main(PKTHREAD t, PKSTART_ROUTINE start, PVOID context) {
    attach(t);
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
    trace_exit(t);
    kernel::exit_current_thread();
}
}  // namespace

NTSTATUS PsCreateSystemThread(PHANDLE ThreadHandle, ULONG DesiredAccess,
                              POBJECT_ATTRIBUTES ObjectAttributes, HANDLE ProcessHandle,
                              PCLIENT_ID ClientId, PKSTART_ROUTINE StartRoutine,
                              PVOID StartContext) {
    (void)ObjectAttributes;
    (void)ProcessHandle;
    // Documented for PASSIVE_LEVEL; Windows accepts APC_LEVEL, which the free
    // flavour follows.
    kernel::require_irql_documented_verifier(PASSIVE_LEVEL, APC_LEVEL, ThreadHandle);
    if (ThreadHandle == nullptr || StartRoutine == nullptr) return STATUS_INVALID_PARAMETER;
    PKTHREAD t = kernel::create_thread_object(true);
    // Started inside a critical region [ddi:pscreatesystemthread].
    t->KernelApcDisable = -1;
    t->Extra->base_kernel_apc_disable = -1;
    kernel::reference_thread(t);  // the handle's reference
    HANDLE handle;
    try {
        handle =
            kernel::insert_handle(t, kernel::map_generic_all(DesiredAccess, THREAD_ALL_ACCESS));
    } catch (...) {
        kernel::dereference_thread(t);  // the handle's
        kernel::dereference_thread(t);  // the never-started thread's
        throw;
    }
    try {
        start_thread(t, StartRoutine, StartContext);
    } catch (const std::exception&) {
        // No OS thread (std::system_error) or no memory for its state
        // (std::bad_alloc): the handle and the never-started thread's
        // reference go, and the caller gets the status Windows gives.
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

}  // namespace kmlab::nt
