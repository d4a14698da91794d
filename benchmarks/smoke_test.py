#!/usr/bin/env python3
"""Runs one benchmark binary with a tiny time budget and checks that it exits
0 and writes valid Google Benchmark JSON with kmlab's run context, that it
registers every family the scenario table (scripts/kmlab/scenarios.py) gives
it, with every family's reference lock, that the latency benchmarks keep their
whole histogram, and that the read-mostly scenario covers its reader shares
and thread counts, and that the one-core handoffs (S16) ran pinned beside
their raw-futex reference. `instructions` must list every lock, the
reader/writer locks once per mode."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from kmlab.results import LabError, errors_from, load_benchmark_json, records_from  # noqa: E402
from kmlab.scenarios import SCENARIOS, reference_for  # noqa: E402

# Locks every build has (absl::Mutex and kmlab's newer families may be left out).
ALWAYS_LISTED = ("std::mutex", "tbb::spin_mutex", "tbb::queuing_mutex", "pthread_spinlock_t",
                 "std::shared_mutex (shared)", "std::shared_mutex (exclusive)", "tbb::spin_rw_mutex (shared)",
                 "tbb::queuing_rw_mutex (exclusive)", "pthread_rwlock_t (shared)")


def check_families(name: str, records) -> str | None:
    """Every family the table runs from this binary is there, with its reference lock."""
    families = [f for s in SCENARIOS if s.binary == name for f in s.families]
    for family in families:
        locks = {r.lock for r in records if r.family == family}
        if not locks:
            return f"{name}: no results for {family}, which scripts/kmlab/scenarios.py expects from it"
        # The verifier's families (S14, S15) are compared with their own off rows, not std::mutex.
        if family not in ("BM_Floor", "BM_SafetyCost", "BM_ExplorerSpeed", "BM_VerifierLockUnlock",
                          "BM_VerifierContended") and not family.startswith((
                "BM_Event", "BM_Semaphore", "BM_Wait", "BM_Irp", "BM_Grt")):
            if reference_for(family) not in locks:
                return f"{name}: {family} lacks its reference lock {reference_for(family)}"
    return None


def check_read_mostly(records) -> str | None:
    """S12: every lock at reader shares 50, 90, 99 % and at 2 and 4 threads at least."""
    s12 = [r for r in records if r.family == "BM_ReadMostly"]
    for lock in {r.lock for r in s12}:
        mine = [r for r in s12 if r.lock == lock]
        shares = {r.param("read_pct") for r in mine}
        threads = {r.param("threads") for r in mine}
        if shares != {50, 90, 99} or not {2, 4} <= threads:
            return f"read_mostly: {lock} ran reader shares {sorted(shares)} at threads {sorted(threads)}"
        # A 3 ms run on a loaded machine may see one configuration's threads
        # all descheduled; a lock that never lets anyone through shows in all.
        if all(max(r.values.get("ops_per_s", [0])) <= 0 for r in mine):
            return f"read_mostly: {lock} made no progress in any configuration"
    return None


def check_one_core(records) -> str | None:
    """S16: the turn-passing KMUTEX and the raw-futex ping-pong it is judged against both ran, each with its two
    workers pinned (the benchmark records the CPU; a pin that failed is an error, caught above)."""
    s16 = [r for r in records if r.family == "BM_OneCore"]
    if not s16:
        return None
    locks = {r.lock for r in s16}
    for needed in ("KeWaitForSingleObject(KMUTEX)", "raw_futex"):
        if needed not in locks:
            return f"handoff: BM_OneCore lacks {needed}"
    unpinned = [r.lock for r in s16 if not r.values.get("cpu")]  # a list of the CPU per repetition
    if unpinned:
        return f"handoff: BM_OneCore rows without the CPU they were pinned to: {unpinned}"
    return None


def main(binary: str) -> int:
    name = Path(binary).name
    if name == "instructions":
        listed = subprocess.run([binary, "--list"], capture_output=True, text=True, timeout=60)
        locks = [l for l in listed.stdout.splitlines() if l]
        if listed.returncode != 0 or len(locks) < 10:
            print(f"{name} --list failed: {listed.stderr}")
            return 1
        missing = [l for l in ALWAYS_LISTED if l not in locks]
        if missing:
            print(f"{name} --list lacks {missing}")
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
        for problem in (check_families(name, records), check_read_mostly(records), check_one_core(records)):
            if problem:
                print(problem)
                return 1
        print(f"{name}: {len(records)} benchmarks, valid JSON")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
