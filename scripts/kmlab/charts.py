"""Charts: one drawer per chart in DRAWERS, in the order the report shows
them, each given the records of the scenarios the table says feed it; gnuplot
data files and scripts filled from the templates in reports/templates, drawn
as SVG (inlined in report.html) and PNG."""

from __future__ import annotations

import functools
import re
import shutil
import string
import subprocess
from pathlib import Path
from statistics import median

from . import ROOT
from .results import Dataset, LabError
from .scenarios import CHART_SCENARIOS, KMLAB_TYPES, REFERENCE_LOCK

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
    return [l for l in locks if l.split(",")[0] in KMLAB_TYPES]


class Canvas:
    """Where one report's charts go: the folder, the subtitle every chart
    carries (the machine), and (title, svg path) of each chart drawn."""

    def __init__(self, out_dir: Path, machine: dict, instructions: dict | None):
        self.out_dir = out_dir
        self.machine = machine
        self.instructions = instructions
        self.subtitle = machine_subtitle(machine)
        self.drawn: list[tuple[str, str]] = []

    def lines(self, name, title, xlabel, ylabel, series, logscale):
        data, plots = {}, []
        for i, (label, points, style) in enumerate(series):
            fname = f"{name}-{i}.dat"
            data[fname] = "".join(f"{x}\t{y}\n" for x, y in sorted(points))
            plots.append(f"'{fname}' using 1:2 with linespoints {style} title '{gp_quote(label)}'")
        if not plots:
            return
        write_chart(self.out_dir, name, "lines.gp", {"title": title, "subtitle": self.subtitle, "xlabel": xlabel,
                                                      "ylabel": ylabel, "logscale": logscale,
                                                      "plots": ", \\\n     ".join(plots)}, data)
        self.drawn.append((title, f"charts/{name}.svg"))

    def bars(self, name, title, ylabel, rows, columns, logscale="", floor=None, floor_label=""):
        if not rows:
            return
        fname = f"{name}.dat"
        # No header row: gnuplot would plot it as a bar; titles come from `columns`.
        data = {fname: "".join(f"{lab}\t" + "\t".join(f"{v:g}" for v in vals) + "\n" for lab, vals in rows)}
        plots = [f"'{fname}' using {i + 2}:xtic(1) title '{gp_quote(c)}'" for i, c in enumerate(columns)]
        if floor is not None:
            plots.append(f"{floor} with lines lw 2 dt 2 lc rgb 'black' title '{gp_quote(floor_label)}'")
        write_chart(self.out_dir, name, "bars.gp", {"title": title, "subtitle": self.subtitle, "ylabel": ylabel,
                                                     "xlabel": "lock", "logscale": logscale,
                                                     "yrange": "" if logscale else "set yrange [0:*]",
                                                     "plots": ", \\\n     ".join(plots)}, data)
        self.drawn.append((title, f"charts/{name}.svg"))


# Chart name -> draw(canvas, name, records), in the order the report shows
# them. Which scenarios' records a chart gets is the table's business
# (Scenario.charts); a chart given nothing to plot draws nothing.
DRAWERS: dict = {}


def _draws(name):
    def register(draw):
        DRAWERS[name] = draw
        return draw
    return register


def _contended(recs):
    s3 = [r for r in recs if r.family == "BM_Contended" and "ops_per_s" in r.values]
    return s3, sorted({r.lock for r in s3})


def _throughput(c: Canvas, name, recs, kind):
    """Throughput vs threads for one kmlab type, std::mutex as the reference."""
    s3, locks = _contended(recs)
    series = []
    for lock in [l for l in locks if l.startswith(kind + ",")] + [REFERENCE_LOCK]:
        pts = [(r.param("threads"), median(r.values["ops_per_s"])) for r in s3
               if r.lock == lock and r.param("cs_ns") == 50]
        style = "lw 3 dt 2 lc rgb 'black'" if lock == REFERENCE_LOCK else "lw 2"
        if pts:
            series.append((lock, pts, style))
    c.lines(name, f"{kind}: throughput vs threads (50 ns critical section)",
            "threads", "acquisitions per second", series, "set logscale x 2\nset logscale y")


for _kind in KMLAB_TYPES:
    DRAWERS[f"throughput-{_kind.lower()}"] = functools.partial(_throughput, kind=_kind)


@_draws("fairness")
def _fairness(c: Canvas, name, recs):
    s3, locks = _contended(recs)
    series = [(lock, [(r.param("threads"), median(r.values["jain"])) for r in s3
                      if r.lock == lock and r.param("cs_ns") == 50 and "jain" in r.values], "lw 2")
              for lock in kmlab_locks(locks) + [REFERENCE_LOCK]]
    c.lines(name, "Fairness (Jain's index) vs threads (50 ns critical section)", "threads",
            "Jain's fairness index (1 = fair)", [s for s in series if s[1]], "set logscale x 2\nset yrange [0:1.05]")


