// Pool allocation, the small Ex/Ps queries driver code calls beside its
// locks, and the one process.
#include <unistd.h>
#include <cstdint>
#include <cstdlib>

#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/thread.hpp>

namespace kmlab::nt {

PVOID ExAllocatePoolWithTag(POOL_TYPE PoolType, std::size_t NumberOfBytes, ULONG Tag) {
    (void)Tag;
    kernel::require_irql_at_most(PoolType == PagedPool ? APC_LEVEL : DISPATCH_LEVEL);
    // More than an address space holds: NULL, before rounding up could wrap
    // the size around to a small block.
    if (NumberOfBytes > static_cast<std::size_t>(PTRDIFF_MAX)) return nullptr;
    // aligned_alloc wants a multiple of the alignment; zero bytes still gets
    // a block, as the pool returns one.
    const std::size_t size = (NumberOfBytes + 15) / 16 * 16;
    return std::aligned_alloc(16, size == 0 ? 16 : size);
}

void ExFreePoolWithTag(PVOID P, ULONG Tag) {
    (void)Tag;
    kernel::require_irql_at_most(DISPATCH_LEVEL, P);
    std::free(P);
}

KPROCESSOR_MODE ExGetPreviousMode() {
    return KernelMode;
}

HANDLE PsGetCurrentThreadId() {
    return PsGetThreadId(kernel::current_thread());
}

HANDLE PsGetThreadId(PETHREAD Thread) {
    return reinterpret_cast<HANDLE>(static_cast<ULONG_PTR>(Thread->Extra->id));
}

namespace {
struct SystemProcess {
    KPROCESS process{};
    SystemProcess() noexcept {
        process.Header.Type = ProcessObject;
        process.Header.Size = static_cast<UCHAR>(sizeof(KPROCESS) / sizeof(ULONG));
        process.Header.SignalState = 0;  // a process signals when it exits
        InitializeListHead(&process.Header.WaitListHead);
    }
};
SystemProcess g_system_process;
}  // namespace

PEPROCESS PsInitialSystemProcess = &g_system_process.process;

PEPROCESS IoGetCurrentProcess() {
    return PsInitialSystemProcess;
}

PEPROCESS PsGetCurrentProcess() {
    return PsInitialSystemProcess;
}

HANDLE PsGetCurrentProcessId() {
    return PsGetProcessId(PsInitialSystemProcess);
}

HANDLE PsGetProcessId(PEPROCESS Process) {
    (void)Process;
    return reinterpret_cast<HANDLE>(static_cast<ULONG_PTR>(getpid()));
}

}  // namespace kmlab::nt
