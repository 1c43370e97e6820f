"""Tests of the auto-encoder discriminator of EBGAN / BEGAN (jaxgan.models.autoencoder)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import UnsupportedImageSize, linen_player
from jaxgan.models.autoencoder import AutoencoderDiscriminator

BATCH = 3
TINY = dict(base_width=4, embedding_dim=6)


def _images(shape, batch=BATCH, seed=1):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, (batch, *shape)).astype(np.float32))


def _init(module, x, seed=0):
    """Variables of the shapes `module.init` gives, drawn with numpy (compiling JAX's PRNG for every parameter
    shape would dominate the run time on a small CPU). Weights of std 0.3, larger than the model's N(0, 0.02),
    so that the reconstruction is of the order of the input and the energy checks are sensitive to it."""
    shapes = jax.eval_shape(module.init, jax.random.key(0), x)
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        value = {"mean": np.zeros(leaf.shape), "var": np.ones(leaf.shape), "scale": np.ones(leaf.shape)}.get(name)
        if value is None:
            value = (0.3 if name == "kernel" else 0.1) * rng.standard_normal(leaf.shape)
        return jnp.asarray(value, leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


@pytest.mark.parametrize(
    "shape, encoder_widths, start",
    [((28, 28, 1), (4, 8), (7, 7)), ((32, 32, 3), (4, 8, 16), (4, 4)), ((8, 8, 1), (4, 8), (2, 2))],
)
def test_shapes_and_layers(shape, encoder_widths, start):
    module = AutoencoderDiscriminator(**TINY)
    x = _images(shape)
    # Shapes only: tracing is enough, and compiling every size would dominate the run time on a small CPU.
    variables = jax.eval_shape(module.init, jax.random.key(0), x)
    outputs, _ = jax.eval_shape(lambda v: module.apply(v, x, mutable=["batch_stats"]), variables)
    assert set(outputs) == {"logits", "embedding", "reconstruction"}
    assert outputs["logits"].shape == (BATCH,) and outputs["logits"].dtype == jnp.float32
    assert outputs["embedding"].shape == (BATCH, 6)
    assert outputs["reconstruction"].shape == (BATCH, *shape)
    params = variables["params"]
    # Encoder: stride-2 convs of widths base * 2^i down to the decoder's start map.
    channels = shape[2]
    for i, width in enumerate(encoder_widths):
        assert params[f"Conv_{i}"]["kernel"].shape == (4, 4, channels, width)
        channels = width
    assert f"Conv_{len(encoder_widths)}" not in params
    assert params["encode"]["kernel"].shape == (start[0] * start[1] * encoder_widths[-1], 6)
    assert params["decode"]["kernel"].shape == (6, start[0] * start[1] * encoder_widths[-1])
    last = len(encoder_widths) - 1
    assert params[f"ConvTranspose_{last}"]["kernel"].shape[-1] == shape[2]


@pytest.mark.parametrize("kind", ["mse", "l1"])
def test_energy_is_the_reconstruction_error(kind):
    module = AutoencoderDiscriminator(**TINY, energy=kind, norm="none", activation="elu")
    x = _images((8, 8, 1), batch=4)
    variables = _init(module, x, 1)
    outputs = module.apply(variables, x)
    error = np.asarray(x, np.float64) - np.asarray(outputs["reconstruction"], np.float64)
    error = error**2 if kind == "mse" else np.abs(error)
    expected = error.reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(outputs["logits"], expected, rtol=1e-5)
    assert np.all(expected > 0)  # a random auto-encoder does not reconstruct: a non-trivial check


def test_the_reconstruction_passes_through_the_embedding():
    """Everything the decoder sees of x is the embedding: the reconstruction's Jacobian in x has rank at most
    embedding_dim (6 of 64 pixels), and as many directions of x as that move the embedding (rank 6 there too)."""
    module = AutoencoderDiscriminator(**TINY, norm="none", activation="elu")
    x = _images((8, 8, 1), batch=1)
    variables = _init(module, x, 2)
    outputs = lambda image: module.apply(variables, image[None])  # noqa: E731
    reconstruction = jax.jacfwd(lambda image: outputs(image)["reconstruction"].reshape(-1))(x[0]).reshape(64, 64)
    embedding = jax.jacfwd(lambda image: outputs(image)["embedding"].reshape(-1))(x[0]).reshape(6, 64)
    singular = np.linalg.svd(np.asarray(reconstruction, np.float64), compute_uv=False)
    assert singular[5] > 1e-3 * singular[0] and np.all(singular[6:] < 1e-5 * singular[0]), singular[:8]
    assert np.linalg.matrix_rank(np.asarray(embedding, np.float64)) == 6
    assert outputs(x[0])["embedding"].shape == (1, 6)


def test_mse_and_l1_share_the_network():
    x = _images((8, 8, 1))
    mse = AutoencoderDiscriminator(**TINY, norm="none")
    variables = _init(mse, x, 2)
    a = mse.apply(variables, x)
    b = AutoencoderDiscriminator(**TINY, norm="none", energy="l1").apply(variables, x)
    np.testing.assert_array_equal(a["reconstruction"], b["reconstruction"])
    assert not np.allclose(a["logits"], b["logits"])


def test_batch_norm_statistics_update_in_train_mode_only():
    module = AutoencoderDiscriminator(**TINY, norm="batch")
    player = linen_player(module)
    x = _images((8, 8, 1), batch=4)
    variables = _init(module, x, 3)
    params, state = variables["params"], {"batch_stats": variables["batch_stats"]}
    assert set(state) == {"batch_stats"}
    _, trained = player.apply(params, state, x, train=True)
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), state, trained)
    assert all(jax.tree.leaves(changed))  # every running mean and variance moved
    evaluated, same = player.apply(params, trained, x, train=False)
    assert same is trained
    # With running averages each example's energy is its own: evaluating one example alone gives the same value.
    alone, _ = player.apply(params, trained, x[:1], train=False)
    np.testing.assert_allclose(alone["logits"], evaluated["logits"][:1], rtol=1e-5)
    # In train mode batch statistics couple the examples.
    in_batch, _ = player.apply(params, state, x, train=True)
    pair, _ = player.apply(params, state, x[:2], train=True)
    assert not np.allclose(pair["logits"], in_batch["logits"][:2])


def test_no_norm_has_no_state_and_independent_examples():
    module = AutoencoderDiscriminator(**TINY, norm="none", activation="elu")
    x = _images((8, 8, 1), batch=4)
    variables = _init(module, x, 4)
    assert set(variables) == {"params"}
    full = module.apply(variables, x, train=True)["logits"]
    part = module.apply(variables, x[1:3], train=True)["logits"]
    np.testing.assert_allclose(part, full[1:3], rtol=1e-5)


def test_space_to_depth_equals_nn_conv():
    x = _images((8, 8, 1))
    a = AutoencoderDiscriminator(**TINY, norm="none", space_to_depth=True)
    b = AutoencoderDiscriminator(**TINY, norm="none", space_to_depth=False)
    variables = _init(a, x, 5)
    assert jax.tree.structure(variables) == jax.tree.structure(jax.eval_shape(b.init, jax.random.key(5), x))
    np.testing.assert_allclose(a.apply(variables, x)["logits"], b.apply(variables, x)["logits"], rtol=1e-5)


def test_bfloat16_compute_gives_float32_outputs():
    module = AutoencoderDiscriminator(**TINY, norm="none", dtype=jnp.bfloat16)
    x = _images((8, 8, 1))
    outputs = module.apply(_init(module, x, 6), x)
    assert all(v.dtype == jnp.float32 for v in outputs.values())


@pytest.mark.parametrize("shape", [(20, 20, 1), (28, 32, 1)])
def test_unsupported_size(shape):
    module = AutoencoderDiscriminator(**TINY)
    with pytest.raises(UnsupportedImageSize) as error:
        module.init(jax.random.key(0), jnp.zeros((1, *shape)))
    message = error.value.args[0]
    assert "\n" not in message
    expected = f"AutoencoderDiscriminator: unsupported image size {shape[0]}x{shape[1]}; supported sides"
    assert message.startswith(expected)


@pytest.mark.parametrize("field, value", [("energy", "l2"), ("norm", "layer"), ("activation", "relu")])
def test_bad_settings(field, value):
    module = AutoencoderDiscriminator(**TINY, **{field: value})
    with pytest.raises(ValueError, match=f"{field} must be one of"):
        module.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
