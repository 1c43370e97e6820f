"""The small DCGAN of the unrolled GAN paper's stacked MNIST experiment (jaxgan/models/small_dcgan.py)."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.config import default_config
from jaxgan.models import build_players, linen_player
from jaxgan.models.small_dcgan import SmallDCGANDiscriminator, SmallDCGANGenerator, halving_sides, transpose_padding


def _count(tree) -> int:
    return sum(x.size for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("size_in, size_out", [(4, 7), (7, 14), (14, 28), (4, 8), (8, 16), (2, 3)])
def test_transposed_conv_is_the_adjoint_of_the_same_strided_conv(size_in, size_out):
    """TensorFlow's conv2d_transpose with an output shape, which the paper's code uses, is the gradient of the
    stride-2 "SAME" conv from that shape: the padding must reproduce it exactly, odd sizes (4 -> 7) included."""
    kernel = jax.random.normal(jax.random.key(0), (3, 3, 5, 6))
    y = jax.random.normal(jax.random.key(1), (2, size_in, size_in, 6))

    def conv(x):
        return jax.lax.conv_general_dilated(x, kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    x0 = jnp.zeros((2, size_out, size_out, 5))
    assert conv(x0).shape[1] == size_in
    expected = jax.vjp(conv, x0)[1](y)[0]
    pad = transpose_padding(size_in, size_out, 3)
    layer = nn.ConvTranspose(5, (3, 3), strides=(2, 2), padding=(pad, pad), transpose_kernel=True, use_bias=False)
    chex.assert_trees_all_close(layer.apply({"params": {"kernel": kernel}}, y), expected, atol=1e-5)


def test_halving_sides():
    assert halving_sides(28, 3) == [28, 14, 7, 4]
    assert halving_sides(32, 3) == [32, 16, 8, 4]
    assert halving_sides(8, 0) == [8]


def test_the_papers_layers_and_parameter_count():
    """G: Dense(256 -> 4·4·64) - BN (per channel, after the reshape) - deconv 32 - BN - deconv 16 - BN - deconv 8 - BN - conv 3 (+ bias), 3×3
    kernels; D: conv 2 - BN - conv 4 - BN - conv 8 - BN - Dense(4·4·8 -> 1), counted from that layer list."""
    g = SmallDCGANGenerator((28, 28, 3))
    z = jnp.zeros((2, 256))
    g_vars = g.init(jax.random.key(0), z)
    expected_g = 256 * 4 * 4 * 64 + 9 * (64 * 32 + 32 * 16 + 16 * 8) + (9 * 8 * 3 + 3) + 2 * (64 + 32 + 16 + 8)
    assert _count(g_vars["params"]) == expected_g
    images = g.apply(g_vars, jax.random.normal(jax.random.key(1), (2, 256)), train=False)
    chex.assert_shape(images, (2, 28, 28, 3))
    assert float(jnp.max(jnp.abs(images))) < 1.0

    d = SmallDCGANDiscriminator()
    d_vars = d.init(jax.random.key(0), images)
    expected_d = 9 * (3 * 2 + 2 * 4 + 4 * 8) + 2 * (2 + 4 + 8) + (4 * 4 * 8 + 1)
    assert _count(d_vars["params"]) == expected_d
    assert d_vars["params"]["BatchNorm_0"]["scale"].shape == (2,)  # batch norm on the first conv too
    chex.assert_shape(d.apply(d_vars, images, train=False), (2,))


def test_discriminator_leak_and_space_to_depth_are_what_they_say():
    images = jax.random.normal(jax.random.key(2), (4, 28, 28, 3))
    d = SmallDCGANDiscriminator(widths=(4, 8))
    variables = d.init(jax.random.key(0), images)
    out = d.apply(variables, images, train=False)
    chex.assert_trees_all_close(out, SmallDCGANDiscriminator(widths=(4, 8), space_to_depth=False).apply(variables, images, train=False), atol=1e-5)
    # a leak of 1 makes D linear in its input (with batch norm's running averages): D(a + b) = D(a) + D(b) - D(0)
    linear = SmallDCGANDiscriminator(widths=(4, 8), leak=1.0)
    a, b = images[:2], images[2:]
    apply = lambda x: linear.apply(variables, x, train=False)  # noqa: E731
    chex.assert_trees_all_close(apply(a + b), apply(a) + apply(b) - apply(jnp.zeros_like(a)), atol=1e-4)
    assert not np.allclose(out[:2] + out[2:], d.apply(variables, a + b, train=False), atol=1e-3)


def test_float64_generator_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        g = SmallDCGANGenerator((8, 8, 1), widths=(4, 3, 2), dtype=jnp.float64)
        d = SmallDCGANDiscriminator(widths=(2, 3), dtype=jnp.float64)
        z = jax.random.normal(jax.random.key(0), (4, 16), jnp.float64)
        g_params, g_state = linen_player(g).init(jax.random.key(1), z)
        d_params, d_state = linen_player(d).init(jax.random.key(2), jnp.zeros((4, 8, 8, 1), jnp.float64))
        g_params, d_params = jax.tree.map(lambda a: a.astype(jnp.float64), (g_params, d_params))  # stored as float32
        kernel = g_params["ConvTranspose_0"]["kernel"]
        index = (2, 1, 1, 3)  # [k, k, out, in]: transpose_kernel stores the forward conv's layout

        def objective(entry):
            params = dict(g_params, ConvTranspose_0={"kernel": kernel.at[index].set(entry)})
            images, _ = linen_player(g).apply(params, g_state, z, train=True)
            logits, _ = linen_player(d).apply(d_params, d_state, images, train=True)
            return jnp.sum(jnp.sin(logits))

        grad = float(jax.grad(objective)(kernel[index]))
        eps = 1e-6
        fd = float((objective(kernel[index] + eps) - objective(kernel[index] - eps)) / (2 * eps))
        assert abs(grad) > 1e-8
        np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_registry_builds_the_paper_setting_and_refuses_flat_data():
    config = default_config()
    config.generator.name = config.discriminator.name = "small_dcgan"
    config.discriminator.widths = (4, 8, 16)
    g, d = build_players(config, (28, 28, 3))
    assert isinstance(g, SmallDCGANGenerator) and g.widths == (64, 32, 16, 8)
    assert isinstance(d, SmallDCGANDiscriminator) and d.widths == (4, 8, 16) and d.leak == 0.3
    with pytest.raises(ValueError, match=r"^--config.discriminator.name='small_dcgan': for \[H, W, C\] images"):
        build_players(config, (2,))


def test_first_batch_norm_makes_d_blind_to_a_channel_offset_away_from_the_borders():
    """With batch norm on the first conv, adding a constant to a channel changes D's output only through the zero
    padding (none with 1×1 kernels); without it (a bias instead), D sees the constant through the first leaky ReLU
    (the constant is of the size of the pre-activations' spread, so it moves some of them across 0)."""
    images = jax.random.uniform(jax.random.key(3), (8, 28, 28, 3), minval=-1.0, maxval=1.0)
    shifted = images.at[..., 1].add(0.5)
    for first_batch_norm, blind in ((True, True), (False, False)):
        d = SmallDCGANDiscriminator(widths=(4, 8), first_batch_norm=first_batch_norm, kernel_size=1)  # 1×1: no padding
        variables = d.init(jax.random.key(0), images)
        assert ("bias" in variables["params"]["Conv_0"]) == (not first_batch_norm)
        (out, _), (moved, _) = (d.apply(variables, x, mutable=["batch_stats"]) for x in (images, shifted))
        assert np.allclose(out, moved, atol=1e-4) == blind


@pytest.mark.parametrize("player", ["generator", "discriminator"])
@pytest.mark.parametrize("widths", [(), (0, 4, 8), ("(a,b)",), (64.5, 32), (-2, 4, 8), (True, 4)])
def test_widths_that_make_no_network_are_refused_in_one_line(player, widths):
    from jaxgan.config import ConfigError, validate

    config = default_config()
    config[player].widths = widths
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert str(error.value) == (
        f"--config.{player}.widths={widths!r}: must be a non-empty tuple of positive integers, e.g. (64, 32, 16, 8)"
    )
