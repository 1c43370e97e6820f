"""Update rules against independent references: closed forms, finite differences, and each other."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import chex

from jaxgan import losses
from jaxgan.config import default_config
from jaxgan.game import Game, discriminator_step, generate, generator_loss
from jaxgan.models import DISCRIMINATORS, linen_player
from jaxgan.state import TrainState, step_keys
from jaxgan.train import build_game
from jaxgan.updates import alternating_step, make_update_rule, simultaneous_step, unrolled_step


class ConstantGenerator(nn.Module):
    """G(z) = θ for every z: the generator of the Dirac-GAN, with a closed-form unrolled gradient."""

    dim: int = 2

    @nn.compact
    def __call__(self, z):
        theta = self.param("theta", nn.initializers.normal(1.0), (self.dim,))
        return jnp.broadcast_to(theta, (z.shape[0], self.dim))


class LinearCritic(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1, kernel_init=nn.initializers.normal(1.0), bias_init=nn.initializers.normal(1.0))(x)[:, 0]


class TanhCritic(nn.Module):
    """Smooth everywhere, so finite differences are meaningful."""

    @nn.compact
    def __call__(self, x):
        h = jnp.tanh(nn.Dense(5, kernel_init=nn.initializers.normal(0.8))(x))
        return nn.Dense(1, kernel_init=nn.initializers.normal(0.8))(h)[:, 0]


class LinearGenerator(nn.Module):
    @nn.compact
    def __call__(self, z):
        return nn.Dense(2, kernel_init=nn.initializers.normal(0.7), bias_init=nn.initializers.normal(0.5))(z)


def make_state(game: Game, key, batch_size=8, data_dim=2, dtype=jnp.float32) -> TrainState:
    state = game.init(key, jnp.zeros((batch_size, data_dim)))
    cast = lambda t: jax.tree.map(lambda x: x.astype(dtype), t)  # noqa: E731
    g_params, d_params = cast(state.g_params), cast(state.d_params)
    return state.replace(
        g_params=g_params,
        d_params=d_params,
        g_opt_state=game.g_optimizer.init(g_params),
        d_opt_state=game.d_optimizer.init(d_params),
    )


def as_arrays(state: TrainState) -> TrainState:
    """Typed PRNG keys have no numeric value to compare; compare their key data."""
    return state.replace(key=jax.random.key_data(state.key))


def generator_grad(rule, state, batch):
    """G's gradient, read off a step taken with optax.sgd(1.0): θ' = θ - ∇."""
    new_state, _ = rule.step(state, batch)
    return jax.tree.map(lambda old, new: old - new, state.g_params, new_state.g_params)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# ---------------------------------------------------------------------------------------------------------------
# Closed form: K = 1, plain SGD, linear critic, constant generator, Wasserstein loss.
#   D(x) = w·x + b, L_D = w·θ - w·r̄  ⇒  w1 = w - η(θ - r̄), b1 = b;   L_G = -(w1·θ + b1)
#   ⇒ dL_G/dθ = -w + η(2θ - r̄)  (through the unroll),  -w + η(θ - r̄)  (stop-gradient),  -w  (K = 0).
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop_gradient", [False, True])
@pytest.mark.parametrize("unroll_steps", [0, 1])
def test_unrolled_k1_sgd_closed_form(unroll_steps, stop_gradient):
    eta = 0.3
    game = Game(
        generator=linen_player(ConstantGenerator()),
        discriminator=linen_player(LinearCritic()),
        loss=losses.get_loss("wasserstein"),
        g_optimizer=optax.sgd(1.0),
        d_optimizer=optax.sgd(eta),
        z_dim=3,
    )
    state = make_state(game, jax.random.key(0))
    real = jax.random.normal(jax.random.key(1), (1, 8, 2)) + jnp.array([1.0, -2.0])
    rule = unrolled_step(game, unroll_steps, stop_gradient=stop_gradient)
    grad = generator_grad(rule, state, {"real": real})["theta"]

    theta = state.g_params["theta"]
    w = state.d_params["Dense_0"]["kernel"][:, 0]
    r_bar = real[0].mean(0)
    if unroll_steps == 0:
        expected = -w
    elif stop_gradient:
        expected = -w + eta * (theta - r_bar)
    else:
        expected = -w + eta * (2 * theta - r_bar)
    chex.assert_trees_all_close(grad, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Finite differences in float64 through K Adam steps (moments included) on a tiny tanh critic.
# ---------------------------------------------------------------------------------------------------------------


def reference_unrolled_objective(theta_g, state, game, real, z, k, lr, b1, b2, eps, eps_root):
    """L_G(θ_G, θ_D^K) with Adam written out by hand, independent of optax and of the update rule."""
    num_batches = z.shape[0]
    fake = jnp.stack([game.generator.apply(theta_g, {}, z[i])[0] for i in range(num_batches)])
    d = state.d_params
    m = jax.tree.map(jnp.zeros_like, d)
    v = jax.tree.map(jnp.zeros_like, d)
    for t in range(1, k + 1):
        i = (t - 1) % num_batches

        def d_loss(p, i=i):
            real_logits = game.discriminator.apply(p, {}, real[i])[0]
            fake_logits = game.discriminator.apply(p, {}, fake[i])[0]
            return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))

        g = jax.grad(d_loss)(d)
        m = jax.tree.map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
        v = jax.tree.map(lambda v_, g_: b2 * v_ + (1 - b2) * g_**2, v, g)
        d = jax.tree.map(
            lambda p, m_, v_: p - lr * (m_ / (1 - b1**t)) / (jnp.sqrt(v_ / (1 - b2**t) + eps_root) + eps), d, m, v
        )
    fake_logits = game.discriminator.apply(d, {}, fake[0])[0]
    return -jnp.mean(jax.nn.softplus(fake_logits))  # minimax generator loss


@pytest.mark.parametrize("same_batch", [True, False])
def test_unrolled_gradient_matches_finite_differences(x64, same_batch):
    k, lr, b1, b2, eps, eps_root = 3, 0.05, 0.5, 0.999, 1e-8, 1e-8
    game = Game(
        generator=linen_player(LinearGenerator()),
        discriminator=linen_player(TanhCritic()),
        loss=losses.get_loss("minimax"),
        g_optimizer=optax.sgd(1.0),
        d_optimizer=optax.adam(lr, b1=b1, b2=b2, eps=eps, eps_root=eps_root),
        z_dim=3,
    )
    state = make_state(game, jax.random.key(2), dtype=jnp.float64)
    num_batches = 1 if same_batch else k
    real = jax.random.normal(jax.random.key(3), (num_batches, 8, 2), jnp.float64) * 0.5 + 1.0
    grad = generator_grad(unrolled_step(game, k, same_batch=same_batch), state, {"real": real})

    z = game.sample_noise(step_keys(state).noise, num_batches, 8)
    flat, unravel = jax.flatten_util.ravel_pytree(state.g_params)
    f = jax.jit(
        lambda x: reference_unrolled_objective(unravel(x), state, game, real, z, k, lr, b1, b2, eps, eps_root)
    )
    h = 1e-6
    basis = np.eye(flat.size)
    fd = np.array([(f(flat + h * e) - f(flat - h * e)) / (2 * h) for e in basis])
    got = np.asarray(jax.flatten_util.ravel_pytree(grad)[0])
    np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-8)
    # The second-order terms matter here: the first-order ablation must differ from the full gradient.
    grad_fo = generator_grad(unrolled_step(game, k, same_batch=same_batch, stop_gradient=True), state, {"real": real})
    assert np.abs(np.asarray(jax.flatten_util.ravel_pytree(grad_fo)[0]) - fd).max() > 1e-4


# ---------------------------------------------------------------------------------------------------------------
# Rules against each other on the ring8 model with Adam.
# ---------------------------------------------------------------------------------------------------------------


def ring8_game_and_state(**overrides):
    config = default_config()
    config.z_dim, config.generator.width, config.discriminator.width = 16, 32, 32
    for key, value in overrides.items():
        config[key] = value
    game = build_game(config)
    return config, game, game.init(jax.random.key(config.seed), jnp.zeros((64, 2)))


def run_steps(rule, state, num_steps, key=jax.random.key(7)):
    step = jax.jit(rule.step)
    for i in range(num_steps):
        real = jax.random.normal(jax.random.fold_in(key, i), (rule.num_real_batches, 64, 2))
        state, _ = step(state, {"real": real})
    return state


def test_unroll_zero_is_simultaneous():
    _, game, state = ring8_game_and_state()
    a = run_steps(unrolled_step(game, 0), state, 5)
    b = run_steps(simultaneous_step(game), state, 5)
    chex.assert_trees_all_close(as_arrays(a), as_arrays(b), rtol=1e-6, atol=1e-7)
    assert int(a.step) == 5


def test_remat_does_not_change_the_step():
    _, game, state = ring8_game_and_state()
    a = run_steps(unrolled_step(game, 4, remat=True), state, 3)
    b = run_steps(unrolled_step(game, 4, remat=False), state, 3)
    chex.assert_trees_all_close(as_arrays(a), as_arrays(b), rtol=1e-5, atol=1e-7)


def test_unrolled_discriminator_takes_its_ordinary_step():
    """D's own update under the unrolled rule is the simultaneous rule's D update, whatever K is."""
    _, game, state = ring8_game_and_state()
    a = run_steps(unrolled_step(game, 5), state, 1)
    b = run_steps(simultaneous_step(game), state, 1)
    chex.assert_trees_all_close((a.d_params, a.d_opt_state), (b.d_params, b.d_opt_state), rtol=1e-6, atol=1e-7)
    assert not np.allclose(
        jax.flatten_util.ravel_pytree(a.g_params)[0], jax.flatten_util.ravel_pytree(b.g_params)[0], atol=1e-6
    )


def test_alternating_runs_n_critic_discriminator_steps_then_one_generator_step():
    _, game, state = ring8_game_and_state()
    d_steps = 3
    rule = alternating_step(game, d_steps=d_steps)
    assert rule.num_real_batches == d_steps
    real = jax.random.normal(jax.random.key(5), (d_steps, 64, 2))
    new_state, _ = jax.jit(rule.step)(state, {"real": real})
    # Adam's step counters: D moved d_steps times, G once.
    assert int(new_state.d_opt_state[0].count) == d_steps
    assert int(new_state.g_opt_state[0].count) == 1

    # The same step composed by hand from the game's building blocks.
    z = game.sample_noise(step_keys(state).noise, d_steps + 1, 64)
    d = (state.d_params, state.d_opt_state, state.d_model_state)
    for i in range(d_steps):
        fake, _ = generate(game, state.g_params, {}, z[i])
        d = discriminator_step(game, *d, real[i], fake)[:3]

    def g_loss(g_params):
        fake, _ = generate(game, g_params, {}, z[d_steps])
        return game.loss.generator(game.discriminator.apply(d[0], {}, fake)[0])

    updates, _ = game.g_optimizer.update(jax.grad(g_loss)(state.g_params), state.g_opt_state, state.g_params)
    chex.assert_trees_all_close(new_state.d_params, d[0], rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_close(new_state.g_params, optax.apply_updates(state.g_params, updates), rtol=1e-5, atol=1e-7)


def test_n_critic_refuses_fewer_real_batches_than_discriminator_steps():
    # Each D step needs its own real batch; reusing batch 0 for the missing ones would be a silent change of data.
    _, game, state = ring8_game_and_state()
    rule = alternating_step(game, d_steps=3)
    real = jax.random.normal(jax.random.key(5), (2, 64, 2))
    with pytest.raises(ValueError, match=r"^alternating_step with d_steps=3 needs batch\['real'\] of 3 real batches "
                       r"\(\[d_steps, B, \.\.\.\]\), got 2$"):
        rule.step(state, {"real": real})


def test_fresh_batches_consume_k_real_batches():
    _, game, state = ring8_game_and_state()
    rule = unrolled_step(game, 4, same_batch=False)
    assert rule.num_real_batches == 4
    same = unrolled_step(game, 4, same_batch=True)
    assert same.num_real_batches == 1
    # With identical real batches the two differ only through the fresh noise: a real difference.
    real = jnp.broadcast_to(jax.random.normal(jax.random.key(1), (1, 64, 2)), (4, 64, 2))
    a, _ = rule.step(state, {"real": real})
    b, _ = same.step(state, {"real": real[:1]})
    chex.assert_trees_all_close(a.d_params, b.d_params, rtol=1e-6)  # D's own step uses batch 0 in both
    assert not np.allclose(jax.flatten_util.ravel_pytree(a.g_params)[0], jax.flatten_util.ravel_pytree(b.g_params)[0])


def test_make_update_rule_rejects_unknown_names():
    config, game, _ = ring8_game_and_state()
    config.update_rule = "unroled"
    with pytest.raises(ValueError, match=r"unknown update rule 'unroled'.*did you mean 'unrolled'"):
        make_update_rule(game, config)
    with pytest.raises(ValueError, match=r"^unroll_steps must be an integer >= 0, got -1$"):
        unrolled_step(game, -1)
    with pytest.raises(ValueError, match=r"^unroll_steps must be an integer >= 0, got 1.5$"):
        unrolled_step(game, 1.5)
    with pytest.raises(ValueError, match=r"^d_steps must be an integer >= 1, got 0$"):
        alternating_step(game, 0)
    with pytest.raises(ValueError, match=r"^d_steps must be an integer >= 1, got 2.0$"):
        alternating_step(game, 2.0)
    assert alternating_step(game, np.int64(2)).num_real_batches == 2


# ---------------------------------------------------------------------------------------------------------------
# Game-dynamics rules on the bilinear game. The Dirac-GAN with the Wasserstein loss and data at 0 is
# L_D = ψθ, L_G = −ψθ: v = (∇_θ L_G, ∇_ψ L_D) = (−ψ, θ). With SGD of step η each rule is a linear map whose
# spectral radius is known in closed form.
# ---------------------------------------------------------------------------------------------------------------

from jaxgan.updates import (  # noqa: E402
    consensus_step,
    extragradient_step,
    optimistic_step,
    sga_step,
    with_generator_ema,
)


class NoBiasLinearCritic(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1, use_bias=False)(x)[:, 0]


def dirac_game(eta, **game_options):
    return Game(
        generator=linen_player(ConstantGenerator(dim=1)),
        discriminator=linen_player(NoBiasLinearCritic()),
        loss=losses.get_loss("wasserstein"),
        g_optimizer=optax.sgd(eta),
        d_optimizer=optax.sgd(eta),
        z_dim=1,
        **game_options,
    )


def dirac_trajectory(rule, theta0=1.0, psi0=1.0, num_steps=40):
    """(θ, ψ) after each of `num_steps` steps of `rule` from (θ0, ψ0), data at 0."""
    state = rule.init(jax.random.key(0), jnp.zeros((4, 1)))
    state = state.replace(
        g_params={"theta": jnp.array([theta0])}, d_params={"Dense_0": {"kernel": jnp.array([[psi0]])}}
    )
    if state.g_params_ema is not None:
        state = state.replace(g_params_ema={"theta": jnp.array([theta0])})
    batch = {"real": jnp.zeros((rule.num_real_batches, 4, 1))}

    def body(state, _):
        state, _ = rule.step(state, batch)
        return state, (state.g_params["theta"][0], state.d_params["Dense_0"]["kernel"][0, 0])

    state, (thetas, psis) = jax.jit(lambda s: jax.lax.scan(body, s, None, length=num_steps))(state)
    return state, np.stack([np.asarray(thetas), np.asarray(psis)], axis=1)


def predicted_by_matrix(matrix, num_steps, start=(1.0, 1.0)):
    x, out = np.asarray(start, np.float64), []
    for _ in range(num_steps):
        x = matrix @ x
        out.append(x)
    return np.array(out)


ETA = 0.1


@pytest.mark.parametrize(
    "name, make_rule, matrix",
    [
        ("simultaneous", lambda g: simultaneous_step(g), [[1, ETA], [-ETA, 1]]),
        ("alternating", lambda g: alternating_step(g, 1), [[1 - ETA**2, ETA], [-ETA, 1]]),
        ("extragradient", lambda g: extragradient_step(g), [[1 - ETA**2, ETA], [-ETA, 1 - ETA**2]]),
        ("consensus", lambda g: consensus_step(g, 0.5), [[1 - ETA * 0.5, ETA], [-ETA, 1 - ETA * 0.5]]),
        # J = [[0, −1], [1, 0]] is antisymmetric: Aᵀv = (θ, ψ), alignment ⟨ξ, Jᵀξ⟩ = 0 gives λ > 0.
        ("sga", lambda g: sga_step(g, 0.5), [[1 - ETA * 0.5, ETA], [-ETA, 1 - ETA * 0.5]]),
    ],
)
def test_bilinear_game_closed_form(name, make_rule, matrix):
    """Each rule is the stated linear map; simultaneous spirals out, alternating cycles, the others converge."""
    _, path = dirac_trajectory(make_rule(dirac_game(ETA)))
    expected = predicted_by_matrix(np.array(matrix, np.float64), len(path))
    np.testing.assert_allclose(path, expected, rtol=1e-4, atol=1e-6)
    radius = np.linalg.norm(path[-1]) / np.sqrt(2)
    if name == "simultaneous":
        np.testing.assert_allclose(radius, (1 + ETA**2) ** (len(path) / 2), rtol=1e-4)  # grows
    elif name == "alternating":
        assert 0.8 < radius < 1.25  # area-preserving: neither converges nor diverges
    else:
        assert radius < 0.9


def test_joint_rules_refuse_a_negative_weight():
    game = dirac_game(0.1)
    with pytest.raises(ValueError, match=r"^consensus_step: gamma must be >= 0, got -1$"):
        consensus_step(game, -1)
    with pytest.raises(ValueError, match=r"^sga_step: lam must be >= 0, got -0.5$"):
        sga_step(game, -0.5)


def test_extragradient_logs_the_losses_at_the_point_it_starts_from():
    """Its update uses the look-ahead's gradient, but its g_loss/d_loss are the current point's, as every rule's."""
    _, game, state = ring8_game_and_state()
    real = jax.random.normal(jax.random.key(3), (1, 64, 2))
    _, logged = jax.jit(extragradient_step(game).step)(state, {"real": real})
    _, at_start = jax.jit(simultaneous_step(game).step)(state, {"real": real})
    for name in ("g_loss", "d_loss"):
        np.testing.assert_array_equal(logged[name], at_start[name])


