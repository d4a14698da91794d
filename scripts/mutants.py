#!/usr/bin/env python3
"""The mutation run: each tests/mutants/NN-name.patch breaks the production
code one way, and the model suite (CTest label `model`) must report it.

The working tree (git's tracked and untracked-but-not-ignored files,
reports/ left out) is read once, at the start. First the baseline: that copy,
unmutated, must build and pass every test the patches name on their
`# expect:` lines (else exit 2, no mutant run; --no-baseline skips it).
Then, for every patch, in name order:
  1. the copy in <work>/tree is brought back to that content; only files
     whose content differs are rewritten, so their new mtime makes the
     incremental build recompile exactly them;
  2. the patch is applied there (`patch -p1`); one that no longer applies is
     a failure of the run, named;
  3. Release, tests on, benchmarks and examples off, compiled through ccache
     when there is one, in <work>/build (one fixed path, so that the object
     files the previous mutant recompiled come back from ccache);
  4. first the binary and test the patch names on its `# expect:` line are
     built and run; if that test passes, every model binary is built and the
     whole model suite runs (`ctest -L model`), stopping at the first failure.
A mutant is reported when some model test fails on it, and survives when the
whole suite passes. The run exits 1 if any mutant survives, does not apply,
does not build or times out, 0 when every one is reported.

  scripts/mutants.py [--jobs N] [--timeout S] [--work DIR] [--no-baseline] [--list] [NAME...]
(`scripts/lab test --mutants [-- ARGS...]` runs it; NAME selects patches by
prefix, e.g. 03 or 12-kmutex.)
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTANTS = os.path.join(ROOT, "tests", "mutants")
# Not needed to build or test, and large (stored benchmark reports).
SKIP_PREFIXES = ("reports/", "build/")


def say(msg):
    print(f"mutants: {msg}", flush=True)


class Mutant:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[: -len(".patch")]
        self.what = ""
        self.binary = ""
        self.test = ""
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.startswith("#"):
                    break
                if line.startswith("# breaks:"):
                    self.what = line[len("# breaks:"):].strip()
                elif line.startswith("# expect:"):
                    parts = line[len("# expect:"):].split()
                    if len(parts) == 2:
                        self.binary, self.test = parts
        # reported / SURVIVED / DOES NOT APPLY / DOES NOT BUILD / TIMED OUT / ERROR
        self.result = "NOT RUN"
        self.by = ""
        self.seconds = 0.0


def source_files():
    """The working tree as git sees it: tracked files still present, and
    untracked files not ignored (what another session has not committed yet)."""
    try:
        out = subprocess.run(
            ["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True, capture_output=True).stdout.decode()
        names = sorted({n for n in out.split("\0") if n})
    except (OSError, subprocess.CalledProcessError):
        names = []
        for d, dirs, files in os.walk(ROOT):
            rel = os.path.relpath(d, ROOT)
            top = rel == "."
            dirs[:] = [x for x in dirs if not (top and (x == ".git" or x.startswith("build")))]
            names += [os.path.normpath(os.path.join(rel, f)) for f in files]
    return [n for n in names if not n.startswith(SKIP_PREFIXES)
            and os.path.isfile(os.path.join(ROOT, n))]


def snapshot(names):
    """The working tree's content once, at the start: every mutant then runs
    on the same code, whatever is edited in the working tree meanwhile."""
    files = {}
    for n in names:
        with open(os.path.join(ROOT, n), "rb") as f:
            files[n] = (f.read(), os.stat(os.path.join(ROOT, n)).st_mode & 0o777)
    return files


def sync_tree(tree, files):
    """Makes `tree` hold exactly the snapshot `files`, rewriting only what
    differs (a rewritten file gets a new mtime: make rebuilds what depends on
    it, ccache answers when the content was seen)."""
    wanted = set(files)
    for n, (data, mode) in files.items():
        dst = os.path.join(tree, n)
        try:
            with open(dst, "rb") as f:
                if f.read() == data:
                    continue
        except OSError:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(data)
        os.chmod(dst, mode)
    for d, _, files in os.walk(tree):
        for f in files:
            p = os.path.join(d, f)
            if os.path.relpath(p, tree) not in wanted:
                os.remove(p)


def run(cmd, log, timeout=None, cwd=None):
    """Runs cmd with its output appended to `log`; returns (rc, timed_out).
    On a timeout the whole process group it started is ended."""
    with open(log, "a", encoding="utf-8") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                             start_new_session=True)
        try:
            return p.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return -9, True


def model_targets(tree):
    """The model suite's binaries: every kmlab_add_test of tests/model."""
    with open(os.path.join(tree, "tests", "model", "CMakeLists.txt"), encoding="utf-8") as f:
        return re.findall(r"^\s*kmlab_add_test\(\s*([A-Za-z0-9_]+)", f.read(), re.M)


