r"""Mescheder, Geiger, Nowozin 2018 on the Dirac-GAN: which training methods converge?

    python scripts/reproduce_dirac.py --workdir=runs/dirac [--num_steps=500] [--write_notes]

Trains `experiments/dirac.py` from (θ, ψ) = (1, 1) with plain gradient steps (η = 0.1) under each method below,
each run in its own resumable workdir, then writes a grid of trajectories over the plain simultaneous-gradient field
(docs/figures/dirac.png with --write_notes, else WORKDIR/dirac.png, so pilots keep the published figure) and a table of the final distance to the equilibrium and the Jacobian's eigenvalues at
it, into BUILD_NOTES.md and README.md with --write_notes.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from jaxgan.config import validate  # noqa: E402
from jaxgan.plotting import load_snapshots, plot_field_axes, pyplot, save_figure  # noqa: E402
from jaxgan.metrics.evaluations import dirac_field  # noqa: E402
from jaxgan.train import build_game  # noqa: E402
from jaxgan.cli import define_figure_flag  # noqa: E402
from scripts.notes import figure_path, load_experiment, publish, run_script, train_run  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", "runs/dirac", "Parent directory of the runs.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", 500, "Gradient steps per method.")
_FIGURE = define_figure_flag(
    "figure", None, "Where the figure goes (default: docs/figures/dirac.png with --write_notes, else WORKDIR/dirac.png)."
)
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Write the table into BUILD_NOTES.md and README.md.")

# name -> config overrides of experiments/dirac.py (minimax loss, simultaneous steps unless stated).
METHODS = {
    "simultaneous GD": {"loss": "minimax"},
    "alternating GD": {"loss": "minimax", "update_rule": "alternating"},
    "non-saturating": {"loss": "nonsaturating"},
    "WGAN (clip 1)": {"loss": "wasserstein", "weight_clip": 1.0},
    "WGAN-GP (λ=1)": {"loss": "wasserstein", "penalty": "wgan_gp", "penalty_weight": 1.0},
    "R1 (γ=1)": {"loss": "minimax", "penalty": "r1", "penalty_weight": 1.0},
    "consensus (γ=1)": {"loss": "minimax", "update_rule": "consensus", "consensus_gamma": 1.0},
    "extragradient": {"loss": "minimax", "update_rule": "extragradient"},
    "unrolled (K=5)": {"loss": "minimax", "update_rule": "unrolled", "unroll_steps": 5},
}


def config_for(overrides: dict):
    config = load_experiment("dirac")
    config.num_steps = _NUM_STEPS.value
    config.checkpoint_every_steps = _NUM_STEPS.value
    for key, value in overrides.items():
        config[key] = value
    validate(config)
    return config


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def eigen_text(pairs) -> str:
    if pairs is None:  # the gradient penalty's field is not differentiable at (0, 0)
        return "none: the penalty's field jumps at ψ = 0"
    return ", ".join(f"{re:+.3g}{im:+.3g}i" for re, im in pairs)


def main(argv):
    del argv
    results = {}
    fig, axes = pyplot().subplots(3, 3, figsize=(10, 10))
    for ax, (name, overrides) in zip(axes.ravel(), METHODS.items()):
        config = config_for(overrides)
        workdir = pathlib.Path(_WORKDIR.value) / slug(name)
        result = train_run(config, str(workdir))
        results[name] = result
        snapshots = load_snapshots(workdir / "samples")
        trajectory = np.array([[config.dirac.theta0, config.dirac.psi0]] + [snapshots[s] for s in sorted(snapshots)])
        plot_field_axes(ax, dirac_field(build_game(config)), trajectory, 2.0,
                        f"{name}: distance {result['distance_to_equilibrium']:.3f}")  # fmt: skip
        print(f"{name:<18s} distance {result['distance_to_equilibrium']:.4f}  "
              f"eigenvalues {eigen_text(result['jacobian_eigenvalues'])}", flush=True)  # fmt: skip
    fig.suptitle(f"Dirac-GAN from (1, 1), {_NUM_STEPS.value} gradient steps of size 0.1", fontsize=12)
    figure = figure_path(_FIGURE.value, "dirac", _WORKDIR.value, _WRITE_NOTES.value)
    save_figure(fig, figure, dpi=110)
    print(f"figure: {figure}", flush=True)

    lines = [
        f"Dirac-GAN from (θ, ψ) = (1, 1), {_NUM_STEPS.value} plain gradient steps of size 0.1 "
        "(`python scripts/reproduce_dirac.py --write_notes`); eigenvalues of the Jacobian of the update field at "
        "the equilibrium (0, 0) for the method's loss and penalty (the update rule does not enter them):",
        "",
        "| method | distance to equilibrium | Jacobian eigenvalues at (0, 0) |",
        "|---|---|---|",
    ]
    for name, result in results.items():
        lines.append(f"| {name} | {result['distance_to_equilibrium']:.4f} | {eigen_text(result['jacobian_eigenvalues'])} |")
    lines += [
        "",
        "Paper (Mescheder et al. 2018, Dirac-GAN): the unregularised GAN and WGAN do not converge, WGAN-GP does not "
        "converge in general, R1, consensus optimisation and instance noise do.",
    ]
    table = "\n".join(lines)
    publish("dirac", table, results, pathlib.Path(_WORKDIR.value), _WRITE_NOTES.value)


if __name__ == "__main__":
    run_script(main)
