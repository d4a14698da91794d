"""The command line: run, report and compare, as `scripts/lab` passes them on.
Bad input is one `lab: error:` line and exit status 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import ROOT
from .compare import compare
from .report import render_report
from .results import LabError
from .run import run_suite


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="scripts/lab", description="kmlab benchmark lab")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the benchmark suite and write a report")
    r.add_argument("--quick", action="store_true", help="short profile for CI smoke runs")
    r.add_argument("--filter", help="comma-separated scenario ids, e.g. S1,S3")
    r.add_argument("--repetitions", type=int, help="repetitions per benchmark")
    r.add_argument("--out", help="report folder (default reports/<date>-<host>-<commit>)")
    r.add_argument("--build-dir", default=str(ROOT / "build" / "release"))
    rp = sub.add_parser("report", help="re-render a report from stored results (several folders merge)")
    rp.add_argument("dirs", nargs="+")
    rp.add_argument("--out", help="output folder (default: the single input folder)")
    c = sub.add_parser("compare", help="compare two result files or report folders")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--fail-above", type=float, metavar="PCT", help="exit 1 on a significant regression above PCT%%")
    c.add_argument("--alpha", type=float, default=0.05)
    args = p.parse_args(argv)
    try:
        if args.cmd == "run":
            return run_suite(args)
        if args.cmd == "report":
            dirs = [Path(d) for d in args.dirs]
            if args.out:
                out = Path(args.out)
            elif len(dirs) == 1 and dirs[0].is_dir():
                out = dirs[0]
            else:
                raise LabError("several inputs: say where the merged report goes with --out DIR")
            out.mkdir(parents=True, exist_ok=True)
            print(render_report(dirs, out))
            print(f"\nreport: {out / 'report.html'}")
            return 0
        return compare(args)
    except LabError as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return 2
