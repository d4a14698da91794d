// FairLock: the emulated dispatcher's database lock. A FIFO ticket lock whose
// waiters spin briefly and then sleep on a futex, written once over a parking
// type that names its Platform (<kmlab/platform/platform.hpp>), so that the
// schedule explorer runs the very algorithm production runs
// (tests/model/model_fair_lock_test.cpp).
//
// Why not std::mutex. The kernel's dispatcher lock is a queued spin lock
// taken at DISPATCH_LEVEL: FIFO (MCS [wrk-queuelock]), and never held by a
// thread that has been preempted, since nothing preempts DISPATCH_LEVEL.
// std::mutex (glibc) lets a running thread barge: its unlock frees the word
// and wakes one sleeper, and whoever runs first takes it. A thread that
// releases and re-locks at once is always first, so the woken one finds the
// lock taken and sleeps again, for as long as the other keeps running: a
// thread trying to join a wait list can be starved by one that loops on the
// dispatcher (issue 20).
//
// Decision, kmlab: user mode cannot forbid preemption, so the emulation gives
// up "never held by a preempted thread" and keeps the other half, FIFO: a
// lock that hands itself to the longest waiter on release, as the kernel's
// queued spin lock does [wrk-queuelock], as Linux's qspinlock does for its
// spin locks [linux-qspinlock] and its ticket locks before it
// [linux-ticket-lock], and as Linux's sleeping mutex does once a woken waiter
// has lost the race (MUTEX_FLAG_HANDOFF [linux-mutex-handoff]). A running
// thread can then never starve a waiter: its next lock() takes a ticket
// behind the one it just served. The price is the convoy every FIFO lock pays
// on an oversubscribed machine: while the next ticket's holder is preempted
// or still waking, nobody else may enter. Waiters therefore never spin for
// long (below), and the owner of a dispatcher section never sleeps inside it.
//
// Layout: one cache line (alignas(64), so an array of them is the 64
// per-object stripes with no padding struct):
//
//   next_      the ticket dispenser: lock() takes next_++ (fetch_add)
//   owner_     the holder's ticket, written by the holder alone after it has
//              the lock, read by its unlock() and, as a hint, by waiters
//   slot_[8]   slot_[t % 8] = (g << 1) | kSleeping: g is the last ticket
//              granted among those equal to t mod 8, kSleeping says a waiter
//              may sleep on this word (a futex word of its own per slot;
//              8 = Slots, the template's default)
//
// Ticket t holds the lock when slot_[t % 8] grants t. unlock() by the holder
// of t grants t + 1 with one exchange on slot_[(t + 1) % 8], which also reads
// (and clears) kSleeping: only then does it wake, and only the sleepers of
// that slot. Sleeping on a slot of its own per ticket is the waiting-array
// idea of Anderson's array lock [Anderson, IEEE TPDS 1(1), 1990] and of TWA
// [Dice & Kogan, Euro-Par 2019]: a release wakes the one thread whose turn it
// is, not every sleeper (one futex word for all of them would wake the whole
// queue on every release, each to find it is not its turn). With more than 8
// waiters on one lock, tickets 8 apart share a slot: a release wakes them
// both and the one not served sleeps again, which costs time, never
// correctness.
//
// Invariants (quiescent(), checked after every model run and stress test):
// free with nobody waiting <=> for k = 0..7, slot_[(next_ - k) % 8] grants
// next_ - k, no kSleeping bit is set, and owner_ == next_ - 1. The initial
// state is that of "tickets -8..-1 were served": slot_[i] grants i - 8
// (slot_[0] grants 0) and owner_ = -1.
//
// Costs (uncontended, x86-64): lock() is one `lock xadd` and a load, unlock()
// one `xchg`: one locked instruction each, as std::mutex, all inline: 21
// instructions per lock + unlock pair against std::mutex's 63 (callgrind,
// g++ 12 -O2, loop overhead subtracted, 2026-12-07). Contended: a waiter next in line spins up to
// kSpinBeforePark, then sleeps; waiters further back sleep at once, since
// their turn is at least one critical section and one wake-up away.
//
// Memory orders: the grant is an exchange with release order and the
// waiter's read of it an acquire load, so each critical section happens
// before the next. next_ needs no order (the ticket only names a slot; a
// stale slot read only sends the taker to the slow path). kSleeping is set by
// a compare-exchange and read by the release's exchange: both RMWs on the one
// word, so one of them sees the other (no lost wake-up whatever the order).
// The release touches the lock only through that exchange; the wake that
// follows is a futex call on an address, harmless once the memory is freed,
// so a lock may be destroyed right after its last unlock() returns elsewhere.
//
// Illegal uses: unlock() by a thread that does not hold the lock (it grants
// a ticket twice); recursion (the second lock() waits for itself forever);
// more than 2^31 lock() calls in one waiter's wait (tickets compare modulo
// 2^31 in a slot); copying or moving a lock.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <kmlab/platform/deadline.hpp>
#include <kmlab/platform/futex.hpp>
#include <kmlab/platform/platform.hpp>

