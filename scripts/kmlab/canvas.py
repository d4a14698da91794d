"""Drawing with gnuplot: the fixed palette (one colour and marker per lock,
the same in every chart; std::mutex, and std::shared_mutex where the
reader/writer locks are compared, always the black dashed reference), the
two chart kinds the report uses (lines over a numeric axis, and dot plots
with one row per lock), each point with its spread, a log axis wherever the
values span more than 100x, and a marker at the core count. Scripts are
filled from reports/templates and drawn as SVG (inlined in report.html) and
PNG."""

from __future__ import annotations

import math
import re
import string
import subprocess
import zlib
from pathlib import Path

from . import ROOT
from .results import LabError
from .scenarios import REFERENCE_LOCK, RW_REFERENCE_LOCK

TEMPLATES = ROOT / "reports" / "templates"

# Nine distinct hues for kmlab's nine type x backend locks (the marker says
# the backend: circle futex, square spin, triangle dispatcher), darker ones
# with inverted triangles for the NT routines, open markers for the peers.
PALETTE = {
    "KMutex,futex": ("#1f77b4", 7), "KMutex,spin": ("#17becf", 5), "KMutex,dispatcher": ("#9467bd", 9),
    "FastMutex,futex": ("#2ca02c", 7), "FastMutex,spin": ("#bcbd22", 5), "FastMutex,dispatcher": ("#8c564b", 9),
    "GuardedMutex,futex": ("#d62728", 7), "GuardedMutex,spin": ("#ff7f0e", 5),
    "GuardedMutex,dispatcher": ("#e377c2", 9),
    "KeWaitForSingleObject(KMUTEX)": ("#393b79", 11), "ExAcquireFastMutex": ("#637939", 11),
    "KeAcquireGuardedMutex": ("#843c39", 11),
    "std::recursive_mutex": ("#9e9e9e", 6), "tbb::spin_mutex": ("#8c6d31", 4), "tbb::mutex": ("#404040", 8),
    "tbb::queuing_mutex": ("#5254a3", 10), "pthread_spinlock_t": ("#ad494a", 12), "absl::Mutex": ("#b8860b", 14),
    # kmlab's spin and reader/writer locks: filled markers, the NT routines' a darker shade with
    # an inverted triangle; the reader/writer peers open markers.
    "SpinLock": ("#e6550d", 7), "QueuedSpinLock": ("#31a354", 5),
    "KeAcquireSpinLock": ("#a63603", 11), "KeAcquireInStackQueuedSpinLock": ("#006d2c", 11),
    "Resource": ("#3182bd", 7), "PushLock": ("#756bb1", 5), "RwSpinLock": ("#fd8d3c", 9),
    "ERESOURCE": ("#08519c", 11), "EX_PUSH_LOCK": ("#54278f", 11), "EX_SPIN_LOCK": ("#d94801", 11),
    "pthread_rwlock_t": ("#ad494a", 12), "tbb::spin_rw_mutex": ("#8c6d31", 4), "tbb::queuing_rw_mutex": ("#5254a3", 10),
}
_SPARE = ("#6b6ecf", "#b5cf6b", "#e7ba52", "#d6616b", "#ce6dbd", "#9c9ede", "#8ca252", "#bd9e39")
REFERENCE_COLOUR = "#000000"
# Series that are not locks (percentiles, configurations) in dot plots.
SERIES_MARKS = ((7, "#1f77b4"), (5, "#ff7f0e"), (9, "#2ca02c"), (13, "#d62728"), (11, "#9467bd"), (15, "#8c564b"))


def lock_colour(lock: str) -> str:
    if lock in (REFERENCE_LOCK, RW_REFERENCE_LOCK):
        return REFERENCE_COLOUR
    if lock in PALETTE:
        return PALETTE[lock][0]
    return _SPARE[zlib.crc32(lock.encode()) % len(_SPARE)]  # stable across charts and runs


