"""Charts: gnuplot data files and scripts filled from the templates in
reports/templates, drawn as SVG (inlined in report.html) and PNG."""

from __future__ import annotations

import re
import shutil
import string
import subprocess
from pathlib import Path
from statistics import median

from . import ROOT
from .results import Dataset, LabError
from .scenarios import REFERENCE_LOCK

TEMPLATES = ROOT / "reports" / "templates"


def machine_subtitle(machine: dict) -> str:
    cpu = re.sub(r"\s+", " ", re.sub(r"\((R|TM)\)|CPU|Processor", "", machine.get("cpu_model", "?"))).strip()
    return f"{machine.get('host', '?')}: {cpu}, {machine.get('cores', '?')} cores, commit {machine.get('commit', '?')}"


def write_chart(out_dir: Path, name: str, template: str, subst: dict, data: dict[str, str]) -> list[str]:
    """Writes data files and a filled .gp script, runs gnuplot for SVG and PNG."""
    charts = out_dir / "charts"
    charts.mkdir(exist_ok=True)
    for fname, content in data.items():
        (charts / fname).write_text(content)
    tpl = string.Template((TEMPLATES / template).read_text())
    # Text goes into gnuplot strings: double quotes (title) and single quotes.
    subst = {k: (v.replace("\\", "\\\\").replace('"', '\\"') if k in ("title", "subtitle") else
                 v.replace("'", "''") if k in ("xlabel", "ylabel") else v) for k, v in subst.items()}
    made = []
    for ext, term in (("svg", "svg size 960,600 dynamic background rgb 'white'"),
                      ("png", "pngcairo size 960,600")):
        script = tpl.substitute(subst, terminal=term, output=f"{name}.{ext}")
        gp = charts / f"{name}.{ext}.gp"
        gp.write_text(script)
        r = subprocess.run(["gnuplot", gp.name], cwd=charts, capture_output=True, text=True)
        if r.returncode != 0:
            raise LabError(f"gnuplot failed on {gp}: {r.stderr.strip()[-300:]}")
        made.append(f"charts/{name}.{ext}")
    return made


def gp_quote(text: str) -> str:
    """Text for a single-quoted gnuplot string."""
    return text.replace("'", "''")


def kmlab_locks(locks):
    return [l for l in locks if l.split(",")[0] in ("KMutex", "FastMutex", "GuardedMutex")]


