"""The training loop: build the game from a config, then run compiled chunks of update steps.

`train_and_evaluate(config, workdir)` is the whole run. The loop dispatches compiled chunks of update steps (one
XLA loop of fixed length `steps_per_dispatch` that runs the first n steps, or, for convolutions on a CPU, a host
loop of the compiled step); the host touches the device only between dispatches (logging, evaluation,
checkpointing, the non-finite check), never inside one. A dispatch's length follows the machine's speed
(`DispatchClock`), but every step runs the same compiled step on the same inputs whatever chunk it falls in, and
logs, evaluations and checkpoints fall on multiples of their periods counted from step 0, so a resumed run
computes exactly what an uninterrupted one does.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import pathlib
import signal
import time
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec

from jaxgan.checkpoint import Checkpointer, saved_steps
from jaxgan.conditioning import Labelled, data_of, logits_of, make_conditioning
from jaxgan.config import (
    ConfigError,
    config_from_saved,
    get_by_path,
    make_optimizers,
    num_runs,
    resume_differences,
    run_configs,
    set_by_path,
    shorten_differences,
    validate,
)
from jaxgan.dynamics import top_eigenvalues_arnoldi
from jaxgan.game import Game, discriminate, generate
from jaxgan.losses import GanLoss, began_loss, ebgan_loss, get_loss
from jaxgan.metrics.evaluations import draws_code_sweep, plot_code_sweep
from jaxgan.models import UnsupportedImageSize, linen_player
from jaxgan.models.layers import AttentionResolutionError
from jaxgan.parallel import (
    DATA_AXIS, Mesh, data_mesh, is_primary, process_values, replicate, replicated, shard_batch, to_host,
)
from jaxgan.plotting import load_snapshots, sample_step
from jaxgan.registry import first_line
from jaxgan.state import TrainState, step_keys
from jaxgan.tasks import Task, make_task
from jaxgan.updates import UpdateRule, make_update_rule
from jaxgan.writers import EVAL_SECONDS, MetricWriter, format_duration, logged_at, save_npy_atomic, write_text_atomic


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the message names the step."""


class Preempted(Exception):
    """SIGTERM arrived; a checkpoint at `step` has been written."""

    def __init__(self, step: int):
        super().__init__(f"checkpoint written at step {step}; run the same command to resume")
        self.step = step


def make_loss(config: ml_collections.ConfigDict) -> GanLoss:
    """The loss named by `config.loss`; the energy losses with their hyperparameter (BEGAN's at k = 0: the update
    rule moves k_t, `jaxgan.updates.with_began_equilibrium`)."""
    if config.loss == "ebgan":
        return ebgan_loss(config.energy.margin)
    if config.loss == "began":
        return began_loss(0.0)
    return get_loss(config.loss)


def build_game(config: ml_collections.ConfigDict, task: Task | None = None, mesh: Mesh | None = None) -> Game:
    """The game of `config`; with a `mesh`, its noise batches are split over the mesh (data parallelism)."""
    task = task or make_task(config)
    generator, discriminator = task.build_players(config)
    g_optimizer, d_optimizer = make_optimizers(config)
    return Game(
        generator=linen_player(generator),
        discriminator=linen_player(discriminator),
        loss=make_loss(config),
        g_optimizer=g_optimizer,
        d_optimizer=d_optimizer,
        z_dim=config.z_dim,
        penalty=config.penalty,
        penalty_weight=config.penalty_weight,
        weight_clip=config.weight_clip,
        pull_away_weight=config.energy.pull_away_weight,
        mesh=mesh,
        conditioning=make_conditioning(config, task.data.num_classes),
    )


def swept_hparams(config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
    """{sweep_key: [num_runs] float32 values}, the per-run inputs of a hyperparameter sweep ({} without one)."""
    if not config.sweep_key:
        return {}
    return {config.sweep_key: jnp.asarray([get_by_path(r, config.sweep_key) for r in run_configs(config)], jnp.float32)}


def with_hparams(config: ml_collections.ConfigDict, hparams: dict) -> ml_collections.ConfigDict:
    """`config` with the swept hyperparameters set to `hparams`' (traced) values: what one run of a sweep builds
    its game and its update rule from (`consensus_gamma`, `sga_lambda` are the rule's)."""
    if not hparams:
        return config
    traced = ml_collections.ConfigDict(config.to_dict(), type_safe=False)
    for key, value in hparams.items():
        set_by_path(traced, key, value)
    return traced


def game_factory(
    config: ml_collections.ConfigDict, task: Task | None = None, mesh: Mesh | None = None
) -> Callable[[dict], Game]:
    """`game_for(hparams)`: the game with the swept hyperparameters set to `hparams`' (traced) values.

    Called inside the vmapped, compiled step, so a sweep over learning rates or penalty weights is one program:
    the optimizers and penalties close over tracers instead of Python floats.
    """
    task = task or make_task(config)
    return lambda hparams: build_game(with_hparams(config, hparams), task, mesh)


def real_sampler(task: Task, game: Game) -> Callable:
    """The data set's `sample`, or `sample_labelled` when the game conditions on classes (real batches carry them)."""
    if game.conditioning is not None and game.conditioning.uses_labels:
        return task.data.sample_labelled
    return task.data.sample


def init_state(config: ml_collections.ConfigDict, rule: UpdateRule, task: Task | None = None) -> TrainState:
    """The initial state; for a sweep (`num_runs(config)` > 1) the runs' states stacked on a leading axis.

    Every leaf has its own buffer: the train step donates the state, and a buffer donated twice is an error on
    GPUs (an eager `init` may put one array in several places, as the EMA's copy of G or the step in progressive
    players' model state)."""
    example = jnp.zeros((config.batch_size, *(task or make_task(config)).data.shape), jnp.float32)
    if num_runs(config) == 1:
        state = rule.init(jax.random.key(config.seed), example)
    else:
        seeds = jnp.asarray([run.seed for run in run_configs(config)])
        state = jax.vmap(lambda s: rule.init(jax.random.key(s), example))(seeds)
    return own_buffers(state)


def own_buffers(tree):
    """`tree` with a copy of every array that occurs in it more than once (after its first occurrence)."""
    seen = set()

    def own(leaf):
        if isinstance(leaf, jax.Array) and id(leaf) in seen:
            return leaf.copy()
        seen.add(id(leaf))
        return leaf

    return jax.tree.map(own, tree)


def abstract_state(config: ml_collections.ConfigDict, rule: UpdateRule | None = None, task: Task | None = None) -> TrainState:
    """`init_state`'s shapes and dtypes (`jax.ShapeDtypeStruct` leaves; nothing is computed): what a checkpoint of
    a run of `config` is restored into outside training (evaluation scripts, branching)."""
    task = task or make_task(config)
    rule = rule or make_update_rule(build_game(config, task), config)
    shapes = jax.eval_shape(lambda: init_state(config, rule, task))
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), shapes)


