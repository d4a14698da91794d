// A lock-order deadlock, found by the schedule explorer where stress does not.
//
// The driver guards its configuration and its statistics with a KMUTEX
// each. Updating the configuration takes ConfigLock, then StatsLock (to
// count the update); resetting the statistics takes StatsLock, then
// ConfigLock (to read the sampling period). Two paths, two locks, opposite
// orders:
//
//     UpdateConfig: ConfigLock ... StatsLock     ResetStats: StatsLock ... ConfigLock
//
// The configuration is updated from the IOCTL path; the statistics are
// reset by a system thread the driver starts, after one sampling period
// (KeDelayExecutionThread). When each path holds its first lock, each waits
// for the other's for ever. On real threads the IOCTL path holds ConfigLock
// for well under a microsecond, long before the period ends: 10^5 rounds do
// not deadlock. Under the explorer time is virtual: the period may end at
// any scheduling point, so the same test body, run under every schedule
// within two preemptions, deadlocks, and the report names each blocked
// thread, the mutex it waits on and that mutex's owner.
//
// The fix: one lock order, ConfigLock before StatsLock, on both paths.
#include "explore_example.hpp"

namespace {
using namespace kmlab::nt;

struct DeviceExtension {
    KMUTEX ConfigLock;
    KMUTEX StatsLock;
    ULONG SamplingPeriod;  // under ConfigLock
    ULONG Updates;         // under StatsLock
    ULONG Samples;         // under StatsLock
};

// Takes `mutex`, through the watched wait (a hang counts on real threads,
// and is a deadlock under the explorer). False: it was never acquired.
bool Acquire(KMUTEX* mutex) {
    return example::WaitWatched(mutex) == STATUS_SUCCESS;
}

// The IOCTL path.
void UpdateConfig(DeviceExtension* ext, ULONG period) {
    if (Acquire(&ext->ConfigLock)) {
        ext->SamplingPeriod = period;
        if (Acquire(&ext->StatsLock)) {
            ++ext->Updates;
            KeReleaseMutex(&ext->StatsLock, FALSE);
        }
        KeReleaseMutex(&ext->ConfigLock, FALSE);
    }
}

// The system thread: one sampling period, then the reset.
template <bool Fixed>
VOID ResetStats(PVOID Context) {
    auto* ext = static_cast<DeviceExtension*>(Context);
    LARGE_INTEGER period;
    period.QuadPart = -100;  // 10 us, relative, in 100 ns units
    KeDelayExecutionThread(KernelMode, FALSE, &period);
    if constexpr (Fixed) {
        // The fix: the driver's one order, ConfigLock before StatsLock.
        if (Acquire(&ext->ConfigLock)) {
            if (Acquire(&ext->StatsLock)) {
                ext->Samples = ext->SamplingPeriod;
                ext->Updates = 0;
                KeReleaseMutex(&ext->StatsLock, FALSE);
            }
            KeReleaseMutex(&ext->ConfigLock, FALSE);
        }
    } else if (Acquire(&ext->StatsLock)) {
        ext->Updates = 0;
        if (Acquire(&ext->ConfigLock)) {  // BUG: the opposite order to UpdateConfig's
            ext->Samples = ext->SamplingPeriod;
            KeReleaseMutex(&ext->ConfigLock, FALSE);
        }
        KeReleaseMutex(&ext->StatsLock, FALSE);
    }
    PsTerminateSystemThread(STATUS_SUCCESS);
}

// The test body: the reset thread started, then an IOCTL updating the
// configuration, then the join. Returns whether every wait was satisfied
// (false: a deadlock, broken by the watchdog's timeout on real threads).
template <bool Fixed>
bool BothPaths() {
    DeviceExtension ext{};
    KeInitializeMutex(&ext.ConfigLock, 0);
    KeInitializeMutex(&ext.StatsLock, 0);
    if (kmlab::explore::active()) {
        kmlab::explore::label(&ext.ConfigLock, sizeof ext.ConfigLock, "ConfigLock");
        kmlab::explore::label(&ext.StatsLock, sizeof ext.StatsLock, "StatsLock");
    }
    const long hangs = example::g_hangs.load();
    PVOID reset = example::StartSystemThread(ResetStats<Fixed>, &ext);
    UpdateConfig(&ext, 10);
    example::JoinSystemThread(reset);
    kmlab::explore::check(
        KeReadStateMutex(&ext.ConfigLock) == 1 && KeReadStateMutex(&ext.StatsLock) == 1,
        "a mutex is still owned after both paths ended");
    return example::g_hangs.load() == hangs;
}
}  // namespace

int main() {
    example::Example ex;
    ex.name = "explore_lock_order";
    ex.bug = "deadlock";
    ex.expected = "deadlock";
    ex.buggy = [] { BothPaths<false>(); };
    ex.fixed = [] { BothPaths<true>(); };
    ex.stress_once = [] { return !BothPaths<false>(); };
    return example::run_example(ex);
}
