// A driver-shaped example: three system threads each add to three counters,
// one guarded by a KMUTEX, one by a FAST_MUTEX and one by a KGUARDED_MUTEX,
// then the "DriverEntry" thread joins them with the seeds' idiom (reference
// by handle, close the handle, wait, dereference) and prints the totals.
//
// Apart from the include and the using-directive this is ordinary WDK code.
#include <cstdio>

#include <kmlab/kmlab_nt.hpp>
using namespace kmlab::nt;

namespace {
constexpr int kThreads = 3;
constexpr int kIterations = 1500;

struct DeviceExtension {
    KMUTEX Mutex;
    FAST_MUTEX FastMutex;
    KGUARDED_MUTEX GuardedMutex;
    ULONG MutexCounter;
    ULONG FastMutexCounter;
    ULONG GuardedMutexCounter;
};

void WorkerRoutine(PVOID StartContext) {
    auto* ext = static_cast<DeviceExtension*>(StartContext);
    for (int i = 0; i < kIterations; ++i) {
        KeWaitForSingleObject(&ext->Mutex, Executive, KernelMode, FALSE, nullptr);
        ext->MutexCounter++;
        KeReleaseMutex(&ext->Mutex, FALSE);

        ExAcquireFastMutex(&ext->FastMutex);  // raises to APC_LEVEL
        ext->FastMutexCounter++;
        ExReleaseFastMutex(&ext->FastMutex);

        KeAcquireGuardedMutex(&ext->GuardedMutex);  // guarded region
        ext->GuardedMutexCounter++;
        KeReleaseGuardedMutex(&ext->GuardedMutex);
    }
    PsTerminateSystemThread(STATUS_SUCCESS);
}
}  // namespace

int main() {
    DeviceExtension ext{};
    KeInitializeMutex(&ext.Mutex, 0);
    ExInitializeFastMutex(&ext.FastMutex);
    KeInitializeGuardedMutex(&ext.GuardedMutex);

    HANDLE threads[kThreads] = {};
    for (auto& thread_handle : threads) {
        OBJECT_ATTRIBUTES oa;
        InitializeObjectAttributes(&oa, nullptr, OBJ_KERNEL_HANDLE, nullptr, nullptr);
        NTSTATUS status = PsCreateSystemThread(&thread_handle, THREAD_ALL_ACCESS, &oa, nullptr,
                                               nullptr, WorkerRoutine, &ext);
        if (!NT_SUCCESS(status)) {
            std::fprintf(stderr, "PsCreateSystemThread failed: 0x%08X\n",
                         static_cast<unsigned>(status));
            return 1;
        }
    }

    for (HANDLE thread_handle : threads) {
        if (thread_handle != nullptr && KeGetCurrentIrql() <= APC_LEVEL) {
            PVOID thread_obj = nullptr;
            NTSTATUS ref_status = ObReferenceObjectByHandle(
                thread_handle, THREAD_ALL_ACCESS, nullptr, KernelMode, &thread_obj, nullptr);
            ZwClose(thread_handle);
            if (ref_status == STATUS_SUCCESS) {
                KeWaitForSingleObject(thread_obj, Executive, KernelMode, FALSE, nullptr);
                ObfDereferenceObject(thread_obj);
            }
        }
    }

    const ULONG expected = kThreads * kIterations;
    std::printf("KMUTEX          counter = %u (expected %u)\n", ext.MutexCounter, expected);
    std::printf("FAST_MUTEX      counter = %u (expected %u)\n", ext.FastMutexCounter, expected);
    std::printf("KGUARDED_MUTEX  counter = %u (expected %u)\n", ext.GuardedMutexCounter, expected);
    const bool ok = ext.MutexCounter == expected && ext.FastMutexCounter == expected &&
                    ext.GuardedMutexCounter == expected && KeReadStateMutex(&ext.Mutex) == 1 &&
                    ext.FastMutex.Count == FM_LOCK_BIT && ext.GuardedMutex.Count == GM_LOCK_BIT;
    std::printf("%s\n", ok ? "all totals match; every mutex is free again" : "MISMATCH");
    return ok ? 0 : 1;
}
