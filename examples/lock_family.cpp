// The README's "Spin locks and reader/writer locks" snippet, compiled and
// run: each idiomatic type of the rest of the lock family, the IRQL while a
// spin lock is held, and the errors a broken rule returns before anything
// changes.
#include <cstdio>
#include <list>
#include <map>

#include <kmlab/kmlab.hpp>
using namespace kmlab;

namespace {
int failures = 0;
void expect(bool ok, const char* what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    if (!ok) ++failures;
}
}  // namespace

int main() {
    SpinLock<std::list<int>> pending;  // KSPIN_LOCK: IRQL is DISPATCH_LEVEL while held
    if (auto g = pending.lock()) {
        (*g)->push_back(1);
        expect(nt::KeGetCurrentIrql() == nt::DISPATCH_LEVEL, "DISPATCH_LEVEL inside a SpinLock");
        auto again = pending.lock();  // 0xF SPIN_LOCK_ALREADY_OWNED
        expect(!again && again.error().code == Errc::recursive_acquire,
               "a second lock() by the owner is Errc::recursive_acquire");
    }
    expect(nt::KeGetCurrentIrql() == nt::PASSIVE_LEVEL, "the saved IRQL restored on release");

    QueuedSpinLock<int> hot(0);  // in-stack queued spin lock: FIFO hand-off
    if (auto g = hot.lock()) **g += 1;

    Resource<std::map<int, int>> table;  // ERESOURCE: recursive, shared or exclusive
    PushLock<int> config(0);             // EX_PUSH_LOCK: not recursive, waiters sleep
    {
        auto outside = table.lock();
        expect(!outside && outside.error().code == Errc::resource_apcs_enabled,
               "a Resource outside a critical region is Errc::resource_apcs_enabled");
        auto push_outside = config.lock();
        expect(!push_outside && push_outside.error().code == Errc::apcs_enabled,
               "a PushLock outside a critical region is Errc::apcs_enabled");
    }
    {
        auto region = CriticalRegion::enter();  // normal kernel APCs off
        if (auto w = table.lock()) (**w)[1] = 2;
        std::size_t n = 0;
        if (auto r = table.lock_shared()) n = (*r)->size();  // SharedGuard: const access
        expect(n == 1, "a shared guard reads what the exclusive one wrote");
        if (auto w = config.lock()) **w = 7;
    }

    RwSpinLock<int> stats(0);  // EX_SPIN_LOCK: shared or exclusive at DISPATCH_LEVEL
    {
        auto w = stats.lock();
        auto s = stats.try_lock_shared();  // a writer holds it
        expect(w && !s && s.error().code == Errc::busy,
               "try_lock_shared() is busy beside a writer");
    }
    expect(nt::KeGetCurrentIrql() == nt::PASSIVE_LEVEL, "every guard restored the IRQL");

    if (failures == 0) std::printf("lock family: every rule answered\n");
    return failures == 0 ? 0 : 1;
}
