"""Configs: the cosine learning-rate decay against its closed form; every experiment file validates."""

import math
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.config import ConfigError, default_config, make_optimizer, validate
from scripts.notes import load_experiment


@pytest.mark.parametrize("decay_steps", [0, 4])
def test_sgd_step_sizes_follow_the_cosine_decay(decay_steps):
    config = default_config().g_optimizer
    config.name, config.learning_rate, config.cosine_decay_steps = "sgd", 0.3, decay_steps
    optimizer = make_optimizer(config)
    params = jnp.zeros(())
    state = optimizer.init(params)
    for t in range(7):
        update, state = optimizer.update(jnp.ones(()), state, params)
        expected = 0.3 if not decay_steps else 0.3 * 0.5 * (1 + math.cos(math.pi * min(t, decay_steps) / decay_steps))
        np.testing.assert_allclose(-float(update), expected, rtol=1e-6, atol=1e-9)


def test_negative_decay_steps_are_refused():
    config = default_config()
    config.d_optimizer.cosine_decay_steps = -1
    with pytest.raises(ConfigError, match=r"--config.d_optimizer.cosine_decay_steps=-1: must be >= 0"):
        validate(config)


@pytest.mark.parametrize("path", sorted(pathlib.Path(__file__).resolve().parents[1].glob("experiments/*.py")), ids=str)
def test_every_experiment_config_validates(path):
    validate(load_experiment(path.stem))  # raises ConfigError naming the bad key
