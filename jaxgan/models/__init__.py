"""The model protocol: a player is a pair of pure functions over explicit parameters.

`init(key, example) -> (params, model_state)` and `apply(params, model_state, inputs) -> (outputs, model_state)`.
`model_state` holds the non-parameter collections a Linen module mutates in training (batch statistics, the
power-iteration vector of spectral normalisation); it is an empty dict for stateless models. Update rules only
see this protocol, so any framework that can provide the two functions (Linen today, NNX later) plugs in.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax

from jaxgan.models.mlp import MLP, MLPDiscriminator, MLPGenerator

Params = Any
ModelState = dict


class Player(NamedTuple):
    init: Callable[[jax.Array, jax.Array], tuple[Params, ModelState]]
    apply: Callable[[Params, ModelState, jax.Array], tuple[jax.Array, ModelState]]


def linen_player(module: nn.Module) -> Player:
    """Wraps a Linen module as a `Player`; every non-`params` collection is treated as mutable model state."""

    def init(key: jax.Array, example: jax.Array) -> tuple[Params, ModelState]:
        variables = dict(module.init(key, example))
        params = variables.pop("params")
        return params, variables

    def apply(params: Params, model_state: ModelState, inputs: jax.Array) -> tuple[jax.Array, ModelState]:
        if not model_state:
            return module.apply({"params": params}, inputs), model_state
        outputs, new_state = module.apply(
            {"params": params, **model_state}, inputs, mutable=list(model_state.keys())
        )
        return outputs, dict(new_state)

    return Player(init, apply)


__all__ = ["MLP", "MLPDiscriminator", "MLPGenerator", "Player", "linen_player"]
