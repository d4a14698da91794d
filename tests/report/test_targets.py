"""Issue 20's targets, checked from a run's own figures: each check states the
figure and the target and says PASS or FAIL as the figures say (other
figures, other results); a figure the run lacks is NOT MEASURED with the
scenario to run; a starved handoff (no operation in a repetition) is a FAIL,
not a crash; the report carries a Targets table and the run's summary the
PASS / FAIL lines; S16's chart keeps its axis label and spread."""

import json
import shutil
import tempfile
import unittest
from pathlib import Path

from fixtures import entry, run_main, write_report_dir
from kmlab import charts, results, scenarios, verdicts

NT_KMUTEX = "KeWaitForSingleObject(KMUTEX)"


def five(name, values: dict, spread=0.01):
    return [entry(name, i, **{k: (v * (1 + spread * (i - 2)) if v else v) for k, v in values.items()})
            for i in range(5)]


def run_rows(kmutex_ns=20.0, fast_ns=6.0, s7_kmutex=110e3, s9_kevent=70e3, one_core_kmutex=120e3,
             one_core_zeros=0):
    """S1, S7, S9 and S16 rows as a run writes them, by scenario id; std::mutex at 12 ns, the raw futex at 100k
    round trips/s in every binary."""
    rows = {"S1": [], "S7": [], "S9": [], "S16": []}
    for lock, ns in ((NT_KMUTEX, kmutex_ns), ("FastMutex,futex", fast_ns), ("std::mutex", 12.0)):
        rows["S1"] += five(f"BM_LockUnlock<{lock}>", {"real_time": ns})
    rows["S7"] += five(f"BM_Handoff<{NT_KMUTEX}>", {"ops_per_s": s7_kmutex, "vcsw_per_op": 1.0})
    rows["S7"] += five("BM_Handoff<std::mutex>", {"ops_per_s": 4e6})
    rows["S7"] += five("BM_HandoffFloor<raw_futex>", {"ops_per_s": 100e3})
    rows["S9"] += five("BM_EventPingPong<dispatcher>", {"ops_per_s": s9_kevent})
    rows["S9"] += five("BM_EventPingPong<raw_futex>", {"ops_per_s": 100e3})
    kmutex = five(f"BM_OneCore<{NT_KMUTEX}>", {"ops_per_s": one_core_kmutex, "vcsw_per_op": 1.0, "cpu": 0.0})
    for e in kmutex[:one_core_zeros]:
        e["ops_per_s"] = 0.0
    rows["S16"] += kmutex
    for lock, rate in (("KMutex,dispatcher", 110e3), ("std::mutex", 300.0), ("KEVENT", 95e3), ("raw_futex", 100e3)):
        rows["S16"] += five(f"BM_OneCore<{lock}>", {"ops_per_s": rate, "cpu": 0.0})
    return rows


def instructions(kmutex=150, fast=34, guarded=36, fetch_add=4):
    return {NT_KMUTEX: kmutex, "ExAcquireFastMutex": fast, "KeAcquireGuardedMutex": guarded, "fetch_add": fetch_add,
            "std::mutex": 68}


def dataset(rows_by_id, inst=None):
    rows = [r for rs in rows_by_id.values() for r in rs]
    ds = results.Dataset(records=results.records_from({"context": {}, "benchmarks": rows}, machine="m"),
                         machines={"m": {"host": "m", "cores": "2"}})
    if inst is not None:
        ds.instructions["m"] = inst
    return ds


def checks_of(ds):
    answers, _ = verdicts.verdicts(ds)
    v = next(v for v in answers if v.key == "targets")
    return v, {c.what.split(",")[0] + ("#inst" if "instructions" in c.what else ""): c for c in v.checks}


