// The latency histogram (benchmarks/harness/histogram.hpp): its buckets are
// no wider than 1/32 of their values, and its percentiles match a known
// distribution to within that width.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "harness/histogram.hpp"

namespace {
using kmlab::bench::LogHistogram;

TEST(LatencyHistogram, EveryValueFallsInABucketNoWiderThanAThirtySecondOfIt) {
    std::vector<std::uint64_t> values;
    for (std::uint64_t v = 0; v < (1u << 16); ++v) values.push_back(v);
    for (int p = 16; p < 64; ++p) {
        const std::uint64_t base = std::uint64_t{1} << p;
        for (std::uint64_t v : {base - 1, base, base + 1, base + base / 3, base + base / 2})
            values.push_back(v);
    }
    values.push_back(std::numeric_limits<std::uint64_t>::max());
    int last = -1;
    for (std::uint64_t v : values) {
        const int i = LogHistogram::index(v);
        ASSERT_GE(i, 0);
        ASSERT_LT(i, LogHistogram::kBuckets);
        ASSERT_LE(LogHistogram::lowest(i), v) << v;
        ASSERT_GE(LogHistogram::highest(i), v) << v;
        const std::uint64_t width = LogHistogram::highest(i) - LogHistogram::lowest(i) + 1;
        if (v < 64) {
            ASSERT_EQ(width, 1u) << "below 64 every value is exact: " << v;
        } else {
            ASSERT_LE(width * 32, v) << "bucket too wide for " << v;
        }
        ASSERT_GE(i, last) << "buckets follow the values' order";
        last = i;
    }
    EXPECT_EQ(LogHistogram::index(std::numeric_limits<std::uint64_t>::max()),
              LogHistogram::kBuckets - 1);
    EXPECT_EQ(LogHistogram::kSubBuckets, 32);
}

TEST(LatencyHistogram, PercentilesOfAUniformDistribution) {
    LogHistogram h;
    constexpr std::uint64_t n = 100000;
    for (std::uint64_t v = 1; v <= n; ++v) h.add(v);
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
        const auto exact = static_cast<double>(std::llround(q * n));  // the rank-th value
        const auto got = static_cast<double>(h.quantile(q));
        EXPECT_GE(got, exact) << "never understates, q=" << q;
        EXPECT_LE(got, exact * (1 + 1.0 / 32)) << "within one bucket, q=" << q;
    }
    EXPECT_EQ(h.quantile(1.0), n);
    EXPECT_EQ(h.min(), 1u);
    EXPECT_EQ(h.max(), n);
    EXPECT_EQ(h.count(), n);
}

TEST(LatencyHistogram, PercentilesOfAnExponentialDistribution) {
    // Deterministic samples at evenly spaced quantiles of Exp(mean 2000 ns):
    // the q-quantile is -mean * ln(1 - q).
    LogHistogram h;
    constexpr int n = 200000;
    constexpr double mean = 2000;
    for (int i = 0; i < n; ++i)
        h.add(static_cast<std::uint64_t>(-mean * std::log(1 - (i + 0.5) / n)));
    for (double q : {0.5, 0.99, 0.999}) {
        const double exact = -mean * std::log(1 - q);
        const auto got = static_cast<double>(h.quantile(q));
        EXPECT_NEAR(got, exact, exact / 32 + 2) << "q=" << q;
    }
}

TEST(LatencyHistogram, SmallValuesAreExactAndQuantilesStayWithinWhatWasRecorded) {
    LogHistogram h;
    for (std::uint64_t v = 0; v < 32; ++v) h.add(v);
    EXPECT_EQ(h.quantile(0.5), 15u);  // rank 16 of 0..31
    EXPECT_EQ(h.quantile(0.0), 0u);   // rank at least 1

    LogHistogram same;
    for (int i = 0; i < 1000; ++i) same.add(1000);
    for (double q : {0.01, 0.5, 0.99, 1.0}) EXPECT_EQ(same.quantile(q), 1000u) << q;

    // 99% at 100 ns, 1% at 10 us: p99 is 100's bucket (100-101), p99.9 the
    // largest value recorded, not its bucket's edge.
    LogHistogram two;
    for (int i = 0; i < 990; ++i) two.add(100);
    for (int i = 0; i < 10; ++i) two.add(10000);
    EXPECT_EQ(two.quantile(0.99), 101u);
    EXPECT_EQ(two.quantile(0.999), 10000u);
    EXPECT_EQ(LogHistogram().quantile(0.5), 0u);
}

TEST(LatencyHistogram, MergeIsTheSameAsRecordingEverythingInOne) {
    LogHistogram a, b, all;
    for (std::uint64_t v = 1; v < 5000; v += 7) {
        ((v % 3) ? a : b).add(v * 13);
        all.add(v * 13);
    }
    a.merge(b);
    EXPECT_EQ(a.count(), all.count());
    EXPECT_EQ(a.max(), all.max());
    EXPECT_EQ(a.min(), all.min());
    for (int i = 0; i < LogHistogram::kBuckets; ++i) ASSERT_EQ(a.count_at(i), all.count_at(i));
    for (double q : {0.5, 0.99}) EXPECT_EQ(a.quantile(q), all.quantile(q));
}

TEST(LatencyHistogram, EncodesEachNonEmptyBucketByItsLowestValue) {
    LogHistogram h;
    for (int i = 0; i < 3; ++i) h.add(5);
    h.add(100);
    h.add(101);
    h.add(10000);
    EXPECT_EQ(h.encode(), "latency_ns/32: min=5 max=10000 5:3 100:2 9984:1");
    EXPECT_EQ(LogHistogram().encode(), "latency_ns/32:");
}

}  // namespace
