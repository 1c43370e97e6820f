r"""A 2-D mixture run's mode metrics re-measured on more samples: the run's evaluation (modes, high-quality
fraction, reverse KL of G's samples, or with --generator=ema of the moving average of G's) on --draws independent sets of `eval_num_samples` noise vectors (draw 0 is
the run's own evaluation noise, so it repeats the logged value), their mean ± std, the metrics of all draws pooled,
and the pooled samples' share of each mode. It tells a real difference between runs from the sampling noise of one
evaluation set.

    python scripts/remeasure_mixture.py --workdir=runs/grid_pacgan4_decay/seed_1 [--step=300000] [--draws=20] \
        [--generator=raw|ema]
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan.sampling import GENERATOR_WEIGHTS, check_generator  # noqa: E402
from jaxgan.train import saved_config  # noqa: E402
from scripts.notes import load_run, mixture_draws, run_script  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A checkpointed run on a ring or grid mixture.", required=True)
_STEP = flags.DEFINE_integer("step", None, "The checkpoint to measure (default: the latest).")
_DRAWS = flags.DEFINE_integer("draws", 20, "Independent evaluation sets of eval_num_samples noise vectors.", lower_bound=1)
_GENERATOR = flags.DEFINE_enum("generator", "raw", list(GENERATOR_WEIGHTS), "G's trained weights, or their moving average.")


def main(argv: list[str]) -> None:
    del argv
    check_generator(_GENERATOR.value, saved_config(pathlib.Path(_WORKDIR.value), "--workdir").ema_decay)
    config, task, game, state, step = load_run(pathlib.Path(_WORKDIR.value), "mixture", _STEP.value)
    per_draw, pooled = mixture_draws(config, task, game, state, _DRAWS.value, _GENERATOR.value)
    n = config.eval_num_samples
    what = "the EMA of G" if _GENERATOR.value == "ema" else "G"
    print(f"{_WORKDIR.value} at step {step}, {what}: {_DRAWS.value} draws of {n} samples")
    print(f"  draw 0 (the run's evaluation): modes {per_draw[0]['modes']}  high quality "
          f"{per_draw[0]['high_quality_fraction']:.3f}  reverse KL {per_draw[0]['reverse_kl']:.4f}")
    for key, fmt in (("modes", ".2f"), ("high_quality_fraction", ".4f"), ("reverse_kl", ".4f")):
        values = np.array([d[key] for d in per_draw], dtype=float)
        print(f"  {key}: mean {values.mean():{fmt}} ± {values.std():{fmt}} (min {values.min():{fmt}}, "
              f"max {values.max():{fmt}})")
    print(f"  pooled ({_DRAWS.value * n} samples): modes {pooled['modes']}  high quality "
          f"{pooled['high_quality_fraction']:.4f}  reverse KL {pooled['reverse_kl']:.4f}")
    counts = np.asarray(pooled["mode_counts"], dtype=float)
    share = counts / max(counts.sum(), 1) * len(counts)
    print(f"  each mode's share of the high-quality samples × {len(counts)} (1 = even): "
          + " ".join(f"{v:.2f}" for v in share))


if __name__ == "__main__":
    run_script(main)
