"""Benchmark results: Google Benchmark JSON and report folders (raw/S*.json,
machine.txt, raw/instructions.json) become Records grouped in a Dataset.
LabError, the one kind of error the command line reports, lives here too."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import latency
from .scenarios import FAMILY_SCENARIO


class LabError(Exception):
    """A problem with the user's input or environment: one message, exit 2."""


NAME_RE = re.compile(r"^(?P<family>BM_[A-Za-z]+)(?:<(?P<lock>[^>]*)>)?(?P<rest>(?:/[^/]+)*)$")


@dataclass
class Record:
    family: str
    lock: str
    params: tuple            # (("threads", 16), ("cs_ns", 50)), in name order
    values: dict             # metric -> list of values over repetitions
    source: str = ""         # file it came from
    machine: str = ""        # host label (merged reports)
    histograms: list = field(default_factory=list)  # latency.Histogram per repetition, where kept

    @property
    def repetitions(self) -> int:
        return max((len(v) for v in self.values.values()), default=0)

    @property
    def scenario(self) -> str:
        return FAMILY_SCENARIO.get(self.family, "?")

    def param(self, key, default=None):
        return dict(self.params).get(key, default)

    def key(self):
        return (self.family, self.lock, self.params)

    def label(self) -> str:
        p = "/".join(f"{k}:{v}" for k, v in self.params)
        return f"{self.family}<{self.lock}>" + (f"/{p}" if p else "")


def parse_name(name: str):
    """'BM_Contended<FastMutex,futex>/threads:16/cs_ns:50/iterations:1/manual_time'
    -> ('BM_Contended', 'FastMutex,futex', (('threads', 16), ('cs_ns', 50)))."""
    m = NAME_RE.match(name)
    if not m:
        return None
    params = []
    for part in m.group("rest").split("/")[1:]:
        if ":" not in part:
            continue  # manual_time, real_time
        k, v = part.split(":", 1)
        if k in ("iterations", "repeats", "min_time"):
            continue  # Google Benchmark's run settings, not benchmark arguments
        try:
            params.append((k, int(v)))
        except ValueError:
            params.append((k, v))
    return m.group("family"), m.group("lock") or "", tuple(params)


def load_benchmark_json(path: Path) -> dict:
    """Reads one Google Benchmark JSON file, or raises LabError naming it."""
    if not path.exists():
        raise LabError(f"{path}: no such file")
    text = path.read_text(errors="replace")
    if not text.strip():
        raise LabError(f"{path}: the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LabError(f"{path}: not valid JSON (truncated or corrupt?): {e.msg} at line {e.lineno}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list) or "context" not in data:
        raise LabError(f"{path}: not a Google Benchmark results file (no 'context' and 'benchmarks')")
    return data


def records_from(data: dict, source: str = "", machine: str = "") -> list[Record]:
    """Groups the per-repetition entries of one results file into Records."""
    by_key: dict = {}
    for b in data["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        parsed = parse_name(b.get("run_name") or b.get("name", ""))
        if parsed is None:
            continue
        rec = by_key.get(parsed)
        if rec is None:
            rec = by_key[parsed] = Record(parsed[0], parsed[1], parsed[2], {}, source, machine)
        try:
            hist = latency.parse(b.get("label", ""))
        except ValueError as e:
            raise LabError(f"{source or 'results'}: {b.get('name')}: unreadable latency histogram ({e})") from None
        if hist is not None and hist.counts:
            # The percentiles are read from the whole histogram, by the rule
            # the harness uses, rather than trusted from the counters.
            rec.histograms.append(hist)
            b = dict(b, **{k: float(hist.quantile(q)) for k, q in latency.PERCENTILES})
        for k, v in b.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in (
                    "repetition_index", "threads", "repetitions", "family_index", "per_family_instance_index"):
                value = float(v)
                if k in ("real_time", "cpu_time"):
                    value = to_ns(value, b.get("time_unit", "ns"))
                rec.values.setdefault(k, []).append(value)
    return list(by_key.values())


def errors_from(data: dict) -> list[str]:
    return [f"{b.get('name')}: {b.get('error_message', 'error')}" for b in data["benchmarks"] if b.get("error_occurred")]


def errored_keys_from(data: dict) -> dict:
    """{Record.key(): error message} for the benchmarks that reported an error."""
    out = {}
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            parsed = parse_name(b.get("run_name") or b.get("name", ""))
            if parsed is not None:
                out[parsed] = b.get("error_message", "error")
    return out


def to_ns(value: float, unit: str) -> float:
    return value * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}.get(unit, 1)


@dataclass
class Dataset:
    records: list[Record] = field(default_factory=list)
    machines: dict = field(default_factory=dict)      # label -> machine dict
    contexts: dict = field(default_factory=dict)      # label -> benchmark context
    instructions: dict = field(default_factory=dict)  # label -> {lock: count}
    errors: list[str] = field(default_factory=list)
    errored: dict = field(default_factory=dict)       # Record.key() -> error message
    file_contexts: list = field(default_factory=list)  # (label, file name, benchmark context) per file


def parse_machine_txt(path: Path) -> dict:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if ": " in line:
                k, v = line.split(": ", 1)
                out[k] = v
    return out


def load_report_dirs(dirs: list[Path]) -> Dataset:
    ds = Dataset()
    for d in dirs:
        if d.is_file():
            files, label = [d], d.stem
            machine = {}
        else:
            if not d.exists():
                raise LabError(f"{d}: no such report folder or results file")
            files = sorted((d / "raw").glob("S*.json"))
            if not files:
                raise LabError(f"{d}: no raw/S*.json results in this folder")
            machine = parse_machine_txt(d / "machine.txt")
            label = machine.get("host", d.name)
        if label in ds.machines:
            label = f"{label} ({d.name})"
        for f in files:
            data = load_benchmark_json(f)
            ds.contexts.setdefault(label, data["context"])
            ds.records.extend(records_from(data, str(f), label))
            ds.errors.extend(errors_from(data))
            ds.errored.update(errored_keys_from(data))
            ds.file_contexts.append((label, f.name, data["context"]))
        if not machine:
            ctx = ds.contexts.get(label, {})
            machine = {"host": ctx.get("hostname", label), "cpu_model": ctx.get("cpu_model", "?"),
                       "cores": ctx.get("online_cpus", ctx.get("num_cpus", "?")), "kernel": ctx.get("kernel", "?"),
                       "commit": ctx.get("kmlab_commit", "?")}
        ds.machines[label] = machine
        inst = d / "raw" / "instructions.json" if d.is_dir() else None
        if inst and inst.exists():
            try:
                ds.instructions[label] = json.loads(inst.read_text())["locks"]
            except (json.JSONDecodeError, KeyError):
                raise LabError(f"{inst}: not an instruction-count file") from None
    return ds
