"""jaxgan: GANs in JAX/Flax as pure, compiled functions.

Losses (`jaxgan.losses`), the game (`jaxgan.game`), update rules (`jaxgan.updates`), the training state
(`jaxgan.state`) and the runner (`jaxgan.train`, `python -m jaxgan.main`).
"""

from jaxgan.game import Game, discriminator_step, generate
from jaxgan.losses import LOSSES, GanLoss, get_loss
from jaxgan.state import TrainState, step_keys
from jaxgan.updates import (
    UPDATE_RULES,
    UpdateRule,
    alternating_step,
    make_update_rule,
    simultaneous_step,
    unrolled_step,
)

__all__ = [
    "Game",
    "GanLoss",
    "LOSSES",
    "TrainState",
    "UPDATE_RULES",
    "UpdateRule",
    "alternating_step",
    "discriminator_step",
    "generate",
    "get_loss",
    "make_update_rule",
    "simultaneous_step",
    "step_keys",
    "unrolled_step",
]
