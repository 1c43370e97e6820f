"""Tests for `jaxgan.data.mixtures`: mode placement, sampling statistics and the named constructor."""

from __future__ import annotations

import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.data.mixtures import Mixture, grid_means, make_mixture, ring_means, sample_mixture

# Compiled once per shape: far cheaper than eager op-by-op dispatch for the large statistical samples.
_sample = jax.jit(sample_mixture, static_argnums=3)


# ---------------------------------------------------------------------------------------------------------------
# Means.


@pytest.mark.parametrize("num_modes,radius", [(8, 2.0), (5, 1.5), (1, 3.0)])
def test_ring_means_on_circle_and_equally_spaced(num_modes, radius):
    means = np.asarray(ring_means(num_modes, radius), dtype=np.float64)
    chex.assert_shape(means, (num_modes, 2))
    np.testing.assert_allclose(np.linalg.norm(means, axis=-1), radius, rtol=1e-6)
    # Mode i at angle 2 pi i / M: mode 0 on the positive x axis, then counter-clockwise steps of 2 pi / M.
    angles = np.mod(np.arctan2(means[:, 1], means[:, 0]), 2 * np.pi)
    np.testing.assert_allclose(angles, 2 * np.pi * np.arange(num_modes) / num_modes, atol=1e-5)


