// Deadline: when a wait must give up, the one way kmlab spells it, from a
// KMutex::lock_for() or a KeWaitXxx timeout down to the futex call.
//
// It lives in platform/, the bottom layer, although issue 10 placed it in
// kernel/: the calls that finally take it, platform::sys::futex_wait and
// Native::spin_until, sit below the kernel, and no layer may include one
// above it. The kernel converts an NT LARGE_INTEGER timeout into a Deadline
// once, on entry to the KeWait routines (kernel::deadline_from in
// <kmlab/kernel/time.hpp>); nothing below converts back.
//
// A Deadline is one steady_clock time point, so that passing it costs a
// register and testing it a compare, with two sentinels:
//
//   never()    no timeout: wait until woken               time_point::max()
//   poll()     already expired: try once, never block      time_point::min()
//   at(tp)     until steady_clock reaches tp
//   after(d)   at(now + d), saturating: a deadline past the clock's range
//              is never(), since no wait outlasts the clock anyway
//
// poll() is more than an at() that has passed: it is known without reading
// the clock, a raw lock given it never enters its slow path, and the KeWait
// IRQL rule (only a zero timeout is legal at DISPATCH_LEVEL) is decided on it.
// at(max) and at(min) are never() and poll(): the sentinels are those values.
//
// Illegal use: after() of a duration finer than the clock's tick (it does
// not compile).
#pragma once

#include <chrono>
#include <cstdint>
#include <ratio>
#include <type_traits>

namespace kmlab {

class Deadline {
  public:
    using clock = std::chrono::steady_clock;

    static constexpr Deadline never() noexcept { return Deadline(clock::time_point::max()); }
    static constexpr Deadline poll() noexcept { return Deadline(clock::time_point::min()); }
    static constexpr Deadline at(clock::time_point tp) noexcept { return Deadline(tp); }

    // now + d; d <= 0 gives at(now), already expired but not poll(). `now`
    // is a clock reading, so not before the clock's epoch.
    template <class Rep, class Period>
    static constexpr Deadline after(clock::time_point now,
                                    std::chrono::duration<Rep, Period> d) noexcept {
        // Finer units would overflow in the comparison below, before the sum could.
        static_assert(std::ratio_less_equal_v<clock::period, Period>,
                      "Deadline::after: a duration finer than the clock's tick");
        // Compare in a count at least as wide as the clock's: the room left
        // (up to 2^63 ns) wraps around in a narrower count such as int
        // milliseconds, which once turned a 1 s timeout into never().
        constexpr bool floating = std::is_floating_point_v<Rep>;
        using W = std::conditional_t<floating, long double, std::common_type_t<Rep, std::intmax_t>>;
        using D = std::chrono::duration<W, Period>;
        const D dw(d);
        if (dw <= D::zero()) return at(now);
        // The room left, rounded down into d's units, so that a d below it
        // still fits once rounded up into the clock's; a floating count keeps
        // a second's margin, since rounding it into nanoseconds may round up.
        auto room = clock::time_point::max() - now;
        if constexpr (floating) room -= std::chrono::seconds(1);
        if (dw >= std::chrono::duration_cast<D>(room)) return never();
        return at(now + std::chrono::ceil<clock::duration>(dw));
    }
    template <class Rep, class Period>
    static Deadline after(std::chrono::duration<Rep, Period> d) noexcept {
        return after(clock::now(), d);
    }

    constexpr bool is_never() const noexcept { return tp_ == clock::time_point::max(); }
    constexpr bool is_poll() const noexcept { return tp_ == clock::time_point::min(); }
    // poll() has expired at any `now`; never() at none a clock reads.
    constexpr bool expired(clock::time_point now) const noexcept { return now >= tp_; }
    // As expired(clock::now()), reading the clock only for an at().
    bool expired() const noexcept {
        if (is_never()) return false;
        return is_poll() || clock::now() >= tp_;
    }
    constexpr clock::time_point time_point() const noexcept { return tp_; }

    friend constexpr bool operator==(Deadline, Deadline) noexcept = default;

  private:
    constexpr explicit Deadline(clock::time_point tp) noexcept : tp_(tp) {}
    clock::time_point tp_;
};

}  // namespace kmlab
