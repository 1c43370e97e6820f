r"""Metz et al. 2016, Figure 1: the ring of 8 Gaussians with K = 0 and K = 10 unrolling steps, over seeds.

    python scripts/reproduce_unrolled_ring.py --seeds=5 --workdir=runs/unrolled_ring [--write_notes] \
        [--config.KEY=VALUE ...]

Trains `experiments/ring8.py` (plus any --config overrides) for every K in --unroll_steps and every seed, each
run in its own resumable workdir (a finished run is reused, an interrupted one resumes), then writes
  figure: rows K, columns snapshots over training of seed 0 (docs/figures/unrolled_ring.png);
  table: mean ± std over seeds of modes, high-quality fraction and reverse KL, beside the published numbers,
into BUILD_NOTES.md and README.md with --write_notes.
"""

from __future__ import annotations

import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxgan import plotting  # noqa: E402
from jaxgan.config import validate  # noqa: E402
from jaxgan.data.mixtures import make_mixture  # noqa: E402
from scripts.notes import ROOT, mixture_cells, publish, settings_that_differ, train_run  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", str(ROOT / "experiments/ring8.py"), "Base config.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/unrolled_ring", "Parent directory of the runs.")
_SEEDS = flags.DEFINE_integer("seeds", 5, "Seeds 0 .. seeds-1 for every K.")
_UNROLL = flags.DEFINE_list("unroll_steps", ["0", "10"], "Values of K, one figure row each.")
_FIGURE = flags.DEFINE_string("figure", str(ROOT / "docs/figures/unrolled_ring.png"), "Where the figure goes.")
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Write the table into BUILD_NOTES.md and README.md.")

PUBLISHED = (
    "Published (VEEGAN Table 1, ring of 8, average of 5 runs; modes / high-quality fraction): GAN 1 / 99.3%, "
    "unrolled GAN 7.6 / 35.6%, VEEGAN 8 / 52.9%."
)


def run_all(base):
    results: dict[int, list[dict]] = {}
    for k in map(int, _UNROLL.value):
        for seed in range(_SEEDS.value):
            config = base.copy_and_resolve_references()
            config.unroll_steps, config.seed = k, seed
            workdir = pathlib.Path(_WORKDIR.value) / f"k{k}_seed{seed}"
            start = time.perf_counter()
            result = train_run(config, str(workdir))
            print(
                f"K={k:<3d} seed={seed}  modes {result['modes']}  HQ {result['high_quality_fraction']:.3f}  "
                f"rKL {result['reverse_kl']:.3f}  ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
            results.setdefault(k, []).append(result)
    return results


def summary_table(results, base) -> str:
    changed = settings_that_differ(base, "ring8", ignore=("unroll_steps",))
    setting = ", ".join(f"{k}={v}" for k, v in changed.items()) or "the paper setting of experiments/ring8.py"
    lines = [
        f"Ring of 8 ({base.num_steps} steps, {_SEEDS.value} seeds; {setting}); mean ± std over seeds:",
        "",
        "| method | modes (of 8) | high-quality fraction | reverse KL | all 8 modes |",
        "|---|---|---|---|---|",
    ]
    for k, runs in results.items():
        cells = mixture_cells(runs)
        full = sum(r["modes"] == 8 for r in runs)
        lines.append(f"| jaxgan, unrolled K={k} | {' | '.join(cells)} | {full}/{len(runs)} seeds |")
    lines += ["", PUBLISHED]
    return "\n".join(lines)


def main(argv):
    del argv
    base = _CONFIG.value
    validate(base)
    results = run_all(base)
    mixture = make_mixture(base.data.name, base.data.num_modes, base.data.scale, base.data.std)
    rows = [
        (f"K = {k}", plotting.load_snapshots(pathlib.Path(_WORKDIR.value) / f"k{k}_seed0" / "samples"))
        for k in results
    ]
    figure = pathlib.Path(_FIGURE.value)
    data = np.asarray(mixture.sample(jax.random.key(0), base.eval_num_samples))
    plotting.plot_sample_grid(
        figure, rows, mixture.means, title="Ring of 8 Gaussians, seed 0: samples (blue), data (red)", data=data
    )
    table = summary_table(results, base)
    publish("unrolled_ring", table, results, pathlib.Path(_WORKDIR.value), _WRITE_NOTES.value)


if __name__ == "__main__":
    app.run(main)
