// Pool allocation, the small Ex/Ps queries driver code calls beside its
// locks, and the one process.
#include <malloc.h>
#include <unistd.h>
#include <cstdint>
#include <cstdlib>

#include <kmlab/kernel/pool.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/kernel/verifier.hpp>

namespace kmlab::kernel {
namespace {
PoolFreeHook g_pool_free_hook = nullptr;  // kernel/pool.hpp
}  // namespace
}  // namespace kmlab::kernel

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
    // The verifier: a lock in the block still held, or an ERESOURCE not
    // deleted (kernel/verifier.hpp, check_free).
    if (PKTHREAD t = kernel::verifier::initializing_thread();
        kernel::verifier::on(t) && P != nullptr) [[unlikely]]
        kernel::verifier::on_free(t, P, malloc_usable_size(P));
    // The whole usable block, so an access anywhere in it is seen.
    if (P != nullptr && kernel::g_pool_free_hook != nullptr &&
        kernel::g_pool_free_hook(P, malloc_usable_size(P)))
        return;
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

namespace kmlab::kernel {

PoolFreeHook set_pool_free_hook(PoolFreeHook hook) noexcept {
    const PoolFreeHook previous = g_pool_free_hook;
    g_pool_free_hook = hook;
    return previous;
}

void release_pool_block(void* block) noexcept {
    std::free(block);
}

}  // namespace kmlab::kernel
