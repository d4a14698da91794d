"""Tests for the scripts/kmlab package: JSON to data, findings,
chart data, and every bad-input case (a clear message and exit status 2)."""

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from kmlab import cli, report, results, run, scenarios, stats  # noqa: E402


def gb_json(entries, context=None):
    """A minimal Google Benchmark results document."""
    return {"context": context or {"hostname": "testhost", "online_cpus": "2", "kmlab_commit": "abc1234"},
            "benchmarks": entries}


def entry(name, rep, **values):
    e = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": 3, "repetition_index": rep,
         "threads": 1, "iterations": 1, "time_unit": values.pop("time_unit", "ns")}
    e.update(values)
    return e


def run_main(args):
    err = io.StringIO()
    out = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = cli.main(args)
    return rc, out.getvalue(), err.getvalue()


class NameParsing(unittest.TestCase):
    def test_family_lock_and_arguments(self):
        self.assertEqual(results.parse_name("BM_Contended<FastMutex,futex>/threads:16/cs_ns:50/iterations:1/manual_time"),
                         ("BM_Contended", "FastMutex,futex", (("threads", 16), ("cs_ns", 50))))

    def test_no_arguments_and_no_lock(self):
        self.assertEqual(results.parse_name("BM_LockUnlock<std::mutex>"), ("BM_LockUnlock", "std::mutex", ()))
        self.assertEqual(results.parse_name("BM_WaitAny<dispatcher>/objects:3/iterations:1/manual_time"),
                         ("BM_WaitAny", "dispatcher", (("objects", 3),)))

    def test_foreign_names_are_skipped(self):
        self.assertIsNone(results.parse_name("something else"))


class JsonToData(unittest.TestCase):
    def test_repetitions_are_grouped_and_aggregates_and_errors_dropped(self):
        data = gb_json([
            entry("BM_LockUnlock<std::mutex>", 0, real_time=10.0, cpu_time=10.0),
            entry("BM_LockUnlock<std::mutex>", 1, real_time=12.0, cpu_time=12.0),
            entry("BM_LockUnlock<std::mutex>", 2, real_time=0.011, cpu_time=0.011, time_unit="us"),
            {"name": "BM_LockUnlock<std::mutex>_median", "run_name": "BM_LockUnlock<std::mutex>",
             "run_type": "aggregate", "real_time": 99.0},
            {"name": "BM_Contended<X>/threads:2", "run_name": "BM_Contended<X>/threads:2", "run_type": "iteration",
             "error_occurred": True, "error_message": "only 1 of 2 worker threads started"},
        ])
        recs = results.records_from(data)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0].values["real_time"], [10.0, 12.0, 11.0], "us converted to ns")
        self.assertEqual(stats.median_min_max(recs[0].values["real_time"]), (11.0, 10.0, 12.0))
        self.assertEqual(results.errors_from(data), ["BM_Contended<X>/threads:2: only 1 of 2 worker threads started"])

    def test_scenario_table_reports_ratio_to_std_mutex(self):
        data = gb_json([entry("BM_Contended<std::mutex>/threads:2/cs_ns:50", 0, ops_per_s=100.0),
                        entry("BM_Contended<FastMutex,futex>/threads:2/cs_ns:50", 0, ops_per_s=150.0)])
        ds = results.Dataset(records=results.records_from(data, machine="m"), machines={"m": {}})
        rows = report.scenario_table(ds, scenarios.SCENARIO_BY_ID["S3"])
        by_label = {r[0]: r for r in rows}
        self.assertEqual(by_label["BM_Contended<FastMutex,futex>/threads:2/cs_ns:50"][5], "1.50x")
        self.assertTrue(by_label["BM_Contended<std::mutex>/threads:2/cs_ns:50"][5].startswith("1.00x"))


class Findings(unittest.TestCase):
    def test_findings_come_from_the_data(self):
        data = gb_json([
            entry("BM_Contended<std::mutex>/threads:2/cs_ns:50", 0, ops_per_s=1000.0, jain=0.99),
            entry("BM_Contended<FastMutex,futex>/threads:2/cs_ns:50", 0, ops_per_s=2500.0, jain=0.97),
            entry("BM_Contended<KMutex,dispatcher>/threads:2/cs_ns:50", 0, ops_per_s=500.0, jain=1.0),
            entry("BM_LockUnlock<std::mutex>", 0, real_time=15.0),
            entry("BM_LockUnlock<FastMutex,futex>", 0, real_time=7.0),
        ])
        ds = results.Dataset(records=results.records_from(data, machine="m"), machines={"m": {}})
        text = " ".join(report.findings(ds))
        self.assertIn("fastest kmlab lock is FastMutex,futex", text)
        self.assertIn("2.50x std::mutex", text)
        self.assertIn("cheapest lock+unlock is FastMutex,futex (7.0 ns)", text)
        self.assertIn("least fair lock is FastMutex,futex", text)
        # Different data, different sentences.
        data["benchmarks"][1]["ops_per_s"] = 400.0
        ds = results.Dataset(records=results.records_from(data, machine="m"), machines={"m": {}})
        self.assertIn("fastest kmlab lock is KMutex,dispatcher", " ".join(report.findings(ds)))


