"""kmlab's benchmark lab: run the suite, render reports, compare runs.

    scripts/lab run [--quick] [--filter S1,S3] [--repetitions N] [--out DIR] [--build-dir DIR]
    scripts/lab report DIR [DIR...] [--out DIR]
    scripts/lab compare A B [--fail-above PCT] [--alpha A]

`scripts/lab` builds first and then runs this package (`python3 -m kmlab`
with scripts/ on the path). Python's standard library only: the machines this
runs on have no package index.

The layers, lowest first: `scenarios` (the one table of what the suite
measures), `stats`, `results` (JSON and report folders to records), `charts`,
`report`, `compare`, `run`, and `cli` (the command line).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
