"""The report: report.md and a self-contained report.html (charts inline),
per-scenario tables with the ratio to the reference lock, findings computed
from the data, and the summary table a run ends with."""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path
from statistics import median

from .charts import render_charts
from .results import Dataset, LabError, Record, load_report_dirs
from .scenarios import FAMILY_SCENARIO, KMLAB_TYPES, REFERENCE_LOCK, SCENARIOS, Scenario
from .stats import fmt, median_min_max


def metric_stats(rec: Record, metric: str):
    vals = rec.values.get(metric)
    return median_min_max(vals) if vals else None


def reference_for(ds: Dataset, rec: Record) -> Record | None:
    for r in ds.records:
        if r.family == rec.family and r.lock == REFERENCE_LOCK and r.params == rec.params and r.machine == rec.machine:
            return r
    return None


def scenario_table(ds: Dataset, s: Scenario) -> list[list[str]]:
    """Rows: benchmark, machine, median, min, max, ratio to std::mutex."""
    rows = []
    recs = [r for r in ds.records if r.scenario == s.id]
    recs.sort(key=lambda r: (r.machine, r.family, r.params, r.lock))
    for r in recs:
        st = metric_stats(r, s.metric)
        if not st:
            continue
        ref = reference_for(ds, r)
        ratio = "-"
        if ref and ref is not r and metric_stats(ref, s.metric):
            rv = metric_stats(ref, s.metric)[0]
            if rv:
                ratio = f"{st[0] / rv:.2f}x"
        elif ref is r:
            ratio = "1.00x (reference)"
        rows.append([r.label(), r.machine, fmt(st[0]), fmt(st[1]), fmt(st[2]), ratio])
    return rows


def findings(ds: Dataset) -> list[str]:
    """Sentences computed from the data, never fixed text."""
    out = []
    for machine in ds.machines:
        recs = [r for r in ds.records if r.machine == machine]
        prefix = f"[{machine}] " if len(ds.machines) > 1 else ""
        # S3: the best kmlab lock at each thread count, and how it compares.
        s3 = [r for r in recs if r.family == "BM_Contended" and r.param("cs_ns") == 50 and "ops_per_s" in r.values]
        for t in sorted({r.param("threads") for r in s3}):
            at = [r for r in s3 if r.param("threads") == t]
            ref = next((r for r in at if r.lock == REFERENCE_LOCK), None)
            ours = [r for r in at if r.lock.split(",")[0] in KMLAB_TYPES]
            if not ours:
                continue
            best = max(ours, key=lambda r: median(r.values["ops_per_s"]))
            text = f"{prefix}At {t} thread(s) (50 ns critical section) the fastest kmlab lock is {best.lock} " \
                   f"with {fmt(median(best.values['ops_per_s']))} acquisitions/s"
            if ref:
                text += f", {median(best.values['ops_per_s']) / median(ref.values['ops_per_s']):.2f}x std::mutex"
            out.append(text + ".")
        # S1: fastest and slowest uncontended pair.
        s1 = [r for r in recs if r.family == "BM_LockUnlock" and "real_time" in r.values]
        if s1:
            fast = min(s1, key=lambda r: median(r.values["real_time"]))
            slow = max(s1, key=lambda r: median(r.values["real_time"]))
            out.append(f"{prefix}Uncontended, the cheapest lock+unlock is {fast.lock} "
                       f"({median(fast.values['real_time']):.1f} ns) and the dearest {slow.lock} "
                       f"({median(slow.values['real_time']):.1f} ns).")
        # Fairness: the least fair lock at the highest thread count of S3.
        if s3:
            tmax = max(r.param("threads") for r in s3)
            at = [r for r in s3 if r.param("threads") == tmax and "jain" in r.values]
            if at:
                worst = min(at, key=lambda r: median(r.values["jain"]))
                best = max(at, key=lambda r: median(r.values["jain"]))
                out.append(f"{prefix}At {tmax} threads the least fair lock is {worst.lock} "
                           f"(Jain {median(worst.values['jain']):.3f}); the fairest is {best.lock} "
                           f"(Jain {median(best.values['jain']):.3f}).")
        # S9: dispatcher event ping-pong against the raw futex floor.
        ev = {r.lock: r for r in recs if r.family == "BM_EventPingPong" and "ops_per_s" in r.values}
        if "dispatcher" in ev and "raw_futex" in ev:
            ratio = median(ev["raw_futex"].values["ops_per_s"]) / median(ev["dispatcher"].values["ops_per_s"])
            out.append(f"{prefix}A KEVENT ping-pong through the emulated dispatcher takes {ratio:.2f}x the time of "
                       f"the same handshake on raw futexes.")
    return out


def scenario_state(s: Scenario, present: set) -> str:
    return "measured" if s.id in present else "not run"


