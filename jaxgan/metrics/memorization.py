"""Memorization checks for image GANs: how close are generated samples to their nearest training images, compared
with fresh images of the same distribution?

Every function here is a pure `jax.numpy` function that runs on device and under `jax.jit`. Arguments that fix
shapes or choose code (`block_size`, `quantile`, `features_fn`) must be static under `jax.jit`, e.g.
`jax.jit(memorization_report, static_argnames=("features_fn", "quantile", "block_size"))`. Shape errors are
raised eagerly (at call or trace time) as one-line `ValueError`s.

Distances are Euclidean, between images flattened to vectors (or between features). Arithmetic is float64 when
`jax_enable_x64` is on and float32 otherwise; matrix products use `Precision.HIGHEST` (see `jaxgan.metrics.image`).

References:
  Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville, Bengio. "Generative adversarial nets."
  NeurIPS 2014, Figure 2 (each row of samples ends with the nearest training example of its neighbouring sample,
  "to demonstrate that the model has not memorized the training set"). https://arxiv.org/abs/1406.2661

  Theis, van den Oord, Bethge. "A note on the evaluation of generative models." ICLR 2016 (nearest-neighbour
  tests in pixel space are easily fooled: a training image shifted by a pixel is far from it in Euclidean
  distance). https://arxiv.org/abs/1511.01844

  Radford, Metz, Chintala. "Unsupervised representation learning with deep convolutional generative adversarial
  networks." ICLR 2016 (de-duplicates its training set to make memorization less likely and argues against
  memorization from smooth latent-space walks). https://arxiv.org/abs/1511.06434

  Meehan, Chaudhuri, Dasgupta. "A non-parametric test to detect data-copying in generative models." AISTATS 2020
  (compares the generated samples' distances to the training set with those of held-out samples).
  https://arxiv.org/abs/2004.05675
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgan.metrics.image import _compute_dtype, _matmul

__all__ = [
    "MemorizationReport",
    "memorization_report",
    "nearest_neighbours",
]


class MemorizationReport(NamedTuple):
    """What `memorization_report` measured. Feature fields are None when no `features_fn` was given.

    Attributes:
        memorized_fraction_pixels: scalar, fraction of samples with pixel-space nearest-training distance below
            `pixel_threshold`; about `quantile` for novel samples, near 1 for copies.
        pixel_threshold: scalar, the `quantile` quantile of `held_out_pixel_distances`.
        pixel_distances: `[N]` Euclidean distance from each sample to its nearest training image.
        pixel_indices: `[N]` int32 index of that training image.
        held_out_pixel_distances: `[K]` the same for the held-out images.
        memorized_fraction_features, feature_threshold, feature_distances, feature_indices,
        held_out_feature_distances: the same in the space of `features_fn`.
    """

    memorized_fraction_pixels: jax.Array
    pixel_threshold: jax.Array
    pixel_distances: jax.Array
    pixel_indices: jax.Array
    held_out_pixel_distances: jax.Array
    memorized_fraction_features: jax.Array | None = None
    feature_threshold: jax.Array | None = None
    feature_distances: jax.Array | None = None
    feature_indices: jax.Array | None = None
    held_out_feature_distances: jax.Array | None = None


def _flatten(name: str, x: jax.Array) -> jax.Array:
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape [num, dim] or [num, H, W, C] with num >= 1, got {x.shape}")
    return x.reshape(x.shape[0], -1)


def nearest_neighbours(
    queries: jax.Array, references: jax.Array, block_size: int = 1024
) -> tuple[jax.Array, jax.Array]:
    """Euclidean nearest neighbour of each query among the references.

        index_i    = argmin_j ||q_i - r_j||,    distance_i = ||q_i - r_index_i||,

    with squared distances expanded as ||q_i||² - 2 q_i·r_j + ||r_j||² (one matrix product, `Precision.HIGHEST`),
    clipped at 0 (round-off can make them slightly negative) before the square root. The references are
    processed in blocks of `block_size` rows by a sequential `lax.scan` that keeps the running minimum, so memory
    is O(N * block_size) on top of the inputs instead of O(N * M). Exact ties go to the smallest index: `argmin`
    picks the first minimum within a block, and a later block replaces the running minimum only when strictly
    smaller.

    Accuracy: the expansion loses about eps * (||q||² + ||r||²) absolutely in the squared distance, so both sets
    are first centred on the references' mean (distances are translation invariant), which shrinks the norms.
    A copy of a reference can still come out at a small positive distance, of order sqrt(eps) * ||r - mean||
    (about 1e-3 for float32 MNIST in [0, 1]); neighbours closer to each other than that may be swapped.

    Args:
        queries: `[N, D]`, or `[N, ...]` (e.g. `[N, H, W, C]` images) flattened to `[N, D]`.
        references: `[M, D]` or `[M, ...]`, with the same trailing shape as `queries`.
        block_size: static number of references per block (memory vs. parallelism).

    Returns:
        (distances `[N]` in the compute dtype, indices `[N]` int32 into `references`).
    """
    dtype = _compute_dtype()
    queries = jnp.asarray(queries, dtype)
    references = jnp.asarray(references, dtype)
    if queries.shape[1:] != references.shape[1:]:
        raise ValueError(
            f"queries and references differ in shape: {queries.shape[1:]} vs {references.shape[1:]} per row"
        )
    q = _flatten("queries", queries)
    r = _flatten("references", references)
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    return _nearest_flat(q, r, block_size)


@functools.partial(jax.jit, static_argnames=("block_size",))
def _nearest_flat(q: jax.Array, r: jax.Array, block_size: int) -> tuple[jax.Array, jax.Array]:
    """`nearest_neighbours` of validated `[N, D]` and `[M, D]` arrays of one dtype. Jitted so that eager callers
    compile the scan once per shape instead of tracing it on every call; inside an outer jit it is inlined."""
    dtype = q.dtype
    centre = jnp.mean(r, axis=0)
    q, r = q - centre, r - centre
    m = r.shape[0]
    block_size = min(block_size, m)  # no padding work for sets smaller than one block
    num_blocks = -(-m // block_size)
    padded = jnp.pad(r, ((0, num_blocks * block_size - m), (0, 0)))
    blocks = padded.reshape(num_blocks, block_size, r.shape[1])  # [blocks, block_size, D]
    starts = jnp.arange(num_blocks, dtype=jnp.int32) * block_size
    q_sq = jnp.sum(q * q, axis=-1)[:, None]  # [N, 1]
    column = jnp.arange(block_size, dtype=jnp.int32)

    def one_block(carry, block):
        best_sq, best_index = carry
        rows, start = block
        sq = q_sq - 2.0 * _matmul(q, rows.T) + jnp.sum(rows * rows, axis=-1)[None, :]  # [N, block_size]
        # Padding rows of the last block must never win.
        sq = jnp.where((start + column < m)[None, :], sq, jnp.inf)
        local = jnp.argmin(sq, axis=-1).astype(jnp.int32)
        local_sq = jnp.take_along_axis(sq, local[:, None], axis=-1)[:, 0]
        better = local_sq < best_sq  # strict: earlier blocks (smaller indices) keep exact ties
        return (jnp.where(better, local_sq, best_sq), jnp.where(better, start + local, best_index)), None

    n = q.shape[0]
    init = (jnp.full((n,), jnp.inf, dtype), jnp.zeros((n,), jnp.int32))
    (best_sq, best_index), _ = jax.lax.scan(one_block, init, (blocks, starts))
    return jnp.sqrt(jnp.maximum(best_sq, 0.0)), best_index


@functools.partial(jax.jit, static_argnames=("quantile", "block_size"))
def _held_out_comparison(
    samples: jax.Array, train: jax.Array, held_out: jax.Array, quantile: float, block_size: int
) -> tuple[jax.Array, ...]:
    """(fraction, threshold, sample distances, sample indices, held-out distances) in one space."""
    distances, indices = nearest_neighbours(samples, train, block_size)
    held_out_distances, _ = nearest_neighbours(held_out, train, block_size)
    threshold = jnp.quantile(held_out_distances, quantile)
    fraction = jnp.mean((distances < threshold).astype(distances.dtype))
    return fraction, threshold, distances, indices, held_out_distances


def memorization_report(
    samples: jax.Array,
    train: jax.Array,
    held_out: jax.Array,
    *,
    features_fn: Callable[[jax.Array], jax.Array] | None = None,
    quantile: float = 0.05,
    block_size: int = 1024,
) -> MemorizationReport:
    """How many generated samples lie closer to a training image than fresh images of the data distribution do.

    For every generated sample x_i (i = 1..N) and every held-out image h_k (k = 1..K, images of the data set
    that the GAN never saw), the distance to the nearest training image t_j:

        d(x_i) = min_j ||x_i - t_j||,    d(h_k) = min_j ||h_k - t_j||.

    The threshold is the `quantile` (q) quantile of the held-out distances (`jnp.quantile`, linear
    interpolation), and the score is the fraction of samples below it:

        tau = Quantile_q{ d(h_1), ..., d(h_K) },    memorized_fraction = (1/N) sum_i 1[ d(x_i) < tau ].

    Why this number. Being near a training image is not in itself a sign of copying: with enough training data,
    fresh images of the distribution have close training neighbours too. The held-out images calibrate how close
    "close" is for this data set and distance: if the samples are distributed like fresh data (independent of the
    particular training images), then d(x) and d(h) have the same distribution given the training set, so about
    a fraction q of the samples fall below tau (in expectation; the spread is about sqrt(q(1-q)(1/N + 1/K))). A
    generator that reproduces training images puts its samples at distance ~0 and scores near 1. Values well
    below q mean the samples are farther from the training set than real data are (poor samples, not
    memorization). This follows the idea of Meehan, Chaudhuri & Dasgupta (2020), who compare the generated and
    held-out distance distributions with a Mann-Whitney test within cells of a partition of the space; the
    single left-tail quantile used here is a simpler, cruder summary aimed at copies: it needs no partition, but
    it is global, so copying confined to a small region is diluted by the rest of the samples. The
    per-sample nearest neighbours are the visual check of Goodfellow et al. (2014, Figure 2) and can be drawn
    with `jaxgan.plotting.plot_nearest_neighbours`.

    Pixel distances are easily fooled: Theis, van den Oord & Bethge (2016) point out that a training image
    shifted by one pixel is far from it in Euclidean distance. Pass `features_fn` (e.g. the penultimate layer of
    `jaxgan.metrics.classifier.DigitClassifier`) to repeat the comparison in a feature space where such copies
    stay close; the feature fields of the report are then filled in.

    Ties: the strict `<` means that when more than a fraction q of the held-out images are exact duplicates of
    training images, tau = 0 and nothing is counted; de-duplicate the data first.

    Args:
        samples: `[N, H, W, C]` (or `[N, D]`) generated images.
        train: `[M, H, W, C]` the GAN's training images.
        held_out: `[K, H, W, C]` images of the same distribution not used for training (K >= 1; a few hundred or
            more for a stable threshold). All three must be on the same value scale (e.g. floats in [0, 1]); mixing
            integer and floating-point arrays is refused.
        features_fn: optional static function images `[n, H, W, C]` -> features `[n, F]` (or `[n, ...]`,
            flattened), applied to each of the three sets in one call.
        quantile: static q in (0, 1).
        block_size: static number of training images per distance block (see `nearest_neighbours`).

    Returns:
        A `MemorizationReport`.
    """
    samples, train, held_out = (jnp.asarray(x) for x in (samples, train, held_out))
    for name, x in (("samples", samples), ("train", train), ("held_out", held_out)):
        if x.ndim < 2 or x.shape[0] < 1:
            raise ValueError(f"{name} must have shape [num, H, W, C] or [num, dim] with num >= 1, got {x.shape}")
    if not samples.shape[1:] == train.shape[1:] == held_out.shape[1:]:
        raise ValueError(
            "samples, train and held_out must share the image shape, got "
            f"{samples.shape[1:]}, {train.shape[1:]} and {held_out.shape[1:]}"
        )
    if len({jnp.issubdtype(x.dtype, jnp.floating) for x in (samples, train, held_out)}) > 1:
        raise ValueError(
            "samples, train and held_out mix integer and floating-point images "
            f"({samples.dtype}, {train.dtype}, {held_out.dtype}); put them on one scale, e.g. floats in [0, 1]"
        )
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")

    pixel = _held_out_comparison(samples, train, held_out, quantile, block_size)
    if features_fn is None:
        return MemorizationReport(*pixel)

    features = []
    for name, x in (("samples", samples), ("train", train), ("held_out", held_out)):
        f = jnp.asarray(features_fn(x))
        if f.ndim < 2 or f.shape[0] != x.shape[0]:
            raise ValueError(f"features_fn must map [n, ...] images to [n, F] features; {name} gave {f.shape}")
        features.append(f.reshape(f.shape[0], -1))
    feature = _held_out_comparison(*features, quantile, block_size)
    return MemorizationReport(*pixel, *feature)
