// What the explorer's copies of the kernel's spin-lock family, ERESOURCE,
// push-lock, EX_SPIN_LOCK and time sources use from the explorer, beyond
// kernel_seam.hpp: the push lock's park over the model, virtual time, and
// the markers that pull each copy into a link (kernel_seam.hpp says how).
// Each explore/src/{spin_lock,resource,push_lock,ex_spin_lock,time,timer}_seam.cpp
// includes kernel_seam.hpp, then this header, then the kernel source.
//
// Under the model (kernel_seam::model_memory(): explore::run(), or a test's
// own DispatcherUnderModel inside explore()), those sources' lock words go
// through kernel_seam::Platform, so every operation on them is a scheduling
// point over model memory and every spin a Platform::spin_until, which
// blocks the spinner on what it read until another thread writes it: a
// holder switched out no longer hangs the run. Outside the model they are
// production's, a load and a branch more per operation in this copy only.
//
// Spinning at DISPATCH_LEVEL (KSPIN_LOCK, queued spin locks, EX_SPIN_LOCK):
// the model gives each thread a processor of its own and lets any of them
// stall at any step, so a holder at DISPATCH_LEVEL may be "switched out" for
// as long as the schedule says, as a slow or interrupted processor would
// leave it. No preemption rule of the real kernel is modelled: a thread at
// DISPATCH_LEVEL is not protected from being switched out, and the number of
// threads is not bounded by a number of processors (on a uniprocessor, or
// with more spinners than processors, Windows would behave as the model's
// schedules where the holder goes on). Every schedule explored is one a
// multiprocessor can produce; what a thread may not do at DISPATCH_LEVEL
// (wait, take a pageable lock) is the rules' business, as outside the model.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <map>

#include <kmlab/explore.hpp>
#include <kmlab/kernel/rw_lock_algorithm.hpp>
#include <kmlab/kernel/time.hpp>

#include "kernel_seam.hpp"

namespace kmlab::explore::kernel_seam {

// ---- the push lock's park (push_lock.cpp) ----
// Under the model: one futex sequence word per lock, in a table keyed by the
// lock's address (production's 64 shared buckets would make whether two
// locks share a word, and so the spurious wake-ups one sees, depend on where
// the run allocated them: a schedule would not replay). The words live as
// long as the program; only equality with a ticket read earlier in the same
// run matters, so what a word held before the run does not change any path.
// The spin phase before parking is production's (kSpinBeforePark): the
// explorer runs it too, its deadline expiring as a scheduling choice.
// Outside the model: rw_lock::push::NativePark.
struct PushPark {
    using platform = Platform;
    static constexpr std::chrono::nanoseconds kSpinBeforePark =
        rw_lock::push::NativePark::kSpinBeforePark;
    static std::uint32_t* word(const void* lock) {
        static std::map<const void*, std::uint32_t> words;
        return &words[lock];  // std::map: nodes never move
    }
    std::uint32_t ticket(const void* lock) {
        if (!model_memory()) return rw_lock::push::NativePark::ticket(lock);
        return explore::AtomicRef<std::uint32_t>(*word(lock)).load();
    }
    void wait(const void* lock, std::uint32_t ticket) {
        if (!model_memory()) return rw_lock::push::NativePark::wait(lock, ticket);
        (void)explore::detail::futex_wait(word(lock), ticket, false);
    }
    void wake_all(const void* lock) {
        if (!model_memory()) return rw_lock::push::NativePark::wake_all(lock);
        std::uint32_t* w = word(lock);
        explore::AtomicRef<std::uint32_t>(*w).fetch_add(1);
        explore::detail::futex_wake(w, INT_MAX);
    }
};

// Under the model: drains the running thread's TSO store buffer (a fence, one
// scheduling step), before memory that the model wrote goes back to native
// use (the queued spin lock's handle, on its caller's stack).
inline void drain_own_stores() {
    if (model_memory()) explore::Platform::full_fence();
}

// ---- virtual time (time.cpp, timer.cpp) ----
// Under the model time stands still: the steady clock reads
// explore::Platform::now() (its epoch), and the system time is
// kVirtualSystemTime, 2026-01-01 00:00:00 UTC in NT units (100 ns since
// 1601). Nothing advances either: a wait's deadline passes only as a
// scheduling choice (kernel_seam::deadline_expired), and a KTIMER expires
// only when a thread of the program calls kernel::expire_timer, whose place
// in the schedule is the choice (timer.hpp).
inline constexpr std::int64_t kVirtualSystemTime =
    kernel::kEpochDelta1601 + std::int64_t{1'767'225'600} * 10'000'000;
inline Deadline::clock::time_point steady_now() noexcept {
    return model_memory() ? explore::Platform::now() : Deadline::clock::now();
}
inline std::int64_t system_time_now() noexcept {
    if (model_memory()) return kVirtualSystemTime;
    const auto sys_now = std::chrono::system_clock::now().time_since_epoch();
    return std::chrono::duration_cast<kernel::nt_duration>(sys_now).count() +
           kernel::kEpochDelta1601;
}

// ---- the must-find mutant of the KSPIN_LOCK routines (spin_lock.cpp) ----
// While set: the ordinary acquire is a load then a plain store
// (spin_lock::Mutant::load_then_store), so two threads may both take the
// lock. tests/model/model_kernel_locks_test.cpp declares the setter.
bool spin_lock_acquire_mutant() noexcept;
void set_spin_lock_acquire_mutant(bool on) noexcept;

// ---- the markers that pull each copy into a link ----
void spin_lock_seam_marker() noexcept;
void resource_seam_marker() noexcept;
void push_lock_seam_marker() noexcept;
void ex_spin_lock_seam_marker() noexcept;
void time_seam_marker() noexcept;
void timer_seam_marker() noexcept;

}  // namespace kmlab::explore::kernel_seam
