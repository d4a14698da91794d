"""Reports are written whole: a step that fails (here gnuplot, stubbed on
PATH to break part-way) leaves the earlier report byte for byte as it was and
names the step; a re-render leaves no stale file; flags are refused before
scripts/lab builds anything; no absolute path gets into what a run keeps."""

import json
import os
import shutil
import stat
import subprocess
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from fixtures import ROOT, contention_rows, entry, run_main, tree_bytes, write_report_dir
from kmlab import publish, run

REAL_GNUPLOT = shutil.which("gnuplot")


def stub(folder: Path, name: str, script: str) -> Path:
    p = folder / name
    p.write_text("#!/bin/sh\n" + script)
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return p


@unittest.skipUnless(REAL_GNUPLOT, "gnuplot is not installed")
class AtomicReport(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())
        self.report = write_report_dir(self.dir / "report", {"S3": contention_rows(reps=5)})
        rc, _, err = run_main(["report", str(self.report)])
        self.assertEqual(rc, 0, err)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_a_failing_gnuplot_leaves_the_earlier_report_byte_identical(self):
        before = tree_bytes(self.report)
        self.assertIn("report.md", before)
        bin_dir = self.dir / "bin"
        bin_dir.mkdir()
        # The real gnuplot for the first four calls (two charts, SVG and PNG), then a failure.
        stub(bin_dir, "gnuplot", f'n=$(cat "{self.dir}/count" 2>/dev/null || echo 0); n=$((n+1)); '
                                 f'echo $n > "{self.dir}/count"\n'
                                 f'if [ $n -ge 5 ]; then echo "stub: broken on call $n" >&2; exit 1; fi\n'
                                 f'exec "{REAL_GNUPLOT}" "$@"\n')
        with mock.patch.dict(os.environ, {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}):
            rc, _, err = run_main(["report", str(self.report)])
        self.assertEqual(rc, 2, err)
        self.assertIn("step 'charts' failed", err)
        self.assertIn("gnuplot failed", err)
        self.assertIn("stub: broken on call 5", err)
        self.assertIn("untouched", err)
        self.assertEqual(tree_bytes(self.report), before, "not one byte of the earlier report changed")
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), ["bin", "count", "report"],
                         "no half-rendered folder is left beside it")

    def test_out_into_an_existing_report_leaves_no_stale_chart(self):
        out = write_report_dir(self.dir / "other", {"S3": contention_rows(reps=1)})
        (out / "charts").mkdir()
        (out / "charts" / "stale-chart.svg").write_text("<svg/>")
        (out / "report.md").write_text("old")
        rc, _, err = run_main(["report", str(self.report), "--out", str(out)])
        self.assertEqual(rc, 0, err)
        self.assertFalse((out / "charts" / "stale-chart.svg").exists())
        self.assertIn("## Verdicts", (out / "report.md").read_text())
        self.assertEqual((out / "raw" / "S3.json").read_bytes(), (self.report / "raw" / "S3.json").read_bytes(),
                         "the folder is the new report whole, its inputs included")

    def test_out_into_a_folder_that_is_not_a_report_is_refused(self):
        other = self.dir / "documents"
        other.mkdir()
        (other / "thesis.tex").write_text("keep me")
        rc, _, err = run_main(["report", str(self.report), "--out", str(other)])
        self.assertEqual(rc, 2)
        self.assertIn("not a kmlab report folder", err)
        self.assertEqual((other / "thesis.tex").read_text(), "keep me")

    def test_several_inputs_merge_into_a_new_folder(self):
        second = write_report_dir(self.dir / "second", {"S3": contention_rows(reps=2)},
                                  machine="host: otherhost\ncores: 4\n")
        rc, _, err = run_main(["report", str(self.report), str(second), "--out", str(self.dir / "merged")])
        self.assertEqual(rc, 0, err)
        self.assertEqual((self.dir / "merged" / "sources.txt").read_text().split(), ["report", "second"])


class Paths(unittest.TestCase):
    def test_paths_are_kept_relative_to_the_repository_or_as_a_name(self):
        self.assertEqual(publish.portable(ROOT / "build" / "release" / "bin" / "contention"),
                         "build/release/bin/contention")
        self.assertEqual(publish.portable("/somewhere/else/contention"), "contention")

    def test_the_results_json_keeps_no_absolute_executable_path(self):
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "S1.json"
            f.write_text(json.dumps({"context": {"executable": str(ROOT / "build/release/bin/uncontended")},
                                     "benchmarks": [entry("BM_LockUnlock<std::mutex>", 0, real_time=1.0)]}))
            run.sanitize_results(f)
            data = json.loads(f.read_text())
            self.assertEqual(data["context"]["executable"], "build/release/bin/uncontended")
            self.assertEqual(data["benchmarks"][0]["real_time"], 1.0)


class FlagsBeforeBuild(unittest.TestCase):
    def test_scripts_lab_run_refuses_a_bad_flag_before_it_configures(self):
        with tempfile.TemporaryDirectory() as d:
            marker = Path(d) / "built"
            for tool in ("cmake", "dpkg-query", "apt-get"):
                stub(Path(d), tool, f'echo "$0 $*" >> "{marker}"\nexit 0\n')
            env = dict(os.environ, PATH=f"{d}{os.pathsep}{os.environ['PATH']}")
            for flags, says in ((["--bogus"], "unrecognized arguments: --bogus"),
                                (["--repetitions", "0"], "at least 1"),
                                (["--filter", "S42"], "unknown scenario S42")):
                r = subprocess.run([str(ROOT / "scripts" / "lab"), "run", *flags], env=env, capture_output=True,
                                   text=True, timeout=60)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(says, r.stderr)
                self.assertFalse(marker.exists(), f"{flags}: something ran before the flags were checked")


if __name__ == "__main__":
    unittest.main()
