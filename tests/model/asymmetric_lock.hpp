// The explorer's store-buffer fixture: RawLockBit<Futex> as it was before
// commit "lock-bit FastMutex over futex: ..." replaced it, kept verbatim but
// for the platform seam (atomics, fences, clock and spinning come from the
// model). It releases with a plain store and relies on a membarrier on the
// waiting side (an asymmetric Dekker pairing), so it is what proves that the
// explorer sees x86-TSO: with the membarrier it must find no store-buffer
// bug, with the pairing switched off (explore::HeavyFence::broken) it must
// find the lost wake-up the fence prevents. It also still holds the lost
// wake-up of issue 9 (wake() / drain_stale_token(), found sequentially
// consistent with 3 threads) and is unsafe to destroy right after unlock:
// the tests replay both.
#pragma once

#include <chrono>
#include <cstdint>

#include <kmlab/kernel/lock_bit.hpp>
#include <kmlab/kernel/ntdef.hpp>

namespace kmlab::explore {

using nt::LONG;

template <class Backend>
class AsymmetricLockBit {
    using P = typename Backend::platform;

  public:
    static constexpr auto kFallbackSleep = std::chrono::milliseconds(1);
    // Spin before parking: about one futex sleep/wake round trip on the
    // 2-core VM of BENCHMARKING.md, so a waiter never spins much longer than
    // parking would have cost it. 1 us measured best of 0.5, 1 and 4 us at 2
    // threads (cs_ns:50) and made no difference at 16 (2026-11-20).
    static constexpr auto kSpinBeforePark = std::chrono::microseconds(1);
    LONG count_ = nt::FM_LOCK_BIT;

    bool try_lock() noexcept { return lock_bit::try_acquire<P>(count_); }
    void unlock() noexcept {
        typename P::template atomic_ref<LONG>(count_).store(nt::FM_LOCK_BIT,
                                                            std::memory_order_release);
        P::light_fence();
        if (waiters_.load(std::memory_order_relaxed) != 0) [[unlikely]]
            wake();
    }
    [[gnu::noinline]] void lock_contended() {
        // A holder that is running releases within a critical section's time;
        // a lock taken while spinning skips registration and its heavy fence.
        const auto spin_until = Deadline::at(P::now() + kSpinBeforePark);
        if (P::spin_until([&] { return lock_seen_free_and_taken(); }, spin_until)) return;
        waiters_.fetch_add(1, std::memory_order_relaxed);
        const bool exact = P::heavy_fence();
        while (!try_lock()) {
            if (consume_token(exact)) gate_.fetch_and(~kWoken, std::memory_order_seq_cst);
        }
        if (waiters_.fetch_sub(1, std::memory_order_seq_cst) == 1) drain_stale_token();
    }

    bool debug_is_free() const noexcept {
        return count_ == nt::FM_LOCK_BIT && waiters_.load() == 0 && gate_.load() == 0;
    }

  private:
    static constexpr std::uint32_t kWoken = 1;
    static constexpr std::uint32_t kToken = 2;

    // Test, then test-and-set: spinners read the line instead of bouncing it.
    bool lock_seen_free_and_taken() noexcept {
        return (typename P::template atomic_ref<LONG>(count_).load(std::memory_order_relaxed) &
                nt::FM_LOCK_BIT) != 0 &&
               try_lock();
    }
    [[gnu::noinline]] void wake() noexcept {
        // Read gate_ with an RMW, not a load: a plain load may be satisfied
        // before our Count store leaves the store buffer, and seeing a stale
        // woken flag there while its waiter clears it and retries (still
        // seeing Count = 0) lost a wake-up in the stress tests.
        std::uint32_t g = gate_.fetch_add(0, std::memory_order_seq_cst);
        do {
            if (g & kWoken) return;  // a woken waiter is already on its way
        } while (!gate_.compare_exchange_weak(g, (g | kWoken) + kToken, std::memory_order_seq_cst,
                                              std::memory_order_relaxed));
        // The last waiter may have left between our check of waiters_ and the
        // token: then nobody would consume it. Both sides make a seq_cst RMW
        // and then load the other's word, so at least one of us sees the
        // other and takes the token back.
        if (waiters_.load(std::memory_order_seq_cst) == 0) {
            drain_stale_token();
            return;
        }
        Backend::wake_one(gate_);
    }
    // Takes one token, sleeping while there is none; false if the fallback's
    // bounded sleep ended without one.
    bool consume_token(bool exact) noexcept {
        const auto deadline = Deadline::at(P::now() + kFallbackSleep);
        for (;;) {
            std::uint32_t g = gate_.fetch_add(0, std::memory_order_seq_cst);
            while (g >= kToken) {
                if (gate_.compare_exchange_weak(g, g - kToken, std::memory_order_acquire,
                                                std::memory_order_relaxed))
                    return true;
            }
            if (!Backend::wait(gate_, g, exact ? Deadline::never() : deadline)) return false;
        }
    }
    // A waiter that got the lock by retrying while a wake was in flight for it
    // leaves that token (and the woken flag) behind. The last waiter out takes
    // both back in one CAS, unless a waiter already consumed the token (it
    // then clears the flag itself), so a quiescent lock is back in its
    // initial state.
    void drain_stale_token() noexcept {
        std::uint32_t g = gate_.load(std::memory_order_seq_cst);
        while ((g & kWoken) != 0 && g >= kToken) {
            if (gate_.compare_exchange_weak(g, (g - kToken) & ~kWoken, std::memory_order_acq_rel,
                                            std::memory_order_relaxed))
                return;
        }
    }

    typename P::template atomic<std::uint32_t> waiters_{0};
    typename P::template atomic<std::uint32_t> gate_{0};
};

}  // namespace kmlab::explore
