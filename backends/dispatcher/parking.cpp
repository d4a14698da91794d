// The dispatcher backend's generic wait/wake (a parking lot on dispatcher
// objects) and the object gate used by fast and guarded mutexes.
#include <unordered_map>

#include "backends/dispatcher/core.hpp"
#include "backends/dispatcher/dispatcher.hpp"
#include "backends/dispatcher/gate.hpp"
#include "backends/dispatcher_backend.hpp"

namespace kmlab::dispatcher {

void ObjectGate::wait() {
    wait_internal(object);
}
void ObjectGate::signal() {
    nt::KeSetEvent(static_cast<PRKEVENT>(object), IO_NO_INCREMENT, FALSE);
}

namespace {
// One gate per address with waiters, created on demand; guarded by the
// dispatcher lock. `users` counts threads between lookup and withdrawal, so a
// queue is erased only when nobody can still touch it. A parked thread keeps
// a reference to its queue (nodes never move) but no iterator: other threads
// insert while it is parked, and a rehash invalidates every iterator.
struct ParkingQueue {
    KGATE gate;
    int users = 0;
};
std::unordered_map<const void*, ParkingQueue>& queues() {
    static std::unordered_map<const void*, ParkingQueue> table;
    return table;
}

void wake(std::atomic<std::uint32_t>& word, bool all) {
    Section section(kernel::current_thread());
    auto& table = queues();
    auto it = table.find(&word);
    if (it == table.end()) return;
    DISPATCHER_HEADER* h = &it->second.gate.Header;
    // A gate satisfies one waiter per signal; a futex wake leaves nothing
    // pending, so the state is cleared again if nobody was waiting.
    do {
        if (IsListEmpty(&h->WaitListHead)) break;
        store_state(h, 1);
        wait_test(h);
    } while (all);
    store_state(h, 0);
}
}  // namespace

}  // namespace kmlab::dispatcher

namespace kmlab::backends {
using namespace kmlab::dispatcher;

bool Dispatcher::wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                      const deadline_t* deadline) {
    PKTHREAD t = kernel::current_thread();
    Section section(t, Section::Kind::Wait);
    // Compared under the lock that wake() takes: no wake can slip in between.
    if (word.load(std::memory_order_acquire) != expected) return true;
    auto& table = queues();
    auto [it, inserted] = table.try_emplace(&word);
    ParkingQueue& q = it->second;  // `it` is not used once the lock is dropped
    if (inserted) init_header(&q.gate.Header, GateObject, sizeof(KGATE), 0);
    ++q.users;
    LARGE_INTEGER timeout{};
    if (deadline != nullptr) {
        const auto left = *deadline - std::chrono::steady_clock::now();
        timeout.QuadPart =
            -std::max<std::int64_t>(0, std::chrono::ceil<kernel::nt_duration>(left).count());
    }
    PVOID objects[1] = {&q.gate};
    const NTSTATUS status =
        dispatcher::wait(section, 1, objects, WaitAny, KernelMode, false,
                         deadline != nullptr ? &timeout : nullptr, t->WaitBlock);
    if (!section.locked()) section.relock();
    if (--q.users == 0) table.erase(&word);  // by key, under the lock
    return status != STATUS_TIMEOUT;
}

void Dispatcher::wake_one(std::atomic<std::uint32_t>& word) {
    wake(word, false);
}
void Dispatcher::wake_all(std::atomic<std::uint32_t>& word) {
    wake(word, true);
}

}  // namespace kmlab::backends
