"""The scenarios of BENCHMARKING.md, in one table: each one's id and title,
the binary and --benchmark_filter that run it, the figure its table leads
with and its unit, the benchmark families (the BM_ name before '<') whose
results belong to it, the charts and the verdicts those results feed, and
whether callgrind's instruction counts belong to it. Run filters, the
scenario of a result, the report's sections, the charts' and the verdicts'
inputs all come from this table; also here, the lock every other is compared
against and how kmlab's own locks are named."""

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
    unit: str            # what the metric counts, for headers
    families: tuple[str, ...]
    charts: tuple[str, ...] = ()     # names in charts.DRAWERS; a chart may draw on several scenarios
    questions: tuple[str, ...] = ()  # names in verdicts.QUESTIONS that these results answer
    # Callgrind's instructions per pair belong to it too; a run selecting any
    # such scenario counts them once.
    counts_instructions: bool = False
    # A sentence the report prints above the scenario's tables.
    note: str = ""


SCENARIOS = [
    # The reader/writer locks' shared and exclusive pairs are families of their own; so is the
    # shared pair of those that need a critical region, by a thread already in one.
    Scenario("S1", "uncontended lock+unlock and try_lock", "uncontended",
             "BM_(LockUnlock|TryLockUnlock|RwShared|RwExclusive|RwSharedInRegion)<", "real_time", False,
             "ns per lock+unlock",
             families=("BM_LockUnlock", "BM_TryLockUnlock", "BM_RwShared", "BM_RwExclusive", "BM_RwSharedInRegion"),
             charts=("uncontended-ns", "uncontended-rw", "uncontended-instructions"),
             questions=("uncontended", "dispatcher", "spin", "rw", "targets"), counts_instructions=True),
    Scenario("S2", "physical floors", "uncontended", "BM_Floor<", "real_time", False, "ns per operation",
             families=("BM_Floor",), charts=("uncontended-ns", "uncontended-rw"),
             questions=("uncontended", "rw")),
    Scenario("S3", "contention sweep", "contention", "BM_Contended<", "ops_per_s", True, "acquisitions/s",
             families=("BM_Contended",),
             charts=("throughput-kmutex", "throughput-fastmutex", "throughput-guardedmutex", "throughput-spinlocks",
                     "fairness", "cs-sweep", "cpu-per-op", "switches-per-op"), questions=("scaling", "fairness", "spin")),
    Scenario("S4", "oversubscription", "contention", "BM_Oversubscribed<", "ops_per_s", True, "acquisitions/s",
             families=("BM_Oversubscribed",), charts=("oversubscription",), questions=("scaling",)),
    Scenario("S5", "fairness", "contention", "BM_Fairness<", "jain", True, "Jain's index (1 = equal shares)",
             families=("BM_Fairness",), questions=("fairness", "spin")),
    Scenario("S6", "acquisition latency", "contention", "BM_Latency<", "p99_ns", False, "ns, p99 time to acquire",
             families=("BM_Latency",), charts=("latency", "latency-cdf"), questions=("latency",)),
    # BM_HandoffFloor<raw_futex> is S9's raw-futex ping-pong again, in this binary so that the handoffs' ratio to it
    # comes from interleaved rounds; its operation is one round trip (a wake each way).
    Scenario("S7", "handoff", "handoff", "BM_(Handoff|HandoffFloor)<", "ops_per_s", True, "handoffs/s",
             families=("BM_Handoff", "BM_HandoffFloor"), charts=("handoff",), questions=("handoff", "spin", "targets"),
             note=("Two threads pass a turn through the lock: each takes it and, if the turn is its own, gives it to "
                   "the other; one operation is one handoff. BM_HandoffFloor<raw_futex> is S9's raw-futex "
                   "ping-pong run in the same rounds, and its operation is one round trip (a wake each way).")),
    Scenario("S8", "many locks (global vs per-object dispatcher lock)", "many_locks", "BM_ManyLocks<", "ops_per_s",
             True, "acquisitions/s", families=("BM_ManyLocks",), charts=("dispatcher-lock",),
             questions=("dispatcher",)),
    # The binary holds nothing else, so the filter takes all of it.
    Scenario("S9", "dispatcher objects", "dispatcher_objects", "BM_", "ops_per_s", True, "waits satisfied/s",
             families=("BM_EventPingPong", "BM_SemaphorePingPong", "BM_WaitAny", "BM_WaitAll"),
             questions=("dispatcher", "targets")),
    Scenario("S10", "driver-shaped work", "driver", "BM_", "ops_per_s", True, "items/s",
             families=("BM_IrpQueue", "BM_GrtLookupLock")),
    Scenario("S11", "safety cost", "uncontended", "BM_SafetyCost<", "real_time", False, "ns per lock+unlock",
             families=("BM_SafetyCost",), questions=("safety",), counts_instructions=True),
    Scenario("S12", "read-mostly reader/writer locks", "read_mostly", "BM_ReadMostly<", "ops_per_s", True,
             "acquisitions/s", families=("BM_ReadMostly",), charts=("read-mostly",), questions=("rw",)),
    # The schedule explorer's own speed; the binary holds nothing else. No lock is compared here.
    Scenario("S13", "schedule explorer speed", "explorer_speed", "BM_", "schedules_per_s", True,
             "schedules/s of CPU", families=("BM_ExplorerSpeed",),
             note=("How fast the schedule explorer (kmlab::explore) runs its reference search, the dispatcher KMUTEX "
                   "3x2 of the model suite explored exhaustively at preemption bound 2, in schedules per second of "
                   "the CPU time of its one thread: a drop here is the explorer getting slower, and a change in "
                   "the schedules per search a change in what it explores.")),
    # Driver Verifier's cost: S1's pair and two points of S3's sweep again with the verifier flavour on, for the
    # NT FAST_MUTEX, KMUTEX and KSPIN_LOCK routines and the idiomatic FastMutex; each row is paired with its
    # off row of the same run (VERIFIER_OFF_FAMILY) into an on/off ratio.
    Scenario("S14", "Driver Verifier's cost, uncontended", "uncontended", "BM_VerifierLockUnlock<", "real_time",
             False, "ns per lock+unlock", families=("BM_VerifierLockUnlock",),
             note=("S1's lock+unlock pair with the verifier flavour on (Deadlock Detection's graph and the lock "
                   "checks on every acquire and release), beside the same pair off in S1 of this run: the last "
                   "column is on over off (run S1 too).")),
    Scenario("S15", "Driver Verifier's cost, contended", "contention", "BM_VerifierContended<", "ops_per_s", True,
             "acquisitions/s", families=("BM_VerifierContended",),
             note=("S3's sweep at two thread counts (C = 50 ns) with the verifier flavour on, beside the same "
                   "points off in S3 of this run: the last column is the cost on over off, the inverse of the "
                   "throughputs' ratio (run S3 too). The verifier's state is one lock for the process, so "
                   "contended acquisitions serialize on it as well.")),
    # S7's turn-passing with both threads pinned to one CPU, beside S9's ping-pongs pinned the same way; the
    # raw-futex ping-pong is the reference (ONE_CORE_REFERENCE).
    Scenario("S16", "handoff on one core", "handoff", "BM_OneCore<", "ops_per_s", True,
             "per s: handoffs, or round trips for the ping-pongs", families=("BM_OneCore",), charts=("one-core",),
             questions=("targets",),
             note=("Two threads pinned to one CPU (the first the process may use, as `taskset -c 0`), as on a loaded "
                   "machine where they share a core. The locks pass a turn (S7's handoff: each thread takes the "
                   "lock and, if the turn is its own, gives it to the other; one operation is one handoff); KEVENT "
                   "and raw_futex are S9's ping-pong (one operation is one round trip, a wake each way). A lock "
                   "whose release lets the running thread take it straight back passes the turn only when the "
                   "scheduler preempts that thread; a KMUTEX hands ownership to its first waiter.")),
]
# S16's reference: the raw-futex ping-pong pinned the same way.
ONE_CORE_REFERENCE = "raw_futex"
# The verifier-on families (S14, S15) and the family of their off rows.
VERIFIER_OFF_FAMILY = {"BM_VerifierLockUnlock": "BM_LockUnlock", "BM_VerifierContended": "BM_Contended"}
SCENARIO_BY_ID = {s.id: s for s in SCENARIOS}
FAMILY_SCENARIO = {f: s.id for s in SCENARIOS for f in s.families}
# Chart -> ids of the scenarios whose records it draws on.
CHART_SCENARIOS = {c: tuple(s.id for s in SCENARIOS if c in s.charts)
                   for c in dict.fromkeys(c for s in SCENARIOS for c in s.charts)}
