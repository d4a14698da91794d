"""Charts: one drawer per chart in DRAWERS, in the order the report shows
them, each given the records of the scenarios the table says feed it. Every
point carries its spread (median with min-max over repetitions); how they are
drawn (palette, log axes, the core-count marker) is canvas.py's business."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from statistics import median

from . import latency
from .canvas import Canvas
from .results import Dataset, LabError
from .scenarios import (CHART_SCENARIOS, KMLAB_TYPES, REFERENCE_LOCK, RW_REFERENCE_LOCK, is_kmlab_type, is_peer,
                        is_rw_lock, is_spin_lock)
from .canvas import lock_style


def spread(values: list[float]) -> tuple[float, float, float]:
    return median(values), min(values), max(values)


# Chart name -> draw(canvas, name, records), in the order the report shows
# them. Which scenarios' records a chart gets is the table's business
# (Scenario.charts); a chart given nothing to plot draws nothing.
DRAWERS: dict = {}


def _draws(name):
    def register(draw):
        DRAWERS[name] = draw
        return draw
    return register


def _sweep(recs, metric="ops_per_s"):
    """The contention sweep's records at the 50 ns critical section."""
    return [r for r in recs if r.family == "BM_Contended" and r.param("cs_ns") == 50 and metric in r.values]


def _by_threads(recs, lock, metric):
    return [(r.param("threads"), *spread(r.values[metric])) for r in recs if r.lock == lock and metric in r.values]


def _best_peer(recs, metric="ops_per_s"):
    """The peer with the highest median throughput summed over the sweep."""
    peers = {}
    for r in recs:
        if is_peer(r.lock):
            peers[r.lock] = peers.get(r.lock, 0) + median(r.values[metric])
    return max(peers, key=peers.get) if peers else None


def _kmlab_and_reference(recs):
    locks = sorted({r.lock for r in recs})
    return [l for l in locks if is_kmlab_type(l)] + ([REFERENCE_LOCK] if REFERENCE_LOCK in locks else [])


def _throughput(c: Canvas, name, recs, kind):
    """Throughput vs threads for one kmlab type's backends, std::mutex as the
    reference and the best peer beside them."""
    s3 = _sweep(recs)
    locks = sorted({r.lock for r in s3 if r.lock.startswith(kind + ",")})
    peer = _best_peer(s3)
    series = [(l, _by_threads(s3, l, "ops_per_s"), lock_style(l)) for l in locks + [REFERENCE_LOCK]]
    if peer:
        series.append((f"{peer} (best peer)", _by_threads(s3, peer, "ops_per_s"), lock_style(peer)))
    if locks:
        c.lines(name, f"{kind}: throughput vs threads (50 ns critical section; median, min-max)", "threads",
                "acquisitions per second", series, threads_axis=True)


for _kind in KMLAB_TYPES:
    DRAWERS[f"throughput-{_kind.lower()}"] = functools.partial(_throughput, kind=_kind)

# The spin locks' natural peers: what a C++ user would spin on instead.
SPIN_PEERS = ("pthread_spinlock_t", "tbb::spin_mutex", "tbb::queuing_mutex")


@_draws("throughput-spinlocks")
def _throughput_spinlocks(c: Canvas, name, recs):
    """kmlab's spin locks (idiomatic and NT) beside the spinning peers and std::mutex."""
    s3 = _sweep(recs)
    locks = sorted({r.lock for r in s3 if is_spin_lock(r.lock)})
    if not locks:
        return
    others = [l for l in SPIN_PEERS + (REFERENCE_LOCK,) if any(r.lock == l for r in s3)]
    c.lines(name, "Spin locks: throughput vs threads (50 ns critical section; median, min-max)", "threads",
            "acquisitions per second", [(l, _by_threads(s3, l, "ops_per_s"), lock_style(l)) for l in locks + others],
            threads_axis=True)


def _per_thread_metric(c: Canvas, name, recs, metric, title, ylabel, **kw):
    s3 = _sweep(recs, metric)
    series = [(l, _by_threads(s3, l, metric), lock_style(l)) for l in _kmlab_and_reference(s3)]
    c.lines(name, title, "threads", ylabel, series, threads_axis=True, **kw)


