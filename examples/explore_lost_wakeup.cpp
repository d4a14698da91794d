// A lost wake-up, found by the schedule explorer where stress does not.
//
// The driver issues a request to a worker thread and waits for the request's
// completion on a notification event that it reuses from one request to the
// next. The event may still be signalled by the previous request, so the
// driver clears it before waiting, but only after testing whether the
// request has completed already:
//
//     if (!req->Completed) {            // (1) not yet...
//         KeClearEvent(&req->Done);     // (3) ...drops the signal of (2)
//         KeWaitForSingleObject(&req->Done, ...);   // waits for ever
//     }
//                                       // worker: (2) Completed = 1;
//                                       //             KeSetEvent(&req->Done)
//
// When the worker completes the request between (1) and (3), its KeSetEvent
// is erased and the wait never ends. On real threads the device's latency
// (10 us here) puts the completion long after (3), and the window between
// (1) and (3) is a few instructions wide: 10^5 requests do not hit it (only
// a preemption of the issuer inside the window could). Under the explorer
// time is virtual, so the latency may end at any scheduling point: the same
// test body, run under every schedule within two preemptions, hangs, and
// the hang is reported as a deadlock, with the schedule that replays it.
//
// The fix: clear the event before the request is issued, so that a
// completion can only set it afterwards.
//
// The request's own field goes through a Platform P, as kmlab's lock
// algorithms do (platform/platform.hpp): std::atomic on real threads, the
// explorer's memory under it, where each access is a scheduling point.
#include "explore_example.hpp"

namespace {
using namespace kmlab::nt;
using example::explore::Platform;

template <class P>
struct Request {
    KEVENT Done;  // notification event, reused request after request
    typename P::template atomic<LONG> Completed{0};
};

// The worker: waits for the device, completes the request, signals it.
template <class P>
VOID CompleteRequest(PVOID Context) {
    auto* req = static_cast<Request<P>*>(Context);
    LARGE_INTEGER latency;
    latency.QuadPart = -100;  // the device's 10 us, relative, in 100 ns units
    KeDelayExecutionThread(KernelMode, FALSE, &latency);
    req->Completed.store(1);
    KeSetEvent(&req->Done, IO_NO_INCREMENT, FALSE);
    PsTerminateSystemThread(STATUS_SUCCESS);
}

// The test body: one request, issued and waited for. Returns whether the
// wait ended by the worker's signal (false: it would have hung).
template <class P, bool Fixed>
bool IssueAndWait() {
    Request<P> req;
    // Signalled, as the previous request left it.
    KeInitializeEvent(&req.Done, NotificationEvent, TRUE);
    if (kmlab::explore::active()) kmlab::explore::label(&req.Done, sizeof req.Done, "Done");
    if constexpr (Fixed) KeClearEvent(&req.Done);  // the fix: before the request is issued
    PVOID worker = example::StartSystemThread(CompleteRequest<P>, &req);
    NTSTATUS status = STATUS_SUCCESS;
    if constexpr (Fixed) {
        status = example::WaitWatched(&req.Done);
    } else if (req.Completed.load() == 0) {
        KeClearEvent(&req.Done);  // BUG: a completion since the test is erased
        status = example::WaitWatched(&req.Done);
    }
    example::JoinSystemThread(worker);
    return status == STATUS_SUCCESS;
}
}  // namespace

int main() {
    example::Example ex;
    ex.name = "explore_lost_wakeup";
    ex.bug = "lost wake-up";
    ex.expected = "deadlock";
    ex.buggy = [] { IssueAndWait<Platform, false>(); };
    ex.fixed = [] { IssueAndWait<Platform, true>(); };
    ex.stress_once = [] { return !IssueAndWait<kmlab::platform::Native, false>(); };
    return example::run_example(ex);
}
