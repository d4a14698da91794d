"""The report: report.md and a self-contained report.html (charts inline).
Verdicts first (one answer per question, with intervals, and what to use),
then the environment and its warnings, the summary table, what ran, the
charts, and last the full per-scenario tables (collapsed in the HTML).

render_report writes into the folder it is given and names the step that
failed; publish.py gives it a fresh folder and swaps it in whole."""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path

from .charts import render_charts
from .environment import facts, warnings
from .results import LabError, load_report_dirs
from .scenarios import SCENARIOS
from .stats import repetitions_needed
from .tables import RATIO_NOTE, markdown, scenario_groups, summary_table
from .verdicts import CONVENTION, targets_table, verdicts

TITLE = "kmlab benchmark report"


def _step(name, fn, *args):
    """Runs one rendering step; a failure names it."""
    try:
        return fn(*args)
    except LabError as e:
        raise LabError(f"step '{name}' failed: {e}") from None
    except (OSError, ValueError, KeyError, ZeroDivisionError) as e:
        raise LabError(f"step '{name}' failed: {type(e).__name__}: {e}") from None


def _intervals_note(ds) -> str:
    reps = min((r.repetitions for r in ds.records), default=0)
    need = repetitions_needed(0.05)
    if reps < need:
        return (f"No intervals: {reps} repetition(s) per benchmark, and a 95% interval needs {need}; the ratios are "
                f"of single medians.")
    return CONVENTION


def render_report(dirs: list[Path], out_dir: Path, failures: list[str] | None = None,
                  sources: list[str] | None = None) -> str:
    ds = _step("loading results", load_report_dirs, dirs)
    if not ds.records:
        raise LabError("no benchmark results to report")
    failures = list(failures or []) + ds.errors
    charts = _step("charts", render_charts, ds, out_dir)
    answers, use = _step("verdicts", verdicts, ds)
    env = _step("environment", warnings, ds)
    # The run ends with the summary table and, where the run checked any, the targets' PASS / FAIL lines.
    checks = [c for v in answers for c in v.checks]
    summary = _step("summary table", summary_table, ds) + targets_table(checks)
    groups = {s.id: _step(f"tables ({s.id})", scenario_groups, ds, s) for s in SCENARIOS}
    present = {r.scenario for r in ds.records}
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    origin = ", ".join(sources or [d.name for d in dirs])
    doc = dict(ds=ds, answers=answers, use=use, env=env, summary=summary, groups=groups, present=present,
               charts=charts, failures=failures, when=when, origin=origin, note=_intervals_note(ds), checks=checks)
    _step("report.md", lambda: (out_dir / "report.md").write_text(_markdown(**doc)))
    _step("report.html", lambda: (out_dir / "report.html").write_text(_html(out_dir, **doc)))
    return summary


def _ran(s, present) -> str:
    return "measured" if s.id in present else "not run"


TARGETS_HEADER = ["target", "measured", "wanted", "result"]


