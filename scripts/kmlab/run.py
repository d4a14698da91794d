"""run: the suite, scenario by scenario, with progress and time left on the
terminal and in run.log, instruction counts under callgrind, then the report
in a fresh folder (an earlier report is never overwritten). Results gather
in a hidden folder beside it; the report is published from there in one
rename, and if rendering fails the results are still kept under the final
name with the failed step in failures.txt."""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import ROOT
from .publish import portable, publish
from .results import LabError
from .scenarios import SCENARIO_BY_ID, SCENARIOS, Scenario

# Profiles: the quick one is for CI smoke runs (BENCHMARKING.md sizes). It
# runs 4 repetitions, the fewest for which a 95% interval exists (and the U
# test can reach p < 0.05), each shorter: about 3 minutes on 2 cores. The
# default keeps under 10 minutes on 2 cores: with the spin locks (S1, S3-S7)
# and the read-mostly scenario (S12) it runs 100 ms per threaded benchmark
# (120 ms before them) and 0.05 s of calibrated loop per S1 pair (0.1 before),
# still millions of pairs, and well above the 25 ms a quick run takes. The
# one-core handoffs (S16, 5 rows) and S7's raw-futex floor add about 4 s to
# the default profile (2026-12-07, this 2-core VM under a load average of
# about 10: S7, S9 and S16 together took 21 s).
PROFILES = {
    "quick": {"duration_ms": 25, "repetitions": 4, "min_time": 0.01},
    "default": {"duration_ms": 100, "repetitions": 5, "min_time": 0.05},
}


