// What the dispatcher fast paths' model tests share (model_kernel_fast_test.cpp,
// model_kernel_fast_races_test.cpp): their configuration, the busy mark,
// a system thread started and joined as a driver does, and a run in one
// dispatcher lock mode.
#pragma once

#include <algorithm>

#include <kmlab/explore.hpp>
#include <kmlab/kernel/routines.hpp>
#include "dispatcher_core.hpp"
#include "model_program.hpp"

namespace kmlab::explore::kernel_fast {

using namespace kmlab::nt;

inline Config config(Memory m, int bound = 2) {
    Config c;
    c.memory = m;
    c.preemption_bound = std::max(kSanitized ? 1 : bound, bound_override());
    return c;
}

// The busy mark (dispatcher_core.hpp, "The fast paths").
inline bool busy(const DISPATCHER_HEADER& h) {
    return (h.Lock & dispatcher::kObjectBusy) != 0;
}

// PsCreateSystemThread, then the driver's join: reference the thread object
// by its handle, close the handle, wait on the object, dereference it.
inline void start(PKSTART_ROUTINE routine, PVOID context, PKTHREAD* thread) {
    HANDLE h = nullptr;
    check(PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, nullptr, routine,
                               context) == STATUS_SUCCESS,
          "PsCreateSystemThread failed");
    PVOID object = nullptr;
    check(ObReferenceObjectByHandle(h, SYNCHRONIZE, *PsThreadType, KernelMode, &object, nullptr) ==
              STATUS_SUCCESS,
          "ObReferenceObjectByHandle failed");
    ZwClose(h);
    *thread = static_cast<PKTHREAD>(object);
}
inline void join(PKTHREAD thread) {
    check(KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, nullptr) == STATUS_SUCCESS,
          "the join's wait failed");
    ObDereferenceObject(thread);
}

inline Result run_in(dispatcher::LockMode mode, const Config& c, void (*body)()) {
    dispatcher::set_lock_mode(mode);
    Result r = run(c, body);
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    return r;
}

}  // namespace kmlab::explore::kernel_fast
