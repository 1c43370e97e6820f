"""Tests of LapGAN (jaxgan.models.lapgan): the Laplacian pyramid and its exact inverse (random images and a
4x4 example by hand), the generator's levels reproduced exactly by the discriminator's pyramid, the level
independence of the gradients, the source images of LapGAN's training replacing the chain's coarse images in both
players, shapes, dtypes and output range of both players, and the one-line errors."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import losses
from jaxgan.models import UnsupportedImageSize, linen_player
from jaxgan.models.lapgan import (
    LaplacianDiscriminator, LaplacianGenerator, _chunk_sizes, _ResidualDiscriminator, _ResidualGenerator, coarse_image,
    downsample, laplacian_pyramid, pyramid_levels, reconstruct, upsample,
)

BATCH = 4
Z_DIM = 8
WIDTH = 8


def _normal(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _images(shape, seed=1, batch=BATCH):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, (batch, *shape)).astype(np.float32))


def _params(module, *args, seed=0, **kwargs):
    """Parameters of the shapes `module.init` gives, drawn with numpy (faster than compiling JAX's PRNG for every
    shape): kernels N(0, 1/fan_in), biases non-zero."""
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))["params"]
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        if path[-1].key == "bias":
            return jnp.asarray(0.1 * rng.standard_normal(leaf.shape), leaf.dtype)
        fan_in = int(np.prod(leaf.shape[:-1]))
        return jnp.asarray(rng.standard_normal(leaf.shape) / np.sqrt(fan_in), leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


# --- the pyramid ------------------------------------------------------------------------------------------------


def test_pyramid_levels_of_supported_sizes():
    assert pyramid_levels((28, 28, 1)) == 3
    assert pyramid_levels((32, 32, 3)) == 3
    assert pyramid_levels((8, 8, 3)) == 1
    assert pyramid_levels((7, 7, 1)) == 1
    assert pyramid_levels((64, 64, 3)) == 4
    assert pyramid_levels((56, 64, 3)) == 4  # 7x8 coarsest: 3 halvings each


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_pyramid_round_trip(shape):
    x = _images(shape)
    pyramid = laplacian_pyramid(x, pyramid_levels(shape))
    side = shape[0] // 4
    assert [p.shape for p in pyramid] == [(BATCH, side, side, shape[2]), (BATCH, 2 * side, 2 * side, shape[2]),
                                          (BATCH, *shape)]
    chex.assert_trees_all_close(reconstruct(pyramid), x, atol=1e-6)
    chex.assert_trees_all_close(downsample(upsample(x)), x, atol=0)  # the mean of four copies is exact


def test_pyramid_by_hand_4x4():
    x = jnp.arange(1.0, 17.0).reshape(4, 4, 1)  # rows 1-4, 5-8, 9-12, 13-16
    coarse, h1, h2 = laplacian_pyramid(x, 3)
    # I_1: 2x2 block means [[3.5, 5.5], [11.5, 13.5]]; I_0: their mean 8.5
    np.testing.assert_allclose(coarse[..., 0], [[8.5]])
    np.testing.assert_allclose(h1[..., 0], [[-5.0, -3.0], [3.0, 5.0]])
    block = [[-2.5, -1.5], [1.5, 2.5]]  # every 2x2 block of x minus its mean
    np.testing.assert_allclose(h2[..., 0], np.tile(block, (2, 2)))
    np.testing.assert_allclose(reconstruct([coarse, h1, h2]), x)


def test_pyramid_recovers_a_zero_mean_residual():
    """An image u(I_0) + h with d(h) = 0 decomposes into exactly (I_0, h)."""
    coarse = _normal((BATCH, 7, 7, 1), seed=2)
    h = _normal((BATCH, 14, 14, 1), seed=3)
    h = h - upsample(downsample(h))
    low, residual = laplacian_pyramid(upsample(coarse) + h, 2)
    chex.assert_trees_all_close(low, coarse, atol=1e-6)
    chex.assert_trees_all_close(residual, h, atol=1e-6)


# --- the players --------------------------------------------------------------------------------------------------

SHAPE = (28, 28, 1)
LEVELS = 3


@pytest.fixture(scope="module")
def game():
    generator = LaplacianGenerator(SHAPE, width=WIDTH)
    discriminator = LaplacianDiscriminator(width=WIDTH)
    z = _normal((BATCH, Z_DIM), seed=4)
    g_params = _params(generator, z)
    d_params = _params(discriminator, _images(SHAPE), seed=5)
    return generator, discriminator, z, g_params, d_params


def test_generated_image_pyramid_is_the_generator_levels(game):
    generator, _, z, g_params, _ = game
    image = generator.apply({"params": g_params}, z)
    levels = generator.apply({"params": g_params}, z, method="levels")
    assert len(levels) == LEVELS
    assert float(jnp.max(jnp.abs(levels[-1]))) > 0.1  # a non-trivial residual
    chex.assert_trees_all_close(laplacian_pyramid(image, LEVELS), levels, atol=1e-5)
    chex.assert_trees_all_close(reconstruct(levels), image, atol=0)


def _assert_each_level_logit_trains_only_its_own_generator(generator, discriminator, z, g_params, d_params):
    @jax.jit
    def grads(g_params):
        def level_logit(params, j):
            image = generator.apply({"params": params}, z)
            return jnp.sum(discriminator.apply({"params": d_params}, image)[:, j])

        return [jax.grad(level_logit)(g_params, j) for j in range(LEVELS)]

    def norm(tree):
        return max(float(jnp.max(jnp.abs(leaf))) for leaf in jax.tree.leaves(tree))

    for j, grad in enumerate(grads(g_params)):
        own = norm(grad[f"level_{j}"])
        assert own > 1e-3, (j, own)
        for k in range(LEVELS):
            if k != j:
                assert norm(grad[f"level_{k}"]) <= 1e-6 * own, (j, k, norm(grad[f"level_{k}"]), own)


def test_each_level_logit_trains_only_its_own_generator(game):
    _assert_each_level_logit_trains_only_its_own_generator(*game)


def test_convolutional_coarsest_level_keeps_the_levels_independent():
    generator = LaplacianGenerator(SHAPE, width=WIDTH, coarse_model="conv")
    discriminator = LaplacianDiscriminator(width=WIDTH, coarse_model="conv")
    z = _normal((BATCH, Z_DIM), seed=4)
    g_params, d_params = _params(generator, z), _params(discriminator, _images(SHAPE), seed=5)
    _assert_each_level_logit_trains_only_its_own_generator(generator, discriminator, z, g_params, d_params)


def test_source_images_replace_the_chain_below_each_finer_level(game):
    """With source images x', G_k refines u(d^{L−1−k}(x')) instead of its own coarser level; G_0 reads z alone."""
    generator, _, z, g_params, _ = game
    source = _images(SHAPE, seed=9)
    refined = generator.apply({"params": g_params}, z, source, method="levels")
    chained = generator.apply({"params": g_params}, z, method="levels")
    chex.assert_trees_all_close(refined[0], chained[0], atol=0)
    lows = [downsample(downsample(source)), downsample(source)]
    chunks = jnp.split(z, np.cumsum(_chunk_sizes(Z_DIM, LEVELS))[:-1], axis=-1)
    for k in (1, 2):
        expected = _ResidualGenerator(WIDTH, jnp.float32).apply(
            {"params": g_params[f"level_{k}"]}, chunks[k], upsample(lows[k - 1])
        )
        chex.assert_trees_all_close(refined[k], expected, atol=1e-6)
        assert float(jnp.max(jnp.abs(refined[k] - chained[k]))) > 1e-3
    image = generator.apply({"params": g_params}, z, source)
    chex.assert_trees_all_close(image, reconstruct(refined), atol=0)


def test_a_given_coarse_image_replaces_g0_under_the_same_finer_levels(game):
    """levels(z, coarse=I_0) starts the chain from I_0: G's own I_0 gives G's own pyramid bit for bit, and another
    I_0 gives the finer levels' residuals on its upsampled chain (what scripts/lapgan_level0.py --chain_workdir
    scores)."""
    generator, _, z, g_params, _ = game
    own = generator.apply({"params": g_params}, z, method="levels")
    chex.assert_trees_all_close(generator.apply({"params": g_params}, z, coarse=own[0], method="levels"), own, atol=0)
    other = jnp.tanh(_normal(own[0].shape, seed=12))
    given = generator.apply({"params": g_params}, z, coarse=other, method="levels")
    chex.assert_trees_all_close(given[0], other, atol=0)
    chunks = jnp.split(z, np.cumsum(_chunk_sizes(Z_DIM, LEVELS))[:-1], axis=-1)
    image = other
    for k in (1, 2):
        low = upsample(image)
        residual = _ResidualGenerator(WIDTH, jnp.float32).apply({"params": g_params[f"level_{k}"]}, chunks[k], low)
        chex.assert_trees_all_close(given[k], residual, atol=1e-6)
        image = low + residual
    with pytest.raises(ValueError) as error:
        generator.apply({"params": g_params}, z, coarse=other[:, :6], method="levels")
    assert str(error.value) == (
        f"LaplacianGenerator: a coarse image batch of shape ({BATCH}, 6, 7, 1) for z of batch {BATCH}; "
        "level 0 of (28, 28, 1) images is (7, 7, 1)"
    )


def test_discriminator_takes_the_conditioning_images_from_the_source(game):
    """D_k(h_k(x), u(I'_{k−1})) with the source x' (D_0 and the residuals from x itself); x as its own source is
    D on x alone."""
    _, discriminator, _, _, d_params = game
    x, source = _images(SHAPE, seed=10), _images(SHAPE, seed=11)
    plain = discriminator.apply({"params": d_params}, x)
    chex.assert_trees_all_close(discriminator.apply({"params": d_params}, x, x), plain, atol=0)
    logits = discriminator.apply({"params": d_params}, x, source)
    chex.assert_trees_all_close(logits[:, 0], plain[:, 0], atol=0)
    residuals, lows = laplacian_pyramid(x, LEVELS), [downsample(downsample(source)), downsample(source)]
    for k in (1, 2):
        expected = _ResidualDiscriminator(WIDTH, jnp.float32).apply(
            {"params": d_params[f"level_{k}"]}, residuals[k], upsample(lows[k - 1])
        )
        chex.assert_trees_all_close(logits[:, k], expected, atol=1e-6)
        assert float(jnp.max(jnp.abs(logits[:, k] - plain[:, k]))) > 1e-4


def test_source_of_the_wrong_shape_is_a_one_line_error(game):
    generator, discriminator, z, g_params, d_params = game
    with pytest.raises(ValueError) as error:
        generator.apply({"params": g_params}, z, _images((14, 14, 1)))
    assert str(error.value) == (
        "LaplacianGenerator: source images of shape (14, 14, 1) for a generator of (28, 28, 1) images; "
        "--config.conditioning='real_coarse' pairs G with real images"
    )
    with pytest.raises(ValueError, match=r"^LaplacianDiscriminator: source images of shape \(4, 14, 14, 1\) for images of "):
        discriminator.apply({"params": d_params}, _images(SHAPE), _images((14, 14, 1)))


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_shapes_dtypes_and_range(shape):
    generator = linen_player(LaplacianGenerator(shape, width=WIDTH))
    discriminator = linen_player(LaplacianDiscriminator(width=WIDTH))
    z = 3.0 * _normal((BATCH, Z_DIM), seed=6)
    g_params = _params(LaplacianGenerator(shape, width=WIDTH), z, seed=7)
    d_params = _params(LaplacianDiscriminator(width=WIDTH), _images(shape), seed=8)
    train_images, state = generator.apply(g_params, {}, z, train=True)
    eval_images, _ = generator.apply(g_params, {}, z, train=False)
    coarse = generator.apply(g_params, {}, z, method="levels")[0][0]
    logits, _ = discriminator.apply(d_params, {}, eval_images)
    assert state == {}  # stateless
    chex.assert_shape([train_images, eval_images], (BATCH, *shape))
    chex.assert_type([train_images, eval_images], jnp.float32)
    # the documented range: train mode unclipped (I_0 in [-1, 1] plus linear residuals), eval mode clipped
    chex.assert_trees_all_close(eval_images, jnp.clip(train_images, -1.0, 1.0), atol=0)
    assert float(jnp.min(eval_images)) >= -1.0 and float(jnp.max(eval_images)) <= 1.0
    assert float(jnp.max(jnp.abs(coarse))) <= 1.0
    chex.assert_shape(logits, (BATCH, pyramid_levels(shape)))
    chex.assert_type(logits, jnp.float32)


def test_bfloat16_compute_returns_float32():
    generator = LaplacianGenerator(SHAPE, width=WIDTH, dtype=jnp.bfloat16)
    discriminator = LaplacianDiscriminator(width=WIDTH, dtype=jnp.bfloat16)
    z = _normal((BATCH, Z_DIM))
    g_params = _params(generator, z)
    d_params = _params(discriminator, _images(SHAPE))

    @jax.jit
    def run(g_params, d_params):
        images = generator.apply({"params": g_params}, z)
        return images, discriminator.apply({"params": d_params}, images)

    images, logits = run(g_params, d_params)
    chex.assert_type([images, logits], jnp.float32)
    chex.assert_shape(logits, (BATCH, LEVELS))


def test_losses_average_the_per_level_games(game):
    generator, discriminator, z, g_params, d_params = game
    fake = discriminator.apply({"params": d_params}, generator.apply({"params": g_params}, z))
    real = discriminator.apply({"params": d_params}, _images(SHAPE))
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    assert real.shape == fake.shape == (BATCH, LEVELS)
    # Level k's game alone, in numpy: D's -E log σ(v_real) - E log(1 - σ(v_fake)), G's -E log σ(v_fake).
    d_per_level = [np.mean(np.logaddexp(0.0, -real[:, k])) + np.mean(np.logaddexp(0.0, fake[:, k])) for k in range(LEVELS)]
    g_per_level = [np.mean(np.logaddexp(0.0, -fake[:, k])) for k in range(LEVELS)]
    np.testing.assert_allclose(losses.minimax_discriminator_loss(real, fake), np.mean(d_per_level), rtol=1e-6)
    np.testing.assert_allclose(losses.nonsaturating_generator_loss(fake), np.mean(g_per_level), rtol=1e-6)


# --- errors -------------------------------------------------------------------------------------------------------


def test_unsupported_size_is_a_one_line_error():
    expected = (
        "unsupported image size 30x30; supported sides are 7·2^k (7, 14, 28, 56, ...) and 2^k >= 8 "
        "(8, 16, 32, 64, ...), with the same number of halvings for height and width"
    )
    z = jnp.zeros((2, Z_DIM))
    with pytest.raises(UnsupportedImageSize) as error:
        LaplacianGenerator((30, 30, 1), width=WIDTH).init(jax.random.key(0), z)
    assert str(error.value) == "LaplacianGenerator: " + expected
    with pytest.raises(UnsupportedImageSize) as error:
        LaplacianDiscriminator(width=WIDTH).init(jax.random.key(0), jnp.zeros((2, 30, 30, 1)))
    assert str(error.value) == "LaplacianDiscriminator: " + expected
    assert "\n" not in str(error.value)
    assert pyramid_levels((28, 32, 1)) == 3  # 28 -> 7 and 32 -> 8 both take 2 halvings
    with pytest.raises(UnsupportedImageSize, match="^who: unsupported image size 28x64;"):  # 2 halvings against 3
        pyramid_levels((28, 64, 1), "who")


def test_z_dim_smaller_than_levels_is_an_error():
    with pytest.raises(ValueError) as error:
        LaplacianGenerator(SHAPE, width=WIDTH).init(jax.random.key(0), jnp.zeros((2, 2)))
    assert str(error.value) == (
        "LaplacianGenerator: z_dim 2 is smaller than the 3 pyramid levels of a 28x28 image; z is split into one "
        "chunk per level, so z_dim must be >= 3"
    )


def test_coarse_image_keeps_the_first_levels():
    """Images rebuilt from their first levels (scripts/lapgan_levels.py) are the upsampled low-pass images, and all
    levels give the image back."""
    x = _images(SHAPE, seed=12)
    pyramid = laplacian_pyramid(x, LEVELS)
    chex.assert_trees_all_close(coarse_image(pyramid, 1), upsample(upsample(downsample(downsample(x)))), atol=1e-6)
    chex.assert_trees_all_close(coarse_image(pyramid, 2), upsample(downsample(x)), atol=1e-6)
    chex.assert_trees_all_close(coarse_image(pyramid, 3), x, atol=1e-6)


def test_coarse_width_sets_only_the_coarsest_mlps():
    z, x = jnp.zeros((2, Z_DIM)), jnp.zeros((2, *SHAPE))
    g = jax.eval_shape(lambda: LaplacianGenerator(SHAPE, width=WIDTH, coarse_width=32).init(jax.random.key(0), z))
    d = jax.eval_shape(lambda: LaplacianDiscriminator(width=WIDTH, coarse_width=32).init(jax.random.key(0), x))
    z0 = _chunk_sizes(Z_DIM, LEVELS)[0]
    assert g["params"]["level_0"]["Dense_0"]["kernel"].shape == (z0, 32)
    assert g["params"]["level_1"]["Conv_0"]["kernel"].shape == (3, 3, 2, WIDTH)
    assert d["params"]["level_0"]["Dense_0"]["kernel"].shape == (49, 32)
    assert d["params"]["level_1"]["Conv_0"]["kernel"].shape == (3, 3, 2, WIDTH)


def test_convolutional_coarsest_level_shapes_and_range():
    """coarse_model='conv': G_0 is Dense(7·7·c) -> two 3x3 convolutions -> tanh, D_0 a 3x3 convolution, one stride-2
    convolution (7 -> 4) and a dense logit; the finer levels are unchanged."""
    z, x = 3.0 * _normal((BATCH, Z_DIM), seed=6), _images(SHAPE)
    generator = LaplacianGenerator(SHAPE, width=WIDTH, coarse_width=16, coarse_model="conv")
    discriminator = LaplacianDiscriminator(width=WIDTH, coarse_width=16, coarse_model="conv")
    g_params, d_params = _params(generator, z, seed=7), _params(discriminator, x, seed=8)
    z0 = _chunk_sizes(Z_DIM, LEVELS)[0]
    g0, d0 = g_params["level_0"], d_params["level_0"]
    assert {name: leaf["kernel"].shape for name, leaf in g0.items()} == {
        "Dense_0": (z0, 7 * 7 * 16), "Conv_0": (3, 3, 16, 16), "Conv_1": (3, 3, 16, 1)}
    assert {name: leaf["kernel"].shape for name, leaf in d0.items()} == {
        "Conv_0": (3, 3, 1, 16), "Conv_1": (3, 3, 16, 16), "Dense_0": (4 * 4 * 16, 1)}
    plain = _params(LaplacianGenerator(SHAPE, width=WIDTH), z, seed=7)
    chex.assert_trees_all_equal_shapes(g_params["level_1"], plain["level_1"])
    coarse = generator.apply({"params": g_params}, z, method="levels")[0]
    chex.assert_shape(coarse, (BATCH, 7, 7, 1))
    assert float(jnp.max(jnp.abs(coarse))) <= 1.0 and float(jnp.std(coarse)) > 0.01
    chex.assert_shape(discriminator.apply({"params": d_params}, x), (BATCH, LEVELS))


@pytest.mark.parametrize("module", [LaplacianGenerator(SHAPE, coarse_model="convv"), LaplacianDiscriminator(coarse_model="convv")])
def test_unknown_coarse_model_is_a_one_line_error(module):
    args = (jnp.zeros((2, Z_DIM)),) if isinstance(module, LaplacianGenerator) else (jnp.zeros((2, *SHAPE)),)
    with pytest.raises(ValueError) as error:
        module.init(jax.random.key(0), *args)
    assert str(error.value) == f"{type(module).__name__}: coarse_model must be one of ('mlp', 'conv'), got 'convv'"


def _coarse_updates_setup(updates):
    from test_image_runs import digits_config

    from jaxgan.tasks import make_task
    from jaxgan.train import build_game, real_sampler
    from jaxgan.updates import make_update_rule

    config = digits_config(
        conditioning="real_coarse", update_rule="simultaneous", batch_size=8, z_dim=12, coarse_level_updates=updates,
        **{"data.name": "mnist_5k", "generator.name": "lapgan", "discriminator.name": "lapgan",
           "generator.base_width": 4, "discriminator.base_width": 4},
    )  # fmt: skip
    task = make_task(config)
    game = build_game(config, task)
    return config, task, game, make_update_rule(game, config), real_sampler(task, game)


def test_coarse_level_updates_are_a_plain_level0_gan_after_the_step_and_leave_the_finer_levels_alone():
    """--config.coarse_level_updates=3: the step is the plain rule's on the first real batches (the finer levels and
    the rule's optimizer states bit for bit), then three steps of the level-0 GAN written here from the raw G_0 and
    D_0 on the three further real batches pooled to 7x7."""
    from jaxgan import updates as updates_module
    from jaxgan.models.lapgan import _CoarseDiscriminator, _CoarseGenerator
    from jaxgan.state import step_keys

    config, task, game, rule, sample = _coarse_updates_setup(3)
    plain = _coarse_updates_setup(0)[3]
    assert rule.num_real_batches == plain.num_real_batches + 3
    key = jax.random.key(0)
    batch = sample(key, rule.num_real_batches * config.batch_size)
    batch = batch.reshape(rule.num_real_batches, config.batch_size, *batch.shape[1:])
    state, plain_state = rule.init(key, batch[0]), plain.init(key, batch[0])
    chex.assert_trees_all_equal((state.g_params, state.d_params), (plain_state.g_params, plain_state.d_params))
    new, metrics = jax.jit(rule.step)(state, {"real": batch})
    ref, _ = jax.jit(plain.step)(plain_state, {"real": batch[: plain.num_real_batches]})
    for k in (1, 2):
        chex.assert_trees_all_equal(new.g_params[f"level_{k}"], ref.g_params[f"level_{k}"])
        chex.assert_trees_all_equal(new.d_params[f"level_{k}"], ref.d_params[f"level_{k}"])
    chex.assert_trees_all_equal((new.g_opt_state, new.d_opt_state), (ref.g_opt_state, ref.d_opt_state))

    g0, d0 = ref.g_params["level_0"], ref.d_params["level_0"]
    g_opt, d_opt = game.g_optimizer.init(g0), game.d_optimizer.init(d0)
    generator0 = _CoarseGenerator((7, 7, 1), 4, jnp.float32)
    discriminator0 = _CoarseDiscriminator(4, jnp.float32)
    keys = jax.random.split(jax.random.fold_in(step_keys(state).noise, updates_module._COARSE_UPDATES_TAG), 3)
    for i in range(3):
        d_key, g_key = jax.random.split(keys[i])
        real0 = downsample(downsample(batch[plain.num_real_batches + i]))
        z_d, z_g = (game.sample_noise(k, config.batch_size).data[:, :4] for k in (d_key, g_key))  # z_0: 4 of 12

        def d_loss(d0, fake):
            return game.loss.discriminator(discriminator0.apply({"params": d0}, real0), discriminator0.apply({"params": d0}, fake))

        grads = jax.grad(d_loss)(d0, generator0.apply({"params": g0}, z_d))
        step, d_opt = game.d_optimizer.update(grads, d_opt, d0)
        d0 = optax.apply_updates(d0, step)
        grads = jax.grad(lambda g0: game.loss.generator(discriminator0.apply({"params": d0}, generator0.apply({"params": g0}, z_g))))(g0)
        step, g_opt = game.g_optimizer.update(grads, g_opt, g0)
        g0 = optax.apply_updates(g0, step)
    chex.assert_trees_all_close((new.g_params["level_0"], new.d_params["level_0"]), (g0, d0), rtol=1e-5, atol=1e-7)
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(ref.g_params["level_0"])))
    assert moved > 1e-5
    chex.assert_trees_all_close(new.loss_state["coarse_g_opt_state"], g_opt, rtol=1e-5, atol=1e-9)
    assert np.isfinite(float(metrics["coarse_d_loss"])) and np.isfinite(float(metrics["coarse_g_loss"]))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"generator.name": "dcgan", "discriminator.name": "dcgan", "conditioning": "none"},
         "--config.coarse_level_updates=2: trains LapGAN's coarsest level, which needs --config.generator.name=lapgan "
         "and --config.discriminator.name=lapgan, not 'dcgan' and 'dcgan'"),
        ({"conditioning": "none", "packing": 2},
         "--config.coarse_level_updates=2 with --config.packing=2: the coarsest level's extra steps judge single "
         "examples; use --config.packing=1 with them"),
        ({"penalty": "r1", "penalty_weight": 1.0},
         "--config.coarse_level_updates=2 with --config.penalty='r1': the coarsest level's extra steps take the "
         "game's loss alone, at a constant rate; use no penalty and no decay with them"),
    ],
)
def test_coarse_level_updates_refuse_what_they_would_not_do(overrides, message):
    from test_image_runs import digits_config

    from jaxgan.config import ConfigError, validate

    config = digits_config(**{"conditioning": "real_coarse", "coarse_level_updates": 2, "data.name": "mnist_5k",
                              "generator.name": "lapgan", "discriminator.name": "lapgan", **overrides})  # fmt: skip
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert str(error.value) == message


def test_a_run_with_coarse_level_updates_resumes_bitwise(tmp_path):
    """The level-0 optimizer states live in the state's loss_state: a run stopped at step 4 and resumed ends where
    the straight run ends, bit for bit, its eval.json too."""
    from test_image_runs import digits_config
    from test_train import assert_bitwise_equal, restore_final

    from jaxgan.train import train_and_evaluate

    def config(num_steps=8):
        return digits_config(**{
            "conditioning": "real_coarse", "coarse_level_updates": 2, "data.name": "mnist_5k", "generator.name": "lapgan",
            "discriminator.name": "lapgan", "generator.base_width": 4, "discriminator.base_width": 4, "batch_size": 8,
            "z_dim": 12, "num_steps": num_steps, "log_every_steps": 4, "eval_every_steps": 4, "checkpoint_every_steps": 4,
            "steps_per_dispatch": 4, "eval_num_samples": 64, "evaluations": ("samples",),
        })  # fmt: skip

    straight, split = tmp_path / "straight", tmp_path / "split"
    train_and_evaluate(config(), str(straight), echo=lambda _: None)
    train_and_evaluate(config(4), str(split), echo=lambda _: None)
    train_and_evaluate(config(), str(split), echo=lambda _: None)
    final = restore_final(straight, config())[0]
    assert set(final.loss_state) == {"coarse_g_opt_state", "coarse_d_opt_state"}
    assert_bitwise_equal(final, restore_final(split, config())[0])
    assert (straight / "eval.json").read_bytes() == (split / "eval.json").read_bytes()
    logged = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["coarse_d_loss"]) for r in logged if "d_loss" in r) and any("coarse_d_loss" in r for r in logged)
