"""Numbers: median and spread over repetitions, the Mann-Whitney U test that
compare uses, and how a figure is printed in tables."""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import median


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