def check_player_outputs(config: ml_collections.ConfigDict, game: Game, task: Task, state: TrainState) -> None:
    """Raises ValueError (one line naming --config.generator.name or --config.discriminator.name) unless G, with the
    parameters' shapes of the abstract `state`, makes examples of the data's shape and D gives one logit per example
    (per pack of `packing` examples; or K per example, as LapGAN's D one per level): a user's own player that does
    not would fail later, inside a loss or a metric, with a message that blames it, or train on logits averaged over
    pixels. Nothing is computed (`jax.eval_shape`)."""
    one_run = (lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype)) if num_runs(config) > 1 else (lambda x: x)
    g_params, g_model_state, d_params, d_model_state = jax.tree.map(
        one_run, (state.g_params, state.g_model_state, state.d_params, state.d_model_state)
    )
    batch = 2 * config.packing

    def samples(g_params, g_model_state):
        z = game.sample_noise(jax.random.key(0), batch)
        return generate(game, g_params, g_model_state, z, train=False, key=jax.random.key(1))[0]

    made = jax.eval_shape(samples, g_params, g_model_state)
    example_shape = tuple(data_of(made).shape[1:])
    if example_shape != tuple(task.data.shape):
        raise ValueError(
            f"--config.generator.name={config.generator.name!r}: makes examples of shape {example_shape}, "
            f"but data set {config.data.name!r} has examples of shape {tuple(task.data.shape)}"
        )

    def logits(d_params, d_model_state, x):
        return logits_of(discriminate(game, d_params, d_model_state, x, train=False)[0])

    given = tuple(jax.eval_shape(logits, d_params, d_model_state, made).shape)
    if len(given) not in (1, 2) or given[0] != batch // config.packing:  # [batch], or [batch, levels] (LapGAN)
        packs = f" (one per pack of {config.packing})" if config.packing > 1 else ""
        raise ValueError(
            f"--config.discriminator.name={config.discriminator.name!r}: gives logits of shape {given} for {batch} "
            f"examples of shape {tuple(task.data.shape)}; a discriminator gives one logit per example{packs}, [batch] "
            "(or [batch, K]: one per level of a pyramid)"
        )


def make_train_chunk(
    rule: UpdateRule | Callable[[dict], UpdateRule],
    sample: Callable[[jax.Array, int], jax.Array] | None,
    batch_size: int,
    num_runs: int = 1,
    mesh: Mesh | None = None,
    max_steps: int | None = None,
    host_loop: bool = False,
    due: Callable[[int], tuple[str, ...]] | None = None,
) -> Callable:
    """`chunk(state, num_steps, hparams={}) -> (state, metrics)`: `num_steps` update steps in one dispatch.

    Real data is drawn on device by `sample(key, n)` from the step's data key, so nothing crosses from the host
    per step. Metrics come back stacked, one entry per step ([steps] or [steps, num_runs]). With `num_runs` > 1
    the step is `jax.vmap`ped over the stacked runs and their `hparams`: a sweep is one compiled program. `rule`
    may be a function of `hparams` (one run's swept hyperparameters, traced), built inside the trace.

    With `sample=None` the real batches are given instead (streamed data, `jaxgan.data.streaming`):
    `chunk(state, num_steps, hparams, real)` with `real` (an array or a `Labelled`) holding
    `num_real_batches * batch_size` examples per step on a leading step axis of length `num_steps` (`max_steps`
    with `max_steps`; entries past `num_steps` are not read); every run of a sweep sees the same batches.

    Without `max_steps`, `num_steps` is static: one `lax.scan` compiled per length. With `max_steps`, `num_steps`
    (at most `max_steps`) is an argument of one compiled loop, and the metrics have `max_steps` entries of which
    the first `num_steps` are filled: the runner varies its dispatch lengths freely and every length runs the same
    program, so a run's result does not depend on how its steps were split into dispatches.

    With `host_loop`, the steps are instead one compiled step called `num_steps` times from Python: the calls are
    dispatched asynchronously (nothing waits for the device until the caller reads the metrics), and the step's
    convolutions run outside an XLA loop, where XLA's CPU backend runs them much slower (BUILD_NOTES.md,
    "Convolutions inside XLA loops on a CPU"). A rule with periodic extras (`UpdateRule.due`; `due` gives it where
    `rule` is a function of `hparams`) then has them chosen on the host, one compiled step per combination, from
    the state's step read once per dispatch: no XLA conditional around a convolution either.

    With a `mesh` (`jaxgan.parallel`), the real batch is split over its devices, the state and metrics are
    replicated, and the rule's game should carry the same mesh so that its noise is split alike.
    """
    rule_for = (lambda hparams: rule) if isinstance(rule, UpdateRule) else rule
    due = rule.due if isinstance(rule, UpdateRule) and due is None else due
    given = sample is None

    def one_step(state: TrainState, hparams: dict, real: Any = None, **extras) -> tuple[TrainState, dict]:
        run_rule = rule_for(hparams)
        if not given:
            real = sample(step_keys(state).data, run_rule.num_real_batches * batch_size)  # an array or a Labelled
        real = jax.tree.map(lambda x: x.reshape(run_rule.num_real_batches, batch_size, *x.shape[1:]), real)
        real = jax.tree.map(lambda x: shard_batch(x, mesh, axis=1), real)
        return run_rule.step(state, {"real": real}, **extras)

    def step(state: TrainState, hparams: dict, real: Any = None, **extras) -> tuple[TrainState, dict]:
        """One step (vmapped over the runs); `extras`: the rule's `due=` where the host chooses it."""
        if num_runs == 1:
            return one_step(state, hparams, real, **extras)
        return jax.vmap(functools.partial(one_step, **extras), in_axes=(0, 0, None))(state, hparams, real)

    def scan_chunk(state: TrainState, num_steps: int, hparams: dict | None = None, real: Any = None):
        hparams = {} if hparams is None else hparams
        return jax.lax.scan(lambda s, r: step(s, hparams, r), state, real, length=num_steps)

    def loop_chunk(state: TrainState, num_steps: jax.Array, hparams: dict | None = None, real: Any = None):
        hparams = {} if hparams is None else hparams
        shapes = jax.eval_shape(lambda s: step(s, hparams, None if real is None else _take(real, 0))[1], state)
        buffers = jax.tree.map(lambda m: jnp.zeros((max_steps, *m.shape), m.dtype), shapes)

        def body(i, carry):
            state, buffers = carry
            state, metrics = step(state, hparams, None if real is None else _take(real, i))
            return state, jax.tree.map(lambda b, m: b.at[i].set(m), buffers, metrics)

        return jax.lax.fori_loop(0, jnp.minimum(num_steps, max_steps), body, (state, buffers))

    chunk, static = (scan_chunk, 1) if max_steps is None else (loop_chunk, ())
    shardings = {}
    if mesh is not None:
        rep = replicated(mesh)
        shardings = dict(in_shardings=rep, out_shardings=rep)
        if given:  # batches arrive split over the devices along their batch axis (behind a chunk's step axis)
            batch = NamedSharding(mesh, PartitionSpec(DATA_AXIS) if host_loop else PartitionSpec(None, DATA_AXIS))
            # one entry per argument that is not static: (state, hparams, real), or (state, num_steps, hparams, real)
            num_traced = 3 if host_loop or max_steps is None else 4
            shardings["in_shardings"] = (rep,) * (num_traced - 1) + (batch,)
    if host_loop:
        one = jax.jit(
            lambda state, hparams, real=None, due=None: step(state, hparams, real, **({} if due is None else {"due": due})),
            donate_argnums=0, static_argnames="due", **shardings,
        )  # fmt: skip
        stack = jax.jit(lambda metrics: jax.tree.map(lambda *xs: jnp.stack(xs), *metrics))

        def host_chunk(state: TrainState, num_steps: int, hparams: dict | None = None, real: Any = None):
            hparams = {} if hparams is None else hparams
            # the step a dispatch starts from, read once (a sweep's runs share it): the host's schedule of extras
            start = int(np.asarray(state.step.addressable_shards[0].data).reshape(-1)[0]) if due else 0
            metrics = []
            for i in range(int(num_steps)):
                extras = {"due": due(start + i)} if due else {}
                state, m = one(state, hparams, *(() if real is None else (_take(real, i),)), **extras)
                metrics.append(m)
            return state, stack(metrics)

        return host_chunk
    return jax.jit(chunk, static_argnums=static, donate_argnums=0, **shardings)


