"""Tests for `jaxgan.metrics.memorization` and `jaxgan.plotting.plot_nearest_neighbours`.

References are float64 numpy brute force (all pairwise distances, `np.argmin`). The data-level checks use
scikit-learn's 8x8 digits (no two of its 1797 images are identical) split into train / held-out / fresh: copies of
training images must score 1, fresh images of the same distribution about `quantile`, noise 0. Functions are
jitted once at module level with their static arguments, and shapes are shared between tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest

from jaxgan.data.images import load_digits
from jaxgan.metrics.memorization import (
    MemorizationReport,
    memorization_report,
    nearest_neighbours,
)
from jaxgan.plotting import plot_nearest_neighbours

_nn = jax.jit(nearest_neighbours, static_argnames=("block_size",))
_report = jax.jit(memorization_report, static_argnames=("features_fn", "quantile", "block_size"))


def _brute_force(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """[N, M] float64 Euclidean distances by explicit differences."""
    q = np.asarray(queries, np.float64).reshape(len(queries), -1)
    r = np.asarray(references, np.float64).reshape(len(references), -1)
    return np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))


@pytest.fixture(scope="module")
def digits():
    """(train [1000], held_out [398], fresh [399]) float32 8x8x1 images in [0, 1]; held-out and fresh are a random
    split of the data set's test part, so they are exchangeable given the training set."""
    data = load_digits(num_train=1000)
    test = data.test_images[np.random.default_rng(0).permutation(len(data.test_images))]
    unit = lambda x: np.asarray(x, np.float32) / 255.0
    return unit(data.train_images), unit(test[:398]), unit(test[398:])


# ------------------------------------------------------------------------------------------- nearest_neighbours


