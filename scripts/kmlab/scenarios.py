"""The scenarios of BENCHMARKING.md, in one table: each one's id and title,
the binary and --benchmark_filter that run it, the figure its table leads
with, the benchmark families (the BM_ name before '<') whose results belong
to it, the charts those results feed, and whether callgrind's instruction
counts belong to it. Run filters, the scenario of a result, the report's
sections and the charts' inputs all come from this table; also here, the
lock every other is compared against and kmlab's own lock types."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    binary: str
    filter: str
    metric: str          # the figure the tables lead with
    higher_is_better: bool
    families: tuple[str, ...]
    charts: tuple[str, ...] = ()     # names in charts.DRAWERS; a chart may draw on several scenarios
    # Callgrind's instructions per pair belong to it too; a run selecting any
    # such scenario counts them once.
    counts_instructions: bool = False


SCENARIOS = [
    Scenario("S1", "uncontended lock+unlock and try_lock", "uncontended", "BM_(LockUnlock|TryLockUnlock)<",
             "real_time", False, families=("BM_LockUnlock", "BM_TryLockUnlock"),
             charts=("uncontended-ns", "uncontended-instructions"), counts_instructions=True),
    Scenario("S2", "physical floors", "uncontended", "BM_Floor<", "real_time", False, families=("BM_Floor",),
             charts=("uncontended-ns",)),
    Scenario("S3", "contention sweep", "contention", "BM_Contended<", "ops_per_s", True,
             families=("BM_Contended",),
             charts=("throughput-kmutex", "throughput-fastmutex", "throughput-guardedmutex", "fairness", "cs-sweep")),
    Scenario("S4", "oversubscription", "contention", "BM_Oversubscribed<", "ops_per_s", True,
             families=("BM_Oversubscribed",), charts=("oversubscription",)),
    Scenario("S5", "fairness", "contention", "BM_Fairness<", "jain", True, families=("BM_Fairness",)),
    Scenario("S6", "acquisition latency", "contention", "BM_Latency<", "p99_ns", False, families=("BM_Latency",),
             charts=("latency",)),
    Scenario("S7", "handoff", "handoff", "BM_Handoff<", "ops_per_s", True, families=("BM_Handoff",)),
    Scenario("S8", "many locks (global vs per-object dispatcher lock)", "many_locks", "BM_ManyLocks<", "ops_per_s",
             True, families=("BM_ManyLocks",), charts=("dispatcher-lock",)),
    # The binary holds nothing else, so the filter takes all of it.
    Scenario("S9", "dispatcher objects", "dispatcher_objects", "BM_", "ops_per_s", True,
             families=("BM_EventPingPong", "BM_SemaphorePingPong", "BM_WaitAny", "BM_WaitAll")),
    Scenario("S10", "driver-shaped work", "driver", "BM_", "ops_per_s", True,
             families=("BM_IrpQueue", "BM_GrtLookupLock")),
    Scenario("S11", "safety cost", "uncontended", "BM_SafetyCost<", "real_time", False,
             families=("BM_SafetyCost",), counts_instructions=True),
]
SCENARIO_BY_ID = {s.id: s for s in SCENARIOS}
FAMILY_SCENARIO = {f: s.id for s in SCENARIOS for f in s.families}
# Chart -> ids of the scenarios whose records it draws on.
CHART_SCENARIOS = {c: tuple(s.id for s in SCENARIOS if c in s.charts)
                   for c in dict.fromkeys(c for s in SCENARIOS for c in s.charts)}

REFERENCE_LOCK = "std::mutex"
KMLAB_TYPES = ("KMutex", "FastMutex", "GuardedMutex")  # a lock "FastMutex,futex" is one of ours
