// A log-linear latency histogram, HdrHistogram's idea: below 32 every value
// has its own bucket; above, each power of two is cut into 32 equal
// sub-buckets, so a value lands in a bucket no wider than 1/32 (3.1%) of
// itself. With 4 sub-buckets (the first version) p99 could only take values
// such as 112, 128, 224, 320 ns and ratios between locks were rounding
// artefacts; BENCHMARKING.md (S6) asks for at least 32.
//
// Recording sits on the measured path: add() is a count-leading-zeros, a
// shift, an increment and two compares, O(1) and allocation-free. The counts
// are a fixed array (15 KB) zeroed before the run and merged after it.
//
// The whole histogram goes into the JSON (encode(), as the benchmark's label
// when KMLAB_BENCH_HISTOGRAMS=1) so that scripts/kmlab reads percentiles and
// draws CDFs from the counts, not from three numbers.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <string>

namespace kmlab::bench {

class LogHistogram {
  public:
    static constexpr int kSubBits = 5;
    static constexpr int kSubBuckets = 1 << kSubBits;  // per power of two
    static constexpr int kBuckets = (64 - kSubBits + 1) << kSubBits;
    // What encode() starts with; scripts/kmlab/latency.py reads it.
    static constexpr const char* kEncodingPrefix = "latency_ns/32:";

    void add(std::uint64_t ns) noexcept {
        ++counts_[static_cast<std::size_t>(index(ns))];
        ++total_;
        if (ns > max_) max_ = ns;
        if (ns < min_) min_ = ns;
    }
    void merge(const LogHistogram& o) noexcept {
        for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
        total_ += o.total_;
        if (o.max_ > max_) max_ = o.max_;
        if (o.min_ < min_) min_ = o.min_;
    }
    std::uint64_t count() const noexcept { return total_; }
    std::uint64_t max() const noexcept { return max_; }
    std::uint64_t min() const noexcept { return total_ ? min_ : 0; }
    std::uint64_t count_at(int i) const noexcept { return counts_[static_cast<std::size_t>(i)]; }

    // HdrHistogram's rule: the rank is q x count rounded (at least 1); the
    // answer is the highest value of the bucket holding that rank, never
    // more than the largest value recorded nor less than the smallest. So a
    // quantile overstates by less than one bucket width (1/32) and never
    // understates. 0 when empty. scripts/kmlab/latency.py follows the same rule.
    std::uint64_t quantile(double q) const noexcept {
        if (total_ == 0) return 0;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.5);
        if (rank < 1) rank = 1;
        std::uint64_t seen = 0;
        for (int i = 0; i < kBuckets; ++i) {
            seen += counts_[static_cast<std::size_t>(i)];
            if (seen >= rank) {
                const std::uint64_t v = highest(i);
                return v > max_ ? max_ : (v < min_ ? min_ : v);
            }
        }
        return max_;
    }

    static int index(std::uint64_t v) noexcept {
        if (v < kSubBuckets) return static_cast<int>(v);
        const int msb = 63 - std::countl_zero(v);
        const int sub = static_cast<int>((v >> (msb - kSubBits)) & (kSubBuckets - 1));
        return ((msb - kSubBits + 1) << kSubBits) + sub;
    }
    static std::uint64_t lowest(int i) noexcept {
        if (i < kSubBuckets) return static_cast<std::uint64_t>(i);
        const int msb = (i >> kSubBits) + kSubBits - 1;
        const auto sub = static_cast<std::uint64_t>(i & (kSubBuckets - 1));
        return (std::uint64_t{kSubBuckets} + sub) << (msb - kSubBits);
    }
    static std::uint64_t highest(int i) noexcept {
        if (i < kSubBuckets) return static_cast<std::uint64_t>(i);
        const int msb = (i >> kSubBits) + kSubBits - 1;
        return lowest(i) + ((std::uint64_t{1} << (msb - kSubBits)) - 1);
    }

    // "latency_ns/32: min=96 max=9000 96:120 99:5000 ...": the smallest and
    // largest value recorded (quantiles are clamped to them), then each
    // non-empty bucket as its lowest value and its count, in increasing order.
    std::string encode() const {
        std::string out = kEncodingPrefix;
        if (total_ == 0) return out;
        out += " min=" + std::to_string(min_) + " max=" + std::to_string(max_);
        for (int i = 0; i < kBuckets; ++i) {
            const std::uint64_t c = counts_[static_cast<std::size_t>(i)];
            if (c == 0) continue;
            out += ' ';
            out += std::to_string(lowest(i));
            out += ':';
            out += std::to_string(c);
        }
        return out;
    }

  private:
    std::array<std::uint64_t, kBuckets> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t min_ = ~std::uint64_t{0};
};

}  // namespace kmlab::bench