@pytest.mark.parametrize("block_size", [1, 7, 64, 200, 4096])
def test_nearest_neighbours_matches_brute_force(block_size):
    # 7 does not divide M = 200 (a padded last block); 4096 > M (one block); 1 is one reference per scan step.
    rng = np.random.default_rng(1)
    queries = rng.normal(size=(50, 12)).astype(np.float32)
    references = rng.normal(size=(200, 12)).astype(np.float32) + 0.5
    distances, indices = _nn(queries, references, block_size=block_size)
    expected = _brute_force(queries, references)
    assert indices.dtype == jnp.int32 and distances.shape == (50,)
    np.testing.assert_array_equal(np.asarray(indices), expected.argmin(1))
    np.testing.assert_allclose(np.asarray(distances), expected.min(1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block_size", [3, 8])
def test_exact_ties_go_to_the_smallest_index(block_size):
    # Small integers with M = 8 references: the reference mean is a multiple of 1/8 and every product and sum is
    # exact in float32, so tied squared distances are computed exactly equal. Rows 1, 5 and 6 are duplicates
    # (in different blocks for block_size 3), and random integer queries give many further ties.
    rng = np.random.default_rng(2)
    references = rng.integers(0, 4, size=(8, 4)).astype(np.float32)
    references[5] = references[6] = references[1]
    queries = np.concatenate([references[[6, 5, 1]], rng.integers(0, 4, size=(40, 4))]).astype(np.float32)
    expected = _brute_force(queries, references)
    tied = (expected == expected.min(1, keepdims=True)).sum(1) > 1
    assert tied.sum() >= 10  # the data really exercise ties
    distances, indices = _nn(queries, references, block_size=block_size)
    np.testing.assert_array_equal(np.asarray(indices), expected.argmin(1))  # numpy's argmin: first minimum
    np.testing.assert_array_equal(np.asarray(indices)[:3], [1, 1, 1])
    np.testing.assert_allclose(np.asarray(distances), expected.min(1), atol=1e-6)


def test_images_are_flattened():
    rng = np.random.default_rng(3)
    queries = rng.uniform(size=(10, 4, 4, 2)).astype(np.float32)
    references = rng.uniform(size=(30, 4, 4, 2)).astype(np.float32)
    d_img, i_img = _nn(queries, references, block_size=7)
    d_flat, i_flat = _nn(queries.reshape(10, -1), references.reshape(30, -1), block_size=7)
    np.testing.assert_array_equal(np.asarray(i_img), np.asarray(i_flat))
    np.testing.assert_allclose(np.asarray(d_img), np.asarray(d_flat), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(i_img), _brute_force(queries, references).argmin(1))


def test_nearest_neighbours_shape_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        nearest_neighbours(np.zeros((3, 5)), np.zeros((4, 6)))
    with pytest.raises(ValueError, match="block_size"):
        nearest_neighbours(np.zeros((3, 5)), np.zeros((4, 5)), block_size=0)
    with pytest.raises(ValueError, match=r"\[num, dim\]"):
        nearest_neighbours(np.zeros(5), np.zeros(5))


# ------------------------------------------------------------------------------------------ memorization_report


def test_copies_of_training_images_are_all_memorized(digits):
    train, held_out, _ = digits
    picked = np.random.default_rng(4).choice(len(train), size=399, replace=False)
    report = _report(train[picked], train, held_out)
    assert isinstance(report, MemorizationReport) and report.memorized_fraction_features is None
    assert float(report.memorized_fraction_pixels) == 1.0
    np.testing.assert_array_equal(np.asarray(report.pixel_indices), picked)
    # A copy comes out at round-off distance, far below the closest held-out image.
    assert float(report.pixel_distances.max()) < 1e-2 < float(report.pixel_threshold)


@pytest.mark.parametrize("quantile", [0.05, 0.25])
def test_fresh_images_score_about_the_quantile(digits, quantile):
    # Held-out and fresh images are exchangeable given the training set, so P(d(fresh) < tau) = quantile on
    # average. Its spread combines the fresh images' binomial noise and the threshold's own noise (a quantile of
    # K held-out distances): sd ~ sqrt(q (1 - q) (1/N + 1/K)) = 0.015 (q = 0.05) or 0.031 (q = 0.25) for
    # N = 399, K = 398. Tolerance: 4 sd.
    train, held_out, fresh = digits
    report = _report(fresh, train, held_out, quantile=quantile)
    tolerance = 4.0 * np.sqrt(quantile * (1 - quantile) * (1 / len(fresh) + 1 / len(held_out)))
    assert abs(float(report.memorized_fraction_pixels) - quantile) <= tolerance
    held_out_distances = _brute_force(held_out, train).min(1)
    np.testing.assert_allclose(float(report.pixel_threshold), np.quantile(held_out_distances, quantile), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(report.held_out_pixel_distances), held_out_distances, rtol=1e-4, atol=1e-4)


def test_noise_images_are_not_memorized(digits):
    train, held_out, fresh = digits
    noise = np.random.default_rng(5).uniform(size=fresh.shape).astype(np.float32)
    report = _report(noise, train, held_out)
    assert float(report.memorized_fraction_pixels) == 0.0
    assert float(report.pixel_distances.min()) > float(report.pixel_threshold)


def _random_projection(images: jax.Array) -> jax.Array:
    # A fixed [64, 16] projection: module-level, so it is one hashable static argument for every jit call.
    w = jax.random.normal(jax.random.key(7), (64, 16)) / 8.0
    return images.reshape(images.shape[0], -1) @ w


def _assert_nearest(indices: np.ndarray, distances: np.ndarray, brute: np.ndarray, tol: float) -> None:
    """Indices equal brute force wherever the best and second-best references are more than `tol` apart; elsewhere
    (round-off near-ties) the chosen reference is within `tol` of the minimum."""
    ordered = np.sort(brute, axis=1)
    clear = ordered[:, 1] - ordered[:, 0] > tol
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(indices[clear], brute.argmin(1)[clear])
    assert np.all(brute[np.arange(len(indices)), indices] <= ordered[:, 0] + tol)
    np.testing.assert_allclose(distances, ordered[:, 0], atol=tol)


def test_feature_space_neighbours_match_brute_force(digits):
    train, held_out, fresh = digits
    report = _report(fresh, train, held_out, features_fn=_random_projection)
    pixels = _brute_force(fresh, train)
    _assert_nearest(np.asarray(report.pixel_indices), np.asarray(report.pixel_distances), pixels, 1e-4)
    f_fresh, f_train, f_held = (np.asarray(_random_projection(jnp.asarray(x))) for x in (fresh, train, held_out))
    brute = _brute_force(f_fresh, f_train)
    _assert_nearest(np.asarray(report.feature_indices), np.asarray(report.feature_distances), brute, 1e-4)
    expected_threshold = np.quantile(_brute_force(f_held, f_train).min(1), 0.05)
    np.testing.assert_allclose(float(report.feature_threshold), expected_threshold, rtol=1e-4)
    expected_fraction = np.mean(brute.min(1) < expected_threshold)
    assert abs(float(report.memorized_fraction_features) - expected_fraction) <= 1 / len(fresh)


def test_jit_matches_eager(digits):
    train, held_out, fresh = digits
    eager = memorization_report(fresh[:50], train, held_out, features_fn=_random_projection, block_size=300)
    jitted = _report(fresh[:50], train, held_out, features_fn=_random_projection, block_size=300)
    for name, a, b in zip(MemorizationReport._fields, eager, jitted):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r, t, h: r(t[:5].reshape(5, 4, 16, 1), t, h),  # same size, different image shape
         "samples, train and held_out must share the image shape, got (4, 16, 1), (8, 8, 1) and (8, 8, 1)"),
        (lambda r, t, h: r(t[:5], t, h[:, :4]),
         "samples, train and held_out must share the image shape, got (8, 8, 1), (8, 8, 1) and (4, 8, 1)"),
        (lambda r, t, h: r(t[:5], (t * 255).astype(np.uint8), h),  # integer train with float samples
         "samples, train and held_out mix integer and floating-point images (float32, uint8, float32); put them on "
         "one scale, e.g. floats in [0, 1]"),
        (lambda r, t, h: r(t[:5], t, h, quantile=1.0), "quantile must be in (0, 1), got 1.0"),
        (lambda r, t, h: r(t[:5], t, h, features_fn=lambda x: x.sum()),
         "features_fn must map [n, ...] images to [n, F] features; samples gave ()"),
    ],
    ids=["sample_shape", "held_out_shape", "mixed_dtypes", "quantile", "features_fn_output"],
)  # fmt: skip
@pytest.mark.parametrize("report_fn", [memorization_report, _report], ids=["eager", "jit"])
def test_bad_input_raises_one_line_value_error(digits, call, message, report_fn):
    train, held_out, _ = digits
    with pytest.raises(ValueError) as error:
        call(report_fn, train, held_out)
    assert str(error.value) == message


