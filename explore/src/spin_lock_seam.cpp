// kernel/src/spin_lock.cpp again, with its KMLAB_DISPATCHER_SEAM blocks: the
// explorer's copy (lock_seam.hpp says what each block does; kernel_seam.hpp
// how this object is pulled into a link ahead of libkmlab_kernel's spin_lock.o).
#define KMLAB_DISPATCHER_SEAM 1
#include "kernel_seam.hpp"
#include "lock_seam.hpp"

// After the seam headers, whose declarations its KMLAB_DISPATCHER_SEAM blocks use.
#include "spin_lock.cpp"  // NOLINT(bugprone-suspicious-include): a second translation of it

namespace kmlab::explore::kernel_seam {
void spin_lock_seam_marker() noexcept {}

namespace {
bool g_spin_lock_acquire_mutant = false;
}  // namespace
bool spin_lock_acquire_mutant() noexcept {
    return g_spin_lock_acquire_mutant;
}
void set_spin_lock_acquire_mutant(bool on) noexcept {
    g_spin_lock_acquire_mutant = on;
}
}  // namespace kmlab::explore::kernel_seam
