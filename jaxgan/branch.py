"""Branching a run: a new workdir that starts from another run's checkpoint at step N under a changed schedule.

A long run often shows only late what it needs next (a learning-rate decay once a mixture's modes are covered).
Starting over repeats the first N steps; branching does not, and loses nothing of the run's exactness: the branch
may change only settings that cannot act before step N (a cosine decay of a constant Adam rate that begins at or
after the optimizer's update count at N: N for G, d_steps·N for D; and what a resume may change), so the state at
N is the one a run started from scratch with the new config would have reached, and the steps after it are the
same computation. The new workdir receives that state as its checkpoint at N, with the new config, the source's
metrics and samples up to N, and `branched_from.json`; from there it is an ordinary run (the same command resumes
it).

    python -m jaxgan.main --config=experiments/grid25_pacgan.py --workdir=runs/decayed \\
        --branch_from=runs/grid_pacgan4/seed_0 --branch_step=200000 \\
        --config.g_optimizer.cosine_decay_begin=200000 --config.g_optimizer.cosine_decay_steps=200000 ...
"""

from __future__ import annotations

import json
import pathlib
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan.checkpoint import Checkpointer, saved_steps
from jaxgan.config import RESUMABLE, ConfigError, config_differences, shorten_differences, validate
from jaxgan.writers import metrics_up_to, write_text_atomic

BRANCHED_FROM_FILE = "branched_from.json"
OPTIMIZERS = ("g_optimizer", "d_optimizer")
DECAY_KEYS = ("cosine_decay_steps", "cosine_decay_begin")
BRANCHABLE = tuple(f"{player}.{key}" for player in OPTIMIZERS for key in DECAY_KEYS)