def lock_style(lock: str) -> str:
    """The line and marker of a lock, the same in every chart; each reference
    (std::mutex, std::shared_mutex for the reader/writer charts) black dashed."""
    if lock in (REFERENCE_LOCK, RW_REFERENCE_LOCK):
        return f"lw 3 dt 2 lc rgb '{REFERENCE_COLOUR}' pt 1 ps 1.3"
    pt = PALETTE[lock][1] if lock in PALETTE else 3
    return f"lw 2 dt 1 lc rgb '{lock_colour(lock)}' pt {pt} ps 1.1"


def gp_quote(text: str) -> str:
    """Text for a single-quoted gnuplot string."""
    return text.replace("'", "''")


def machine_subtitle(machine: dict) -> str:
    cpu = re.sub(r"\s+", " ", re.sub(r"\((R|TM)\)|CPU|Processor", "", machine.get("cpu_model", "?"))).strip()
    return f"{machine.get('host', '?')}: {cpu}, {machine.get('cores', '?')} cores, commit {machine.get('commit', '?')}"


def spans_decades(values, factor=100.0) -> bool:
    pos = [v for v in values if v is not None and v > 0]
    return bool(pos) and max(pos) / min(pos) > factor


def log_floor(values) -> float | None:
    """Where a zero goes on a log axis: half the smallest positive value."""
    pos = [v for v in values if v is not None and v > 0]
    return min(pos) / 2 if pos else None


def time_tics(values, axis: str) -> str:
    """Decade tics on a log axis of nanoseconds, labelled in ns, us or ms."""
    pos = [v for v in values if v and v > 0]
    if not pos:
        return ""
    lo, hi = math.floor(math.log10(min(pos))), math.ceil(math.log10(max(pos)))
    names = {0: "1 ns", 1: "10 ns", 2: "100 ns", 3: "1 us", 4: "10 us", 5: "100 us", 6: "1 ms", 7: "10 ms",
             8: "100 ms", 9: "1 s", 10: "10 s"}
    tics = ", ".join(f"'{names.get(e, f'1e{e} ns')}' 1e{e}" for e in range(lo, hi + 1))
    return f"set {axis}tics ({tics})"


def count_format(values, axis: str, log: bool) -> str:
    """SI prefixes (10k, 1.5M) instead of 1x10^6 on axes of large counts."""
    pos = [v for v in values if v and v > 0]
    if not pos:
        return ""
    if log and min(pos) >= 1000:
        return f"set format {axis} '%.0s%c'"
    if not log and max(pos) >= 10000:
        return f"set format {axis} '%.1s%c'"
    if log and min(pos) < 1:
        return f"set format {axis} '%g'"
    return ""


