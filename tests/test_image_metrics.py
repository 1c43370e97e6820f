"""Tests for `jaxgan.metrics.image`: FID, KID, Inception Score and improved precision/recall.

References are closed forms (FID of Gaussians with commuting covariances, IS of confident balanced predictions)
or direct float64 numpy/scipy implementations of the papers' formulas. Inputs are built in numpy and cast to
float32, the default compute dtype. Functions are jitted once at module level with their shape-fixing arguments
static, and shapes are shared between tests, so each program compiles once; eager-vs-jit agreement is checked
separately at the end.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jaxgan.metrics.image import (
    feature_statistics,
    fid_from_features,
    frechet_distance,
    inception_score_from_logits,
    kid_from_features,
    precision_recall_from_features,
)

_fd = jax.jit(frechet_distance)
_fid = jax.jit(fid_from_features)
_stats = jax.jit(feature_statistics)
_kid = jax.jit(kid_from_features, static_argnames=("num_subsets", "subset_size"))
_is = jax.jit(inception_score_from_logits, static_argnames=("num_splits",))
_pr = jax.jit(precision_recall_from_features, static_argnames=("k", "block_size"))


def _f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _random_spd(rng: np.random.Generator, d: int, floor: float = 0.3) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + floor * np.eye(d)


def _fid_reference(mu1, cov1, mu2, cov2) -> float:
    """The textbook formula with scipy's (non-symmetric) sqrtm, in float64."""
    covmean = scipy.linalg.sqrtm(np.asarray(cov1, np.float64) @ np.asarray(cov2, np.float64)).real
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


# ----------------------------------------------------------------------------------------------------- FID


