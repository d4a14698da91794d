// kmlab::Deadline, the one deadline type: its sentinels and saturation, how
// a KeWait routine's LARGE_INTEGER timeout becomes one (kernel::deadline_from),
// and dispatcher::wait_for_mutex, which takes one where KeWait takes a pointer.
#include <kmlab/kernel/time.hpp>
#include <kmlab/platform/deadline.hpp>

#include <atomic>
#include <chrono>
#include <initializer_list>
#include <limits>
#include <thread>

#include "support.hpp"

using kmlab::Deadline;
using kmlab::kernel::deadline_from;
using namespace kmlab::nt;
using namespace std::chrono_literals;
using clock_type = Deadline::clock;
namespace bugcheck = kmlab::bugcheck;
using KeWaitDeadline = kmlab::test::Nt;

namespace {
LARGE_INTEGER li(LONGLONG q) {
    LARGE_INTEGER v;
    v.QuadPart = q;
    return v;
}
}  // namespace

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

// A duration with a 32-bit count: the room left on the clock (about 9.2e18
// ns) does not fit its count, so the comparison must be made in a wide type.
// In that count's own type the room wrapped around and a 1 s timeout became
// never() for most uptimes (from about 24 days for int milliseconds, for 36
// of every 72 minutes for int microseconds): KMutex::lock_for never timed out.
TEST(Deadline, AfterANarrowDurationNeitherWrapsNorSaturates) {
    using int_ms = std::chrono::duration<int, std::milli>;
    using int_us = std::chrono::duration<int, std::micro>;
    for (const auto uptime : {std::chrono::nanoseconds(0), std::chrono::nanoseconds(30 * 24h),
                              std::chrono::nanoseconds(40min), std::chrono::nanoseconds(100min),
                              std::chrono::nanoseconds(200 * 24h)}) {
        const clock_type::time_point now{uptime};
        const Deadline a = Deadline::after(now, int_ms(1000));
        EXPECT_FALSE(a.is_never()) << uptime.count();
        EXPECT_EQ(a.time_point(), now + 1s) << uptime.count();
        const Deadline b = Deadline::after(now, int_us(1000));
        EXPECT_FALSE(b.is_never()) << uptime.count();
        EXPECT_EQ(b.time_point(), now + 1ms) << uptime.count();
    }
    EXPECT_TRUE(Deadline::after(clock_type::time_point::max() - 1ms, int_ms(2)).is_never());
}

TEST(DeadlineFrom, NullIsNeverAndZeroIsPoll) {
    EXPECT_TRUE(deadline_from(nullptr).is_never());
    const LARGE_INTEGER zero = li(0);
    EXPECT_TRUE(deadline_from(&zero).is_poll());
}

TEST(DeadlineFrom, ANegativeCountIsRelativeToNow) {
    const LARGE_INTEGER ten_ms = kmlab::kernel::relative_timeout(10ms);
    const auto before = clock_type::now();
    const Deadline d = deadline_from(&ten_ms);
    const auto after = clock_type::now();
    EXPECT_GE(d.time_point(), before + 10ms);
    EXPECT_LE(d.time_point(), after + 10ms);
    // The shortest interval, 100 ns, is a time, not a poll.
    const LARGE_INTEGER tick = li(-1);
    const auto t0 = clock_type::now();
    const Deadline shortest = deadline_from(&tick);
    EXPECT_FALSE(shortest.is_poll());
    EXPECT_GE(shortest.time_point(), t0 + 100ns);
}

TEST(DeadlineFrom, APositiveCountIsAbsoluteSince1601) {
    const auto before = clock_type::now();
    LARGE_INTEGER abs;
    KeQuerySystemTime(&abs);
    abs.QuadPart += 10'000'000;  // one second from now, in 100 ns units
    const Deadline d = deadline_from(&abs);
    const auto after = clock_type::now();
    // The system and steady clocks are read at different instants: allow the
    // call's own duration, and a millisecond for the system clock's slewing.
    EXPECT_GE(d.time_point(), before + 1s - (after - before) - 1ms);
    EXPECT_LE(d.time_point(), after + 1s + 1ms);
}

TEST(DeadlineFrom, AnAbsoluteTimeAlreadyPastHasExpiredButIsNoPoll) {
    const LARGE_INTEGER y1601 = li(1);
    const Deadline d = deadline_from(&y1601);
    EXPECT_FALSE(d.is_poll());
    EXPECT_FALSE(d.is_never());
    EXPECT_TRUE(d.expired());
}

