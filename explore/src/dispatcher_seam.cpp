// The dispatcher again, compiled with its lock and parking through
// platform::g_dispatcher_seam (kernel/src/dispatcher.cpp, "A link seam") and,
// inside explore::run(), its virtual time, wake-word reset and trace through
// kernel_seam.hpp: this object, in libkmlab_explore.a, defines every symbol of
// libkmlab_kernel's dispatcher.o and comes first on the link line of any
// program that names kmlab::explore, so that program's dispatcher is this one.
// Without a model installed it runs as production's does.
#define KMLAB_DISPATCHER_SEAM 1
#include "kernel_seam.hpp"

// After kernel_seam.hpp, whose declarations its KMLAB_DISPATCHER_SEAM blocks use.
#include "dispatcher.cpp"  // NOLINT(bugprone-suspicious-include): a second translation of it
