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
        for chart, got in seen.items():
            if chart != "uncontended-instructions":  # drawn from callgrind counts, not records
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
            self.assertEqual(set(drawer_of), expected)
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