@_draws("cs-sweep")
def _cs_sweep(c: Canvas, name, recs):
    """Throughput vs critical-section length at threads = cores."""
    s3, locks = _contended(recs)
    cores = int(c.machine.get("cores") or 2)
    series = []
    for lock in kmlab_locks(locks) + [REFERENCE_LOCK]:
        pts = [(max(r.param("cs_ns"), 1), median(r.values["ops_per_s"])) for r in s3
               if r.lock == lock and r.param("threads") == cores]
        if len(pts) > 1:
            series.append((lock, pts, "lw 2"))
    c.lines(name, f"Throughput vs critical-section length ({cores} threads)", "critical section (ns, 0 drawn at 1)",
            "acquisitions per second", series, "set logscale x 10\nset logscale y")


@_draws("uncontended-ns")
def _uncontended_ns(c: Canvas, name, recs):
    """Uncontended ns per pair with the fetch_add floor."""
    s1 = sorted([r for r in recs if r.family == "BM_LockUnlock" and "real_time" in r.values],
                key=lambda r: median(r.values["real_time"]))
    floor = next((median(r.values["real_time"]) for r in recs if r.family == "BM_Floor" and r.lock == "fetch_add"), None)
    c.bars(name, "Uncontended lock+unlock", "nanoseconds per pair (median)",
           [(r.lock, [median(r.values["real_time"])]) for r in s1], ["ns per pair"],
           floor=floor, floor_label="fetch_add floor")


@_draws("uncontended-instructions")
def _uncontended_instructions(c: Canvas, name, recs):
    """Instructions per pair, from callgrind rather than the records."""
    inst = c.instructions
    if inst:
        rows = sorted(((k, [v]) for k, v in inst.items() if k != "fetch_add"), key=lambda kv: kv[1][0])
        c.bars(name, "Uncontended lock+unlock under callgrind",
               "instructions per pair (log scale)", rows, ["instructions"], logscale="set logscale y",
               floor=inst.get("fetch_add"), floor_label="fetch_add floor")


@_draws("latency")
def _latency(c: Canvas, name, recs):
    """Latency percentiles at the larger thread count."""
    s6 = [r for r in recs if r.family == "BM_Latency" and "p99_ns" in r.values]
    if s6:
        tmax = max(r.param("threads") for r in s6)
        rows = [(r.lock, [median(r.values[k]) for k in ("p50_ns", "p99_ns", "p999_ns", "max_ns")])
                for r in sorted(s6, key=lambda r: median(r.values["p99_ns"])) if r.param("threads") == tmax]
        c.bars(name, f"Time to acquire ({tmax} threads, sampled)", "nanoseconds (log scale)", rows,
               ["p50", "p99", "p99.9", "max"], logscale="set logscale y")


@_draws("oversubscription")
def _oversubscription(c: Canvas, name, recs):
    s4 = [r for r in recs if r.family == "BM_Oversubscribed" and "ops_per_s" in r.values]
    if s4:
        cols = sorted({(r.param("threads"), r.param("hog")) for r in s4})
        by_lock = {}
        for r in s4:
            by_lock.setdefault(r.lock, {})[(r.param("threads"), r.param("hog"))] = median(r.values["ops_per_s"])
        rows = [(lock, [v.get(col, 0) for col in cols]) for lock, v in sorted(by_lock.items())]
        c.bars(name, "Oversubscription: throughput with more threads than cores",
               "acquisitions per second", rows, [f"{t} threads{' + CPU hog' if h else ''}" for t, h in cols])


@_draws("dispatcher-lock")
def _dispatcher_lock(c: Canvas, name, recs):
    """Global vs per-object dispatcher lock, at the larger thread count."""
    s8 = [r for r in recs if r.family == "BM_ManyLocks" and "ops_per_s" in r.values]
    if s8:
        tmax = max(r.param("threads") for r in s8)
        both = {r.lock for r in s8 if r.param("dispatcher_lock") == 1}
        cols = sorted({r.param("locks") for r in s8})
        rows = []
        for lock in sorted(both):
            for mode, mode_name in ((0, "global"), (1, "per-object")):
                vals = {r.param("locks"): median(r.values["ops_per_s"]) for r in s8
                        if r.lock == lock and r.param("threads") == tmax and r.param("dispatcher_lock") == mode}
                rows.append((f"{lock} [{mode_name}]", [vals.get(col, 0) for col in cols]))
        c.bars(name, f"Many locks: global vs per-object dispatcher lock ({tmax} threads)",
               "acquisitions per second", rows, [f"{col} lock{'s' if col > 1 else ''}" for col in cols])


def render_charts(ds: Dataset, out_dir: Path) -> list[tuple[str, str]]:
    """Draws the first machine's charts; returns (title, svg path) of each."""
    if shutil.which("gnuplot") is None:
        raise LabError("gnuplot is not installed: charts cannot be drawn (apt-get install gnuplot-nox)")
    machine = next(iter(ds.machines))
    recs = [r for r in ds.records if r.machine == machine]
    canvas = Canvas(out_dir, ds.machines[machine], ds.instructions.get(machine))
    for name, draw in DRAWERS.items():
        fed_by = CHART_SCENARIOS[name]
        draw(canvas, name, [r for r in recs if r.scenario in fed_by])
    return canvas.drawn
