// kmlab's idiomatic API, namespace kmlab:
//   KMutex<T, Backend>, FastMutex<T, Backend>, GuardedMutex<T, Backend>
//   (lock() / try_lock() / KMutex::lock_for() -> std::expected<Guard, Error>),
//   SpinLock<T>, QueuedSpinLock<T>, Resource<T>, PushLock<T>, RwSpinLock<T>
//   (lock() / lock_shared() / their try_ forms), CriticalRegion, GuardedRegion,
//   the Grt registry, and the backends
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
#include <kmlab/mutexes/push_lock.hpp>
#include <kmlab/mutexes/regions.hpp>
#include <kmlab/mutexes/resource.hpp>
#include <kmlab/mutexes/rw_spin_lock.hpp>
#include <kmlab/mutexes/spin_lock.hpp>
