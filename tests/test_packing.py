import jax
import jax.numpy as jnp
import numpy as np
import pytest

import chex

from jaxgan.config import ConfigError, default_config, validate
from jaxgan.game import discriminator_loss, generator_loss
from jaxgan.models import MLPDiscriminator, Packed
from jaxgan.models.packing import pack
from jaxgan.train import build_game, make_mesh


def test_pack_concatenates_consecutive_samples_along_the_last_axis():
    x = np.arange(6 * 3 * 2 * 5, dtype=np.float32).reshape(6, 3, 2, 5)  # [B, H, W, C]
    packed = np.asarray(pack(jnp.asarray(x), 3))
    reference = np.stack([np.concatenate([x[3 * i + j] for j in range(3)], axis=-1) for i in range(2)])
    assert packed.shape == (2, 3, 2, 15)
    np.testing.assert_array_equal(packed, reference)
    flat = np.asarray(pack(jnp.asarray(x[:, 0, 0]), 2))  # [B, d] -> [B/2, 2d]
    np.testing.assert_array_equal(flat, x[:, 0, 0].reshape(3, 10))


def test_pack_refuses_a_batch_that_is_not_a_multiple():
    with pytest.raises(ValueError, match=r"^packing: a batch of 6 samples cannot be cut into packs of 4$"):
        pack(jnp.zeros((6, 2)), 4)


def test_packed_discriminator_is_the_plain_one_on_the_packs():
    inner = MLPDiscriminator(width=16, depth=2, input_scale=0.25)
    packed = Packed(inner, 4)
    x = jax.random.normal(jax.random.key(0), (12, 2))
    variables = packed.init(jax.random.key(1), x)
    kernel = variables["params"]["discriminator"]["MLP_0"]["Dense_0"]["kernel"]
    assert kernel.shape == (8, 16)  # D's first layer reads 4 samples of 2 coordinates
    logits = packed.apply(variables, x)
    reference = inner.apply({"params": variables["params"]["discriminator"]}, np.asarray(x).reshape(3, 8))
    assert logits.shape == (3,)
    chex.assert_trees_all_close(logits, reference, atol=1e-6)


def packed_game(**overrides):
    config = default_config()
    config.z_dim, config.generator.width, config.discriminator.width, config.packing = 8, 16, 16, 4
    config.update(overrides)
    validate(config)
    return build_game(config)


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "hinge"])
def test_packed_losses_compare_real_packs_with_fake_packs(loss):
    game = packed_game(loss=loss)
    state = game.init(jax.random.key(0), jnp.zeros((8, 2)))
    real = jax.random.normal(jax.random.key(1), (8, 2))
    fake = jax.random.normal(jax.random.key(2), (8, 2)) + 1.0
    inner = MLPDiscriminator(width=16, depth=1, input_scale=0.25, init_gain=0.8)

    def logits(d_params, x):  # the plain D on hand-made packs of 4 consecutive samples
        return inner.apply({"params": d_params["discriminator"]}, x.reshape(2, 8))

    d_value, _ = discriminator_loss(game, state.d_params, state.d_model_state, real, fake)
    reference = game.loss.discriminator(logits(state.d_params, real), logits(state.d_params, fake))
    chex.assert_trees_all_close(d_value, reference, atol=1e-6)
    g_value = generator_loss(game, state.d_params, state.d_model_state, fake)
    chex.assert_trees_all_close(g_value, game.loss.generator(logits(state.d_params, fake)), atol=1e-6)
    d_grad = jax.grad(lambda p: discriminator_loss(game, p, state.d_model_state, real, fake)[0])(state.d_params)
    d_reference = jax.grad(lambda p: game.loss.discriminator(logits(p, real), logits(p, fake)))(state.d_params)
    chex.assert_trees_all_close(d_grad, d_reference, atol=1e-6)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(batch_size=510), "--config.packing=4: the batch of 510 (--config.batch_size) must be a multiple of it"),
        (dict(penalty="r1", penalty_weight=1.0), "--config.packing=4 with --config.penalty='r1': the input-gradient "
         "penalties are defined per sample, not per pack; use packing=1 with them"),
        (dict(conditioning="concat"), "--config.packing=4 with --config.conditioning='concat': a pack mixes samples of "
         "different classes or codes; packing is for unconditional games"),
    ],
)
def test_packing_errors_name_the_flag(overrides, message):
    config = default_config()
    config.packing = 4
    config.update(overrides)
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert str(error.value) == message


def test_packing_error_with_lazy_r1():
    config = default_config()
    config.packing, config.lazy.r1_gamma = 2, 10.0
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert str(error.value).startswith("--config.packing=2 with --config.lazy.r1_gamma: the input-gradient penalties")


def test_packs_must_fit_each_devices_part_of_the_batch(monkeypatch):
    config = default_config()
    config.batch_size, config.packing = 24, 4  # 4 devices hold 6 samples each
    validate(config)
    monkeypatch.setattr(jax, "device_count", lambda: 4)
    with pytest.raises(ConfigError) as error:
        make_mesh(config)
    assert str(error.value) == (
        "--config.packing=4: each of the 4 devices holds 6 samples of the batch, which must be a multiple of it "
        "(packs stay on one device)"
    )


def test_a_packed_minibatch_stddev_discriminator_is_not_per_example():
    from jaxgan.models import linen_player
    from jaxgan.models.stylegan import StyleGAN2Discriminator

    assert not linen_player(StyleGAN2Discriminator()).per_example
    assert not linen_player(Packed(StyleGAN2Discriminator(), 2)).per_example  # the wrapper kept it hidden before
    assert linen_player(Packed(MLPDiscriminator(), 2)).per_example
    # the progressive wrapper likewise (its ProGAN D has a minibatch-stddev layer)
    from jaxgan.models import Progressive
    from jaxgan.models.progan import ProgressiveDiscriminator

    assert not linen_player(Progressive(ProgressiveDiscriminator(), 100, 3)).per_example
    assert linen_player(Progressive(ProgressiveDiscriminator(mbstd_group_size=1), 100, 3)).per_example


def test_a_multi_process_job_uses_all_its_devices(monkeypatch):
    """The first N devices of the global list are process 0's: fewer than all would leave a process without any."""
    config = default_config()
    config.num_devices = 2
    monkeypatch.setattr(jax, "device_count", lambda: 4)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"^--config.num_devices=2: a job of 2 processes uses all its 4 devices "
                       r"\(0 or 4\)$"):
        make_mesh(config)
