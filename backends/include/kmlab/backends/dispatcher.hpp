// The dispatcher backend: the locks over it are the emulated kernel's own
// objects. A KMutex<T, Dispatcher> is a KMUTEX acquired as
// KeWaitForSingleObject does (dispatcher::wait_for_mutex, which takes the
// KMutex's Deadline as it is), a FastMutex<T, Dispatcher> a FAST_MUTEX whose
// waiters block on its KEVENT, a GuardedMutex<T, Dispatcher> likewise (the
// raw locks pick those by the kKernelObjects trait, kmlab/mutexes/raw.hpp). It has
// no futex-style wait/wake of its own: no lock would use one.
#pragma once

#include <kmlab/backends/backend.hpp>

namespace kmlab::backends {

struct Dispatcher {
    static constexpr std::string_view name() { return "dispatcher"; }
    static constexpr bool kKernelObjects = true;
};
static_assert(WaitBackend<Dispatcher> && kernel_objects<Dispatcher>);

}  // namespace kmlab::backends