# --------------------------------------------------------------------------------------------------- plotting


def test_plot_nearest_neighbours_writes_two_or_three_rows(tmp_path, digits):
    train, held_out, fresh = digits
    report = _report(fresh[:6], train, held_out, features_fn=_random_projection)
    two, three = tmp_path / "two.png", tmp_path / "sub" / "three.png"
    plot_nearest_neighbours(two, fresh, train, report.pixel_indices, count=6)
    plot_nearest_neighbours(
        three, fresh, train, report.pixel_indices, report.feature_indices, count=6,
        feature_distances=report.feature_distances, title="digits",
    )
    h2, w2 = matplotlib.image.imread(two).shape[:2]
    h3, w3 = matplotlib.image.imread(three).shape[:2]
    assert w2 == w3
    assert abs(h3 / h2 - 1.5) < 0.02  # the figure height is proportional to the number of rows


def test_plot_nearest_neighbours_rgb_caps_count_at_the_samples(tmp_path):
    rng = np.random.default_rng(8)
    samples, train = rng.uniform(size=(4, 6, 6, 3)), rng.uniform(size=(10, 6, 6, 3))
    plot_nearest_neighbours(tmp_path / "eight.png", samples, train, np.arange(4), count=8)
    plot_nearest_neighbours(tmp_path / "four.png", samples, train, np.arange(4), count=4)
    eight, four = (matplotlib.image.imread(tmp_path / name) for name in ("eight.png", "four.png"))
    assert eight.shape == four.shape and eight.shape[-1] in (3, 4)
