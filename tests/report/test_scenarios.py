"""Tests that scripts/kmlab/scenarios.py is the one place that knows the
scenarios: every benchmark family the binaries register, and every family in
a stored report, maps to a scenario through the table, and to the right one;
every chart is named by the table, drawn, and fed only its scenarios' data;
no other module names a scenario by its id."""

import ast
import json
import re
import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from kmlab import charts, results, scenarios  # noqa: E402
from fixtures import entry, gb_json  # noqa: E402

# A family as the benchmark sources name it: "BM_Floor<fetch_add>", or
# bench_name("BM_Contended", ...) which adds the lock in angle brackets.
REGISTERED = re.compile(r'"(BM_[A-Za-z]+)[<"]')


def sample_report():
    """The stored report under reports/ with the most results, or None."""
    dirs = [d for d in (ROOT / "reports").iterdir() if (d / "raw").is_dir()]
    return max(dirs, key=lambda d: len(list((d / "raw").glob("S*.json"))), default=None)


def registered_families():
    """{family: binary} from the benchmark sources, one binary per .cpp."""
    out = {}
    for src in sorted((ROOT / "benchmarks").glob("*.cpp")):
        for family in REGISTERED.findall(src.read_text()):
            out[family] = src.stem
    return out


class Families(unittest.TestCase):
    def test_every_registered_family_maps_to_the_scenario_that_runs_it(self):
        registered = registered_families()
        self.assertIn("BM_Contended", registered, "the source scan finds the families")
        for family, binary in registered.items():
            with self.subTest(family=family):
                self.assertIn(family, scenarios.FAMILY_SCENARIO, "a family the table does not know")
                s = scenarios.SCENARIO_BY_ID[scenarios.FAMILY_SCENARIO[family]]
                self.assertEqual(s.binary, binary)
                self.assertTrue(re.search(s.filter, f"{family}<x>"), f"{s.id}'s filter does not run {family}")

    def test_every_family_in_the_table_is_registered(self):
        registered = registered_families()
        for s in scenarios.SCENARIOS:
            for family in s.families:
                self.assertIn(family, registered, f"{s.id} names {family}, which no benchmark registers")

    def test_a_family_belongs_to_one_scenario(self):
        listed = [f for s in scenarios.SCENARIOS for f in s.families]
        self.assertEqual(len(listed), len(set(listed)))
        self.assertEqual(len(scenarios.SCENARIO_BY_ID), len(scenarios.SCENARIOS))

    def test_stored_results_map_to_the_scenario_whose_file_holds_them(self):
        files = sorted(ROOT.glob("reports/*/raw/S*.json"))
        if not files:
            self.skipTest("no stored report under reports/")
        for f in files:
            for rec in results.records_from(json.loads(f.read_text())):
                with self.subTest(file=str(f.relative_to(ROOT)), family=rec.family):
                    self.assertEqual(rec.scenario, f.stem)



class Charts(unittest.TestCase):
    def test_every_chart_is_named_by_the_table_and_drawn_by_charts(self):
        self.assertEqual(set(charts.DRAWERS), set(scenarios.CHART_SCENARIOS))
        for chart, ids in scenarios.CHART_SCENARIOS.items():
            self.assertTrue(ids, chart)
            for i in ids:
                self.assertIn(i, scenarios.SCENARIO_BY_ID, chart)

    @unittest.skipUnless(shutil.which("gnuplot"), "gnuplot is not installed")
    def test_a_chart_gets_the_records_of_its_scenarios_only(self):
        d = sample_report()
        if d is None:
            self.skipTest("no stored report under reports/")
        ds = results.load_report_dirs([d])
        seen = {}

        def record(canvas, chart, recs):
            seen[chart] = {r.scenario for r in recs}

        with mock.patch.dict(charts.DRAWERS, dict.fromkeys(charts.DRAWERS, record)):
            charts.render_charts(ds, Path(tempfile.gettempdir()))  # nothing is written
        self.assertEqual(set(seen), set(scenarios.CHART_SCENARIOS))
        stored = {r.scenario for r in ds.records}
        for chart, got in seen.items():
            # Not drawn from records: callgrind's counts; or from scenarios newer than the sample.
            if chart != "uncontended-instructions" and stored & set(scenarios.CHART_SCENARIOS[chart]):
                self.assertTrue(got, chart)
            self.assertLessEqual(got, set(scenarios.CHART_SCENARIOS[chart]), chart)

    @unittest.skipUnless(shutil.which("gnuplot"), "gnuplot is not installed")
    def test_the_sample_report_draws_every_chart_the_table_names(self):
        d = sample_report()
        if d is None:
            self.skipTest("no stored report under reports/")
        out = Path(tempfile.mkdtemp())
        try:
            ds = results.load_report_dirs([d])
            drawn = [Path(svg).stem for _, svg in charts.render_charts(ds, out)]
            # A drawer may draw one chart per configuration ("latency-cdf-16threads").
            drawer_of = [next(n for n in sorted(charts.DRAWERS, key=len, reverse=True)
                              if name == n or name.startswith(n + "-") and name[len(n) + 1:][:1].isdigit())
                         for name in drawn]
            self.assertEqual(drawer_of, sorted(drawer_of, key=list(charts.DRAWERS).index), "in the table's order")
            expected = set(scenarios.CHART_SCENARIOS)
            if not any(r.histograms for r in ds.records):
                expected.discard("latency-cdf")  # stored before the histograms were kept
            # Stored before the spin and reader/writer locks were measured: their charts have nothing to draw.
            if not any(scenarios.is_spin_lock(r.lock) for r in ds.records):
                expected.discard("throughput-spinlocks")
            if not any(r.family == "BM_RwShared" for r in ds.records):
                expected.discard("uncontended-rw")
            if not any(r.family == "BM_ReadMostly" for r in ds.records):
                expected.discard("read-mostly")
            if not any(r.family == "BM_OneCore" for r in ds.records):
                expected.discard("one-core")  # stored before S16 existed
            self.assertEqual(set(drawer_of), expected)
        finally:
            shutil.rmtree(out)



