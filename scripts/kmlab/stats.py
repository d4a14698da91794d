"""Numbers: median and spread over repetitions, the Mann-Whitney U test that
compare uses, the Hodges-Lehmann interval that goes with it (for a ratio, on
logarithms), how many repetitions a test needs, and how a figure is printed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist, median


def median_min_max(values: list[float]) -> tuple[float, float, float]:
    return median(values), min(values), max(values)


# Mann-Whitney U (two-sided), exact for small samples, normal approximation
# with tie correction otherwise.

def mann_whitney_u(a: list[float], b: list[float]) -> tuple[float, float]:
    """Returns (U of sample a, two-sided p-value)."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need values")
    combined = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(combined)
    ties = []
    i = 0
    while i < len(combined):
        j = i
        while j + 1 < len(combined) and combined[j + 1][0] == combined[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        ties.append(j - i + 1)
        i = j + 1
    r1 = sum(r for r, (_, g) in zip(ranks, combined) if g == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    u = min(u1, u2)
    if n1 + n2 <= 20 and all(t == 1 for t in ties):
        # Exact: count rank arrangements with U <= observed (dynamic programming).
        counts = _u_distribution(n1, n2)
        total = sum(counts)
        p = min(1.0, 2 * sum(counts[: int(u) + 1]) / total)
        return u1, p
    mu = n1 * n2 / 2
    n = n1 + n2
    tie_term = sum(t ** 3 - t for t in ties) / (n * (n - 1)) if n > 1 else 0
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term))
    if sigma == 0:
        return u1, 1.0
    z = (abs(u1 - mu) - 0.5) / sigma
    p = math.erfc(max(z, 0) / math.sqrt(2))
    return u1, min(1.0, p)


def _u_distribution(n1: int, n2: int) -> list[int]:
    """Number of arrangements giving each U value (U = 0 .. n1*n2)."""
    # f[i][j] = distribution for samples of size i and j.

    @lru_cache(maxsize=None)
    def f(i, j):
        if i == 0 or j == 0:
            return (1,)
        a = f(i - 1, j)          # largest element from sample 1: adds j to U
        b = f(i, j - 1)
        out = [0] * (i * j + 1)
        for u, c in enumerate(a):
            out[u + j] += c
        for u, c in enumerate(b):
            out[u] += c
        return tuple(out)

    return list(f(n1, n2))


def fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.2f}G"
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.1f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


# ---- Intervals: the Hodges-Lehmann estimate of a shift and its distribution-
# free confidence interval, inverted from the U test (Hollander & Wolfe,
# Nonparametric Statistical Methods, 4.3). For a ratio of two positive
# samples the shift is taken between their logarithms.

@dataclass(frozen=True)
class Interval:
    estimate: float           # shift_interval: Hodges-Lehmann; ratio_interval: the ratio of the medians
    low: float | None         # None: the samples are too small for the confidence asked
    high: float | None
    confidence: float | None  # what the interval achieves (exact), at least the one asked

    @property
    def excludes(self):
        """The interval's side of 1 for a ratio: -1 below, 1 above, 0 straddles or none."""
        if self.low is None:
            return 0
        return 1 if self.low > 1 else -1 if self.high < 1 else 0


def _critical_rank(n1: int, n2: int, confidence: float) -> tuple[int, float] | None:
    """(k, achieved confidence): the interval is the k-th smallest to the
    k-th largest of the n1 x n2 pairwise differences; None if even the
    widest (k = 1) is short of `confidence`."""
    tail = (1 - confidence) / 2
    if n1 * n2 <= 400:
        counts = _u_distribution(n1, n2)
        total = sum(counts)
        k, cum = 0, 0
        while k < len(counts) and (cum + counts[k]) / total <= tail + 1e-12:
            cum += counts[k]
            k += 1
        if k == 0:
            return None
        return k, 1 - 2 * cum / total
    mn = n1 * n2
    z = NormalDist().inv_cdf(1 - tail)
    k = int(math.floor(mn / 2 - z * math.sqrt(mn * (n1 + n2 + 1) / 12)))
    return (k, confidence) if k >= 1 else None


def shift_interval(x: list[float], y: list[float], confidence: float = 0.95) -> Interval:
    """The shift of x against y: median of all x_i - y_j, and its interval."""
    if not x or not y:
        raise ValueError("both samples need values")
    diffs = sorted(a - b for a in x for b in y)
    est = median(diffs)
    crit = _critical_rank(len(x), len(y), confidence)
    if crit is None:
        return Interval(est, None, None, None)
    k, achieved = crit
    return Interval(est, diffs[k - 1], diffs[len(diffs) - k], achieved)


def ratio_interval(x: list[float], y: list[float], confidence: float = 0.95) -> Interval | None:
    """x over y as a ratio, or None when a value is not positive (no ratio
    to speak of). The point is the ratio of the medians, the figure a reader
    checks against the medians printed beside it; the interval is the
    Hodges-Lehmann one, on logarithms. (Where the medians and the
    Hodges-Lehmann shift disagree, noise is bimodal and the interval wide.)"""
    if not x or not y or min(x) <= 0 or min(y) <= 0:
        return None
    iv = shift_interval([math.log(v) for v in x], [math.log(v) for v in y], confidence)
    exp = (lambda v: None if v is None else math.exp(v))
    return Interval(median(x) / median(y), exp(iv.low), exp(iv.high), iv.confidence)


def smallest_p(n1: int, n2: int) -> float:
    """The smallest two-sided p the exact U test can give (complete separation, no ties)."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return min(1.0, 2 / math.comb(n1 + n2, n1))


def repetitions_needed(alpha: float) -> int:
    """The fewest repetitions per side for which the U test can reach alpha
    (and a 1 - alpha interval exists)."""
    n = 1
    while smallest_p(n, n) > alpha:
        n += 1
    return n


def holm_significant(pvalues: list[float], alpha: float) -> int:
    """How many of the tests stay significant after Holm's step-down
    correction for multiple comparisons."""
    m = len(pvalues)
    for i, p in enumerate(sorted(pvalues)):
        if p > alpha / (m - i):
            return i
    return m


def geometric_mean(values: list[float]) -> float:
    vals = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else float("nan")


def fmt_ratio(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    v = float(f"{v:.3g}")  # 9.99999 (exp of a log) reads as 10.0x, not 10.00x
    if v >= 100:
        return f"{v:.0f}x"
    if v >= 10:
        return f"{v:.1f}x"
    if v >= 0.1:
        return f"{v:.2f}x"
    return f"{v:.3f}x"


def fmt_interval(iv: Interval | None) -> str:
    """'0.50x [0.49-0.51]'; a single repetition or too few say so."""
    if iv is None:
        return "-"
    if iv.low is None:
        return f"{fmt_ratio(iv.estimate)} [no 95% CI]"
    return f"{fmt_ratio(iv.estimate)} [{fmt_ratio(iv.low)[:-1]}-{fmt_ratio(iv.high)}]"
