r"""One table of image GANs on mnist_5k: FID, KID, IS, precision, recall (and class accuracy for the conditioned
ones) against the 1000 held-out digits, mean ± std over seeds, with a figure of every system's samples.

    python scripts/reproduce_image_table.py [--experiments=dcgan_mnist,cgan_mnist,...] [--seeds=3]
        [--num_steps=N] [--workdir=runs/image_table] [--write_notes] [--block=image_table] [--finished_only]
        [--data=stacked_mnist] [--vmap_seeds] [--norecords]

Each (experiment, seed) is one run of `experiments/NAME.py` in WORKDIR/NAME/seed_S, trained with the runner
(resumable: rerunning the command continues unfinished runs and reuses finished ones). The metrics are the image
evaluation's (`jaxgan.metrics.evaluations.image_evaluation`: the shipped digit classifier's features and logits, so
the scale is not Inception's and not comparable with published MNIST numbers computed otherwise). The figure
(`docs/figures/image_table.png` with --write_notes, else WORKDIR/image_table.png) has one row per system: the first eight final samples of its first finished seed.
--finished_only trains nothing and tabulates the finished runs only (runs trained elsewhere, e.g. on a GPU). With
--write_notes the table goes into BUILD_NOTES.md and README.md (block `image_table`, or --block).

Every finished run is also recorded in docs/results/BLOCK/NAME/seed_S.json (its eval.json, with its first eight
samples beside it) when the table is written, and reused from there by later runs of the command with the same
settings: run folders are scratch, the recorded results are not, so a table over seeds can be completed on another
day or machine. With --vmap_seeds an experiment's missing seeds train together as one vmapped run (the runner's
`num_seeds`), split into one result per seed. An `aggregate.json` beside them holds {"config" (seed 0's), "step",
"aggregate": {"seeds", "n", "mean", "std"}}: the mean and population std of seeds whose per-run files were not
kept, pooled with the other seeds exactly. Its figure row is `aggregate.samples.npy`, kept (with --write_notes)
from a finished run of its first seed in WORKDIR/NAME/seed_S; without either the system has no row.

--data=stacked_mnist trains every experiment, unchanged otherwise, on Stacked MNIST (three digits as R, G, B;
Metz et al. 2016, Section 3.3) and adds the mode columns: modes covered of 1000 and KL(p ‖ uniform) of the triples'
histogram over `--eval_num_samples` samples (10000 by default, as experiments/stacked_mnist.py), beside the FID and
friends of the channels' concatenated classifier features (runs recorded before those existed have the mode columns
only: a system that pools such seeds with newer ones averages those columns over the newer seeds alone). Compare with Metz et al.'s DCGAN (PacGAN Table 3: 30.6 modes with D a quarter of G's
width at K = 0, 628 with half), which these experiments' full-width discriminators are not.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan import plotting  # noqa: E402
from jaxgan.config import validate  # noqa: E402
from jaxgan.plotting import load_snapshots  # noqa: E402
from jaxgan.registry import unknown_name  # noqa: E402
from jaxgan.cli import define_figure_flag  # noqa: E402
from scripts.notes import (  # noqa: E402
    ROOT, RESULTS, fail, figure_path, finished_result, load_experiment, publish, record_result, record_samples, recorded_result, recorded_samples, run_script, train_run,
)  # fmt: skip

_EXPERIMENTS = flags.DEFINE_list(
    "experiments", ["dcgan_mnist", "cgan_mnist", "acgan_mnist", "wgan_gp_mnist", "infogan_mnist"],
    "Experiment files (experiments/NAME.py) to train and tabulate.",
)  # fmt: skip
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per experiment (0, 1, ...).")
_NUM_STEPS = flags.DEFINE_integer("num_steps", None, "Overrides every experiment's num_steps.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/image_table", "Parent folder of the runs.")
_FIGURE = define_figure_flag("figure", None, "Where the figure goes (default docs/figures/image_table.png with --write_notes, else WORKDIR/image_table.png).")
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Write the table into BUILD_NOTES.md and README.md.")
_BLOCK = flags.DEFINE_string("block", "image_table", "Name of the notes block the table goes to (with --write_notes).")
_DATA = flags.DEFINE_enum(
    "data", None, ["mnist_5k", "stacked_mnist"], "Train every experiment on this data set instead of its own."
)
_EVAL_NUM_SAMPLES = flags.DEFINE_integer(
    "eval_num_samples", None, "Overrides every experiment's eval_num_samples (default 10000 with --data=stacked_mnist)."
)
_FINISHED_ONLY = flags.DEFINE_boolean(
    "finished_only", False,
    "Train nothing: tabulate the runs that have finished (e.g. trained on another machine) and list those left out.",
)  # fmt: skip

_RECORDS = flags.DEFINE_boolean(
    "records", True,
    "Reuse the runs recorded in docs/results/BLOCK/ (train only what is missing); with --write_notes, record the "
    "new ones there.",
)  # fmt: skip

_VMAP_SEEDS = flags.DEFINE_boolean(
    "vmap_seeds", False,
    "Train an experiment's missing seeds together as one vmapped run (config.num_seeds; WORKDIR/NAME/seeds_A-B), "
    "each seed's result then tabulated and recorded as its own: faster on an accelerator.",
)  # fmt: skip


@flags.validator("experiments")
def _image_experiments(names: list[str]) -> bool:
    """Every name one of the experiments/NAME.py with the image evaluation, whose metrics the table shows."""
    allowed = [p.stem for p in sorted((ROOT / "experiments").glob("*.py")) if "images" in load_experiment(p.stem).evaluations]
    for name in names:
        if name not in allowed:
            raise flags.ValidationError(unknown_name("image experiment", name, allowed))
    return True


# (eval.json key, column title, format); class accuracy only where the experiment conditions on classes.
COLUMNS = (
    ("fid", "FID ↓", ".1f"), ("kid", "KID ↓", ".1f"), ("inception_score", "IS ↑", ".2f"),
    ("precision", "precision ↑", ".3f"), ("recall", "recall ↑", ".3f"), ("class_accuracy", "class accuracy ↑", ".3f"),
    ("code_accuracy", "code accuracy ↑", ".3f"), ("modes", "modes of 1000 ↑", ".1f"), ("kl", "KL ↓", ".2f"),
)  # fmt: skip


def pooled(entries: list[dict], key: str) -> tuple[int, float, float]:
    """(n, mean, population variance) of `key` over runs and recorded aggregates of earlier runs
    ({"aggregate": {"n", "mean", "std"}}, e.g. seeds whose per-run files were not kept), pooled exactly."""
    parts = []
    for e in entries:
        if "aggregate" in e:
            a = e["aggregate"]
            if key in a["mean"]:
                parts.append((a["n"], a["mean"][key], a["std"][key] ** 2))
        elif key in e:
            parts.append((1, float(e[key]), 0.0))
    n = sum(k for k, _, _ in parts)
    if not n:
        return 0, float("nan"), float("nan")
    mean = sum(k * m for k, m, _ in parts) / n
    return n, mean, max(sum(k * (v + m * m) for k, m, v in parts) / n - mean * mean, 0.0)


def cell(entries: list[dict], key: str, fmt: str) -> str:
    n, mean, var = pooled(entries, key)
    if not n:
        return "—"
    return f"{mean:{fmt}} ± {var ** 0.5:{fmt}}" if n > 1 else f"{mean:{fmt}}"


def table(results: dict[str, list[dict]], num_steps: dict[str, int]) -> str:
    """Markdown rows of mean ± std over each system's runs (per-run results or recorded aggregates)."""
    present = lambda key, e: key in (e["aggregate"]["mean"] if "aggregate" in e else e)  # noqa: E731
    used = [c for c in COLUMNS if any(present(c[0], e) for runs in results.values() for e in runs)]
    lines = [
        "| system | steps | seeds | " + " | ".join(title for _, title, _ in used) + " |",
        "|---|---|---|" + "---|" * len(used),
    ]
    for name, runs in results.items():
        cells = [cell(runs, key, fmt) for key, _, fmt in used]
        seeds = sum(e["aggregate"]["n"] if "aggregate" in e else 1 for e in runs)
        lines.append(f"| `{name}` | {num_steps[name]} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def split_seeds(result: dict, samples: np.ndarray, configs: list) -> list[tuple[dict, np.ndarray]]:
    """A vmapped run of several seeds (its eval.json `result`, its final samples [runs, N, ...]) as one
    (result, first eight samples) per seed, each result with the config of that seed alone: the run's seeds were
    `configs`' seeds, in order, and a seed trained in a vmapped run is the same run as one trained alone."""
    if [r["seed"] for r in result["runs"]] != [c.seed for c in configs]:
        raise ValueError(f"the vmapped run trained seeds {[r['seed'] for r in result['runs']]}, not {[c.seed for c in configs]}")
    return [
        ({**{k: v for k, v in run.items() if k != "seed"}, "step": result["step"], "config": config.to_dict(),
          "trained_with_seeds": [c.seed for c in configs]}, np.asarray(samples[i][:8], np.float32))
        for i, (run, config) in enumerate(zip(result["runs"], configs))
    ]  # fmt: skip


def train_seeds_together(name: str, seeds: list[int], workdir: pathlib.Path) -> dict[int, tuple[dict, np.ndarray]]:
    """Seeds `seeds[0]`..`seeds[-1]` of experiment NAME as one vmapped run: {seed: (result, samples)}."""
    seeds = list(range(seeds[0], seeds[-1] + 1))
    config = run_config(name, seeds[0])
    config.num_seeds = len(seeds)
    run_dir = workdir / name / f"seeds_{seeds[0]}-{seeds[-1]}"
    result = finished_result(config, run_dir) if _FINISHED_ONLY.value else train_run(config, run_dir)
    if result is None:
        return {}
    snapshots = load_snapshots(run_dir / "samples")
    split = split_seeds(result, snapshots[max(snapshots)], [run_config(name, s) for s in seeds])
    return dict(zip(seeds, split))


def final_samples(run_dir: pathlib.Path) -> np.ndarray:
    """The first eight samples of a run's last snapshot, as the figure draws them."""
    snapshots = load_snapshots(run_dir / "samples")
    return np.asarray(snapshots[max(snapshots)][:8], np.float32)


def aggregate_samples(aggregate: pathlib.Path, config, run_dir: pathlib.Path, write: bool) -> np.ndarray | None:
    """The figure's samples for seeds recorded only as an aggregate (no per-run files, so no samples of their
    own): those kept beside `aggregate`, else those of a finished run of `config` (the aggregate's first seed) in
    `run_dir`, then kept beside `aggregate` when `write`; None if neither exists."""
    samples = recorded_samples(aggregate)
    if samples is None and finished_result(config, run_dir) is not None:
        samples = final_samples(run_dir)
        if write:
            record_samples(aggregate, samples)
    return samples


def run_config(name: str, seed: int):
    """experiments/NAME.py at `seed`, with the command's step count, data and evaluation size."""
    config = load_experiment(name)
    config.seed = seed
    if _NUM_STEPS.value:
        config.num_steps = _NUM_STEPS.value
    if _DATA.value:
        config.data.name = _DATA.value
    if _EVAL_NUM_SAMPLES.value or _DATA.value == "stacked_mnist":
        config.eval_num_samples = _EVAL_NUM_SAMPLES.value or 10000
    validate(config)
    return config


def main(argv):
    del argv
    workdir = pathlib.Path(_WORKDIR.value)
    results: dict[str, list[dict]] = {}
    steps: dict[str, int] = {}
    rows, labels = [], []
    for name in _EXPERIMENTS.value:
        records = RESULTS / _BLOCK.value / name
        aggregate = recorded_result(run_config(name, 0), records / "aggregate.json") if _RECORDS.value else None
        pooled = aggregate["aggregate"]["seeds"] if aggregate else []
        if pooled and max(pooled) >= _SEEDS.value:
            fail(f"{records / 'aggregate.json'} pools seeds {pooled}, which cannot be told apart, beyond "
                 f"--seeds={_SEEDS.value}: give --seeds={max(pooled) + 1} or more, or --norecords")
        runs = [{"aggregate": aggregate["aggregate"]}] if aggregate else []
        drawn = {}  # seed: its samples; the figure's row is the first seed's
        if aggregate:
            first = min(aggregate["aggregate"]["seeds"])
            samples = aggregate_samples(records / "aggregate.json", run_config(name, first),
                                        workdir / name / f"seed_{first}", _WRITE_NOTES.value)  # fmt: skip
            if samples is not None:
                drawn[first] = samples
        wanted = [s for s in range(_SEEDS.value) if not (aggregate and s in aggregate["aggregate"]["seeds"])]
        recorded = {}
        for seed in wanted if _RECORDS.value else ():
            result = recorded_result(run_config(name, seed), records / f"seed_{seed}.json")
            if result is not None:
                recorded[seed] = (result, recorded_samples(records / f"seed_{seed}.json"))
        missing = [s for s in wanted if s not in recorded]
        vmapped = _VMAP_SEEDS.value and len(missing) > 1
        together = train_seeds_together(name, missing, workdir) if vmapped else {}
        for seed in wanted:
            run_dir, record = workdir / name / f"seed_{seed}", records / f"seed_{seed}.json"
            result, samples = recorded.get(seed) or together.get(seed) or (None, None)
            if result is None and not vmapped:
                config = run_config(name, seed)
                result = finished_result(config, run_dir) if _FINISHED_ONLY.value else train_run(config, run_dir)
                if result is not None:
                    samples = final_samples(run_dir)
            if result is not None and seed not in recorded and _RECORDS.value and _WRITE_NOTES.value:
                record_result(record, result, samples)
            if result is None:
                print(f"left out (not finished): {run_dir}")
                continue
            runs.append({k: v for k, v in result.items() if k != "config"})
            if samples is not None:
                drawn[seed] = samples
        if drawn:
            rows.append(drawn[min(drawn)])
            labels.append(name)
        results[name], steps[name] = runs, run_config(name, 0).num_steps
    text = table(results, steps)
    seeds = f"up to {_SEEDS.value} seeds (the seeds column), from 0" if _SEEDS.value > 1 else "seed 0"
    if _DATA.value == "stacked_mnist":
        about = (f"Image GANs on stacked_mnist ({seeds}; each experiment's defaults but the data; modes of the 1000 digit "
                 "triples and KL(p ‖ uniform) of the shipped classifier's reading of each channel, the other metrics in the "
                 "channels' concatenated features against held-out triples; mean ± std over seeds):")
    else:
        data = ", ".join(sorted({run_config(name, 0).data.name for name in _EXPERIMENTS.value}))
        about = (f"Image GANs on {data} ({seeds}; each experiment's defaults; metrics against the data set's held-out "
                 "images in the shipped classifier's feature space; mean ± std over seeds):")
    body = "\n".join([
        about,
        "",
        text,
    ])  # fmt: skip
    figure = figure_path(_FIGURE.value, "image_table", workdir, _WRITE_NOTES.value)
    if rows:
        plotting.plot_image_rows(figure, labels, rows, title="final samples, first finished seed")
        print(f"figure: {figure}")
    publish(_BLOCK.value, body, results, workdir, _WRITE_NOTES.value)
    (workdir / "summary_steps.json").write_text(json.dumps(steps))


if __name__ == "__main__":
    run_script(main)
