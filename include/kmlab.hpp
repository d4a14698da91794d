// kmlab's idiomatic API, namespace kmlab:
//   KMutex<T, Backend>, FastMutex<T, Backend>, GuardedMutex<T, Backend>
//   (lock() / try_lock() / KMutex::lock_for() -> std::expected<Guard, Error>),
//   CriticalRegion, GuardedRegion, the Grt registry, and the backends
//   kmlab::backends::{Futex (default), Spin, Dispatcher}.
#pragma once

#include "backends/backend.hpp"
#include "backends/dispatcher_backend.hpp"
#include "backends/futex_backend.hpp"
#include "backends/spin.hpp"
#include "mutexes/error.hpp"
#include "mutexes/fast_mutex.hpp"
#include "mutexes/grt.hpp"
#include "mutexes/guarded_mutex.hpp"
#include "mutexes/kmutex.hpp"
#include "mutexes/regions.hpp"