namespace kmlab::kernel {

namespace fair_lock {

// Deliberate breakages for the explorer's must-find tests
// (tests/model/model_fair_lock_test.cpp); never used elsewhere.
enum class Mutant {
    none,
    no_wake,              // unlock() grants but never wakes a sleeper (lost wake-up)
    plain_store_release,  // unlock() reads kSleeping, then grants by plain store
    barge_past_sleeper,   // unlock() passes over a sleeping successor to a later
                          // ticket, as a barging lock lets a running thread win
};

// How a waiter sleeps on a slot word, and how a release wakes it: the futex
// contract (backends/backend.hpp), with a wake of every sleeper on the word.
// The platform's seam (platform.hpp) has no futex, so the parking type names
// its platform, as a lock_bit gate does (platform::platform_of); the schedule
// explorer's is in the model test.
struct NativePark {
    using platform = platform::Native;
    static void wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
        kmlab::platform::sys::futex_wait(word, expected, Deadline::never());
    }
    static void wake_all(std::atomic<std::uint32_t>& word) noexcept {
        kmlab::platform::sys::futex_wake(word, INT_MAX);
    }
};

// Called with the ticket right after it is taken (tests record the order).
struct NoHook {
    void operator()(std::uint32_t) const noexcept {}
};

}  // namespace fair_lock

// Slots: the number of futex slots, a power of two (the index must wrap with
// the 32-bit ticket); production keeps 8, the model test also runs 2, so
// that its 3 and 4 threads share slots as a 9th waiter does here.
template <class Park = fair_lock::NativePark, fair_lock::Mutant M = fair_lock::Mutant::none,
          int Slots = 8>
class alignas(64) FairLock {
    using P = platform::platform_of<Park>;
    using Word = typename P::template atomic<std::uint32_t>;

  public:
    static constexpr std::uint32_t kSlots = Slots;
    static_assert(Slots >= 1 && (Slots & (Slots - 1)) == 0, "a power of two");
    static constexpr std::uint32_t kSleeping = 1;
    // Tuning: how long the waiter next in line spins before it sleeps. The
    // dispatcher's sections are a few hundred nanoseconds; 1 us is what
    // backends::Futex spins, measured best of 0.5, 1 and 4 us on the 2-core VM
    // of BENCHMARKING.md (2026-11-20), about one futex sleep/wake round trip.
    // Here a sweep of 0, 1 and 4 us (same VM, 2026-12-07; 2, 5 and 16
    // threads looping lock / ++counter / unlock) found no budget better at 2
    // and 5 threads, and runs at 16 threads (8 per core) that differed up to
    // 10x from one run to the next whatever the budget: the convoy above.
    static constexpr std::chrono::nanoseconds kSpinBeforePark = std::chrono::microseconds(1);

    constexpr FairLock() noexcept : FairLock(std::make_index_sequence<Slots>{}) {}
    FairLock(const FairLock&) = delete;
    FairLock& operator=(const FairLock&) = delete;

    void lock() { lock(fair_lock::NoHook{}); }

    // As lock(); `on_ticket(t)` runs right after the ticket is taken.
    template <class Hook>
    void lock(Hook&& on_ticket) {
        const std::uint32_t t = next_.fetch_add(1, std::memory_order_relaxed);
        on_ticket(t);
        if (!granted(slot(t).load(std::memory_order_acquire), t)) [[unlikely]]
            wait_for_turn(t);
        owner_.store(t, std::memory_order_relaxed);
    }

    bool try_lock() { return try_lock(fair_lock::NoHook{}); }

