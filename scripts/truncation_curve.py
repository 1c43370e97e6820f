r"""The truncation trick's trade-off (Brock et al. 2019, Section 3.1 and Figure 4(a)): FID and Inception Score of a
trained image run's G, evaluated on noise truncated to [−ψ, ψ] for several ψ.

    python scripts/truncation_curve.py --workdir=runs/biggan_cmnist [--truncations=0,2,1.5,1,0.75,0.5,0.25] \
        [--figure=WORKDIR/truncation.png] [--write_notes]

The run's final checkpoint and its config (WORKDIR/config.json) are loaded; each ψ is the run's own image
evaluation with `eval.truncation = ψ` (0: untruncated noise, the run's eval.json), on the same fixed evaluation
noise stream. The figure plots FID against Inception Score, one point per ψ (lower truncation: higher IS, and FID
first falling then rising as variety is lost), beside a row of samples per ψ. With --write_notes the table goes
into BUILD_NOTES.md and README.md (block `truncation_curve`).
"""

from __future__ import annotations

import math
import pathlib
import sys

import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan import plotting  # noqa: E402
from jaxgan.cli import define_figure_flag  # noqa: E402
from scripts.notes import evaluate_at, load_run, publish, run_script  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A finished (or checkpointed) image run.", required=True)
_TRUNCATIONS = flags.DEFINE_list("truncations", ["0", "2", "1.5", "1", "0.75", "0.5", "0.25"], "Values of ψ (0: none).")
_FIGURE = define_figure_flag("figure", None, "Where the figure goes (default WORKDIR/truncation.png).")
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Write the table into BUILD_NOTES.md and README.md.")


def of_sampled_g(summary: dict) -> dict:
    """The metrics of the generator the samples come from: the EMA of G when the run keeps one."""
    if "ema_fid" in summary:
        return {k[len("ema_"):]: v for k, v in summary.items() if k.startswith("ema_")}
    return summary


def table(results: dict[float, dict]) -> str:
    extra = [k for k in ("class_accuracy", "precision", "recall") if k in next(iter(results.values()))]
    lines = ["| ψ | FID ↓ | IS ↑ | " + " | ".join(extra) + " |", "|---|---|---|" + "---|" * len(extra)]
    for psi, r in results.items():
        cells = [f"{r[k]:.3f}" for k in extra]
        lines.append(f"| {'none' if psi == 0 else psi} | {r['fid']:.1f} | {r['inception_score']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(path: pathlib.Path, results: dict[float, dict], samples: dict[float, np.ndarray], title: str) -> None:
    fig, ax = plotting.pyplot().subplots(figsize=(4.5, 3.5))
    psis = list(results)
    fid = [results[p]["fid"] for p in psis]
    score = [results[p]["inception_score"] for p in psis]
    ax.plot(score, fid, "o-")
    for i, (p, x, y) in enumerate(zip(psis, score, fid)):  # labels alternate above and below: close points stay legible
        label = "none" if p == 0 else f"ψ={p:g}"
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(-30 * (i % 2) + 4, 6 - 16 * (i % 2)), fontsize=7)
    ax.set_xlabel("Inception Score (digit classifier) ↑")
    ax.set_ylabel("FID (digit classifier) ↓")
    ax.set_title(title, fontsize=9)
    plotting.save_figure(fig, path)
    rows = [samples[p][:10] for p in psis]
    plotting.plot_image_rows(
        path.with_name(path.stem + "_samples.png"), ["none" if p == 0 else f"ψ={p:g}" for p in psis], rows,
        title="samples on the same noise, truncated",
    )  # fmt: skip


def truncations(values: list[str]) -> list[float]:
    """The --truncations values as ψ ≥ 0 (0: none), or a usage error before anything is evaluated."""
    try:
        psis = [float(value) for value in values]
    except ValueError:
        raise app.UsageError(f"--truncations={','.join(values)}: must be numbers ψ >= 0 (0: none), e.g. 0,1,0.5") from None
    if not psis or not all(math.isfinite(p) and p >= 0 for p in psis):
        raise app.UsageError(f"--truncations={','.join(values)}: must be finite numbers ψ >= 0 (0: none), e.g. 0,1,0.5")
    return psis


def main(argv):
    del argv
    workdir = pathlib.Path(_WORKDIR.value)
    psis = truncations(_TRUNCATIONS.value)
    config, task, game, state, step = load_run(workdir, "images")
    results, samples = {}, {}
    for psi in psis:
        summary, samples[psi] = evaluate_at(config, task, game, state, psi)
        results[psi] = of_sampled_g(summary)
        print(f"ψ={psi:g}: fid {results[psi]['fid']:.2f}  inception_score {results[psi]['inception_score']:.3f}", flush=True)
    figure = pathlib.Path(_FIGURE.value or workdir / "truncation.png")
    plot(figure, results, samples, f"{workdir.parent.name}/{workdir.name}, step {step}: the truncation trade-off")
    text = table(results)
    which = "the EMA of G" if config.ema_decay > 0 else "G"
    body = f"The truncation trick on `{workdir}` (step {step}; {which}, the run's evaluation at each ψ):\n\n{text}"
    publish("truncation_curve", body, {str(k): v for k, v in results.items()}, workdir, _WRITE_NOTES.value)
    print(f"figure: {figure}")


if __name__ == "__main__":
    run_script(main)