def test_sga_keeps_lambda_in_the_players_dtype(x64):
    """In float64 the adjustment is ξ + λ Aᵀξ with λ = 0.1 exactly, not its float32 rounding 0.10000000149."""
    state = dirac_trajectory(sga_step(dirac_game(0.1), 0.1, align=False), num_steps=0)[0]
    state = jax.tree.map(lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x, state)
    _, metrics = sga_step(dirac_game(0.1), 0.1, align=False).step(state, {"real": jnp.zeros((1, 4, 1), jnp.float64)})
    assert metrics["sga_lambda"].dtype == jnp.float64 and float(metrics["sga_lambda"]) == 0.1


def test_optimistic_gradient_descent_matches_its_recurrence_and_converges():
    _, path = dirac_trajectory(optimistic_step(dirac_game(ETA)), num_steps=200)
    x, previous, expected = np.array([1.0, 1.0]), None, []
    for _ in range(200):
        g = np.array([-x[1], x[0]])  # v = (−ψ, θ)
        x = x - ETA * (g if previous is None else 2 * g - previous)
        previous = g
        expected.append(x)
    np.testing.assert_allclose(path, np.array(expected), rtol=1e-4, atol=1e-6)
    assert np.linalg.norm(path[-1]) < 0.5 * np.sqrt(2)


