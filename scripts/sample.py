r"""Samples of a trained image GAN, as a figure and an array: a grid, or walks through G's latent space.

    python scripts/sample.py --workdir=DIR [--step=N] [--num_samples=64] [--draw=0] [--truncation=PSI] \
        [--generator=raw|ema] [--interpolate=K [--path=slerp|linear]] [--out=DIR/generated.png]

The run's checkpoint (its latest, or --step) is loaded with its saved config, and G is evaluated as the run's own
evaluations evaluate it (batch norm's running averages; the EMA of G with `--generator=ema`, batch norm then
normalising by the batch itself). The noise is the run's evaluation noise: `--draw=0` is the very draw of the run's
evaluations, so at its `eval_num_samples` the samples equal the run's `samples/step_N.npy`; `--draw=d > 0` is
another, independent draw. `--truncation` (default: the run's `eval.truncation`) draws z from the normal truncated
to [−ψ, ψ] (BigGAN's truncation trick, Brock et al. 2019). In a conditioned run (class labels, InfoGAN codes) the
classes cycle through 0, 1, ..., K − 1, so the grid has one row per class.

`--interpolate=K` draws `num_samples // K` rows of K images instead, each from G along the path from one noise
vector to another: the great circle (`slerp`, White 2016, "Sampling Generative Networks": a Gaussian z keeps its
typical norm along it) or the straight line (`linear`, as in DCGAN's figure, Radford et al. 2015). A row keeps its
start's class and codes; only z moves. Under `--truncation` the ends lie in [−ψ, ψ]; a `linear` walk stays in that
box; a `slerp` walk keeps the ends' norm instead, and its inner points can leave the box (two orthogonal ends:
by up to a factor √2 at the midpoint).

Writes OUT (the figure) and OUT with `.npy`: float32 in [0, 1], [n, H, W, C], or [rows, K, H, W, C] for walks.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan import plotting  # noqa: E402
from jaxgan.config import ConfigError  # noqa: E402
from jaxgan.sampling import GENERATOR_WEIGHTS, check_generator, sample_images  # noqa: E402
from jaxgan.cli import define_figure_flag  # noqa: E402
from jaxgan.writers import save_npy_atomic  # noqa: E402
from scripts.notes import load_run, run_script  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of one image run.", required=True)
_STEP = flags.DEFINE_integer("step", None, "The checkpoint to sample (default: the run's latest).", lower_bound=0)
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 64, "Images to draw (walks: rows × K).", lower_bound=1)
_DRAW = flags.DEFINE_integer("draw", 0, "Which draw of noise: 0 is the run's evaluation noise.", lower_bound=0)
_TRUNCATION = flags.DEFINE_float("truncation", None, "ψ > 0: z from N(0, I) truncated to [−ψ, ψ]; 0: untruncated "
                                 "(default: the run's eval.truncation).", lower_bound=0.0)  # fmt: skip
_GENERATOR = flags.DEFINE_enum("generator", "raw", list(GENERATOR_WEIGHTS), "G's trained weights, or their moving average.")
_INTERPOLATE = flags.DEFINE_integer("interpolate", 0, "K ≥ 2: rows of K images along a path between two noise "
                                    "vectors (0: a grid of independent samples).", lower_bound=0)  # fmt: skip
_PATH = flags.DEFINE_enum("path", "slerp", ["slerp", "linear"], "The path of a walk through the noise space.")
_OUT = define_figure_flag("out", None, "The figure (default WORKDIR/generated.png); the array beside it as .npy.")


def check_run(workdir: pathlib.Path) -> None:
    """One-line errors for a run this script cannot sample, before any checkpoint is restored."""
    from jaxgan.tasks import make_task
    from jaxgan.train import saved_config

    config = saved_config(workdir, "--workdir")
    if len(make_task(config).data.shape) != 3:
        raise ConfigError(f"--workdir={workdir}: a run on image data is needed, not {config.data.name!r} (its "
                          "samples are in its samples/ folder and samples.png)")  # fmt: skip
    check_generator(_GENERATOR.value, config.ema_decay)
    if _INTERPOLATE.value == 1 or _INTERPOLATE.value > _NUM_SAMPLES.value:
        raise ConfigError(
            f"--interpolate={_INTERPOLATE.value}: a walk needs K ≥ 2 images per row and at most --num_samples="
            f"{_NUM_SAMPLES.value}"
        )


def main(argv):
    del argv
    workdir = pathlib.Path(_WORKDIR.value)
    check_run(workdir)
    config, task, game, state, step = load_run(workdir, step=_STEP.value)
    truncation = config.eval.truncation if _TRUNCATION.value is None else _TRUNCATION.value
    images, classes = sample_images(game, state, _NUM_SAMPLES.value, _DRAW.value, truncation,
                                    _GENERATOR.value, _INTERPOLATE.value, _PATH.value)  # fmt: skip
    out = pathlib.Path(_OUT.value) if _OUT.value else workdir / "generated.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_npy_atomic(out.with_suffix(".npy"), images)
    what = f"{config.data.name}, step {step}, {'EMA of G' if _GENERATOR.value == 'ema' else 'G'}"
    what += f", truncation {truncation:g}" if truncation else ""
    if _INTERPOLATE.value:
        labels = [f"class {int(k)}" for k in classes[:, 0]] if classes is not None else [""] * len(images)
        plotting.plot_image_rows(out, labels, list(images), title=f"{what}: {_PATH.value} walks in z")
    elif classes is not None and classes.ndim == 1:
        plotting.plot_class_grid(out, images, classes, per_class=max(1, len(images) // len(np.unique(classes))), title=what)
    else:
        plotting.plot_image_rows(out, [""] * -(-len(images) // 8), [images[i : i + 8] for i in range(0, len(images), 8)], title=what)
    print(f"{out} and {out.with_suffix('.npy')}: {images.shape[0]}{' rows' if _INTERPOLATE.value else ''} "
          f"of {what}", flush=True)  # fmt: skip


if __name__ == "__main__":
    run_script(main)