    // Takes the next ticket only if it is already granted (nobody holds the
    // lock or waits for it). A stale slot read fails, never wrongly succeeds:
    // if next_ is still t at the compare-exchange, no ticket >= t exists, so
    // slot t still grants t.
    template <class Hook>
    bool try_lock(Hook&& on_ticket) {
        std::uint32_t t = next_.load(std::memory_order_relaxed);
        if (!granted(slot(t).load(std::memory_order_acquire), t)) return false;
        if (!next_.compare_exchange_strong(t, t + 1, std::memory_order_relaxed,
                                           std::memory_order_relaxed))
            return false;
        on_ticket(t);
        owner_.store(t, std::memory_order_relaxed);
        return true;
    }

    void unlock() {
        std::uint32_t t = owner_.load(std::memory_order_relaxed) + 1;
        if constexpr (M == fair_lock::Mutant::barge_past_sleeper) {
            if ((slot(t).load(std::memory_order_relaxed) & kSleeping) != 0 &&
                next_.load(std::memory_order_relaxed) - t >= 2)
                ++t;
        }
        Word& s = slot(t);
        std::uint32_t old;
        if constexpr (M == fair_lock::Mutant::plain_store_release) {
            old = s.load(std::memory_order_relaxed);
            s.store(grant(t), std::memory_order_release);
        } else {
            old = s.exchange(grant(t), std::memory_order_release);
        }
        if constexpr (M != fair_lock::Mutant::no_wake) {
            if ((old & kSleeping) != 0) [[unlikely]]
                Park::wake_all(s);
        }
    }

    // Free, nobody waiting, back in a state equivalent to the initial one
    // (the invariant above). Only meaningful while no thread uses the lock.
    bool quiescent() const {
        const std::uint32_t n = next_.load(std::memory_order_relaxed);
        if (owner_.load(std::memory_order_relaxed) != n - 1) return false;
        for (std::uint32_t k = 0; k < kSlots; ++k) {
            const std::uint32_t v = slot_[(n - k) % kSlots].load(std::memory_order_relaxed);
            if ((v & kSleeping) != 0 || !granted(v, n - k)) return false;
        }
        return true;
    }
    // Tickets taken so far (tests).
    std::uint32_t tickets() const { return next_.load(std::memory_order_relaxed); }

  private:
    // The initial state, "tickets -Slots..-1 were served": slot i grants the
    // last ticket <= 0 equal to i modulo Slots. Constant-initialised, so the
    // dispatcher's static locks need no dynamic initialisation.
    template <std::size_t... I>
    constexpr explicit FairLock(std::index_sequence<I...>) noexcept
        : next_(0),
          owner_(~std::uint32_t{0}),
          slot_{grant(I == 0 ? 0u : static_cast<std::uint32_t>(I) - kSlots)...} {}

    static constexpr std::uint32_t grant(std::uint32_t t) noexcept { return t << 1; }
    static constexpr bool granted(std::uint32_t v, std::uint32_t t) noexcept {
        return (v >> 1) == (t & (~std::uint32_t{0} >> 1));
    }
    Word& slot(std::uint32_t t) noexcept { return slot_[t % kSlots]; }

    [[gnu::noinline, gnu::cold]] void wait_for_turn(std::uint32_t t) {
        Word& s = slot(t);
        // Only the next in line spins: anyone behind it has a whole critical
        // section and a hand-off to wait for. owner_ may be stale (the
        // holder has not written it yet): then we merely sleep at once.
        if (t - owner_.load(std::memory_order_relaxed) == 1) {
            const Deadline until = Deadline::at(P::now() + kSpinBeforePark);
            if (P::spin_until([&] { return granted(s.load(std::memory_order_acquire), t); }, until))
                return;
        }
        std::uint32_t v = s.load(std::memory_order_acquire);
        for (;;) {
            if (granted(v, t)) return;
            if ((v & kSleeping) == 0) {
                // Announce the sleeper in the word the release exchanges: a
                // grant after this sees the bit and wakes; one before it fails
                // the compare-exchange, and we read the grant.
                if (!s.compare_exchange_weak(v, v | kSleeping, std::memory_order_acquire,
                                             std::memory_order_acquire))
                    continue;
                v |= kSleeping;
            }
            Park::wait(s, v);  // returns at once if the word is no longer v
            v = s.load(std::memory_order_acquire);
        }
    }

    Word next_;
    Word owner_;
    Word slot_[kSlots];
};

static_assert(sizeof(FairLock<>) == 64 && alignof(FairLock<>) == 64);

}  // namespace kmlab::kernel