def test_r1_penalty_makes_simultaneous_descent_converge():
    """R1 with weight γ adds γ/2·ψ² to D's loss (∂D/∂x = ψ): ψ ← ψ − η(θ + γψ)."""
    gamma = 1.0
    _, path = dirac_trajectory(simultaneous_step(dirac_game(ETA, penalty="r1", penalty_weight=gamma)), num_steps=200)
    expected = predicted_by_matrix(np.array([[1, ETA], [-ETA, 1 - ETA * gamma]]), 200)
    np.testing.assert_allclose(path, expected, rtol=1e-4, atol=1e-6)
    assert np.linalg.norm(path[-1]) < 0.1


def test_weight_clip_bounds_the_critic_after_every_step():
    _, path = dirac_trajectory(simultaneous_step(dirac_game(ETA, weight_clip=0.5)), psi0=0.3)
    assert np.abs(path[:, 1]).max() <= 0.5 + 1e-7
    assert np.isclose(np.abs(path[:, 1]).max(), 0.5)  # the clip is active: the unclipped ψ would exceed it


@pytest.mark.parametrize("update_rule", ["extragradient", "consensus", "sga", "optimistic"])
def test_weight_clip_holds_under_the_joint_field_rules(update_rule):
    """WGAN's clip is part of D's update under every rule, not only the alternating and simultaneous steps."""
    config, game, _ = ring8_game_and_state(loss="wasserstein", weight_clip=0.01, update_rule=update_rule)
    rule = make_update_rule(game, config)
    state = run_steps(rule, rule.init(jax.random.key(0), jnp.zeros((64, 2))), 3)
    largest = max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(state.d_params))
    assert np.isclose(largest, 0.01)  # clipped, and active: D's initial weights exceed 0.01


