"""Update rules on players with model state (batch norm, spectral norm's power iteration): the unrolled rule threads
D's model state through its K steps, and the joint-field rules hold model state fixed while differentiating, then advance it."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan.game import discriminator_loss, generate, generator_loss
from jaxgan.state import step_keys
from jaxgan.tasks import make_task
from jaxgan.train import build_game
from jaxgan.updates import make_update_rule
from test_image_runs import digits_config


def setup(**overrides):
    """28×28 digits, so that D has batch norm (on 8×8 its single convolution has none); tiny widths."""
    config = digits_config(**overrides)
    config.data.name, config.batch_size, config.z_dim = "mnist_5k", 16, 8
    config.generator.base_width = config.discriminator.base_width = 4
    task = make_task(config)
    game = build_game(config, task)
    rule = make_update_rule(game, config)
    state = rule.init(jax.random.key(0), jnp.zeros((config.batch_size, *task.data.shape)))
    real = task.data.sample(jax.random.key(1), rule.num_real_batches * config.batch_size)
    batch = {"real": real.reshape(rule.num_real_batches, config.batch_size, *real.shape[1:])}
    return config, game, rule, state, batch


def reference_unrolled_step(game, state, real, k):
    """The unrolled rule written as a plain Python loop over K steps of D (optimizer state and batch statistics
    carried by hand), differentiated end to end: (G's new params, D's model state after its own first step)."""
    z = game.sample_noise(step_keys(state).noise, 1, real.shape[0])

    def objective(g_params):
        fake, _ = generate(game, g_params, state.g_model_state, z)
        d_params, d_opt_state, d_model_state = state.d_params, state.d_opt_state, state.d_model_state
        states = []
        for _ in range(k):
            (_, d_model_state), grads = jax.value_and_grad(
                lambda p: discriminator_loss(game, p, d_model_state, real, fake[0]), has_aux=True
            )(d_params)
            updates, d_opt_state = game.d_optimizer.update(grads, d_opt_state, d_params)
            d_params = optax.apply_updates(d_params, updates)
            states.append(d_model_state)
        return generator_loss(game, d_params, d_model_state, fake[0], real), states

    grads, states = jax.grad(objective, has_aux=True)(state.g_params)
    updates, _ = game.g_optimizer.update(grads, state.g_opt_state, state.g_params)
    return optax.apply_updates(state.g_params, updates), states


@pytest.mark.parametrize(
    "discriminator",
    [
        {},
        {"discriminator.norm": "spectral"},
        # SGD for G: the ResNet G's conv biases before batch norm have a zero gradient, whose rounding noise Adam's
        # first step (g / (|g| + eps)) would blow up to the size of the step
        {"discriminator.name": "resnet", "discriminator.norm": "spectral", "generator.name": "resnet",
         "g_optimizer.name": "sgd", "g_optimizer.learning_rate": 1.0},
    ],
    ids=["batch_norm", "spectral_norm", "sngan_resnet"],
)
def test_unrolled_rule_threads_d_model_state_through_the_k_steps(discriminator):
    """Batch statistics (DCGAN) and spectral norm's power-iteration vectors (SN-DCGAN, SNGAN's ResNets) alike."""
    config, game, rule, state, batch = setup(update_rule="unrolled", unroll_steps=3, loss="minimax", **discriminator)
    assert jax.tree.leaves(state.d_model_state), "D keeps model state"
    new_state, _ = jax.jit(rule.step)(state, batch)
    # compiled as one program: run op by op, its nested gradients dispatch thousands of small kernels
    want, states = jax.jit(lambda s, real: reference_unrolled_step(game, s, real, k=3))(state, batch["real"][0])
    for got, ref in zip(jax.tree.leaves(new_state.g_params), jax.tree.leaves(want)):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # D keeps the batch statistics of its own (first) step, not those of the K-th unrolled one; the two differ.
    for got, ref in zip(jax.tree.leaves(new_state.d_model_state), jax.tree.leaves(states[0])):
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)
    gap = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[-1])))
    assert gap > 1e-6


@pytest.mark.parametrize("update_rule", ["extragradient", "consensus", "sga", "optimistic"])
def test_joint_field_rules_advance_model_state_by_one_forward_pass(update_rule):
    config, game, rule, state, batch = setup(update_rule=update_rule, loss="minimax")
    new_state, metrics = jax.jit(rule.step)(state, batch)
    real = batch["real"][0]
    z = game.sample_noise(step_keys(state).noise, real.shape[0])
    fake, g_model_state = generate(game, state.g_params, state.g_model_state, z)
    d_loss, d_model_state = discriminator_loss(game, state.d_params, state.d_model_state, real, fake, None)
    for got, want in zip(jax.tree.leaves((new_state.g_model_state, new_state.d_model_state)),
                         jax.tree.leaves((g_model_state, d_model_state))):  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(jax.tree.leaves(new_state.g_model_state)[0], jax.tree.leaves(state.g_model_state)[0])
    if update_rule == "consensus":  # its losses are the field's at the start point
        np.testing.assert_allclose(metrics["d_loss"], d_loss, rtol=1e-5)
        np.testing.assert_allclose(metrics["g_loss"], generator_loss(game, state.d_params, state.d_model_state, fake, real), rtol=1e-5)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(new_state.g_params))


def test_n_critic_draws_each_d_steps_fakes_from_g_with_that_batchs_statistics():
    """With d_steps = 2 and batch norm in G, each D step's fakes come from one forward pass over its own batch of B
    (the running averages updated once per pass, carried into G's step), not one pass over 2·B."""
    config, game, rule, state, batch = setup(update_rule="alternating", d_steps=2)
    new_state, _ = rule.step(state, batch)
    z = game.sample_noise(step_keys(state).noise, 3, config.batch_size)
    g_model_state = state.g_model_state
    for i in range(2):
        _, g_model_state = generate(game, state.g_params, g_model_state, z[i])
    _, g_model_state = generate(game, state.g_params, g_model_state, z[2])  # G's own step
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), new_state.g_model_state, g_model_state)
    # One pass over both batches at once would have given other running averages.
    _, joint = generate(game, state.g_params, state.g_model_state, z[:2])
    _, joint = generate(game, state.g_params, joint, z[2])
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(joint), jax.tree.leaves(g_model_state)))
    assert gap > 1e-4


