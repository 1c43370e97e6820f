r"""Nowozin, Cseke, Tomioka 2016 (f-GAN), Section 4: one Gaussian fitted to a mixture, for each f-divergence.

    python scripts/reproduce_fgan_1d.py [--num_steps=4000] [--seed=0] [--batch_size=1024] [--write_notes]

For each of the seven divergences of `jaxgan.losses.F_DIVERGENCES`, fits Q = N(μ, σ²) to the mixture
`jaxgan.fgan1d.MIXTURE` = 0.3 N(-1, 0.5²) + 0.7 N(2, 0.5²) by the f-GAN saddle-point game (`fit_gaussian`: a 2×64
tanh critic, simultaneous Adam steps, one compiled `lax.scan` per divergence), and beside it the Gaussian that
minimises D_f(P‖Q) itself (`exact_minimiser`: numerical integration, grid search then Adam). Writes the densities
(docs/figures/fgan_1d.png with --write_notes, else runs/fgan_1d/fgan_1d.png) and prints a markdown table (into BUILD_NOTES.md and README.md with --write_notes).
"""

from __future__ import annotations

import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from jaxgan import fgan1d  # noqa: E402
from jaxgan.plotting import pyplot, save_figure  # noqa: E402
from jaxgan.losses import F_DIVERGENCES  # noqa: E402
from jaxgan.cli import define_figure_flag  # noqa: E402
from scripts.notes import ROOT, figure_path, replace_block, run_script  # noqa: E402

_NUM_STEPS = flags.DEFINE_integer("num_steps", 4000, "f-GAN training steps per divergence.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 1024, "Samples of P and of Q per step.")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed (critic initialisation and every minibatch).")
_FIGURE = define_figure_flag(
    "figure", None, "Where the figure goes (default: docs/figures/fgan_1d.png with --write_notes, else runs/fgan_1d/)."
)
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Write the table into BUILD_NOTES.md and README.md.")

COLOURS = dict(zip(F_DIVERGENCES, matplotlib.colormaps["tab10"].colors))


def gaussian_pdf(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))


def _same(a: dict, b: dict, tolerance: float = 0.05) -> bool:
    return abs(a["mu"] - b["mu"]) <= tolerance and abs(a["sigma"] - b["sigma"]) <= tolerance


