// What the three explore_* examples share: a driver's test body run twice,
// first as a stress loop on real threads (what a test machine does), then
// under the schedule explorer (explore::run: every schedule within the
// preemption bound, the whole emulated kernel under the model), and the
// fixed version of the same body explored to the end.
//
// Each example prints, in this order: the stress loop's iterations and what
// it saw; the explorer's schedules until its find, the violation, the
// schedule that replays it (as the KMLAB_MODEL_REPLAY line to paste) and
// the trace of that schedule; the replay's result; and the fixed version's
// schedule count with its violations. It exits 0 only when the explorer
// found the planted bug (the expected kind), the schedule replayed to the
// same violation, and the fixed version was explored completely with none.
//
// With KMLAB_MODEL_REPLAY set, an example runs that one schedule of its
// buggy body instead and prints its trace (what a debugging session under
// gdb starts from); KMLAB_MODEL_BOUND and KMLAB_MODEL_VERBOSE apply as
// explore::config_from_environment() reads them.
// KMLAB_EXAMPLE_STRESS_ITERATIONS overrides the stress loop's 10^5 (the
// sanitizer builds' CTest entries run 10^4).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <regex>
#include <string>
#include <string_view>

#include <kmlab/explore.hpp>
#include <kmlab/kmlab_nt.hpp>

namespace example {
using namespace kmlab::nt;
namespace explore = kmlab::explore;

// ---- what the driver code calls ----

// PsCreateSystemThread, and a referenced pointer to the thread object, with
// the seeds' join idiom (reference by handle, close the handle).
inline PVOID StartSystemThread(PKSTART_ROUTINE routine, PVOID context) {
    HANDLE handle = nullptr;
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, nullptr, OBJ_KERNEL_HANDLE, nullptr, nullptr);
    if (!NT_SUCCESS(PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, &oa, nullptr, nullptr, routine,
                                         context))) {
        std::fprintf(stderr, "PsCreateSystemThread failed\n");
        std::exit(2);
    }
    PVOID thread = nullptr;
    const NTSTATUS status =
        ObReferenceObjectByHandle(handle, THREAD_ALL_ACCESS, nullptr, KernelMode, &thread, nullptr);
    ZwClose(handle);
    if (!NT_SUCCESS(status)) {
        std::fprintf(stderr, "ObReferenceObjectByHandle failed\n");
        std::exit(2);
    }
    return thread;
}

// Waits for a system thread to end (a thread object is signalled at exit).
inline void JoinSystemThread(PVOID thread) {
    KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, nullptr);
    ObDereferenceObject(thread);
}

// A wait that may never end if the driver has the bug. On real threads it
// waits one second at most, as a test machine's watchdog would, and counts a
// hang; under the explorer it waits without a timeout, so a lost wake-up is
// a deadlock the explorer reports (a timeout there would be a scheduling
// choice, which a correct program takes too).
inline std::atomic<long> g_hangs{0};
inline NTSTATUS WaitWatched(PVOID object) {
    if (explore::active())
        return KeWaitForSingleObject(object, Executive, KernelMode, FALSE, nullptr);
    LARGE_INTEGER one_second;
    one_second.QuadPart = -10'000'000;  // relative, in 100 ns units
    const NTSTATUS status =
        KeWaitForSingleObject(object, Executive, KernelMode, FALSE, &one_second);
    if (status == STATUS_TIMEOUT) ++g_hangs;
    return status;
}

// ---- the harness ----

struct Example {
    const char* name;  // the program's name
    const char* bug;   // what the bug does, e.g. "a lost wake-up"
    // What the explorer's report must contain for the find to count
    // ("deadlock", "destroyed memory").
    const char* expected;
    // The test body, buggy and fixed (model thread T0 under the explorer).
    std::function<void()> buggy;
    std::function<void()> fixed;
    // One stress iteration of the buggy body on real threads; returns true
    // when it saw the bug.
    std::function<bool()> stress_once;
    long stress_iterations = 100'000;
    // The trace of the find lists the test's memory operations too
    // (Config::verbose), not only the kernel routines.
    bool verbose_trace = false;
};