class Targets(unittest.TestCase):
    def test_figures_that_meet_every_target_pass(self):
        v, c = checks_of(dataset(run_rows(), instructions()))
        self.assertEqual([x.result for x in v.checks], ["PASS"] * 8)
        self.assertTrue(v.text.startswith("8 of 8 checked targets met"))
        k = c["KeWaitForSingleObject(KMUTEX) + KeReleaseMutex"]
        self.assertIn("20 ns per pair, 1.67x std::mutex [", k.measured)
        self.assertEqual(k.target, "<= 2x std::mutex")
        self.assertIn("0.50x std::mutex [", c["FastMutex<T"].measured)
        # The loop's own instructions (what the fetch_add floor counts besides its one) are taken off.
        self.assertEqual(c["KeWaitForSingleObject(KMUTEX) + KeReleaseMutex#inst"].measured,
                         "147 instructions per pair, 150 with the loop's 3")
        self.assertEqual(c["ExAcquireFastMutex + ExReleaseFastMutex#inst"].target, "<= 35 instructions")
        s7 = c["KMUTEX handoff (KeWaitForSingleObject"]
        self.assertIn("110.0k handoffs/s, 1.10x the raw-futex round trips/s [", s7.measured)
        self.assertIn("of S7's interleaved rounds", s7.measured)
        self.assertIn("as before (the sample report at cc10a8f)", s7.target)
        one = c["KMUTEX turn-passing"]
        self.assertIn("120.0k handoffs/s, 1.20x the raw-futex round trips/s [", one.measured)
        self.assertEqual(one.target, ">= 0.5x the raw-futex ping-pong pinned the same way")
        self.assertIn("On the same CPU: KMUTEX through the dispatcher 110.0k handoffs/s", v.text)

    def test_other_figures_fail(self):
        v, c = checks_of(dataset(run_rows(kmutex_ns=36.0, fast_ns=11.0, s7_kmutex=50e3, s9_kevent=30e3,
                                          one_core_kmutex=265.0), instructions(kmutex=463, fast=53, guarded=50)))
        self.assertEqual([x.result for x in v.checks], ["FAIL"] * 8)
        self.assertIn("3.00x std::mutex [", c["KeWaitForSingleObject(KMUTEX) + KeReleaseMutex"].measured)
        self.assertIn("460 instructions per pair", c["KeWaitForSingleObject(KMUTEX) + KeReleaseMutex#inst"].measured)
        self.assertIn("265 handoffs/s, 0.003x the raw-futex round trips/s", c["KMUTEX turn-passing"].measured)
        self.assertIn("target >= 0.5x the raw-futex ping-pong pinned the same way: FAIL.", v.text)

    def test_an_estimate_on_the_right_side_with_an_interval_across_says_so(self):
        _, c = checks_of(dataset(run_rows(kmutex_ns=23.5), instructions()))
        k = c["KeWaitForSingleObject(KMUTEX) + KeReleaseMutex"]
        self.assertEqual(k.result, "PASS")
        # 1.96x with a 1% spread around each figure: the interval reaches past 2x.
        rows = run_rows()
        rows["S1"] = [r for r in rows["S1"] if NT_KMUTEX not in r["name"]]
        rows["S1"] += [entry(f"BM_LockUnlock<{NT_KMUTEX}>", i, real_time=v)
                       for i, v in enumerate((22.0, 23.0, 23.5, 24.5, 25.0))]
        _, c = checks_of(dataset(rows, instructions()))
        k = c["KeWaitForSingleObject(KMUTEX) + KeReleaseMutex"]
        self.assertEqual((k.result, k.doubt), ("PASS", "the 95% interval reaches past it"))

    def test_a_starved_handoff_fails_without_an_interval(self):
        _, c = checks_of(dataset(run_rows(one_core_kmutex=200.0, one_core_zeros=3), instructions()))
        one = c["KMUTEX turn-passing"]
        self.assertEqual(one.result, "FAIL")
        self.assertTrue(one.measured.startswith("0 handoffs/s, 0.000x the raw-futex round trips/s (100.0k"),
                        one.measured)

    def test_what_the_run_lacks_is_not_measured(self):
        rows = run_rows()
        del rows["S16"]
        v, c = checks_of(dataset(rows))  # no callgrind either
        self.assertEqual(c["KMUTEX turn-passing"].result, "NOT MEASURED")
        self.assertIn("run S16", c["KMUTEX turn-passing"].measured)
        self.assertEqual(c["KeWaitForSingleObject(KMUTEX) + KeReleaseMutex#inst"].result, "NOT MEASURED")
        self.assertTrue(v.text.startswith("4 of 4 checked targets met"), v.text)
        v, _ = checks_of(dataset({"S2": five("BM_Floor<fetch_add>", {"real_time": 5.0})}))
        self.assertEqual(v.text, "Not measured in this run: needs S1,S7,S9,S16 "
                                 "(scripts/lab run --filter S1,S7,S9,S16).")

    def test_a_report_without_the_floor_in_s7_takes_s9s_and_says_so(self):
        rows = run_rows()
        rows["S7"] = [r for r in rows["S7"] if "HandoffFloor" not in r["name"]]
        _, c = checks_of(dataset(rows))
        self.assertIn("of S9 (another binary: not interleaved)", c["KMUTEX handoff (KeWaitForSingleObject"].measured)

    def test_the_sample_report_is_no_slower_than_itself(self):
        d = Path(__file__).resolve().parents[2] / "reports" / "2026-12-07-vm-cc10a8f"
        if not d.exists():
            self.skipTest("the sample report is not stored")
        _, c = checks_of(results.load_report_dirs([d]))
        self.assertEqual(c["KMUTEX handoff (KeWaitForSingleObject"].result, "PASS")
        self.assertEqual(c["KEVENT ping-pong over the raw-futex ping-pong (S9)"].result, "PASS")


