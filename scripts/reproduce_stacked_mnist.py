r"""Stacked MNIST mode counts of the unrolled GAN (Metz et al. 2016, Table 2 as reported in PacGAN Table 3).

    python scripts/reproduce_stacked_mnist.py [--ks=0,1,5,10] [--seeds=3] [--workdir=runs/stacked_mnist] \
        [--write_notes] [--config.KEY=VALUE ...]

experiments/stacked_mnist.py (a DCGAN G, a D of a quarter of G's width; `--config=experiments/stacked_mnist_paper.py`
for the paper's own networks and training setting) trained with the unrolled rule for each K in
--ks, --seeds seeds per K as one vmapped program, in its own resumable workdir (a finished sweep is reused, an
interrupted one resumes). The table (mean ± std over seeds of the modes produced, of 1000, and KL(p ‖ uniform) of
the triple histogram) goes beside the published numbers into BUILD_NOTES.md and README.md with --write_notes (block
`table_stacked_mnist`), with a figure of the final samples of the first seed of each K.
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np
from absl import flags
from ml_collections import config_flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan.cli import define_config_file, define_figure_flag  # noqa: E402
from jaxgan import plotting  # noqa: E402
from jaxgan.config import validate  # noqa: E402
from scripts.notes import ROOT, figure_path, publish, run_script, settings_that_differ, train_run  # noqa: E402

_CONFIG = define_config_file("config", str(ROOT / "experiments/stacked_mnist.py"), "Base config.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/stacked_mnist", "Parent directory of the sweeps.")
_KS = flags.DEFINE_list("ks", ["0", "1", "5", "10"], "Unrolling steps K to train.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per K, trained as one vmapped program.", lower_bound=1)
_FIGURE = define_figure_flag("figure", None, "Where the figure goes (default docs/figures/table_stacked_mnist.png with --write_notes, else WORKDIR/table_stacked_mnist.png).")
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Write the table into BUILD_NOTES.md and README.md.")

flags.register_validator(
    "ks", lambda ks: all(k.isdecimal() for k in ks), "must be non-negative integers (unrolling steps), e.g. --ks=0,1,5,10"
)

PUBLISHED = (
    "Published (Metz et al. 2016 as reported in PacGAN Table 3; modes of 1000 / KL): D of ¼ G's size: K=0 30.6 / "
    "5.99, K=1 65.4 / 5.91, K=5 236.4 / 4.67, K=10 327.2 / 4.66; D of ½ size: K=0 628 / 2.58, K=1 523.6 / 2.44, "
    "K=5 732 / 1.66, K=10 817.4 / 1.43."
)


def k_config(base, k: int):
    config = base.copy_and_resolve_references()
    config.update_rule, config.unroll_steps, config.num_seeds = "unrolled", k, _SEEDS.value
    validate(config)
    return config


def discriminator_size(config) -> str:
    """D's size beside G's, in the terms of the players' settings."""
    g, d = config.generator, config.discriminator
    if d.name == "small_dcgan":
        return f"D widths {tuple(d.widths)}, G widths {tuple(g.widths)}"
    return f"D of {d.base_width / g.base_width:g}× G's width"


def summary_table(results: dict[int, list[dict]], base) -> str:
    config_file = pathlib.Path(config_flags.get_config_filename(flags.FLAGS["config"]))  # a user's own file too
    experiment = config_file.stem
    changed = settings_that_differ(base, config_file, ignore=("unroll_steps", "update_rule"))
    setting = ", ".join(f"{k}={v}" for k, v in changed.items()) or "the experiment's defaults"
    lines = [
        f"Stacked MNIST ({experiment}, {base.num_steps} steps, {discriminator_size(base)}, {_SEEDS.value} seeds per K as one vmapped "
        f"program, {base.eval_num_samples} samples classified per evaluation; {setting}); mean ± std over seeds:",
        "",
        "| method | modes (of 1000) | KL(p ‖ uniform) |",
        "|---|---|---|",
    ]
    for k, runs in results.items():
        for prefix, label in (("", ""), ("ema_", ", EMA of G")):  # the EMA's row where the runs keep one
            if prefix + "modes" not in runs[0]:
                continue
            modes = np.array([r[prefix + "modes"] for r in runs], float)
            kl = np.array([r[prefix + "kl"] for r in runs], float)
            lines.append(f"| jaxgan, unrolled K={k}{label} | {modes.mean():.1f} ± {modes.std():.1f} | "
                         f"{kl.mean():.2f} ± {kl.std():.2f} |")  # fmt: skip
    return "\n".join(lines + ["", PUBLISHED])


def write_figure(results: dict[int, list[dict]], seed: int) -> None:
    """One row per K: the final samples of its first seed, `seed` (the config's)."""
    rows = []
    for k in results:
        snapshots = plotting.load_snapshots(pathlib.Path(_WORKDIR.value) / f"k{k}" / "samples")
        final = snapshots[max(snapshots)]
        rows.append(final[0] if final.ndim == 5 else final)  # [runs, n, H, W, 3] or one run's [n, H, W, 3]
    path = figure_path(_FIGURE.value, "table_stacked_mnist", _WORKDIR.value, _WRITE_NOTES.value)
    plotting.plot_image_rows(path, [f"K={k}" for k in results], [r[:16] for r in rows], title=f"Stacked MNIST, seed {seed}, final samples")
    print(f"figure: {path}")


def main(argv):
    del argv
    base = _CONFIG.value
    validate(base)  # every K's config checked before any of them trains
    configs = {int(k): k_config(base, int(k)) for k in _KS.value}
    results = {}
    for k, config in configs.items():
        start = time.perf_counter()
        out = train_run(config, str(pathlib.Path(_WORKDIR.value) / f"k{k}"))
        results[k] = out.get("runs", [out])
        mean = out.get("mean", out)
        ema = f"  | ema: modes {mean['ema_modes']:.1f}  kl {mean['ema_kl']:.3f}" if "ema_modes" in mean else ""
        print(f"K={k:<3d} modes {mean['modes']:.1f}  kl {mean['kl']:.3f}{ema}  ({time.perf_counter() - start:.0f} s)",
              flush=True)  # fmt: skip
    write_figure(results, base.seed)
    publish("table_stacked_mnist", summary_table(results, base), results, pathlib.Path(_WORKDIR.value), _WRITE_NOTES.value)


if __name__ == "__main__":
    run_script(main)
