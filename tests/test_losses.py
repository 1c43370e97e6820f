"""Tests for jaxgan.losses.

Expected values come from closed forms or from literal numpy (float64) transcriptions of the papers' formulas
(sigmoid-based, Table 1/2 of Nowozin et al. 2016), never from the module's own output.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import losses

LOG2 = math.log(2.0)
LOG4 = math.log(4.0)

LOSS_NAMES = sorted(losses.LOSSES)
F_NAMES = sorted(losses.F_DIVERGENCES)

# Their values grow like exp(|v|): beyond |v| ~ 88 the true value is outside the float32 range.
EXPONENTIAL_LOSSES = {"f_kl", "f_reverse_kl", "f_squared_hellinger"}


def _enable_x64():
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older jax
        from jax.experimental import enable_x64 as enable
    return enable(True)


@pytest.fixture
def x64():
    with _enable_x64():
        yield


# ---------------------------------------------------------------------------------------------------------------
# Literal references in numpy float64.
# ---------------------------------------------------------------------------------------------------------------


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# Table 2 of Nowozin et al. 2016 as printed: output activation g_f and conjugate f*.
NAIVE_ACTIVATION_CONJUGATE = {
    "total_variation": (lambda v: 0.5 * np.tanh(v), lambda t: t),
    "kl": (lambda v: v, lambda t: np.exp(t - 1.0)),
    "reverse_kl": (lambda v: -np.exp(-v), lambda t: -1.0 - np.log(-t)),
    "pearson": (lambda v: v, lambda t: t**2 / 4.0 + t),
    "squared_hellinger": (lambda v: 1.0 - np.exp(-v), lambda t: t / (1.0 - t)),
    "jensen_shannon": (lambda v: np.log(2.0) - np.log(1.0 + np.exp(-v)), lambda t: -np.log(2.0 - np.exp(t))),
    "gan": (lambda v: -np.log(1.0 + np.exp(-v)), lambda t: -np.log(1.0 - np.exp(t))),
}

# Table 1: generator functions f(u), u > 0.
NAIVE_F = {
    "total_variation": lambda u: 0.5 * np.abs(u - 1.0),
    "kl": lambda u: u * np.log(u),
    "reverse_kl": lambda u: -np.log(u),
    "pearson": lambda u: (u - 1.0) ** 2,
    "squared_hellinger": lambda u: (np.sqrt(u) - 1.0) ** 2,
    "jensen_shannon": lambda u: -(u + 1.0) * np.log((1.0 + u) / 2.0) + u * np.log(u),
    "gan": lambda u: u * np.log(u) - (u + 1.0) * np.log(u + 1.0),
}


def _naive_f_gan(name):
    g, conj = NAIVE_ACTIVATION_CONJUGATE[name]
    return (
        lambda r, f: -(np.mean(g(r)) - np.mean(conj(g(f)))),
        lambda f: -np.mean(conj(g(f))),
    )


REFERENCE = {
    "minimax": (
        lambda r, f: -np.mean(np.log(_sigmoid(r))) - np.mean(np.log(1.0 - _sigmoid(f))),
        lambda f: np.mean(np.log(1.0 - _sigmoid(f))),
    ),
    "nonsaturating": (
        lambda r, f: -np.mean(np.log(_sigmoid(r))) - np.mean(np.log(1.0 - _sigmoid(f))),
        lambda f: -np.mean(np.log(_sigmoid(f))),
    ),
    "wasserstein": (lambda r, f: np.mean(f) - np.mean(r), lambda f: -np.mean(f)),
    "hinge": (
        lambda r, f: np.mean(np.maximum(0.0, 1.0 - r)) + np.mean(np.maximum(0.0, 1.0 + f)),
        lambda f: -np.mean(f),
    ),
    "least_squares": (
        lambda r, f: 0.5 * np.mean((r - 1.0) ** 2) + 0.5 * np.mean(f**2),
        lambda f: 0.5 * np.mean((f - 1.0) ** 2),
    ),
    **{f"f_{name}": _naive_f_gan(name) for name in NAIVE_F},
}

# Moderate logits, different shapes and values for real and fake so that a swapped argument shows.
REAL = np.array([[-2.5, -0.3, 0.0], [0.7, 1.9, 3.1]])
FAKE = np.array([-3.0, -1.2, 0.4, 2.2])


# ---------------------------------------------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------------------------------------------


def test_registry_names():
    assert set(losses.LOSSES) == {
        "minimax", "nonsaturating", "wasserstein", "hinge", "least_squares",
        "f_kl", "f_reverse_kl", "f_pearson", "f_squared_hellinger", "f_total_variation", "f_jensen_shannon",
        "f_gan",
    }  # fmt: skip
    assert set(losses.F_DIVERGENCES) == set(NAIVE_F)
    for name, divergence in losses.F_DIVERGENCES.items():
        assert divergence.name == name
    assert set(REFERENCE) == set(losses.LOSSES)


def test_registry_wiring():
    assert losses.LOSSES["minimax"] == (losses.minimax_discriminator_loss, losses.minimax_generator_loss)
    assert losses.LOSSES["nonsaturating"] == (losses.minimax_discriminator_loss, losses.nonsaturating_generator_loss)
    for loss in losses.LOSSES.values():
        assert isinstance(loss, losses.GanLoss)


# ---------------------------------------------------------------------------------------------------------------
# Values.
# ---------------------------------------------------------------------------------------------------------------


def test_optimal_discriminator_for_matching_distributions():
    # p_g = p_data: D* = 1/2 everywhere, i.e. logits 0, and V(D*, G) = -log 4 (Goodfellow et al., Theorem 1).
    zeros = jnp.zeros((8, 3))
    np.testing.assert_allclose(losses.minimax_discriminator_loss(zeros, zeros), LOG4, rtol=1e-6)
    np.testing.assert_allclose(losses.nonsaturating_generator_loss(zeros), LOG2, rtol=1e-6)
    np.testing.assert_allclose(losses.minimax_generator_loss(zeros), -LOG2, rtol=1e-6)
    # D = 1/2 is optimal: the gradient of D's loss vanishes there.
    grads = jax.grad(losses.minimax_discriminator_loss, argnums=(0, 1))(zeros, zeros)
    np.testing.assert_allclose(grads[0] + grads[1], 0.0, atol=1e-7)
    np.testing.assert_array_less(0.0, jnp.abs(grads[1]))  # each half alone is not stationary


def test_minimax_generator_is_minus_fake_part_of_discriminator_loss():
    real, fake = jnp.asarray(REAL), jnp.asarray(FAKE)
    d = losses.minimax_discriminator_loss(real, fake)
    np.testing.assert_allclose(d, losses.nonsaturating_generator_loss(real) - losses.minimax_generator_loss(fake),
                               rtol=1e-6)


@pytest.fixture(scope="module")
def float32_values():
    # All registered losses in one jitted function: one compilation instead of one per loss.
    @jax.jit
    def evaluate(real, fake):
        return {
            name: (loss.discriminator(real, fake), loss.generator(fake), loss.discriminator(fake, real))
            for name, loss in losses.LOSSES.items()
        }

    return evaluate(jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_values_against_numpy_reference(name, float32_values):
    # Also checks that every registered loss jits and returns a float32 scalar for float32 batches of any shape.
    ref_d, ref_g = REFERENCE[name]
    d, g, d_swapped = float32_values[name]
    chex.assert_shape([d, g, d_swapped], ())
    chex.assert_type([d, g, d_swapped], jnp.float32)
    np.testing.assert_allclose(d, ref_d(REAL, FAKE), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(g, ref_g(FAKE), rtol=2e-6, atol=1e-6)
    # Swapping the arguments must matter (catches a loss that ignores or mixes up real and fake).
    assert not np.isclose(ref_d(FAKE, REAL), ref_d(REAL, FAKE))
    np.testing.assert_allclose(d_swapped, ref_d(FAKE, REAL), rtol=2e-6, atol=1e-6)


def test_minimax_discriminator_optimum_is_jensen_shannon(x64):
    # Goodfellow et al., Theorem 1: with D*(x) = p(x) / (p(x) + q(x)), i.e. logit log(p/q),
    # -L_D = V(D*, G) = 2 JSD(P || Q) - log 4. Samples repeated in proportion to P and Q make means expectations.
    p, q = np.array([1, 2, 3, 4]) / 10, np.array([4, 3, 2, 1]) / 10
    m = (p + q) / 2
    jsd = 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))
    logit = np.log(p / q)
    real, fake = np.repeat(logit, np.round(10 * p).astype(int)), np.repeat(logit, np.round(10 * q).astype(int))
    np.testing.assert_allclose(-losses.minimax_discriminator_loss(real, fake), 2 * jsd - LOG4, rtol=1e-12)


def test_f_gan_special_cases_reduce_to_minimax():
    real, fake = jnp.asarray(REAL), jnp.asarray(FAKE)
    gan, js = losses.LOSSES["f_gan"], losses.LOSSES["f_jensen_shannon"]
    minimax_d = losses.minimax_discriminator_loss(real, fake)
    # GAN divergence: F = E_P log D + E_Q log(1 - D), exactly the minimax value function.
    np.testing.assert_allclose(gan.discriminator(real, fake), minimax_d, rtol=1e-6)
    np.testing.assert_allclose(gan.generator(fake), losses.minimax_generator_loss(fake), rtol=1e-6)
    # Jensen-Shannon: g and f* each shift by log 2.
    np.testing.assert_allclose(js.discriminator(real, fake), minimax_d - LOG4, rtol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# f-divergences: Fenchel duality and tightness of the variational bound.
# ---------------------------------------------------------------------------------------------------------------


# Each fixture below evaluates all seven divergences in one jitted function (in float64): one compilation each.

U_TABLE = np.geomspace(1e-3, 1e3, 25)
V_SIMPLIFY = np.linspace(-5.0, 5.0, 41)


@pytest.fixture(scope="module")
def divergence_values():
    def evaluate(u, v):
        return {
            name: dict(
                f=d.f(u),
                f_one=d.f(jnp.ones((), u.dtype)),
                simplified=d.conjugate_of_activation(v),
                composed=d.conjugate(d.activation(v)),
                activation=d.activation(v),
            )
            for name, d in losses.F_DIVERGENCES.items()
        }

    with _enable_x64():
        return jax.tree.map(np.asarray, jax.jit(evaluate)(U_TABLE, V_SIMPLIFY))


@pytest.mark.parametrize("name", F_NAMES)
def test_f_matches_table_1(name, divergence_values):
    np.testing.assert_allclose(divergence_values[name]["f"], NAIVE_F[name](U_TABLE), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", F_NAMES)
def test_f_at_one(name, divergence_values):
    # f(1) = 0 makes D_f(P || P) = 0; the "GAN divergence" of Nowozin et al. is 2 JSD - log 4 instead.
    np.testing.assert_allclose(divergence_values[name]["f_one"], -LOG4 if name == "gan" else 0.0, atol=1e-15)


@pytest.mark.parametrize("name", F_NAMES)
def test_conjugate_of_activation_simplification(name, divergence_values):
    out = divergence_values[name]
    np.testing.assert_allclose(out["simplified"], out["composed"], rtol=1e-10, atol=1e-12)
    g, conj = NAIVE_ACTIVATION_CONJUGATE[name]
    np.testing.assert_allclose(out["simplified"], conj(g(V_SIMPLIFY)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["activation"], g(V_SIMPLIFY), rtol=1e-12, atol=1e-12)


U_DENSE = np.unique(np.append(np.geomspace(1e-6, 50.0, 300_001), 1.0))
V_SUP = np.linspace(-1.5, 1.5, 7)


@pytest.fixture(scope="module")
def supremum_values():
    def evaluate(u, v):
        return {
            name: (d.activation(v), d.f(u), d.conjugate(d.activation(v))) for name, d in losses.F_DIVERGENCES.items()
        }

    with _enable_x64():
        return jax.tree.map(np.asarray, jax.jit(evaluate)(U_DENSE, V_SUP))


@pytest.mark.parametrize("name", F_NAMES)
def test_conjugate_is_supremum(name, supremum_values):
    # f*(t) = sup_{u > 0} (u t - f(u)), by brute force over a dense grid of u, at t = g_f(v) (inside dom f*).
    t, f_u, conj_t = supremum_values[name]
    objective = U_DENSE[None, :] * t[:, None] - f_u[None, :]
    best = objective.argmax(axis=1)
    assert np.all((best > 0) & (best < len(U_DENSE) - 1)), "maximiser on the grid boundary: vacuous check"
    np.testing.assert_allclose(conj_t, objective.max(axis=1), rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(conj_t, NAIVE_ACTIVATION_CONJUGATE[name][1](t), rtol=1e-12, atol=1e-12)


def _log1mexp_reference(x):
    with np.errstate(divide="ignore"):  # np.where evaluates both branches
        return np.where(x > -np.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def test_log_one_minus_exp_conjugates_accurate_at_domain_edges(x64):
    # JS and GAN conjugates contain log(1 - exp(x)), x < 0; written naively, both ends lose all digits: near
    # x = 0 (t at the edge of dom f*, where a saturated critic sits) and for x << 0. The references use numpy's
    # expm1 / log1p; f*'(t) = e^x / (1 - e^x) for both must come out finite, not nan.
    x_gan = np.array([-1e-20, -1e-14, -1e-6, -0.3, -2.0, -50.0, -700.0])
    t_js = np.array([-1e-6, -0.3, -2.0, -50.0, -700.0]) + LOG2
    x_js = t_js - LOG2  # what t - log 2 really is in float64
    for name, t, x, offset in [("gan", x_gan, x_gan, 0.0), ("jensen_shannon", t_js, x_js, LOG2)]:
        conjugate = losses.F_DIVERGENCES[name].conjugate
        value, slope = jax.jit(lambda t: (conjugate(t), jax.vmap(jax.grad(conjugate))(t)))(t)
        np.testing.assert_allclose(value, -offset - _log1mexp_reference(x), rtol=1e-12, atol=0, err_msg=name)
        np.testing.assert_allclose(slope, np.exp(x) / -np.expm1(x), rtol=1e-6, atol=0, err_msg=name)


def test_squared_hellinger_relative_accuracy_near_zero(x64):
    # g(v) = 1 - exp(-v) and f*(g(v)) = exp(v) - 1 are both ~ v for small v; expm1 keeps every digit.
    divergence = losses.F_DIVERGENCES["squared_hellinger"]
    v = np.array([-1e-12, 1e-15, 1e-12])
    np.testing.assert_allclose(divergence.activation(v), v, rtol=1e-9)
    np.testing.assert_allclose(divergence.conjugate_of_activation(v), v, rtol=1e-9)


U_YOUNG = np.geomspace(1e-3, 1e3, 61)
V_YOUNG = np.linspace(-4.0, 4.0, 41)


@pytest.fixture(scope="module")
def young_values():
    def one(d, u, v):
        t = d.activation(v)
        u_star = jax.vmap(jax.grad(d.conjugate))(t)  # (f*)'(t)
        return t, d.f(u), d.conjugate(t), u_star, d.f(u_star)

    with _enable_x64():
        evaluate = jax.jit(lambda u, v: {name: one(d, u, v) for name, d in losses.F_DIVERGENCES.items()})
        return jax.tree.map(np.asarray, evaluate(U_YOUNG, V_YOUNG))


@pytest.mark.parametrize("name", F_NAMES)
def test_fenchel_young(name, young_values):
    t, f_u, conj_t, u_star, f_u_star = young_values[name]
    u = U_YOUNG
    # f(u) + f*(t) >= u t for all u, t ...
    gap = f_u[:, None] + conj_t[None, :] - u[:, None] * t[None, :]
    assert gap.min() >= -1e-9 * (1.0 + np.abs(u[:, None] * t[None, :])).max()
    # ... with equality at u = (f*)'(t).
    np.testing.assert_allclose(f_u_star + conj_t, u_star * t, rtol=1e-9, atol=1e-9)


# Two discrete distributions with p != q everywhere (f'(1) of total variation is not unique).
P = np.array([1, 2, 3, 4]) / 10
Q = np.array([4, 3, 2, 1]) / 10
N_REAL, N_FAKE = np.round(10 * P).astype(int), np.round(10 * Q).astype(int)

# Logit v* with g_f(v*) = f'(u), u = p/q: the optimal critic T* = f'(p/q), inverted by hand from Table 2.
OPTIMAL_LOGIT = {
    "total_variation": lambda u: np.where(u > 1, np.inf, -np.inf),  # f'(u) = sign(u - 1)/2 = tanh(±inf)/2
    "kl": lambda u: 1.0 + np.log(u),  # f'(u) = 1 + log u = v
    "reverse_kl": lambda u: np.log(u),  # f'(u) = -1/u = -exp(-v)
    "pearson": lambda u: 2.0 * (u - 1.0),  # f'(u) = 2(u - 1) = v
    "squared_hellinger": lambda u: 0.5 * np.log(u),  # f'(u) = 1 - 1/sqrt(u) = 1 - exp(-v)
    "jensen_shannon": lambda u: np.log(u),  # f'(u) = log(2u / (1 + u)) = log(2 sigmoid(v))
    "gan": lambda u: np.log(u),  # f'(u) = log(u / (1 + u)) = log sigmoid(v)
}


def _optimal_and_perturbed_logits(name):
    v = OPTIMAL_LOGIT[name](P / Q)
    # Any other critic gives a lower bound: perturbed logits (for total variation moved off ±inf too).
    delta = np.random.default_rng(0).normal(size=(5, len(v)))
    return v, np.where(np.isfinite(v), v + delta, delta)


@pytest.fixture(scope="module")
def bound_values():
    def one(d, u, v, perturbed):
        # Samples repeated in proportion to P and Q, so that the loss's means are the weighted sums.
        loss = lambda v: losses.f_gan_discriminator_loss(jnp.repeat(v, N_REAL), jnp.repeat(v, N_FAKE), d)
        return dict(
            activation=d.activation(v),
            f_prime=jax.vmap(jax.grad(d.f))(u),
            conjugate=d.conjugate(d.activation(v)),
            conjugate_of_activation=d.conjugate_of_activation(v),
            loss=loss(v),
            perturbed_loss=jax.vmap(loss)(perturbed),
        )

    logits = {name: _optimal_and_perturbed_logits(name) for name in F_NAMES}
    with _enable_x64():
        evaluate = jax.jit(
            lambda u, logits: {name: one(d, u, *logits[name]) for name, d in losses.F_DIVERGENCES.items()}
        )
        return jax.tree.map(np.asarray, evaluate(P / Q, logits))


@pytest.mark.parametrize("name", F_NAMES)
def test_bound_is_tight_at_optimal_critic(name, bound_values):
    out = bound_values[name]
    # The hand inversion is right: g_f(v*) = f'(p/q), with f' by autodiff of f.
    np.testing.assert_allclose(out["activation"], out["f_prime"], rtol=1e-12, atol=1e-12)

    true_divergence = np.sum(Q * NAIVE_F[name](P / Q))
    # F(T*) = E_P[g(v*)] - E_Q[f*(g(v*))], through the conjugate itself and through the simplified composition.
    bound = np.sum(P * out["activation"]) - np.sum(Q * out["conjugate"])
    np.testing.assert_allclose(bound, true_divergence, rtol=1e-12, atol=1e-12)
    bound = np.sum(P * out["activation"]) - np.sum(Q * out["conjugate_of_activation"])
    np.testing.assert_allclose(bound, true_divergence, rtol=1e-12, atol=1e-12)
    # Through the loss.
    np.testing.assert_allclose(-out["loss"], true_divergence, rtol=1e-12, atol=1e-12)
    # D's loss can only go up away from the optimal critic.
    assert np.all(-out["perturbed_loss"] < true_divergence)


# ---------------------------------------------------------------------------------------------------------------
# Numerical stability and gradients.
# ---------------------------------------------------------------------------------------------------------------


def _values_and_gradients(loss, logits):
    d, (d_real, d_fake) = jax.value_and_grad(loss.discriminator, argnums=(0, 1))(logits, logits)
    g, g_fake = jax.value_and_grad(loss.generator)(logits)
    return d, d_real, d_fake, g, g_fake


def _extreme_values(dtype, bounds):
    """Value and gradients of every loss with every logit in [-bound, bound] both as real and fake."""
    grids = {bound: jnp.linspace(-bound, bound, 201, dtype=dtype) for bound in bounds}
    evaluate = jax.jit(lambda grids: {
        bound: {name: _values_and_gradients(loss, x) for name, loss in losses.LOSSES.items()}
        for bound, x in grids.items()
    })
    return jax.tree.map(np.asarray, evaluate(grids))


@pytest.fixture(scope="module")
def extreme_float32():
    return _extreme_values(jnp.float32, (80.0, 100.0))


@pytest.fixture(scope="module")
def extreme_float64():
    with _enable_x64():
        return _extreme_values(jnp.float64, (100.0,))[100.0]


def _assert_finite(outputs, dtype):
    for x in outputs:
        chex.assert_tree_all_finite(x)
        assert x.dtype == dtype


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_finite_for_extreme_logits_float32(name, extreme_float32):
    # For losses ~exp(|v|) the float32 range ends at about |v| = 88 (see the test below).
    _assert_finite(extreme_float32[80.0 if name in EXPONENTIAL_LOSSES else 100.0][name], np.float32)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_finite_for_extreme_logits_float64(name, extreme_float64):
    _assert_finite(extreme_float64[name], np.float64)


@pytest.mark.parametrize("name", sorted(EXPONENTIAL_LOSSES))
def test_exponential_losses_overflow_to_inf_not_nan(name, extreme_float32):
    d, *rest = extreme_float32[100.0][name]
    assert d == np.inf
    for x in rest:
        assert not np.any(np.isnan(x))


def test_sigmoid_losses_accurate_at_extreme_logits():
    # log(sigmoid(v)) would give -inf here in float32; softplus gives the asymptote -log sigmoid(v) ~ -v.
    big = jnp.full((3,), 100.0, jnp.float32)
    np.testing.assert_allclose(losses.minimax_discriminator_loss(-big, big), 200.0, rtol=1e-6)
    np.testing.assert_allclose(losses.nonsaturating_generator_loss(-big), 100.0, rtol=1e-6)
    np.testing.assert_allclose(losses.minimax_generator_loss(big), -100.0, rtol=1e-6)
    np.testing.assert_allclose(losses.minimax_discriminator_loss(big, -big), 0.0, atol=1e-30)
    np.testing.assert_allclose(losses.LOSSES["f_jensen_shannon"].discriminator(-big, big), 200.0 - LOG4, rtol=1e-6)


# Points at least 0.1 away from the hinge kinks at real = 1 and fake = -1.
GRAD_REAL = np.array([-2.3, -0.7, 0.4, 1.6, 2.9])
GRAD_FAKE = np.array([-2.6, -1.8, -0.3, 0.2, 0.9, 2.2])


@pytest.fixture(scope="module")
def gradients_float64():
    """{name: (autodiff gradients, central differences)} for dL_D/d real, dL_D/d fake and dL_G/d fake."""
    with _enable_x64():
        # Two compilations in all: autodiff for every loss, and values for every loss (called at each shifted point).
        autodiff = jax.jit(lambda r, f: {
            name: (*jax.grad(loss.discriminator, argnums=(0, 1))(r, f), jax.grad(loss.generator)(f))
            for name, loss in losses.LOSSES.items()
        })(GRAD_REAL, GRAD_FAKE)
        values = jax.jit(lambda r, f: {
            name: (loss.discriminator(r, f), loss.generator(f)) for name, loss in losses.LOSSES.items()
        })
        h = 1e-5
        numeric = {name: (np.zeros_like(GRAD_REAL), np.zeros_like(GRAD_FAKE), np.zeros_like(GRAD_FAKE))
                   for name in losses.LOSSES}
        for i in range(GRAD_REAL.size):
            step = h * np.eye(GRAD_REAL.size)[i]
            plus, minus = values(GRAD_REAL + step, GRAD_FAKE), values(GRAD_REAL - step, GRAD_FAKE)
            for name in losses.LOSSES:
                numeric[name][0][i] = (plus[name][0] - minus[name][0]) / (2 * h)
        for i in range(GRAD_FAKE.size):
            step = h * np.eye(GRAD_FAKE.size)[i]
            plus, minus = values(GRAD_REAL, GRAD_FAKE + step), values(GRAD_REAL, GRAD_FAKE - step)
            for name in losses.LOSSES:
                numeric[name][1][i] = (plus[name][0] - minus[name][0]) / (2 * h)
                numeric[name][2][i] = (plus[name][1] - minus[name][1]) / (2 * h)
        return {name: (tuple(map(np.asarray, autodiff[name])), numeric[name]) for name in losses.LOSSES}


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_gradients_match_finite_differences(name, gradients_float64):
    autodiff, numeric = gradients_float64[name]
    for a, n in zip(autodiff, numeric):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-9)
    assert np.any(np.abs(autodiff[1]) > 1e-3)  # not trivially zero


# ---------------------------------------------------------------------------------------------------------------
# get_loss.
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_get_loss_known(name):
    assert losses.get_loss(name) is losses.LOSSES[name]


@pytest.mark.parametrize(
    "name, suggestion",
    [("minmax", "minimax"), ("least-squares", "least_squares"), ("HINGE", "hinge"), ("f_jensen", "f_jensen_shannon")],
)
def test_get_loss_did_you_mean(name, suggestion):
    with pytest.raises(ValueError) as info:
        losses.get_loss(name)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"unknown loss {name!r}; allowed: ")
    assert message.endswith(f"(did you mean {suggestion!r}?)")
    for known in losses.LOSSES:
        assert known in message


def test_get_loss_no_close_match():
    with pytest.raises(ValueError, match=r"^unknown loss 'qqqq'; allowed: ") as info:
        losses.get_loss("qqqq")
    assert "did you mean" not in str(info.value)
    assert str(info.value).endswith("wasserstein")