@_draws("fairness")
def _fairness(c: Canvas, name, recs):
    _per_thread_metric(c, name, recs, "jain", "Fairness (Jain's index) vs threads (50 ns critical section)",
                       "Jain's fairness index (1 = equal shares)", ylog=False, yrange="[0:1.05]")


@_draws("cs-sweep")
def _cs_sweep(c: Canvas, name, recs):
    """Throughput vs critical-section length at threads = cores."""
    s3 = [r for r in recs if r.family == "BM_Contended" and "ops_per_s" in r.values]
    threads = c.cores if any(r.param("threads") == c.cores for r in s3) else \
        min((r.param("threads") for r in s3), default=None)
    series = []
    for lock in _kmlab_and_reference(s3):
        pts = [(max(r.param("cs_ns"), 1), *spread(r.values["ops_per_s"])) for r in s3
               if r.lock == lock and r.param("threads") == threads]
        if len(pts) > 1:
            series.append((lock, pts, lock_style(lock)))
    c.lines(name, f"Throughput vs critical-section length ({threads} threads)", "critical section (ns, 0 drawn at 1)",
            "acquisitions per second", series, xlog=10)


@_draws("cpu-per-op")
def _cpu_per_op(c: Canvas, name, recs):
    _per_thread_metric(c, name, recs, "cpu_ns_per_op", "CPU time per acquisition vs threads (50 ns critical section)",
                       "CPU ns per acquisition (all threads)")


@_draws("switches-per-op")
def _switches_per_op(c: Canvas, name, recs):
    _per_thread_metric(c, name, recs, "vcsw_per_op",
                       "Voluntary context switches per acquisition vs threads (50 ns critical section)",
                       "sleeps per acquisition")


def _rows_by(recs, metric, reverse=False):
    """Records sorted by their median, best first for a time."""
    return sorted(recs, key=lambda r: median(r.values[metric]), reverse=reverse)


@_draws("uncontended-ns")
def _uncontended_ns(c: Canvas, name, recs):
    """Uncontended ns per pair with the fetch_add floor."""
    s1 = _rows_by([r for r in recs if r.family == "BM_LockUnlock" and "real_time" in r.values], "real_time")
    floor = next((median(r.values["real_time"]) for r in recs if r.family == "BM_Floor" and r.lock == "fetch_add"),
                 None)
    c.dots(name, "Uncontended lock+unlock (median, min-max)", "nanoseconds per lock+unlock",
           [r.lock for r in s1], [("ns per pair", {i: spread(r.values["real_time"]) for i, r in enumerate(s1)})],
           floor=floor, floor_label="fetch_add floor", colour_rows=True)


@_draws("uncontended-rw")
def _uncontended_rw(c: Canvas, name, recs):
    """The reader/writer locks' shared and exclusive pairs, the shared pair by
    a thread already in a critical region, and that region (which ERESOURCE
    and the push locks need around them) as a floor."""
    shared = {r.lock: r for r in recs if r.family == "BM_RwShared" and "real_time" in r.values}
    exclusive = {r.lock: r for r in recs if r.family == "BM_RwExclusive" and "real_time" in r.values}
    in_region = {r.lock: r for r in recs if r.family == "BM_RwSharedInRegion" and "real_time" in r.values}
    rows = sorted(set(shared) | set(exclusive),
                  key=lambda l: median((shared.get(l) or exclusive[l]).values["real_time"]))
    floor = next((median(r.values["real_time"]) for r in recs
                  if r.family == "BM_Floor" and r.lock == "critical_region"), None)
    c.dots(name, "Uncontended reader/writer locks: shared and exclusive acquire+release, and shared by a thread "
                 "already in a critical region (median, min-max)",
           "nanoseconds per acquire+release", rows,
           [(kind, {i: spread(by[l].values["real_time"]) for i, l in enumerate(rows) if l in by})
            for kind, by in (("shared", shared), ("exclusive", exclusive),
                             ("shared, region already held", in_region))],
           floor=floor, floor_label="critical region enter+leave")