class TargetsInTheReport(unittest.TestCase):
    @unittest.skipUnless(shutil.which("gnuplot"), "gnuplot is not installed")
    def test_the_report_has_the_targets_table_and_the_one_core_chart(self):
        tmp = Path(tempfile.mkdtemp())
        try:
            d = write_report_dir(tmp / "r", run_rows(one_core_kmutex=265.0))
            (d / "raw" / "instructions.json").write_text(json.dumps({"unit": "x", "locks": instructions()}))
            rc, out, err = run_main(["report", str(d)])
            self.assertEqual(rc, 0, err)
            line = next(l for l in out.splitlines() if l.startswith("KMUTEX turn-passing"))
            self.assertRegex(line, r"\(S16\) +FAIL +>= 0.5x the raw-futex ping-pong pinned the same way; 265 "
                                   r"handoffs/s", "the summary a run ends with")
            md = (d / "report.md").read_text()
            self.assertIn("## Targets", md)
            self.assertIn("| ExAcquireFastMutex + ExReleaseFastMutex, instructions per pair (callgrind) | 31 "
                          "instructions per pair, 34 with the loop's 3 | <= 35 instructions | **PASS** |", md)
            self.assertIn("### S16: handoff on one core", md)
            self.assertIn("cost vs raw_futex [95% CI]", md)
            self.assertIn("<h2>Targets</h2>", (d / "report.html").read_text())
            gp = (d / "charts" / "one-core.svg.gp").read_text()
            self.assertIn("operations per second (handoffs; round trips for KEVENT and raw_futex)", gp)
            self.assertIn("xerrorbars", gp, "every row carries its min-max spread")
            self.assertIn("raw futex round trip", (d / "charts" / "handoff.svg.gp").read_text())
        finally:
            shutil.rmtree(tmp)

    def test_s16_is_judged_against_the_raw_futex(self):
        self.assertEqual(scenarios.reference_for("BM_OneCore"), "raw_futex")
        self.assertEqual(scenarios.FAMILY_SCENARIO["BM_OneCore"], "S16")
        self.assertIn("one-core", charts.DRAWERS)


if __name__ == "__main__":
    unittest.main()
