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

from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan.cli import define_config_file, define_figure_flag  # noqa: E402
from jaxgan.config import validate  # noqa: E402
from jaxgan.metrics.evaluations import plot_code_sweep  # noqa: E402
from scripts.notes import ROOT, figure_path, load_run, publish, run_script, settings_that_differ, train_run  # noqa: E402

_CONFIG = define_config_file("config", str(ROOT / "experiments/infogan_mnist.py"), "InfoGAN config.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/infogan", "Workdir of the run.")
_FIGURE = define_figure_flag("figure", None, "Where the figure goes (default docs/figures/infogan.png with --write_notes, else WORKDIR/infogan.png).")
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Write the result into BUILD_NOTES.md and README.md.")


def main(argv):
    del argv
    config = _CONFIG.value
    validate(config)
    result = train_run(config, _WORKDIR.value)
    _, _, game, state, _ = load_run(_WORKDIR.value)
    path = figure_path(_FIGURE.value, "infogan", _WORKDIR.value, _WRITE_NOTES.value)
    for which in range(game.conditioning.continuous):
        target = path if which == 0 else path.with_name(f"{path.stem}_c{which + 2}{path.suffix}")
        plot_code_sweep(target, game, state, f"InfoGAN on mnist_5k, step {result['step']}", which)
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