@_draws("uncontended-instructions")
def _uncontended_instructions(c: Canvas, name, recs):
    """Instructions per pair, from callgrind rather than the records: one
    exact count per lock, so no spread to draw."""
    inst = c.instructions
    if inst:
        rows = sorted(((k, v) for k, v in inst.items() if k != "fetch_add"), key=lambda kv: kv[1])
        c.dots(name, "Uncontended lock+unlock under callgrind (exact counts)", "instructions per lock+unlock",
               [k for k, _ in rows], [("instructions", {i: (v, v, v) for i, (_, v) in enumerate(rows)})],
               floor=inst.get("fetch_add"), floor_label="fetch_add floor", colour_rows=True)


@_draws("latency")
def _latency(c: Canvas, name, recs):
    """Latency percentiles at the largest thread count."""
    s6 = [r for r in recs if r.family == "BM_Latency" and "p99_ns" in r.values]
    if not s6:
        return
    tmax = max(r.param("threads") for r in s6)
    at = _rows_by([r for r in s6 if r.param("threads") == tmax], "p99_ns")
    series = [(label, {i: spread(r.values[k]) for i, r in enumerate(at) if k in r.values})
              for label, k in (("p50", "p50_ns"), ("p99", "p99_ns"), ("p99.9", "p999_ns"), ("max", "max_ns"))]
    c.dots(name, f"Time to acquire at {tmax} threads (sampled; median, min-max over repetitions)",
           "time to acquire", [r.lock for r in at], series, time_axis=True)


@_draws("latency-cdf")
def _latency_cdf(c: Canvas, name, recs):
    """The whole distribution, one chart per thread count, where the JSON
    kept the histograms."""
    s6 = [r for r in recs if r.family == "BM_Latency" and r.histograms]
    for t in sorted({r.param("threads") for r in s6}):
        series = []
        for lock in _kmlab_and_reference([r for r in s6 if r.param("threads") == t]):
            r = next(r for r in s6 if r.lock == lock and r.param("threads") == t)
            merged = latency.merge(r.histograms)
            pts = [(v, 1 - f) for v, f in merged.cdf() if 1 - f > 0]
            marks = {k: (1 - q, *spread(r.values[k])) for k, q in latency.PERCENTILES if k in r.values}
            series.append((lock, pts, marks))
        c.cdf(f"{name}-{t}threads", f"Time to acquire at {t} threads: the whole distribution "
                                    f"(bars: a percentile's spread over repetitions)", series)


@_draws("handoff")
def _handoff(c: Canvas, name, recs):
    """ns per handoff (the inverse of handoffs per second), sleeps beside each lock."""
    s7 = [r for r in recs if r.family == "BM_Handoff" and "ops_per_s" in r.values and min(r.values["ops_per_s"]) > 0]
    s7 = _rows_by(s7, "ops_per_s", reverse=True)
    rows = [f"{r.lock} ({median(r.values['vcsw_per_op']):.2f} sleeps)" if "vcsw_per_op" in r.values else r.lock
            for r in s7]
    # The raw-futex ping-pong of the same binary: the time of one round trip, a wake each way.
    floor = next((1e9 / median(r.values["ops_per_s"]) for r in recs if r.family == "BM_HandoffFloor"
                  and r.values.get("ops_per_s") and median(r.values["ops_per_s"]) > 0), None)
    c.dots(name, "Handoff between two threads through the lock (median, min-max; sleeps per handoff in brackets)",
           "time per handoff", rows,
           [("time per handoff", {i: spread([1e9 / v for v in r.values["ops_per_s"]]) for i, r in enumerate(s7)})],
           time_axis=True, floor=floor, floor_label="raw futex round trip")


