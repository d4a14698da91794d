#!/usr/bin/env python3
"""Runs one benchmark binary with a tiny time budget and checks that it exits
0 and writes valid Google Benchmark JSON with kmlab's run context, and that
the latency benchmarks keep their whole histogram."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from kmlab.results import LabError, errors_from, load_benchmark_json, records_from  # noqa: E402


def main(binary: str) -> int:
    name = Path(binary).name
    if name == "instructions":
        listed = subprocess.run([binary, "--list"], capture_output=True, text=True, timeout=60)
        locks = [l for l in listed.stdout.splitlines() if l]
        if listed.returncode != 0 or len(locks) < 10:
            print(f"{name} --list failed: {listed.stderr}")
            return 1
        for lock in locks:
            r = subprocess.run([binary, lock, "100"], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                print(f"{name} {lock} failed: {r.stderr}")
                return 1
        print(f"{name}: {len(locks)} locks ran")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        env = dict(os.environ, KMLAB_BENCH_DURATION_MS="3", KMLAB_BENCH_HISTOGRAMS="1")
        r = subprocess.run([binary, "--benchmark_min_time=0.001", f"--benchmark_out={out}",
                            "--benchmark_out_format=json"], env=env, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            print(f"{name} exited with {r.returncode}:\n{r.stderr[-2000:]}")
            return 1
        try:
            data = load_benchmark_json(out)
        except LabError as e:
            print(e)
            return 1
        errors = errors_from(data)
        records = records_from(data)
        if errors:
            print(f"{name}: benchmarks reported errors: {errors[:5]}")
            return 1
        if not records or "kmlab_commit" not in data["context"]:
            print(f"{name}: no results or no kmlab context")
            return 1
        # A 3 ms run on a loaded machine may sample no acquisition at all; the
        # harness keeps a histogram for every run that sampled one.
        latency = [r for r in records if r.family == "BM_Latency"
                   and any(v > 0 for v in r.values.get("latency_samples", []))]
        if latency and not all(r.histograms for r in latency):
            print(f"{name}: a latency benchmark kept no histogram in the JSON")
            return 1
        print(f"{name}: {len(records)} benchmarks, valid JSON")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
