"""Tests for jaxgan.penalties.

Expected values come from closed forms of critics whose input gradients are known (linear: grad = w; quadratic:
grad = A x), of the Dirac-GAN and of the bilinear game, or from numpy transcriptions of the papers' formulas on
the same random draws, never from the module's own output.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import penalties

BATCH = 5


def _enable_x64():
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older jax
        from jax.experimental import enable_x64 as enable
    return enable(True)


def _linear_critic(w, b=0.3):
    """D(x) = <w, x> + b per sample, for x of shape [batch, *w.shape]: grad_x D = w everywhere."""
    axes = tuple(range(1, w.ndim + 1))
    return lambda x: jnp.sum(x * w, axis=axes) + b


def _quadratic_critic(a):
    """D(x) = x^T A x / 2 per sample, A symmetric: grad_x D = A x."""
    return lambda x: 0.5 * jnp.einsum("bi,ij,bj->b", x, a, x)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    real = jnp.asarray(rng.normal(size=(BATCH, 3)), jnp.float32)
    fake = jnp.asarray(rng.normal(loc=2.0, size=(BATCH, 3)), jnp.float32)
    b = rng.normal(size=(3, 3))
    a = jnp.asarray(b + b.T, jnp.float32)
    return real, fake, a


# ---------------------------------------------------------------------------------------------------------------
# weight_clip.
# ---------------------------------------------------------------------------------------------------------------


def test_weight_clip_bounds_and_keeps_in_range_values():
    params = {"w": jnp.array([-3.0, -0.01, 0.0, 0.005, 2.0]), "nested": {"b": jnp.array([[0.5, -0.05]])}}
    clipped = penalties.weight_clip(params, 0.01)
    chex.assert_trees_all_equal_structs(clipped, params)
    np.testing.assert_array_equal(clipped["w"], np.array([-0.01, -0.01, 0.0, 0.005, 0.01], np.float32))
    np.testing.assert_array_equal(clipped["nested"]["b"], np.array([[0.01, -0.01]], np.float32))
    for leaf in jax.tree.leaves(clipped):
        assert leaf.dtype == jnp.float32
        assert np.all(np.abs(leaf) <= 0.01)


def test_weight_clip_rejects_negative_bound():
    with pytest.raises(ValueError, match="clip"):
        penalties.weight_clip({"w": jnp.ones(2)}, -1.0)


# ---------------------------------------------------------------------------------------------------------------
# Linear critic: grad_x D = w.
# ---------------------------------------------------------------------------------------------------------------


W_SHAPE = (2, 3)  # multi-axis inputs: the norm must be over ALL non-batch axes (Frobenius norm of w)


@pytest.fixture
def linear_setup():
    rng = np.random.default_rng(1)
    w = jnp.asarray(rng.normal(size=W_SHAPE), jnp.float32)
    real = jnp.asarray(rng.normal(size=(BATCH, *W_SHAPE)), jnp.float32)
    fake = jnp.asarray(rng.normal(size=(BATCH, *W_SHAPE)), jnp.float32)
    return w, real, fake


def _gp_of_w(w, real, fake):
    return penalties.gradient_penalty(_linear_critic(w), real, fake, jax.random.PRNGKey(3))


def _dragan_of_w(w, real, fake):
    return penalties.dragan_penalty(_linear_critic(w), real, jax.random.PRNGKey(4))


def _r1_of_w(w, real, fake):
    return penalties.r1_penalty(_linear_critic(w), real)


def _r2_of_w(w, real, fake):
    return penalties.r2_penalty(_linear_critic(w), fake)


def _norm_minus_one_squared(w):
    return (np.linalg.norm(w) - 1.0) ** 2, 2.0 * (np.linalg.norm(w) - 1.0) * w / np.linalg.norm(w)


def _squared_norm(w):
    return np.sum(w**2), 2.0 * w


@pytest.mark.parametrize(
    "penalty, closed_form",
    [
        (_gp_of_w, _norm_minus_one_squared),
        (_dragan_of_w, _norm_minus_one_squared),
        (_r1_of_w, _squared_norm),
        (_r2_of_w, _squared_norm),
    ],
    ids=["wgan_gp", "dragan", "r1", "r2"],
)
def test_linear_critic_value_and_gradient_in_w(linear_setup, penalty, closed_form):
    w, real, fake = linear_setup
    value, grad = jax.value_and_grad(penalty)(w, real, fake)
    expected_value, expected_grad = closed_form(np.asarray(w, np.float64))
    chex.assert_shape(value, ())
    np.testing.assert_allclose(value, expected_value, rtol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("penalty", [_gp_of_w, _dragan_of_w], ids=["wgan_gp", "dragan"])
def test_norm_penalties_have_finite_gradient_at_zero_input_gradient(linear_setup, penalty):
    # w = 0: grad_x D = 0, where d||g||/dg = g/||g|| is 0/0. The value is exactly (0 - 1)^2.
    _, real, fake = linear_setup
    w = jnp.zeros(W_SHAPE)
    value, grad = jax.value_and_grad(penalty)(w, real, fake)
    np.testing.assert_allclose(value, 1.0, rtol=1e-6)
    assert np.all(np.isfinite(grad))


def test_gradient_penalty_target(linear_setup):
    w, real, fake = linear_setup
    value = penalties.gradient_penalty(_linear_critic(w), real, fake, jax.random.PRNGKey(0), target=0.5)
    np.testing.assert_allclose(value, (np.linalg.norm(np.asarray(w, np.float64)) - 0.5) ** 2, rtol=1e-5)


def test_gradient_penalty_rejects_mismatched_shapes(linear_setup):
    w, real, fake = linear_setup
    with pytest.raises(ValueError, match="same shape"):
        penalties.gradient_penalty(_linear_critic(w), real, fake[:-1], jax.random.PRNGKey(0))


# ---------------------------------------------------------------------------------------------------------------
# Quadratic critic: grad_x D = A x, different per sample.
# ---------------------------------------------------------------------------------------------------------------


def _mean_squared_grad_norm(a, x):
    g = np.asarray(x, np.float64) @ np.asarray(a, np.float64)  # rows (A x_i)^T, A symmetric
    return np.mean(np.sum(g**2, axis=1))


def _mean_norm_penalty(a, x, target=1.0):
    g = np.asarray(x, np.float64) @ np.asarray(a, np.float64)
    return np.mean((np.linalg.norm(g, axis=1) - target) ** 2)


def test_r1_r2_quadratic_critic(data):
    real, fake, a = data
    d_fn = _quadratic_critic(a)
    np.testing.assert_allclose(penalties.r1_penalty(d_fn, real), _mean_squared_grad_norm(a, real), rtol=1e-5)
    np.testing.assert_allclose(penalties.r2_penalty(d_fn, fake), _mean_squared_grad_norm(a, fake), rtol=1e-5)


def _wgan_gp_interpolates(key, real, fake):
    # The documented draw: one epsilon per sample, jax.random.uniform(key, (batch, 1, ..., 1), real.dtype),
    # i.e. the same call on the same key gives the same epsilons.
    eps = np.asarray(jax.random.uniform(key, (real.shape[0], 1), real.dtype), np.float64)
    assert np.all((eps >= 0) & (eps <= 1))
    return eps * np.asarray(real, np.float64) + (1.0 - eps) * np.asarray(fake, np.float64)


def _dragan_points(key, real, noise_scale=0.5):
    # The documented draw: u = jax.random.uniform(key, real.shape, real.dtype), one scalar population std.
    u = np.asarray(jax.random.uniform(key, real.shape, real.dtype), np.float64)
    real = np.asarray(real, np.float64)
    return real + noise_scale * real.std() * u


def test_gradient_penalty_quadratic_critic_reproduces_draws(data):
    real, fake, a = data
    key = jax.random.PRNGKey(42)
    expected = _mean_norm_penalty(a, _wgan_gp_interpolates(key, real, fake))
    np.testing.assert_allclose(
        penalties.gradient_penalty(_quadratic_critic(a), real, fake, key), expected, rtol=1e-5
    )
    # Sanity: the penalty depends on where the interpolates are, so a different key gives a different value.
    other = _mean_norm_penalty(a, _wgan_gp_interpolates(jax.random.PRNGKey(43), real, fake))
    assert abs(other - expected) > 1e-3


def test_dragan_quadratic_critic_reproduces_draws(data):
    real, _, a = data
    key = jax.random.PRNGKey(7)
    for noise_scale in (0.5, 2.0):
        expected = _mean_norm_penalty(a, _dragan_points(key, real, noise_scale))
        actual = penalties.dragan_penalty(_quadratic_critic(a), real, key, noise_scale=noise_scale)
        np.testing.assert_allclose(actual, expected, rtol=1e-5)
    # The perturbation matters: without it the value is the one at the data points.
    assert abs(_mean_norm_penalty(a, real) - _mean_norm_penalty(a, _dragan_points(key, real))) > 1e-3


# ---------------------------------------------------------------------------------------------------------------
# Nagarajan-Kolter on the Dirac-GAN.
# ---------------------------------------------------------------------------------------------------------------


def _sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def test_nagarajan_kolter_dirac_gan():
    # Dirac-GAN: G puts all mass at theta, data at 0, D(x) = psi x. V = f(psi theta) + f(0) with
    # f(t) = -log(1 + e^{-t}), f'(t) = sigmoid(-t). grad_psi V = f'(psi theta) theta, so
    # P(theta) = (theta sigmoid(-psi theta))^2 and, with s = sigmoid(-psi theta), s' = -psi s (1 - s):
    # dP/dtheta = 2 theta s (s - psi theta s (1 - s)).
    with _enable_x64():
        theta, psi = 0.7, -1.3

        def value(theta, d_params):
            f = jax.nn.log_sigmoid  # -log(1 + e^{-t})
            return f(d_params["psi"] * theta) + f(0.0)

        def penalty_of_theta(theta):
            return penalties.nagarajan_kolter_penalty(lambda d: value(theta, d), {"psi": jnp.float64(psi)})

        p, dp = jax.value_and_grad(penalty_of_theta)(jnp.float64(theta))

        s = _sigmoid(-psi * theta)
        np.testing.assert_allclose(p, (theta * s) ** 2, rtol=1e-12)
        np.testing.assert_allclose(dp, 2.0 * theta * s * (s - psi * theta * s * (1.0 - s)), rtol=1e-12)

        # Central finite differences of the hand-derived P as an independent check of the derivative.
        h = 1e-6
        p_hand = lambda t: (t * _sigmoid(-psi * t)) ** 2  # noqa: E731
        np.testing.assert_allclose(dp, (p_hand(theta + h) - p_hand(theta - h)) / (2 * h), rtol=1e-8)


def test_nagarajan_kolter_sums_over_all_leaves():
    # V = <a, d1> + c d2^2: grad = (a, 2 c d2), squared norm = |a|^2 + 4 c^2 d2^2.
    a = jnp.array([1.0, -2.0, 0.5])
    d_params = {"d1": jnp.zeros(3), "d2": jnp.array(1.5)}
    value = lambda d: jnp.dot(a, d["d1"]) + 3.0 * d["d2"] ** 2  # noqa: E731
    np.testing.assert_allclose(
        penalties.nagarajan_kolter_penalty(value, d_params), 1.0 + 4.0 + 0.25 + 4 * 9.0 * 2.25, rtol=1e-6
    )


# ---------------------------------------------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------------------------------------------


def test_registry_names():
    assert penalties.PENALTIES == ("none", "wgan_gp", "dragan", "r1", "r2", "nagarajan_kolter")


def test_discriminator_penalty_dispatch(data):
    real, fake, a = data
    d_fn = _quadratic_critic(a)
    key = jax.random.PRNGKey(11)
    expected = {
        "none": 0.0,
        "wgan_gp": _mean_norm_penalty(a, _wgan_gp_interpolates(key, real, fake)),
        "dragan": _mean_norm_penalty(a, _dragan_points(key, real)),
        "r1": _mean_squared_grad_norm(a, real),
        "r2": _mean_squared_grad_norm(a, fake),
        "nagarajan_kolter": 0.0,  # generator-side: nothing on D's loss
    }
    assert set(expected) == set(penalties.PENALTIES)
    for name, value in expected.items():
        actual = penalties.discriminator_penalty(name, d_fn, real, fake, key)
        chex.assert_shape(actual, ())
        np.testing.assert_allclose(actual, value, rtol=1e-5, err_msg=name)


def test_discriminator_penalty_under_jit(data):
    real, fake, a = data
    key = jax.random.PRNGKey(0)
    jitted = jax.jit(
        lambda a, real, fake: penalties.discriminator_penalty("r1", _quadratic_critic(a), real, fake, key)
    )
    np.testing.assert_allclose(jitted(a, real, fake), _mean_squared_grad_norm(a, real), rtol=1e-5)


def test_unknown_penalty_message(data):
    real, fake, a = data
    allowed = "none, wgan_gp, dragan, r1, r2, nagarajan_kolter"
    call = lambda name: penalties.discriminator_penalty(  # noqa: E731
        name, _quadratic_critic(a), real, fake, jax.random.PRNGKey(0)
    )
    with pytest.raises(ValueError) as info:
        call("r3")
    assert str(info.value) == f"unknown penalty 'r3'; allowed: {allowed} (did you mean 'r1'?)"
    with pytest.raises(ValueError, match=r"did you mean 'wgan_gp'\?"):
        call("WGAN-GP")
    with pytest.raises(ValueError) as info:
        call("spectral")
    assert str(info.value) == f"unknown penalty 'spectral'; allowed: {allowed}"
    with pytest.raises(ValueError, match="unknown penalty None"):
        call(None)