def lock_families_rows(reps=5):
    """A run with the spin and reader/writer locks in S1, S2, S3 and S12."""
    rows = []
    for lock, ns in (("SpinLock", 8.0), ("QueuedSpinLock", 12.0), ("KeAcquireSpinLock", 9.0),
                     ("tbb::spin_mutex", 7.3), ("tbb::queuing_mutex", 11.0), ("std::mutex", 15.0)):
        rows += [entry(f"BM_LockUnlock<{lock}>", i, real_time=ns + i / 10) for i in range(reps)]
        for t in (1, 2, 4):
            rows += [entry(f"BM_Contended<{lock}>/threads:{t}/cs_ns:50", i, ops_per_s=1e6 / ns / t + i)
                     for i in range(reps)]
    for lock, ns in (("Resource", 12.0), ("EX_PUSH_LOCK", 15.0), ("std::shared_mutex", 11.4),
                     ("tbb::spin_rw_mutex", 9.7)):
        for fam in ("BM_RwShared", "BM_RwExclusive", "BM_RwSharedInRegion"):
            rows += [entry(f"{fam}<{lock}>", i, real_time=ns + i / 10) for i in range(reps)]
        for t in (2, 4):
            for p in (50, 90, 99):
                rows += [entry(f"BM_ReadMostly<{lock}>/threads:{t}/read_pct:{p}", i, ops_per_s=1e8 / ns * p / 100 + i)
                         for i in range(reps)]
    rows += [entry("BM_Floor<critical_region>", i, real_time=3.3) for i in range(reps)]
    return rows


class NewScenarioCharts(unittest.TestCase):
    @unittest.skipUnless(shutil.which("gnuplot"), "gnuplot is not installed")
    def test_the_spin_and_reader_writer_charts_are_drawn_from_their_records(self):
        out = Path(tempfile.mkdtemp())
        try:
            rows = lock_families_rows()
            d = out / "in"
            (d / "raw").mkdir(parents=True)
            by_id = {}
            for row in rows:
                by_id.setdefault(results.FAMILY_SCENARIO[results.parse_name(row["name"])[0]], []).append(row)
            for sid, rs in by_id.items():
                (d / "raw" / f"{sid}.json").write_text(json.dumps(gb_json(rs)))
            (d / "machine.txt").write_text("host: t\ncores: 2\ncommit: abc\n")
            ds = results.load_report_dirs([d])
            drawn = {Path(svg).stem: title for title, svg in charts.render_charts(ds, out)}
            for name in ("throughput-spinlocks", "uncontended-rw", "read-mostly-2threads", "read-mostly-4threads"):
                self.assertIn(name, drawn)
            self.assertIn("at 4 threads", drawn["read-mostly-4threads"])
            gp = (out / "charts" / "read-mostly-4threads.svg.gp").read_text()
            self.assertIn("'50%%' 0, '90%%' 1, '99%%' 2", gp, "the readers' shares are the x axis' categories")
            self.assertIn("share of acquisitions that read", gp)
            self.assertIn("acquisitions per second", gp)
            self.assertIn("yerrorlines", gp, "every point carries its min-max spread")
            self.assertIn("lw 3 dt 2 lc rgb '#000000'", gp, "std::shared_mutex is the dashed reference")
            spin = (out / "charts" / "throughput-spinlocks.svg.gp").read_text()
            for lock in ("SpinLock", "KeAcquireSpinLock", "tbb::spin_mutex", "tbb::queuing_mutex", "std::mutex"):
                self.assertIn(f"title '{lock}'", spin)
            self.assertNotIn("title 'tbb::spin_rw_mutex'", spin)
            rw = (out / "charts" / "uncontended-rw.svg.gp").read_text()
            self.assertIn("critical region enter+leave", rw)
            self.assertIn("title 'shared'", rw)
            self.assertIn("title 'exclusive'", rw)
            self.assertIn("title 'shared, region already held'", rw)
        finally:
            shutil.rmtree(out)


class OneTable(unittest.TestCase):
    def test_no_other_module_names_a_scenario_id(self):
        modules = sorted((ROOT / "scripts" / "kmlab").glob("*.py"))
        self.assertGreater(len(modules), 5)
        for path in modules:
            if path.name == "scenarios.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and re.fullmatch(r"S\d+", node.value.strip()):
                    self.fail(f"{path.name}:{node.lineno} names scenario {node.value!r}; take it from the table")


if __name__ == "__main__":
    unittest.main()
