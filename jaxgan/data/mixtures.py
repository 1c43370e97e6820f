"""Two-dimensional mixtures of Gaussians, the standard toy targets for mode collapse.

The *ring* (8 modes on a circle) and *grid* (25 modes on a 5x5 lattice) are the synthetic benchmarks of VEEGAN
and PacGAN (metrics in `jaxgan.metrics.mixture`):

  Srivastava, Valkov, Russell, Gutmann, Sutton. "VEEGAN: Reducing Mode Collapse in GANs using Implicit
  Variational Learning." NeurIPS 2017. https://arxiv.org/abs/1705.07761

  Lin, Khetan, Fanti, Oh. "PacGAN: The power of two samples in generative adversarial networks."
  NeurIPS 2018. https://arxiv.org/abs/1712.04086

(ring: radius 2, std 0.02; grid: spacing 2, std 0.02 in VEEGAN and 0.05 in PacGAN.)

A mixture with means mu_1..mu_M and isotropic standard deviation sigma has density

    p(x) = (1/M) sum_k N(x; mu_k, sigma^2 I).

Everything is pure `jax.numpy`; sampling takes an explicit PRNG key and is jit-able (`num_samples` must be
static, as it fixes an output shape).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgan.registry import unknown_name

__all__ = ["Mixture", "grid_means", "make_mixture", "ring_means", "sample_mixture"]


def ring_means(num_modes: int = 8, radius: float = 2.0) -> jnp.ndarray:
    """Means equally spaced on a circle centred at the origin.

    Mode i sits at angle theta_i = 2 pi i / num_modes:  mu_i = radius * (cos theta_i, sin theta_i).

    Args:
        num_modes: number of modes M (>= 1).
        radius: radius of the circle.

    Returns:
        A `[num_modes, 2]` float array of means.
    """
    if num_modes < 1:
        raise ValueError(f"ring_means needs num_modes >= 1, got {num_modes}")
    angles = 2.0 * jnp.pi * jnp.arange(num_modes) / num_modes
    return radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)


def grid_means(num_modes: int = 25, spacing: float = 2.0) -> jnp.ndarray:
    """Means on a k x k square lattice centred at the origin, with k^2 = num_modes.

    Coordinates along each axis are spacing * (j - (k - 1) / 2) for j = 0..k-1, so num_modes=25, spacing=2
    gives {-4, -2, 0, 2, 4}^2. Modes are listed in row-major order (first coordinate varies slowest).

    Args:
        num_modes: number of modes M; must be a positive perfect square.
        spacing: distance between neighbouring modes.

    Returns:
        A `[num_modes, 2]` float array of means.

    Raises:
        ValueError: if `num_modes` is not a positive perfect square.
    """
    side = math.isqrt(num_modes) if num_modes > 0 else 0
    if side * side != num_modes or num_modes < 1:
        below, above = max(side, 1) ** 2, (side + 1) ** 2
        raise ValueError(
            f"grid_means needs num_modes to be a positive perfect square (k*k modes on a k x k grid), "
            f"got {num_modes}; nearest valid values: {below}, {above}"
        )
    axis = spacing * (jnp.arange(side) - (side - 1) / 2.0)
    xs, ys = jnp.meshgrid(axis, axis, indexing="ij")
    return jnp.stack([xs.ravel(), ys.ravel()], axis=-1)


def sample_mixture(key: jax.Array, means: jnp.ndarray, std: float, num_samples: int) -> jnp.ndarray:
    """Draws samples from the uniform mixture of isotropic Gaussians centred at `means`.

        k ~ Uniform{0, ..., M-1},   x = mu_k + std * eps,   eps ~ N(0, I).

    Args:
        key: a PRNG key.
        means: `[M, D]` component means (D = 2 for the toy sets).
        std: per-coordinate standard deviation of every component.
        num_samples: number of samples N (static under `jit`).

    Returns:
        A `[num_samples, D]` array with the dtype of `means`.
    """
    means = jnp.asarray(means)
    mode_key, noise_key = jax.random.split(key)
    modes = jax.random.randint(mode_key, (num_samples,), 0, means.shape[0])
    noise = jax.random.normal(noise_key, (num_samples, means.shape[1]), dtype=means.dtype)
    return means[modes] + std * noise


class Mixture(NamedTuple):
    """A uniform mixture of isotropic Gaussians. A NamedTuple, hence a pytree that can cross `jit`.

    Attributes:
        means: `[M, 2]` component means.
        std: standard deviation of every component.
    """

    means: jnp.ndarray
    std: float

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]

    def sample(self, key: jax.Array, num_samples: int) -> jnp.ndarray:
        """`[num_samples, 2]` samples; see `sample_mixture`."""
        return sample_mixture(key, self.means, self.std, num_samples)


# `scale` is the radius for the ring and the spacing for the grid.
MIXTURES: dict[str, Callable[[int, float], jnp.ndarray]] = {
    "grid": grid_means,
    "ring": ring_means,
}


def make_mixture(name: str, num_modes: int, scale: float, std: float) -> Mixture:
    """Builds a named 2-D mixture.

    Args:
        name: 'ring' (modes on a circle of radius `scale`) or 'grid' (square lattice with spacing `scale`).
        num_modes: number of modes M (a perfect square for 'grid').
        scale: ring radius or grid spacing.
        std: standard deviation of every component.

    Returns:
        A `Mixture`.

    Raises:
        ValueError: for an unknown `name` (suggesting a close match) or an invalid `num_modes`.
    """
    if name not in MIXTURES:
        raise ValueError(unknown_name("mixture", name, sorted(MIXTURES)))
    return Mixture(means=MIXTURES[name](num_modes, scale), std=std)