def _virtualized() -> str:
    try:
        flags = next((l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags")), "")
    except OSError:
        return "unknown"
    return "yes (the CPU reports a hypervisor)" if " hypervisor" in flags else "no"


def describe_machine(profile: str = "", repetitions: int | None = None) -> dict:
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
    info["virtualized"] = _virtualized()
    try:
        info["load_before_run"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    if profile:
        info["profile"] = profile
        info["repetitions"] = repetitions
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


def check_run_flags(args):
    """Everything about the flags that can be known before a build."""
    if args.repetitions is not None and args.repetitions < 1:
        raise LabError("--repetitions must be at least 1")
    select_scenarios(args.filter)
    if args.out:
        final_report_dir(args.out, {})


def _inside_root(p: Path) -> bool:
    try:
        p.absolute().relative_to(ROOT.absolute())
        return True
    except ValueError:
        return False


def sanitize_results(path: Path):
    """The JSON keeps the binary's path in its context: make it the
    repository-relative one, so no report carries a machine's absolute path."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return  # a broken file is reported when it is read
    ctx = data.get("context", {})
    if isinstance(ctx.get("executable"), str):
        ctx["executable"] = portable(ctx["executable"])
        path.write_text(json.dumps(data, indent=2) + "\n")


def run_suite(args) -> int:
    check_run_flags(args)
    if shutil.which("gnuplot") is None:
        raise LabError("gnuplot is not installed: charts cannot be drawn (apt-get install gnuplot-nox, "
                       "or run 'scripts/lab run' as root, which installs it)")
    profile_name = "quick" if args.quick else "default"
    profile = PROFILES[profile_name]
    reps = args.repetitions if args.repetitions is not None else profile["repetitions"]
    selected = select_scenarios(args.filter)
    bin_dir = Path(args.build_dir) / "bin"
    for s in selected:
        if not (bin_dir / s.binary).exists():
            raise LabError(f"{portable(bin_dir / s.binary)}: benchmark binary not found (build first: scripts/lab run)")

    machine = describe_machine(profile_name, reps)
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
        # Measured on 2 cores: a threaded run takes its duration and about 5 ms
        # more; a Google Benchmark loop about 1.5x its min_time.
        per = (profile["duration_ms"] / 1000 + 0.005) if s.binary != "uncontended" else profile["min_time"] * 1.5
        plan.append((s, len(names), len(names) * per * reps))
    want_instructions = any(s.counts_instructions for s in selected) and shutil.which("valgrind")
    total = sum(p[2] for p in plan) + (40 if want_instructions else 0)
    progress = Progress(tmp / "run.log", total)
    progress.line(f"kmlab lab run: {len(plan)} scenarios, profile {'quick' if args.quick else 'default'}, "
                  f"{reps} repetition(s), about {fmt_secs(total)} estimated; writing {portable(out)}")

    env = dict(os.environ, KMLAB_BENCH_DURATION_MS=str(profile["duration_ms"]), KMLAB_BENCH_HISTOGRAMS="1")
    failures = []
    done = 0.0
    for i, (s, count, est) in enumerate(plan, 1):
        progress.line(f"scenario {i}/{len(plan)}: {s.id} {s.title} ({count} benchmarks), "
                      f"estimated time left {progress.eta(done)}")
        # Run from the repository by a relative path where the build is
        # inside it: the binary records its argv[0] in the JSON and the log.
        cmd = [portable(bin_dir / s.binary) if _inside_root(bin_dir) else str(bin_dir / s.binary),
               f"--benchmark_filter={s.filter}",
               f"--benchmark_repetitions={reps}",
               f"--benchmark_out={(tmp / 'raw' / (s.id + '.json')).absolute()}",
               "--benchmark_out_format=json", f"--benchmark_min_time={profile['min_time']}",
               "--benchmark_enable_random_interleaving=true" if reps > 1 else "--benchmark_enable_random_interleaving=false"]
        with (tmp / "raw" / f"{s.id}.stdout.txt").open("w") as so:
            r = subprocess.run(cmd, env=env, stdout=so, stderr=subprocess.STDOUT, cwd=ROOT)
        done += est
        sanitize_results(tmp / "raw" / f"{s.id}.json")
        log = tmp / "raw" / f"{s.id}.stdout.txt"
        log.write_text(log.read_text(errors="replace").replace(str(bin_dir.absolute()), portable(bin_dir)))
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
    progress.line("rendering the report")
    progress.log.close()

    try:
        summary = publish([tmp], out, failures=failures, sources=[f"`{portable(out)}`"])
        shutil.rmtree(tmp)
    except LabError as e:
        failures.append(f"rendering the report: {e}")
        (tmp / "failures.txt").write_text("".join(f + "\n" for f in failures))
        tmp.rename(out)  # the results are kept: scripts/lab report renders them again
        summary = ""
    if summary:
        print(summary)
        print(f"\nreport: {out / 'report.html'}\n        {out / 'report.md'}")
    else:
        print(f"\nresults: {out} (no report: fix the failure below, then scripts/lab report {portable(out)})")
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


def _callgrind_total(binary: Path, name: str, pairs: int, job: int) -> int:
    """Instructions callgrind counted inside kmlab_measure_pairs* for one run."""
    out = Path(tempfile.gettempdir()) / f"kmlab-callgrind-{os.getpid()}-{job}.out"
    try:
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                            "--toggle-collect=*kmlab_measure_pairs*", str(binary), name, str(pairs)],
                           capture_output=True, text=True)
        if r.returncode != 0 or not out.exists():
            raise LabError(f"callgrind failed for {name}: {r.stderr.strip()[-200:]}")
        summary = [l for l in out.read_text().splitlines() if l.startswith(("summary:", "totals:"))]
        return int(summary[0].split()[1])
    finally:
        out.unlink(missing_ok=True)


def count_instructions(binary: Path) -> dict:
    """Instructions per lock+unlock pair for every lock, from callgrind runs at
    two pair counts (the difference cancels the fixed cost). Counts are exact
    whatever else runs, so the runs go one per core at a time."""
    if not binary.exists():
        raise LabError(f"{portable(binary)}: not found")
    names = [n for n in subprocess.run([str(binary), "--list"], capture_output=True, text=True).stdout.split("\n")
             if n]
    jobs = [(name, pairs) for name in names for pairs in (2000, 4000)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        totals = list(pool.map(lambda j: _callgrind_total(binary, j[1][0], j[1][1], j[0]), enumerate(jobs)))
    result = {"unit": "instructions per lock+unlock pair (loop included)", "locks": {}}
    for i, name in enumerate(names):
        result["locks"][name] = (totals[2 * i + 1] - totals[2 * i]) / 2000
    return result
