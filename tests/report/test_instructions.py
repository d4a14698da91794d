"""Instruction counts (S1, rule 9): every lock the instructions binary lists
is counted at two pair counts, in parallel, and each lock gets the per-pair
difference of its own two runs; a failed callgrind run is one clear error."""

import os
import shutil
import stat
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import fixtures  # noqa: F401  (puts scripts/ on the path)
from kmlab import run
from kmlab.results import LabError

LOCKS = ["std::mutex", "Resource (shared)", "Resource (shared, in a region)", "critical_region"]


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


class CountInstructions(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())
        self.binary = executable(self.dir / "instructions", "#!/bin/sh\nprintf '%s\\n' " +
                                 " ".join(f"'{l}'" for l in LOCKS) + "\n")
        # A stand-in for valgrind: 1000 instructions of start-up plus len(lock name) per pair.
        bin_dir = self.dir / "bin"
        bin_dir.mkdir()
        executable(bin_dir / "valgrind", """#!/usr/bin/env python3
import sys
args = sys.argv[1:]
out = next(a.split("=", 1)[1] for a in args if a.startswith("--callgrind-out-file="))
name, pairs = args[-2], int(args[-1])
if name == "broken":
    sys.exit("valgrind: boom")
open(out, "w").write(f"events: Ir\\ntotals: {1000 + pairs * len(name)}\\n")
""")
        self.path = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_each_lock_gets_the_difference_of_its_own_two_runs(self):
        before = set(Path(tempfile.gettempdir()).glob("kmlab-callgrind-*"))
        with mock.patch.dict(os.environ, self.path):
            counts = run.count_instructions(self.binary)
        self.assertEqual(counts["locks"], {l: float(len(l)) for l in LOCKS})
        self.assertEqual(set(Path(tempfile.gettempdir()).glob("kmlab-callgrind-*")), before, "no output file is left")

    def test_a_failed_run_names_the_lock(self):
        executable(self.binary, "#!/bin/sh\nprintf 'std::mutex\\nbroken\\n'\n")
        with mock.patch.dict(os.environ, self.path), self.assertRaises(LabError) as e:
            run.count_instructions(self.binary)
        self.assertIn("callgrind failed for broken", str(e.exception))
        self.assertIn("boom", str(e.exception))


if __name__ == "__main__":
    unittest.main()
