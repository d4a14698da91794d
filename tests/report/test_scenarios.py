"""Tests that scripts/kmlab/scenarios.py is the one place that knows the
scenarios: every benchmark family the binaries register, and every family in
a stored report, maps to a scenario through the table, and to the right one."""

import json
import re
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from kmlab import results, scenarios  # noqa: E402

# A family as the benchmark sources name it: "BM_Floor<fetch_add>", or
# bench_name("BM_Contended", ...) which adds the lock in angle brackets.
REGISTERED = re.compile(r'"(BM_[A-Za-z]+)[<"]')


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


if __name__ == "__main__":
    unittest.main()
