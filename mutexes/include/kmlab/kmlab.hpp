// kmlab's idiomatic API, namespace kmlab:
//   KMutex<T, Backend>, FastMutex<T, Backend>, GuardedMutex<T, Backend>
//   (lock() / try_lock() / KMutex::lock_for() -> std::expected<Guard, Error>),
//   CriticalRegion, GuardedRegion, the Grt registry, and the backends
//   kmlab::backends::{Futex (default), Spin, Dispatcher}.
#pragma once

#include <kmlab/backends/backend.hpp>
#include <kmlab/backends/dispatcher.hpp>
#include <kmlab/backends/futex.hpp>
#include <kmlab/backends/spin.hpp>
#include <kmlab/mutexes/error.hpp>
#include <kmlab/mutexes/fast_mutex.hpp>
#include <kmlab/mutexes/grt.hpp>
#include <kmlab/mutexes/guarded_mutex.hpp>
#include <kmlab/mutexes/kmutex.hpp>
#include <kmlab/mutexes/regions.hpp>
