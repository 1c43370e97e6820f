r"""Mode-coverage tables on the ring of 8 and the grid of 25 over many seeds, one vmapped program per method.

    python scripts/reproduce_mixture_tables.py --config=experiments/ring8_lr1e3.py --seeds=10 \
        --workdir=runs/table_ring8 [--methods=k0,k10,r1] [--write_notes] [--config.KEY=VALUE ...]
    python scripts/reproduce_mixture_tables.py --config=experiments/grid25_deep.py --methods=consensus \
        --workdir=runs/table_grid_deep --block=table_grid_deep --write_notes

Every method trains `--seeds` seeds together (`num_seeds`, one `jax.vmap`ped program) in its own resumable
workdir under --workdir (a finished sweep is reused, an interrupted one resumes). The table (mean ± std over seeds
of modes, high-quality fraction, reverse KL, and how many seeds cover every mode) goes beside the published
numbers into BUILD_NOTES.md and README.md with --write_notes (block `table_ring` or `table_grid`).
"""

from __future__ import annotations

import pathlib
import sys
import time

import jax
import numpy as np
from absl import flags
from ml_collections import config_flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan.cli import define_config_file, define_figure_flag  # noqa: E402
from jaxgan import plotting  # noqa: E402
from jaxgan.config import set_by_path, validate  # noqa: E402
from jaxgan.data.mixtures import make_mixture  # noqa: E402
from jaxgan.registry import unknown_name  # noqa: E402
from scripts.notes import ROOT, fail, figure_path, mixture_cells, publish, run_script, settings_that_differ, train_run  # noqa: E402

_CONFIG = define_config_file("config", str(ROOT / "experiments/ring8_lr1e3.py"), "Base config.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/table_ring8", "Parent directory of the sweeps.")
_SEEDS = flags.DEFINE_integer("seeds", 10, "Seeds seed .. seed+seeds-1, trained as one program per method.", lower_bound=1)
_FIGURE = define_figure_flag(
    "figure", None, "Where the figure goes (default docs/figures/BLOCK.png with --write_notes, else WORKDIR/BLOCK.png)."
)
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Write the table into BUILD_NOTES.md and README.md.")
_BLOCK = flags.DEFINE_string("block", None, "Name of the notes block and figure (default table_ring or table_grid).")

# name: (label, overrides of the base config)
METHODS = {
    "k0": ("unrolled K=0 (simultaneous)", {"update_rule": "unrolled", "unroll_steps": 0}),
    "k1": ("unrolled K=1", {"update_rule": "unrolled", "unroll_steps": 1}),
    "k5": ("unrolled K=5", {"update_rule": "unrolled", "unroll_steps": 5}),
    "k10": ("unrolled K=10", {"update_rule": "unrolled", "unroll_steps": 10}),
    "consensus": ("consensus (γ=1)", {"update_rule": "consensus", "consensus_gamma": 1.0}),
    "extragradient": ("extragradient", {"update_rule": "extragradient"}),
    "r1": ("simultaneous + R1 (γ=1)", {"update_rule": "simultaneous", "penalty": "r1", "penalty_weight": 1.0}),
}
_METHODS = flags.DEFINE_list("methods", list(METHODS), f"Methods to train, from {', '.join(METHODS)}.")


@flags.validator("methods")
def _known_methods(names: list[str]) -> bool:
    for name in names:
        if name not in METHODS:
            raise flags.ValidationError(unknown_name("method", name, METHODS))
    return True


PUBLISHED = {
    "ring": (
        "Published (VEEGAN Table 1, ring of 8, 5 runs; modes / high-quality fraction): GAN 1 / 99.3%, unrolled GAN "
        "7.6 / 35.6%, VEEGAN 8 / 52.9%. PacGAN Table 1 (a ring of radius 1 with std 0.01, 10 trials; modes / "
        "high-quality fraction / reverse KL): GAN 6.3 / 98.2% / 0.45, PacGAN2 7.9 / 95.6% / 0.07, PacGAN4 7.8 / "
        "95.9% / 0.07."
    ),
    "grid": (
        "Published (grid of 25; modes / high-quality fraction / reverse KL): VEEGAN Table 1: GAN 3.3 / 0.5%, "
        "unrolled GAN 23.6 / 16%, VEEGAN 24.6 / 40%; PacGAN Table 1: GAN 17.3 / 94.8% / 0.70, "
        "PacGAN4 24.8 / 93.6% / 0.04."
    ),
}