def test_generator_ema_is_the_exponential_average_of_the_trajectory():
    decay = 0.9
    state, path = dirac_trajectory(with_generator_ema(simultaneous_step(dirac_game(ETA)), decay))
    ema = 1.0  # starts at G's initial θ
    for theta in path[:, 0]:
        ema = decay * ema + (1 - decay) * theta
    np.testing.assert_allclose(float(state.g_params_ema["theta"][0]), ema, rtol=1e-5)


def test_generator_ema_rampup_caps_the_half_life_at_a_fraction_of_the_steps():
    """StyleGAN2-ADA's ramp: β_t = min(decay, ½^(1/(r·t))), t the steps before this one, so the first step copies G
    and the average of a short run reaches back over the last fraction r of it only."""
    decay, rampup, num_steps = 0.99, 0.5, 40
    state, path = dirac_trajectory(with_generator_ema(simultaneous_step(dirac_game(ETA)), decay, rampup), num_steps=num_steps)
    ema, betas = 1.0, []
    for t, theta in enumerate(path[:, 0].astype(np.float64)):
        beta = 0.0 if t == 0 else min(decay, 0.5 ** (1.0 / (rampup * t)))
        betas.append(beta)
        ema = beta * ema + (1 - beta) * theta
    assert betas[1] == 0.25 and betas[-1] < decay  # t = 1: half-life ½ step; still ramping at t = 39
    np.testing.assert_allclose(float(state.g_params_ema["theta"][0]), ema, rtol=1e-5)
    plain, _ = dirac_trajectory(with_generator_ema(simultaneous_step(dirac_game(ETA)), decay), num_steps=num_steps)
    assert abs(float(plain.g_params_ema["theta"][0]) - ema) > 1e-3  # the ramp changes the average
    one, first = dirac_trajectory(with_generator_ema(simultaneous_step(dirac_game(ETA)), decay, rampup), num_steps=1)
    assert float(one.g_params_ema["theta"][0]) == float(first[0, 0])  # β_0 = 0: the average is G after one step
    with pytest.raises(ValueError, match=r"^ema_rampup must be >= 0, got -1.0$"):
        with_generator_ema(simultaneous_step(dirac_game(ETA)), decay, -1.0)