class StreamedBatches:
    """The real batches of a `data.loader = "stream"` run: a `StreamingImages` over the data set's training source
    (seeded with the run's seed; this process's slice of every global batch), handed to the train chunk one
    dispatch at a time, as a `Labelled` when the game conditions on classes, padded to the fused loop's length,
    and assembled into one array over the mesh from every process's slice.

    Its position (global batches handed out) is saved beside the train state in every checkpoint; a resumed run
    continues the stream exactly, checked against the step (one global batch of `num_real_batches` × `batch_size`
    images per step)."""

    def __init__(self, config: ml_collections.ConfigDict, task: Task, game: Game, num_real_batches: int,
                 mesh: Mesh | None, pad_to: int | None):  # fmt: skip
        import grain

        from jaxgan.data.streaming import StreamingImages

        if task.data.source is None:
            raise ConfigError(f"--config.data.loader='stream': {config.data.name!r} cannot be streamed (use 'device')")
        self.labelled = game.conditioning is not None and game.conditioning.uses_labels
        self.loader = StreamingImages(
            task.data.source(),
            num_real_batches * config.batch_size,
            seed=config.seed,
            shard_options=grain.sharding.ShardOptions(jax.process_index(), jax.process_count()),
            label_key="label" if self.labelled else None,
        )
        if self.labelled and not self.loader.has_labels:
            raise ConfigError(f"--config.conditioning={config.conditioning!r}: the streamed data have no labels")
        self.mesh, self.pad_to = mesh, pad_to

    def next(self, num_steps: int) -> Any:
        """The batches of the next `num_steps` steps: [steps, num_real_batches * batch_size, ...] per leaf."""
        batch = self.loader.next_chunk(num_steps)
        real = Labelled(batch.images, labels=batch.labels) if self.labelled else batch.images
        if self.pad_to is not None and num_steps < self.pad_to:  # the fused loop's fixed length; not read
            real = jax.tree.map(lambda x: np.concatenate([x, np.zeros((self.pad_to - num_steps, *x.shape[1:]), x.dtype)]), real)
        if self.mesh is not None and jax.process_count() > 1:  # this process's slice -> one global array
            sharding = NamedSharding(self.mesh, PartitionSpec(None, DATA_AXIS))
            real = jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), real)
        return real

    def state(self) -> dict:
        return self.loader.get_state()

    def restore(self, saved: dict | None, step: int, workdir: pathlib.Path) -> None:
        if saved is None:
            raise ConfigError(f"the checkpoint of step {step} in {workdir} has no data position; start a new --workdir")
        try:
            self.loader.set_state(saved)
        except ValueError as error:
            raise ConfigError(f"the checkpoint of step {step} in {workdir}: {error}") from None
        if self.loader.get_state()["next_batch"] != step:
            raise ConfigError(f"the checkpoint of step {step} in {workdir} holds a data position that does not "
                              f"match its step ({saved['next_batch']} batches, expected {step})")  # fmt: skip

    def close(self) -> None:
        self.loader.close()


def uses_host_loop(config: ml_collections.ConfigDict, task: Task) -> bool:
    """`config.dispatch_loop`: "fused" (one XLA loop per dispatch), "host" (a Python loop of the compiled step), or
    "auto": host for image data on a CPU, where XLA runs convolutions inside loops much slower (BUILD_NOTES.md),
    else fused."""
    if config.dispatch_loop == "auto":
        return jax.default_backend() == "cpu" and len(task.data.shape) == 3
    return config.dispatch_loop == "host"


class DispatchClock:
    """Chooses dispatch lengths so that one dispatch takes at most about `max_seconds`.

    The host sees SIGTERM, and writes the preemption checkpoint, only between dispatches, so a dispatch's length
    bounds the time from SIGTERM to a safe checkpoint. The first dispatch is 1 step (it also compiles); after each
    later one the length becomes max_seconds / (measured seconds per step), at most 8× the previous length and at
    most `max_steps`. A dispatch also ends at the host's next boundary (`next_boundary`: logs, evaluations and
    checkpoints stay on their steps whatever the machine's speed).
    """

    def __init__(self, max_steps: int, max_seconds: float):
        self.max_steps, self.max_seconds = max_steps, max_seconds
        self.length, self._compiled = 1, False

    def end(self, step: int, boundary: int) -> int:
        """The end of the next dispatch from `step`: `length` steps on, or `boundary` if sooner."""
        return min(boundary, step + self.length)

    def record(self, steps: int, seconds: float) -> None:
        if not self._compiled:  # the first dispatch's time is mostly compilation
            self._compiled = True
            return
        fits = self.max_seconds / max(seconds / steps, 1e-9)
        length = min(self.max_steps, 8 * self.length, max(1, int(fits)))
        if jax.process_count() > 1:  # every process dispatches alike: process 0's measurement decides
            from jax.experimental import multihost_utils

            length = int(multihost_utils.broadcast_one_to_all(np.int32(length)))
        self.length = length


