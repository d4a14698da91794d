"""S14 / S15, Driver Verifier's cost: each verifier-on row is paired with the
same lock's off row of the run (S1's pair, S3's sweep point) into a cost
ratio on over off, and the report shows it."""

import shutil
import tempfile
import unittest
from pathlib import Path

from fixtures import entry, run_main, write_report_dir
from kmlab import results, scenarios, tables  # noqa: E402


def rows():
    out = []
    for rep in range(3):
        for lock, off, on in (("ExAcquireFastMutex", 20.0, 100.0), ("FastMutex,futex", 18.0, 90.0)):
            out.append(entry(f"BM_LockUnlock<{lock}>", rep, real_time=off + rep))
            out.append(entry(f"BM_VerifierLockUnlock<{lock}>", rep, real_time=on + rep))
    return out


def contended():
    out = []
    for rep in range(3):
        out.append(entry("BM_Contended<ExAcquireFastMutex>/threads:2/cs_ns:50", rep, ops_per_s=4e6 + rep))
        out.append(entry("BM_VerifierContended<ExAcquireFastMutex>/threads:2/cs_ns:50", rep, ops_per_s=1e6 + rep))
    return out


class VerifierCost(unittest.TestCase):
    def test_scenarios_and_pairing(self):
        self.assertEqual(scenarios.FAMILY_SCENARIO["BM_VerifierLockUnlock"], "S14")
        self.assertEqual(scenarios.FAMILY_SCENARIO["BM_VerifierContended"], "S15")
        self.assertEqual(scenarios.SCENARIO_BY_ID["S14"].binary, "uncontended")
        self.assertEqual(scenarios.SCENARIO_BY_ID["S15"].binary, "contention")

    def test_report_shows_on_off_ratios(self):
        d = Path(tempfile.mkdtemp())
        try:
            write_report_dir(d, {"S1": [r for r in rows() if "Verifier" not in r["name"]],
                                 "S14": [r for r in rows() if "Verifier" in r["name"]],
                                 "S3": [r for r in contended() if "Verifier" not in r["name"]],
                                 "S15": [r for r in contended() if "Verifier" in r["name"]]})
            rc, out, err = run_main(["report", str(d)])
            self.assertEqual(rc, 0, err)
            md = (d / "report.md").read_text()
            self.assertIn("### S14: Driver Verifier's cost, uncontended", md)
            self.assertIn("**BM_VerifierLockUnlock vs BM_LockUnlock**", md)
            # median off 21, on 101: the verifier costs 101/21 = 4.81x.
            self.assertIn("| ExAcquireFastMutex | 21.00 | 101 | 4.81x [no 95% CI] |", md)
            self.assertIn("### S15: Driver Verifier's cost, contended", md)
            # Throughputs: the cost is off over on, 4e6/1e6 = 4x.
            self.assertIn("| ExAcquireFastMutex | 4.00M | 1.00M | 4.00x [no 95% CI] |", md)
        finally:
            shutil.rmtree(d)

    def test_an_on_row_without_its_off_row_says_so(self):
        ds = results.Dataset()
        for r in rows():
            if "Verifier" in r["name"]:
                fam, lock, params = results.parse_name(r["name"])
                ds.records.append(results.Record(fam, lock, params, {"real_time": [r["real_time"]]}))
        groups = tables.scenario_groups(ds, scenarios.SCENARIO_BY_ID["S14"])
        self.assertEqual(len(groups), 1)
        self.assertTrue(all(row[1] == "- (not run)" and row[3] == "-" for row in groups[0].rows))


if __name__ == "__main__":
    unittest.main()