def main(argv):
    del argv
    mixture = fgan1d.MIXTURE
    grid = fgan1d.integration_grid(mixture)
    results = {}
    for name, divergence in F_DIVERGENCES.items():
        started = time.perf_counter()
        fit = jax.device_get(fgan1d.fit_gaussian(name, jax.random.key(_SEED.value), _NUM_STEPS.value,
                                                 _BATCH_SIZE.value))  # fmt: skip
        fit_seconds = time.perf_counter() - started
        exact = jax.device_get(fgan1d.exact_minimiser(name, mixture))
        # The exact local minimiser in the basin the f-GAN fit ended in: tells a local minimum from a bad fit.
        local = jax.device_get(fgan1d.exact_minimiser(name, mixture, start=(fit["mu"], fit["sigma"])))
        fit_divergence = float(fgan1d.divergence_on_grid(divergence, mixture, fit["mu"], fit["sigma"], grid))
        results[name] = dict(fit=fit, exact=exact, local=local, fit_divergence=fit_divergence)
        print(f"{name:<18s} f-GAN μ {fit['mu']:+.3f} σ {fit['sigma']:.3f} F̂ {fit['objective']:+.4f} "
              f"D_f {fit_divergence:+.4f} ({fit_seconds:.1f} s) | exact μ {exact['mu']:+.3f} "
              f"σ {exact['sigma']:.3f} D_f {exact['divergence']:+.4f} | exact local minimiser from the fit "
              f"μ {local['mu']:+.3f} σ {local['sigma']:.3f}", flush=True)  # fmt: skip

    x = np.linspace(-4.0, 6.0, 1001)
    p = np.exp(np.asarray(mixture.log_prob(x)))
    fig, axes = pyplot().subplots(2, 4, figsize=(16, 7.5))
    for ax, (name, result) in zip(axes.ravel(), results.items()):
        fit, exact = result["fit"], result["exact"]
        ax.fill_between(x, p, color="0.85", label="P (mixture)")
        ax.plot(x, gaussian_pdf(x, fit["mu"], fit["sigma"]), color=COLOURS[name], lw=2.2,
                label=f"f-GAN fit: μ={fit['mu']:.2f}, σ={fit['sigma']:.2f}")
        ax.plot(x, gaussian_pdf(x, exact["mu"], exact["sigma"]), "k--", lw=1.4,
                label=f"exact minimiser: μ={exact['mu']:.2f}, σ={exact['sigma']:.2f}")  # fmt: skip
        local = result["local"]
        if not _same(local, exact):
            ax.plot(x, gaussian_pdf(x, local["mu"], local["sigma"]), ":", color="0.3", lw=1.6,
                    label=f"exact local min. near fit: μ={local['mu']:.2f}, σ={local['sigma']:.2f}")  # fmt: skip
        ax.set_title(name.replace("_", " "), fontsize=12)
        ax.set_ylim(0.0, 0.95)
        ax.legend(fontsize=8, loc="upper left")
    ax = axes.ravel()[-1]
    for name, result in results.items():
        trajectory = result["fit"]["trajectory"]
        ax.plot(trajectory["mu"], trajectory["sigma"], color=COLOURS[name], lw=0.8, alpha=0.8)
        ax.plot(result["exact"]["mu"], result["exact"]["sigma"], "*", color=COLOURS[name], ms=12, mec="k")
    ax.plot(0.0, 1.0, "ko", ms=5)
    ax.set_xlabel("μ")
    ax.set_ylabel("σ")
    # No legend (it would cover the paths): the colours are those of the fits in the other panels.
    ax.set_title("f-GAN paths of (μ, σ) from ● (0, 1), colours as in\nthe other panels; ★ exact minimisers",
                 fontsize=10)  # fmt: skip
    fig.suptitle(f"One Gaussian fitted to P = 0.3 N(-1, 0.5²) + 0.7 N(2, 0.5²): f-GAN ({_NUM_STEPS.value} "
                 f"simultaneous Adam steps, batch {_BATCH_SIZE.value}, seed {_SEED.value}) vs the exact "
                 "minimiser of D_f(P‖Q)", fontsize=12)  # fmt: skip
    figure = figure_path(_FIGURE.value, "fgan_1d", "runs/fgan_1d", _WRITE_NOTES.value)
    save_figure(fig, figure, dpi=100)
    print(f"figure: {figure}", flush=True)

    lines = [
        f"f-GAN, one Gaussian fitted to P = 0.3 N(-1, 0.5²) + 0.7 N(2, 0.5²) (mean {mixture.mean():.3f}, std "
        f"{mixture.std():.3f}) from (μ, σ) = (0, 1): critic 2×64 tanh, {_NUM_STEPS.value} simultaneous Adam steps "
        f"(critic 1e-3, θ 3e-3), batch {_BATCH_SIZE.value}, seed {_SEED.value}, fit = mean of the last quarter of "
        "the iterates (`python scripts/reproduce_fgan_1d.py`). Exact: the global minimiser of D_f(P‖Q) by "
        "numerical integration; F̂ the critic's estimate (minibatch F(θ, ω), averaged like the fit); D_f computed "
        "on the grid:",
        "",
        "| divergence | fitted μ | fitted σ | exact-minimiser μ | exact-minimiser σ | F̂ at fit | D_f at fit | "
        "D_f at exact |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        fit, exact = result["fit"], result["exact"]
        cells = [fit["mu"], fit["sigma"], exact["mu"], exact["sigma"]]
        cells = [f"{v:.3f}" for v in cells] + [f"{v:.4f}" for v in (fit["objective"], result["fit_divergence"],
                                                                     exact["divergence"])]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    moments = fgan1d.moment_matching(mixture)
    lines += ["", f"KL closed form (moment matching): μ = {moments['mu']:.4f}, σ = {moments['sigma']:.4f}."]
    for name, result in results.items():
        fit, local, exact = result["fit"], result["local"], result["exact"]
        tail = fit["trajectory"]["mu"][-max(1, _NUM_STEPS.value // 4):]
        if not _same(local, exact):
            lines.append(f"{name}: the fit is in another basin than the global minimiser; the exact local "
                         f"minimiser there is μ = {local['mu']:.3f}, σ = {local['sigma']:.3f} "
                         f"(D_f {local['divergence']:.4f}).")  # fmt: skip
        elif not _same(fit, local):
            stalled = " θ did not move at all over the last quarter of the steps." if np.ptp(tail) == 0 else ""
            lines.append(f"{name}: the fit is not at a minimiser of D_f (D_f {result['fit_divergence']:.4f} at "
                         f"the fit, {local['divergence']:.4f} at the exact minimiser; critic's estimate F̂ "
                         f"{fit['objective']:.4f}).{stalled}")  # fmt: skip
    lines.append("jensen_shannon and gan are the same game up to a constant (F_JS = F_GAN + log 4), so their "
                 "f-GAN runs take the same steps.")
    table = "\n".join(lines)
    print(table)
    if _WRITE_NOTES.value:
        for path in (ROOT / "BUILD_NOTES.md", ROOT / "README.md"):
            replace_block(path, "fgan_1d", table)


if __name__ == "__main__":
    run_script(main)
