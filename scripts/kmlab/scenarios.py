"""The scenarios of BENCHMARKING.md: what the suite measures, with which
binary and filter, which figure leads, and the reference every lock is
compared against."""

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

REFERENCE_LOCK = "std::mutex"
FAMILY_SCENARIO = {
    "BM_LockUnlock": "S1", "BM_TryLockUnlock": "S1", "BM_Floor": "S2", "BM_Contended": "S3",
    "BM_Oversubscribed": "S4", "BM_Fairness": "S5", "BM_Latency": "S6", "BM_Handoff": "S7", "BM_ManyLocks": "S8",
    "BM_EventPingPong": "S9", "BM_SemaphorePingPong": "S9", "BM_WaitAny": "S9", "BM_WaitAll": "S9",
    "BM_IrpQueue": "S10", "BM_GrtLookupLock": "S10", "BM_SafetyCost": "S11",
}