# Verdict -> ids of the scenarios whose records answer it.
QUESTION_SCENARIOS = {q: tuple(s.id for s in SCENARIOS if q in s.questions)
                      for q in dict.fromkeys(q for s in SCENARIOS for q in s.questions)}

REFERENCE_LOCK = "std::mutex"
# The reader/writer families are compared with std::shared_mutex instead.
RW_REFERENCE_LOCK = "std::shared_mutex"
FAMILY_REFERENCE = {"BM_RwShared": RW_REFERENCE_LOCK, "BM_RwExclusive": RW_REFERENCE_LOCK,
                    "BM_RwSharedInRegion": RW_REFERENCE_LOCK, "BM_ReadMostly": RW_REFERENCE_LOCK,
                    "BM_OneCore": ONE_CORE_REFERENCE, "BM_HandoffFloor": ONE_CORE_REFERENCE}


def reference_for(family: str) -> str:
    """The lock a family's ratios are taken against."""
    return FAMILY_REFERENCE.get(family, REFERENCE_LOCK)


KMLAB_TYPES = ("KMutex", "FastMutex", "GuardedMutex")  # a lock "FastMutex,futex" is one of ours
# kmlab's spin locks and reader/writer locks have no backend: the lock is the type's name.
SPIN_TYPES = ("SpinLock", "QueuedSpinLock")
RW_TYPES = ("Resource", "PushLock", "RwSpinLock")
# The NT routines measured beside the idiomatic types, and the type each is.
NT_ROUTINES = {"KeWaitForSingleObject(KMUTEX)": "KMutex", "ExAcquireFastMutex": "FastMutex",
               "KeAcquireGuardedMutex": "GuardedMutex", "KeAcquireSpinLock": "SpinLock",
               "KeAcquireInStackQueuedSpinLock": "QueuedSpinLock"}