def _markdown(ds, answers, use, env, summary, groups, present, charts, failures, when, origin, note, checks) -> str:
    md = [f"# {TITLE}", "", f"Generated {when} from {origin}.", "", "## Verdicts", "", note, ""]
    md += [f"- **{v.question}.** {v.text}" for v in answers]
    md += ["", f"**What to use.** {use}", ""]
    if checks:
        esc = (lambda c: c.replace("|", "\\|"))  # noqa: E731
        md += ["## Targets", "", "| " + " | ".join(TARGETS_HEADER) + " |", "|---|---|---|---|"]
        md += [f"| {esc(c.what)} | {esc(c.measured)} | {esc(c.target)} | **{c.result}**"
               + (f" ({esc(c.doubt)})" if c.doubt else "") + " |" for c in checks] + [""]
    md += ["## Environment", ""]
    md += [f"> **Warning:** {w}" + "  " for w in env] + ([""] if env else [])
    md += [f"- {f}" for f in facts(ds)]
    md += ["", "## Summary", "", "```", summary.strip("\n"), "```", "", "## What ran", ""]
    md += [f"- {s.id} {s.title}: {_ran(s, present)}" for s in SCENARIOS]
    if failures:
        md += ["", "## Failures", ""] + [f"- {f}" for f in failures]
    md += ["", "## Charts", ""]
    for title, path in charts:
        md += [f"![{title}]({path})", ""]
    md += ["## Tables", "", RATIO_NOTE, ""]
    for s in SCENARIOS:
        if groups[s.id]:
            md += [f"### {s.id}: {s.title}", ""] + ([s.note, ""] if s.note else [])
            for g in groups[s.id]:
                md += markdown(g)
    return "\n".join(md) + "\n"


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em;line-height:1.4}"
         "table{border-collapse:collapse;font-size:0.85em;margin:0.3em 0 1em}td,th{border:1px solid #ccc;"
         "padding:2px 6px}td:nth-child(n+2){text-align:right}th{background:#f3f3f3}svg{max-width:100%;height:auto}"
         ".warn{background:#fff4e0;border-left:4px solid #e69500;padding:0.4em 0.8em;margin:0.3em 0}"
         ".verdicts li{margin-bottom:0.5em}details{margin:0.4em 0}summary{cursor:pointer;font-weight:bold}"
         "pre{background:#f6f6f6;padding:0.6em;overflow-x:auto}")


def _html(out_dir, ds, answers, use, env, summary, groups, present, charts, failures, when, origin, note,
          checks) -> str:
    e = html.escape
    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>{TITLE}</title><style>{STYLE}</style></head><body>",
         f"<h1>{TITLE}</h1><p>Generated {e(when)} from {e(origin)}.</p>",
         f"<h2>Verdicts</h2><p>{e(note)}</p><ul class='verdicts'>"]
    h += [f"<li><b>{e(v.question)}.</b> {e(v.text)}</li>" for v in answers]
    h.append(f"</ul><p><b>What to use.</b> {e(use)}</p>")
    if checks:
        h.append("<h2>Targets</h2><table><tr>" + "".join(f"<th>{c}</th>" for c in TARGETS_HEADER) + "</tr>")
        h += [f"<tr><td>{e(c.what)}</td><td>{e(c.measured)}</td><td>{e(c.target)}</td><td><b>{c.result}</b>"
              + (f" ({e(c.doubt)})" if c.doubt else "") + "</td></tr>" for c in checks]
        h.append("</table>")
    h.append("<h2>Environment</h2>")
    h += [f"<div class='warn'><b>Warning:</b> {e(w)}</div>" for w in env]
    h.append("<ul>" + "".join(f"<li>{e(f.replace('**', ''))}</li>" for f in facts(ds)) + "</ul>")
    h.append(f"<h2>Summary</h2><pre>{e(summary.strip(chr(10)))}</pre>")
    h.append("<h2>What ran</h2><ul>" + "".join(f"<li>{s.id} {e(s.title)}: {_ran(s, present)}</li>"
                                             for s in SCENARIOS) + "</ul>")
    if failures:
        h.append("<h2>Failures</h2><ul>" + "".join(f"<li>{e(f)}</li>" for f in failures) + "</ul>")
    h.append("<h2>Charts</h2>")
    for title, path in charts:
        svg = (out_dir / path).read_text()
        h.append(f"<figure>{svg[svg.find('<svg'):]}<figcaption>{e(title)}</figcaption></figure>")
    h.append(f"<h2>Tables</h2><p>{e(RATIO_NOTE)}</p>")
    for s in SCENARIOS:
        if not groups[s.id]:
            continue
        rows = sum(len(g.rows) for g in groups[s.id])
        h.append(f"<details><summary>{s.id}: {e(s.title)} ({rows} rows)</summary>")
        if s.note:
            h.append(f"<p>{e(s.note)}</p>")
        for g in groups[s.id]:
            h.append(f"<p><b>{e(g.title)}</b></p><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in g.header) + "</tr>")
            h += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in g.rows]
            h.append("</table>")
        h.append("</details>")
    h.append("</body></html>")
    return "\n".join(h)
