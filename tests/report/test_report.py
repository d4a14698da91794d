"""Tests for the scripts/kmlab package: JSON to data, the tables, a report
rendered from stored results, and every bad-input case (a clear message and
exit status 2, before anything is built)."""

import json
import os
import shutil
import tempfile
import unittest
from pathlib import Path

from fixtures import ROOT, contention_rows, entry, gb_json, label_of, run_main, write_report_dir
from kmlab import results, run, scenarios, stats, tables  # noqa: E402


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

    def test_tables_give_every_ratio_as_a_cost_best_first_with_units(self):
        data = gb_json([entry("BM_Contended<std::mutex>/threads:2/cs_ns:50", 0, ops_per_s=100.0, cpu_ns_per_op=9.0),
                        entry("BM_Contended<FastMutex,futex>/threads:2/cs_ns:50", 0, ops_per_s=150.0),
                        entry("BM_Contended<KMutex,dispatcher>/threads:2/cs_ns:50", 0, ops_per_s=10.0),
                        entry("BM_LockUnlock<std::mutex>", 0, real_time=10.0),
                        entry("BM_LockUnlock<FastMutex,futex>", 0, real_time=5.0)])
        ds = results.Dataset(records=results.records_from(data, machine="m"), machines={"m": {}})
        [g] = tables.scenario_groups(ds, scenarios.SCENARIO_BY_ID["S3"])
        self.assertEqual(g.title, "BM_Contended (threads 2, cs_ns 50)")
        self.assertIn("median (acquisitions/s)", g.header)
        self.assertIn("CPU ns/op", g.header, "measured extras are shown")
        self.assertEqual([r[0] for r in g.rows], ["FastMutex,futex", "std::mutex", "KMutex,dispatcher"])
        # Throughput 1.5x std::mutex's is a cost of 1/1.5; a time of half std::mutex's is 0.5: below 1 is better
        # in both, whichever way the metric points.
        self.assertEqual(g.rows[0][4], "0.67x [no 95% CI]")
        self.assertEqual(g.rows[1][4], "1 (reference)")
        self.assertEqual(g.rows[2][4], "10.0x [no 95% CI]")
        [g1] = tables.scenario_groups(ds, scenarios.SCENARIO_BY_ID["S1"])
        self.assertIn("median (ns per lock+unlock)", g1.header)
        self.assertEqual(g1.rows[0][:1] + g1.rows[0][4:5], ["FastMutex,futex", "0.50x [no 95% CI]"])


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

    def test_every_flag_is_checked(self):
        self.assert_clean_error(["run", "--bogus"], "unrecognized arguments: --bogus")
        self.assert_clean_error(["run", "--repetitions", "0"], "--repetitions", "at least 1")
        self.assert_clean_error(["run", "--repetitions", "many"], "--repetitions", "not a whole number")
        self.assert_clean_error(["compare", "a", "b", "--alpha", "2"], "--alpha", "between 0 and 1")
        self.assert_clean_error(["compare", "a", "b", "--alpha", "0"], "--alpha")
        self.assert_clean_error(["compare", "a", "b", "--fail-above", "-5"], "--fail-above")
        self.assert_clean_error(["compare", "a", "b", "--fail-above", "nan"], "--fail-above")
        self.assert_clean_error(["compare", "a", "b", "--json", str(self.dir / "no" / "such.json")], "--json")
        self.assert_clean_error(["compare", "a", "b", "--json", "-", "--csv", "-"], "stdout")
        self.assert_clean_error(["report"], "dirs")

    def test_check_flags_runs_nothing(self):
        rc, out, err = run_main(["run", "--quick", "--filter", "S1", "--repetitions", "3", "--check-flags"])
        self.assertEqual((rc, out, err), (0, "", ""))
        (self.dir / "taken").mkdir()
        self.assert_clean_error(["run", "--out", str(self.dir / "taken"), "--check-flags"], "already exists")

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
            write_report_dir(d, {"S3": contention_rows()})
            rc, out, err = run_main(["report", str(d)])
            self.assertEqual(rc, 0, err)
            self.assertIn("FastMutex,futex", out)
            for chart in ("throughput-fastmutex", "fairness", "uncontended-ns", "cpu-per-op"):
                if chart == "cpu-per-op":
                    self.assertFalse((d / "charts" / f"{chart}.svg").exists(), "nothing measured, nothing drawn")
                    continue
                self.assertTrue((d / "charts" / f"{chart}.svg").stat().st_size > 1000, chart)
                self.assertTrue((d / "charts" / f"{chart}.png").exists(), chart)
            html_text = (d / "report.html").read_text()
            self.assertIn("<svg", html_text, "charts are inline: the HTML is self-contained")
            self.assertIn("<details>", html_text, "the full tables are collapsed")
            md = (d / "report.md").read_text()
            self.assertLess(md.index("## Verdicts"), md.index("## Environment"))
            self.assertLess(md.index("## Environment"), md.index("## Summary"))
            self.assertLess(md.index("## Summary"), md.index("## Tables"))
            self.assertIn("| FastMutex,futex | 1501 | 1500 | 1502 | 0.67x [no 95% CI] |", md)
            self.assertIn("S8 many locks (global vs per-object dispatcher lock): not run", md)
            self.assertIn("**Handoff.** Not measured in this run: needs S7", md)
            # No absolute path of this machine anywhere in what a report keeps.
            for f in d.rglob("*"):
                if f.is_file() and f.suffix in (".md", ".html", ".gp", ".dat", ".txt", ".log", ".svg"):
                    text = f.read_text(errors="replace")
                    self.assertNotIn(str(d), text, f.name)
                    self.assertNotIn(str(ROOT), text, f.name)
        finally:
            shutil.rmtree(d)

    @unittest.skipUnless(shutil.which("gnuplot"), "gnuplot is not installed")
    def test_kept_histograms_draw_a_latency_cdf_per_thread_count(self):
        d = Path(tempfile.mkdtemp())
        try:
            rows = [entry(f"BM_Latency<{lock}>/threads:{t}", rep, label=label_of([base * (1 + i % 50) for i in range(500)]),
                          max_ns=base * 50.0)
                    for lock, base in (("std::mutex", 100), ("KMutex,dispatcher", 5000)) for t in (2, 16)
                    for rep in range(4)]
            write_report_dir(d, {"S6": rows})
            rc, _, err = run_main(["report", str(d)])
            self.assertEqual(rc, 0, err)
            for t in (2, 16):
                self.assertTrue((d / "charts" / f"latency-cdf-{t}threads.svg").exists(), t)
            md = (d / "report.md").read_text()
            self.assertIn("**Tail latency.** At 16 threads the p99 time to acquire is 250 us for KMUTEX through "
                          "the dispatcher", md)
            self.assertIn("![Time to acquire at 2 threads: the whole distribution", md)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
