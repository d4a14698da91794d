// A driver-shaped program with a latent lock-order deadlock, run with Driver
// Verifier on (the verifier flavour, kernel/verifier.hpp).
//
// The device extension has two FAST_MUTEXes. The IOCTL path takes the
// configuration lock, then the queue lock; the cleanup path, written later by
// someone else, takes the queue lock, then the configuration lock. Each runs
// on a system thread of its own, and DriverEntry waits for the first to end
// before it starts the second: the two never overlap, so the program never
// hangs here, and a stress test would pass. Under a customer's load the two
// paths meet, each holding the lock the other waits for.
//
// Deadlock Detection reports the cycle the first time both orders have been
// seen: bug check 0xC4, parameter 1 = 0x1001, at the cleanup path's
// acquisition of the configuration lock [bc:0xC4], with a report in
// !deadlock's layout naming both locks and both threads [dbg-deadlock]. On
// Windows it stops the machine; here the default handler prints it and
// aborts, and this program installs a handler of its own that prints it and
// lets the driver go on, as the debugger's `g` would. It exits 0 when the
// report came and named both locks, 1 otherwise.
//
// The verifier is turned on in code below; KMLAB_FLAVOR=verifier in the
// environment does the same for any program (KMLAB_VERIFIER_STACKS=1 adds
// each acquisition's stack, as !deadlock 1).
#include <cstdio>
#include <string>

#include <kmlab/kernel/verifier.hpp>
#include <kmlab/kmlab_nt.hpp>
using namespace kmlab::nt;
namespace verifier = kmlab::kernel::verifier;

namespace {

struct DeviceExtension {
    FAST_MUTEX ConfigLock;  // guards Config
    FAST_MUTEX QueueLock;   // guards Pending
    ULONG Config;
    ULONG Pending;
};

// IRP_MJ_DEVICE_CONTROL: a new configuration applies to the queued requests.
void DispatchDeviceControl(PVOID Context) {
    auto* ext = static_cast<DeviceExtension*>(Context);
    ExAcquireFastMutex(&ext->ConfigLock);
    ExAcquireFastMutex(&ext->QueueLock);
    ext->Config++;
    ext->Pending = 0;
    ExReleaseFastMutex(&ext->QueueLock);
    ExReleaseFastMutex(&ext->ConfigLock);
    PsTerminateSystemThread(STATUS_SUCCESS);
}

// IRP_MJ_CLEANUP: drain the queue, then reset the configuration. The
// opposite order.
void DispatchCleanup(PVOID Context) {
    auto* ext = static_cast<DeviceExtension*>(Context);
    ExAcquireFastMutex(&ext->QueueLock);
    ext->Pending = 0;
    ExAcquireFastMutex(&ext->ConfigLock);  // closes the cycle: 0xC4 / 0x1001
    ext->Config = 0;
    ExReleaseFastMutex(&ext->ConfigLock);
    ExReleaseFastMutex(&ext->QueueLock);
    PsTerminateSystemThread(STATUS_SUCCESS);
}

// Runs `routine` on a system thread and waits for it to end.
bool RunOnSystemThread(PKSTART_ROUTINE routine, PVOID context) {
    HANDLE handle = nullptr;
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, nullptr, OBJ_KERNEL_HANDLE, nullptr, nullptr);
    if (!NT_SUCCESS(PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, &oa, nullptr, nullptr, routine,
                                         context)))
        return false;
    PVOID thread = nullptr;
    const NTSTATUS status =
        ObReferenceObjectByHandle(handle, THREAD_ALL_ACCESS, nullptr, KernelMode, &thread, nullptr);
    ZwClose(handle);
    if (!NT_SUCCESS(status)) return false;
    KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, nullptr);
    ObfDereferenceObject(thread);
    return true;
}

int g_reports = 0;
std::string g_report;

// The bug-check handler: print the stop and the verifier's report, and go on.
void OnBugCheck(const kmlab::BugCheck& bc) {
    ++g_reports;
    std::printf("%s\n", bc.what());
    if (auto r = verifier::last_report()) {
        g_report = r->text();
        std::printf("%s", g_report.c_str());
    }
}

}  // namespace

int main() {
    kmlab::set_flavor(kmlab::Flavor::verifier);
    kmlab::set_bug_check_handler(OnBugCheck);

    // DriverEntry.
    DeviceExtension ext{};
    ExInitializeFastMutex(&ext.ConfigLock);
    ExInitializeFastMutex(&ext.QueueLock);
    // Names for the report (else each is named by its initialization site).
    verifier::set_name(&ext.ConfigLock, "ConfigLock");
    verifier::set_name(&ext.QueueLock, "QueueLock");

    if (!RunOnSystemThread(DispatchDeviceControl, &ext) ||
        !RunOnSystemThread(DispatchCleanup, &ext)) {
        std::printf("verifier_lock_order: could not start a system thread\n");
        return 1;
    }

    const bool named =
        g_report.find("Deadlock detected (2 resources in 2 threads)") != std::string::npos &&
        g_report.find("'ConfigLock'") != std::string::npos &&
        g_report.find("'QueueLock'") != std::string::npos;
    if (g_reports != 1 || !named) {
        std::printf("verifier_lock_order: NO REPORT of the latent deadlock (%d reports)\n",
                    g_reports);
        return 1;
    }
    std::printf("verifier_lock_order: the latent ConfigLock/QueueLock deadlock was reported\n");
    return 0;
}