class BadInput(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write(self, name, text):
        p = self.dir / name
        p.write_text(text)
        return p

    def assert_clean_error(self, args, *fragments):
        rc, _, err = run_main(args)
        self.assertEqual(rc, 2, err)
        self.assertEqual(len([l for l in err.splitlines() if l.startswith("lab: error:")]), 1, err)
        for f in fragments:
            self.assertIn(f, err)

    def test_missing_file(self):
        missing = str(self.dir / "nope.json")
        self.assert_clean_error(["compare", missing, missing], "nope.json", "no such")

    def test_empty_file(self):
        p = self.write("empty.json", "")
        self.assert_clean_error(["compare", str(p), str(p)], "empty.json", "empty")

    def test_truncated_file(self):
        good = json.dumps(gb_json([entry("BM_LockUnlock<std::mutex>", 0, real_time=1.0)]))
        p = self.write("cut.json", good[: len(good) // 2])
        self.assert_clean_error(["compare", str(p), str(p)], "cut.json", "not valid JSON")

    def test_json_that_is_not_benchmark_output(self):
        p = self.write("other.json", json.dumps({"hello": [1, 2, 3]}))
        self.assert_clean_error(["compare", str(p), str(p)], "other.json", "not a Google Benchmark results file")

    def test_unknown_scenario(self):
        self.assert_clean_error(["run", "--filter", "S1,S99"], "unknown scenario S99")

    def test_missing_gnuplot(self):
        old = os.environ["PATH"]
        os.environ["PATH"] = str(self.dir)  # nothing there
        try:
            self.assert_clean_error(["run", "--quick"], "gnuplot is not installed")
        finally:
            os.environ["PATH"] = old

    def test_an_existing_report_is_never_overwritten(self):
        (self.dir / "report").mkdir()
        with self.assertRaises(results.LabError):
            run.final_report_dir(str(self.dir / "report"), {"host": "h", "commit": "c"})


class Rendering(unittest.TestCase):
    @unittest.skipUnless(shutil.which("gnuplot"), "gnuplot is not installed")
    def test_report_with_charts_from_stored_results(self):
        d = Path(tempfile.mkdtemp())
        try:
            (d / "raw").mkdir()
            rows = []
            for lock, base in (("std::mutex", 1000.0), ("FastMutex,futex", 1500.0), ("KMutex,futex", 900.0)):
                for t in (1, 2, 4):
                    for rep in range(3):
                        rows.append(entry(f"BM_Contended<{lock}>/threads:{t}/cs_ns:50", rep,
                                          ops_per_s=base / t + rep, jain=0.9 + rep / 100))
                rows.append(entry(f"BM_LockUnlock<{lock}>", 0, real_time=base / 100))
            (d / "raw" / "S3.json").write_text(json.dumps(gb_json(rows)))
            (d / "machine.txt").write_text("host: testhost\ncores: 2\ncpu_model: Test CPU\ncommit: abc1234\n")
            rc, out, err = run_main(["report", str(d)])
            self.assertEqual(rc, 0, err)
            self.assertIn("FastMutex,futex", out)
            for chart in ("throughput-fastmutex", "fairness", "uncontended-ns"):
                self.assertTrue((d / "charts" / f"{chart}.svg").stat().st_size > 1000, chart)
                self.assertTrue((d / "charts" / f"{chart}.png").exists(), chart)
            html_text = (d / "report.html").read_text()
            self.assertIn("<svg", html_text, "charts are inline: the HTML is self-contained")
            md = (d / "report.md").read_text()
            self.assertIn("| BM_Contended<FastMutex,futex>/threads:1/cs_ns:50 | testhost | 1501 | 1500 | 1502 | 1.50x |", md)
            self.assertIn("S8 many locks (global vs per-object dispatcher lock): not run", md)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
