"""The training state: one pytree, so that a checkpoint of it resumes a run exactly.

Everything a step reads that changes over training lives here: the step counter, both players' parameters and
model state (batch statistics, spectral-norm vectors), both optimizer states, the PRNG key, and what a stateful
objective carries (BEGAN's k_t). Per-step randomness
is `fold_in(key, step)`, so the data a step sees depends on the step number alone: the data position is the step,
and a resumed run draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.struct
import jax


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
    g_params_ema: Any = None  # exponential moving average of G's parameters, when the run keeps one
    loss_state: Any = None  # what a stateful objective carries between steps (BEGAN's k_t), when it has any


class StepKeys(NamedTuple):
    data: jax.Array  # real batches
    noise: jax.Array  # G's noise z
    penalty: jax.Array  # random points of gradient penalties (WGAN-GP interpolates, DRAGAN perturbations)
    generator: jax.Array  # G's own randomness beyond z (StyleGAN's noise inputs and style-mixing draws)


def step_keys(state: TrainState) -> StepKeys:
    """Independent key streams for the current step, derived from (key, step) alone."""
    step_key = jax.random.fold_in(state.key, state.step)
    return StepKeys(*(jax.random.fold_in(step_key, i) for i in range(4)))

