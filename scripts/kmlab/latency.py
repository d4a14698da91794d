"""The latency histogram the harness keeps whole in the JSON
(benchmarks/harness/histogram.hpp): decoding, merging, percentiles read from
the counts by the same rule as the C++ side, and the points of a CDF.

A histogram travels as a benchmark's label:
    "latency_ns/32: min=12 max=90000 12:40 13:55 ... 89984:1"
below 32 every value has its own bucket; above, each power of two is cut
into 32 sub-buckets; a bucket is named by its lowest value."""

from __future__ import annotations

from dataclasses import dataclass, field

PREFIX = "latency_ns/32:"
SUB_BITS = 5
SUB_BUCKETS = 1 << SUB_BITS


def index(v: int) -> int:
    if v < SUB_BUCKETS:
        return v
    msb = v.bit_length() - 1
    return ((msb - SUB_BITS + 1) << SUB_BITS) + ((v >> (msb - SUB_BITS)) & (SUB_BUCKETS - 1))


def lowest(i: int) -> int:
    if i < SUB_BUCKETS:
        return i
    msb = (i >> SUB_BITS) + SUB_BITS - 1
    return (SUB_BUCKETS + (i & (SUB_BUCKETS - 1))) << (msb - SUB_BITS)


def highest(i: int) -> int:
    if i < SUB_BUCKETS:
        return i
    msb = (i >> SUB_BITS) + SUB_BITS - 1
    return lowest(i) + (1 << (msb - SUB_BITS)) - 1


@dataclass
class Histogram:
    counts: dict = field(default_factory=dict)   # bucket index -> count
    min: int = 0
    max: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def quantile(self, q: float) -> int:
        """HdrHistogram's rule, as the harness applies it: rank = q x count
        rounded (at least 1); the highest value of the bucket holding it,
        clamped to what was recorded. Never understates; overstates by less
        than one bucket (1/32)."""
        total = self.total
        if total == 0:
            return 0
        rank = max(1, int(q * total + 0.5))
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                return min(max(highest(i), self.min), self.max)
        return self.max

    def cdf(self) -> list[tuple[int, float]]:
        """(value, fraction of samples at or below it) at each bucket's top."""
        total = self.total
        out, seen = [], 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            out.append((min(max(highest(i), self.min), self.max), seen / total))
        return out


def parse(label: str) -> Histogram | None:
    """The histogram in a benchmark label, or None if the label holds none;
    a label that starts like one but does not parse raises ValueError."""
    if not label or not label.startswith(PREFIX):
        return None
    h = Histogram()
    for part in label[len(PREFIX):].split():
        if part.startswith("min="):
            h.min = int(part[4:])
        elif part.startswith("max="):
            h.max = int(part[4:])
        else:
            low, count = part.split(":")
            i = index(int(low))
            if lowest(i) != int(low):
                raise ValueError(f"{low} is not the lowest value of a bucket")
            h.counts[i] = h.counts.get(i, 0) + int(count)
    if h.counts and not h.max:
        h.min, h.max = lowest(min(h.counts)), highest(max(h.counts))
    return h


def merge(hists: list[Histogram]) -> Histogram:
    out = Histogram()
    nonempty = [h for h in hists if h.counts]
    for h in nonempty:
        for i, c in h.counts.items():
            out.counts[i] = out.counts.get(i, 0) + c
    if nonempty:
        out.min = min(h.min for h in nonempty)
        out.max = max(h.max for h in nonempty)
    return out


# The percentile counters the report shows, and the quantile each stands for.
PERCENTILES = (("p50_ns", 0.50), ("p99_ns", 0.99), ("p999_ns", 0.999))