@_draws("one-core")
def _one_core(c: Canvas, name, recs):
    """S16: the two threads pinned to one CPU, each row's rate with its spread; zeros (a starved turn) drawn at
    the axis floor, which the axis label names."""
    rows = _rows_by([r for r in recs if r.family == "BM_OneCore" and r.values.get("ops_per_s")], "ops_per_s",
                    reverse=True)
    c.dots(name, "Two threads pinned to one CPU: handoffs, or ping-pong round trips (median, min-max)",
           "operations per second (handoffs; round trips for KEVENT and raw_futex)", [r.lock for r in rows],
           [("rate", {i: spread(r.values["ops_per_s"]) for i, r in enumerate(rows)})], colour_rows=True)


@_draws("oversubscription")
def _oversubscription(c: Canvas, name, recs):
    s4 = [r for r in recs if r.family == "BM_Oversubscribed" and "ops_per_s" in r.values]
    if not s4:
        return
    cols = sorted({(r.param("threads"), r.param("hog")) for r in s4})
    first = _rows_by([r for r in s4 if (r.param("threads"), r.param("hog")) == cols[0]], "ops_per_s", reverse=True)
    locks = [r.lock for r in first] + sorted({r.lock for r in s4} - {r.lock for r in first})
    series = [(f"{t} threads{' + CPU hog' if h else ''}",
               {locks.index(r.lock): spread(r.values["ops_per_s"]) for r in s4
                if (r.param("threads"), r.param("hog")) == (t, h)}) for t, h in cols]
    c.dots(name, "Oversubscription: throughput with more threads than cores (median, min-max)",
           "acquisitions per second", locks, series)


@_draws("dispatcher-lock")
def _dispatcher_lock(c: Canvas, name, recs):
    """Global vs per-object dispatcher lock, at the larger thread count."""
    s8 = [r for r in recs if r.family == "BM_ManyLocks" and "ops_per_s" in r.values]
    if not s8:
        return
    tmax = max(r.param("threads") for r in s8)
    both = sorted({r.lock for r in s8 if r.param("dispatcher_lock") == 1})
    rows = [f"{lock} [{mode_name}]" for lock in both for mode_name in ("global", "per-object")]
    series = []
    for n in sorted({r.param("locks") for r in s8}):
        pts = {}
        for r in s8:
            if r.lock in both and r.param("threads") == tmax and r.param("locks") == n:
                mode = "per-object" if r.param("dispatcher_lock") == 1 else "global"
                pts[rows.index(f"{r.lock} [{mode}]")] = spread(r.values["ops_per_s"])
        series.append((f"{n} lock{'s' if n > 1 else ''}", pts))
    c.dots(name, f"Many locks: global vs per-object dispatcher lock ({tmax} threads; median, min-max)",
           "acquisitions per second", rows, series)


@_draws("read-mostly")
def _read_mostly(c: Canvas, name, recs):
    """Throughput vs the readers' share, one chart per thread count; kmlab's
    reader/writer locks, the peers, and std::shared_mutex as the reference."""
    s12 = [r for r in recs if r.family == "BM_ReadMostly" and "ops_per_s" in r.values]
    shares = sorted({r.param("read_pct") for r in s12})
    # Evenly spaced categories: 90 and 99 % would sit together on a linear axis.
    # A tic label is a format for gnuplot: '%%' draws one '%'.
    tics = "set xtics (" + ", ".join(f"'{p}%%' {i}" for i, p in enumerate(shares)) + ")"
    extra = f"{tics}\nset xrange [-0.25:{len(shares) - 0.75:g}]"
    for t in sorted({r.param("threads") for r in s12}):
        at = [r for r in s12 if r.param("threads") == t]
        locks = sorted({r.lock for r in at}, key=lambda l: (not is_rw_lock(l), l == RW_REFERENCE_LOCK, l))
        series = [(l, [(shares.index(r.param("read_pct")), *spread(r.values["ops_per_s"])) for r in at if r.lock == l],
                   lock_style(l)) for l in locks]
        c.lines(f"{name}-{t}threads", f"Read-mostly: throughput vs readers' share at {t} threads "
                                       f"(200 ns critical section; median, min-max)",
                "share of acquisitions that read (the rest write)", "acquisitions per second (readers and writers)",
                series, xlog=0, extra=extra)


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