def test_frechet_distance_diagonal_covariances_match_closed_form():
    rng = np.random.default_rng(0)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.1, 2.0, size=d), rng.uniform(0.1, 2.0, size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = _fd(_f32(mu1), _f32(np.diag(a)), _f32(mu2), _f32(np.diag(b)))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(float(got), expected, rtol=1e-5, atol=1e-5)


def test_frechet_distance_commuting_covariances_match_closed_form():
    # C1 = Q diag(a) Q^T and C2 = Q diag(b) Q^T commute but are far from diagonal, so this exercises the
    # eigendecompositions rather than reading off a diagonal.
    rng = np.random.default_rng(1)
    d = 8
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0.05, 3.0, size=d), rng.uniform(0.05, 3.0, size=d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = _fd(_f32(mu1), _f32(q @ np.diag(a) @ q.T), _f32(mu2), _f32(q @ np.diag(b) @ q.T))
    np.testing.assert_allclose(float(got), expected, rtol=1e-5, atol=2e-5)


def test_frechet_distance_non_commuting_matches_scipy_sqrtm():
    rng = np.random.default_rng(2)
    d = 8
    cov1, cov2 = _random_spd(rng, d), _random_spd(rng, d)
    assert np.abs(cov1 @ cov2 - cov2 @ cov1).max() > 0.1  # really non-commuting
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = _fid_reference(mu1, cov1, mu2, cov2)
    got = _fd(_f32(mu1), _f32(cov1), _f32(mu2), _f32(cov2))
    np.testing.assert_allclose(float(got), expected, rtol=1e-5, atol=1e-4)


def test_frechet_distance_uses_float64_when_x64_is_enabled():
    rng = np.random.default_rng(3)
    d = 8
    cov1, cov2 = _random_spd(rng, d), _random_spd(rng, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = _fid_reference(mu1, cov1, mu2, cov2)
    with jax.enable_x64(True):
        got = jax.jit(frechet_distance)(mu1, cov1, mu2, cov2)
        assert got.dtype == jnp.float64
        # float32 only reaches ~1e-6 relative; 1e-10 is only reachable in float64.
        np.testing.assert_allclose(float(got), expected, rtol=1e-10)


def test_frechet_distance_singular_covariance_is_within_documented_accuracy():
    # cov1 has rank 2 in d = 6 (like FID with fewer samples than dimensions). The reference uses the other
    # order, C2^{1/2} C1 C2^{1/2} (same eigenvalues as C1 C2, C2 full rank), in float64.
    rng = np.random.default_rng(4)
    d = 6
    low = rng.normal(size=(d, 2))
    cov1, cov2 = low @ low.T, _random_spd(rng, d)
    mu = np.zeros(d)
    w, v = np.linalg.eigh(cov2)
    sqrt2 = (v * np.sqrt(w)) @ v.T
    eig = np.clip(np.linalg.eigvalsh(sqrt2 @ cov1 @ sqrt2), 0.0, None)
    expected = np.trace(cov1) + np.trace(cov2) - 2.0 * np.sum(np.sqrt(eig))
    got = float(_fd(_f32(mu), _f32(cov1), _f32(mu), _f32(cov2)))
    assert np.isfinite(got)
    # Docstring bound: <= d * sqrt(eps * ||S||) from the d - 2 zero eigenvalues, plus eps-relative terms.
    bound = d * np.sqrt(np.finfo(np.float32).eps * eig.max())
    assert abs(got - expected) < bound, (got, expected, bound)


def test_features_constant_in_both_sets_add_nothing_in_float32():
    # A dead unit of the extractor is a zero row and column of both covariances; its round-off must not reach the
    # square root's trace. The shipped mnist_5k classifier has 74 such of 128 features: in float32 they put the
    # FID of 1000 training digits against the held-out ones at 20.53 against 21.18 in float64.
    from jaxgan.data import build_dataset
    from jaxgan.data.images import to_model_range
    from jaxgan.metrics.classifier import load_classifier
    from scripts.notes import load_experiment

    data = build_dataset(load_experiment("dcgan_mnist")).info
    classify, _ = load_classifier("mnist_5k", (28, 28, 1))
    held_out = np.asarray(classify(to_model_range(jnp.asarray(data.test_images)))[1], np.float32)
    some = np.random.default_rng(0).permutation(len(data.train_images))[:1000]  # the digits come sorted by class
    train = np.asarray(classify(to_model_range(jnp.asarray(data.train_images[some])))[1], np.float32)
    assert np.sum((held_out.std(0) == 0) & (train.std(0) == 0)) > 50  # the case this guards
    with jax.enable_x64(True):
        exact = float(jax.jit(fid_from_features)(train.astype(np.float64), held_out.astype(np.float64)))
    assert abs(float(_fid(train, held_out)) - exact) < 0.05, exact
    assert abs(float(_fid(held_out, held_out))) < 0.05


def test_feature_statistics_match_numpy_unbiased_covariance():
    rng = np.random.default_rng(5)
    x = _f32(rng.normal(size=(300, 16)) * 2.0 + 10.0)  # large mean: catches a one-pass E[xx^T] - mu mu^T
    mu, cov = _stats(x)
    np.testing.assert_allclose(np.asarray(mu), x.astype(np.float64).mean(0), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(np.asarray(cov), np.cov(x.astype(np.float64), rowvar=False, ddof=1), atol=2e-5)


def test_fid_of_a_set_with_itself_is_zero():
    rng = np.random.default_rng(6)
    x = _f32(rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16)) / 4)
    trace = np.trace(np.cov(x, rowvar=False))
    # A difference of terms of size 2 Tr(C) ~ 30 in float32: a few ulps of that is ~1e-5.
    assert abs(float(_fid(x, x))) < 1e-6 * 2 * trace * 16


def test_fid_is_symmetric():
    rng = np.random.default_rng(7)
    x = _f32(rng.normal(size=(300, 16)))
    y = _f32(rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16)) / 4 + 0.3)
    ab, ba = float(_fid(x, y)), float(_fid(y, x))
    assert ab > 1.0
    # The algorithm is not symmetric in its arguments (C1^{1/2} C2 C1^{1/2}), so only up to round-off.
    np.testing.assert_allclose(ab, ba, rtol=1e-5)
    np.testing.assert_allclose(ab, _fid_reference(*_np_stats(x), *_np_stats(y)), rtol=1e-5)


def _np_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = x.astype(np.float64)
    return x.mean(0), np.cov(x, rowvar=False)


