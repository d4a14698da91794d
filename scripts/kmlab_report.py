#!/usr/bin/env python3
"""kmlab's benchmark lab: run the suite, render reports, compare runs.

    kmlab_report.py run [--quick] [--filter S1,S3] [--repetitions N] [--out DIR] [--build-dir DIR]
    kmlab_report.py report DIR [DIR...] [--out DIR]
    kmlab_report.py compare A B [--fail-above PCT] [--alpha A]

`scripts/lab` builds first and then calls this. Python's standard library
only: the machines this runs on have no package index.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import json
import math
import os
import platform
import re
import shutil
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "reports" / "templates"


class LabError(Exception):
    """A problem with the user's input or environment: one message, exit 2."""


# ---------------------------------------------------------------------------
# Scenarios (BENCHMARKING.md).

@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    binary: str
    filter: str
    metric: str          # the figure the tables lead with
    higher_is_better: bool


SCENARIOS = [
    Scenario("S1", "uncontended lock+unlock and try_lock", "uncontended", "BM_(LockUnlock|TryLockUnlock)<", "real_time", False),
    Scenario("S2", "physical floors", "uncontended", "BM_Floor<", "real_time", False),
    Scenario("S3", "contention sweep", "contention", "BM_Contended<", "ops_per_s", True),
    Scenario("S4", "oversubscription", "contention", "BM_Oversubscribed<", "ops_per_s", True),
    Scenario("S5", "fairness", "contention", "BM_Fairness<", "jain", True),
    Scenario("S6", "acquisition latency", "contention", "BM_Latency<", "p99_ns", False),
    Scenario("S7", "handoff", "handoff", "BM_Handoff<", "ops_per_s", True),
    Scenario("S8", "many locks (global vs per-object dispatcher lock)", "many_locks", "BM_ManyLocks<", "ops_per_s", True),
    Scenario("S9", "dispatcher objects", "dispatcher_objects", "BM_", "ops_per_s", True),
    Scenario("S10", "driver-shaped work", "driver", "BM_", "ops_per_s", True),
    Scenario("S11", "safety cost", "uncontended", "BM_SafetyCost<", "real_time", False),
]
SCENARIO_BY_ID = {s.id: s for s in SCENARIOS}

# Profiles: the quick one is for CI smoke runs (BENCHMARKING.md sizes).
PROFILES = {
    "quick": {"duration_ms": 40, "repetitions": 1, "min_time": 0.02},
    "default": {"duration_ms": 120, "repetitions": 5, "min_time": 0.1},
}

REFERENCE_LOCK = "std::mutex"
FAMILY_SCENARIO = {
    "BM_LockUnlock": "S1", "BM_TryLockUnlock": "S1", "BM_Floor": "S2", "BM_Contended": "S3",
    "BM_Oversubscribed": "S4", "BM_Fairness": "S5", "BM_Latency": "S6", "BM_Handoff": "S7", "BM_ManyLocks": "S8",
    "BM_EventPingPong": "S9", "BM_SemaphorePingPong": "S9", "BM_WaitAny": "S9", "BM_WaitAll": "S9",
    "BM_IrpQueue": "S10", "BM_GrtLookupLock": "S10", "BM_SafetyCost": "S11",
}


# ---------------------------------------------------------------------------
# Google Benchmark JSON -> records

NAME_RE = re.compile(r"^(?P<family>BM_[A-Za-z]+)(?:<(?P<lock>[^>]*)>)?(?P<rest>(?:/[^/]+)*)$")


@dataclass
class Record:
    family: str
    lock: str
    params: tuple            # (("threads", 16), ("cs_ns", 50)), in name order
    values: dict             # metric -> list of values over repetitions
    source: str = ""         # file it came from
    machine: str = ""        # host label (merged reports)

    @property
    def scenario(self) -> str:
        return FAMILY_SCENARIO.get(self.family, "?")

    def param(self, key, default=None):
        return dict(self.params).get(key, default)

    def key(self):
        return (self.family, self.lock, self.params)

    def label(self) -> str:
        p = "/".join(f"{k}:{v}" for k, v in self.params)
        return f"{self.family}<{self.lock}>" + (f"/{p}" if p else "")


