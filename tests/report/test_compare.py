"""compare as a CI gate: a significant regression above --fail-above exits 1
and nothing else does; a benchmark missing or errored on either side exits 3
and is named; too few repetitions are warned about with the number needed;
identical inputs are called so; rows are sorted and fit the terminal; JSON
and CSV carry the same figures; plain Google Benchmark files are accepted."""

import csv
import io
import json
import os
import shutil
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from fixtures import entry, errored, gb_json, run_main, write_report_dir

LONG = "BM_Contended<KeWaitForSingleObject(KMUTEX)>/threads:32/cs_ns:2000/a_very_long_argument:1"


def reps(name, values, **extra):
    return [entry(name, i, **{**extra, **v}) for i, v in enumerate(values)]


class Gate(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())

    def tearDown(self):
        shutil.rmtree(self.dir)

    def side(self, name, rows):
        p = self.dir / f"{name}.json"
        p.write_text(json.dumps(gb_json(rows)))
        return str(p)

    def pair(self, n=5, slower=1.0, b_extra=(), a_extra=()):
        """A and B with the same uncontended and contended benchmarks; B's
        uncontended std::mutex takes `slower` times as long."""
        a = (reps("BM_LockUnlock<std::mutex>", [{"real_time": 10 + i * 0.01} for i in range(n)])
             + reps("BM_Contended<std::mutex>/threads:2/cs_ns:50", [{"ops_per_s": 1e6 + i} for i in range(n)])
             + list(a_extra))
        b = (reps("BM_LockUnlock<std::mutex>", [{"real_time": (10 + i * 0.01) * slower} for i in range(n)])
             + reps("BM_Contended<std::mutex>/threads:2/cs_ns:50", [{"ops_per_s": 1e6 + i} for i in range(n)])
             + list(b_extra))
        return self.side("a", a), self.side("b", b)

    def test_a_significant_regression_above_the_threshold_fails(self):
        a, b = self.pair(slower=1.2)
        rc, out, err = run_main(["compare", a, b, "--fail-above", "10"])
        self.assertEqual(rc, 1, err)
        self.assertIn("BM_LockUnlock<std::mutex>: real_time +20.0%", err)
        self.assertIn("REGRESSION", out)
        rc, _, err = run_main(["compare", a, b, "--fail-above", "30"])
        self.assertEqual(rc, 0, "20% is under a 30% threshold")
        rc, _, _ = run_main(["compare", a, b])
        self.assertEqual(rc, 0, "no threshold, no gate")
        rc, _, _ = run_main(["compare", b, a, "--fail-above", "10"])
        self.assertEqual(rc, 0, "faster is not a regression")

    def test_a_missing_benchmark_fails_and_is_named(self):
        extra = reps("BM_LockUnlock<tbb::mutex>", [{"real_time": 9.0}] * 5)
        a, b = self.pair(a_extra=extra)
        rc, _, err = run_main(["compare", a, b])
        self.assertEqual(rc, 3, err)
        self.assertIn("missing in B (present in A): BM_LockUnlock<tbb::mutex>", err)
        rc, _, err = run_main(["compare", b, a])
        self.assertEqual(rc, 3)
        self.assertIn("missing in A (present in B): BM_LockUnlock<tbb::mutex>", err)
        rc, _, err = run_main(["compare", a, b, "--allow-missing"])
        self.assertEqual(rc, 0, err)
        self.assertIn("allowed by --allow-missing", err)

    def test_an_errored_benchmark_fails_even_when_missing_is_allowed(self):
        a, b = self.pair(a_extra=reps("BM_Contended<tbb::mutex>/threads:2/cs_ns:50", [{"ops_per_s": 5.0}] * 5),
                         b_extra=[errored("BM_Contended<tbb::mutex>/threads:2/cs_ns:50/iterations:1/manual_time")])
        rc, _, err = run_main(["compare", a, b, "--allow-missing"])
        self.assertEqual(rc, 3, err)
        self.assertIn("errored in B: BM_Contended<tbb::mutex>/threads:2/cs_ns:50: only 1 of 2", err)

    def test_too_few_repetitions_are_warned_about_with_the_number_needed(self):
        a, b = self.pair(n=3, slower=2.0)
        rc, _, err = run_main(["compare", a, b, "--fail-above", "5"])
        self.assertEqual(rc, 0, "p >= 0.1 with 3 and 3: nothing can be significant")
        self.assertIn("smallest possible p is 0.1", err)
        self.assertIn("at least 4 repetitions", err)
        _, _, err = run_main(["compare", a, b, "--alpha", "0.2"])
        self.assertNotIn("warning", err, "3 and 3 can reach 0.2")
        a5, b5 = self.pair(n=5)
        _, _, err = run_main(["compare", a5, b5])
        self.assertNotIn("warning", err)

    def test_identical_inputs_are_called_identical(self):
        a, _ = self.pair()
        _, _, err = run_main(["compare", a, a])
        self.assertIn("the same file", err)
        copy = self.dir / "copy.json"
        shutil.copy(a, copy)
        rc, _, err = run_main(["compare", a, str(copy)])
        self.assertEqual(rc, 0)
        self.assertIn("identical results", err)

    def test_every_change_reads_one_way_and_json_and_csv_agree(self):
        # A time that grows and a throughput that falls are both + (worse).
        a = self.side("a", reps("BM_LockUnlock<std::mutex>", [{"real_time": 10.0 + i / 100} for i in range(5)])
                      + reps("BM_Handoff<std::mutex>", [{"ops_per_s": 1000.0 + i} for i in range(5)]))
        b = self.side("b", reps("BM_LockUnlock<std::mutex>", [{"real_time": 12.5 + i / 100} for i in range(5)])
                      + reps("BM_Handoff<std::mutex>", [{"ops_per_s": 500.0 + i} for i in range(5)]))
        rc, out, err = run_main(["compare", a, b, "--json", "-", "--csv", str(self.dir / "rows.csv")])
        self.assertEqual(rc, 0, err)
        res = json.loads(out)
        by = {r["benchmark"]: r for r in res["rows"]}
        self.assertAlmostEqual(by["BM_LockUnlock<std::mutex>"]["change_pct"], 25, delta=0.5)
        self.assertAlmostEqual(by["BM_Handoff<std::mutex>"]["change_pct"], 100, delta=1)
        self.assertTrue(all(r["significant"] for r in res["rows"]))
        self.assertLess(by["BM_Handoff<std::mutex>"]["ci_low_pct"], by["BM_Handoff<std::mutex>"]["change_pct"])
        self.assertIn("+ is worse", res["convention"])
        self.assertEqual([s["id"] for s in res["scenarios"]], ["S1", "S7"], "grouped in the table's order")
        rows = list(csv.DictReader(io.StringIO((self.dir / "rows.csv").read_text())))
        self.assertEqual([r["benchmark"] for r in rows], [r["benchmark"] for r in res["rows"]])
        self.assertEqual(res["exit_status"], 0)
        self.assertEqual(res["tests"], 2)

    def test_rows_are_sorted_worst_first_and_fit_the_terminal(self):
        a = self.side("a", reps("BM_LockUnlock<std::mutex>", [{"real_time": 10.0}] * 5)
                      + reps("BM_LockUnlock<tbb::mutex>", [{"real_time": 10.0}] * 5)
                      + reps("BM_LockUnlock<absl::Mutex>", [{"real_time": 10.0}] * 5)
                      + reps(LONG, [{"ops_per_s": 100.0}] * 5))
        b = self.side("b", reps("BM_LockUnlock<std::mutex>", [{"real_time": 11.0}] * 5)
                      + reps("BM_LockUnlock<tbb::mutex>", [{"real_time": 30.0}] * 5)
                      + reps("BM_LockUnlock<absl::Mutex>", [{"real_time": 5.0}] * 5)
                      + reps(LONG, [{"ops_per_s": 100.0}] * 5))
        with mock.patch.dict(os.environ, {"COLUMNS": "100"}):
            _, out, _ = run_main(["compare", a, b])
        lines = out.splitlines()
        order = [l.split()[0] for l in lines if l.startswith("BM_LockUnlock")]
        self.assertEqual(order, ["BM_LockUnlock<tbb::mutex>", "BM_LockUnlock<std::mutex>", "BM_LockUnlock<absl::Mutex>"])
        table = lines[: next(i for i, l in enumerate(lines) if l.startswith("0 of") or " of " in l[:8])]
        self.assertTrue(all(len(l) <= 100 for l in table if l.startswith("BM_")), table)
        self.assertTrue(any(l.startswith("BM_Contended<KeWait") and "~" in l.split()[0] for l in lines),
                        "long names are shortened in the middle")
        self.assertIn("Multiple comparisons", out)

    def test_plain_benchmark_files_and_report_folders_mix(self):
        a, b = self.pair(slower=1.2)
        uncontended = [e for e in json.loads(Path(a).read_text())["benchmarks"] if e["name"].startswith("BM_LockUnlock")]
        folder = write_report_dir(self.dir / "report-a", {"S1": uncontended})
        rc, out, err = run_main(["compare", str(folder), b, "--fail-above", "10"])
        self.assertEqual(rc, 3, "the folder holds S1 only: the contended benchmark is missing in A")
        self.assertIn("missing in A", err)
        self.assertIn("REGRESSION", out)


if __name__ == "__main__":
    unittest.main()
