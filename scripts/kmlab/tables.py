"""The report's tables: per scenario, one group per benchmark family and
parameter set, locks sorted best first, units in the headers, every ratio a
cost against std::mutex in the same group (below 1x better), and the CPU
time and sleeps per operation where they were measured; and the summary
table a run ends with."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from .results import Dataset, Record
from .scenarios import (FAMILY_SCENARIO, NT_ROUTINES, NT_RW_OBJECTS, REFERENCE_LOCK, RW_TYPES, SPIN_TYPES,
                        VERIFIER_OFF_FAMILY, Scenario,
                        is_kmlab_type, reference_for)
from .stats import fmt, fmt_interval, ratio_interval

RATIO_NOTE = ("Every ratio is a cost relative to the reference lock in the same group (std::mutex; std::shared_mutex "
              "for the reader/writer groups; the raw-futex ping-pong for the handoff floor and the one-core "
              "handoffs): time per operation, or the inverse of a throughput or of Jain's "
              "index, so below 1x is better and above 1x worse; brackets give the 95% confidence interval over "
              "repetitions.")

# Figures shown beside the leading metric when a group has them.
EXTRAS = (("cpu_ns_per_op", "CPU ns/op"), ("vcsw_per_op", "sleeps/op"), ("p50_ns", "p50 ns"),
          ("p999_ns", "p99.9 ns"), ("max_ns", "max ns"), ("min_share", "min share"),
          ("schedules", "schedules per search"))


@dataclass
class Group:
    title: str
    header: list[str]
    rows: list[list[str]]


def cost_values(rec: Record, metric: str, higher_is_better: bool) -> list[float]:
    vals = rec.values.get(metric, [])
    return [1 / v for v in vals if v > 0] if higher_is_better else list(vals)


def verifier_groups(ds: Dataset, s: Scenario) -> list[Group]:
    """S14 / S15: each verifier-on row beside its off row of the same run (same machine, lock and parameters),
    with the cost on over off."""
    recs = [r for r in ds.records if r.scenario == s.id and r.values.get(s.metric)]
    keys = sorted({(r.machine, r.family, r.params) for r in recs}, key=str)
    groups = []
    for machine, family, params in keys:
        off_family = VERIFIER_OFF_FAMILY[family]
        header = ["lock", f"verifier off ({s.unit})", f"verifier on ({s.unit})", "cost on/off [95% CI]"]
        rows = []
        for on in sorted((r for r in recs if (r.machine, r.family, r.params) == (machine, family, params)),
                         key=lambda r: _order(r.lock)):
            off = next((r for r in ds.records if r.machine == machine and r.family == off_family
                        and r.lock == on.lock and r.params == params and r.values.get(s.metric)), None)
            rel = "-" if off is None else fmt_interval(ratio_interval(
                cost_values(on, s.metric, s.higher_is_better), cost_values(off, s.metric, s.higher_is_better)))
            rows.append([on.lock, fmt(median(off.values[s.metric])) if off else "- (not run)",
                         fmt(median(on.values[s.metric])), rel])
        p = ", ".join(f"{k} {v}" for k, v in params)
        title = (f"{family} vs {off_family}" + (f" ({p})" if p else "")
                 + (f" on {machine}" if len(ds.machines) > 1 else ""))
        groups.append(Group(title, header, rows))
    return groups


def scenario_groups(ds: Dataset, s: Scenario) -> list[Group]:
    if set(s.families) <= set(VERIFIER_OFF_FAMILY):
        return verifier_groups(ds, s)
    recs = [r for r in ds.records if r.scenario == s.id and r.values.get(s.metric)]
    keys = sorted({(r.machine, r.family, r.params) for r in recs}, key=str)
    groups = []
    for machine, family, params in keys:
        mine = [r for r in recs if (r.machine, r.family, r.params) == (machine, family, params)]
        mine.sort(key=lambda r: median(r.values[s.metric]), reverse=s.higher_is_better)
        reference = reference_for(family)
        ref = next((r for r in mine if r.lock == reference), None)
        extras = [(k, h) for k, h in EXTRAS if k != s.metric and any(r.values.get(k) for r in mine)]
        header = ["lock", f"median ({s.unit})", "min", "max", f"cost vs {reference} [95% CI]"] + [h for _, h in extras]
        rows = []
        for r in mine:
            vals = r.values[s.metric]
            if ref is r:
                rel = "1 (reference)"
            elif ref:
                rel = fmt_interval(ratio_interval(cost_values(r, s.metric, s.higher_is_better),
                                                  cost_values(ref, s.metric, s.higher_is_better)))
            else:
                rel = "-"
            rows.append([r.lock, fmt(median(vals)), fmt(min(vals)), fmt(max(vals)), rel]
                        + [fmt(median(r.values[k])) if r.values.get(k) else "-" for k, _ in extras])
        p = ", ".join(f"{k} {v}" for k, v in params)
        title = f"{family}" + (f" ({p})" if p else "") + (f" on {machine}" if len(ds.machines) > 1 else "")
        groups.append(Group(title, header, rows))
    return groups


def markdown(group: Group) -> list[str]:
    esc = (lambda c: c.replace("|", "\\|"))
    return ([f"**{group.title}**", "", "| " + " | ".join(group.header) + " |",
             "|" + "---|" + "---:|" * (len(group.header) - 1)]
            + ["| " + " | ".join(esc(c) for c in row) + " |" for row in group.rows] + [""])


def _order(lock: str) -> tuple:
    """kmlab's mutexes, its spin and reader/writer types, the NT routines, std::mutex, then the peers."""
    if is_kmlab_type(lock):
        rank = 0
    elif lock in SPIN_TYPES or lock in RW_TYPES:
        rank = 1
    elif lock in NT_ROUTINES or lock in NT_RW_OBJECTS:
        rank = 2
    else:
        rank = 3 if lock == REFERENCE_LOCK else 4
    return (rank, lock)