# ---------------------------------------------------------------------------------------------------------------
# The paper setting against an independent plain-JAX implementation, and eps_root where D's Adam is unrolled.
# ---------------------------------------------------------------------------------------------------------------


def _as_layers(params):
    mlp = params["MLP_0"]
    return [(mlp[f"Dense_{i}"]["kernel"], mlp[f"Dense_{i}"]["bias"]) for i in range(len(mlp))]


def test_ring8_unrolled_steps_equal_the_minimal_plain_jax_implementation():
    # experiments/ring8.py (K = 10 through D's Adam, minimax loss, G's eps_root 0) against
    # scripts/minimal_unrolled_ring.py, which shares no code with jaxgan, on the same start, data and noise.
    from scripts import minimal_unrolled_ring as minimal
    from scripts.notes import load_experiment

    config = load_experiment("ring8")
    game = build_game(config)
    rule = make_update_rule(game, config)
    state = rule.init(jax.random.key(0), jnp.zeros((config.batch_size, 2)))
    g, d = _as_layers(state.g_params), _as_layers(state.d_params)
    reference = (g, d, minimal.adam_init(g), minimal.adam_init(d))
    reference_step = jax.jit(minimal.make_step(config.unroll_steps, 1e-4, 1e-4, 0.0, config.unroll_eps_root))
    step = jax.jit(rule.step)
    for i in range(3):
        real = minimal.ring(jax.random.key(100 + i), config.batch_size)
        z = game.sample_noise(step_keys(state).noise, 1, config.batch_size)[0]
        state, _ = step(state, {"real": real[None]})
        reference = reference_step(reference, real, z)
    # Each step moves G's kernels by ~1e-4 (Adam's step size): agreement to 1e-7 is agreement of the updates
    # to ~0.1%, which a different eps_root (G's: up to 10x smaller steps) or loss would break.
    chex.assert_trees_all_close(_as_layers(state.g_params), reference[0], atol=1e-7, rtol=0)
    chex.assert_trees_all_close(_as_layers(state.d_params), reference[1], atol=1e-7, rtol=0)
    moved = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), _as_layers(state.g_params), g)
    assert min(jax.tree.leaves(moved)) > 1e-5


