"""Helpers of the reproduction and benchmark scripts: train one run (resumable, with progress), load an experiment,
time contenders fairly on a shared machine, and replace a marked block in BUILD_NOTES.md / README.md with fresh
results: `<!-- NAME:start -->…<!-- NAME:end -->`."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable, Iterable

import numpy as np

from jaxgan.cli import fail  # noqa: F401 - the scripts' one-line error
from jaxgan.cli import run as run_script  # noqa: F401 - absl.app.run with one-line errors
from jaxgan.writers import save_npy_atomic, write_text_atomic

ROOT = pathlib.Path(__file__).resolve().parents[1]


def replace_block(path: pathlib.Path, name: str, body: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    write_text_atomic(path, text)  # BUILD_NOTES.md and README.md are never left torn


def train_run(config, workdir) -> dict:
    """`train_and_evaluate` with its console progress prefixed by the run's folder name, since a table script trains
    several runs in turn. A SIGTERM (preemption) has already written a checkpoint: say so in one line and exit 0, so
    that rerunning the same command resumes every run where it stopped."""
    import sys

    from jaxgan.train import Preempted, train_and_evaluate

    label = pathlib.Path(workdir).name
    finished = finished_result(config, workdir)
    if finished is not None:
        print(f"[{label}] finished earlier: reusing {pathlib.Path(workdir) / 'eval.json'}", flush=True)
        return finished
    try:
        return train_and_evaluate(config, str(workdir), echo=lambda line: print(f"[{label}] {line}", flush=True))
    except Preempted as stop:
        print(f"preempted: {workdir}: {stop}", flush=True)
        sys.exit(0)


def finished_result(config, workdir) -> dict | None:
    """The eval.json of a run in `workdir` that finished `config` (same settings, a setting newer than the run at
    its default; final step), else None: a table script reruns reuse it as it is, without evaluating again (and so
    on another machine: runs trained on a GPU are tabulated here with the GPU's evaluation)."""
    return recorded_result(config, pathlib.Path(workdir) / "eval.json")


# The results behind the README's tables, one JSON file per finished run (its eval.json), kept in the repository:
# run folders are scratch (runs/ is not committed), so a table grows over sessions and machines from here.
RESULTS = ROOT / "docs" / "results"


def recorded_result(config, path: pathlib.Path) -> dict | None:
    """The result recorded at `path` (`record_result`) if it is a finished run of `config`, else None."""
    import json

    from jaxgan.config import config_differences

    if not path.exists():
        return None
    result = json.loads(path.read_text())
    same = "config" in result and not config_differences(result["config"], config)
    return result if same and result.get("step") == config.num_steps else None


def record_result(path: pathlib.Path, result: dict, samples: np.ndarray | None = None) -> None:
    """Writes a finished run's result to `path` (and its first samples, as uint8 in [0, 255], beside it). The
    samples of an earlier record at `path` go first and the new ones come last, each file written atomically: a
    crash in between leaves a record without samples, never a record beside another run's samples."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".samples.npy").unlink(missing_ok=True)
    write_text_atomic(path, json.dumps(result, indent=1, sort_keys=True, default=str) + "\n")
    if samples is not None:
        record_samples(path, samples)


def record_samples(path: pathlib.Path, samples: np.ndarray) -> None:
    """Keeps `samples` (in [0, 1]) beside the record at `path`, as uint8 in [0, 255]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_npy_atomic(path.with_suffix(".samples.npy"), np.round(np.clip(samples, 0, 1) * 255).astype(np.uint8))


def recorded_samples(path: pathlib.Path) -> np.ndarray | None:
    """The samples `record_result` kept beside `path`, in [0, 1], or None."""
    samples = path.with_suffix(".samples.npy")
    if not samples.exists():
        return None
    try:
        return np.load(samples).astype(np.float32) / 255
    except (OSError, ValueError) as error:
        fail(f"{samples}: unreadable ({error}); delete it, and the figure shows the next seed's samples")


def load_experiment(name: str):
    """`get_config()` of experiments/NAME.py, loaded by path (experiments/ is not a package)."""
    from jaxgan.config import load_config_file

    return load_config_file(ROOT / "experiments" / f"{name}.py")


def figure_path(figure: str | None, name: str, workdir, write_notes: bool) -> pathlib.Path:
    """Where a reproduction script draws its figure: `figure` if given; else docs/figures/NAME.png with
    `write_notes` (the figure the notes show), and WORKDIR/NAME.png without, so that pilots and partial runs never
    overwrite a published figure."""
    if figure:
        return pathlib.Path(figure)
    return (ROOT / "docs" / "figures" if write_notes else pathlib.Path(workdir)) / f"{name}.png"


def publish(name: str, table: str, results, workdir: pathlib.Path, write_notes: bool) -> None:
    """Prints `table`, keeps the raw `results` beside the runs, and with `write_notes` puts the table into
    BUILD_NOTES.md and README.md (block NAME)."""
    import json

    print(table)
    pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
    (pathlib.Path(workdir) / "summary.json").write_text(json.dumps(results, indent=1, default=str))
    if write_notes:
        for path in (ROOT / "BUILD_NOTES.md", ROOT / "README.md"):
            replace_block(path, name, table)


# Per-run cadence and bookkeeping keys: they never change a run's result, so tables do not list them.
CADENCE = ("seed", "num_seeds", "log_every_steps", "eval_every_steps", "checkpoint_every_steps", "keep_checkpoints",
           "steps_per_dispatch")  # fmt: skip


def settings_that_differ(config, experiment: str | pathlib.Path, ignore: Iterable[str] = ()) -> dict:
    """Config values that differ from `experiment` (a name: experiments/EXPERIMENT.py; a path: that config file),
    apart from cadence keys and `ignore`."""
    from jaxgan.config import flatten, load_config_file

    reference = flatten(load_config_file(experiment) if isinstance(experiment, pathlib.Path) else load_experiment(experiment))
    skip = set(CADENCE) | set(ignore)
    return {k: v for k, v in flatten(config).items() if reference.get(k) != v and k not in skip}


def mixture_cells(runs: list[dict]) -> list[str]:
    """Mean ± std over runs of modes, high-quality fraction (in %) and reverse KL, as table cells."""
    cells = []
    for metric, fmt, scale, unit in (("modes", ".1f", 1, ""), ("high_quality_fraction", ".1f", 100, "%"),
                                     ("reverse_kl", ".3f", 1, "")):  # fmt: skip
        values = np.array([r[metric] for r in runs], dtype=float) * scale
        cells.append(f"{values.mean():{fmt}}{unit} ± {values.std():{fmt}}{unit}")
    return cells


def timed_rounds(calls: dict[str, Callable[[], None]], repeats: int) -> dict[str, np.ndarray]:
    """Seconds of each zero-argument call in each of `repeats` rounds, round-robin with the order reversed every
    other round, so that the drift of a shared machine hits every contender alike."""
    seconds = {name: [] for name in calls}
    for round_ in range(repeats):
        order = list(calls.items())
        for name, call in order if round_ % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - start)
    return {name: np.array(s) for name, s in seconds.items()}