def render_report(dirs: list[Path], out_dir: Path, failures: list[str] | None = None) -> str:
    ds = load_report_dirs(dirs)
    if not ds.records:
        raise LabError("no benchmark results to report")
    failures = list(failures or []) + ds.errors
    charts = render_charts(ds, out_dir)
    facts = findings(ds)
    present = {r.scenario for r in ds.records}

    # ---- Markdown ----
    md = ["# kmlab benchmark report", ""]
    md.append(f"Generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} from "
              + ", ".join(f"`{d}`" for d in dirs) + ".")
    md += ["", "## Machines", ""]
    for label, m in ds.machines.items():
        md.append(f"- **{label}**: " + "; ".join(f"{k} {v}" for k, v in m.items()))
    md += ["", "## What ran", ""]
    md += [f"- {s.id} {s.title}: {scenario_state(s, present)}" for s in SCENARIOS]
    if failures:
        md += ["", "## Failures", ""] + [f"- {f}" for f in failures]
    md += ["", "## Findings", ""] + ([f"- {f}" for f in facts] or ["- (no findings: too little data)"])
    md += ["", "## Charts", ""]
    for title, path in charts:
        md.append(f"![{title}]({path})")
        md.append("")
    for s in SCENARIOS:
        rows = scenario_table(ds, s)
        if not rows:
            continue
        md += ["", f"## {s.id}: {s.title}", "",
               f"Leading metric `{s.metric}` ({'higher' if s.higher_is_better else 'lower'} is better): median, "
               f"min and max over repetitions, and the median's ratio to `{REFERENCE_LOCK}` in the same run.", "",
               "| benchmark | machine | median | min | max | ratio to std::mutex |", "|---|---|---|---|---|---|"]
        md += ["| " + " | ".join(r) + " |" for r in rows]
    (out_dir / "report.md").write_text("\n".join(md) + "\n")

    # ---- HTML (self-contained: SVG inline) ----
    h = ["<!doctype html><html><head><meta charset='utf-8'><title>kmlab benchmark report</title>",
         "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
         "table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 6px}"
         "td:nth-child(n+3){text-align:right}svg{max-width:100%;height:auto}</style></head><body>",
         "<h1>kmlab benchmark report</h1>"]
    h.append("<h2>Machines</h2><ul>" + "".join(
        f"<li><b>{html.escape(l)}</b>: " + html.escape("; ".join(f"{k} {v}" for k, v in m.items())) + "</li>"
        for l, m in ds.machines.items()) + "</ul>")
    h.append("<h2>What ran</h2><ul>" + "".join(
        f"<li>{s.id} {html.escape(s.title)}: {scenario_state(s, present)}</li>" for s in SCENARIOS) + "</ul>")
    if failures:
        h.append("<h2>Failures</h2><ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in failures) + "</ul>")
    h.append("<h2>Findings</h2><ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in facts) + "</ul>")
    h.append("<h2>Charts</h2>")
    for title, path in charts:
        svg = (out_dir / path).read_text()
        svg = svg[svg.find("<svg"):]
        h.append(f"<figure>{svg}<figcaption>{html.escape(title)}</figcaption></figure>")
    for s in SCENARIOS:
        rows = scenario_table(ds, s)
        if not rows:
            continue
        h.append(f"<h2>{s.id}: {html.escape(s.title)}</h2><p>Leading metric <code>{s.metric}</code>; median, min, "
                 f"max over repetitions; ratio of medians to {REFERENCE_LOCK} in the same run.</p><table>"
                 "<tr><th>benchmark</th><th>machine</th><th>median</th><th>min</th><th>max</th><th>ratio</th></tr>")
        h += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
        h.append("</table>")
    h.append("</body></html>")
    (out_dir / "report.html").write_text("\n".join(h))
    return summary_table(ds)


def summary_table(ds: Dataset) -> str:
    """The short table printed at the end of a run: the uncontended pair and
    the contention sweep's headline figures."""
    sweep = FAMILY_SCENARIO["BM_Contended"]
    lines = ["", f"{'lock':<34} {'uncontended ns':>15} {sweep + ' acq/s @2':>12} {'@max threads':>13} "
                 f"{'vs std::mutex':>14}"]
    recs = ds.records
    s3 = [r for r in recs if r.family == "BM_Contended" and r.param("cs_ns") == 50 and "ops_per_s" in r.values]
    tmax = max((r.param("threads") for r in s3), default=None)
    locks = sorted({r.lock for r in recs if r.family in ("BM_LockUnlock", "BM_Contended")})
    ref_max = next((median(r.values["ops_per_s"]) for r in s3 if r.lock == REFERENCE_LOCK and r.param("threads") == tmax), None)
    for lock in locks:
        un = next((median(r.values["real_time"]) for r in recs if r.family == "BM_LockUnlock" and r.lock == lock), None)
        t2 = next((median(r.values["ops_per_s"]) for r in s3 if r.lock == lock and r.param("threads") == 2), None)
        tm = next((median(r.values["ops_per_s"]) for r in s3 if r.lock == lock and r.param("threads") == tmax), None)
        ratio = f"{tm / ref_max:.2f}x" if tm and ref_max else "-"
        lines.append(f"{lock:<34} {fmt(un) if un else '-':>15} {fmt(t2) if t2 else '-':>12} "
                     f"{fmt(tm) if tm else '-':>13} {ratio:>14}")
    return "\n".join(lines)