@pytest.mark.parametrize("eps_root, finite", [(0.0, False), (1e-12, True)])
def test_unroll_eps_root_keeps_the_gradient_finite_where_a_d_gradient_is_exactly_zero(eps_root, finite):
    # A dead hidden unit of D (bias -100) has exactly zero gradients, so its Adam second moment is 0 at the first
    # unrolled step: d√(v + eps_root)/dv is infinite at eps_root = 0, and 0·∞ makes G's gradient NaN.
    config, game, state = ring8_game_and_state(unroll_eps_root=eps_root)
    d_params = jax.tree.map(lambda x: x, state.d_params)
    d_params["MLP_0"]["Dense_0"]["bias"] = d_params["MLP_0"]["Dense_0"]["bias"].at[0].set(-100.0)
    state = state.replace(d_params=d_params, g_opt_state=optax.sgd(1.0).init(state.g_params))
    game = dataclasses.replace(game, g_optimizer=optax.sgd(1.0))
    real = jax.random.normal(jax.random.key(3), (1, 64, 2))
    grad = generator_grad(unrolled_step(game, 3), state, {"real": real})
    leaves = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grad)])
    assert np.all(np.isfinite(leaves)) == finite
    # And it is the gradient of the unregularised surrogate: relative to eps_root 1e-16 (which equals 1e-20 and
    # 1e-30 exactly here), 1e-12 changes it by 1.8e-5, 1e-10 by 5e-4 and 1e-8 by 0.9% (measured).
    if finite:
        smaller_game = dataclasses.replace(game, d_optimizer=optax.adam(1e-4, b1=0.5, eps_root=1e-16))
        smaller = generator_grad(unrolled_step(smaller_game, 3), state, {"real": real})
        other = np.concatenate([np.ravel(x) for x in jax.tree.leaves(smaller)])
        assert np.linalg.norm(leaves - other) < 1e-4 * np.linalg.norm(other)


