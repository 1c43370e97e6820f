"""Sample-quality metrics for image GANs, computed from network features or logits: FID, KID, IS, precision/recall.

Every function here is a pure `jax.numpy` function that runs on device and under `jax.jit`. Arguments that fix
shapes (`num_subsets`, `subset_size`, `num_splits`, `k`, `block_size`) must be static under `jax.jit`, e.g.
`jax.jit(kid_from_features, static_argnames=("num_subsets", "subset_size"))`. Shape errors are raised eagerly
(at trace time) as `ValueError`.

The networks that produce the features/logits (Inception-v3 pool3 features and logits in the papers) are *not*
part of this module; values are only comparable to published numbers when computed from the same network.

Precision: arithmetic is float64 when `jax_enable_x64` is on and float32 otherwise (inputs are cast). Matrix
products use `Precision.HIGHEST` so that GPUs/TPUs do not silently use TF32/bfloat16 passes, whose ~1e-3 relative
error would swamp the small differences these metrics take.

References:
  Heusel, Ramsauer, Unterthiner, Nessler, Hochreiter. "GANs trained by a two time-scale update rule converge to
  a local Nash equilibrium." NeurIPS 2017. https://arxiv.org/abs/1706.08500

  Bińkowski, Sutherland, Arbel, Gretton. "Demystifying MMD GANs." ICLR 2018. https://arxiv.org/abs/1801.01401

  Salimans, Goodfellow, Zaremba, Cheung, Radford, Chen. "Improved techniques for training GANs." NeurIPS 2016.
  https://arxiv.org/abs/1606.03498

  Kynkäänniemi, Karras, Laine, Lehtinen, Aila. "Improved precision and recall metric for assessing generative
  models." NeurIPS 2019. https://arxiv.org/abs/1904.06991
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "feature_statistics",
    "mode_coverage",
    "fid_from_features",
    "frechet_distance",
    "inception_score_from_logits",
    "kid_from_features",
    "precision_recall_from_features",
]

# Documented default for `kid_from_features(key=None)`: a fixed key keeps repeated evaluations comparable.
DEFAULT_KID_SEED = 0

_HIGHEST = jax.lax.Precision.HIGHEST


def _compute_dtype() -> jnp.dtype:
    # float64 when x64 is enabled, float32 otherwise. Evaluated at trace time, and jit caches are keyed on the
    # x64 flag, so a function traced under `jax.enable_x64(True)` really computes in float64.
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def _matmul(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    return jnp.matmul(a, b, precision=_HIGHEST)


def _check_matrix(name: str, x: jnp.ndarray, min_rows: int = 1) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape [num_samples, dim], got {x.shape}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {x.shape[0]}")


def _psd_sqrt(matrix: jnp.ndarray) -> jnp.ndarray:
    """Principal square root of a symmetric PSD matrix via `eigh`, with round-off negative eigenvalues set to 0."""
    eigenvalues, eigenvectors = jnp.linalg.eigh(matrix)
    root = jnp.sqrt(jnp.clip(eigenvalues, 0.0, None))
    return _matmul(eigenvectors * root[None, :], eigenvectors.T)


def frechet_distance(
    mu1: jnp.ndarray, cov1: jnp.ndarray, mu2: jnp.ndarray, cov2: jnp.ndarray
) -> jnp.ndarray:
    """Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2) (Heusel et al. 2017):

        d² = ||mu1 - mu2||² + Tr(C1 + C2 - 2 (C1 C2)^{1/2}).

    Trace of the square root. C1 C2 is not symmetric, and the usual `scipy.linalg.sqrtm` (a Schur decomposition
    of a non-normal matrix) can return complex values or large errors when the covariances are ill-conditioned
    or singular, which is the normal case for FID (2048-d features, often fewer than 2048 distinct samples).
    Instead we use that C1 C2 = C1^{1/2} (C1^{1/2} C2) has the same eigenvalues as

        S = C1^{1/2} C2 C1^{1/2},

    which is symmetric PSD, so Tr((C1 C2)^{1/2}) = sum_i sqrt(lambda_i(S)). Only symmetric eigendecompositions
    (`jnp.linalg.eigh`) are needed: one for C1^{1/2}, one for the eigenvalues of S. Symmetric eigensolvers are
    backward stable (eigenvalue errors <= ~eps * ||S||, real by construction), work on device, and the tiny
    negative eigenvalues that round-off produces for singular matrices are clipped to 0 before the sqrt.

    Accuracy: arithmetic in float64 if x64 is enabled, else float32 (eps ~ 1.2e-7). The result is a difference
    of terms of size ~Tr(C1) + Tr(C2), so expect an absolute error of order eps * dim * (||C1|| + ||C2||) for
    well-conditioned covariances. An eigenvalue lambda of S perturbed by delta ~ eps * ||S|| moves sqrt(lambda)
    by at most sqrt(delta), so near-singular covariances can add up to ~dim * sqrt(eps * ||S||) (about 3e-4
    relative per zero eigenvalue in float32); use x64 when FID differences below ~1e-2 matter. The commonest
    zero eigenvalues are exact: a feature that is constant in both sets (a dead ReLU unit of the extractor) has a
    zero row and column in both covariances. Its rows and columns are replaced by the identity's in both, which
    adds 1 + 1 − 2·√1 = 0 to the trace term exactly and keeps its round-off out of the square root (the shipped
    mnist_5k classifier has 74 such of its 128 features: in float32 they moved a held-out FID by 0.67, BUILD_NOTES.md).
    The result is not clipped at 0: a small negative value signals round-off rather than being hidden.

    Args:
        mu1, mu2: `[d]` means.
        cov1, cov2: `[d, d]` symmetric PSD covariances.

    Returns:
        Scalar squared Fréchet distance in the compute dtype.
    """
    dtype = _compute_dtype()
    mu1, mu2, cov1, cov2 = (jnp.asarray(a, dtype) for a in (mu1, mu2, cov1, cov2))
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"means must be [d] vectors of equal size, got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(f"covariances must be [{d}, {d}], got {cov1.shape} and {cov2.shape}")

    # Symmetrise: eigh reads one triangle only, so an input that is asymmetric by round-off would otherwise be
    # treated inconsistently.
    cov1 = 0.5 * (cov1 + cov1.T)
    cov2 = 0.5 * (cov2 + cov2.T)
    constant = (jnp.diagonal(cov1) == 0) & (jnp.diagonal(cov2) == 0)  # zero rows and columns in both (PSD)
    identity = jnp.diag(constant.astype(dtype))
    cov1, cov2 = cov1 + identity, cov2 + identity

    sqrt_cov1 = _psd_sqrt(cov1)
    s = _matmul(_matmul(sqrt_cov1, cov2), sqrt_cov1)
    s = 0.5 * (s + s.T)
    trace_sqrt = jnp.sum(jnp.sqrt(jnp.clip(jnp.linalg.eigvalsh(s), 0.0, None)))

    diff = mu1 - mu2
    return jnp.dot(diff, diff, precision=_HIGHEST) + (jnp.trace(cov1) + jnp.trace(cov2) - 2.0 * trace_sqrt)


def feature_statistics(features: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Mean and unbiased covariance (ddof = 1) of `[n, d]` features, as used by FID (Heusel et al. 2017):

        mu = (1/n) sum_i x_i,    C = (1/(n-1)) sum_i (x_i - mu)(x_i - mu)^T.

    The two-pass form (centre, then multiply) avoids the cancellation of E[xx^T] - mu mu^T for features with
    a large mean. Requires n >= 2.
    """
    x = jnp.asarray(features, _compute_dtype())
    _check_matrix("features", x, min_rows=2)
    n = x.shape[0]
    mu = jnp.mean(x, axis=0)
    centred = x - mu
    cov = _matmul(centred.T, centred) / (n - 1)
    return mu, cov


