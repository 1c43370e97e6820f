"""Tests for `jaxgan.metrics.mixture.mixture_metrics` (VEEGAN / PacGAN mode-coverage protocol).

Expected values come from closed forms: KL(p || uniform) = sum_k p_k log(p_k M), which is 0 for a balanced
histogram, log M for a single occupied mode and log(M / 2) for two equally occupied modes. Means and samples
are built in numpy (float64) and cast, so the tests do not depend on `jaxgan.data`.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.metrics.mixture import mixture_metrics

# One compiled program per input shape is much cheaper than eager op-by-op dispatch; shapes are shared across
# tests so the cache is reused. Eager execution is checked against it in the jit tests below.
_metrics = jax.jit(mixture_metrics)


def _ring(num_modes: int = 8, radius: float = 2.0) -> np.ndarray:
    angles = 2 * np.pi * np.arange(num_modes) / num_modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)).astype(np.float32)


def _grid(side: int = 5, spacing: float = 2.0) -> np.ndarray:
    axis = spacing * (np.arange(side) - (side - 1) / 2)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2).astype(np.float32)


def _num_samples(means: np.ndarray) -> int:
    # Shared sample counts (64 for 8 modes, 100 for 25) so `_metrics` compiles once per mixture.
    return 64 if means.shape[0] == 8 else 100


def _check_types(out: dict, num_modes: int) -> None:
    assert set(out) == {"modes", "high_quality_fraction", "reverse_kl", "mode_counts"}
    chex.assert_shape([out["modes"], out["high_quality_fraction"], out["reverse_kl"]], ())
    chex.assert_shape(out["mode_counts"], (num_modes,))
    chex.assert_type([out["modes"], out["mode_counts"]], jnp.int32)
    chex.assert_type([out["high_quality_fraction"], out["reverse_kl"]], float)


@pytest.mark.parametrize("means", [_ring(8), _grid(5)], ids=["ring8", "grid25"])
def test_perfect_samples_equal_counts(means):
    num_modes = means.shape[0]
    reps = _num_samples(means) // num_modes
    samples = np.tile(means, (reps, 1))
    out = _metrics(samples, means, 0.02)
    _check_types(out, num_modes)
    assert int(out["modes"]) == num_modes
    assert float(out["high_quality_fraction"]) == 1.0
    np.testing.assert_array_equal(np.asarray(out["mode_counts"]), np.full(num_modes, reps))
    # p_k = 1 / M for all k: every term is (1/M) log 1 = 0, exactly.
    assert float(out["reverse_kl"]) == 0.0


def _mixture_samples(means: np.ndarray, std: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, means.shape[0], n)
    return (means[labels] + std * rng.standard_normal((n, 2))).astype(np.float32)


def test_samples_from_mixture_with_tiny_std():
    means, num_modes, n = _ring(8), 8, 8000
    # Noise of 1e-3 against an evaluation std of 0.02: the 3-sigma radius 0.06 is 60 noise stds, so all are HQ.
    samples = _mixture_samples(means, 1e-3, n, seed=0)
    out = _metrics(samples, means, 0.02)
    assert int(out["modes"]) == num_modes
    assert float(out["high_quality_fraction"]) == 1.0
    assert int(np.sum(np.asarray(out["mode_counts"]))) == n
    # Multinomial counts: 2 N KL is asymptotically chi^2_{M-1}, so E[KL] = (M - 1) / (2 N) = 4.4e-4; KL > 0.01
    # means chi^2_7 > 160, which has negligible probability.
    assert 0.0 <= float(out["reverse_kl"]) < 0.01
    # Consistency with the definition, from the reported counts.
    counts = np.asarray(out["mode_counts"], dtype=np.float64)
    p = counts / counts.sum()
    np.testing.assert_allclose(float(out["reverse_kl"]), np.sum(p * np.log(p * num_modes)), rtol=1e-4, atol=1e-7)


def test_high_quality_fraction_of_true_mixture_is_three_sigma_mass():
    means, std, n = _ring(8), 0.02, 8000
    out = _metrics(_mixture_samples(means, std, n, seed=1), means, std)
    # ||eps|| for a 2-D standard Gaussian is Rayleigh: P(||eps|| <= 3) = 1 - exp(-9/2) = 0.98889. The HQ fraction
    # is binomial with SE sqrt(0.0111 * 0.9889 / 8000) = 1.2e-3; allow 5 SE.
    se = math.sqrt(math.exp(-4.5) * (1 - math.exp(-4.5)) / n)
    np.testing.assert_allclose(float(out["high_quality_fraction"]), 1 - math.exp(-4.5), atol=5 * se)
    assert int(out["modes"]) == 8


@pytest.mark.parametrize("means", [_ring(8), _grid(5)], ids=["ring8", "grid25"])
def test_collapsed_to_one_mode(means):
    num_modes = means.shape[0]
    n = _num_samples(means)
    samples = np.repeat(means[3:4], n, axis=0)
    out = _metrics(samples, means, 0.05)
    assert int(out["modes"]) == 1
    assert float(out["high_quality_fraction"]) == 1.0
    expected_counts = np.zeros(num_modes, np.int32)
    expected_counts[3] = n
    np.testing.assert_array_equal(np.asarray(out["mode_counts"]), expected_counts)
    # p = e_3: KL = 1 * log(1 * M) = log M (equal up to float32 rounding).
    np.testing.assert_allclose(float(out["reverse_kl"]), math.log(num_modes), rtol=1e-6)


@pytest.mark.parametrize("means", [_ring(8), _grid(5)], ids=["ring8", "grid25"])
def test_half_mode_zero_half_mode_one(means):
    num_modes = means.shape[0]
    half = _num_samples(means) // 2
    samples = np.concatenate([np.repeat(means[0:1], half, axis=0), np.repeat(means[1:2], half, axis=0)])
    out = _metrics(samples, means, 0.05)
    assert int(out["modes"]) == 2
    assert float(out["high_quality_fraction"]) == 1.0
    # p = (1/2, 1/2, 0, ...): KL = 2 * (1/2) log(M / 2) = log(M / 2).
    np.testing.assert_allclose(float(out["reverse_kl"]), math.log(num_modes / 2), rtol=1e-6)


def test_unbalanced_histogram_closed_form():
    means = _ring(4, 1.0)
    samples = np.concatenate([np.repeat(means[0:1], 3, axis=0), means[2:3]])
    out = _metrics(samples, means, 0.1)
    np.testing.assert_array_equal(np.asarray(out["mode_counts"]), [3, 0, 1, 0])
    # p = (3/4, 0, 1/4, 0), M = 4: KL = 3/4 log 3 + 1/4 log 1 = (3/4) log 3.
    np.testing.assert_allclose(float(out["reverse_kl"]), 0.75 * math.log(3), rtol=1e-6)


@pytest.mark.parametrize("far", [[0.0, 0.0], [100.0, -100.0]])
def test_samples_far_from_all_modes(far):
    means = _ring(8)  # the origin is radius = 2 = 40 std away from every mode.
    samples = np.tile(np.asarray(far, np.float32), (64, 1))
    out = _metrics(samples, means, 0.05)
    _check_types(out, 8)
    assert int(out["modes"]) == 0
    assert float(out["high_quality_fraction"]) == 0.0
    np.testing.assert_array_equal(np.asarray(out["mode_counts"]), np.zeros(8))
    # No HQ sample: documented convention KL = log M (fully collapsed), not NaN.
    np.testing.assert_allclose(float(out["reverse_kl"]), math.log(8), rtol=1e-6)


def test_histogram_uses_only_high_quality_samples():
    means = _ring(8)
    # 48 HQ samples at mode 0; 16 samples near mode 5 but 0.5 = 10 std away: nearest is mode 5, not HQ.
    near5 = means[5] * (1 + 0.5 / 2.0)
    samples = np.concatenate([np.repeat(means[0:1], 48, axis=0), np.tile(near5, (16, 1))]).astype(np.float32)
    out = _metrics(samples, means, 0.05)
    assert int(out["modes"]) == 1
    np.testing.assert_allclose(float(out["high_quality_fraction"]), 48 / 64, rtol=1e-6)
    assert int(out["mode_counts"][5]) == 0
    np.testing.assert_allclose(float(out["reverse_kl"]), math.log(8), rtol=1e-6)


@pytest.mark.parametrize("angle", [0.0, 0.5 * np.pi, np.pi, 1.25 * np.pi])
@pytest.mark.parametrize("stds,is_hq", [(2.9, True), (3.1, False)])
def test_threshold_at_three_sigma(angle, stds, is_hq):
    means, std = _ring(8), 0.1
    # 3.1 std = 0.31 < 0.765, half the gap to the neighbours: mode 2 stays the nearest mode in any direction.
    offset = stds * std * np.array([np.cos(angle), np.sin(angle)])
    samples = (means[2] + offset)[None].astype(np.float32)
    out = _metrics(samples, means, std)
    assert float(out["high_quality_fraction"]) == float(is_hq)
    assert int(out["modes"]) == int(is_hq)
    assert int(out["mode_counts"][2]) == int(is_hq)


def test_threshold_stds_argument():
    means, std = _ring(8), 0.1
    samples = (means[0] + np.array([3.1 * std, 0.0]))[None].astype(np.float32)
    assert float(_metrics(samples, means, std)["high_quality_fraction"]) == 0.0
    assert float(_metrics(samples, means, std, threshold_stds=3.5)["high_quality_fraction"]) == 1.0


def test_jit_matches_eager():
    means, std, n = _ring(8), 0.05, 64
    rng = np.random.default_rng(1)
    # A mix of HQ samples (std-sized noise on modes 0..4) and off-mode ones (noise of 0.5).
    labels = rng.integers(0, 5, n)
    noise_scale = np.where(rng.random(n) < 0.7, std, 0.5)[:, None]
    samples = (means[labels] + noise_scale * rng.standard_normal((n, 2))).astype(np.float32)

    eager = mixture_metrics(samples, means, std)
    jitted = _metrics(jnp.asarray(samples), jnp.asarray(means), std)
    _check_types(eager, 8)
    _check_types(jitted, 8)
    assert 0 < int(eager["modes"]) <= 5
    assert 0.0 < float(eager["high_quality_fraction"]) < 1.0
    for name in ("modes", "mode_counts"):
        np.testing.assert_array_equal(np.asarray(jitted[name]), np.asarray(eager[name]))
    for name in ("high_quality_fraction", "reverse_kl"):
        np.testing.assert_allclose(np.asarray(jitted[name]), np.asarray(eager[name]), rtol=1e-6)


def test_jit_matches_eager_without_high_quality_samples():
    means = jnp.asarray(_ring(8))
    samples = jnp.zeros((64, 2))
    eager = mixture_metrics(samples, means, 0.05)
    jitted = _metrics(samples, means, 0.05)
    for out in (eager, jitted):
        np.testing.assert_allclose(float(out["reverse_kl"]), math.log(8), rtol=1e-6)
        assert int(out["modes"]) == 0
        assert float(out["high_quality_fraction"]) == 0.0


def test_shapes_that_would_broadcast_are_refused():
    means = jnp.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match=r"samples \[N, d\] and means \[M, d\]"):
        mixture_metrics(jnp.array([[0.0], [1.0], [2.0]]), means, 0.1)  # 1-D points: would broadcast to 3 modes
    with pytest.raises(ValueError, match=r"samples \[N, d\] and means \[M, d\]"):
        mixture_metrics(means, means[:, :1], 0.1)
    with pytest.raises(ValueError, match=r"samples \[N, d\] and means \[M, d\]"):
        mixture_metrics(means[0], means, 0.1)