def failed_tests(log_text):
    """The tests CTest lists as failed in its last summary."""
    tail = log_text.rsplit("The following tests FAILED:", 1)
    if len(tail) < 2:
        return []
    return re.findall(r"^\s*\d+ - (\S+) \(([^)]*)\)", tail[1], re.M)


def ctest(build, log, args, timeout):
    start = len(open(log, encoding="utf-8").read()) if os.path.exists(log) else 0
    rc, timed_out = run(["ctest", "--test-dir", build, "--output-on-failure", "--no-tests=error"]
                        + args, log, timeout)
    with open(log, encoding="utf-8") as f:
        text = f.read()[start:]
    return rc, timed_out, text


def configure(tree, build, log):
    cfg = ["cmake", "-S", tree, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DKMLAB_BUILD_TESTS=ON",
           "-DKMLAB_BUILD_BENCHMARKS=OFF", "-DKMLAB_BUILD_EXAMPLES=OFF"]
    if shutil.which("ccache"):
        cfg += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"]
    return run(cfg, log)[0] == 0


def build_targets(build, targets, jobs, log, timeout):
    say(f"  building {' '.join(targets)}")
    return run(["cmake", "--build", build, "-j", str(jobs), "--target"] + targets, log, timeout)


def baseline(tree, build, files, mutants, args):
    """The unmutated copy must build and pass every test the mutants name on
    their `# expect:` lines, or "reported by" would mean nothing. (The whole
    suite unmutated is `scripts/lab test`'s business and takes far longer; a
    mutant reported by a test outside this baseline says so.)"""
    log = os.path.join(args.work, "logs", "00-baseline.log")
    if os.path.exists(log):
        os.remove(log)
    sync_tree(tree, files)
    tests = sorted({m.test for m in mutants if m.test})
    binaries = sorted({m.binary for m in mutants if m.binary})
    say(f"baseline: the unmutated tree must pass {' '.join(tests)}")
    start = time.monotonic()
    if not configure(tree, build, log):
        return f"configure failed (log: {log})", set()
    rc, timed_out = build_targets(build, binaries, args.jobs, log, args.timeout)
    if rc != 0:
        return f"{'build timed out' if timed_out else 'build failed'} (log: {log})", set()
    regex = "^(" + "|".join(re.escape(t) for t in tests) + ")$"
    rc, timed_out, text = ctest(build, log, ["-L", "model", "-j", str(args.jobs), "-R", regex],
                                args.timeout)
    ran = len(re.findall(r"Test +#\d+: ", text))
    if rc != 0 or timed_out or ran != len(tests):
        failed = ", ".join(t for t, _ in failed_tests(text))
        why = failed or (f"{ran} of {len(tests)} tests found" if ran != len(tests) else "")
        return f"fails unmutated{': ' + why if why else ''} (log: {log})", set()
    say(f"baseline: clean, {ran} tests ({time.monotonic() - start:.0f} s)")
    return "", set(tests)


def try_mutant(m, tree, build, files, args):
    log = os.path.join(args.work, "logs", m.name + ".log")
    if os.path.exists(log):
        os.remove(log)
    sync_tree(tree, files)
    rc, _ = run(["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-r", "-",
                 "-d", tree, "-i", m.path], log)
    if rc != 0:
        m.result, m.by = "DOES NOT APPLY", f"patch failed (log: {log})"
        return
    if not configure(tree, build, log):
        m.result, m.by = "DOES NOT BUILD", f"configure failed (log: {log})"
        return
    deadline = time.monotonic() + args.timeout

    def left():
        return max(1.0, deadline - time.monotonic())

    def built(targets):
        rc, timed_out = build_targets(build, targets, args.jobs, log, left())
        if rc != 0:
            m.result = "DOES NOT BUILD"
            m.by = ("timed out" if timed_out else "build failed") + f" (log: {log})"
        return rc == 0

    # True when the run has its answer: reported, or an error of the run
    # itself (neither counts as reported without a failing test to name).
    def verdict(rc, timed_out, text):
        failed = failed_tests(text)
        if failed:
            m.result, m.by = "reported", ", ".join(
                f"{t} ({why}{'' if t in args.clean else ', not in the baseline'})"
                for t, why in failed)
            return True
        if timed_out:
            m.result, m.by = "TIMED OUT", f"past {args.timeout} s with no test failed (log: {log})"
            return True
        if "No tests were found" in text:
            say(f"  warning: no test matches {m.test} (renamed?)")
            return False
        if rc != 0:
            m.result, m.by = "ERROR", f"ctest exit {rc} with no failed test listed (log: {log})"
            return True
        return False

    targets = model_targets(tree)
    expected = "^" + re.escape(m.test) + "$" if m.test else ""
    if m.binary in targets and expected:
        if not built([m.binary]):
            return
        say(f"  running {m.test}")
        if verdict(*ctest(build, log, ["-L", "model", "-R", expected], left())):
            return
        say(f"  {m.test} passed: the whole model suite")
    if not built(targets):
        return
    rest = ["-L", "model", "-j", str(args.jobs), "--stop-on-failure"]
    if expected:
        rest += ["-E", expected]
    if not verdict(*ctest(build, log, rest, left())):
        m.result, m.by = "SURVIVED", f"every model test passed (log: {log})"


