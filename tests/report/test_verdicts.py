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
