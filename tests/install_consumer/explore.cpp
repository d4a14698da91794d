// The schedule explorer as a user gets it: find_package(kmlab), link
// kmlab::explore, explore a two-thread KEVENT program with a planted lost
// wake-up. Exits 0 only when the explorer finds it (a deadlock: T0 waits on
// the event for ever), prints its trace and schedule, and the schedule
// replays to the same violation, here through Config::replay; run.cmake
// replays it once more through KMLAB_MODEL_REPLAY, in a second process.
//
// The planted bug: T0 tests the flag, then clears the event (to drop a stale
// signal), then waits; T1 sets the flag and the event. T1 running between
// T0's test and its clear erases T1's only signal.
#include <cstdio>
#include <regex>
#include <string>

#include <kmlab/explore.hpp>
#include <kmlab/kmlab_nt.hpp>

namespace {
using namespace kmlab::nt;
namespace explore = kmlab::explore;

struct Shared {
    KEVENT ready;                   // notification event, signalled: a stale signal
    explore::Atomic<LONG> flag{0};  // a model location: its accesses are scheduling points
};

VOID Signaller(PVOID context) {
    auto* s = static_cast<Shared*>(context);
    s->flag.store(1);
    KeSetEvent(&s->ready, IO_NO_INCREMENT, FALSE);
    PsTerminateSystemThread(STATUS_SUCCESS);
}

void Body() {
    Shared s;
    KeInitializeEvent(&s.ready, NotificationEvent, TRUE);
    explore::label(&s.ready, sizeof s.ready, "ready");
    HANDLE handle = nullptr;
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, nullptr, OBJ_KERNEL_HANDLE, nullptr, nullptr);
    explore::check(NT_SUCCESS(PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, &oa, nullptr,
                                                   nullptr, Signaller, &s)),
                   "PsCreateSystemThread failed");
    PVOID thread = nullptr;
    explore::check(NT_SUCCESS(ObReferenceObjectByHandle(handle, THREAD_ALL_ACCESS, nullptr,
                                                        KernelMode, &thread, nullptr)),
                   "ObReferenceObjectByHandle failed");
    ZwClose(handle);
    if (s.flag.load() == 0) {
        KeClearEvent(&s.ready);  // the planted bug: erases a KeSetEvent since the test
        KeWaitForSingleObject(&s.ready, Executive, KernelMode, FALSE, nullptr);
    }
    KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, nullptr);  // join
    ObDereferenceObject(thread);
}
}  // namespace

int main() {
    explore::Config config;
    config.preemption_bound = 2;
    config = explore::config_from_environment(config);
    if (!config.replay.empty()) {
        // The second process of run.cmake: the schedule from the environment.
        const explore::Result r = explore::run(config, Body);
        std::printf("%s: replayed KMLAB_MODEL_REPLAY: %s\n", r.violation ? "PASS" : "FAIL",
                    r.violation ? r.what.c_str() : "no violation");
        return r.violation ? 0 : 1;
    }
    const explore::Result found = explore::run(config, Body);
    if (!found.violation) {
        std::printf("FAIL: explore: the lost wake-up was not found (%s)\n",
                    found.summary().c_str());
        return 1;
    }
    std::printf("explore: found after %ld schedules: %s\n", found.schedules, found.what.c_str());
    std::printf("schedule: %s\nreplay: %s\n", found.schedule.c_str(),
                found.replay_command().c_str());
    std::printf("trace:\n%s", found.trace.c_str());
    explore::Config again = config;
    again.replay = found.schedule;
    const explore::Result replayed = explore::run(again, Body);
    // Compared without addresses: objects the test did not label are named
    // by address, and each run allocates afresh.
    const std::regex address("0x[0-9a-f]+");
    const bool same = replayed.violation && std::regex_replace(replayed.what, address, "0x?") ==
                                                std::regex_replace(found.what, address, "0x?");
    const bool deadlock = found.what.find("deadlock") != std::string::npos;
    std::printf("%s: explore: lost wake-up %s, the schedule replays %s\n",
                same && deadlock ? "PASS" : "FAIL",
                deadlock ? "found as a deadlock" : "NOT reported as a deadlock",
                same ? "to the same violation" : "DIFFERENTLY");
    return same && deadlock ? 0 : 1;
}
