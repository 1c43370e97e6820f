r"""Whether runs computed the same thing, bitwise: their logged records (losses, evaluations; the timings left out)
and their eval.json results.

    python scripts/same_runs.py --runs=/tmp/a,/tmp/b,/tmp/c

The first run is the reference. Each other run is reported as the same, or by its first differing record; the exit
status is 1 if any differs. For determinism checks: the same command twice, and a run stopped and resumed against
one trained straight through (stopped at a logging step, since the first log after a resume averages the losses
since the resume only).
"""

from __future__ import annotations

import json
import pathlib
import sys

from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan.writers import records_without_wall_clock  # noqa: E402
from scripts.notes import run_script  # noqa: E402

_RUNS = flags.DEFINE_list("runs", None, "Workdirs of the runs; the first is the reference.", required=True)


def first_difference(reference: str | pathlib.Path, other: str | pathlib.Path) -> str | None:
    """A line naming the first record (or eval.json) where `other` differs from `reference`, or None if every
    record and the results are bitwise equal."""
    a, b = records_without_wall_clock(reference), records_without_wall_clock(other)
    for i, (x, y) in enumerate(zip(a, b)):
        if _text(x) != _text(y):  # as written: NaN equals NaN, and -0.0 differs from 0.0
            keys = sorted(k for k in x.keys() | y.keys() if _text(x.get(k)) != _text(y.get(k)))
            return f"record {i} (step {x.get('step')}): {', '.join(keys)} differ ({x.get(keys[0])!r} against {y.get(keys[0])!r})"
    if len(a) != len(b):
        return f"{len(a)} records against {len(b)}"
    results = [json.loads((pathlib.Path(run) / "eval.json").read_text()) for run in (reference, other)]
    keys = sorted(
        k for k in results[0].keys() | results[1].keys() if k != "config" and _text(results[0].get(k)) != _text(results[1].get(k))
    )
    return f"eval.json: {', '.join(keys)} differ" if keys else None


def _text(value) -> str:
    return json.dumps(value, sort_keys=True)


def main(argv):
    del argv
    runs = _RUNS.value
    if len(runs) < 2:
        raise app.UsageError(f"--runs: give at least two workdirs, got {len(runs)}")
    for run in runs:
        if not (pathlib.Path(run) / "metrics.jsonl").is_file() or not (pathlib.Path(run) / "eval.json").is_file():
            raise app.UsageError(f"--runs: {run} has no finished run (metrics.jsonl and eval.json)")
    differ = False
    for run in runs[1:]:
        difference = first_difference(runs[0], run)
        differ |= difference is not None
        print(f"{run}: {'the same as ' + runs[0] if difference is None else difference}", flush=True)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    run_script(main)
