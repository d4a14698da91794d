"""What the report tests share: Google Benchmark documents built in memory,
report folders written from them, and the command line run in-process."""

import contextlib
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))
from kmlab import cli, latency  # noqa: E402


def gb_json(entries, context=None):
    """A minimal Google Benchmark results document."""
    return {"context": context or {"hostname": "testhost", "online_cpus": "2", "kmlab_commit": "abc1234"},
            "benchmarks": entries}


def entry(name, rep, **values):
    e = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": 3, "repetition_index": rep,
         "threads": 1, "iterations": 1, "time_unit": values.pop("time_unit", "ns")}
    e.update(values)
    return e


def errored(name, message="only 1 of 2 worker threads started"):
    return {"name": name, "run_name": name, "run_type": "iteration", "error_occurred": True,
            "error_message": message}


def run_main(args):
    err = io.StringIO()
    out = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = cli.main(args)
    return rc, out.getvalue(), err.getvalue()


def write_report_dir(d: Path, files: dict, machine="host: testhost\ncores: 2\ncpu_model: Test CPU\ncommit: abc1234\n"):
    """A report folder: raw/<id>.json for each {id: [entries]}, and machine.txt."""
    (d / "raw").mkdir(parents=True, exist_ok=True)
    for sid, rows in files.items():
        (d / "raw" / f"{sid}.json").write_text(json.dumps(gb_json(rows)))
    (d / "machine.txt").write_text(machine)
    return d


def contention_rows(reps=3, threads=(1, 2, 4), locks=(("std::mutex", 1000.0), ("FastMutex,futex", 1500.0),
                                                       ("KMutex,futex", 900.0))):
    rows = []
    for lock, base in locks:
        for t in threads:
            for rep in range(reps):
                rows.append(entry(f"BM_Contended<{lock}>/threads:{t}/cs_ns:50", rep,
                                  ops_per_s=base / t + rep, jain=0.9 + rep / 100))
        rows.append(entry(f"BM_LockUnlock<{lock}>", 0, real_time=base / 100))
    return rows


def tree_bytes(d: Path) -> dict:
    """Every file under d with its bytes: a folder compared byte for byte."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def label_of(values) -> str:
    """What benchmarks/harness/histogram.hpp's encode() writes for these values."""
    counts = {}
    for v in values:
        i = latency.index(v)
        counts[i] = counts.get(i, 0) + 1
    return latency.PREFIX + f" min={min(values)} max={max(values)}" + "".join(
        f" {latency.lowest(i)}:{c}" for i, c in sorted(counts.items()))
