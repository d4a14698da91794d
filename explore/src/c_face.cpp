// The explorer's C entry points (<kmlab/wdm.h>: KmlabExplore,
// KmlabExploreCheck, KmlabExploreAssert), for C driver code: explore::run
// over a PKSTART_ROUTINE and its context, as PsCreateSystemThread takes them.
#include <cstdio>
#include <stdexcept>
#include <string>

#include <kmlab/explore.hpp>
#include <kmlab/kernel/bugcheck.hpp>
#include <kmlab/kernel/ntstatus.hpp>
// Last: after the C++ face and the standard headers (see nt/src/wdm.cpp).
#include <kmlab/wdm.h>

namespace {

// Result's strings (valid until the next KmlabExplore).
std::string g_message;
std::string g_schedule;
std::string g_trace;

kmlab::explore::Config config_of(const KMLAB_EXPLORE_OPTIONS* o) {
    kmlab::explore::Config c;
    if (o == nullptr) return c;
    if (o->PreemptionBound > 0) c.preemption_bound = static_cast<int>(o->PreemptionBound);
    if (o->RandomSchedules > 0) {
        c.random = true;
        c.random_schedules = o->RandomSchedules;
    }
    if (o->Seed != 0) c.seed = o->Seed;
    c.max_schedules = o->MaxSchedules;
    c.memory = o->Tso ? kmlab::explore::Memory::tso : kmlab::explore::Memory::sc;
    c.verbose = o->Verbose != FALSE;
    if (o->Replay != nullptr) c.replay = o->Replay;
    return c;
}

// A failed check outside a run: what a checked build's failed assertion does
// with no debugger attached, KMODE_EXCEPTION_NOT_HANDLED with
// STATUS_BREAKPOINT [bc:0x1E] (as KeSetPriorityThread's range ASSERT,
// kernel/src/waits.cpp). Through the handler: C code cannot catch it.
void failed_outside_a_run(const std::string& what) {
    std::fprintf(stderr, "kmlab: %s\n", what.c_str());
    kmlab::report_fatal_bug_check(
        kmlab::BugCheck(kmlab::bugcheck::KMODE_EXCEPTION_NOT_HANDLED,
                        static_cast<kmlab::nt::ULONG_PTR>(
                            static_cast<kmlab::nt::ULONG>(kmlab::nt::STATUS_BREAKPOINT))));
}

void failed(std::string what) {
    if (kmlab::explore::active()) {
        // The run ends inside fail(): the text lives on in a static, and the
        // moved-from parameter on the abandoned stack owns nothing.
        static std::string kept;
        kept = std::move(what);
        kmlab::explore::fail(kept.c_str());
    }
    failed_outside_a_run(what);
}

}  // namespace

extern "C" NTSTATUS KmlabExplore(PKSTART_ROUTINE Routine, PVOID Context,
                                 const KMLAB_EXPLORE_OPTIONS* Options,
                                 PKMLAB_EXPLORE_RESULT Result) {
    if (Routine == nullptr || Result == nullptr) return STATUS_INVALID_PARAMETER;
    if (kmlab::explore::active()) return STATUS_UNSUCCESSFUL;
    kmlab::explore::Config c;
    try {
        c = kmlab::explore::config_from_environment(config_of(Options));
    } catch (const std::invalid_argument&) {
        return STATUS_INVALID_PARAMETER;
    }
    kmlab::explore::Result r;
    try {
        r = kmlab::explore::run(c, [Routine, Context] { Routine(Context); });
    } catch (const std::logic_error&) {
        return STATUS_UNSUCCESSFUL;
    }
    g_message = r.what;
    g_schedule = r.schedule;
    g_trace = r.trace;
    Result->Schedules = r.schedules;
    Result->Complete = r.complete ? TRUE : FALSE;
    Result->Violation = r.violation ? TRUE : FALSE;
    Result->Message = g_message.c_str();
    Result->Schedule = g_schedule.c_str();
    Result->Trace = g_trace.c_str();
    return STATUS_SUCCESS;
}

extern "C" VOID KmlabExploreCheck(BOOLEAN Condition, PCSTR Message) {
    if (Condition) return;
    failed(Message != nullptr ? Message : "KmlabExploreCheck failed");
}

extern "C" VOID KmlabExploreAssert(PCSTR Expression, PCSTR File, ULONG Line, PCSTR Message) {
    std::string what = "ASSERT(" + std::string(Expression != nullptr ? Expression : "?") +
                       ") failed at " + (File != nullptr ? File : "?") + ":" + std::to_string(Line);
    if (Message != nullptr) what += std::string(": ") + Message;
    failed(std::move(what));
}
