// A hook on the pool's free path, for tools that watch freed blocks: the
// schedule explorer marks a freed block destroyed (so a later model access
// to it is reported as a use after free), and a stress harness can keep
// freed blocks poisoned to notice a late write (as Driver Verifier's special
// pool does).
//
// Cost: ExFreePoolWithTag loads one pointer and tests it. The pool's free
// is no lock fast path, so a run-time hook is acceptable here where a link
// seam (the dispatcher's) would be needed on a lock's path.
#pragma once

#include <cstddef>

namespace kmlab::kernel {

// Called by ExFreePoolWithTag for every non-NULL block, with the block's
// usable size (at least the size it was allocated with). Returns true when
// it took the block: it frees it later itself, with release_pool_block();
// false lets ExFreePoolWithTag free it now.
using PoolFreeHook = bool (*)(void* block, std::size_t size);

// Installs `hook` (nullptr: none) and returns the one it replaces.
// Not synchronized with frees running on other threads: install it while
// no other thread frees pool.
PoolFreeHook set_pool_free_hook(PoolFreeHook hook) noexcept;

// Frees a block a hook took.
void release_pool_block(void* block) noexcept;

}  // namespace kmlab::kernel