def render_charts(ds: Dataset, out_dir: Path) -> list[tuple[str, str]]:
    """Returns (title, svg path) of every chart drawn."""
    if shutil.which("gnuplot") is None:
        raise LabError("gnuplot is not installed: charts cannot be drawn (apt-get install gnuplot-nox)")
    charts = []
    machine = next(iter(ds.machines))
    recs = [r for r in ds.records if r.machine == machine]
    sub = machine_subtitle(ds.machines[machine])

    def lines_chart(name, title, xlabel, ylabel, series, logscale):
        data, plots = {}, []
        for i, (label, points, style) in enumerate(series):
            fname = f"{name}-{i}.dat"
            data[fname] = "".join(f"{x}\t{y}\n" for x, y in sorted(points))
            plots.append(f"'{fname}' using 1:2 with linespoints {style} title '{gp_quote(label)}'")
        if not plots:
            return
        write_chart(out_dir, name, "lines.gp", {"title": title, "subtitle": sub, "xlabel": xlabel,
                                                 "ylabel": ylabel, "logscale": logscale,
                                                 "plots": ", \\\n     ".join(plots)}, data)
        charts.append((title, f"charts/{name}.svg"))

    def bars_chart(name, title, ylabel, rows, columns, logscale="", floor=None, floor_label=""):
        if not rows:
            return
        fname = f"{name}.dat"
        # No header row: gnuplot would plot it as a bar; titles come from `columns`.
        data = {fname: "".join(f"{lab}\t" + "\t".join(f"{v:g}" for v in vals) + "\n" for lab, vals in rows)}
        plots = [f"'{fname}' using {i + 2}:xtic(1) title '{gp_quote(c)}'" for i, c in enumerate(columns)]
        if floor is not None:
            plots.append(f"{floor} with lines lw 2 dt 2 lc rgb 'black' title '{gp_quote(floor_label)}'")
        write_chart(out_dir, name, "bars.gp", {"title": title, "subtitle": sub, "ylabel": ylabel, "xlabel": "lock",
                                                "logscale": logscale, "yrange": "" if logscale else "set yrange [0:*]",
                                                "plots": ", \\\n     ".join(plots)}, data)
        charts.append((title, f"charts/{name}.svg"))

    s3 = [r for r in recs if r.family == "BM_Contended" and "ops_per_s" in r.values]
    locks = sorted({r.lock for r in s3})
    # Throughput vs threads, one chart per kmlab type, std::mutex as the reference.
    for kind in ("KMutex", "FastMutex", "GuardedMutex"):
        series = []
        for lock in [l for l in locks if l.startswith(kind + ",")] + [REFERENCE_LOCK]:
            pts = [(r.param("threads"), median(r.values["ops_per_s"])) for r in s3
                   if r.lock == lock and r.param("cs_ns") == 50]
            style = "lw 3 dt 2 lc rgb 'black'" if lock == REFERENCE_LOCK else "lw 2"
            if pts:
                series.append((lock, pts, style))
        lines_chart(f"throughput-{kind.lower()}", f"{kind}: throughput vs threads (50 ns critical section)",
                    "threads", "acquisitions per second", series, "set logscale x 2\nset logscale y")
    # Fairness vs threads.
    series = [(lock, [(r.param("threads"), median(r.values["jain"])) for r in s3
                      if r.lock == lock and r.param("cs_ns") == 50 and "jain" in r.values], "lw 2")
              for lock in kmlab_locks(locks) + [REFERENCE_LOCK]]
    lines_chart("fairness", "Fairness (Jain's index) vs threads (50 ns critical section)", "threads",
                "Jain's fairness index (1 = fair)", [s for s in series if s[1]], "set logscale x 2\nset yrange [0:1.05]")
    # Critical-section sweep at threads = cores.
    cores = int(ds.machines[machine].get("cores") or 2)
    series = []
    for lock in kmlab_locks(locks) + [REFERENCE_LOCK]:
        pts = [(max(r.param("cs_ns"), 1), median(r.values["ops_per_s"])) for r in s3
               if r.lock == lock and r.param("threads") == cores]
        if len(pts) > 1:
            series.append((lock, pts, "lw 2"))
    lines_chart("cs-sweep", f"Throughput vs critical-section length ({cores} threads)", "critical section (ns, 0 drawn at 1)",
                "acquisitions per second", series, "set logscale x 10\nset logscale y")
    # Uncontended ns per pair with the fetch_add floor.
    s1 = sorted([r for r in recs if r.family == "BM_LockUnlock" and "real_time" in r.values],
                key=lambda r: median(r.values["real_time"]))
    floor = next((median(r.values["real_time"]) for r in recs if r.family == "BM_Floor" and r.lock == "fetch_add"), None)
    bars_chart("uncontended-ns", "Uncontended lock+unlock", "nanoseconds per pair (median)",
               [(r.lock, [median(r.values["real_time"])]) for r in s1], ["ns per pair"],
               floor=floor, floor_label="fetch_add floor")
    # Instructions per pair.
    inst = ds.instructions.get(machine)
    if inst:
        rows = sorted(((k, [v]) for k, v in inst.items() if k != "fetch_add"), key=lambda kv: kv[1][0])
        bars_chart("uncontended-instructions", "Uncontended lock+unlock under callgrind",
                   "instructions per pair (log scale)", rows, ["instructions"], logscale="set logscale y",
                   floor=inst.get("fetch_add"), floor_label="fetch_add floor")
    # Latency percentiles (S6, the larger thread count).
    s6 = [r for r in recs if r.family == "BM_Latency" and "p99_ns" in r.values]
    if s6:
        tmax = max(r.param("threads") for r in s6)
        rows = [(r.lock, [median(r.values[k]) for k in ("p50_ns", "p99_ns", "p999_ns", "max_ns")])
                for r in sorted(s6, key=lambda r: median(r.values["p99_ns"])) if r.param("threads") == tmax]
        bars_chart("latency", f"Time to acquire ({tmax} threads, sampled)", "nanoseconds (log scale)", rows,
                   ["p50", "p99", "p99.9", "max"], logscale="set logscale y")
    # Oversubscription (S4).
    s4 = [r for r in recs if r.family == "BM_Oversubscribed" and "ops_per_s" in r.values]
    if s4:
        cols = sorted({(r.param("threads"), r.param("hog")) for r in s4})
        by_lock = {}
        for r in s4:
            by_lock.setdefault(r.lock, {})[(r.param("threads"), r.param("hog"))] = median(r.values["ops_per_s"])
        rows = [(lock, [v.get(c, 0) for c in cols]) for lock, v in sorted(by_lock.items())]
        bars_chart("oversubscription", "Oversubscription: throughput with more threads than cores",
                   "acquisitions per second", rows, [f"{t} threads{' + CPU hog' if h else ''}" for t, h in cols])
    # Global vs per-object dispatcher lock (S8), at the larger thread count.
    s8 = [r for r in recs if r.family == "BM_ManyLocks" and "ops_per_s" in r.values]
    if s8:
        tmax = max(r.param("threads") for r in s8)
        both = {r.lock for r in s8 if r.param("dispatcher_lock") == 1}
        cols = sorted({r.param("locks") for r in s8})
        rows = []
        for lock in sorted(both):
            for mode, name in ((0, "global"), (1, "per-object")):
                vals = {r.param("locks"): median(r.values["ops_per_s"]) for r in s8
                        if r.lock == lock and r.param("threads") == tmax and r.param("dispatcher_lock") == mode}
                rows.append((f"{lock} [{name}]", [vals.get(c, 0) for c in cols]))
        bars_chart("dispatcher-lock", f"Many locks: global vs per-object dispatcher lock ({tmax} threads)",
                   "acquisitions per second", rows, [f"{c} lock{'s' if c > 1 else ''}" for c in cols])
    return charts