def _tiny_dcgan_game_in_float64(k_lr=0.05):
    """DCGAN players with batch norm (16x16x1: G 4x4x4 -> 8x8x2 -> image, D 16 -> 8 -> 4 with batch norm on its
    second convolution), base width 2, z of 3, computed in float64; G steps by SGD(1), so a step reads off its
    gradient; D's Adam as the runner differentiates through it (eps_root > 0)."""
    from jaxgan.game import Game
    from jaxgan.losses import get_loss
    from jaxgan.models import linen_player
    from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator

    game = Game(
        generator=linen_player(DCGANGenerator((16, 16, 1), base_width=2, dtype=jnp.float64)),
        discriminator=linen_player(DCGANDiscriminator(base_width=2, dtype=jnp.float64, space_to_depth=False)),
        loss=get_loss("minimax"),
        g_optimizer=optax.sgd(1.0),
        d_optimizer=optax.adam(k_lr, b1=0.5, eps_root=1e-8),
        z_dim=3,
    )
    state = game.init(jax.random.key(0), jnp.zeros((8, 16, 16, 1)))
    cast = lambda tree: jax.tree.map(lambda x: x.astype(jnp.float64), tree)  # noqa: E731
    g_params, d_params = cast(state.g_params), cast(state.d_params)
    state = state.replace(
        g_params=g_params, d_params=d_params, g_model_state=cast(state.g_model_state),
        d_model_state=cast(state.d_model_state), g_opt_state=game.g_optimizer.init(g_params),
        d_opt_state=game.d_optimizer.init(d_params),
    )  # fmt: skip
    real = jax.random.uniform(jax.random.key(1), (1, 8, 16, 16, 1), jnp.float64, -1.0, 1.0)
    return game, state, real


def test_unrolled_dcgan_with_batch_norm_in_float64_against_simultaneous_and_finite_differences():
    """K = 0 is the simultaneous rule, step for step; at K = 2, G's gradient through D's two Adam steps (batch
    statistics carried) equals central differences of the unrolled objective written as a plain loop, along
    random directions, and differs from the gradient without the unroll."""
    from jaxgan.updates import simultaneous_step, unrolled_step

    with jax.enable_x64(True):
        game, state, real = _tiny_dcgan_game_in_float64()
        assert jax.tree.leaves(state.d_model_state) and jax.tree.leaves(state.g_model_state)
        zero, simultaneous = jax.jit(unrolled_step(game, 0).step), jax.jit(simultaneous_step(game).step)
        a = b = state
        for i in range(3):
            batch = {"real": real + 0.1 * i}
            a, b = zero(a, batch)[0], simultaneous(b, batch)[0]
        for x, y in zip(jax.tree.leaves(a.replace(key=None)), jax.tree.leaves(b.replace(key=None))):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-12, atol=1e-14)

        unrolled = jax.jit(unrolled_step(game, 2).step)
        flat, unravel = jax.flatten_util.ravel_pytree(state.g_params)
        step_grad = flat - jax.flatten_util.ravel_pytree(unrolled(state, {"real": real})[0].g_params)[0]
        z = game.sample_noise(step_keys(state).noise, 1, real.shape[1])

        @jax.jit
        def objective(x):  # the unrolled generator loss as a plain loop: D's Adam and batch statistics by hand
            fake, _ = generate(game, unravel(x), state.g_model_state, z)
            d_params, d_opt_state, d_model_state = state.d_params, state.d_opt_state, state.d_model_state
            for _ in range(2):
                (_, d_model_state), grads = jax.value_and_grad(
                    lambda p: discriminator_loss(game, p, d_model_state, real[0], fake[0]), has_aux=True
                )(d_params)
                updates, d_opt_state = game.d_optimizer.update(grads, d_opt_state, d_params)
                d_params = optax.apply_updates(d_params, updates)
            return generator_loss(game, d_params, d_model_state, fake[0], real[0])

        directions = np.random.default_rng(0).standard_normal((6, flat.size))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        h = 1e-7  # Adam's first step, g / (|g| + ε) entrywise, bends sharply where a gradient entry is small
        for u in directions:
            fd = (objective(flat + h * u) - objective(flat - h * u)) / (2 * h)
            assert float(step_grad @ u) == pytest.approx(float(fd), rel=1e-6, abs=1e-10)  # measured: 1e-8 relative
        plain = flat - jax.flatten_util.ravel_pytree(zero(state, {"real": real})[0].g_params)[0]
        assert float(jnp.max(jnp.abs(plain - step_grad))) > 1e-6