def method_config(base, overrides: dict):
    config = base.copy_and_resolve_references()
    config.num_seeds = _SEEDS.value
    for key, value in overrides.items():
        set_by_path(config, key, value)
    validate(config)
    return config


def run_all(configs: dict) -> dict[str, list[dict]]:
    results = {}
    for name, config in configs.items():
        start = time.perf_counter()
        out = train_run(config, str(pathlib.Path(_WORKDIR.value) / name))
        runs = out.get("runs", [out])  # one seed: eval.json is that run's own summary
        mean = out.get("mean", out)
        print(
            f"{name:<14s} modes {mean['modes']:.1f}  HQ {mean['high_quality_fraction']:.3f}  "
            f"rKL {mean['reverse_kl']:.3f}  ({time.perf_counter() - start:.0f} s for {_SEEDS.value} seeds)",
            flush=True,
        )
        results[name] = runs
    return results


def summary_table(results: dict[str, list[dict]], base) -> str:
    mixture = base.data.name
    num_modes = base.data.num_modes
    per_method = {key for _, overrides in METHODS.values() for key in overrides}
    changed = settings_that_differ(base, "ring8" if mixture == "ring" else "grid25", ignore=per_method)
    setting = ", ".join(f"{k}={v}" for k, v in changed.items()) or "the experiment's defaults"
    title = "Ring of 8" if mixture == "ring" else f"Grid of {num_modes}"
    lines = [
        f"{title} ({base.num_steps} steps, {_SEEDS.value} seeds each trained as one vmapped program; {setting}); "
        "mean ± std over seeds:",
        "",
        f"| method | modes (of {num_modes}) | high-quality fraction | reverse KL | all {num_modes} modes |",
        "|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        rows = [(METHODS[name][0], runs)]
        if "ema_modes" in runs[0]:  # the EMA of G, evaluated on the same noise
            rows.append((f"{METHODS[name][0]}, EMA of G", [{k[4:]: v for k, v in r.items() if k.startswith("ema_")} for r in runs]))
        for label, group in rows:
            full = sum(r["modes"] == num_modes for r in group)
            lines.append(f"| jaxgan, {label} | {' | '.join(mixture_cells(group))} | {full}/{len(group)} seeds |")
    lines += ["", PUBLISHED[mixture]]
    return "\n".join(lines)


def write_figure(results: dict[str, list[dict]], base) -> None:
    """Rows: methods; columns: snapshots over training of the first seed."""
    mixture = make_mixture(base.data.name, base.data.num_modes, base.data.scale, base.data.std)
    rows = []
    for name in results:
        snapshots = plotting.load_snapshots(pathlib.Path(_WORKDIR.value) / name / "samples")
        first = {step: v[0] if v.ndim == 3 else v for step, v in snapshots.items()}  # [runs, n, 2] or one run's [n, 2]
        rows.append((METHODS[name][0].replace(" (", "\n("), first))
    path = figure_path(_FIGURE.value, block_name(base), _WORKDIR.value, _WRITE_NOTES.value)
    data = np.asarray(mixture.sample(jax.random.key(0), base.eval_num_samples))
    title = f"{'Ring of 8' if base.data.name == 'ring' else 'Grid of 25'}, seed {base.seed}: samples (blue), data (red)"
    plotting.plot_sample_grid(path, rows, mixture.means, title=title, data=data)
    print(f"figure: {path}")


def block_name(base) -> str:
    return _BLOCK.value or f"table_{base.data.name}"


def main(argv):
    del argv
    base = _CONFIG.value
    validate(base)  # every method's config checked before any of them trains
    configs = {name: method_config(base, METHODS[name][1]) for name in _METHODS.value}
    if "mixture" not in base.evaluations:
        fail(f"--config={config_flags.get_config_filename(flags.FLAGS['config'])}: the table needs a ring or grid "
             f"mixture with the 'mixture' evaluation (e.g. experiments/ring8.py, experiments/grid25.py), not data "
             f"{base.data.name!r} with the evaluations {list(base.evaluations)}")  # fmt: skip
    results = run_all(configs)
    write_figure(results, base)
    table = summary_table(results, base)
    publish(block_name(base), table, results, pathlib.Path(_WORKDIR.value), _WRITE_NOTES.value)


if __name__ == "__main__":
    run_script(main)
