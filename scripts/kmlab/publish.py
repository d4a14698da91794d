"""Writing a report folder all at once. The report is rendered into a fresh
folder beside the target (with a copy of the target's inputs: raw/,
machine.txt, run.log, failures.txt), and only when every step succeeded is
it renamed into place, the earlier folder removed after. A failing step
leaves the earlier report byte for byte as it was and says which step
failed; no stale chart survives a re-render, since the folder is replaced
whole.

Also here: how a path is written into anything a report keeps (never an
absolute path of the machine that made it)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from . import ROOT
from .report import render_report
from .results import LabError

# What render_report writes; everything else in a report folder is input.
OUTPUTS = ("charts", "report.md", "report.html", "sources.txt")


def portable(path) -> str:
    """A path as a report may keep it: relative to the repository when it is
    inside, else just its name."""
    p = Path(path).absolute()
    try:
        return str(p.relative_to(ROOT.absolute()))
    except ValueError:
        return p.name


def is_report_folder(d: Path) -> bool:
    return (d / "report.md").exists() or (d / "raw").is_dir() or (d / "machine.txt").exists()


def check_target(out: Path, inputs: list[Path]):
    """An existing --out is replaced whole, so it must be a report (or empty)."""
    if out.exists():
        if not out.is_dir():
            raise LabError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not is_report_folder(out) and out.resolve() not in [i.resolve() for i in inputs]:
            raise LabError(f"{out} exists and is not a kmlab report folder; it would be replaced whole: "
                           f"choose another --out")


def publish(inputs: list[Path], out: Path, failures: list[str] | None = None,
            sources: list[str] | None = None) -> str:
    """Renders the report of `inputs` into `out`, atomically; returns the
    summary table."""
    out = Path(out)
    check_target(out, inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.rendering-", dir=out.parent))
    try:
        if len(inputs) == 1 and inputs[0].is_dir():
            for entry in inputs[0].iterdir():
                if entry.name in OUTPUTS or entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    shutil.copytree(entry, stage / entry.name)
                else:
                    shutil.copy2(entry, stage / entry.name)
        else:
            (stage / "sources.txt").write_text("".join(portable(i) + "\n" for i in inputs))
        summary = render_report(inputs, stage, failures,
                                sources=sources or [f"`{portable(i)}`" for i in inputs])
    except LabError as e:
        shutil.rmtree(stage, ignore_errors=True)
        kept = f"the earlier report in {out} is untouched" if out.exists() else f"nothing was written to {out}"
        raise LabError(f"{e}; {kept}") from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _swap(stage, out)
    return summary


def _swap(stage: Path, out: Path):
    """Puts `stage` where `out` is: two renames on one file system, the old
    folder deleted only once the new one is in place."""
    if not out.exists():
        stage.rename(out)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    out.rename(old)
    try:
        stage.rename(out)
    except OSError:
        old.rename(out)
        shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
