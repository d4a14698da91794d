"""The scenarios of BENCHMARKING.md, in one table: each one's id and title,
the binary and --benchmark_filter that run it, the figure its table leads
with, and the benchmark families (the BM_ name before '<') whose results
belong to it. Filters, the family of a result and the report's sections all
come from this table; also here, the lock every other is compared against."""

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


SCENARIOS = [
    Scenario("S1", "uncontended lock+unlock and try_lock", "uncontended", "BM_(LockUnlock|TryLockUnlock)<",
             "real_time", False, families=("BM_LockUnlock", "BM_TryLockUnlock")),
    Scenario("S2", "physical floors", "uncontended", "BM_Floor<", "real_time", False, families=("BM_Floor",)),
    Scenario("S3", "contention sweep", "contention", "BM_Contended<", "ops_per_s", True,
             families=("BM_Contended",)),
    Scenario("S4", "oversubscription", "contention", "BM_Oversubscribed<", "ops_per_s", True,
             families=("BM_Oversubscribed",)),
    Scenario("S5", "fairness", "contention", "BM_Fairness<", "jain", True, families=("BM_Fairness",)),
    Scenario("S6", "acquisition latency", "contention", "BM_Latency<", "p99_ns", False, families=("BM_Latency",)),
    Scenario("S7", "handoff", "handoff", "BM_Handoff<", "ops_per_s", True, families=("BM_Handoff",)),
    Scenario("S8", "many locks (global vs per-object dispatcher lock)", "many_locks", "BM_ManyLocks<", "ops_per_s",
             True, families=("BM_ManyLocks",)),
    # The binary holds nothing else, so the filter takes all of it.
    Scenario("S9", "dispatcher objects", "dispatcher_objects", "BM_", "ops_per_s", True,
             families=("BM_EventPingPong", "BM_SemaphorePingPong", "BM_WaitAny", "BM_WaitAll")),
    Scenario("S10", "driver-shaped work", "driver", "BM_", "ops_per_s", True,
             families=("BM_IrpQueue", "BM_GrtLookupLock")),
    Scenario("S11", "safety cost", "uncontended", "BM_SafetyCost<", "real_time", False,
             families=("BM_SafetyCost",)),
]
SCENARIO_BY_ID = {s.id: s for s in SCENARIOS}
FAMILY_SCENARIO = {f: s.id for s in SCENARIOS for f in s.families}

REFERENCE_LOCK = "std::mutex"
