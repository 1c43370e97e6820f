r"""Stacked MNIST mode counts of saved runs, on another number of samples or with G in the sampling mode of other code.

    python scripts/recount_stacked_modes.py --workdirs=DIR[,DIR...] [--step=N] [--num_samples=25600] \
        [--batch_statistics=128] [--draws=5]

A count of modes grows with the number of samples it reads (a rare triple shows up in a larger draw), so counts are
comparable only at one sample size: PacGAN's code counts on 25600 samples, where a run's evaluation reads
`eval_num_samples`. Each run's checkpoint (its latest, or --step) is evaluated by the run's own image evaluation
with `eval_num_samples = --num_samples` (at the run's own value that is exactly its eval.json). With
--batch_statistics=B the same noise is also counted with G's batch norm normalising each batch of B samples by that
batch's own statistics instead of the running averages, as the sampler of PacGAN's code does (batches of 128).
One line per run: the run, its step, modes (of 1000) and KL(p ‖ uniform), and those of the EMA of G where the run
keeps one (`| ema: ...`, on the same noise). With --draws=N > 1 the checkpoint is also
counted on N − 1 further independent draws of noise (draw d as `scripts/sample.py --draw=d` draws; draw 0 is the
run's own), one line each, then their mean ± std: how much one evaluation's count owes to its draw.
"""

from __future__ import annotations

import pathlib
import sys

import jax
import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan.config import ConfigError  # noqa: E402
from scripts.notes import evaluate_at, load_run, run_script  # noqa: E402

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Workdirs of stacked_mnist runs with the 'images' evaluation.", required=True)
_STEP = flags.DEFINE_integer("step", None, "The checkpoint to count (default: each run's latest).", lower_bound=0)
_NUM_SAMPLES = flags.DEFINE_integer(
    "num_samples", 25600, "Samples to classify per run (at least 10: the evaluation's Inception Score has 10 splits).",
    lower_bound=10,
)
_BATCH_STATISTICS = flags.DEFINE_integer(
    "batch_statistics", 0, "Also count with G's batch norm using the statistics of each batch of this many samples "
    "(0: only the running averages, as the run's evaluation does).", lower_bound=0,
)  # fmt: skip
_DRAWS = flags.DEFINE_integer("draws", 1, "Independent draws of noise to count on (draw 0: the run's own).", lower_bound=1)


def count_with_batch_statistics(config, game, state, num_samples: int, batch: int) -> dict:
    """Modes and KL of `num_samples` samples on the run's evaluation noise, G normalising each consecutive batch
    of `batch` samples by its own batch statistics (its state update discarded)."""
    from jaxgan.conditioning import data_of
    from jaxgan.game import generate
    from jaxgan.metrics.classifier import load_classifier
    from jaxgan.metrics.evaluations import classify_stacked, eval_generator_key, eval_noise, stacked_mode_coverage

    z = eval_noise(game, state, num_samples, config.eval.truncation)
    classify, _ = load_classifier("mnist_5k", (28, 28, 1))

    def sample(zb):
        return data_of(generate(game, state.g_params, state.g_model_state, zb, train=True, key=eval_generator_key(state))[0])

    @jax.jit
    def count(z):
        samples = jax.lax.map(sample, z.reshape(num_samples // batch, batch, *z.shape[1:]))
        return stacked_mode_coverage(classify_stacked(classify, samples.reshape(num_samples, *samples.shape[2:]))[0])

    return {k: float(v) for k, v in jax.device_get(count(z)).items()}


def check_flags() -> None:
    samples, batch = _NUM_SAMPLES.value, _BATCH_STATISTICS.value
    if batch and samples % batch:
        raise app.UsageError(f"--batch_statistics={batch}: must divide --num_samples={samples} (whole batches)")


def load_stacked_run(workdir: pathlib.Path, step: int | None):
    """`load_run` of one run on stacked_mnist (a sweep, another data set or a missing step: ConfigError, one line)."""
    from jaxgan.train import saved_config

    name = saved_config(workdir, "--workdirs").data.name
    if name != "stacked_mnist":  # before anything is restored
        raise ConfigError(f"--workdirs={workdir}: a run on stacked_mnist data is needed, not {name!r}")
    return load_run(workdir, "images", step, flag="--workdirs")


def main(argv):
    del argv
    check_flags()
    runs = [pathlib.Path(w) for w in _WORKDIRS.value]
    loaded = [load_stacked_run(w, _STEP.value) for w in runs]  # every run checked before any is counted
    for workdir, (config, task, game, state, step) in zip(runs, loaded):
        config.eval_num_samples = _NUM_SAMPLES.value
        summary, _ = evaluate_at(config, task, game, state, config.eval.truncation)
        line = f"{workdir}  step {step}  {_NUM_SAMPLES.value} samples: {describe(summary)}"
        if _BATCH_STATISTICS.value:
            batch = count_with_batch_statistics(config, game, state, _NUM_SAMPLES.value, _BATCH_STATISTICS.value)
            line += f"  |  G with batch statistics of {_BATCH_STATISTICS.value}: modes {int(batch['modes'])}  kl {batch['kl']:.3f}"
        print(line, flush=True)
        counts = [summary]
        for draw in range(1, _DRAWS.value):
            drawn = state.replace(key=jax.random.fold_in(state.key, draw))  # as jaxgan.sampling draws
            other, _ = evaluate_at(config, task, game, drawn, config.eval.truncation)
            counts.append(other)
            print(f"{workdir}  step {step}  {_NUM_SAMPLES.value} samples, draw {draw}: {describe(other)}", flush=True)
        if len(counts) > 1:
            spread = "  |  ema: ".join(
                f"modes {m.mean():.1f} ± {m.std():.1f}  kl {k.mean():.3f} ± {k.std():.3f}"
                for m, k in (np.array([[c[p + "modes"], c[p + "kl"]] for c in counts], dtype=np.float64).T
                             for p in ("", "ema_") if p + "modes" in summary)
            )  # fmt: skip
            print(f"{workdir}  step {step}  over {len(counts)} draws: {spread}", flush=True)


def describe(summary: dict) -> str:
    """Modes and KL of G, and of its EMA where the run keeps one (`ema_*`)."""
    text = f"modes {summary['modes']}  kl {summary['kl']:.3f}"
    if "ema_modes" in summary:
        text += f"  |  ema: modes {summary['ema_modes']}  kl {summary['ema_kl']:.3f}"
    return text

if __name__ == "__main__":
    run_script(main)
