"""Metric output: one JSON object per logged step in `metrics.jsonl`, TensorBoard events, and console lines.

On resume from step s, both outputs are cut back to s first (lines with a later step are dropped, and
TensorBoard is told to hide the earlier events and is given the kept lines again), so a run that was killed and
restarted holds no record of the lost steps twice. One difference remains: a preemption checkpoint falls between two logging steps, and the first log
after the resume averages the losses of the steps since the resume only.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import time
from typing import Iterator, Mapping

import numpy as np
from tensorboardX import SummaryWriter


EVAL_SECONDS = "eval/seconds"  # in every evaluation's record, also one that measures nothing (samples only)
# The timings in a record: everything else is computed, and two runs of one computation log it bitwise alike.
WALL_CLOCK = ("steps_per_sec", EVAL_SECONDS)


def _to_builtin(value):
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value.tolist()


class MetricWriter:
    """metrics.jsonl (one JSON object per write) and TensorBoard scalars; a disabled writer (the non-primary
    processes of a multi-host job) writes nothing."""

    def __init__(
        self, workdir: str | os.PathLike, resume_step: int = 0, enabled: bool = True, evaluate_again: bool = False
    ):
        """`evaluate_again`: also drop the evaluation record of `resume_step`, which the run then evaluates and logs
        anew (a finished run resumed, maybe under other evaluation settings)."""
        self._enabled = enabled
        if not enabled:
            return
        self._path = pathlib.Path(workdir) / "metrics.jsonl"
        kept = metrics_up_to(self._path, resume_step) if self._path.exists() else ""
        if evaluate_again:
            kept = "".join(line + "\n" for line in kept.splitlines()
                           if not (_line_step(line) == resume_step and EVAL_SECONDS in json.loads(line)))  # fmt: skip
        if self._path.exists():
            write_text_atomic(self._path, kept)
        # TensorBoard shows what metrics.jsonl keeps, and only that: purge_step 0 hides every event of the earlier
        # files, and the kept records are written again. An earlier attempt's events cannot be trusted: tensorboardX
        # writes its queue out every two minutes (its flush() does not drain the queue), so a killed attempt lost
        # the last ones; a branch has its source's records in metrics.jsonl and no events at all.
        # tensorboardX names a file by the second it opens it, and truncates one of the same name: the nanoseconds
        # keep a restart within the same second from erasing the run's events, in the order TensorBoard reads them
        tensorboard = pathlib.Path(workdir) / "tensorboard"
        self._tb = SummaryWriter(str(tensorboard), purge_step=0, filename_suffix=f".{time.time_ns():020d}")
        for line in kept.splitlines():
            self._add_scalars(json.loads(line))

    def write(self, step: int, metrics: Mapping[str, object]) -> None:
        if not self._enabled:
            return
        record = {"step": int(step), **{k: _to_builtin(v) for k, v in metrics.items()}}
        with self._path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        self._add_scalars(record)

    def _add_scalars(self, record: Mapping[str, object]) -> None:
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)):
                self._tb.add_scalar(key, value, int(record["step"]))

    def close(self) -> None:
        if self._enabled:
            self._tb.close()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """A temporary path beside `path` to write the file to; renamed onto `path` when the block ends, so a crash of the
    process (or a reader looking meanwhile) finds the old file or the new one, never a torn one (no fsync: a power
    loss is not covered)."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")  # not a name the readers glob for (step_*.npy, *.png)
    yield tmp
    tmp.replace(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` through `atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    """`np.save(path, array)` through `atomic_path` (`path` ends in .npy)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def read_metric(workdir: str | os.PathLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of metric `name` in `workdir`'s metrics.jsonl, in step order; the records without it (other
    periods' metrics) and lines torn by a crash are skipped. A sweep's `NAME/per_seed` lists give values of shape
    [steps, runs]."""
    steps, values = [], []
    for record in _records(pathlib.Path(workdir) / "metrics.jsonl"):
        if isinstance(record.get(name), (int, float, list)):
            steps.append(record["step"])
            values.append(record[name])
    order = np.argsort(steps, kind="stable")
    return np.asarray(steps)[order], np.asarray(values, dtype=np.float64)[order]


def logged_at(workdir: str | os.PathLike, step: int) -> set[str]:
    """The names of the metrics that `workdir`'s metrics.jsonl records at `step` (none if it has no such file)."""
    path = pathlib.Path(workdir) / "metrics.jsonl"
    records = _records(path) if path.is_file() else ()
    return {name for record in records if record.get("step") == step for name in record if name != "step"}


def logged_names(workdir: str | os.PathLike) -> list[str]:
    """The names of the metrics that `workdir`'s metrics.jsonl records, in the order first logged (none if it has
    no such file)."""
    path = pathlib.Path(workdir) / "metrics.jsonl"
    names: dict[str, None] = {}
    for record in _records(path) if path.is_file() else ():
        names.update(dict.fromkeys(name for name in record if name != "step"))
    return list(names)


def records_without_wall_clock(workdir: str | os.PathLike) -> list[dict]:
    """The records of `workdir`'s metrics.jsonl in file order, without their timings (`WALL_CLOCK`)."""
    return [
        {k: v for k, v in record.items() if k not in WALL_CLOCK}
        for record in _records(pathlib.Path(workdir) / "metrics.jsonl")
    ]


def _records(path: pathlib.Path):
    """The records of a metrics file, without the lines torn by a crash."""
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def metrics_up_to(path: str | os.PathLike, step: int) -> str:
    """The lines of the metrics file `path` of steps up to `step`: what a run resumed (or branched) at `step` keeps.
    A line torn by a crash is dropped."""
    kept = [line for line in pathlib.Path(path).read_text().splitlines() if _line_step(line) <= step]
    return "".join(line + "\n" for line in kept)


def _line_step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")  # a line torn by a crash is dropped


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"
