"""compare A B: per benchmark, the leading metric's medians, their ratio and
a two-sided Mann-Whitney U test over repetitions; --fail-above turns a
significant regression into exit status 1."""

from __future__ import annotations

import sys
from pathlib import Path
from statistics import median

from .results import LabError, load_report_dirs
from .scenarios import SCENARIO_BY_ID
from .stats import fmt, mann_whitney_u


def compare(args) -> int:
    a = load_report_dirs([Path(args.a)])
    b = load_report_dirs([Path(args.b)])
    index_a = {r.key(): r for r in a.records}
    rows, regressions = [], []
    for rb in b.records:
        ra = index_a.get(rb.key())
        if ra is None:
            continue
        s = SCENARIO_BY_ID.get(rb.scenario)
        metric = s.metric if s else "real_time"
        va, vb = ra.values.get(metric), rb.values.get(metric)
        if not va or not vb:
            continue
        ratio = median(vb) / median(va) if median(va) else float("nan")
        _, p = mann_whitney_u(va, vb)
        significant = p < args.alpha and len(va) > 1 and len(vb) > 1
        worse = (ratio < 1) if (s and s.higher_is_better) else (ratio > 1)
        change_pct = abs(ratio - 1) * 100
        mark = ("WORSE" if worse else "better") if significant else ""
        rows.append((rb.label(), metric, median(va), median(vb), ratio, p, mark))
        if significant and worse and args.fail_above is not None and change_pct > args.fail_above:
            regressions.append(f"{rb.label()}: {metric} {change_pct:.1f}% worse (p={p:.3g})")
    if not rows:
        raise LabError(f"{args.a} and {args.b} have no benchmark in common")
    print(f"{'benchmark':<70} {'metric':<10} {'A median':>10} {'B median':>10} {'B/A':>7} {'p (U test)':>10}")
    for label, metric, ma, mb, ratio, p, mark in rows:
        print(f"{label:<70} {metric:<10} {fmt(ma):>10} {fmt(mb):>10} {ratio:>7.3f} {p:>10.3g} {mark}")
    print(f"\n{sum(1 for r in rows if r[6])} of {len(rows)} differences significant at alpha={args.alpha} "
          f"(two-sided Mann-Whitney U over repetitions; single runs are never called significant)")
    if regressions:
        print(f"\nregressions above {args.fail_above}%:", file=sys.stderr)
        for r in regressions:
            print(f"  - {r}", file=sys.stderr)
        return 1
    return 0
