// Pool allocation and the small Ex/Ps queries driver code calls beside its
// locks.
#include <cstdlib>

#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/thread.hpp>

namespace kmlab::nt {

PVOID ExAllocatePoolWithTag(POOL_TYPE PoolType, std::size_t NumberOfBytes, ULONG Tag) {
    (void)Tag;
    kernel::require_irql_at_most(PoolType == PagedPool ? APC_LEVEL : DISPATCH_LEVEL);
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
    return reinterpret_cast<HANDLE>(static_cast<ULONG_PTR>(kernel::current_thread()->Extra->id));
}

}  // namespace kmlab::nt