def test_fid_from_gaussian_samples_approaches_closed_form():
    rng = np.random.default_rng(8)
    d, n = 4, 20000
    cov1, cov2 = _random_spd(rng, d, floor=0.5), _random_spd(rng, d, floor=0.5)
    mu1, mu2 = np.zeros(d), np.array([1.0, 0.5, 0.0, 0.0])
    expected = _fid_reference(mu1, cov1, mu2, cov2)
    x = _f32(rng.multivariate_normal(mu1, cov1, size=n))
    y = _f32(rng.multivariate_normal(mu2, cov2, size=n))
    # Sampling error dominates: the cross term 2 (mu1 - mu2)·(dmu) alone has std
    # 2 sqrt(dmu^T (C1 + C2) dmu / n) ~ 0.03 here, covariance noise adds a little (std over 30 seeds measured at
    # ~0.04), and the O(Tr(C1 + C2) / n) ~ 1e-3 upward bias is negligible. 0.15 is ~4 std, yet far below what a
    # wrong formula gives (e.g. dropping the sqrt cross term changes the value by 2 Tr((C1 C2)^{1/2}) > 5).
    assert abs(float(_fid(x, y)) - expected) < 0.15


# ----------------------------------------------------------------------------------------------------- KID


def _mmd2_unbiased_numpy(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.astype(np.float64), y.astype(np.float64)
    m, d = x.shape
    kxx, kyy, kxy = ((a @ b.T / d + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    off = lambda k: k.sum() - np.trace(k)  # noqa: E731
    return off(kxx) / (m * (m - 1)) + off(kyy) / (m * (m - 1)) - 2.0 * kxy.sum() / m**2


@pytest.mark.parametrize("same_set", [True, False])
def test_kid_single_full_subset_matches_numpy(same_set):
    # With num_subsets=1 and subset_size=n the subsets are permutations of the full sets, and MMD²_u is
    # permutation invariant, so the value is deterministic.
    rng = np.random.default_rng(9)
    x = _f32(rng.normal(size=(40, 6)))
    y = x if same_set else _f32(rng.normal(size=(40, 6)) * 1.5 + 0.2)
    got = _kid(x, y, num_subsets=1, subset_size=40, key=jax.random.PRNGKey(3))
    np.testing.assert_allclose(float(got), _mmd2_unbiased_numpy(x, y), rtol=1e-5)


def test_kid_is_unbiased_and_detects_different_distributions():
    n, d, draws = 200, 8, 50
    rng = np.random.default_rng(10)
    same, biased = [], []
    for i in range(draws):
        x, y = _f32(rng.normal(size=(n, d))), _f32(rng.normal(size=(n, d)))
        same.append(float(_kid(x, y, num_subsets=10, subset_size=100, key=jax.random.PRNGKey(i))))
        # The V-statistic (diagonals kept), for contrast: the test below must be able to tell them apart.
        kxx, kyy, kxy = ((a.astype(np.float64) @ b.T.astype(np.float64) / d + 1.0) ** 3
                         for a, b in ((x[:100], x[:100]), (y[:100], y[:100]), (x[:100], y[:100])))
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    same = np.asarray(same)
    se = same.std(ddof=1) / np.sqrt(draws)
    assert abs(same.mean()) < 3 * se, (same.mean(), se)
    assert np.mean(biased) > 10 * se  # the biased estimator would fail the check above by a wide margin

    x = _f32(rng.normal(size=(n, d)))
    y = _f32(rng.normal(size=(n, d)) + 0.5)
    shifted = float(_kid(x, y, num_subsets=10, subset_size=100))
    assert shifted > 50 * se and shifted > 0.1, (shifted, se)


def test_kid_default_key_is_fixed_and_keys_matter():
    rng = np.random.default_rng(11)
    x, y = _f32(rng.normal(size=(200, 8))), _f32(rng.normal(size=(200, 8)) + 0.2)
    a = float(_kid(x, y, num_subsets=10, subset_size=100))
    b = float(_kid(x, y, num_subsets=10, subset_size=100))
    c = float(_kid(x, y, num_subsets=10, subset_size=100, key=jax.random.PRNGKey(1)))
    assert a == b
    assert a != c


def test_kid_subset_size_is_capped_by_the_smaller_set():
    rng = np.random.default_rng(12)
    x, y = _f32(rng.normal(size=(30, 5))), _f32(rng.normal(size=(25, 5)) + 1.0)
    # m = min(1000, 30, 25) = 25: y is used whole and x is subsampled. Averaged over all 25-subsets of x, the
    # x-x U-statistic and the x-y mean equal their full-x versions, so the subset mean estimates the full-x
    # statistic below. The Monte Carlo std of a 1000-subset mean is ~2% here (measured), so rtol 0.1 is ~5 std.
    capped = float(_kid(x, y, num_subsets=1000, subset_size=1000))
    np.testing.assert_allclose(capped, _mmd2_full_x(x, y), rtol=0.1)


def _mmd2_full_x(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.astype(np.float64), y.astype(np.float64)
    d = x.shape[1]
    kxx, kyy, kxy = ((a @ b.T / d + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    n, m = len(x), len(y)
    return (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()


# ------------------------------------------------------------------------------------------ Inception Score


def _balanced_onehot_logits(num_classes: int, num_splits: int, per_class: int, scale: float) -> np.ndarray:
    # Contiguous splits of num_classes * per_class samples, each containing every class per_class times.
    labels = np.tile(np.arange(num_classes), num_splits * per_class)
    return _f32(scale * np.eye(num_classes)[labels])


@pytest.mark.parametrize("scale", [30.0, 1e4])  # 1e4: naive softmax-then-log would give 0 * log 0 = nan
def test_inception_score_of_confident_balanced_predictions_is_num_classes(scale):
    mean, std = _is(_balanced_onehot_logits(5, 10, 2, scale), num_splits=10)
    np.testing.assert_allclose(float(mean), 5.0, rtol=1e-5)
    assert abs(float(std)) < 1e-5


def test_inception_score_of_a_single_class_is_one():
    logits = np.zeros((100, 5), np.float32)
    logits[:, 2] = 30.0
    mean, std = _is(logits, num_splits=10)
    np.testing.assert_allclose(float(mean), 1.0, rtol=1e-6)
    assert abs(float(std)) < 1e-6


def _inception_score_numpy(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """The original implementation (improved-gan), float64: uneven contiguous splits, np.std (ddof=0)."""
    z = logits.astype(np.float64)
    preds = np.exp(z - z.max(1, keepdims=True))
    preds /= preds.sum(1, keepdims=True)
    scores = []
    for i in range(splits):
        part = preds[(i * len(preds) // splits):((i + 1) * len(preds) // splits)]
        kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
        scores.append(np.exp(kl.sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_matches_reference_with_uneven_splits():
    rng = np.random.default_rng(13)
    logits = _f32(rng.normal(size=(103, 7)) * 3.0)  # 103 = 10 splits of 10 or 11
    mean, std = _is(logits, num_splits=10)
    ref_mean, ref_std = _inception_score_numpy(logits, 10)
    assert ref_std > 0.05  # the std check below is not trivially 0 == 0
    np.testing.assert_allclose(float(mean), ref_mean, rtol=1e-5)
    np.testing.assert_allclose(float(std), ref_std, rtol=1e-4)


def test_inception_score_with_a_minus_infinite_logit_is_finite_and_right():
    logits = np.random.default_rng(23).normal(size=(40, 5)).astype(np.float32)
    logits[:, 4] = -np.inf  # a class no sample can be: probability 0 everywhere
    mean, std = _is(logits, num_splits=2)
    ref_mean, ref_std = _inception_score_numpy(logits[:, :4], 2)  # the same distributions over the other 4
    np.testing.assert_allclose([float(mean), float(std)], [ref_mean, ref_std], rtol=1e-5)


@pytest.mark.parametrize("nan_rows", [slice(0, 1), slice(0, 20)])  # one sample, one whole split
def test_inception_score_of_nan_logits_is_nan(nan_rows):
    # Only −inf is a class of probability 0; a NaN logit (a diverged G) must not score as a confident split.
    logits = np.random.default_rng(24).normal(size=(40, 5)).astype(np.float32)
    logits[nan_rows] = np.nan
    mean, _ = _is(logits, num_splits=2)
    assert np.isnan(float(mean))


# ------------------------------------------------------------------------------------- precision / recall


def _precision_recall_numpy(real: np.ndarray, fake: np.ndarray, k: int):
    real, fake = real.astype(np.float64), fake.astype(np.float64)

    def dists(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    def radii(x):
        dd = dists(x, x)
        np.fill_diagonal(dd, np.inf)
        return np.sort(dd, axis=1)[:, k - 1]

    r_real, r_fake = radii(real), radii(fake)
    d_fr = dists(fake, real)
    precision = np.mean(np.any(d_fr <= r_real[None, :], axis=1))
    recall = np.mean(np.any(d_fr.T <= r_fake[None, :], axis=1))
    # Smallest relative gap between a distance and a radius: if tiny, float32 could legitimately disagree.
    margin = min(np.abs(d_fr / r_real[None, :] - 1).min(), np.abs(d_fr.T / r_fake[None, :] - 1).min())
    return precision, recall, margin


def test_precision_recall_of_identical_sets_is_one():
    rng = np.random.default_rng(14)
    x = _f32(rng.normal(size=(70, 5)) + 100.0)  # large offset: exercises the centring before |a|²-2ab+|b|²
    p, r = _pr(x, x, k=1, block_size=16)
    assert float(p) == 1.0 and float(r) == 1.0


@pytest.mark.parametrize("k,seed", [(1, 20), (3, 20), (5, 22)])  # seeds chosen so that the margin check holds
def test_precision_recall_matches_brute_force(k, seed):
    rng = np.random.default_rng(seed)
    real = _f32(rng.normal(size=(70, 5)))
    fake = _f32(rng.normal(size=(50, 5)) * 1.3 + 0.4)
    ref_p, ref_r, margin = _precision_recall_numpy(real, fake, k)
    assert margin > 1e-4  # no sample is within float32 round-off of a ball boundary
    assert 0.0 < ref_p < 1.0 and 0.0 < ref_r < 1.0  # informative case, not all-or-nothing
    # 70 rows in blocks of 16: exercises the padded last block.
    p, r = _pr(real, fake, k=k, block_size=16)
    assert float(p) == pytest.approx(ref_p, abs=1e-7) and float(r) == pytest.approx(ref_r, abs=1e-7)
    assert round(float(p) * 50) == round(ref_p * 50) and round(float(r) * 70) == round(ref_r * 70)


def test_precision_recall_exclude_self_but_not_duplicates():
    # Every real sample appears twice; with k = 1 its duplicate is its nearest neighbour, so its radius is 0 and
    # only exact copies are "inside". Excluding by value (all zeros) would instead pick the next distinct point.
    rng = np.random.default_rng(16)
    base = _f32(rng.normal(size=(35, 5)))
    real = np.concatenate([base, base])
    fake = np.concatenate([base + np.float32(0.05), base[:15] - np.float32(0.05)])
    p, _ = _pr(real, fake, k=1, block_size=16)
    assert float(p) == 0.0
    p_self, _ = _pr(real, real, k=1, block_size=16)
    assert float(p_self) == 1.0


def test_far_fake_set_has_zero_precision_and_recall():
    rng = np.random.default_rng(17)
    real = _f32(rng.normal(size=(70, 5)))
    fake = _f32(rng.normal(size=(50, 5)) + 50.0)
    p, r = _pr(real, fake, k=3, block_size=16)
    assert float(p) == 0.0 and float(r) == 0.0


@pytest.mark.parametrize("which", ["real", "fake"])
def test_precision_recall_of_a_nan_feature_is_nan_not_zero(which):
    # Without the check, one NaN row made a set's mean, and so every radius, NaN: every `<=` false, a silent 0.
    rng = np.random.default_rng(18)
    sets = {"real": _f32(rng.normal(size=(60, 5))), "fake": _f32(rng.normal(size=(45, 5)))}
    clean = _pr(sets["real"], sets["fake"], k=3, block_size=16)
    assert all(0.0 < float(v) <= 1.0 for v in clean)
    sets[which][7] = np.nan
    p, r = _pr(sets["real"], sets["fake"], k=3, block_size=16)
    assert np.isnan(float(p)) and np.isnan(float(r))


# --------------------------------------------------------------------------------------------- validation


def test_shape_errors_are_raised():
    x = np.zeros((10, 4), np.float32)
    with pytest.raises(ValueError, match="feature dimensions differ"):
        fid_from_features(x, np.zeros((10, 5), np.float32))
    with pytest.raises(ValueError, match="num_splits"):
        inception_score_from_logits(x, num_splits=11)
    with pytest.raises(ValueError, match="at least 4 rows"):
        precision_recall_from_features(x[:3], x, k=3)


# ---------------------------------------------------------------------------------------------- jit vs eager


def _jit_cases():
    rng = np.random.default_rng(18)
    a, b = _f32(rng.normal(size=(60, 6))), _f32(rng.normal(size=(50, 6)) + 0.3)
    mu1, cov1 = _np_stats(a)
    mu2, cov2 = _np_stats(b)
    logits = _f32(rng.normal(size=(53, 7)) * 2)
    return [
        ("frechet_distance", frechet_distance, (_f32(mu1), _f32(cov1), _f32(mu2), _f32(cov2)), {}),
        ("feature_statistics", feature_statistics, (a,), {}),
        ("fid_from_features", fid_from_features, (a, b), {}),
        ("kid_from_features", kid_from_features, (a, b),
         {"num_subsets": 7, "subset_size": 30, "key": jax.random.PRNGKey(5)}),
        ("inception_score_from_logits", inception_score_from_logits, (logits,), {"num_splits": 4}),
        ("precision_recall_from_features", precision_recall_from_features, (a, b), {"k": 3, "block_size": 16}),
    ]


@pytest.mark.parametrize("name,fn,args,kwargs", _jit_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_jit_matches_eager(name, fn, args, kwargs):
    static = tuple(k for k in kwargs if k != "key")
    eager = fn(*args, **kwargs)
    jitted = jax.jit(fn, static_argnames=static)(*args, **kwargs)
    chex.assert_trees_all_close(jitted, eager, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_equal_shapes_and_dtypes(jitted, eager)


@pytest.mark.parametrize("data_name, num_train", [("mnist_5k", 4000), ("mnist_5k", 4600), ("mnist_5k", 3100), ("digits", 1438), ("digits", 1300)])
def test_held_out_images_the_classifier_trained_on_match_the_index_sets(data_name, num_train):
    """The count equals the run's held-out images (by index in the data file) that are in the classifier's
    training split, both splits recomputed from the file's labels."""
    from sklearn.datasets import load_digits as sklearn_digits

    from jaxgan.data.images import _mnist_5k_path, load_digits, load_mnist_5k, stratified_split
    from jaxgan.metrics.classifier import held_out_images_it_trained_on

    if data_name == "mnist_5k":
        labels, data = np.loadtxt(_mnist_5k_path(), delimiter=",", dtype=np.int64)[:, -1], load_mnist_5k(num_train)
    else:
        labels, data = sklearn_digits().target, load_digits(num_train)
    seen, classifier_held_out = held_out_images_it_trained_on(data_name, data.train_labels, data.test_labels)
    classifier_train, _ = stratified_split(labels, len(labels) - classifier_held_out)
    _, run_test = stratified_split(labels, num_train)
    assert seen == len(np.intersect1d(run_test, classifier_train))
    assert (seen > 0) == (num_train < len(labels) - classifier_held_out)


def test_classifier_reads_many_images_in_chunks_with_the_same_result(monkeypatch):
    """Above `CLASSIFY_CHUNK` images the classifier runs chunk by chunk (bounded memory; the remainder too) and
    gives what one pass over all of them gives."""
    from jaxgan.metrics import classifier

    images = jax.random.uniform(jax.random.key(0), (10, 8, 8, 1), minval=-1.0, maxval=1.0)
    whole = classifier.load_classifier("digits", (8, 8, 1))[0]
    assert "while" not in jax.jit(whole).lower(images).as_text()
    expected = jax.jit(whole)(images)
    monkeypatch.setattr(classifier, "CLASSIFY_CHUNK", 4)  # read when a call is traced
    chunked = classifier.load_classifier("digits", (8, 8, 1))[0]  # a new function: jit's cache is per function
    assert "while" in jax.jit(chunked).lower(images).as_text()  # the chunks are a loop, not one pass
    chex.assert_trees_all_close(jax.jit(chunked)(images), expected, rtol=1e-5, atol=1e-6)


def test_the_metrics_are_exported_from_jaxgan_metrics():
    import jaxgan.metrics
    from jaxgan.metrics import image, memorization, mixture

    for module in (image, memorization, mixture):
        for name in module.__all__:
            assert getattr(jaxgan.metrics, name) is getattr(module, name), name
    assert sorted(jaxgan.metrics.__all__) == sorted(image.__all__ + memorization.__all__ + mixture.__all__)