def top_eigenvalue_metrics(
    game: Game, task: Task, state: TrainState, config: ml_collections.ConfigDict, rule: UpdateRule | None = None
) -> dict:
    """The `log_eigenvalues` largest-magnitude eigenvalues of the game Jacobian at `state` (Arnoldi with JVPs, so
    it works on real models), on a fixed evaluation batch: `eig{i}_real`, `eig{i}_imag`. With a `rule` whose
    objective has state (`UpdateRule.game_at`: BEGAN's k_t), the game is the one its next step plays."""
    if rule is not None and rule.game_at is not None:
        game = rule.game_at(state)
    key = jax.random.fold_in(state.key, 2**31 - 2)
    real = real_sampler(task, game)(jax.random.fold_in(key, 0), config.batch_size)  # with classes, if G and D use them
    z = game.sample_noise(jax.random.fold_in(key, 1), config.batch_size)
    values = top_eigenvalues_arnoldi(
        game, state.g_params, state.d_params, real, z, k=config.log_eigenvalues,
        num_iters=max(20, 2 * config.log_eigenvalues), key=jax.random.fold_in(key, 2),
        g_model_state=state.g_model_state, d_model_state=state.d_model_state,
    )  # fmt: skip
    out = {}
    for i, value in enumerate(values):
        out[f"eig{i}_real"], out[f"eig{i}_imag"] = np.asarray(value.real), np.asarray(value.imag)
    return out


def _take(tree: Any, i: int) -> Any:
    """Entry `i` along every leaf's leading axis: a sweep's run, or a chunk's step."""
    return jax.tree.map(lambda x: x[i], tree)


def summarize(task: Task, game: Game, state: TrainState, metrics: dict, config: ml_collections.ConfigDict) -> dict:
    """eval.json's fields: the task's summary; for a sweep `runs` (one per run, with its seed and swept value),
    `mean` and `std` over all runs and, over a hyperparameter, `by_value` (mean and std over seeds per value)."""
    if num_runs(config) == 1:
        return task.evaluation.summarize(game, state, metrics)
    runs = []
    for i, run in enumerate(run_configs(config)):
        swept = {config.sweep_key: get_by_path(run, config.sweep_key)} if config.sweep_key else {}
        runs.append({"seed": run.seed, **swept, **task.evaluation.summarize(build_game(run, task), _take(state, i), _take(metrics, i))})
    numeric = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and k not in ("seed", config.sweep_key)]

    def stats(group: list[dict]) -> dict:
        return {
            "mean": {k: float(np.mean([r[k] for r in group])) for k in numeric},
            "std": {k: float(np.std([r[k] for r in group])) for k in numeric},
        }

    out = {"runs": runs, **stats(runs)}
    if config.sweep_key:
        n = config.num_seeds
        out["by_value"] = [
            {config.sweep_key: runs[j * n][config.sweep_key], **stats(runs[j * n : (j + 1) * n])}
            for j in range(len(runs) // n)
        ]
    return out


def describe_eval(task: Task, metrics: dict, config: ml_collections.ConfigDict) -> str:
    if num_runs(config) == 1:
        return task.evaluation.describe(metrics)
    means = {k: float(np.mean(v)) for k, v in metrics.items() if v.ndim == 1}
    g = {k: v for k, v in means.items() if not k.startswith("ema_")}
    ema = {k.removeprefix("ema_"): v for k, v in means.items() if k.startswith("ema_")}
    text = f"mean over {num_runs(config)} runs: " + "  ".join(f"{k} {v:.3f}" for k, v in g.items())
    return text + ("  | ema: " + "  ".join(f"{k} {v:.3f}" for k, v in ema.items()) if ema else "")


def final_summary(result: dict[str, Any]) -> list[str]:
    """The console's closing lines for a run's `result` (eval.json): its values; for a sweep their mean over the
    seeds, one line per value where a hyperparameter was swept (one mean over the values would mix them)."""

    def values(numbers: dict) -> str:
        return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in numbers.items()
                         if k not in ("config", "jacobian_eigenvalues"))  # fmt: skip

    if "mean" not in result:
        return [values(result)]
    config = result["config"]
    over = f" (mean over {config['num_seeds']} seeds)" if config["num_seeds"] > 1 else ""
    if "by_value" not in result:
        return [f"step {result['step']}  {values(result['mean'])}{over}"]
    key = config["sweep_key"]
    return [f"step {result['step']}  {key}={group[key]:g}  {values(group['mean'])}{over}" for group in result["by_value"]]


def describe_sweep_run(config: ml_collections.ConfigDict, i: int) -> str:
    run = run_configs(config)[i]
    return f"seed {run.seed}" + (f", {config.sweep_key}={get_by_path(run, config.sweep_key):g}" if config.sweep_key else "")