def test_ring_means_default_is_eight_modes_of_radius_two():
    means = np.asarray(ring_means())
    chex.assert_shape(means, (8, 2))
    np.testing.assert_allclose(means[0], [2.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(means[2], [0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(means[1], [math.sqrt(2.0), math.sqrt(2.0)], atol=1e-6)
    # Neighbouring modes are a chord 2 r sin(pi / M) apart.
    chord = np.linalg.norm(means - np.roll(means, 1, axis=0), axis=-1)
    np.testing.assert_allclose(chord, 2 * 2.0 * math.sin(math.pi / 8), rtol=1e-5)


def test_grid_means_25_spacing_2_is_the_expected_set():
    means = np.asarray(grid_means(25, 2.0))
    chex.assert_shape(means, (25, 2))
    expected = set(itertools.product([-4.0, -2.0, 0.0, 2.0, 4.0], repeat=2))
    got = {(float(x), float(y)) for x, y in np.round(means, 6)}
    assert got == expected
    np.testing.assert_allclose(means.mean(axis=0), [0.0, 0.0], atol=1e-6)


def test_grid_means_centred_for_even_side():
    # k = 4: coordinates spacing * {-1.5, -0.5, 0.5, 1.5}.
    means = np.asarray(grid_means(16, 1.0))
    expected = set(itertools.product([-1.5, -0.5, 0.5, 1.5], repeat=2))
    assert {(float(x), float(y)) for x, y in means} == expected


@pytest.mark.parametrize("num_modes", [24, 2, 0, -4])
def test_grid_means_rejects_non_square(num_modes):
    with pytest.raises(ValueError, match=rf"perfect square.*got {num_modes}"):
        grid_means(num_modes)


def test_grid_means_error_suggests_nearest_squares():
    with pytest.raises(ValueError, match="nearest valid values: 16, 25"):
        grid_means(24)


def test_ring_means_rejects_no_modes():
    with pytest.raises(ValueError, match="num_modes >= 1"):
        ring_means(0)


# ---------------------------------------------------------------------------------------------------------------
# Sampling.


def _nearest(samples: np.ndarray, means: np.ndarray) -> np.ndarray:
    return np.argmin(((samples[:, None, :] - means[None, :, :]) ** 2).sum(-1), axis=-1)


def test_sample_mixture_frequencies_and_std():
    num_modes, radius, std, n = 8, 2.0, 0.1, 200_000
    means = np.asarray(ring_means(num_modes, radius), dtype=np.float64)
    samples = np.asarray(_sample(jax.random.PRNGKey(0), jnp.asarray(means, jnp.float32), std, n), dtype=np.float64)
    chex.assert_shape(samples, (n, 2))
    # Neighbours are 2 r sin(pi/8) = 1.53 apart, so a sample leaves its mode's Voronoi cell only beyond
    # 0.765 = 7.65 std: P < 1e-13, nearest-mode assignment recovers the component exactly.
    labels = _nearest(samples, means)

    # Per-mode frequency: binomial, standard error sqrt(p (1 - p) / n) = 7.4e-4 for p = 1/8; allow 5 SE.
    freq = np.bincount(labels, minlength=num_modes) / n
    se_freq = math.sqrt((1 / num_modes) * (1 - 1 / num_modes) / n)
    np.testing.assert_allclose(freq, 1 / num_modes, atol=5 * se_freq)

    for k in range(num_modes):
        resid = samples[labels == k] - means[k]
        n_k = resid.shape[0]
        # Mean of n_k Gaussians: SE std / sqrt(n_k) (~6.3e-4); allow 5 SE.
        np.testing.assert_allclose(resid.mean(axis=0), 0.0, atol=5 * std / math.sqrt(n_k))
        # Sample std of Gaussians: relative SE 1 / sqrt(2 n_k) (~0.45%); allow 5 SE, per coordinate (isotropic).
        np.testing.assert_allclose(resid.std(axis=0, ddof=1), std, rtol=5 / math.sqrt(2 * n_k))


def test_sample_mixture_covers_grid_uniformly():
    num_modes, std, n = 25, 0.05, 200_000
    means = np.asarray(grid_means(num_modes, 2.0), dtype=np.float64)
    samples = np.asarray(_sample(jax.random.PRNGKey(1), jnp.asarray(means, jnp.float32), std, n), dtype=np.float64)
    # Cells are 2 wide: leaving one needs a 1.0 = 20 std excursion.
    freq = np.bincount(_nearest(samples, means), minlength=num_modes) / n
    se_freq = math.sqrt((1 / num_modes) * (1 - 1 / num_modes) / n)  # 4.4e-4
    np.testing.assert_allclose(freq, 1 / num_modes, atol=5 * se_freq)


def test_sample_mixture_is_deterministic_given_key():
    means = ring_means()
    a = sample_mixture(jax.random.PRNGKey(3), means, 0.02, 512)
    b = sample_mixture(jax.random.PRNGKey(3), means, 0.02, 512)
    c = sample_mixture(jax.random.PRNGKey(4), means, 0.02, 512)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(c))


def test_sample_mixture_jit_matches_eager_and_keeps_dtype():
    means = ring_means()
    key = jax.random.PRNGKey(5)
    eager = sample_mixture(key, means, 0.02, 512)
    jitted = _sample(key, means, 0.02, 512)
    chex.assert_type(eager, means.dtype)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-6, atol=1e-6)


def test_sample_mixture_zero_std_returns_means():
    means = np.asarray(grid_means(9, 1.0))
    samples = np.asarray(_sample(jax.random.PRNGKey(6), means, 0.0, 512))
    # Every sample is exactly one of the means.
    assert np.all(np.isclose(samples[:, None, :], means[None]).all(-1).any(-1))


# ---------------------------------------------------------------------------------------------------------------
# Mixture / make_mixture.


def test_make_mixture_ring_and_grid():
    ring = make_mixture("ring", 8, 2.0, 0.02)
    assert isinstance(ring, Mixture)
    np.testing.assert_allclose(np.asarray(ring.means), np.asarray(ring_means(8, 2.0)))
    assert ring.std == 0.02 and ring.num_modes == 8

    grid = make_mixture("grid", 25, 2.0, 0.05)
    np.testing.assert_allclose(np.asarray(grid.means), np.asarray(grid_means(25, 2.0)))
    assert grid.std == 0.05 and grid.num_modes == 25


def test_mixture_sample_matches_sample_mixture():
    mix = make_mixture("ring", 8, 2.0, 0.02)
    key = jax.random.PRNGKey(7)
    np.testing.assert_array_equal(
        np.asarray(mix.sample(key, 512)), np.asarray(sample_mixture(key, mix.means, mix.std, 512))
    )


def test_mixture_is_a_pytree_usable_under_jit():
    mix = make_mixture("grid", 25, 2.0, 0.05)
    key = jax.random.PRNGKey(8)
    out = jax.jit(lambda m, k: m.sample(k, 512))(mix, key)
    chex.assert_shape(out, (512, 2))
    np.testing.assert_allclose(np.asarray(out), np.asarray(_sample(key, mix.means, mix.std, 512)), rtol=1e-6)


def test_make_mixture_unknown_name_suggests_close_match():
    with pytest.raises(ValueError) as err:
        make_mixture("rng", 8, 2.0, 0.02)
    assert str(err.value) == "unknown mixture 'rng'; allowed: grid, ring (did you mean 'ring'?)"


def test_make_mixture_unknown_name_without_close_match():
    with pytest.raises(ValueError) as err:
        make_mixture("spiral", 8, 2.0, 0.02)
    assert str(err.value) == "unknown mixture 'spiral'; allowed: grid, ring"


def test_make_mixture_grid_non_square_raises():
    with pytest.raises(ValueError, match="perfect square"):
        make_mixture("grid", 8, 2.0, 0.02)
