"""The command line: run, report and compare, as `scripts/lab` passes them on.
Every flag is checked before anything runs (scripts/lab calls
`run --check-flags` before it builds); bad input is one `lab: error:` line
and exit status 2."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from . import ROOT
from .compare import compare
from .publish import publish
from .results import LabError
from .run import check_run_flags, run_suite


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as LabError (one line, status 2, no usage dump)."""

    def error(self, message):
        raise LabError(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {v}")
    return v


def _alpha(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"a significance level lies strictly between 0 and 1, not {text}")
    return v


def _percent(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"a percentage of 0 or more, not {text}")
    return v


def _output(text: str) -> str:
    if text != "-" and not Path(text).absolute().parent.is_dir():
        raise argparse.ArgumentTypeError(f"no folder to write {text} into")
    return text


def parser() -> Parser:
    p = Parser(prog="scripts/lab", description="kmlab benchmark lab")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    r = sub.add_parser("run", help="run the benchmark suite and write a report")
    r.add_argument("--quick", action="store_true", help="short profile for CI smoke runs (4 short repetitions)")
    r.add_argument("--filter", help="comma-separated scenario ids, e.g. S1,S3")
    r.add_argument("--repetitions", type=_positive_int, help="repetitions per benchmark (at least 1; 4 or more "
                                                            "for 95%% intervals)")
    r.add_argument("--out", help="report folder, which must not exist (default reports/<date>-<host>-<commit>)")
    r.add_argument("--build-dir", default=str(ROOT / "build" / "release"))
    r.add_argument("--check-flags", action="store_true", help=argparse.SUPPRESS)
    rp = sub.add_parser("report", help="re-render a report from stored results (several folders merge)")
    rp.add_argument("dirs", nargs="+")
    rp.add_argument("--out", help="output folder, replaced whole (default: the single input folder)")
    c = sub.add_parser("compare", help="compare two report folders or Google Benchmark JSON files")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--fail-above", type=_percent, metavar="PCT",
                   help="exit 1 on a significant regression above PCT%% (change in cost per operation)")
    c.add_argument("--alpha", type=_alpha, default=0.05, help="significance level of the U test (default 0.05)")
    c.add_argument("--json", type=_output, metavar="FILE", help="write the comparison as JSON ('-': stdout)")
    c.add_argument("--csv", type=_output, metavar="FILE", help="write the rows as CSV ('-': stdout)")
    c.add_argument("--allow-missing", action="store_true",
                   help="benchmarks present on one side only are listed but do not fail (errored ones still do)")
    return p


def main(argv=None) -> int:
    try:
        args = parser().parse_args(argv)
        if args.cmd == "run":
            if args.check_flags:
                check_run_flags(args)
                return 0
            return run_suite(args)
        if args.cmd == "report":
            dirs = [Path(d) for d in args.dirs]
            for d in dirs:
                if not d.exists():
                    raise LabError(f"{d}: no such report folder or results file")
            if args.out:
                out = Path(args.out)
            elif len(dirs) == 1 and dirs[0].is_dir():
                out = dirs[0]
            else:
                raise LabError("several inputs: say where the merged report goes with --out DIR")
            print(publish(dirs, out))
            print(f"\nreport: {out / 'report.html'}")
            return 0
        if args.json == "-" and args.csv == "-":
            raise LabError("--json - and --csv - would both write to stdout: give one of them a file")
        return compare(args)
    except LabError as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return 2