def _leaves_by_path(tree: Any) -> dict[str, Any]:
    return {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def update_count(opt_state: Any) -> int | None:
    """The number of updates an optimizer state has applied: its first `count` (Adam's; one per run of a sweep, all
    equal), None if it keeps none."""
    counts = [leaf for name, leaf in _leaves_by_path(opt_state).items() if name.endswith(".count")]
    if not counts:
        return None
    values = np.unique(np.asarray(counts[0]))
    if values.size != 1:
        raise ValueError(f"the runs of the sweep have applied different numbers of updates ({values.tolist()})")
    return int(values[0])


def graft_optimizer_state(source: Any, target: Any, count: int) -> Any:
    """`target`'s structure (an abstract optimizer state) filled with `source`'s values path by path; the leaves
    only `target` has must be update counts (what a learning-rate schedule adds to a constant rate's state: a
    scalar, or one per run of a sweep) and get `count`. Raises ValueError when a leaf of either side has no
    counterpart."""
    values = _leaves_by_path(source)
    paths_and_leaves, treedef = jax.tree_util.tree_flatten_with_path(target)
    leaves = []
    for path, abstract in paths_and_leaves:
        name = jax.tree_util.keystr(path)
        if name in values and values[name].shape == abstract.shape and values[name].dtype == abstract.dtype:
            leaves.append(values.pop(name))
        elif name.endswith(".count") and abstract.ndim <= 1:
            leaves.append(jnp.full(abstract.shape, count, abstract.dtype))
        else:
            raise ValueError(f"the new optimizer state has {name} {abstract.shape}, which the source's lacks")
    if values:
        raise ValueError(f"the source's optimizer state has {next(iter(values))}, which the new one lacks")
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _branch_state(state: Any, source_config: Any, config: Any, step: int, source: str) -> Any:
    """The source's state at `step` with each optimizer's state grafted into the new config's layout, after
    checking that every changed decay is of a constant rate and begins no earlier than the updates applied."""
    from jaxgan.train import abstract_state  # train imports this module

    target = abstract_state(config)
    grafted = {}
    for player in OPTIMIZERS:
        opt_state = getattr(state, f"{player[0]}_opt_state")
        if all(source_config[player][key] == config[player][key] for key in DECAY_KEYS):
            grafted[f"{player[0]}_opt_state"] = opt_state
            continue
        if source_config[player].cosine_decay_steps:
            raise ConfigError(
                f"--config.{player}.cosine_decay_steps: the run in {source} already decays this rate; a branch may "
                "only add a decay to a constant rate"
            )
        try:
            count = update_count(opt_state)
        except ValueError as error:
            raise ConfigError(f"--branch_from={source}: {error}") from None
        if count is None:
            raise ConfigError(
                f"--config.{player}.cosine_decay_steps: {config[player].name!r} keeps no update count to start the "
                "decay's schedule from; a branch can add a decay to Adam only"
            )
        if config[player].cosine_decay_begin < count:
            raise ConfigError(
                f"--config.{player}.cosine_decay_begin={config[player].cosine_decay_begin}: the branch starts after "
                f"{count} updates of this optimizer (step {step}), so its decay must begin at or after {count}"
            )
        try:
            grafted[f"{player[0]}_opt_state"] = graft_optimizer_state(
                opt_state, getattr(target, f"{player[0]}_opt_state"), count
            )
        except ValueError as error:
            raise ConfigError(f"--branch_from={source}: {error}") from None
    return state.replace(**grafted)


def branch_run(source: str, step: int, config: ml_collections.ConfigDict, workdir: str) -> list[str]:
    """Writes into `workdir` (which must hold no checkpoints) the branch of the run in `source` at `step` under
    `config`; returns the settings it changes (`key: before → now`). Raises ConfigError (one line) when the branch
    cannot equal a run of `config` from scratch, or `source` has no checkpoint at `step`."""
    # imported here: train imports this module
    from jaxgan.plotting import sample_step
    from jaxgan.train import CONFIG_FILE, abstract_state, restore_saved, saved_config, workdir_lock, write_json

    source_path, workdir_path = pathlib.Path(source), pathlib.Path(workdir)
    source_config = saved_config(source_path, "--branch_from")
    validate(config)
    if config.num_steps < step:  # refused before anything is written, as the run would refuse it after
        raise ConfigError(
            f"--config.num_steps={config.num_steps}: the branch starts at step {step} (--branch_step); give at least {step}"
        )
    saved = source_config.to_dict()
    acting_before = config_differences(saved, config, ignore=(*RESUMABLE, *BRANCHABLE))
    if acting_before:
        raise ConfigError(
            f"--branch_from={source}: the run differs from this config in settings that act before step {step} "
            f"({shorten_differences(acting_before)}); a branch may change only {', '.join(BRANCHABLE)} and what a "
            "resume may change"
        )
    def refuse_a_trained_workdir() -> None:
        if saved_steps(workdir_path / "checkpoints"):
            raise ConfigError(f"--workdir={workdir}: holds checkpoints already; a branch needs a new --workdir")

    refuse_a_trained_workdir()
    state, data, _ = restore_saved(
        source_path, abstract_state(source_config), step, flag="--branch_from", step_flag="--branch_step"
    )
    state = _branch_state(state, source_config, config, step, source)

    # Everything but the checkpoint first: the checkpoint is what makes the workdir a branch (`main.branch` redoes
    # a branch whose checkpoint is missing, e.g. after a crash in here).
    workdir_path.mkdir(parents=True, exist_ok=True)
    with workdir_lock(workdir_path):  # a run started in the new workdir meanwhile is neither refused late nor overwritten
        refuse_a_trained_workdir()
        write_json(workdir_path / CONFIG_FILE, config.to_dict())
        # What an earlier attempt without a checkpoint left here belongs to another run: the trainer drops only
        # what is newer than the step it starts from, so a leftover sample or log line at or before the branch
        # step would be drawn and read as the branch's history.
        for leftover in (*(workdir_path / "samples").glob("step_*.npy"), workdir_path / "metrics.jsonl"):
            leftover.unlink(missing_ok=True)
        if (source_path / "metrics.jsonl").is_file():
            write_text_atomic(workdir_path / "metrics.jsonl", metrics_up_to(source_path / "metrics.jsonl", step))
        (workdir_path / "samples").mkdir(exist_ok=True)
        for sample in sorted((source_path / "samples").glob("step_*.npy")):
            if sample_step(sample) <= step:
                shutil.copy2(sample, workdir_path / "samples" / sample.name)
        changes = config_differences(saved, config, ignore=RESUMABLE)
        record = {"source": str(source_path.resolve()), "step": step, "changes": changes}
        write_text_atomic(workdir_path / BRANCHED_FROM_FILE, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        with Checkpointer(workdir_path / "checkpoints") as target_checkpoints:
            target_checkpoints.save(step, state, data=data)
    return changes