def load_run(workdir: pathlib.Path, evaluation: str | None = None, step: int | None = None, flag: str = "--workdir"):
    """(config, task, game, state, step) of the run in `workdir` (one run; evaluated by `evaluation` when that is
    given) at checkpoint `step` (default: its latest). Raises ConfigError (one line, naming `flag`) when it is not
    such a run."""
    from jaxgan.config import ConfigError, num_runs
    from jaxgan.tasks import make_task
    from jaxgan.train import abstract_state, build_game, restore_saved, saved_config

    workdir = pathlib.Path(workdir)
    config = saved_config(workdir, flag)
    if num_runs(config) > 1:
        raise ConfigError(f"{workdir} holds a sweep of {num_runs(config)} runs; give the workdir of one run")
    if evaluation is not None and evaluation not in config.evaluations:
        raise ConfigError(f"{workdir}: needs a run with the {evaluation!r} evaluation, not {list(config.evaluations)}")
    task = make_task(config)
    state, _, step = restore_saved(workdir, abstract_state(config, task=task), step, flag=flag)
    return config, task, build_game(config, task), state, step


def mixture_draws(config, task, game, state, draws: int, generator: str = "raw") -> tuple[list[dict], dict]:
    """The run's mixture evaluation (modes, high-quality fraction, reverse KL, mode counts of G's samples) on `draws`
    independent sets of `config.eval_num_samples` noise vectors, draw 0 being the run's own evaluation noise, and
    the same metrics of all draws' samples pooled: how much of a logged value is the noise of a finite sample.
    `generator="ema"`: the same of the moving average of G, on the same noise (draw 0: the run's `ema_*` values)."""
    import jax

    from jaxgan.metrics.evaluations import eval_noise, generate_ema, mixture_evaluation
    from jaxgan.metrics.mixture import mixture_metrics
    from jaxgan.sampling import check_generator

    check_generator(generator, config.ema_decay)
    mixture = task.data.info

    def evaluate(s):
        if generator == "ema":  # as the evaluation measures the average: its samples on the same noise
            samples = generate_ema(game, s, eval_noise(game, s, config.eval_num_samples, config.eval.truncation))
            return mixture_metrics(samples, mixture.means, mixture.std), samples
        return mixture_evaluation(config, task.data).evaluate(game, s)

    evaluate = jax.jit(evaluate)
    per_draw, samples = [], []
    for draw in range(draws):
        metrics, drawn = evaluate(state if draw == 0 else state.replace(key=jax.random.fold_in(state.key, draw)))
        per_draw.append(_mixture_summary(metrics))
        samples.append(drawn)
    pooled = mixture_metrics(jax.numpy.concatenate(samples), mixture.means, mixture.std)
    return per_draw, _mixture_summary(pooled)