def main():
    ap = argparse.ArgumentParser(
        prog="scripts/mutants.py",
        description="The mutation run: the model suite must report each tests/mutants/*.patch.")
    ap.add_argument("names", nargs="*", help="patches to run, by name prefix (default: all)")
    ap.add_argument("--jobs", type=int,
                    default=int(os.environ.get("KMLAB_JOBS", os.cpu_count() or 2)))
    ap.add_argument("--timeout", type=int, default=1200,
                    help="seconds per mutant: build and tests (default 1200)")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "mutants"),
                    help="where the tree copy, its build and the logs live (default build/mutants)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip checking that the unmutated tree passes the expected tests")
    ap.add_argument("--list", action="store_true", help="list the mutants and what each breaks")
    args = ap.parse_args()
    args.work = os.path.abspath(args.work)

    mutants = [Mutant(os.path.join(MUTANTS, f)) for f in sorted(os.listdir(MUTANTS))
               if f.endswith(".patch")]
    if args.names:
        mutants = [m for m in mutants if any(m.name.startswith(n) for n in args.names)]
        if not mutants:
            ap.error(f"no mutant matches {' '.join(args.names)}")
    if args.list:
        for m in mutants:
            print(f"{m.name}\n    breaks: {m.what}\n    expect: {m.binary} {m.test}")
        return 0
    for tool in ("patch", "cmake", "ctest"):
        if shutil.which(tool) is None:
            say(f"error: '{tool}' is not installed")
            return 2

    tree, build = os.path.join(args.work, "tree"), os.path.join(args.work, "build")
    os.makedirs(tree, exist_ok=True)
    os.makedirs(os.path.join(args.work, "logs"), exist_ok=True)
    files = snapshot(source_files())
    cache = "" if shutil.which("ccache") else " (no ccache: every build is full)"
    say(f"{len(mutants)} mutants; the tree ({len(files)} files) copied to {tree}, built in {build} "
        f"with {args.jobs} jobs{cache}")
    t0 = time.monotonic()
    args.clean = set()
    if not args.no_baseline:
        why, args.clean = baseline(tree, build, files, mutants, args)
        if why:
            say(f"error: baseline: {why}; no mutant run")
            return 2
    for i, m in enumerate(mutants, 1):
        say(f"[{i}/{len(mutants)}] {m.name}: {m.what}")
        start = time.monotonic()
        try_mutant(m, tree, build, files, args)
        m.seconds = time.monotonic() - start
        shown = f"reported by {m.by}" if m.result == "reported" else f"{m.result}: {m.by}"
        say(f"[{i}/{len(mutants)}] {m.name}: {shown} ({m.seconds:.0f} s)")
    sync_tree(tree, files)  # leave the copy clean: the next run starts from it
    total = time.monotonic() - t0

    print()
    say("summary (one line per mutant)")
    width = max(len(m.name) for m in mutants)
    for m in mutants:
        shown = m.by if m.result == "reported" else f"{m.result}: {m.by}"
        print(f"  {m.name:<{width}}  {shown}")
    bad = [m for m in mutants if m.result != "reported"]
    reported = len(mutants) - len(bad)
    say(f"{reported} of {len(mutants)} reported, {len(bad)} not"
        f"{' (' + ', '.join(m.name + ': ' + m.result for m in bad) + ')' if bad else ''};"
        f" total {total:.0f} s ({total / 60:.1f} min): {'PASSED' if not bad else 'FAILED'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
