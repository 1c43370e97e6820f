"""Tests for jaxgan.energy (EBGAN and BEGAN losses).

Expected values are hand-computed or numpy (float64) transcriptions of the papers' formulas, never the module's
own output.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import energy


def _enable_x64():
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older jax
        from jax.experimental import enable_x64 as enable
    return enable(True)


REAL = np.array([0.2, 0.5, 1.3])
FAKE = np.array([0.1, 2.5, 0.9, 3.0])  # a different batch size on purpose


def _pull_away_reference(s: np.ndarray) -> float:
    """f_PT as printed, with a double loop over i != j (zero rows count as cosine 0)."""
    s = s.reshape(len(s), -1).astype(np.float64)
    n = len(s)
    total = 0.0
    for i, j in itertools.permutations(range(n), 2):
        norms = np.linalg.norm(s[i]) * np.linalg.norm(s[j])
        total += 0.0 if norms == 0 else (s[i] @ s[j] / norms) ** 2
    return total / (n * (n - 1))


# ---------------------------------------------------------------------------------------------------------------
# EBGAN.
# ---------------------------------------------------------------------------------------------------------------


def test_ebgan_discriminator_loss_by_hand():
    # mean real = 2/3; hinge max(0, 2 - fake) = [1.9, 0, 1.1, 0], mean 0.75.
    loss = energy.ebgan_discriminator_loss(jnp.asarray(REAL), jnp.asarray(FAKE), 2.0)
    np.testing.assert_allclose(loss, 2.0 / 3.0 + 0.75, rtol=1e-6)


def test_ebgan_margin_hinge_boundary():
    fake = jnp.array([0.5, 1.999, 2.001, 7.0])
    grad_real, grad_fake = jax.grad(energy.ebgan_discriminator_loss, argnums=(0, 1))(jnp.asarray(REAL), fake, 2.0)
    # Below the margin each fake pushes its energy up with weight 1/N; at or beyond it nothing is left.
    np.testing.assert_allclose(grad_fake, [-0.25, -0.25, 0.0, 0.0])
    np.testing.assert_allclose(grad_real, np.full(3, 1.0 / 3.0), rtol=1e-6)
    # All fakes beyond the margin: the loss is the real energy alone.
    loss = energy.ebgan_discriminator_loss(jnp.asarray(REAL), jnp.array([2.0, 5.0]), 2.0)
    np.testing.assert_allclose(loss, 2.0 / 3.0, rtol=1e-6)


def test_ebgan_generator_loss_is_mean_fake_energy():
    np.testing.assert_allclose(energy.ebgan_generator_loss(jnp.asarray(FAKE)), 6.5 / 4.0, rtol=1e-6)


def test_pull_away_term_closed_forms():
    orthogonal = jnp.array([[2.0, 0.0, 0.0], [0.0, -3.0, 0.0], [0.0, 0.0, 0.5]])
    np.testing.assert_allclose(energy.pull_away_term(orthogonal), 0.0, atol=1e-7)
    identical = jnp.tile(jnp.array([[0.3, -1.0, 2.0]]), (4, 1))
    np.testing.assert_allclose(energy.pull_away_term(identical), 1.0, rtol=1e-6)
    # Parallel with any scale and sign: cosine +-1, squared 1.
    parallel = jnp.array([[1.0, 2.0], [-3.0, -6.0], [0.5, 1.0]])
    np.testing.assert_allclose(energy.pull_away_term(parallel), 1.0, rtol=1e-6)
    # N = 2: cos^2 of the angle; 45 degrees -> 1/2.
    np.testing.assert_allclose(energy.pull_away_term(jnp.array([[1.0, 0.0], [1.0, 1.0]])), 0.5, rtol=1e-6)


def test_pull_away_term_matches_reference_and_is_scale_invariant():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(5, 2, 3))  # non-batch axes are flattened
    np.testing.assert_allclose(energy.pull_away_term(jnp.asarray(s, jnp.float32)), _pull_away_reference(s), rtol=1e-5)
    scales = np.array([0.01, -2.0, 7.0, 1.0, -0.3]).reshape(5, 1, 1)
    np.testing.assert_allclose(
        energy.pull_away_term(jnp.asarray(s * scales, jnp.float32)), _pull_away_reference(s), rtol=1e-5
    )


def test_pull_away_term_zero_embedding_is_finite_in_value_and_gradient():
    s = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [2.0, 1.0, 1.0]])
    value, grad = jax.value_and_grad(energy.pull_away_term)(jnp.asarray(s, jnp.float32))
    np.testing.assert_allclose(value, _pull_away_reference(s), rtol=1e-6)
    assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[1], np.zeros(3))
    # All zero: 0, with a zero gradient.
    value, grad = jax.value_and_grad(energy.pull_away_term)(jnp.zeros((3, 4)))
    assert value == 0.0 and np.all(grad == 0.0)


def test_pull_away_term_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(4, 3))
    with _enable_x64():
        grad = np.asarray(jax.grad(energy.pull_away_term)(jnp.asarray(s, jnp.float64)))
        assert grad.dtype == np.float64
        h = 1e-6
        numeric = np.zeros_like(s)
        for index in np.ndindex(*s.shape):
            step = np.zeros_like(s)
            step[index] = h
            numeric[index] = (_pull_away_reference(s + step) - _pull_away_reference(s - step)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    # Scale invariance means the gradient is orthogonal to each row.
    np.testing.assert_allclose(np.sum(grad * s, axis=1), np.zeros(4), atol=1e-12)


def test_pull_away_term_jits_and_rejects_single_embedding():
    s = jnp.asarray(np.random.default_rng(2).normal(size=(3, 5)), jnp.float32)
    np.testing.assert_allclose(jax.jit(energy.pull_away_term)(s), energy.pull_away_term(s), rtol=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        energy.pull_away_term(jnp.ones((1, 4)))


# ---------------------------------------------------------------------------------------------------------------
# BEGAN.
# ---------------------------------------------------------------------------------------------------------------


def test_began_losses_by_hand():
    # mean real 2/3, mean fake 1.625.
    np.testing.assert_allclose(
        energy.began_discriminator_loss(jnp.asarray(REAL), jnp.asarray(FAKE), 0.4), 2.0 / 3.0 - 0.4 * 1.625, rtol=1e-6
    )
    np.testing.assert_allclose(energy.began_generator_loss(jnp.asarray(FAKE)), 1.625, rtol=1e-6)


def test_began_discriminator_loss_holds_k_constant():
    real, fake = jnp.asarray(REAL), jnp.asarray(FAKE)
    grad_k = jax.grad(energy.began_discriminator_loss, argnums=2)(real, fake, jnp.float32(0.3))
    assert grad_k == 0.0
    grad_fake = jax.grad(energy.began_discriminator_loss, argnums=1)(real, fake, jnp.float32(0.3))
    np.testing.assert_allclose(grad_fake, np.full(4, -0.3 / 4), rtol=1e-6)


def test_began_update_k_one_step_and_clipping():
    real, fake = jnp.asarray(REAL), jnp.asarray(FAKE)
    # k + lambda (gamma * 2/3 - 1.625) with gamma 0.5, lambda 0.01: 0.5 + 0.01 * (1/3 - 1.625).
    np.testing.assert_allclose(
        energy.began_update_k(0.5, real, fake, 0.5, 0.01), 0.5 + 0.01 * (1.0 / 3.0 - 1.625), rtol=1e-6
    )
    # Large steps either way stay in [0, 1].
    assert energy.began_update_k(0.5, real, fake, 0.5, 100.0) == 0.0
    assert energy.began_update_k(0.5, real, jnp.zeros(2), 1.0, 100.0) == 1.0
    assert energy.began_update_k(0.0, real, fake, 0.5, 0.001) == 0.0  # k_0 = 0 with fakes too energetic
    # A state update, not a loss: no gradient flows through it.
    grads = jax.grad(lambda r, f: energy.began_update_k(0.5, r, f, 0.5, 0.01), argnums=(0, 1))(real, fake)
    assert all(np.all(g == 0.0) for g in grads)


def test_began_convergence_closed_form_both_signs():
    real, fake = jnp.asarray(REAL), jnp.asarray(FAKE)
    # gamma 0.5: |1/3 - 1.625| = 1.291666...; gamma 1 with fake 0.1: |2/3 - 0.1|.
    np.testing.assert_allclose(energy.began_convergence(real, fake, 0.5), 2.0 / 3.0 + (1.625 - 1.0 / 3.0), rtol=1e-6)
    np.testing.assert_allclose(
        energy.began_convergence(real, jnp.array([0.1]), 1.0), 2.0 / 3.0 + (2.0 / 3.0 - 0.1), rtol=1e-6
    )
    # At equilibrium (mean fake = gamma * mean real) it is the real energy alone.
    np.testing.assert_allclose(energy.began_convergence(real, jnp.array([1.0 / 3.0]), 0.5), 2.0 / 3.0, rtol=1e-6)


def test_began_controller_matches_numpy_loop_under_jit():
    gamma, lam = 0.7, 0.05
    controller = energy.began_controller(gamma=gamma, lambda_k=lam, k0=0.2)
    k = controller.init()
    assert k.dtype == jnp.float32 and k == np.float32(0.2)
    update = jax.jit(controller.update)
    rng = np.random.default_rng(3)
    k_ref = 0.2
    for _ in range(6):
        real, fake = rng.uniform(0, 2, size=4), rng.uniform(0, 2, size=4)
        k, metrics = update(k, jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32))
        convergence_ref = real.mean() + abs(gamma * real.mean() - fake.mean())
        k_ref = min(max(k_ref + lam * (gamma * real.mean() - fake.mean()), 0.0), 1.0)
        np.testing.assert_allclose(k, k_ref, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(metrics["k"], k_ref, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(metrics["convergence"], convergence_ref, rtol=1e-5)
    assert set(metrics) == {"k", "convergence"}


def test_began_controller_defaults_and_validation():
    controller = energy.began_controller()
    assert controller.init() == 0.0
    k, _ = controller.update(controller.init(), jnp.array([1.0]), jnp.array([0.2]))
    np.testing.assert_allclose(k, 0.001 * (0.5 * 1.0 - 0.2), rtol=1e-6)  # gamma 0.5, lambda_k 0.001
    nan, inf = float("nan"), float("inf")
    for kwargs in ({"gamma": 1.5}, {"gamma": nan}, {"lambda_k": -1.0}, {"lambda_k": nan}, {"lambda_k": inf},
                   {"k0": 2.0}, {"k0": nan}):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            energy.began_controller(**kwargs)
