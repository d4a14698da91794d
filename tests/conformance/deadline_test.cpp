// kmlab::Deadline, the one deadline type: its sentinels and saturation.
#include <kmlab/platform/deadline.hpp>

#include <chrono>

#include <gtest/gtest.h>

using kmlab::Deadline;
using namespace std::chrono_literals;
using clock_type = Deadline::clock;

TEST(Deadline, NeverNeverExpires) {
    const Deadline d = Deadline::never();
    EXPECT_TRUE(d.is_never());
    EXPECT_FALSE(d.is_poll());
    EXPECT_FALSE(d.expired());
    EXPECT_FALSE(d.expired(clock_type::now() + 1000h));
    EXPECT_EQ(d, Deadline::at(clock_type::time_point::max()));
}

TEST(Deadline, PollHasAlwaysExpired) {
    const Deadline d = Deadline::poll();
    EXPECT_TRUE(d.is_poll());
    EXPECT_FALSE(d.is_never());
    EXPECT_TRUE(d.expired());
    EXPECT_TRUE(d.expired(clock_type::time_point{}));
    EXPECT_NE(d, Deadline::never());
}

TEST(Deadline, AtIsItsTimePoint) {
    const auto now = clock_type::now();
    const Deadline d = Deadline::at(now + 5ms);
    EXPECT_FALSE(d.is_never());
    EXPECT_FALSE(d.is_poll());
    EXPECT_EQ(d.time_point(), now + 5ms);
    EXPECT_FALSE(d.expired(now));
    EXPECT_TRUE(d.expired(now + 5ms));
    EXPECT_TRUE(Deadline::at(now - 1ms).expired());
}

TEST(Deadline, AfterAddsToNowRoundingUpToTheClocksTick) {
    const auto now = clock_type::now();
    EXPECT_EQ(Deadline::after(now, 10ms).time_point(), now + 10ms);
    using tenth_us = std::chrono::duration<long long, std::ratio<1, 10'000'000>>;
    EXPECT_EQ(Deadline::after(now, tenth_us(3)).time_point(), now + 300ns);
    const auto before = clock_type::now();
    const Deadline d = Deadline::after(1s);
    EXPECT_GE(d.time_point(), before + 1s);
    EXPECT_LE(d.time_point(), clock_type::now() + 1s);
}

TEST(Deadline, AfterZeroOrLessHasExpiredButIsNoPoll) {
    const auto now = clock_type::now();
    for (const Deadline d : {Deadline::after(now, 0ns), Deadline::after(now, -5s)}) {
        EXPECT_FALSE(d.is_poll());
        EXPECT_EQ(d.time_point(), now);
        EXPECT_TRUE(d.expired(now));
    }
}

TEST(Deadline, AfterAHugeDurationSaturatesToNever) {
    // now + d would overflow the clock's 64-bit nanosecond count: it must not
    // wrap into the past (an instant timeout) but become an infinite wait.
    const auto now = clock_type::now();
    EXPECT_TRUE(Deadline::after(now, std::chrono::hours::max()).is_never());
    EXPECT_TRUE(Deadline::after(now, std::chrono::nanoseconds::max()).is_never());
    EXPECT_TRUE(Deadline::after(std::chrono::seconds::max()).is_never());
    EXPECT_TRUE(Deadline::after(now, clock_type::time_point::max() - now).is_never());
    // One tick short of the end is still a time.
    const auto room = clock_type::time_point::max() - now;
    const Deadline last = Deadline::after(now, room - 1ns);
    EXPECT_FALSE(last.is_never());
    EXPECT_EQ(last.time_point(), clock_type::time_point::max() - 1ns);
    // A floating-point duration saturates too.
    EXPECT_TRUE(Deadline::after(now, std::chrono::duration<double>(1e300)).is_never());
}