def next_boundary(step: int, config: ml_collections.ConfigDict) -> int:
    """The next step (> `step`) at which the host must act: log, eval, checkpoint, dispatch end or the last step."""
    periods = (config.log_every_steps, config.eval_every_steps, config.checkpoint_every_steps, config.steps_per_dispatch)
    return min([config.num_steps] + [(step // p + 1) * p for p in periods])


def _first_nonfinite(metrics: dict[str, np.ndarray]) -> tuple[int, str, float, int | None] | None:
    """(step index in the chunk, metric, value, seed index or None) of the first NaN/inf.

    First in the step, then in the run of a sweep, then in the metrics' order: a player's bad update shows in its
    own loss a step before it reaches the other's, so the earliest step names the cause.
    """
    found = []
    for order, (key, values) in enumerate(metrics.items()):
        bad = np.argwhere(~np.isfinite(values))
        if bad.size:
            index = tuple(int(i) for i in bad[0])  # argwhere is row-major: the earliest step, then the lowest run
            found.append((index[0], index[1] if len(index) > 1 else -1, order, key, float(values[index])))
    if not found:
        return None
    step, seed, _, key, value = min(found)
    return step, key, value, (seed if seed >= 0 else None)


class _SigtermFlag:
    """Turns SIGTERM into a flag the loop polls between dispatches (a save inside a handler could tear)."""

    def __init__(self):
        self.raised = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    def _handle(self, signum, frame):
        self.raised = True

    def seen_by_any(self) -> bool:
        """Whether any process of the job has seen SIGTERM. Every process polls this at the same points and takes
        the same decision: a process that stopped alone would leave the others waiting in a collective."""
        return any(process_values(int(self.raised)))

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


CONFIG_FILE = "config.json"  # the config a workdir's run was started with, beside its checkpoints
LOCK_FILE = "training.lock"  # locked while a run trains in its workdir


@contextlib.contextmanager
def workdir_lock(workdir: pathlib.Path) -> Iterator[None]:
    """Held by process 0 of a run while it trains in `workdir`; raises ConfigError (one line, on every process of a
    job) when another process holds it: two runs in one workdir would write the same checkpoints, and each would
    delete the other's unfinished saves. An `flock`, so the kernel lets it go when the process ends, however it
    ends. On a file system without locks (some network mounts) runs go on unguarded, with a warning."""
    with contextlib.ExitStack() as held:
        holder = _take_workdir_lock(workdir, held) if jax.process_index() == 0 else None
        if process_values(int(holder is not None))[0]:  # a collective: every process of the job is refused
            raise ConfigError(
                f"--workdir={workdir}: another run is training in it (process {holder or 'named in ' + LOCK_FILE}); "
                "wait for it to end, or use another --workdir"
            )
        yield  # closing the file drops the lock


def _take_workdir_lock(workdir: pathlib.Path, held: contextlib.ExitStack) -> str | None:
    """Locks `workdir`/LOCK_FILE for as long as `held` is open and records this process in it; returns the record
    of the process that holds it instead, if one does."""
    import fcntl
    import socket

    path = workdir / LOCK_FILE
    try:
        try:  # created as the umask allows, so the users who share a workdir share its lock
            lock = held.enter_context(open(os.open(path, os.O_RDWR | os.O_CREAT, 0o666), "r+"))
        except PermissionError:  # another user's lock file: an flock needs only a file this user can read
            lock = held.enter_context(open(path))
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return lock.read(200).strip() or "unknown"
    except OSError as error:  # no locks on this file system, or a lock file this user cannot open
        logging.warning("%s cannot be locked (%s): nothing stops a second run in %s", path, error, workdir)
        return None
    try:  # the record only names the holder to a refused run: a full disk must not stop this one
        if lock.writable():  # unbuffered, so nothing is left to fail again when the file closes
            os.ftruncate(lock.fileno(), 0)
            os.pwrite(lock.fileno(), f"{os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    except OSError as error:
        logging.warning("%s is locked, but this process cannot be recorded in it (%s)", path, error)
    return None


def check_resumable(workdir: pathlib.Path, config: ml_collections.ConfigDict, *, has_checkpoints: bool) -> None:
    """Raises ConfigError (one line: the keys that differ and what to do) when `workdir` holds checkpoints of a run
    started with a config that differs from `config` outside `jaxgan.config.RESUMABLE`. Checked before any restore,
    so the checkpoints are never read, let alone changed."""
    saved = workdir / CONFIG_FILE
    if not has_checkpoints or not saved.exists():  # no config.json (an older jaxgan's): the restore compares layouts
        return
    try:
        saved_dict = json.loads(saved.read_text())
        if not isinstance(saved_dict, dict):
            raise ValueError(f"it holds a JSON {type(saved_dict).__name__}, not an object")
    except ValueError as error:
        raise ConfigError(
            f"--workdir={workdir}: its {CONFIG_FILE} is not valid JSON of a config ({error}), so whether its "
            "checkpoints belong to this config cannot be checked; restore the file or use a new --workdir"
        ) from None
    differences = resume_differences(saved_dict, config)
    if differences:
        raise ConfigError(
            f"{workdir} holds checkpoints of a run with another config ({shorten_differences(differences)}; saved "
            f"in {saved}): "
            "rerun with the same flags to resume it, or use a new --workdir"
        )


def saved_config(workdir: str | pathlib.Path, flag: str) -> ml_collections.ConfigDict:
    """The config of the run in `workdir` (its config.json), validated. Raises ConfigError (one line naming `flag`,
    the option that gave `workdir`) when `workdir` has none or it is not a valid config."""
    saved = pathlib.Path(workdir) / CONFIG_FILE
    if not saved.is_file():
        raise ConfigError(f"{flag}={workdir}: no {CONFIG_FILE}; give the workdir of a run started by jaxgan.main")
    try:
        saved_dict = json.loads(saved.read_text())
        if not isinstance(saved_dict, dict):
            raise ValueError(f"it holds a JSON {type(saved_dict).__name__}, not an object")
        config = config_from_saved(saved_dict)
        validate(config)
    except (ConfigError, ValueError) as error:  # also a torn or hand-edited file
        raise ConfigError(f"{flag}={workdir}: its {CONFIG_FILE} is not a valid config ({error})") from None
    return config


def restore_saved(
    workdir: str | pathlib.Path, abstract: Any, step: int | None = None, *, flag: str, step_flag: str = "--step"
) -> tuple[Any, dict | None, int]:
    """(state, data position, step) of the checkpoint of `step` (default: the newest that restores, as a resume would
    pick it, warning of the newer ones that do not) of the run in `workdir`, restored into `abstract`
    (`abstract_state`), for reading: nothing in `workdir` is created, moved or changed. Raises ConfigError (one line
    naming `flag` or `step_flag`) when there is no such checkpoint or it does not restore into `abstract`."""
    directory = pathlib.Path(workdir) / "checkpoints"
    if not directory.is_dir():
        raise ConfigError(f"{flag}={workdir}: no checkpoints")
    with Checkpointer(directory, read_only=True) as checkpoints:  # the run may be training: leave its saves be
        steps = checkpoints.all_steps()
        if not steps:
            raise ConfigError(f"{flag}={workdir}: no checkpoints")
        if step is not None and step not in steps:
            raise ConfigError(f"{step_flag}={step}: {workdir} has no checkpoint of that step (it has {steps})")
        try:
            state, step = checkpoints.restore(abstract, step=step)
            data = checkpoints.restore_data(step)
        except Exception as error:  # noqa: BLE001 - a damaged checkpoint or another state layout
            which = "no checkpoint restores" if step is None else f"the checkpoint of step {step} does not restore"
            raise ConfigError(f"{flag}={workdir}: {which} ({first_line(error)})") from None
    return state, data, step


def deleted_since_listed(workdir: str | pathlib.Path, step: int) -> bool:
    """Whether checkpoint `step` of the run in `workdir`, listed a moment ago, is gone, with a warning if so: a run
    that is still training keeps only its newest `keep_checkpoints`, so a reader that walks its steps one by one can
    find an old one deleted under it, and skips it rather than fail."""
    if step in saved_steps(pathlib.Path(workdir) / "checkpoints"):
        return False
    logging.warning("checkpoint step %d of %s was deleted while its steps were read (the run keeps its newest "
                    "keep_checkpoints); skipped", step, workdir)
    return True


def write_json(path: pathlib.Path, obj: Any) -> None:
    """`obj` as indented JSON with sorted keys, written atomically (`writers.write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def make_mesh(config: ml_collections.ConfigDict) -> Mesh | None:
    """The data-parallel mesh of `config.num_devices` (0: every device of every process); None for one device.

    Raises ConfigError (one line naming the flag) when the devices asked for are not there or do not divide the
    batch (or its per-device part into packs of `packing`).
    """
    available = jax.device_count()
    n = config.num_devices or available
    if n > available:
        raise ConfigError(f"--config.num_devices={config.num_devices}: only {available} device(s) present")
    if jax.process_count() > 1 and n != available:  # the first n devices would leave some processes without any
        raise ConfigError(
            f"--config.num_devices={config.num_devices}: a job of {jax.process_count()} processes uses all its "
            f"{available} devices (0 or {available})"
        )
    if config.batch_size % n:
        raise ConfigError(
            f"--config.batch_size={config.batch_size}: must be divisible by the {n} devices it is split over "
            "(set --config.num_devices)"
        )
    if (config.batch_size // n) % config.packing:
        raise ConfigError(
            f"--config.packing={config.packing}: each of the {n} devices holds {config.batch_size // n} samples of the "
            "batch, which must be a multiple of it (packs stay on one device)"
        )
    return data_mesh(n) if n > 1 else None


class CompileSeconds:
    """Seconds this process spends tracing, lowering and compiling JAX programs from construction to `close()`, from
    the durations jax.monitoring reports (all threads): what a first call costs once, which an ETA must leave out."""

    EVENTS = (
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/jaxpr_to_mlir_module_duration",
        "/jax/core/compile/backend_compile_duration",
    )

    def __init__(self):
        self.seconds = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event: str, duration: float, **kwargs) -> None:
        if event in self.EVENTS:
            self.seconds += duration

    def close(self) -> None:
        jax.monitoring.unregister_event_duration_listener(self._listen)

    def __enter__(self) -> "CompileSeconds":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Pace:
    """The training rate and the time left, from the training dispatches alone.

    `steps_per_sec` is an interval's steps over its dispatches' seconds (their host sync included; the evaluations,
    checkpoints and logging between them left out). The ETA's rate is the run's so far in this process, without its
    first dispatch, which compiles; the evaluations still due are added at the last one's duration, without the
    time it spent compiling (a process's first evaluation compiles its programs).
    """

    def __init__(self):
        self._interval = (0, 0.0)  # steps, seconds since the last log
        self._steady = (0, 0.0)  # steps, seconds of every dispatch but the first
        self._dispatches = 0
        self._eval_seconds = 0.0
        self._last_rate = 0.0

    def trained(self, steps: int, seconds: float) -> None:
        self._interval = (self._interval[0] + steps, self._interval[1] + seconds)
        if self._dispatches:
            self._steady = (self._steady[0] + steps, self._steady[1] + seconds)
        self._dispatches += 1

    def evaluated(self, seconds: float, compiling: float = 0.0) -> None:
        self._eval_seconds = max(seconds - compiling, 0.0)

    def interval_rate(self) -> float:
        """Steps per second of the dispatches since the last call."""
        steps, seconds = self._interval
        self._interval = (0, 0.0)
        self._last_rate = steps / max(seconds, 1e-9)
        return self._last_rate

    def eta(self, step: int, config: ml_collections.ConfigDict) -> float:
        """Seconds to `config.num_steps` from `step`: the steady rate (the last interval's before there is one) and
        the evaluations still due, each as long as the last."""
        steps, seconds = self._steady
        rate = steps / seconds if steps and seconds > 0 else self._last_rate
        if rate <= 0:
            return math.inf
        every = config.eval_every_steps
        # logged before the evaluation of this step, so that one is still due
        evals_left = config.num_steps // every - (step - 1) // every + (config.num_steps % every != 0)
        return (config.num_steps - step) / rate + evals_left * self._eval_seconds


def is_due(step: int, every: int, config: ml_collections.ConfigDict) -> bool:
    """Whether a periodic action (every `every` steps, and at the last step) falls on `step`."""
    return step % every == 0 or step == config.num_steps


def evaluation_owed(config: ml_collections.ConfigDict, step: int, workdir: pathlib.Path) -> bool:
    """Whether a run resumed at `step` owes that step's evaluation: it is an evaluation step, and metrics.jsonl
    has not its record, the evaluation's last output. Process 0 of a job reads it and decides for all (the others
    could read it after process 0 wrote the record)."""
    owed = step > 0 and is_due(step, config.eval_every_steps, config) and EVAL_SECONDS not in logged_at(workdir, step)
    if jax.process_count() == 1:
        return owed
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(owed)))


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str, *, echo: Callable[[str], None] = print
) -> dict[str, Any]:
    """Trains (or resumes) the run in `workdir` up to `config.num_steps` and returns the final evaluation.

    Raises `Preempted` after checkpointing on SIGTERM (seen by any process of a job: all stop at the same step) and
    `NonFiniteLossError` on a NaN/inf loss. At a step with both a checkpoint and an evaluation, the checkpoint is
    written first. A SIGTERM seen at an evaluation step other than the last stops the run before it evaluates, and
    the restart evaluates that step first, as it does after a crash during an evaluation. (A SIGTERM that arrives
    during an evaluation is seen when the evaluation ends.) A SIGTERM during start-up (loading data, compiling,
    restoring) stops the run at its first step boundary the same way, before an evaluation the restart still owes;
    one during the final evaluation lets it finish and then raises `Preempted`."""
    with _SigtermFlag() as sigterm, contextlib.ExitStack() as held:
        result = _train_and_evaluate(config, workdir, echo, sigterm, held)
    if sigterm.raised:  # during the final evaluation, which finished: a caller running several runs stops here
        raise Preempted(result["step"])
    return result


def _train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    echo: Callable[[str], None],
    sigterm: _SigtermFlag,
    held: contextlib.ExitStack,
) -> dict[str, Any]:
    validate(config)
    if config.sweep_key and num_runs(config) == 1:  # a sweep over one value is a plain run at that value
        config = run_configs(config)[0]
    mesh = make_mesh(config)  # checked before the workdir is made or locked: a refused run leaves nothing behind
    if config.data.loader == "stream" and config.num_seeds > 1:  # not in `validate`: runs trained so stay readable
        raise ConfigError(
            f"--config.num_seeds={config.num_seeds} with --config.data.loader='stream': the runs of a sweep share one "
            f"streamed batch per step, so each seed would train on seed {config.seed}'s data order, not its own; train "
            "the seeds one at a time or use --config.data.loader=device"
        )
    try:  # a data set, model or evaluation that does not fit the others: one line naming the flag
        task = make_task(config)
        game = build_game(config, task)
        rule = make_update_rule(game, config)
        check_player_outputs(config, game, task, abstract_state(config, rule, task))
    except ValueError as error:  # also what a model refuses when it first sees the data (sizes, resolutions)
        message = str(error)
        if isinstance(error, UnsupportedImageSize):  # the flags that chose the images and the models
            size = f" (--config.data.image_size={config.data.image_size})" if config.data.name == "image_folder" else ""
            message = (f"--config.data.name={config.data.name!r}{size} with --config.generator.name="
                       f"{config.generator.name!r}, --config.discriminator.name={config.discriminator.name!r}: {message}")
        elif isinstance(error, AttentionResolutionError):
            message = f"--config.{error.player}.attention_resolution={error.resolution}: {message}"
        raise ConfigError(message) from None
    workdir_path = pathlib.Path(workdir)
    samples_dir = workdir_path / "samples"
    try:
        samples_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file where the run's folders go
        raise ConfigError(f"--workdir={workdir}: cannot make {samples_dir} ({error.strerror})") from None
    if (workdir_path / "checkpoints").exists() and not (workdir_path / "checkpoints").is_dir():  # made when first saved
        raise ConfigError(f"--workdir={workdir}: cannot make {workdir_path / 'checkpoints'} (File exists)")
    held.enter_context(workdir_lock(workdir_path))  # until the run returns or raises

    game_for = game_factory(config, task)  # evaluation: not split over devices (eval_num_samples is arbitrary)
    train_game_for = game_factory(config, task, mesh)
    sweep = num_runs(config) > 1
    hparams = swept_hparams(config)
    host_loop = uses_host_loop(config, task)  # also unrolls the rules' inner loops: no XLA loop around a convolution
    stream = None
    if config.data.loader == "stream":
        if len(task.data.shape) != 3:
            raise ConfigError(f"--config.data.loader='stream' is for image data, not {config.data.name!r}")
        pad_to = None if host_loop else config.steps_per_dispatch
        stream = StreamedBatches(config, task, game, rule.num_real_batches, mesh, pad_to)
    train_chunk = make_train_chunk(
        lambda hp: make_update_rule(train_game_for(hp), with_hparams(config, hp), unroll_inner=host_loop),
        None if stream else real_sampler(task, game),
        config.batch_size,
        num_runs(config),
        mesh,
        max_steps=config.steps_per_dispatch,
        host_loop=host_loop,
        due=rule.due,
    )
    evaluate = jax.jit(
        jax.vmap(lambda state, hp: task.evaluation.evaluate(game_for(hp), state))
        if sweep
        else lambda state, hp: task.evaluation.evaluate(game, state)
    )

    # Checked before a writing Checkpointer opens the folder (it cleans up unfinished saves there).
    resuming = bool(saved_steps(workdir_path / "checkpoints"))  # (unless every one turns out unfinished)
    check_resumable(workdir_path, config, has_checkpoints=resuming)
    checkpointer = Checkpointer(workdir_path / "checkpoints", max_to_keep=config.keep_checkpoints)

    def fresh_state() -> TrainState:
        fresh = init_state(config, rule, task)
        if mesh is not None:
            return replicate(fresh, mesh)
        # committed to its device, as a restored state is: a new run and its resumption run one compiled program
        return jax.tree.map(lambda x: jax.device_put(x, x.sharding), fresh)

    if mesh is not None:
        hparams = replicate(hparams, mesh)
    # A run with checkpoints restores into the state's shapes, dtypes and shardings alone: initialising the players
    # (op by op) only to be overwritten costs seconds on every resume.
    if resuming:
        target = abstract_state(config, rule, task)
        if mesh is not None:
            target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated(mesh)), target)
    else:
        target = fresh_state()
    state, step = checkpointer.restore(target, with_data=stream is not None)
    if state is not None and not (workdir_path / CONFIG_FILE).exists():
        logging.warning("%s had no %s: its checkpoint's layout fits this config, and settings that keep the shapes "
                        "(a loss, a learning rate) resume as given", workdir_path, CONFIG_FILE)
    if stream is not None and state is not None:
        stream.restore(checkpointer.restore_data(step), step, workdir_path)
    save = lambda step, state, **kw: checkpointer.save(step, state, data=stream and stream.state(), **kw)  # noqa: E731
    primary = is_primary()  # one process of a multi-host job writes the files; all of them compute
    if state is not None and step > config.num_steps:
        checkpointer.close()
        raise ConfigError(
            f"--config.num_steps={config.num_steps}: {workdir_path} has trained to step {step} already; give at least "
            f"{step}, or branch from an earlier step (--branch_from, --branch_step) into a new --workdir"
        )
    try:  # traced now (the first evaluation reuses the trace), not after eval_every_steps of training
        evaluate.eval_shape(target, hparams)
    except jax.errors.JAXTypeError as error:  # a tracer given to NumPy or Python: a user's own evaluation, likely
        checkpointer.close()
        raise ConfigError(
            f"--config.evaluations={list(config.evaluations)}: an evaluation's evaluate(game, state) does not trace "
            f"under jax.jit ({type(error).__name__}: {first_line(error, 200)}); compute its metrics with jax.numpy, "
            "and what needs NumPy in its summarize"
        ) from None
    if state is None:
        state, step = (fresh_state() if resuming else target), 0  # (no checkpoint restored after all: a fresh one)
        echo(f"starting a new run in {workdir_path} ({config.num_steps} steps)")
    else:
        echo(f"resuming from the checkpoint at step {step} in {workdir_path}")
    if primary:  # check_resumable allowed only RESUMABLE changes: config.json holds what the run now does
        write_json(workdir_path / CONFIG_FILE, config.to_dict())
        for stale in samples_dir.glob("step_*.npy"):  # of an attempt that died after them (also their labels)
            if sample_step(stale) > step:
                stale.unlink()
    del target
    # A finished run resumed evaluates its last step again, under the evaluation settings given now (they may
    # differ: RESUMABLE), and logs that evaluation in place of the old one: eval.json, metrics.jsonl and the saved
    # samples then hold the same evaluation.
    writer = MetricWriter(workdir_path, resume_step=step, enabled=primary, evaluate_again=step >= config.num_steps)

    def run_eval(state: TrainState, step: int) -> dict:
        start = time.perf_counter()
        if sweep and mesh is not None:
            # A sweep's evaluation on the mesh hung on 2 CPU devices (the vmapped image evaluation, 2026-12-05);
            # the state is replicated, so each process evaluates its own replica on one device instead.
            state, hp = jax.tree.map(lambda x: x.addressable_data(0), (state, hparams))
        else:
            hp = hparams
        metrics, samples = to_host(evaluate(state, hp))
        metrics.update(task.evaluation.host_scalars(metrics))
        if config.log_eigenvalues:  # a single run: validate refuses them for a sweep
            metrics.update(top_eigenvalue_metrics(game, task, to_host(state), config, rule))
        if primary:
            save_npy_atomic(samples_dir / f"step_{step:08d}.npy", data_of(samples))
            if isinstance(samples, Labelled):  # a conditioned run: the classes G was asked for
                save_npy_atomic(samples_dir / f"step_{step:08d}_labels.npy", samples.labels)
        # one record, last: it marks the evaluation done (`evaluation_owed`)
        scalars = {k: v for k, v in metrics.items() if v.ndim == int(sweep)}
        record = {f"eval/{k}": v.mean() if sweep else v for k, v in scalars.items()}
        if sweep:  # the per-seed values too, as lists
            record.update({f"eval/{k}/per_seed": v for k, v in scalars.items()})
        writer.write(step, {**record, EVAL_SECONDS: time.perf_counter() - start})
        return metrics

    failing: BaseException | None = None
    compiling = CompileSeconds()  # listening until the `finally` below
    try:
        start_step, start_time = step, time.perf_counter()
        clock = DispatchClock(config.steps_per_dispatch, config.max_dispatch_seconds)
        pace = Pace()
        final, since_log = None, []
        if step < config.num_steps and sigterm.seen_by_any():  # during start-up: the owed evaluation can wait
            save(step, state, force=True)  # a fresh run's step 0 (a restored step is saved already)
            checkpointer.wait()
            raise Preempted(step)
        if evaluation_owed(config, step, workdir_path):  # stopped before, or killed during, its evaluation
            final = run_eval(state, step)
            echo(f"eval {step:>7d}  {describe_eval(task, final, config)}")
        while step < config.num_steps:
            if sigterm.seen_by_any():
                save(step, state, force=True)
                checkpointer.wait()
                raise Preempted(step)
            target = clock.end(step, next_boundary(step, config))
            dispatched = time.perf_counter()
            real = () if stream is None else (stream.next(target - step),)
            state, metrics = train_chunk(state, target - step, hparams, *real)
            metrics = {k: v[: target - step] for k, v in to_host(metrics).items()}  # the one host sync
            clock.record(target - step, time.perf_counter() - dispatched)
            pace.trained(target - step, time.perf_counter() - dispatched)
            since_log.append(metrics)
            bad = _first_nonfinite(metrics)
            if bad is not None:
                index, key, value, seed = bad
                checkpointer.wait()
                last = checkpointer.latest_step()
                where = "" if seed is None else f" (run {seed}: {describe_sweep_run(config, seed)})"
                raise NonFiniteLossError(
                    f"non-finite {key}={value} at step {step + index + 1}{where}; "
                    f"last good checkpoint: {'none' if last is None else f'step {last}'}"
                )
            step = target
            if is_due(step, config.log_every_steps, config):
                rate = pace.interval_rate()
                means = {k: float(np.mean(np.concatenate([m[k] for m in since_log]))) for k in metrics}
                since_log = []
                writer.write(step, {**means, "steps_per_sec": rate})
                eta = pace.eta(step, config)
                losses = "  ".join(f"{k} {v:+.4f}" for k, v in means.items())
                echo(f"step {step:>7d}/{config.num_steps}  {losses}  {rate:7.1f} steps/s  ETA {format_duration(eta)}")
            if is_due(step, config.checkpoint_every_steps, config):
                save(step, state)  # before the evaluation: a kill during a long one loses only the evaluation
            if is_due(step, config.eval_every_steps, config):
                if step < config.num_steps and sigterm.seen_by_any():
                    continue  # stop now, unevaluated: the restart evaluates this step first
                eval_start, compiled_before = time.perf_counter(), compiling.seconds
                final = run_eval(state, step)
                pace.evaluated(time.perf_counter() - eval_start, compiling.seconds - compiled_before)
                echo(f"eval {step:>7d}  {describe_eval(task, final, config)}")
        elapsed = time.perf_counter() - start_time
        if step > start_step:
            echo(f"trained {step - start_step} steps in {format_duration(elapsed)}")

        result = {"step": int(step), **summarize(task, game, to_host(state), final, config), "config": config.to_dict()}
        if primary:
            write_json(workdir_path / "eval.json", result)
            snapshots = load_snapshots(samples_dir)
            if sweep:  # the figure shows the first run
                snapshots = {s: v[0] for s, v in snapshots.items()}
            task.evaluation.plot(workdir_path / "samples.png", snapshots, game, config)  # and its other figures
            if draws_code_sweep(game, task.data.shape):  # InfoGAN: samples.png is the codes' sweep of the final G
                first = _take(to_host(state), 0) if sweep else to_host(state)
                which = f", run 0 of {num_runs(config)}" if sweep else ""
                plot_code_sweep(workdir_path / "samples.png", game, first, f"{config.data.name}{which}, step {step}")
        save(step, state)
        return result
    except BaseException as error:
        failing = error
        raise
    finally:
        compiling.close()
        try:
            checkpointer.close()  # waits for the last save
        except Exception as error:
            if failing is None:
                raise
            # orbax re-raises a failed save on every later call: the error already on its way says it
            logging.error("closing the checkpoints while handling %r: %s", failing, first_line(error))
        finally:
            writer.close()
            if stream is not None:
                stream.close()
