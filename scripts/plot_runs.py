r"""Runs compared over training: their logged metrics against the step, with reference lines, and for 2-D mixtures
each run's last samples over the data.

    python scripts/plot_runs.py --runs="constant rate=runs/a/seed_0,decayed from 200000=runs/b/seed_0" \
        --references="eval/high_quality_fraction=0.936:PacGAN4 (paper)" --out=docs/figures/runs.png

A sweep's workdir gives one line and one samples panel per run of it ("LABEL seed S", with the swept value where
there is one), and one line "LABEL mean" for what it logs only as the runs' mean (the losses). Each line's last
values are printed.
"""

from __future__ import annotations

import pathlib
import sys

import jax
import numpy as np
from absl import app, flags

from jaxgan import plotting
from jaxgan.config import get_by_path, num_runs, run_configs
from jaxgan.data.mixtures import make_mixture
from jaxgan.train import saved_config
from jaxgan.writers import EVAL_SECONDS, logged_names, read_metric

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan.cli import define_figure_flag  # noqa: E402
from scripts.notes import run_script  # noqa: E402

_RUNS = flags.DEFINE_list("runs", None, "LABEL=WORKDIR for each run (a label may not hold a comma).", required=True)
_METRICS = flags.DEFINE_list(
    "metrics", None, "Metrics of metrics.jsonl to plot (default: the evaluation's metrics of G that the first run "
    "logged, e.g. eval/modes, eval/fid; d_loss and g_loss for a run that has not evaluated yet)."
)
_REFERENCES = flags.DEFINE_list("references", [], "METRIC=VALUE:LABEL: a dashed line on that metric's panel.")
_OUT = define_figure_flag("out", None, "The figure's path (.png).", required=True)
_TITLE = flags.DEFINE_string("title", "", "The figure's title.")


def _pair(text: str, separator: str, flag: str) -> tuple[str, str]:
    if separator not in text:
        raise app.UsageError(f"--{flag}: {text!r} is not of the form A{separator}B")
    a, b = text.split(separator, 1)
    return a.strip(), b.strip()


def logged_evaluations(workdirs: list[pathlib.Path]) -> list[str]:
    """The evaluation metrics of G that the runs in `workdirs` logged, run by run in the order first logged (not the
    EMA's `eval/ema_*`, a sweep's `/per_seed` lists or the evaluation's time); the losses if they logged none."""
    names = dict.fromkeys(name for workdir in workdirs for name in logged_names(workdir)
                          if name.startswith("eval/") and not name.startswith("eval/ema_")
                          and not name.endswith("/per_seed") and name != EVAL_SECONDS)  # fmt: skip
    return list(names) or ["d_loss", "g_loss"]


def run_labels(label: str, config) -> list[str]:
    """LABEL for a single run; for a sweep, one label per run in the sweep's order (its seed, and its value)."""
    if num_runs(config) == 1:
        return [label]
    key = config.sweep_key
    runs = run_configs(config)
    return [f"{label} seed {run.seed}" + (f" {key}={get_by_path(run, key)}" if key else "") for run in runs]


def sweep_curves(label: str, workdir: pathlib.Path, config, metrics: list[str]) -> list[tuple[str, dict]]:
    """(label, {metric: (steps, values)}) per run of a sweep, from its METRIC/per_seed lists (the evaluations); a
    metric logged only as the runs' mean (the losses) is one more line, "LABEL mean"."""
    labels = run_labels(label, config)
    per_run = {m: s for m in metrics if len((s := read_metric(workdir, f"{m}/per_seed"))[0])}
    means = {m: s for m in metrics if m not in per_run and len((s := read_metric(workdir, m))[0])}
    curves = [(run, {m: (steps, values[:, i]) for m, (steps, values) in per_run.items()})
              for i, run in enumerate(labels)]  # fmt: skip
    return [c for c in curves if c[1]] + ([(f"{label} mean", means)] if means else [])


def main(argv: list[str]) -> None:
    del argv
    runs = [_pair(run, "=", "runs") for run in _RUNS.value]
    metrics = _METRICS.value or logged_evaluations([pathlib.Path(workdir) for _, workdir in runs])
    references = {}
    for reference in _REFERENCES.value:
        metric, rest = _pair(reference, "=", "references")
        value, label = _pair(rest, ":", "references")
        if metric not in metrics:
            raise app.UsageError(f"--references: {metric!r} is not plotted; plotted: {', '.join(metrics)} (--metrics)")
        if metric in references:
            raise app.UsageError(f"--references: two lines for {metric!r}; give one per metric")
        try:
            references[metric] = (float(value), label)
        except ValueError:
            raise app.UsageError(f"--references: {reference!r}: {value!r} is not a number") from None
    curves, finals, mixture, mixture_data = [], [], None, None
    for label, workdir in runs:
        workdir = pathlib.Path(workdir)
        if not (workdir / "metrics.jsonl").is_file():
            raise app.UsageError(f"--runs: {workdir} has no metrics.jsonl; give the workdir of a jaxgan run")
        config = saved_config(workdir, "--runs")
        sweep = num_runs(config) > 1
        if sweep:
            found = sweep_curves(label, workdir, config, metrics)
        else:
            found = [(label, {m: s for m in metrics if len((s := read_metric(workdir, m))[0])})]
        if not any(series for _, series in found):
            raise app.UsageError(f"--runs: {workdir} logged none of {', '.join(metrics)} (--metrics)")
        curves += found
        snapshots = plotting.load_snapshots(workdir / "samples")
        if config.data.name in ("ring", "grid") and snapshots:
            if mixture_data not in (None, config.data.to_dict()):
                raise app.UsageError(f"--runs: {workdir} is on another mixture than the runs before it; plot them apart")
            mixture_data = config.data.to_dict()
            mixture = make_mixture(config.data.name, config.data.num_modes, config.data.scale, config.data.std)
            last = max(snapshots)
            runs_samples = snapshots[last] if sweep else snapshots[last][None]
            finals += [(f"{run}\nstep {last}", samples) for run, samples in zip(run_labels(label, config), runs_samples)]
    missing = [m for m in metrics if not any(m in found for _, found in curves)]
    if missing:
        raise app.UsageError(f"--metrics: {', '.join(missing)} logged by none of the runs")
    for label, series in curves:
        last = (f"{m.removeprefix('eval/')} {values[-1]:.4g} at {steps[-1]}" for m, (steps, values) in series.items())
        print(f"{label}: {'  '.join(last)}")
    data = None if mixture is None else np.asarray(mixture.sample(jax.random.key(0), 2500))
    plotting.plot_run_curves(_OUT.value, curves, metrics, references, finals,
                             None if mixture is None else mixture.means, data, _TITLE.value)
    print(f"figure: {_OUT.value}")


if __name__ == "__main__":
    run_script(main)