def fid_from_features(features1: jnp.ndarray, features2: jnp.ndarray) -> jnp.ndarray:
    """Fréchet Inception Distance (Heusel et al. 2017) between two `[n_i, d]` feature sets:
    `frechet_distance(*feature_statistics(features1), *feature_statistics(features2))`.

    FID is biased upwards for finite samples (roughly by O(d / n)); compare values computed with equal n.
    """
    mu1, cov1 = feature_statistics(features1)
    mu2, cov2 = feature_statistics(features2)
    if mu1.shape != mu2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.shape[0]} vs {mu2.shape[0]}")
    return frechet_distance(mu1, cov1, mu2, cov2)


def _mmd2_unbiased_polynomial(x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    """Unbiased MMD² between equally sized `[m, d]` samples with the cubic polynomial kernel of KID."""
    m, d = x.shape

    def kernel(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
        return (_matmul(a, b.T) / d + 1.0) ** 3

    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    # Dropping the diagonal k(x_i, x_i) is what makes the within-set terms U-statistics (unbiased).
    sum_xx = jnp.sum(k_xx) - jnp.trace(k_xx)
    sum_yy = jnp.sum(k_yy) - jnp.trace(k_yy)
    return (sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * jnp.sum(k_xy) / (m * m)


def kid_from_features(
    features1: jnp.ndarray,
    features2: jnp.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    key: jax.Array | None = None,
) -> jnp.ndarray:
    """Kernel Inception Distance (Bińkowski, Sutherland, Arbel, Gretton 2018, "Demystifying MMD GANs").

    With the polynomial kernel k(x, y) = (x·y / d + 1)³ and subsets X, Y of equal size m, the unbiased estimate

        MMD²_u = sum_{i≠j} k(x_i, x_j) / (m(m-1)) + sum_{i≠j} k(y_i, y_j) / (m(m-1))
                 - 2 sum_{i,j} k(x_i, y_j) / m²

    is averaged over `num_subsets` pairs of subsets, each drawn uniformly without replacement from its set, with
    m = min(subset_size, n1, n2). A subset drawn without replacement from an i.i.d. sample is itself i.i.d., so
    every term, and hence the average, is an unbiased estimate of MMD² (it can be negative when the
    distributions are close).

    Randomness: `key` is an explicit PRNG key; if None, `jax.random.PRNGKey(DEFAULT_KID_SEED)` (seed 0) is used,
    so repeated calls on the same features return the same value. Pass different keys to get independent draws.
    Subsets are evaluated sequentially with `lax.map`, so memory is O(m² + m d), not O(num_subsets m²).

    Args:
        features1, features2: `[n1, d]` and `[n2, d]` features (n1, n2 >= 2).
        num_subsets, subset_size: static ints.
        key: optional PRNG key.

    Returns:
        Scalar mean MMD²_u over subsets.
    """
    dtype = _compute_dtype()
    x = jnp.asarray(features1, dtype)
    y = jnp.asarray(features2, dtype)
    _check_matrix("features1", x, min_rows=2)
    _check_matrix("features2", y, min_rows=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}")
    if num_subsets < 1 or subset_size < 2:
        raise ValueError(f"need num_subsets >= 1 and subset_size >= 2, got {num_subsets}, {subset_size}")
    m = min(subset_size, x.shape[0], y.shape[0])
    if key is None:
        key = jax.random.PRNGKey(DEFAULT_KID_SEED)

    def one_subset(subset_key: jax.Array) -> jnp.ndarray:
        key_x, key_y = jax.random.split(subset_key)
        # A prefix of a uniform random permutation = a uniform subset without replacement.
        idx_x = jax.random.permutation(key_x, x.shape[0])[:m]
        idx_y = jax.random.permutation(key_y, y.shape[0])[:m]
        return _mmd2_unbiased_polynomial(x[idx_x], y[idx_y])

    return jnp.mean(jax.lax.map(one_subset, jax.random.split(key, num_subsets)))


def inception_score_from_logits(
    logits: jnp.ndarray, num_splits: int = 10
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Inception Score (Salimans et al. 2016), mean and standard deviation over splits:

        IS = exp( E_x KL(p(y|x) || p(y)) ),    KL(p || q) = sum_c p_c (log p_c - log q_c),

    evaluated separately on each of `num_splits` contiguous splits, with p(y) the split's marginal (the mean of
    p(y|x) over the split). Split s holds samples [floor(s n / S), floor((s+1) n / S)), as in the original
    implementation, so n need not be divisible by S. The std is the population std (ddof = 0, `np.std`).

    Stability: log p(y|x) comes from `log_softmax`, and log p(y) from a per-split, per-class log-sum-exp of those
    log-probabilities, so no probability is ever logged after under/overflowing (confident logits give exact
    zeros in p(y|x) but finite log-probabilities).

    Args:
        logits: `[n, C]` classifier logits (n >= num_splits).
        num_splits: static number of splits S.

    Returns:
        (mean, std) of the per-split scores, each in [1, C].
    """
    log_p = jax.nn.log_softmax(jnp.asarray(logits, _compute_dtype()), axis=-1)
    _check_matrix("logits", log_p)
    n = log_p.shape[0]
    if not 1 <= num_splits <= n:
        raise ValueError(f"num_splits must be in [1, {n}] (the number of samples), got {num_splits}")

    # Shapes are static, so the split of each sample is a compile-time constant.
    bounds = (np.arange(num_splits + 1) * n) // num_splits
    split_ids = np.repeat(np.arange(num_splits), np.diff(bounds))
    counts = jnp.asarray(np.diff(bounds), log_p.dtype)

    # log p_s(y=c) = log( (1/|s|) sum_{x in s} exp(log p(c|x)) ), via a max-shifted segment log-sum-exp.
    seg_max = jax.ops.segment_max(log_p, split_ids, num_segments=num_splits, indices_are_sorted=True)
    seg_max = jnp.where(jnp.isneginf(seg_max), 0.0, seg_max)  # a class at −inf in a whole split: p = 0 there
    seg_sum = jax.ops.segment_sum(
        jnp.exp(log_p - seg_max[split_ids]), split_ids, num_segments=num_splits, indices_are_sorted=True
    )
    log_marginal = seg_max + jnp.log(seg_sum) - jnp.log(counts)[:, None]

    # p * (log p - log q) with p = exp(log p); where p underflows to 0 the term is 0 (0 log 0 = 0), also where
    # log p is −inf (a −inf logit), whose difference −inf − (−inf) would otherwise be NaN. Only −inf: a NaN logit
    # keeps its split's score NaN rather than counting as a class of probability 0.
    terms = jnp.exp(log_p) * (log_p - log_marginal[split_ids])
    kl = jnp.sum(jnp.where(jnp.isneginf(log_p), 0.0, terms), axis=-1)
    mean_kl = jax.ops.segment_sum(kl, split_ids, num_segments=num_splits, indices_are_sorted=True) / counts
    scores = jnp.exp(mean_kl)
    return jnp.mean(scores), jnp.std(scores)


def _blocked_rows(
    a: jnp.ndarray, b: jnp.ndarray, block_size: int, reduce: Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]
) -> jnp.ndarray:
    """`reduce(sq_dists_block, row_indices)` over row blocks of `a`, concatenated: `[n_a, ...]`.

    sq_dists_block is `[block, n_b]`, ||a_i||² - 2 a_i·b_j + ||b_j||² clipped at 0 (round-off can make it
    slightly negative). Only one block is materialised at a time (`lax.map` is sequential), so memory is
    O(block_size * n_b) instead of the O(n_a * n_b * d) of broadcasting differences.
    """
    n_a = a.shape[0]
    block_size = min(block_size, n_a)  # no padding work for sets smaller than one block
    num_blocks = -(-n_a // block_size)
    padded = jnp.pad(a, ((0, num_blocks * block_size - n_a), (0, 0)))
    blocks = padded.reshape(num_blocks, block_size, a.shape[1])
    row_index = jnp.arange(num_blocks * block_size).reshape(num_blocks, block_size)
    b_sq = jnp.sum(b * b, axis=-1)

    def one_block(args: tuple[jnp.ndarray, jnp.ndarray]) -> jnp.ndarray:
        rows, idx = args
        sq = jnp.sum(rows * rows, axis=-1)[:, None] - 2.0 * _matmul(rows, b.T) + b_sq[None, :]
        return reduce(jnp.maximum(sq, 0.0), idx)

    out = jax.lax.map(one_block, (blocks, row_index))
    return out.reshape((num_blocks * block_size,) + out.shape[2:])[:n_a]


def _kth_nn_sq_radius(x: jnp.ndarray, k: int, block_size: int) -> jnp.ndarray:
    """Squared distance from each row of x to its k-th nearest neighbour in x, the row itself excluded."""
    columns = jnp.arange(x.shape[0])

    def drop_row_min(_: int, sq: jnp.ndarray) -> jnp.ndarray:
        # Masks one entry per row (by index, so tied values are removed one at a time).
        nearest = jnp.argmin(sq, axis=-1)
        return jnp.where(columns[None, :] == nearest[:, None], jnp.inf, sq)

    def reduce(sq: jnp.ndarray, idx: jnp.ndarray) -> jnp.ndarray:
        # Exclude self by index, not by value: the computed self-distance need not be exactly 0, and exact
        # duplicates of a sample must still count as neighbours.
        sq = jnp.where(idx[:, None] == columns[None, :], jnp.inf, sq)
        # k-th smallest = min after removing the k-1 smallest. For the small k of this metric, k passes of
        # argmin are O(k n) per row and ~10x faster on CPU than `lax.top_k`, which XLA:CPU lowers to a sort.
        return jnp.min(jax.lax.fori_loop(0, k - 1, drop_row_min, sq), axis=-1)

    return _blocked_rows(x, x, block_size, reduce)


def _fraction_in_balls(
    queries: jnp.ndarray, centres: jnp.ndarray, sq_radii: jnp.ndarray, block_size: int
) -> jnp.ndarray:
    """Fraction of queries within (<=) the radius of at least one centre."""

    def reduce(sq: jnp.ndarray, idx: jnp.ndarray) -> jnp.ndarray:
        return jnp.any(sq <= sq_radii[None, :], axis=-1)

    inside = _blocked_rows(queries, centres, block_size, reduce)
    return jnp.mean(inside.astype(sq_radii.dtype))


def precision_recall_from_features(
    real: jnp.ndarray, fake: jnp.ndarray, k: int = 3, block_size: int = 1024
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) from `[n_r, d]` real and `[n_f, d]` fake features.

    Each sample of a set gets a ball whose radius is the distance to its k-th nearest neighbour in the same set
    (the sample itself excluded); the set's manifold estimate is the union of these balls. Then

        precision = (1/n_f) sum_j 1[ exists i: ||fake_j - real_i|| <= r_k(real_i) ],
        recall    = (1/n_r) sum_i 1[ exists j: ||real_i - fake_j|| <= r_k(fake_j) ].

    The paper uses k = 3 and 50k samples per set. Squared distances are compared (no sqrt) and computed as
    ||a||² - 2 a·b + ||b||² over row blocks of `block_size` (static), so e.g. 10k x 10k needs one
    `[block_size, 10k]` matrix at a time. That expansion loses about eps * ||a||² absolutely, so each set is
    centred first (distances are translation invariant): on its own mean for its radii, on the real mean for the
    cross distances. Points within that round-off of a ball boundary may be classified either way.

    Args:
        real, fake: feature sets with the same d; each needs more than k samples.
        k: static neighbourhood size.
        block_size: static number of rows per distance block (memory vs. parallelism).

    Returns:
        (precision, recall), scalars in [0, 1]; both NaN where a feature is not finite.
    """
    dtype = _compute_dtype()
    real = jnp.asarray(real, dtype)
    fake = jnp.asarray(fake, dtype)
    _check_matrix("real", real, min_rows=k + 1)
    _check_matrix("fake", fake, min_rows=k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    if k < 1 or block_size < 1:
        raise ValueError(f"need k >= 1 and block_size >= 1, got {k}, {block_size}")

    real_radii = _kth_nn_sq_radius(real - jnp.mean(real, axis=0), k, block_size)
    fake_radii = _kth_nn_sq_radius(fake - jnp.mean(fake, axis=0), k, block_size)
    centre = jnp.mean(real, axis=0)
    real_c, fake_c = real - centre, fake - centre
    precision = _fraction_in_balls(fake_c, real_c, real_radii, block_size)
    recall = _fraction_in_balls(real_c, fake_c, fake_radii, block_size)
    # One non-finite feature makes every comparison with a NaN radius false, which would read as 0: say NaN.
    finite = jnp.all(jnp.isfinite(real)) & jnp.all(jnp.isfinite(fake))
    return jnp.where(finite, precision, jnp.nan), jnp.where(finite, recall, jnp.nan)


def mode_coverage(modes: jnp.ndarray, num_modes: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    r"""(number of modes produced, KL(p ‖ uniform)) for the mode index of each sample, `modes` int [n].

    p is the histogram of `modes` over 0..num_modes − 1 and KL(p ‖ u) = Σ_k p_k log(num_modes · p_k): 0 when
    every mode is equally frequent, log(num_modes) when all samples share one mode. The Stacked MNIST protocol of
    Metz et al. 2016 (Section 3.3) and PacGAN (Lin et al. 2018, Table 3), with 1000 modes (three digits).
    Indices outside 0..num_modes − 1 (which `bincount` would drop or clip silently): a ValueError for concrete
    input; under a trace the KL is NaN.
    """
    modes = jnp.asarray(modes)
    if modes.ndim != 1 or modes.shape[0] == 0:
        raise ValueError(f"mode_coverage: modes must be [n] mode indices, n >= 1, got shape {modes.shape}")
    outside = jnp.any((modes < 0) | (modes >= num_modes))
    try:
        concrete_outside = bool(outside)
    except jax.errors.ConcretizationTypeError:  # traced: the NaN below says it
        concrete_outside = False
    if concrete_outside:
        raise ValueError(f"mode_coverage: mode indices must be in [0, {num_modes}), got {modes.min()}..{modes.max()}")
    histogram = jnp.bincount(modes, length=num_modes) / modes.shape[0]
    kl = jnp.sum(jnp.where(histogram > 0, histogram * jnp.log(jnp.where(histogram > 0, histogram, 1.0) * num_modes), 0.0))
    return jnp.sum(histogram > 0), jnp.where(outside, jnp.nan, kl)
