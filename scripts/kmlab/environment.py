"""The environment box: what the machine and the run were, and the warnings
that qualify every figure (a VM, an unreadable or moving CPU clock, load
from other work, a debug-built benchmark library, too few repetitions for
an interval, more threads than cores)."""

from __future__ import annotations

from datetime import datetime

from .results import Dataset
from .stats import repetitions_needed


def _first_context(ds: Dataset, label: str) -> dict:
    """The context of the file that ran first (its load average is the one
    least raised by the suite itself)."""
    mine = [c for l, _, c in ds.file_contexts if l == label]
    if not mine:
        return ds.contexts.get(label, {})

    def when(c):
        try:
            return datetime.fromisoformat(str(c.get("date", "")))
        except ValueError:
            return datetime.max
    return min(mine, key=when)


def _int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def warnings(ds: Dataset) -> list[str]:
    label = next(iter(ds.machines))
    m = ds.machines[label]
    recs = [r for r in ds.records if r.machine == label]
    contexts = [c for l, _, c in ds.file_contexts if l == label] or [ds.contexts.get(label, {})]
    first = _first_context(ds, label)
    cores = _int(m.get("cores")) or _int(first.get("online_cpus")) or _int(first.get("num_cpus"))
    out = []
    virt = m.get("virtualized", "")
    if virt.startswith("yes"):
        out.append(f"A virtual machine ({virt[3:].strip(' ()') or 'hypervisor present'}): other guests share the "
                   f"host's CPUs, so times drift between runs more than on bare metal.")
    gov = m.get("governor") or first.get("cpu_governor") or ""
    if gov == "unreadable":
        out.append("The CPU frequency governor is unreadable here: frequency scaling cannot be ruled out.")
    elif gov and gov != "performance":
        out.append(f"The CPU frequency governor is '{gov}', not 'performance': the clock may change during the run.")
    if any(c.get("cpu_scaling_enabled") is True for c in contexts):
        out.append("Google Benchmark found CPU frequency scaling enabled.")
    load = None
    if m.get("load_before_run"):
        load = float(m["load_before_run"].split()[0])
        when = "when the run began"
    elif isinstance(first.get("load_avg"), list) and first["load_avg"]:
        load = float(first["load_avg"][0])
        when = "as the first benchmark started"
    if load is not None and cores and load > 0.25 * cores:
        out.append(f"Load average {load:.1f} on {cores} cores {when}: other work was competing for the CPUs; "
                   f"contended figures suffer most.")
    if any(c.get("library_build_type") == "debug" for c in contexts):
        out.append("The Google Benchmark library reports itself built as debug (library_build_type): its own "
                   "bookkeeping around each timed loop is slower than a release build's; kmlab's code is Release.")
    reps = min((r.repetitions for r in recs), default=0)
    need = repetitions_needed(0.05)
    if recs and reps < need:
        out.append(f"{reps} repetition(s) per benchmark: no 95% confidence interval can be given, and compare cannot "
                   f"call a difference significant at alpha 0.05 (it needs {need} per side; the default profile runs 5).")
    tmax = max((r.param("threads") or 0 for r in recs if isinstance(r.param("threads"), int)), default=0)
    if cores and tmax > cores:
        out.append(f"Benchmarks run up to {tmax} threads on {cores} cores ({tmax / cores:g}x): past the core count "
                   f"(the dotted line in the charts) they measure the scheduler as much as the lock.")
    if ds.errors:
        out.append(f"{len(ds.errors)} benchmark(s) reported errors (listed under Failures).")
    return out


def facts(ds: Dataset) -> list[str]:
    out = []
    for label, m in ds.machines.items():
        ctx = ds.contexts.get(label, {})
        bits = [f"{m.get('cpu_model', ctx.get('cpu_model', '?'))}, {m.get('cores', '?')} cores",
                f"kernel {m.get('kernel', '?')}"]
        if "g++" in m:
            bits.append(m["g++"])
        for k in ("libbenchmark-dev", "libtbb-dev"):
            if k in m:
                bits.append(f"{k} {m[k]}")
        bits.append(f"commit {m.get('commit', ctx.get('kmlab_commit', '?'))}")
        if m.get("profile"):
            bits.append(f"profile {m['profile']}, {m.get('repetitions', '?')} repetition(s)")
        out.append(f"**{label}**: " + "; ".join(bits))
    return out
