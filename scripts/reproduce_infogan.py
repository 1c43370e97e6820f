r"""The InfoGAN figure on mnist_5k (Chen et al. 2016, Figure 2): what the categorical and continuous codes control.

    python scripts/reproduce_infogan.py [--workdir=runs/infogan] [--write_notes] [--config.KEY=VALUE ...]

Trains experiments/infogan_mnist.py (resumable; a finished run is reused), then draws one figure per continuous
code: rows are the ten values of the categorical code, columns the continuous code swept from −2 to 2 (the prior
is U(−1, 1), so the outer columns extrapolate, as in the paper), with one fixed z and the other continuous code at
0. The categorical code's agreement with the digit the shipped MNIST classifier sees (eval.json's
`code_accuracy`, best one-to-one matching) is printed beside the paper's 5% error, and with --write_notes the
table and figure go into BUILD_NOTES.md and README.md (block `infogan`).
"""

from __future__ import annotations

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan.cli import define_config_file, define_figure_flag  # noqa: E402
from jaxgan import plotting  # noqa: E402
from jaxgan.conditioning import Labelled  # noqa: E402
from jaxgan.config import validate  # noqa: E402
from jaxgan.data.images import to_unit_range  # noqa: E402
from jaxgan.game import generate  # noqa: E402
from scripts.notes import ROOT, figure_path, load_run, publish, run_script, settings_that_differ, train_run  # noqa: E402

_CONFIG = define_config_file("config", str(ROOT / "experiments/infogan_mnist.py"), "InfoGAN config.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/infogan", "Workdir of the run.")
_FIGURE = define_figure_flag("figure", None, "Where the figure goes (default docs/figures/infogan.png with --write_notes, else WORKDIR/infogan.png).")
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Write the result into BUILD_NOTES.md and README.md.")

SWEEP = np.linspace(-2.0, 2.0, 9)


def code_sweep(game, state, which: int) -> np.ndarray:
    """[categorical, len(SWEEP), H, W, C]: one fixed z, categorical code by row, continuous code `which` by column."""
    cond = game.conditioning
    z = game.noise(jax.random.key(0), (1, game.z_dim))
    rows, cols = cond.categorical, len(SWEEP)
    continuous = np.zeros((rows, cols, cond.continuous), np.float32)
    continuous[..., which] = SWEEP[None, :]
    latent = Labelled(
        jnp.broadcast_to(z, (rows, cols, game.z_dim)),
        categorical=jnp.broadcast_to(jnp.arange(rows)[:, None], (rows, cols)),
        continuous=jnp.asarray(continuous),
    )
    samples, _ = generate(game, state.g_params, state.g_model_state, latent, train=False)
    return np.asarray(to_unit_range(samples.data))


def main(argv):
    del argv
    config = _CONFIG.value
    validate(config)
    result = train_run(config, _WORKDIR.value)
    _, _, game, state, _ = load_run(_WORKDIR.value)
    path = figure_path(_FIGURE.value, "infogan", _WORKDIR.value, _WRITE_NOTES.value)
    for which in range(game.conditioning.continuous):
        grid = code_sweep(game, state, which)
        target = path if which == 0 else path.with_name(f"{path.stem}_c{which + 2}{path.suffix}")
        plotting.plot_image_rows(
            target, [f"c1={k}" for k in range(grid.shape[0])], list(grid),
            title=f"InfoGAN on mnist_5k, step {result['step']}: rows c1 (categorical), columns c{which + 2} from −2 to 2",
            column_labels=[f"{v:+.1f}" for v in SWEEP],
        )  # fmt: skip
        print(f"figure: {target}")
    changed = settings_that_differ(config, "infogan_mnist")
    setting = ", ".join(f"{k}={v}" for k, v in changed.items()) or "the experiment's defaults"
    table = "\n".join([
        f"InfoGAN on mnist_5k ({config.num_steps} steps, seed {config.seed}; {setting}):",
        "",
        "| | categorical code vs digit (best matching) | FID | Inception Score |",
        "|---|---|---|---|",
        f"| jaxgan | {100 * result['code_accuracy']:.1f}% agreement ({100 * (1 - result['code_accuracy']):.1f}% error) | "
        f"{result['fid']:.2f} | {result['inception_score']:.2f} |",
        "| InfoGAN paper (full MNIST) | 5% error | — | — |",
    ])  # fmt: skip
    publish("infogan", table, [result], pathlib.Path(_WORKDIR.value), _WRITE_NOTES.value)


if __name__ == "__main__":
    run_script(main)
