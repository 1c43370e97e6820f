"""Mode-coverage metrics for 2-D Gaussian-mixture targets (the VEEGAN / PacGAN protocol).

For generated samples x_1..x_N and a mixture with means mu_1..mu_M and component std sigma
(see `jaxgan.data.mixtures`):

1. Assign each sample to its nearest mode, k(n) = argmin_k ||x_n - mu_k||_2.
2. A sample is *high quality* (HQ) if ||x_n - mu_k(n)||_2 <= threshold_stds * sigma (3 sigma in the papers).
3. A mode is *captured* if at least one HQ sample is assigned to it.
4. With c_k the number of HQ samples assigned to mode k and p_k = c_k / sum_j c_j, the reverse KL divergence
   from the uniform distribution over modes is

       KL(p || u) = sum_k p_k log(p_k / (1/M)) = sum_k p_k log(p_k M),    with 0 log 0 = 0.

   It is 0 for perfectly balanced coverage and log M when every HQ sample sits on one mode.

References:
  Srivastava, Valkov, Russell, Gutmann, Sutton. "VEEGAN: Reducing Mode Collapse in GANs using Implicit
  Variational Learning." NeurIPS 2017. https://arxiv.org/abs/1705.07761

  Lin, Khetan, Fanti, Oh. "PacGAN: The power of two samples in generative adversarial networks."
  NeurIPS 2018. https://arxiv.org/abs/1712.04086
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["mixture_metrics"]


def mixture_metrics(
    samples: jnp.ndarray,
    means: jnp.ndarray,
    std: float,
    threshold_stds: float = 3.0,
) -> dict[str, jnp.ndarray]:
    """VEEGAN / PacGAN mode-coverage metrics of `samples` against a mixture (protocol in the module docstring).

    Jit-compatible: no Python control flow depends on array values; `std` and `threshold_stds` may be traced.

    Args:
        samples: `[N, 2]` generated samples.
        means: `[M, 2]` mixture means.
        std: standard deviation of each mixture component.
        threshold_stds: radius of the HQ ball around a mode, in units of `std`.

    Returns:
        A dict with
          * `modes`: int32 scalar, the number of modes with at least one HQ sample;
          * `high_quality_fraction`: float scalar, the fraction of all N samples within
            `threshold_stds * std` of their nearest mode;
          * `reverse_kl`: float scalar, KL(p || uniform) of the histogram p of HQ samples over modes. With no
            HQ sample at all p is undefined; we then return log M, the value of a fully collapsed histogram
            (the worst possible), so the metric is never NaN and never rewards producing no good sample;
          * `mode_counts`: `[M]` int32, the number of HQ samples assigned to each mode.
    """
    samples = jnp.asarray(samples)
    means = jnp.asarray(means)
    if samples.ndim != 2 or means.ndim != 2 or samples.shape[1] != means.shape[1]:  # else they would broadcast
        raise ValueError(
            f"mixture_metrics: samples [N, d] and means [M, d] of one dimension d, got {samples.shape} and {means.shape}"
        )
    num_modes = means.shape[0]

    # Direct differences rather than |a|^2 - 2ab + |b|^2: no cancellation error near the threshold, and
    # [N, M, 2] is small for 2-D toy data.
    sq_dist = jnp.sum(jnp.square(samples[:, None, :] - means[None, :, :]), axis=-1)
    nearest = jnp.argmin(sq_dist, axis=-1)
    high_quality = jnp.sqrt(jnp.min(sq_dist, axis=-1)) <= threshold_stds * std

    assigned = nearest[:, None] == jnp.arange(num_modes)[None, :]
    mode_counts = jnp.sum(assigned & high_quality[:, None], axis=0, dtype=jnp.int32)
    total = jnp.sum(mode_counts)

    # p_k M = c_k M / total is formed from integers, so balanced counts give a ratio of exactly 1 (KL exactly 0).
    # The inner where keeps log's argument positive, so gradients/values stay finite for empty modes.
    safe_total = jnp.maximum(total, 1)
    occupied = mode_counts > 0
    ratio = jnp.where(occupied, (mode_counts * num_modes) / safe_total, 1.0)
    terms = jnp.where(occupied, (mode_counts / safe_total) * jnp.log(ratio), 0.0)
    log_m = jnp.log(jnp.asarray(num_modes, dtype=terms.dtype))
    reverse_kl = jnp.where(total > 0, jnp.sum(terms), log_m)

    return {
        "modes": jnp.sum(occupied, dtype=jnp.int32),
        "high_quality_fraction": jnp.mean(high_quality.astype(terms.dtype)),
        "reverse_kl": reverse_kl,
        "mode_counts": mode_counts,
    }