# The NT reader/writer locks, named by their object (each has shared and exclusive routines).
NT_RW_OBJECTS = {"ERESOURCE": "Resource", "EX_PUSH_LOCK": "PushLock", "EX_SPIN_LOCK": "RwSpinLock"}
# What a driver author calls each type.
NT_NAMES = {"KMutex": "KMUTEX", "FastMutex": "FAST_MUTEX", "GuardedMutex": "KGUARDED_MUTEX",
            "SpinLock": "KSPIN_LOCK", "QueuedSpinLock": "in-stack queued KSPIN_LOCK", "Resource": "ERESOURCE",
            "PushLock": "EX_PUSH_LOCK", "RwSpinLock": "EX_SPIN_LOCK"}


def is_kmlab_type(lock: str) -> bool:
    """One of the nine idiomatic type x backend locks ("FastMutex,futex")."""
    return lock.split(",")[0] in KMLAB_TYPES and "," in lock


def is_spin_lock(lock: str) -> bool:
    """kmlab's spin locks, idiomatic or NT ("SpinLock", "KeAcquireSpinLock")."""
    return lock in SPIN_TYPES or NT_ROUTINES.get(lock) in SPIN_TYPES


def is_rw_lock(lock: str) -> bool:
    """kmlab's reader/writer locks, idiomatic or NT ("Resource", "ERESOURCE")."""
    return lock in RW_TYPES or lock in NT_RW_OBJECTS


def is_kmlab(lock: str) -> bool:
    """Any lock kmlab provides: the idiomatic types, the NT routines, the raw locks under them."""
    return (is_kmlab_type(lock) or lock in NT_ROUTINES or lock.startswith("raw-") or lock in SPIN_TYPES
            or is_rw_lock(lock))


def is_peer(lock: str) -> bool:
    """A lock C++ users already have, other than the references."""
    return not is_kmlab(lock) and lock not in (REFERENCE_LOCK, RW_REFERENCE_LOCK)


def plain_name(lock: str) -> str:
    """'FastMutex,futex' -> 'FAST_MUTEX over futex', as a driver author reads it;
    'SpinLock' -> 'SpinLock<T>'; 'ERESOURCE' -> 'ERESOURCE by the NT routines'."""
    if is_kmlab_type(lock):
        kind, backend = lock.split(",", 1)
        how = "through the dispatcher" if backend == "dispatcher" else f"over {backend}"
        return f"{NT_NAMES[kind]} {how}"
    if lock in NT_ROUTINES:
        return f"{NT_NAMES[NT_ROUTINES[lock]]} by {lock.split('(')[0]}"
    if lock in SPIN_TYPES or lock in RW_TYPES:
        return f"{lock}<T>"
    if lock in NT_RW_OBJECTS:
        return f"{lock} by the NT routines"
    return lock
