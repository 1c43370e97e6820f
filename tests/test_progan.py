"""Tests of progressive growing (jaxgan.models.progan): the equalized layers, pixel norm and minibatch stddev
against hand-written references, the growth schedule in closed form, and the fade-in of both players: exact
stage outputs at integer levels (with exactly zero gradients for the stages not yet grown), exact blends at
fractional levels, one compiled program for every level."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import UnsupportedImageSize, linen_player
from jaxgan.models.progan import (
    EqualizedConv, EqualizedDense, ProgressiveDiscriminator, ProgressiveGenerator, _DiscriminatorBlock,
    _DiscriminatorOutput, level_at, minibatch_stddev, pixel_norm, progressive_plan, stage_widths,
)

Z_DIM = 8
BATCH = 4
WIDTHS = {"max_width": 8, "min_width": 4}  # stage widths 8, 4, 4, 4


def _normal(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _images(shape, seed=1, batch=BATCH):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, (batch, *shape)).astype(np.float32))


def _params(module, *args, seed=0, **kwargs):
    """Parameters of the shapes `module.init` gives, drawn with numpy (compiling JAX's PRNG for every shape would
    dominate these tests on a small CPU); biases non-zero, so a misplaced bias shows."""
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))["params"]
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        scale = 0.3 if path[-1].key == "bias" else 1.0
        return jnp.asarray(scale * rng.standard_normal(leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def _subtree(params, names):
    return {name: params[name] for name in names}


def _leaky(x):
    return np.where(x > 0, x, 0.2 * x)


def _pool(x, factor=2):
    b, h, w, c = x.shape
    return np.asarray(x, np.float64).reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def _up(x, factor=2):
    return np.repeat(np.repeat(np.asarray(x), factor, axis=1), factor, axis=2)


# --- layers -------------------------------------------------------------------------------------------------


def test_equalized_dense_is_scaled_matrix_product():
    x = _normal((3, 5))
    for gain in (np.sqrt(2.0), 1.0):
        layer = EqualizedDense(4, gain=gain)
        params = _params(layer, x)
        w, b = np.asarray(params["kernel"], np.float64), np.asarray(params["bias"], np.float64)
        expected = np.asarray(x, np.float64) @ (w * gain / np.sqrt(5)) + b
        np.testing.assert_allclose(layer.apply({"params": params}, x), expected, rtol=1e-5, atol=1e-5)


def test_equalized_conv_is_scaled_convolution():
    x = _normal((2, 5, 4, 3))
    layer = EqualizedConv(2, 3)
    params = _params(layer, x)
    w, b = np.asarray(params["kernel"], np.float64), np.asarray(params["bias"], np.float64)
    c = np.sqrt(2.0) / np.sqrt(3 * 3 * 3)
    padded = np.pad(np.asarray(x, np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = b + sum(
        padded[:, u : u + 5, v : v + 4, :] @ (w[u, v] * c) for u in range(3) for v in range(3)
    )  # "SAME" cross-correlation, tap by tap
    np.testing.assert_allclose(layer.apply({"params": params}, x), expected, rtol=1e-5, atol=1e-5)


def test_equalized_layers_store_unit_variance_weights():
    key = jax.random.key(0, impl="rbg")  # XLA's RngBitGenerator: cheaper to compile than threefry
    dense = jax.jit(EqualizedDense(64).init)(key, jnp.zeros((1, 64)))["params"]
    conv = jax.jit(EqualizedConv(16, 3).init)(key, jnp.zeros((1, 4, 4, 32)))["params"]
    for params in (dense, conv):
        kernel = np.asarray(params["kernel"])
        assert abs(kernel.var() - 1.0) < 0.08 and abs(kernel.mean()) < 0.05  # not He-scaled (var 1/fan_in)
        assert np.all(np.asarray(params["bias"]) == 0.0)


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    x = 3.0 * _normal((2, 3, 3, 5)) + 1.0
    y = np.asarray(pixel_norm(x), np.float64)
    np.testing.assert_allclose(np.mean(y**2, axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(y * np.sqrt(np.mean(np.asarray(x, np.float64) ** 2, -1, keepdims=True)), x, rtol=1e-4)


def _stddev_reference(x, group_size, eps=1e-8):
    x = np.asarray(x, np.float64)
    groups = x.shape[0] // min(group_size, x.shape[0])  # M groups, example i in group i mod M
    feature = np.zeros(x.shape[:3] + (1,))
    for m in range(groups):
        members = x[m::groups]
        feature[m::groups] = np.mean(np.sqrt(members.var(axis=0) + eps))
    return np.concatenate([x, feature], axis=-1)


@pytest.mark.parametrize("batch, group_size", [(8, 4), (8, 2), (3, 4), (4, 1)])
def test_minibatch_stddev_against_reference(batch, group_size):
    x = _normal((batch, 3, 2, 5), seed=batch)
    y = minibatch_stddev(x, group_size)
    assert y.shape == (batch, 3, 2, 6)
    np.testing.assert_allclose(y, _stddev_reference(x, group_size), rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_groups_an_odd_batch_by_the_largest_divisor_and_splits_channels():
    x = _normal((6, 2, 3, 4), seed=24)
    out = np.asarray(minibatch_stddev(x, group_size=4, num_features=2))  # 6 examples: groups of 3
    np.testing.assert_array_equal(out[..., :4], x)
    xs = np.asarray(x, np.float64)
    for b in range(6):
        members = xs[[b % 2, b % 2 + 2, b % 2 + 4]]  # the official reshape [G, B/G, ...]: example b in group b mod 2
        std = np.sqrt(members.var(axis=0) + 1e-8)  # [2, 3, 4]
        for f in range(2):
            np.testing.assert_allclose(out[b, :, :, 4 + f], std[..., 2 * f : 2 * f + 2].mean(), rtol=1e-5)


def test_minibatch_stddev_needs_features_that_split_the_channels():
    with pytest.raises(ValueError, match=r"^minibatch_stddev: 3 channels do not split into 2 features$"):
        minibatch_stddev(jnp.zeros((4, 2, 2, 3)), 4, num_features=2)


# --- schedule -----------------------------------------------------------------------------------------------

P = 10  # steps per phase
SCHEDULE = {  # 3 stages: stabilise 0 | fade in 1 | stabilise 1 | fade in 2 | fully grown
    0: 0.0, 9: 0.0, 10: 0.0, 13: 0.3, 19: 0.9, 20: 1.0, 25: 1.0, 29: 1.0,
    30: 1.0, 35: 1.5, 39: 1.9, 40: 2.0, 41: 2.0, 55: 2.0, 10**6: 2.0,
}  # fmt: skip


def test_level_at_closed_form():
    for step, level in SCHEDULE.items():
        assert float(level_at(step, P, 3)) == pytest.approx(level, abs=1e-6), step
    assert float(level_at(10**9 + 5, 1000, 100)) == pytest.approx(99.0)  # clipped
    assert float(level_at(123, P, 1)) == 0.0
    with pytest.raises(ValueError, match="steps_per_phase"):
        level_at(0, 0, 3)


def test_level_at_traced_step():
    traces = []

    @jax.jit
    def levels(step):
        traces.append(1)
        return level_at(step, P, 3)

    steps = np.array(list(SCHEDULE), np.int32)
    got = [float(levels(jnp.int32(step))) for step in steps]
    np.testing.assert_allclose(got, list(SCHEDULE.values()), atol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda s: level_at(s, P, 3))(steps), list(SCHEDULE.values()), atol=1e-6)
    assert len(traces) == 1


# --- players ------------------------------------------------------------------------------------------------


def _apply(module, params, inputs, level):
    return module.apply({"params": params}, inputs, level=level)


@pytest.fixture(scope="module")
def g16():
    """A 16x16x3 generator (stages 4, 8, 16) with its parameters and a jitted apply."""
    module = ProgressiveGenerator((16, 16, 3), **WIDTHS)
    z = _normal((BATCH, Z_DIM), seed=3)
    params = _params(module, z, seed=4)
    return module, params, z, jax.jit(lambda p, z, level: _apply(module, p, z, level))


@pytest.fixture(scope="module")
def d16():
    module = ProgressiveDiscriminator(**WIDTHS)
    x = _images((16, 16, 3), seed=5)
    params = _params(module, x, seed=6)
    return module, params, x, jax.jit(lambda p, x, level: _apply(module, p, x, level))


def test_plan_and_widths():
    assert progressive_plan((32, 32, 3)) == (4, 4, 4)
    assert progressive_plan((28, 28, 1)) == (7, 7, 3)
    assert progressive_plan((8, 8, 1)) == (4, 4, 2)
    assert stage_widths(4, 128) == [128, 64, 32, 16]
    assert stage_widths(6, 128) == [128, 64, 32, 16, 16, 16]
    assert stage_widths(3, 8, 16) == [8, 8, 8]


def test_generator_integer_level_is_the_grown_stage_upsampled(g16):
    _, params, z, apply = g16
    # level 1 of the 16x16 generator = the fully grown 8x8 generator (same stages 0, 1) upsampled 2x
    small = ProgressiveGenerator((8, 8, 3), **WIDTHS)
    small_params = _subtree(params, ["block_0", "block_1", "to_rgb_0", "to_rgb_1"])
    expected = _up(small.apply({"params": small_params}, z), 2)
    np.testing.assert_allclose(apply(params, z, 1.0), expected, rtol=1e-5, atol=1e-5)
    # level 0: the 4x4 start stage's toRGB, upsampled 4x
    start = ProgressiveGenerator((4, 4, 3), **WIDTHS).apply({"params": _subtree(params, ["block_0", "to_rgb_0"])}, z)
    np.testing.assert_allclose(apply(params, z, 0.0), _up(start, 4), rtol=1e-5, atol=1e-5)


def test_generator_ignores_stages_not_yet_grown(g16):
    module, params, z, apply = g16
    r = _normal((BATCH, 16, 16, 3), seed=7)
    grads = jax.jit(jax.grad(lambda p: jnp.sum(r * _apply(module, p, z, 1.0))))(params)
    for name in ("to_rgb_2", "block_2", "to_rgb_0"):  # the next stage, and the stage already faded out
        assert all(np.all(np.asarray(g) == 0.0) for g in jax.tree_util.tree_leaves(grads[name])), name
    for name in ("to_rgb_1", "block_1", "block_0"):
        assert any(np.any(np.asarray(g) != 0.0) for g in jax.tree_util.tree_leaves(grads[name])), name
    changed = dict(params, to_rgb_2=jax.tree_util.tree_map(lambda p: p + 1.0, params["to_rgb_2"]))
    np.testing.assert_array_equal(apply(changed, z, 1.0), apply(params, z, 1.0))
    assert not np.allclose(apply(changed, z, 1.5), apply(params, z, 1.5))


def test_generator_fractional_level_is_linear_blend(g16):
    module, params, z, apply = g16
    for s, alpha in ((0, 0.25), (1, 0.6)):
        blend = (1 - alpha) * np.asarray(apply(params, z, float(s)), np.float64) + alpha * np.asarray(
            apply(params, z, float(s + 1))
        )
        np.testing.assert_allclose(apply(params, z, s + alpha), blend, rtol=1e-5, atol=1e-5)
    # outside [0, num_stages - 1] the level is clipped; None is fully grown
    np.testing.assert_array_equal(apply(params, z, 7.0), apply(params, z, 2.0))
    np.testing.assert_array_equal(apply(params, z, -1.0), apply(params, z, 0.0))
    # two programs (eager with level None, jitted with level 2.0): float32 rounding apart (2.3e-6 on jax 0.10.2)
    np.testing.assert_allclose(module.apply({"params": params}, z), apply(params, z, 2.0), rtol=1e-5, atol=1e-5)


def test_discriminator_integer_level_reads_pooled_input(d16):
    module, params, x, apply = d16
    # level 1 of the 16x16 discriminator = the fully grown 8x8 one on the input pooled to 8x8
    small = ProgressiveDiscriminator(**WIDTHS)
    small_params = _subtree(params, ["from_rgb_0", "from_rgb_1", "block_1", "output"])  # from_rgb_0: weight 0
    expected = jax.jit(small.apply)({"params": small_params}, jnp.asarray(_pool(x), jnp.float32))
    np.testing.assert_allclose(apply(params, x, 1.0), expected, rtol=1e-5, atol=1e-5)
    # an image upsampled from 8x8 scores as the 8x8 image itself (average pooling undoes nearest upsampling)
    np.testing.assert_allclose(apply(params, jnp.asarray(_up(_pool(x))), 1.0), expected, rtol=1e-5, atol=1e-5)
    grads = jax.jit(jax.grad(lambda p: jnp.sum(_apply(module, p, x, 1.0))))(params)
    for name in ("from_rgb_2", "block_2", "from_rgb_0"):
        assert all(np.all(np.asarray(g) == 0.0) for g in jax.tree_util.tree_leaves(grads[name])), name
    for name in ("from_rgb_1", "block_1", "output"):
        assert any(np.any(np.asarray(g) != 0.0) for g in jax.tree_util.tree_leaves(grads[name])), name


def test_discriminator_fractional_level_blends_features(d16):
    _, params, x, apply = d16
    widths = stage_widths(3, **WIDTHS)

    def from_rgb(k, image):
        conv = EqualizedConv(widths[k], 1)
        return _leaky(np.asarray(conv.apply({"params": params[f"from_rgb_{k}"]}, jnp.asarray(image, jnp.float32))))

    def block(k, h):
        return _DiscriminatorBlock(widths[k], widths[k - 1]).apply({"params": params[f"block_{k}"]}, jnp.float32(h))

    alpha = 0.3  # level 1.3: stage 2 (16x16) fades in over the 8x8 input path
    x8 = _pool(x)
    h = alpha * np.asarray(block(2, from_rgb(2, x))) + (1 - alpha) * from_rgb(1, x8)
    logits = _DiscriminatorOutput(widths[0]).apply({"params": params["output"]}, block(1, h))
    np.testing.assert_allclose(apply(params, x, 1 + alpha), logits, rtol=1e-4, atol=1e-5)


def test_discriminator_uses_minibatch_stddev(d16):
    module, params, x, apply = d16
    changed = x.at[1].set(-x[1])  # example 1 is in example 3's group (group 4: all four)
    assert not np.allclose(apply(params, changed, 2.0)[3], apply(params, x, 2.0)[3])


def test_one_compilation_serves_every_level(g16, d16):
    g, g_params, z, _ = g16
    d, d_params, _, _ = d16
    traces = []

    @jax.jit
    def step(level):
        traces.append(1)
        images = _apply(g, g_params, z, level)
        return images, _apply(d, d_params, images, level)

    outputs = [step(jnp.float32(level)) for level in (0.0, 0.5, 1.0, 1.75, 2.0)]
    assert len(traces) == 1
    for images, logits in outputs:
        assert images.shape == (BATCH, 16, 16, 3) and logits.shape == (BATCH,)
        assert np.all(np.isfinite(images)) and np.all(np.isfinite(logits))
    assert not np.allclose(outputs[0][0], outputs[1][0]) and not np.allclose(outputs[0][1], outputs[1][1])


@pytest.mark.parametrize("shape, start", [((28, 28, 1), 7), ((32, 32, 3), 4)])
def test_image_sizes(shape, start):
    g, d = ProgressiveGenerator(shape, **WIDTHS), ProgressiveDiscriminator(**WIDTHS)
    z = _normal((2, Z_DIM))
    g_params = _params(g, z)
    d_params = _params(d, _images(shape, batch=2))
    num_stages = progressive_plan(shape)[2]
    assert g_params["block_0"]["dense"]["kernel"].shape == (Z_DIM, start * start * 8)
    assert sorted(k for k in d_params if k.startswith("from_rgb")) == [f"from_rgb_{k}" for k in range(num_stages)]

    @jax.jit
    def run(level):
        images = _apply(g, g_params, z, level)
        return images, _apply(d, d_params, images, level)

    for level in (0.0, num_stages - 1.5):
        images, logits = run(level)
        assert images.shape == (2, *shape) and logits.shape == (2,)
        assert np.all(np.isfinite(logits))
    # at level 0 the image is the start stage upsampled: constant over each block of (side/start)^2 pixels
    images = np.asarray(run(0.0)[0])
    factor = shape[0] // start
    np.testing.assert_array_equal(images, _up(images[:, ::factor, ::factor], factor))


def test_unsupported_sizes_are_refused_in_one_line():
    z = jnp.zeros((2, Z_DIM))
    for shape in ((30, 30, 3), (16, 32, 3), (12, 12, 1)):
        with pytest.raises(UnsupportedImageSize, match=r"ProgressiveGenerator: unsupported image size") as error:
            jax.eval_shape(ProgressiveGenerator(shape, **WIDTHS).init, jax.random.key(0), z)
        assert "\n" not in str(error.value)
    with pytest.raises(UnsupportedImageSize, match=r"ProgressiveDiscriminator: unsupported image size 24x24"):
        jax.eval_shape(ProgressiveDiscriminator(**WIDTHS).init, jax.random.key(0), jnp.zeros((2, 24, 24, 3)))


def test_players_plug_into_the_protocol_fully_grown():
    """`linen_player` passes no level: both players are then fully grown and have no model state."""
    g, d = linen_player(ProgressiveGenerator((8, 8, 1), **WIDTHS)), linen_player(ProgressiveDiscriminator(**WIDTHS))
    key = jax.random.key(0)
    g_params, g_state = jax.eval_shape(g.init, key, jnp.zeros((2, Z_DIM)))
    d_params, d_state = jax.eval_shape(d.init, key, jnp.zeros((2, 8, 8, 1)))
    assert g_state == {} and d_state == {}
    assert set(g_params) == {"block_0", "block_1", "to_rgb_0", "to_rgb_1"}
    assert set(d_params) == {"from_rgb_0", "from_rgb_1", "block_1", "output"}
    images, _ = jax.eval_shape(lambda p: g.apply(p, {}, jnp.zeros((2, Z_DIM))), g_params)
    assert images.shape == (2, 8, 8, 1)


def test_real_images_fade_between_the_transitions_two_resolutions():
    """r_s = up(pool(x)) at stage s's resolution: at level s the reals are r_s, at s + α (1 − α)·r_s + α·r_{s+1},
    fully grown the images themselves (28×28: stages at 7, 14, 28)."""
    from jaxgan.models.progan import fade_in_reals

    x = jax.random.normal(jax.random.key(0), (2, 3, 28, 28, 1))
    flat = np.asarray(x).reshape(6, 28, 28, 1)

    def at_side(side):
        f = 28 // side
        pooled = flat.reshape(6, side, f, side, f, 1).mean(axis=(2, 4))
        return np.repeat(np.repeat(pooled, f, axis=1), f, axis=2).reshape(x.shape)

    np.testing.assert_allclose(fade_in_reals(x, 0.0, 3), at_side(7), atol=1e-6)
    np.testing.assert_allclose(fade_in_reals(x, 1.0, 3), at_side(14), atol=1e-6)
    np.testing.assert_allclose(fade_in_reals(x, 2.0, 3), x, atol=1e-6)
    np.testing.assert_allclose(fade_in_reals(x, 0.25, 3), 0.75 * at_side(7) + 0.25 * at_side(14), atol=1e-6)
    np.testing.assert_allclose(jax.jit(fade_in_reals, static_argnums=2)(x, 1.5, 3), 0.5 * at_side(14) + 0.5 * np.asarray(x), atol=1e-6)
