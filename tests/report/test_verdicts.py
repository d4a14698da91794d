"""The verdicts and the environment box come from the figures: other data,
other sentences; a question whose scenarios did not run says so; intervals
appear when there are repetitions enough; every warning has its cause."""

import unittest

from fixtures import entry, gb_json
from kmlab import environment, results, verdicts


def five(name, values: dict, spread=0.01):
    """Five repetitions around the given values."""
    return [entry(name, i, **{k: v * (1 + spread * (i - 2)) for k, v in values.items()}) for i in range(5)]


def dataset(rows, machine=None, context=None):
    data = gb_json(rows, context)
    ds = results.Dataset(records=results.records_from(data, machine="m"),
                         machines={"m": machine or {"host": "m", "cores": "2"}})
    ds.contexts["m"] = data["context"]
    ds.file_contexts.append(("m", "S1.json", data["context"]))
    return ds


def convoy_rows(dispatcher_sleeps=1.0):
    rows = []
    for lock, ns, ops2, sleeps in (("std::mutex", 12.0, 3.4e6, 0.002), ("FastMutex,futex", 6.0, 4.5e6, 0.0001),
                                   ("KMutex,dispatcher", 37.0, 1.1e5, dispatcher_sleeps),
                                   ("tbb::mutex", 11.0, 6.2e6, 0.0)):
        rows += five(f"BM_LockUnlock<{lock}>", {"real_time": ns})
        for t, scale in ((2, 1.0), (32, 0.3)):
            rows += five(f"BM_Contended<{lock}>/threads:{t}/cs_ns:50",
                         {"ops_per_s": ops2 * scale, "vcsw_per_op": sleeps, "jain": 0.9})
        rows += five(f"BM_Handoff<{lock}>", {"ops_per_s": ops2 / 2, "vcsw_per_op": sleeps})
    return rows


class Verdicts(unittest.TestCase):
    def text(self, ds):
        answers, use = verdicts.verdicts(ds)
        return {v.key: v.text for v in answers}, use

    def test_the_answers_follow_the_figures(self):
        t, use = self.text(dataset(convoy_rows()))
        self.assertIn("FAST_MUTEX over futex is the cheapest kmlab lock: 6 ns per lock+unlock, 0.50x std::mutex [",
                      t["uncontended"])
        self.assertIn("KMUTEX through the dispatcher, takes 37 ns: 3.08x std::mutex [", t["uncontended"])
        self.assertIn("tbb::mutex beats every kmlab lock", t["scaling"])
        self.assertIn("30.9x std::mutex [", t["scaling"])
        self.assertIn("a lock convoy", t["scaling"])
        self.assertIn("(16x the cores)", t["scaling"])
        self.assertIn("each handoff wakes a sleeping thread", t["handoff"])
        self.assertIn("FAST_MUTEX over futex costs least", use)
        self.assertIn("Avoid KMUTEX through the dispatcher", use)

    def test_other_figures_other_answers(self):
        t, _ = self.text(dataset(convoy_rows(dispatcher_sleeps=0.01)))
        self.assertNotIn("convoy", t["scaling"], "slow, but not from sleeping: no convoy is claimed")
        rows = [r for r in convoy_rows() if "tbb::mutex" not in r["name"]]
        t, _ = self.text(dataset(rows))
        self.assertNotIn("beats every kmlab lock", t["scaling"])

    def test_a_question_without_its_scenario_says_what_to_run(self):
        rows = [r for r in convoy_rows() if r["name"].startswith("BM_LockUnlock")]
        t, use = self.text(dataset(rows))
        self.assertEqual(t["scaling"], "Not measured in this run: needs S3,S4 (scripts/lab run --filter S3,S4).")
        self.assertTrue(t["latency"].startswith("Not measured in this run: needs S6"))
        self.assertIn("FAST_MUTEX over futex costs least", use)

    def test_one_repetition_gives_ratios_without_intervals(self):
        rows = [r for r in convoy_rows() if r["repetition_index"] == 0]
        t, _ = self.text(dataset(rows))
        self.assertIn("0.50x std::mutex and", t["uncontended"])
        self.assertNotIn("[", t["uncontended"])


def lock_family_rows(spin_ns=8.0, resource_ns=11.0, with_push_lock=True):
    """S1 pairs of the spin and reader/writer locks beside their peers, a
    contention sweep and the read-mostly mix, five repetitions each."""
    rows = []
    for lock, ns in (("SpinLock", spin_ns), ("QueuedSpinLock", 12.0), ("KeAcquireSpinLock", spin_ns * 1.1),
                     ("tbb::spin_mutex", 7.3), ("tbb::queuing_mutex", 11.0), ("pthread_spinlock_t", 7.5),
                     ("std::mutex", 15.0)):
        rows += five(f"BM_LockUnlock<{lock}>", {"real_time": ns})
        for t in (2, 32):
            rows += five(f"BM_Contended<{lock}>/threads:{t}/cs_ns:50", {"ops_per_s": 1e8 / ns / t})
        rows += five(f"BM_Fairness<{lock}>/threads:16", {"jain": 0.99 if "Queued" in lock or "queuing" in lock else 0.6})
        rows += five(f"BM_Handoff<{lock}>", {"ops_per_s": 1e7 / ns})
    rw = [("Resource", resource_ns), ("ERESOURCE", 14.0), ("std::shared_mutex", 11.4), ("tbb::spin_rw_mutex", 9.7)]
    if with_push_lock:
        rw.append(("PushLock", 9.0))
    for lock, ns in rw:
        rows += five(f"BM_RwShared<{lock}>", {"real_time": ns})
        if lock in ("Resource", "std::shared_mutex"):
            rows += five(f"BM_RwSharedInRegion<{lock}>", {"real_time": ns * 0.8 if lock == "Resource" else ns})
        rows += five(f"BM_RwExclusive<{lock}>", {"real_time": ns * 1.2})
        for t in (2, 4):
            for p in (50, 90, 99):
                rows += five(f"BM_ReadMostly<{lock}>/threads:{t}/read_pct:{p}", {"ops_per_s": 1e8 / ns * p / 100})
    rows += five("BM_Floor<critical_region>", {"real_time": 3.3})
    return rows