def write_chart(out_dir: Path, name: str, template: str, subst: dict, data: dict[str, str],
                height: int = 600) -> list[str]:
    """Writes the data files and a filled script, runs gnuplot for SVG and PNG."""
    charts = out_dir / "charts"
    charts.mkdir(exist_ok=True)
    for fname, content in data.items():
        (charts / fname).write_text(content)
    tpl = string.Template((TEMPLATES / template).read_text())
    subst = {k: (v.replace("\\", "\\\\").replace('"', '\\"') if k in ("title", "subtitle") else
                 gp_quote(v) if k in ("xlabel", "ylabel") else v) for k, v in subst.items()}
    made = []
    for ext, term in (("svg", f"svg size 1000,{height} dynamic background rgb 'white' font 'sans,11'"),
                      ("png", f"pngcairo size 1000,{height} font 'sans,10'")):
        gp = charts / f"{name}.{ext}.gp"
        gp.write_text(tpl.substitute(subst, terminal=term, output=f"{name}.{ext}"))
        try:
            r = subprocess.run(["gnuplot", gp.name], cwd=charts, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise LabError(f"chart '{name}': gnuplot could not run ({e})") from None
        if r.returncode != 0:
            raise LabError(f"chart '{name}': gnuplot failed on charts/{gp.name}: {r.stderr.strip()[-300:]}")
        made.append(f"charts/{name}.{ext}")
    return made


def cores_marker(cores: int) -> str:
    """A dotted vertical line where the threads reach the core count."""
    return (f"set arrow from {cores}, graph 0 to {cores}, graph 1 nohead dt 3 lw 1.5 lc rgb '#555555' back\n"
            f"set label '{cores} cores: more threads than cores to the right' at {cores}, graph 0.03 "
            f"offset 0.4, 0 left textcolor rgb '#555555' font ',9'")


class Canvas:
    """Where one report's charts go: the folder, the subtitle every chart
    carries (the machine), the core count, and (title, svg path) of each
    chart drawn."""

    def __init__(self, out_dir: Path, machine: dict, instructions: dict | None):
        self.out_dir = out_dir
        self.machine = machine
        self.instructions = instructions
        self.subtitle = machine_subtitle(machine)
        try:
            self.cores = int(machine.get("cores") or 0) or None
        except ValueError:
            self.cores = None
        self.drawn: list[tuple[str, str]] = []

    def lines(self, name, title, xlabel, ylabel, series, xlog=2, ylog=None, yrange="", threads_axis=False,
              extra=""):
        """series: (label, [(x, median, low, high)], style). ylog None: log
        when the values span more than 100x; zeros then sit at a floor the
        axis label names."""
        series = [(lab, sorted(pts), style) for lab, pts, style in series if pts]
        if not series:
            return
        ys = [v for _, pts, _ in series for p in pts for v in p[1:]]
        if ylog is None:
            ylog = spans_decades(ys)
        axes = [f"set logscale x {xlog}" if xlog else ""]
        if ylog:
            floor = log_floor(ys)
            if any(v <= 0 for v in ys):
                ylabel += f" (log; 0 drawn at {floor:.3g})"
                series = [(lab, [tuple(max(v, floor) if i else v for i, v in enumerate(p)) for p in pts], st)
                          for lab, pts, st in series]
            elif "log" not in ylabel:
                ylabel += " (log scale)"
            axes.append("set logscale y")
        axes.append(count_format(ys, "y", ylog))
        if yrange:
            axes.append(f"set yrange {yrange}")
        if threads_axis and self.cores:
            extra += "\n" + cores_marker(self.cores)
        data, plots = {}, []
        for i, (label, pts, style) in enumerate(series):
            fname = f"{name}-{i}.dat"
            data[fname] = "".join("\t".join(f"{v:g}" for v in p) + "\n" for p in pts)
            plots.append(f"'{fname}' using 1:2:3:4 with yerrorlines {style} title '{gp_quote(label)}'")
        write_chart(self.out_dir, name, "lines.gp", {"title": title, "subtitle": self.subtitle, "xlabel": xlabel,
                                                      "ylabel": ylabel, "axes": "\n".join(axes), "extra": extra,
                                                      "plots": ", \\\n     ".join(plots)}, data)
        self.drawn.append((title, f"charts/{name}.svg"))

    def dots(self, name, title, xlabel, rows, series, xlog=None, floor=None, floor_label="", colour_rows=False,
             time_axis=False):
        """rows: row labels, top down. series: (title, {row index: (median,
        low, high)}); with one series and colour_rows, each row takes its
        lock's colour (row labels are lock names)."""
        series = [(t, pts) for t, pts in series if pts]
        if not rows or not series:
            return
        xs = [v for _, pts in series for p in pts.values() for v in p] + ([floor] if floor else [])
        if xlog is None:
            xlog = spans_decades(xs)
        # A little room past the extreme markers, so none sits half on the border.
        axes = [f"set xrange [0:{max(xs) * 1.05:g}]" if not xlog else ""]
        if xlog:
            lo = log_floor(xs)
            if any(v <= 0 for v in xs):
                xlabel += f" (log; 0 drawn at {lo:.3g})"
                series = [(t, {k: tuple(max(v, lo) for v in p) for k, p in pts.items()}) for t, pts in series]
            elif "log" not in xlabel:
                xlabel += " (log scale)"
            pos = [v for v in xs if v > 0] or [lo]
            axes.append(f"set logscale x\nset xrange [{min(pos) / 1.6:g}:{max(pos) * 1.6:g}]")
        data, plots = {}, []
        offsets = [0.0] if len(series) == 1 else [(-0.3 + 0.6 * i / (len(series) - 1)) for i in range(len(series))]
        for i, (stitle, pts) in enumerate(series):
            fname = f"{name}-{i}.dat"
            pt, colour = SERIES_MARKS[i % len(SERIES_MARKS)]
            if colour_rows and len(series) == 1:
                data[fname] = "".join(f"{k}\t{m:g}\t{lo:g}\t{hi:g}\t{int(lock_colour(rows[k])[1:], 16)}\n"
                                      for k, (m, lo, hi) in sorted(pts.items()))
                plots.append(f"'{fname}' using 2:1:3:4:5 with xerrorbars pt 7 ps 1.3 lw 1.5 lc rgb variable notitle")
            else:
                data[fname] = "".join(f"{k + offsets[i]:g}\t{m:g}\t{lo:g}\t{hi:g}\n"
                                      for k, (m, lo, hi) in sorted(pts.items()))
                plots.append(f"'{fname}' using 2:1:3:4 with xerrorbars pt {pt} ps 1.2 lw 1.5 lc rgb '{colour}' "
                             f"title '{gp_quote(stitle)}'")
        extra = "unset key" if colour_rows and len(series) == 1 else ""
        if floor:
            extra += (f"\nset arrow from {floor}, graph 0 to {floor}, graph 1 nohead dt 2 lw 2 lc rgb '#000000' back\n"
                      f"set label '{gp_quote(floor_label)}' at {floor}, graph 0 offset 0.4, 0.8 left noenhanced font ',9'")
        extra += "\n" + (time_tics(xs, "x") if time_axis and xlog else count_format(xs, "x", xlog))
        ytics = ", ".join(f"'{gp_quote(r)}' {i}" for i, r in enumerate(rows))
        height = max(360, 150 + 26 * len(rows))
        write_chart(self.out_dir, name, "dots.gp", {"title": title, "subtitle": self.subtitle, "xlabel": xlabel,
                                                     "ytics": ytics, "rows": str(len(rows)),
                                                     "axes": "\n".join(a for a in axes if a), "extra": extra,
                                                     "plots": ", \\\n     ".join(plots)}, data, height=height)
        self.drawn.append((title, f"charts/{name}.svg"))

    def cdf(self, name, title, series):
        """series: (lock, [(ns, fraction slower)], {label: (y, median, low, high)}): the
        tail of the distribution on log-log axes, and at p50 / p99 / p99.9 the
        spread of that percentile over repetitions as a horizontal bar."""
        series = [s for s in series if s[1]]
        if not series:
            return
        data, plots = {}, []
        for i, (lock, pts, marks) in enumerate(series):
            fname = f"{name}-{i}.dat"
            data[fname] = "".join(f"{x:g}\t{y:g}\n" for x, y in pts)
            style = lock_style(lock)
            plots.append(f"'{fname}' using 1:2 with steps {style} title '{gp_quote(lock)}'")
            if marks:
                mname = f"{name}-{i}-p.dat"
                data[mname] = "".join(f"{m:g}\t{y:g}\t{lo:g}\t{hi:g}\n" for y, m, lo, hi in marks.values())
                plots.append(f"'{mname}' using 1:2:3:4 with xerrorbars {style} notitle")
        levels = "\n".join(f"set arrow from graph 0, first {y} to graph 1, first {y} nohead dt 3 lc rgb '#999999' back"
                           for y in (0.5, 0.01, 0.001))
        # The percentile levels are named on the right-hand axis, clear of the curves.
        bottom = 10 ** math.floor(math.log10(min(y for _, pts, _ in series for _, y in pts)))
        levels += (f"\nset yrange [{bottom:g}:1.2]\nset logscale y2\nset y2range [{bottom:g}:1.2]\n"
                   f"set y2tics ('p50' 0.5, 'p99' 0.01, 'p99.9' 0.001) textcolor rgb '#555555'")
        levels += "\n" + time_tics([x for _, pts, _ in series for x, _ in pts], "x")
        write_chart(self.out_dir, name, "lines.gp", {
            "title": title, "subtitle": self.subtitle, "xlabel": "time to acquire (ns, log scale)",
            "ylabel": "fraction of acquisitions slower (log scale)",
            "axes": "set logscale x 10\nset logscale y 10\nset format y '%g'",
            "extra": levels, "plots": ", \\\n     ".join(plots)}, data)
        self.drawn.append((title, f"charts/{name}.svg"))
