"""compare A B, fit to gate a CI run.

Per benchmark in both, the scenario's leading metric over repetitions: the
medians, the change of B against A as a signed percentage of the cost per
operation (time per operation; for a figure where higher is better, such as
throughput, its inverse), so that + is always worse and - always better, the
Hodges-Lehmann 95% interval of that change, and a two-sided Mann-Whitney U
test. Exit status: 0 clean; 1 a significant regression above --fail-above;
3 benchmarks missing from one side or errored on either (named); 2 bad input.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median

from .results import Dataset, LabError, Record, load_report_dirs
from .scenarios import SCENARIO_BY_ID, SCENARIOS
from .stats import (fmt, geometric_mean, holm_significant, mann_whitney_u, ratio_interval, repetitions_needed,
                    smallest_p)

EXIT_REGRESSION = 1
EXIT_INCOMPLETE = 3
CONVENTION = ("change = cost per operation in B / in A - 1 (time; for a higher-is-better figure such as "
              "throughput, its inverse): + is worse, - is better")


@dataclass
class Row:
    scenario: str
    benchmark: str
    metric: str
    repetitions_a: int
    repetitions_b: int
    a_median: float
    b_median: float
    change_pct: float
    ci_low_pct: float | None
    ci_high_pct: float | None
    p: float
    significant: bool
    regression: bool


def _cost(values: list[float], higher_is_better: bool) -> list[float]:
    return [1 / v for v in values] if higher_is_better else list(values)


def _pct(ratio: float | None) -> float | None:
    return None if ratio is None else (ratio - 1) * 100


def compare_datasets(a: Dataset, b: Dataset, alpha: float, fail_above: float | None) -> dict:
    """Everything compare reports, as plain data (what --json writes)."""
    index_a = {r.key(): r for r in a.records}
    index_b = {r.key(): r for r in b.records}
    rows: list[Row] = []
    for key in sorted(set(index_a) & set(index_b), key=str):
        ra, rb = index_a[key], index_b[key]
        s = SCENARIO_BY_ID.get(rb.scenario)
        metric = s.metric if s else "real_time"
        hib = s.higher_is_better if s else False
        va, vb = ra.values.get(metric), rb.values.get(metric)
        if not va or not vb:
            continue
        iv = ratio_interval(_cost(vb, hib), _cost(va, hib))
        if iv is None:  # a zero or negative figure: no ratio, compare the medians only
            ma, mb = median(va), median(vb)
            change = ((ma / mb if hib else mb / ma) - 1) * 100 if ma and mb else float("nan")
            low = high = None
        else:
            change, low, high = _pct(iv.estimate), _pct(iv.low), _pct(iv.high)
        _, p = mann_whitney_u(va, vb)
        significant = p < alpha and len(va) > 1 and len(vb) > 1
        regression = bool(significant and fail_above is not None and change > fail_above)
        rows.append(Row(rb.scenario, rb.label(), metric, len(va), len(vb), median(va), median(vb), change, low,
                        high, p, significant, regression))
    order = {s.id: i for i, s in enumerate(SCENARIOS)}
    rows.sort(key=lambda r: (order.get(r.scenario, len(order)), -(r.change_pct if not math.isnan(r.change_pct)
                                                                    else -math.inf), r.benchmark))
    errored = sorted({f"{side}: {_label(k)}: {msg}" for side, ds in (("A", a), ("B", b))
                      for k, msg in ds.errored.items()})
    errored_keys = set(a.errored) | set(b.errored)
    missing_in_b = sorted(_label(k) for k in set(index_a) - set(index_b) - errored_keys)
    missing_in_a = sorted(_label(k) for k in set(index_b) - set(index_a) - errored_keys)
    identical = (not missing_in_a and not missing_in_b and not errored and bool(rows)
                 and all(index_a[k].values == index_b[k].values for k in index_a))
    warnings = []
    if rows:
        least = min(rows, key=lambda r: min(r.repetitions_a, r.repetitions_b))
        floor_p = smallest_p(least.repetitions_a, least.repetitions_b)
        if floor_p >= alpha:
            need = repetitions_needed(alpha)
            warnings.append(
                f"{least.repetitions_a} repetition(s) in A and {least.repetitions_b} in B (at the fewest): the U test's "
                f"smallest possible p is {floor_p:.3g}, not below alpha={alpha:g}, so no difference can be called "
                f"significant and --fail-above cannot fire; run at least {need} repetitions on each side "
                f"(scripts/lab run --repetitions {need})")
    scenarios = []
    for s in SCENARIOS:
        mine = [r for r in rows if r.scenario == s.id and not math.isnan(r.change_pct)]
        if mine:
            g = geometric_mean([1 + r.change_pct / 100 for r in mine])
            scenarios.append({"id": s.id, "title": s.title, "benchmarks": len(mine),
                              "geomean_change_pct": (g - 1) * 100,
                              "significant": sum(r.significant for r in mine)})
    tested = [r.p for r in rows if r.repetitions_a > 1 and r.repetitions_b > 1]
    return {"convention": CONVENTION, "alpha": alpha, "fail_above_pct": fail_above, "identical": identical,
            "warnings": warnings, "rows": [asdict(r) for r in rows], "scenarios": scenarios,
            "missing_in_a": missing_in_a, "missing_in_b": missing_in_b, "errored": errored,
            "tests": len(tested), "significant": sum(r.significant for r in rows),
            "significant_after_holm": holm_significant(tested, alpha) if tested else 0}


def _label(key) -> str:
    return Record(key[0], key[1], key[2], {}).label()


def _fit(name: str, width: int) -> str:
    """Shortens a name in the middle so that both ends stay readable."""
    if len(name) <= width:
        return name
    keep = width - 1
    head = (keep * 2 + 2) // 3   # the family and lock matter more than the last arguments
    return name[:head] + "~" + name[len(name) - (keep - head):]


def _signed(v: float | None) -> str:
    if v is None or math.isnan(v):
        return "-"
    if abs(v) >= 10000:
        return f"{v:+.1e}%"
    return f"{v:+.0f}%" if abs(v) >= 1000 else f"{v:+.1f}%"


def format_table(res: dict, width: int) -> str:
    numbers = 10 + 10 + 9 + 19 + 9 + 11   # A, B, change, interval, p, verdict
    name_w = max(24, width - numbers - 1)
    out = [f"{'benchmark':<{name_w}} {'A median':>9} {'B median':>9} {'change':>8} {'95% CI of change':>18} "
           f"{'p (U)':>8}  verdict"]
    by_scenario = {}
    for r in res["rows"]:
        by_scenario.setdefault(r["scenario"], []).append(r)
    summaries = {s["id"]: s for s in res["scenarios"]}
    for sid, rows in by_scenario.items():
        s = summaries.get(sid)
        head = f"{sid} {SCENARIO_BY_ID[sid].title}" if sid in SCENARIO_BY_ID else sid
        if s:
            head += (f": {s['benchmarks']} benchmarks, metric {rows[0]['metric']}, geometric mean change "
                     f"{_signed(s['geomean_change_pct'])}, {s['significant']} significant")
        out += ["", head]
        for r in rows:
            ci = ("-" if r["ci_low_pct"] is None else
                  f"[{_signed(r['ci_low_pct'])}, {_signed(r['ci_high_pct'])}]")
            verdict = ("REGRESSION" if r["regression"] else
                       ("worse" if r["change_pct"] > 0 else "better") if r["significant"] else "")
            out.append(f"{_fit(r['benchmark'], name_w):<{name_w}} {fmt(r['a_median']):>9} {fmt(r['b_median']):>9} "
                       f"{_signed(r['change_pct']):>8} {ci:>18} {r['p']:>8.3g}  {verdict}")
    return "\n".join(out)


def _notes(res: dict) -> list[str]:
    n, alpha = res["tests"], res["alpha"]
    lines = [f"{res['significant']} of {len(res['rows'])} differences significant at alpha={alpha:g} "
             f"(two-sided Mann-Whitney U over repetitions; a single run is never called significant).",
             f"Direction: {res['convention']}."]
    if n:
        lines.append(f"Multiple comparisons: with {n} tests at alpha={alpha:g}, about {n * alpha:.0f} would be "
                     f"flagged by chance alone if nothing had changed; {res['significant_after_holm']} stay "
                     f"significant after Holm's correction. The gate asks for significance and a change above "
                     f"--fail-above, so set that above the noise you accept.")
    return lines


def _write(target: str, text: str):
    if target == "-":
        sys.stdout.write(text)
    else:
        Path(target).write_text(text)


def to_csv(res: dict) -> str:
    buf = io.StringIO()
    fields = list(Row.__dataclass_fields__)
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in res["rows"]:
        w.writerow(r)
    return buf.getvalue()


def compare(args) -> int:
    pa, pb = Path(args.a), Path(args.b)
    a = load_report_dirs([pa])
    b = load_report_dirs([pb])
    res = compare_datasets(a, b, args.alpha, args.fail_above)
    same_path = pa.resolve() == pb.resolve()
    if not res["rows"] and not res["missing_in_a"] and not res["missing_in_b"]:
        raise LabError(f"{args.a} and {args.b} have no benchmark in common")
    quiet = "-" in (args.json, args.csv)   # stdout carries the machine-readable form
    if not quiet:
        width = shutil.get_terminal_size((120, 24)).columns
        print(format_table(res, width))
        print()
        for line in _notes(res):
            print(line)
    if same_path:
        print(f"compare: A and B are the same {'file' if pa.is_file() else 'folder'}: nothing can differ",
              file=sys.stderr)
    elif res["identical"]:
        print("compare: A and B hold identical results (every value of every benchmark is the same): "
              "the same run given twice?", file=sys.stderr)
    for w in res["warnings"]:
        print(f"compare: warning: {w}", file=sys.stderr)
    status = 0
    regressions = [r for r in res["rows"] if r["regression"]]
    if regressions:
        print(f"\ncompare: {len(regressions)} significant regression(s) above {args.fail_above:g}%:",
              file=sys.stderr)
        for r in regressions:
            print(f"  - {r['benchmark']}: {r['metric']} {_signed(r['change_pct'])} (p={r['p']:.3g})", file=sys.stderr)
        status = EXIT_REGRESSION
    incomplete = [f"missing in B (present in A): {m}" for m in res["missing_in_b"]] + \
                 [f"missing in A (present in B): {m}" for m in res["missing_in_a"]] + \
                 [f"errored in {e}" for e in res["errored"]]
    if incomplete:
        allowed = args.allow_missing and not res["errored"]
        print(f"\ncompare: {len(incomplete)} benchmark(s) not compared"
              f"{' (allowed by --allow-missing)' if allowed else ''}:", file=sys.stderr)
        for line in incomplete[:50]:
            print(f"  - {line}", file=sys.stderr)
        if len(incomplete) > 50:
            print(f"  ... and {len(incomplete) - 50} more (all of them in --json)", file=sys.stderr)
        if not allowed:
            status = EXIT_INCOMPLETE
    res["exit_status"] = status
    res["a"], res["b"] = args.a, args.b
    if args.json:
        _write(args.json, json.dumps(res, indent=1) + "\n")
    if args.csv:
        _write(args.csv, to_csv(res))
    return status
