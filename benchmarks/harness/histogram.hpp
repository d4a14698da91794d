// A log-bucket latency histogram: 4 sub-buckets per power of two, so any
// value is placed within 25% (HdrHistogram's idea at its coarsest). Fixed
// size, no allocation while recording, cheap to merge across workers.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace kmlab::bench {

class LogHistogram {
  public:
    static constexpr int kSubBits = 2;
    static constexpr int kBuckets = 64 << kSubBits;

    void add(std::uint64_t ns) noexcept {
        ++counts_[index(ns)];
        ++total_;
        if (ns > max_) max_ = ns;
    }
    void merge(const LogHistogram& o) noexcept {
        for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
        total_ += o.total_;
        if (o.max_ > max_) max_ = o.max_;
    }
    std::uint64_t count() const noexcept { return total_; }
    std::uint64_t max() const noexcept { return max_; }
    // The upper edge of the bucket holding quantile q (0 < q <= 1); 0 if empty.
    std::uint64_t quantile(double q) const noexcept {
        if (total_ == 0) return 0;
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.5);
        std::uint64_t seen = 0;
        for (int i = 0; i < kBuckets; ++i) {
            seen += counts_[i];
            if (seen >= rank && counts_[i] != 0) {
                const std::uint64_t edge = upper_edge(i);
                return edge < max_ ? edge : max_;
            }
        }
        return max_;
    }

    static int index(std::uint64_t v) noexcept {
        if (v < (1u << kSubBits)) return static_cast<int>(v);
        const int msb = 63 - std::countl_zero(v);
        const int sub = static_cast<int>((v >> (msb - kSubBits)) & ((1u << kSubBits) - 1));
        return ((msb - kSubBits + 1) << kSubBits) + sub;
    }
    static std::uint64_t upper_edge(int i) noexcept {
        if (i < (1 << kSubBits)) return static_cast<std::uint64_t>(i);
        const int msb = (i >> kSubBits) + kSubBits - 1;
        const std::uint64_t sub = static_cast<std::uint64_t>(i & ((1 << kSubBits) - 1));
        return ((std::uint64_t{1} << kSubBits) + sub + 1) << (msb - kSubBits);
    }

  private:
    std::array<std::uint64_t, kBuckets> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace kmlab::bench