inline void print_trace(const std::string& trace) {
    std::fputs(trace.c_str(), stdout);
    if (!trace.empty() && trace.back() != '\n') std::fputc('\n', stdout);
}

// Two reports of one violation, compared without the addresses in them:
// each run gives its objects fresh addresses where the test named none.
inline bool same_violation(const std::string& a, const std::string& b) {
    static const std::regex address("0x[0-9a-f]+");
    return std::regex_replace(a, address, "0x?") == std::regex_replace(b, address, "0x?");
}

inline explore::Config default_config() {
    explore::Config c;
    c.preemption_bound = 2;
    c.memory = explore::Memory::sc;
    return explore::config_from_environment(c);
}

// Runs the example; returns the process's exit status.
inline int run_example(const Example& ex) {
    explore::Config config = default_config();
    config.verbose = config.verbose || ex.verbose_trace;
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (!config.replay.empty()) {
        std::printf("%s: replaying KMLAB_MODEL_REPLAY='%s' (buggy version)\n", ex.name,
                    config.replay.c_str());
        const explore::Result r = explore::run(config, ex.buggy);
        std::printf("%s\ntrace:\n", r.violation ? r.what.c_str() : "no violation on this schedule");
        print_trace(r.trace);
        return r.violation ? 0 : 1;
    }

    // 1. Stress: the buggy body on real threads.
    long iterations = ex.stress_iterations;
    if (const char* n = std::getenv("KMLAB_EXAMPLE_STRESS_ITERATIONS")) iterations = std::atol(n);
    const auto t0 = std::chrono::steady_clock::now();
    long seen = 0;
    for (long i = 0; i < iterations; ++i) {
        if (ex.stress_once()) ++seen;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string saw = seen == 0
                                ? std::string("no ") + ex.bug + " seen"
                                : std::string(ex.bug) + " seen " + std::to_string(seen) + " times";
    std::printf("stress: %ld iterations on real threads in %.1f s: %s\n", iterations, secs,
                saw.c_str());

    // 2. The explorer on the buggy body.
    const explore::Result found = explore::run(config, ex.buggy);
    bool ok = true;
    if (!found.violation) {
        std::printf("explorer (buggy): %s: NOT FOUND\n", found.summary().c_str());
        ok = false;
    } else {
        std::printf("explorer (buggy): found after %ld schedules (preemption bound %d): %s\n",
                    found.schedules, config.preemption_bound, found.what.c_str());
        std::printf("replay: %s\n", found.replay_command().c_str());
        std::printf("trace:\n");
        print_trace(found.trace);
        if (found.what.find(ex.expected) == std::string::npos) {
            std::printf("explorer (buggy): expected a report of %s\n", ex.expected);
            ok = false;
        }
        // The printed schedule, run once more, must end in the same violation.
        explore::Config again = config;
        again.replay = found.schedule;
        const explore::Result replayed = explore::run(again, ex.buggy);
        const bool same = replayed.violation && same_violation(replayed.what, found.what);
        std::printf("replayed: %s\n", same ? "the same violation" : "DIFFERENT");
        ok = ok && same;
    }

    // 3. The explorer on the fixed body: every schedule within the bound.
    const explore::Result clean = explore::run(config, ex.fixed);
    std::printf("explorer (fixed): %s\n", clean.summary().c_str());
    if (clean.violation) {
        std::printf("replay: %s\ntrace:\n", clean.replay_command().c_str());
        print_trace(clean.trace);
    }
    ok = ok && !clean.violation && clean.complete;
    std::printf("%s: %s\n", ex.name,
                !ok ? "FAILED"
                : seen == 0
                    ? "the explorer found the bug stress missed; the fixed version is clean"
                    : "the explorer found the bug (stress saw it too); the fixed version is "
                      "clean");
    return ok ? 0 : 1;
}

}  // namespace example