def parse_name(name: str):
    """'BM_Contended<FastMutex,futex>/threads:16/cs_ns:50/iterations:1/manual_time'
    -> ('BM_Contended', 'FastMutex,futex', (('threads', 16), ('cs_ns', 50)))."""
    m = NAME_RE.match(name)
    if not m:
        return None
    params = []
    for part in m.group("rest").split("/")[1:]:
        if ":" not in part:
            continue  # manual_time, real_time
        k, v = part.split(":", 1)
        if k in ("iterations", "repeats", "min_time"):
            continue  # Google Benchmark's run settings, not benchmark arguments
        try:
            params.append((k, int(v)))
        except ValueError:
            params.append((k, v))
    return m.group("family"), m.group("lock") or "", tuple(params)


def load_benchmark_json(path: Path) -> dict:
    """Reads one Google Benchmark JSON file, or raises LabError naming it."""
    if not path.exists():
        raise LabError(f"{path}: no such file")
    text = path.read_text(errors="replace")
    if not text.strip():
        raise LabError(f"{path}: the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LabError(f"{path}: not valid JSON (truncated or corrupt?): {e.msg} at line {e.lineno}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list) or "context" not in data:
        raise LabError(f"{path}: not a Google Benchmark results file (no 'context' and 'benchmarks')")
    return data


def records_from(data: dict, source: str = "", machine: str = "") -> list[Record]:
    """Groups the per-repetition entries of one results file into Records."""
    by_key: dict = {}
    for b in data["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        parsed = parse_name(b.get("run_name") or b.get("name", ""))
        if parsed is None:
            continue
        rec = by_key.get(parsed)
        if rec is None:
            rec = by_key[parsed] = Record(parsed[0], parsed[1], parsed[2], {}, source, machine)
        for k, v in b.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in (
                    "repetition_index", "threads", "repetitions", "family_index", "per_family_instance_index"):
                value = float(v)
                if k in ("real_time", "cpu_time"):
                    value = to_ns(value, b.get("time_unit", "ns"))
                rec.values.setdefault(k, []).append(value)
    return list(by_key.values())


def errors_from(data: dict) -> list[str]:
    return [f"{b.get('name')}: {b.get('error_message', 'error')}" for b in data["benchmarks"] if b.get("error_occurred")]


def to_ns(value: float, unit: str) -> float:
    return value * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}.get(unit, 1)


def stats(values: list[float]) -> tuple[float, float, float]:
    return median(values), min(values), max(values)


# ---------------------------------------------------------------------------
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
    from functools import lru_cache

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


# ---------------------------------------------------------------------------
# Machine description