def _mixture_summary(metrics: dict) -> dict:
    return {
        "modes": int(metrics["modes"]),
        "high_quality_fraction": float(metrics["high_quality_fraction"]),
        "reverse_kl": float(metrics["reverse_kl"]),
        "mode_counts": np.asarray(metrics["mode_counts"]).tolist(),
    }


def evaluate_at(config, task, game, state, truncation: float) -> tuple[dict, np.ndarray]:
    """The run's image evaluation with noise truncated at ψ = `truncation`: (summary, samples in [0, 1]). With an
    EMA of G the samples are the EMA's (as BigGAN samples and truncates it) and the summary's `ema_*` values are
    theirs."""
    import jax
    import ml_collections

    from jaxgan.conditioning import data_of
    from jaxgan.data.images import to_unit_range
    from jaxgan.metrics.evaluations import build_evaluation, eval_noise, generate_ema

    at = ml_collections.ConfigDict(config.to_dict())
    at.eval.truncation = float(truncation)
    evaluation = build_evaluation(at, task.data)
    metrics, samples = jax.jit(lambda s: evaluation.evaluate(game, s))(state)
    if state.g_params_ema is not None:  # the evaluation's samples are G's; these are the average's
        z = eval_noise(game, state, at.eval_num_samples, at.eval.truncation)
        samples = jax.jit(lambda s: to_unit_range(generate_ema(game, s, z)))(state)
    metrics = jax.device_get(metrics)
    metrics.update(evaluation.host_scalars(metrics))  # as the runner does (the 'inception' network, InfoGAN's matching)
    return evaluation.summarize(game, state, metrics), np.asarray(data_of(samples))


def level0_trainer(generate, discriminate, reals, g_optimizer, d_optimizer, batch_size: int, z_dim: int):
    """`train(carry, keys) -> carry`, jitted: LapGAN's level-0 game (G_0 makes the coarsest image from its z chunk,
    D_0 judges it) for `len(keys)` steps as one `lax.scan`. carry = (g, d, g_opt_state, d_opt_state). Each step
    draws a batch of `reals` and fresh noise, takes one D step, then one G step against the updated D, both with the
    non-saturating loss: D minimises E softplus(−D(x)) + E softplus(D(G(z))), G minimises E softplus(−D(G(z)))."""
    import jax
    import jax.numpy as jnp
    import optax

    def train_step(carry, key):
        g, d, g_state, d_state = carry
        key_real, key_d_noise, key_g_noise = jax.random.split(key, 3)
        real = reals[jax.random.randint(key_real, (batch_size,), 0, len(reals))]

        def d_loss(d):
            fakes = generate(g, jax.random.normal(key_d_noise, (batch_size, z_dim)))
            return jnp.mean(jax.nn.softplus(-discriminate(d, real)) + jax.nn.softplus(discriminate(d, fakes)))

        updates, d_state = d_optimizer.update(jax.grad(d_loss)(d), d_state, d)
        d = optax.apply_updates(d, updates)

        def g_loss(g):
            return jnp.mean(jax.nn.softplus(-discriminate(d, generate(g, jax.random.normal(key_g_noise, (batch_size, z_dim))))))

        updates, g_state = g_optimizer.update(jax.grad(g_loss)(g), g_state, g)
        return (optax.apply_updates(g, updates), d, g_state, d_state), None

    return jax.jit(lambda carry, keys: jax.lax.scan(train_step, carry, keys)[0])