TEST(DeadlineFrom, ATimeoutBeyondTheClocksRangeIsNever) {
    for (const LONGLONG q : std::initializer_list<LONGLONG>{
             std::numeric_limits<LONGLONG>::min(),       // the longest interval
             -std::numeric_limits<LONGLONG>::max(),      // about 29,000 years
             -(300LL * 365 * 24 * 3600 * 10'000'000LL),  // 300 years: past the clock
             std::numeric_limits<LONGLONG>::max()}) {    // the latest absolute time
        SCOPED_TRACE(q);
        const LARGE_INTEGER t = li(q);
        EXPECT_TRUE(deadline_from(&t).is_never());
    }
}

// Only a zero timeout is legal at DISPATCH_LEVEL: an absolute time already
// past is a timed wait there, and the bug check reports the caller's pointer.
TEST_F(KeWaitDeadline, APastAbsoluteTimeoutAtDispatchLevelBugChecks) {
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    LARGE_INTEGER past = li(1);
    const KIRQL old = KeRaiseIrqlToDpcLevel();
    auto bc = EXPECT_BUG_CHECK(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &past),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_WAIT_AT_DISPATCH);
    EXPECT_EQ(bc.parameter(4), reinterpret_cast<ULONG_PTR>(&past));
    LARGE_INTEGER zero = li(0);
    EXPECT_EQ(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &zero), STATUS_TIMEOUT);
    KeLowerIrql(old);
}

// dispatcher::wait_for_mutex is KeWaitForSingleObject on a KMUTEX with the
// Deadline passed through: the same IRQL rule, statuses and ownership.
TEST_F(KeWaitDeadline, WaitForMutexKeepsKeWaitsIrqlRule) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    const KIRQL old = KeRaiseIrqlToDpcLevel();
    auto bc = EXPECT_BUG_CHECK(kmlab::dispatcher::wait_for_mutex(&m, Deadline::never()),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_WAIT_AT_DISPATCH);
    EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
    EXPECT_EQ(bc.parameter(3), reinterpret_cast<ULONG_PTR>(&m));
    EXPECT_EQ(bc.parameter(4), 0u) << "no timeout pointer, as for a NULL one";
    EXPECT_BUG_CHECK(kmlab::dispatcher::wait_for_mutex(&m, Deadline::after(1s)),
                     bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(kmlab::dispatcher::wait_for_mutex(&m, Deadline::poll()), STATUS_SUCCESS);
    EXPECT_EQ(KeReleaseMutex(&m, FALSE), 0);
    KeLowerIrql(old);
}

TEST_F(KeWaitDeadline, WaitForMutexTimesOutAtItsDeadlineAndAcquiresWhenReleased) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    KEVENT release;
    KeInitializeEvent(&release, NotificationEvent, FALSE);
    std::atomic<bool> held{false};
    std::thread owner([&] {
        EXPECT_EQ(kmlab::dispatcher::wait_for_mutex(&m, Deadline::never()), STATUS_SUCCESS);
        EXPECT_EQ(kmlab::dispatcher::wait_for_mutex(&m, Deadline::poll()), STATUS_SUCCESS)
            << "the owner acquires again";
        held = true;
        KeWaitForSingleObject(&release, Executive, KernelMode, FALSE, nullptr);
        KeReleaseMutex(&m, FALSE);
        KeReleaseMutex(&m, FALSE);
    });
    ASSERT_TRUE(kmlab::test::eventually([&] { return held.load(); }));
    EXPECT_EQ(kmlab::dispatcher::wait_for_mutex(&m, Deadline::poll()), STATUS_TIMEOUT);
    const auto t0 = clock_type::now();
    EXPECT_EQ(kmlab::dispatcher::wait_for_mutex(&m, Deadline::at(t0 + 30ms)), STATUS_TIMEOUT);
    EXPECT_GE(clock_type::now() - t0, 30ms);
    KeSetEvent(&release, IO_NO_INCREMENT, FALSE);
    EXPECT_EQ(kmlab::dispatcher::wait_for_mutex(&m, Deadline::after(10s)), STATUS_SUCCESS);
    EXPECT_EQ(KeReleaseMutex(&m, FALSE), 0);
    owner.join();
}