class LockFamilies(unittest.TestCase):
    def text(self, rows):
        answers, _ = verdicts.verdicts(dataset(rows))
        return {v.key: v.text for v in answers}

    def test_the_cost_targets_are_checked_from_the_figures(self):
        t = self.text(lock_family_rows())
        self.assertIn("SpinLock<T> takes 8 ns per lock+unlock: 1.10x tbb::spin_mutex [", t["spin"])
        self.assertIn("target <= 1.2x: met", t["spin"])
        self.assertIn("Resource<T> takes 11 ns per shared acquire+release with the critical region entered and "
                      "left around it: 0.96x std::shared_mutex [", t["rw"])
        self.assertIn("target <= 1x: met", t["rw"])
        self.assertIn("by a thread already in a region, 8.8 ns: 0.77x std::shared_mutex [", t["rw"])
        self.assertIn("the region alone takes 3.3 ns", t["rw"])
        t = self.text(lock_family_rows(spin_ns=10.0, resource_ns=13.0))
        self.assertIn("1.37x tbb::spin_mutex [", t["spin"])
        self.assertIn("target <= 1.2x: missed", t["spin"])
        self.assertIn("1.14x std::shared_mutex [", t["rw"])
        self.assertIn("target <= 1x: missed", t["rw"])
        self.assertIn("by a thread already in a region, 10.4 ns: 0.91x std::shared_mutex [", t["rw"])
        self.assertEqual(t["rw"].count("target <= 1x: met"), 1, "missed with the region, met without")

    def test_contention_fairness_and_the_read_mostly_mix_are_answered(self):
        t = self.text(lock_family_rows())
        self.assertIn("QueuedSpinLock<T>: 12 ns, 1.09x tbb::queuing_mutex", t["spin"])
        self.assertIn("KeAcquireSpinLock 1.10x SpinLock<T>", t["spin"])
        self.assertIn("At 32 threads (50 ns critical section) the fastest, SpinLock<T>, costs", t["spin"])
        self.assertIn("the fastest spinning peer", t["spin"])
        self.assertIn("Fairness at 16 threads", t["spin"])
        self.assertIn("QueuedSpinLock<T> 0.99", t["spin"])
        # 1e8 / 9 * 0.99 acquisitions/s: PushLock<T> is the fastest kmlab lock, 9 / 11.4 of std::shared_mutex's cost.
        self.assertIn("Read-mostly at 4 threads and 99% reads (std::shared_mutex 8.68 M/s), cost against it: "
                      "PushLock<T> 0.79x [", t["rw"])
        self.assertIn("ERESOURCE by the NT routines 1.23x [", t["rw"])
        self.assertIn("the fastest, PushLock<T> (11 M/s), costs 0.93x tbb::spin_rw_mutex [", t["rw"])
        self.assertIn("4 threads and 50% reads", t["rw"])
        self.assertNotIn("Not in this run", t["spin"].split("Handoff")[0])

    def test_a_family_left_out_of_the_binaries_is_named(self):
        t = self.text(lock_family_rows(with_push_lock=False))
        self.assertIn("Not in this run's binaries: PushLock<T>, RwSpinLock<T>, EX_PUSH_LOCK by the NT routines, "
                      "EX_SPIN_LOCK by the NT routines.", t["rw"])
        self.assertIn("KeAcquireInStackQueuedSpinLock", t["spin"])

    def test_without_the_new_locks_the_questions_say_what_to_run(self):
        t = self.text(convoy_rows())
        self.assertEqual(t["spin"], "Not measured in this run: needs S1,S3,S5,S7 (scripts/lab run --filter S1,S3,S5,S7).")
        self.assertTrue(t["rw"].startswith("Not measured in this run: needs S1,S2,S12"))


class Environment(unittest.TestCase):
    def test_every_condition_is_flagged(self):
        ds = dataset([entry("BM_Contended<std::mutex>/threads:32/cs_ns:50", 0, ops_per_s=1.0)],
                     machine={"host": "vm", "cores": "2", "virtualized": "yes (the CPU reports a hypervisor)",
                              "governor": "unreadable", "load_before_run": "1.90 2.00 2.20"},
                     context={"library_build_type": "debug", "online_cpus": "2"})
        w = " ".join(environment.warnings(ds))
        for says in ("A virtual machine", "governor is unreadable", "Load average 1.9 on 2 cores",
                     "built as debug", "1 repetition(s)", "it needs 4 per side", "up to 32 threads on 2 cores"):
            self.assertIn(says, w)

    def test_a_quiet_bare_metal_machine_has_no_warnings(self):
        ds = dataset(five("BM_LockUnlock<std::mutex>", {"real_time": 10.0}),
                     machine={"host": "metal", "cores": "8", "virtualized": "no", "governor": "performance",
                              "load_before_run": "0.10 0.20 0.30"},
                     context={"library_build_type": "release"})
        self.assertEqual(environment.warnings(ds), [])


if __name__ == "__main__":
    unittest.main()