def describe_machine() -> dict:
    info = {
        "host": socket.gethostname(),
        "kernel": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gov = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    info["governor"] = gov.read_text().strip() if gov.exists() else "unreadable"
    for tool, args in (("g++", ["--version"]), ("cmake", ["--version"]), ("gnuplot", ["--version"])):
        if shutil.which(tool):
            out = subprocess.run([tool, *args], capture_output=True, text=True).stdout.splitlines()
            info[tool] = out[0] if out else "?"
    try:
        info["commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        if dirty:
            info["commit"] += " (with uncommitted changes)"
    except OSError:
        info["commit"] = "unknown"
    for pkg in ("libbenchmark-dev", "libtbb-dev", "libgtest-dev"):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        if r.returncode == 0:
            info[pkg] = r.stdout.strip()
    return info


def machine_subtitle(machine: dict) -> str:
    cpu = re.sub(r"\s+", " ", re.sub(r"\((R|TM)\)|CPU|Processor", "", machine.get("cpu_model", "?"))).strip()
    return f"{machine.get('host', '?')}: {cpu}, {machine.get('cores', '?')} cores, commit {machine.get('commit', '?')}"


# ---------------------------------------------------------------------------
# Running the suite

def fmt_secs(s: float) -> str:
    s = max(0, int(s))
    return f"{s // 60:02d}:{s % 60:02d}"


class Progress:
    """Scenario i of n, elapsed and estimated time left, one line per step on
    the terminal and in the run's log."""

    def __init__(self, log_path: Path, total_estimate: float):
        self.log = log_path.open("a")
        self.start = time.monotonic()
        self.total_estimate = total_estimate

    def line(self, text: str):
        msg = f"[{fmt_secs(time.monotonic() - self.start)}] {text}"
        self.log.write(msg + "\n")
        self.log.flush()
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    def eta(self, done_estimate: float) -> str:
        elapsed = time.monotonic() - self.start
        if done_estimate <= 0:
            return "?"
        rate = elapsed / done_estimate
        return fmt_secs((self.total_estimate - done_estimate) * rate)


def list_benchmarks(binary: Path, filt: str) -> list[str]:
    r = subprocess.run([str(binary), "--benchmark_list_tests=true", f"--benchmark_filter={filt}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return []
    return [l for l in r.stdout.splitlines() if l.startswith("BM_")]


def run_suite(args) -> int:
    if shutil.which("gnuplot") is None:
        raise LabError("gnuplot is not installed: charts cannot be drawn (apt-get install gnuplot-nox, "
                       "or run 'scripts/lab run' as root, which installs it)")
    profile = PROFILES["quick" if args.quick else "default"]
    reps = args.repetitions or profile["repetitions"]
    if reps < 1:
        raise LabError("--repetitions must be at least 1")
    selected = select_scenarios(args.filter)
    bin_dir = Path(args.build_dir) / "bin"
    for s in selected:
        if not (bin_dir / s.binary).exists():
            raise LabError(f"{bin_dir / s.binary}: benchmark binary not found (build first: scripts/lab run)")

    machine = describe_machine()
    out = final_report_dir(args.out, machine)
    tmp = out.parent / (".in-progress-" + out.name)
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "raw").mkdir(parents=True)
    (tmp / "machine.txt").write_text("".join(f"{k}: {v}\n" for k, v in machine.items()))

    # Estimate the time of each step from the number of benchmarks it runs.
    plan = []
    for s in selected:
        names = list_benchmarks(bin_dir / s.binary, s.filter)
        per = (profile["duration_ms"] / 1000 + 0.03) if s.binary != "uncontended" else profile["min_time"] * 1.5
        plan.append((s, len(names), len(names) * per * reps))
    want_instructions = any(s.id in ("S1", "S11") for s in selected) and shutil.which("valgrind")
    total = sum(p[2] for p in plan) + (40 if want_instructions else 0)
    progress = Progress(tmp / "run.log", total)
    progress.line(f"kmlab lab run: {len(plan)} scenarios, profile {'quick' if args.quick else 'default'}, "
                  f"{reps} repetition(s), about {fmt_secs(total)} estimated; writing {out}")

    env = dict(os.environ, KMLAB_BENCH_DURATION_MS=str(profile["duration_ms"]))
    failures = []
    done = 0.0
    for i, (s, count, est) in enumerate(plan, 1):
        progress.line(f"scenario {i}/{len(plan)}: {s.id} {s.title} ({count} benchmarks), "
                      f"estimated time left {progress.eta(done)}")
        cmd = [str(bin_dir / s.binary), f"--benchmark_filter={s.filter}",
               f"--benchmark_repetitions={reps}", f"--benchmark_out={tmp / 'raw' / (s.id + '.json')}",
               "--benchmark_out_format=json", f"--benchmark_min_time={profile['min_time']}",
               "--benchmark_enable_random_interleaving=true" if reps > 1 else "--benchmark_enable_random_interleaving=false"]
        with (tmp / "raw" / f"{s.id}.stdout.txt").open("w") as so:
            r = subprocess.run(cmd, env=env, stdout=so, stderr=subprocess.STDOUT)
        done += est
        if r.returncode != 0:
            failures.append(f"{s.id} ({s.binary}) exited with status {r.returncode}; see raw/{s.id}.stdout.txt")
            progress.line(f"  FAILED: {failures[-1]}")
        else:
            (tmp / "raw" / f"{s.id}.stdout.txt").unlink()  # the JSON holds everything; keep logs of failures only
    if want_instructions:
        progress.line(f"instruction counts under callgrind, estimated time left {progress.eta(done)}")
        try:
            counts = count_instructions(bin_dir / "instructions")
            (tmp / "raw" / "instructions.json").write_text(json.dumps(counts, indent=1))
        except LabError as e:
            failures.append(str(e))
            progress.line(f"  FAILED: {e}")
    (tmp / "failures.txt").write_text("".join(f + "\n" for f in failures))

    try:
        summary = render_report([tmp], tmp, failures=failures)
    except LabError as e:
        failures.append(f"rendering the report: {e}")
        summary = ""
    # Never overwrite an earlier report: the finished folder gets a fresh name.
    tmp.rename(out)
    progress.log.close()
    if summary:
        print(summary)
    print(f"\nreport: {out / 'report.html'}\n        {out / 'report.md'}")
    if failures:
        print("\nsome steps failed (what ran is kept in the report):", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    return 0


def select_scenarios(filter_arg: str | None) -> list[Scenario]:
    if not filter_arg:
        return list(SCENARIOS)
    wanted = [x.strip().upper() for x in filter_arg.split(",") if x.strip()]
    unknown = [w for w in wanted if w not in SCENARIO_BY_ID]
    if unknown:
        raise LabError(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIO_BY_ID)}")
    return [SCENARIO_BY_ID[w] for w in wanted]


def final_report_dir(out_arg: str | None, machine: dict) -> Path:
    if out_arg:
        out = Path(out_arg)
        if out.exists():
            raise LabError(f"{out} already exists; choose another --out (an earlier report is never overwritten)")
        return out
    stamp = _dt.datetime.now().strftime("%Y-%m-%d")
    commit = machine.get("commit", "unknown").split()[0]
    base = ROOT / "reports" / f"{stamp}-{machine['host']}-{commit}"
    out, n = base, 2
    while out.exists():
        out = Path(f"{base}-{n}")
        n += 1
    return out


def count_instructions(binary: Path) -> dict:
    """Instructions per lock+unlock pair for every lock, from callgrind runs at
    two pair counts (the difference cancels the fixed cost)."""
    if not binary.exists():
        raise LabError(f"{binary}: not found")
    names = subprocess.run([str(binary), "--list"], capture_output=True, text=True).stdout.split("\n")
    result = {"unit": "instructions per lock+unlock pair (loop included)", "locks": {}}
    for name in [n for n in names if n]:
        totals = []
        for pairs in (2000, 4000):
            out = Path(f"/tmp/kmlab-callgrind-{os.getpid()}.out")
            r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                "--toggle-collect=*kmlab_measure_pairs*", str(binary), name, str(pairs)],
                               capture_output=True, text=True)
            if r.returncode != 0 or not out.exists():
                raise LabError(f"callgrind failed for {name}: {r.stderr.strip()[-200:]}")
            summary = [l for l in out.read_text().splitlines() if l.startswith(("summary:", "totals:"))]
            out.unlink()
            totals.append(int(summary[0].split()[1]))
        result["locks"][name] = (totals[1] - totals[0]) / 2000
    return result


# ---------------------------------------------------------------------------
# Rendering

@dataclass
class Dataset:
    records: list[Record] = field(default_factory=list)
    machines: dict = field(default_factory=dict)      # label -> machine dict
    contexts: dict = field(default_factory=dict)      # label -> benchmark context
    instructions: dict = field(default_factory=dict)  # label -> {lock: count}
    errors: list[str] = field(default_factory=list)


def parse_machine_txt(path: Path) -> dict:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if ": " in line:
                k, v = line.split(": ", 1)
                out[k] = v
    return out


def load_report_dirs(dirs: list[Path]) -> Dataset:
    ds = Dataset()
    for d in dirs:
        if d.is_file():
            files, label = [d], d.stem
            machine = {}
        else:
            if not d.exists():
                raise LabError(f"{d}: no such report folder or results file")
            files = sorted((d / "raw").glob("S*.json"))
            if not files:
                raise LabError(f"{d}: no raw/S*.json results in this folder")
            machine = parse_machine_txt(d / "machine.txt")
            label = machine.get("host", d.name)
        if label in ds.machines:
            label = f"{label} ({d.name})"
        for f in files:
            data = load_benchmark_json(f)
            ds.contexts.setdefault(label, data["context"])
            ds.records.extend(records_from(data, str(f), label))
            ds.errors.extend(errors_from(data))
        if not machine:
            ctx = ds.contexts.get(label, {})
            machine = {"host": ctx.get("hostname", label), "cpu_model": ctx.get("cpu_model", "?"),
                       "cores": ctx.get("online_cpus", ctx.get("num_cpus", "?")), "kernel": ctx.get("kernel", "?"),
                       "commit": ctx.get("kmlab_commit", "?")}
        ds.machines[label] = machine
        inst = d / "raw" / "instructions.json" if d.is_dir() else None
        if inst and inst.exists():
            try:
                ds.instructions[label] = json.loads(inst.read_text())["locks"]
            except (json.JSONDecodeError, KeyError):
                raise LabError(f"{inst}: not an instruction-count file") from None
    return ds


def metric_stats(rec: Record, metric: str):
    vals = rec.values.get(metric)
    return stats(vals) if vals else None


def reference_for(ds: Dataset, rec: Record) -> Record | None:
    for r in ds.records:
        if r.family == rec.family and r.lock == REFERENCE_LOCK and r.params == rec.params and r.machine == rec.machine:
            return r
    return None


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
            ours = [r for r in at if r.lock.split(",")[0] in ("KMutex", "FastMutex", "GuardedMutex")]
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
    """The short table printed at the end of a run: S1 and S3 headline figures."""
    lines = ["", f"{'lock':<34} {'uncontended ns':>15} {'S3 acq/s @2':>12} {'@max threads':>13} {'vs std::mutex':>14}"]
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


# ---------------------------------------------------------------------------
# compare

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


# ---------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="scripts/lab", description="kmlab benchmark lab")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the benchmark suite and write a report")
    r.add_argument("--quick", action="store_true", help="short profile for CI smoke runs")
    r.add_argument("--filter", help="comma-separated scenario ids, e.g. S1,S3")
    r.add_argument("--repetitions", type=int, help="repetitions per benchmark")
    r.add_argument("--out", help="report folder (default reports/<date>-<host>-<commit>)")
    r.add_argument("--build-dir", default=str(ROOT / "build" / "release"))
    rp = sub.add_parser("report", help="re-render a report from stored results (several folders merge)")
    rp.add_argument("dirs", nargs="+")
    rp.add_argument("--out", help="output folder (default: the single input folder)")
    c = sub.add_parser("compare", help="compare two result files or report folders")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--fail-above", type=float, metavar="PCT", help="exit 1 on a significant regression above PCT%%")
    c.add_argument("--alpha", type=float, default=0.05)
    args = p.parse_args(argv)
    try:
        if args.cmd == "run":
            return run_suite(args)
        if args.cmd == "report":
            dirs = [Path(d) for d in args.dirs]
            if args.out:
                out = Path(args.out)
            elif len(dirs) == 1 and dirs[0].is_dir():
                out = dirs[0]
            else:
                raise LabError("several inputs: say where the merged report goes with --out DIR")
            out.mkdir(parents=True, exist_ok=True)
            print(render_report(dirs, out))
            print(f"\nreport: {out / 'report.html'}")
            return 0
        return compare(args)
    except LabError as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