def _primitive_names(jaxpr) -> set[str]:
    """Names of the primitives of a jaxpr, nested jaxprs (jit, remat, scan bodies) included."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    names |= _primitive_names(inner)
    return names


@pytest.mark.parametrize(
    "experiment, setting, remat, loop",
    [
        ("ring8", "auto", True, True),  # MLP players: remat, the K steps in an XLA loop (memory flat in K)
        ("ring8", "off", False, True),
        ("dcgan_digits", "auto", False, False),  # convolutional players: neither, on every backend
        ("dcgan_digits", "on", True, True),  # the form before "auto": an XLA loop unless the runner traces it
        ("dcgan_digits", "off", False, True),
    ],
)
def test_unroll_remat_auto_rematerialises_mlp_players_only(experiment, setting, remat, loop):
    """The compiled unrolled step has remat (a checkpoint primitive) and an XLA loop (a `scan`) exactly where
    `config.unroll_remat` and the players say (`updates.unroll_form`)."""
    from jaxgan.tasks import make_task
    from jaxgan.train import init_state
    from scripts.notes import load_experiment

    config = load_experiment(experiment)
    config.update_rule, config.unroll_steps, config.unroll_remat = "unrolled", 3, setting
    if experiment == "dcgan_digits":
        config.generator.base_width = config.discriminator.base_width = 8
        config.batch_size, config.z_dim = 8, 4
    task = make_task(config)
    rule = make_update_rule(build_game(config, task), config)
    state = init_state(config, rule, task)
    real = jnp.zeros((rule.num_real_batches, config.batch_size, *task.data.shape))
    names = _primitive_names(jax.make_jaxpr(rule.step)(state, {"real": real}).jaxpr)
    assert bool(names & {"checkpoint", "remat2"}) is remat, sorted(names)  # the remat primitive's names across jax
    assert ("scan" in names) is loop, sorted(names)


@pytest.mark.parametrize("name", DISCRIMINATORS.names)
def test_unroll_form_auto_follows_the_examples_a_discriminator_takes(name):
    """"auto" picks the convolutional form (no remat, traced) exactly for the discriminators whose registry entry
    takes [H, W, C] images, and the rank an entry declares is the one its build accepts."""
    from jaxgan.models import example_rank
    from jaxgan.updates import unroll_form

    rank = example_rank(DISCRIMINATORS, name)
    assert rank == {"mlp": 1, "linear": None}.get(name, 3)
    if rank is not None:
        config = default_config()
        config.discriminator.name = name
        wrong = (2,) if rank == 3 else (8, 8, 1)
        with pytest.raises(ValueError, match="for flat vectors" if rank == 1 else r"for \[H, W, C\] images"):
            DISCRIMINATORS[name].build(config.discriminator, wrong, 0, config)
    assert unroll_form("auto", name) == ((False, True) if rank == 3 else (True, False))
    assert unroll_form("on", name) == (True, False) and unroll_form("off", name) == (False, False)
    assert example_rank(DISCRIMINATORS, "no_such_model") is None


def test_the_nagarajan_kolter_generator_loss_refuses_a_missing_real_batch():
    game = dirac_game(0.1, penalty="nagarajan_kolter", penalty_weight=1.0)
    d_params = {"Dense_0": {"kernel": jnp.ones((1, 1))}}
    with pytest.raises(ValueError, match=r"^generator_loss: the nagarajan_kolter penalty needs the real batch \(real=...\)$"):
        generator_loss(game, d_params, {}, jnp.ones((4, 1)))
