"""The training state: one pytree, so that a checkpoint of it resumes a run exactly.

Everything a step reads that changes over training lives here: the step counter, both players' parameters and
model state (batch statistics, spectral-norm vectors), both optimizer states and the PRNG key. Per-step randomness
is `fold_in(key, step)`, so the data a step sees depends on the step number alone: the data position is the step,
and a resumed run draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: number of completed update steps
    g_params: Any
    d_params: Any
    g_model_state: Any
    d_model_state: Any
    g_opt_state: Any
    d_opt_state: Any
    key: jax.Array  # base key; never split in place, see `step_keys`


def step_keys(state: TrainState) -> tuple[jax.Array, jax.Array]:
    """(data_key, noise_key) for the current step: independent streams derived from (key, step) alone."""
    step_key = jax.random.fold_in(state.key, state.step)
    return jax.random.fold_in(step_key, 0), jax.random.fold_in(step_key, 1)


def num_params(tree: Any) -> int:
    return sum(int(jnp.size(x)) for x in jax.tree.leaves(tree))