def summary_table(ds: Dataset) -> str:
    """The short table a run ends with (and report.md repeats): the
    uncontended pair and the contention sweep's headline figures."""
    recs = [r for r in ds.records if r.machine == next(iter(ds.machines), "")]
    s3 = [r for r in recs if r.family == "BM_Contended" and r.param("cs_ns") == 50 and r.values.get("ops_per_s")]
    threads = sorted({r.param("threads") for r in s3})
    t2 = 2 if 2 in threads else (threads[0] if threads else None)
    tmax = threads[-1] if threads else None
    sweep = FAMILY_SCENARIO["BM_Contended"]
    at = (lambda t: f"@{t} threads" if t else "(not run)")  # noqa: E731
    head = (f"{'lock':<30} {'uncontended':>12} {sweep + ' acq/s':>12} {sweep + ' acq/s':>12} {'cost vs':>20}\n"
            f"{'':<30} {'ns per pair':>12} {at(t2):>12} {at(tmax):>12} "
            f"{'std::mutex ' + (f'@{tmax}' if tmax else ''):>20}")
    lines = ["", head]
    ref_max = next((r for r in s3 if r.lock == REFERENCE_LOCK and r.param("threads") == tmax), None)
    locks = sorted({r.lock for r in recs if r.family in ("BM_LockUnlock", "BM_Contended")}, key=_order)
    for lock in locks:
        un = next((median(r.values["real_time"]) for r in recs
                   if r.family == "BM_LockUnlock" and r.lock == lock and r.values.get("real_time")), None)
        a2 = next((median(r.values["ops_per_s"]) for r in s3 if r.lock == lock and r.param("threads") == t2), None)
        am = next((r for r in s3 if r.lock == lock and r.param("threads") == tmax), None)
        rel = "-"
        if am and ref_max:
            rel = "1 (reference)" if am is ref_max else fmt_interval(ratio_interval(
                cost_values(am, "ops_per_s", True), cost_values(ref_max, "ops_per_s", True))).replace(" [no 95% CI]", "")
        lines.append(f"{lock:<30} {fmt(un) if un else '-':>12} {fmt(a2) if a2 else '-':>12} "
                     f"{fmt(median(am.values['ops_per_s'])) if am else '-':>12} {rel:>20}")
    lines.append("\ncost vs std::mutex: its throughput over this lock's (below 1 better)")
    return "\n".join(lines)
