// kernel/src/fast_mutex.cpp again, with its KMLAB_DISPATCHER_SEAM blocks: the
// explorer's copy (kernel_seam.hpp says what each block does and how this
// object is pulled into a link ahead of libkmlab_kernel's fast_mutex.o).
#define KMLAB_DISPATCHER_SEAM 1
#include "kernel_seam.hpp"

// After kernel_seam.hpp, whose declarations its KMLAB_DISPATCHER_SEAM blocks use.
#include "fast_mutex.cpp"  // NOLINT(bugprone-suspicious-include): a second translation of it

namespace kmlab::explore::kernel_seam {
void fast_mutex_seam_marker() noexcept {}
}  // namespace kmlab::explore::kernel_seam
