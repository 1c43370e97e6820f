"""The MLPs of the low-dimensional experiments: maxout layers, batch norm in G, kernel initialisation."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.config import ConfigError, load_config_file, validate
from jaxgan.models.mlp import MLP, Maxout, MLPDiscriminator, MLPGenerator, kernel_initializer


def test_maxout_is_the_max_over_pieces_of_the_linear_map():
    module = Maxout(features=3, pieces=4)
    x = jax.random.normal(jax.random.key(0), (5, 2))
    params = module.init(jax.random.key(1), x)
    dense = params["params"]["Dense_0"]
    linear = x @ dense["kernel"] + dense["bias"]  # [5, 3·4], unit i's pieces at 4i .. 4i + 3
    expected = np.stack([linear[:, 4 * i : 4 * i + 4].max(axis=1) for i in range(3)], axis=1)
    chex.assert_trees_all_close(module.apply(params, x), expected, rtol=1e-6)


def test_maxout_discriminator_has_one_maxout_layer_per_hidden_layer():
    d = MLPDiscriminator(width=8, depth=3, maxout_pieces=5)
    params = d.init(jax.random.key(0), jnp.zeros((2, 4)))["params"]["MLP_0"]
    assert sorted(params) == ["Dense_0", "Maxout_0", "Maxout_1", "Maxout_2"]
    assert params["Maxout_1"]["Dense_0"]["kernel"].shape == (8, 40)
    assert params["Dense_0"]["kernel"].shape == (8, 1)


def test_default_mlp_parameters_are_unchanged_by_the_options():
    """The ring and grid experiments' parameter trees (and so their checkpoints and results) stay as they were."""
    g = MLPGenerator(data_dim=2, width=8, depth=2)
    variables = g.init(jax.random.key(0), jnp.zeros((3, 4)))
    assert list(variables) == ["params"]
    layers = variables["params"]["MLP_0"]
    assert sorted(layers) == ["Dense_0", "Dense_1", "Dense_2"]
    assert all("bias" in layer for layer in layers.values())


def test_batch_norm_generator_normalises_with_batch_statistics_in_training():
    g = MLPGenerator(data_dim=2, width=6, depth=1, batch_norm=True)
    z = jax.random.normal(jax.random.key(0), (32, 3))
    variables = g.init(jax.random.key(1), z)
    params = variables["params"]["MLP_0"]
    assert "bias" not in params["Dense_0"]  # batch norm's shift replaces it
    out, state = g.apply(variables, z, mutable=["batch_stats"])

    h = z @ params["Dense_0"]["kernel"]
    mean, var = h.mean(axis=0), h.var(axis=0)
    normalised = (h - mean) / np.sqrt(var + 1e-5) * params["BatchNorm_0"]["scale"] + params["BatchNorm_0"]["bias"]
    expected = np.maximum(normalised, 0) @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]
    chex.assert_trees_all_close(out, expected, rtol=1e-4, atol=1e-5)
    # Running averages move 5% of the way to the batch statistics (PacGAN's momentum 0.95).
    stats = state["batch_stats"]["MLP_0"]["BatchNorm_0"]
    chex.assert_trees_all_close(stats["mean"], 0.05 * mean, rtol=1e-4, atol=1e-6)
    chex.assert_trees_all_close(stats["var"], 0.95 + 0.05 * h.var(axis=0, ddof=0), rtol=1e-4)


def test_batch_norm_generator_evaluates_with_running_averages():
    g = MLPGenerator(data_dim=2, width=6, depth=1, batch_norm=True)
    z = jax.random.normal(jax.random.key(0), (32, 3)) * 3.0 + 1.0
    variables = g.init(jax.random.key(1), z)
    params = variables["params"]["MLP_0"]
    out = g.apply(variables, z, train=False)  # running mean 0, variance 1 at initialisation
    h = z @ params["Dense_0"]["kernel"] / np.sqrt(1 + 1e-5)
    expected = np.maximum(h, 0) @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]
    chex.assert_trees_all_close(out, expected, rtol=1e-4, atol=1e-5)


def test_normal_init_draws_kernels_with_the_given_std():
    kernel = kernel_initializer("normal", 0.02)(jax.random.key(0), (400, 400))
    assert abs(float(jnp.std(kernel)) - 0.02) < 0.02 * 0.01  # 160000 draws: the std is within 1%
    assert abs(float(jnp.mean(kernel))) < 0.02 * 0.01
    orthogonal = kernel_initializer("orthogonal", 0.8)(jax.random.key(0), (16, 16))
    chex.assert_trees_all_close(orthogonal.T @ orthogonal, 0.64 * jnp.eye(16), atol=1e-5)


def test_unknown_weight_init_is_refused():
    with pytest.raises(ValueError) as error:
        MLP(1, weight_init="xavier").init(jax.random.key(0), jnp.zeros((1, 2)))
    assert str(error.value) == "weight_init 'xavier': must be one of orthogonal, normal"


def test_pacgan_grid_experiment_config():
    config = load_config_file("experiments/grid25_pacgan.py")
    validate(config)
    assert config.batch_size == 100 * config.packing and config.num_steps == 400_000
    config.discriminator.maxout_pieces = 0
    with pytest.raises(ConfigError, match="--config.discriminator.maxout_pieces=0: must be a positive integer"):
        validate(config)
    config.discriminator.maxout_pieces = 5
    config.generator.weight_init = "norm"
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert str(error.value) == (
        "--config.generator.weight_init='norm': unknown value; allowed: normal, orthogonal (did you mean 'normal'?)"
    )
