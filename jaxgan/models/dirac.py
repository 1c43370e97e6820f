"""The Dirac-GAN players (Mescheder, Geiger, Nowozin 2018): p_θ = δ_θ and the linear critic D_ψ(x) = ψ·x."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class DiracGenerator(nn.Module):
    """G(z) = θ for every z: a point mass whose position θ [dim] is the generator's only parameter."""

    dim: int = 1
    start: float = 1.0

    @nn.compact
    def __call__(self, z: jnp.ndarray) -> jnp.ndarray:
        theta = self.param("theta", nn.initializers.constant(self.start), (self.dim,))
        return jnp.broadcast_to(theta, (z.shape[0], self.dim))


class LinearCritic(nn.Module):
    """D_ψ(x) = ψ·x, without bias, so that the equilibrium of the Dirac-GAN is (θ, ψ) = (0, 0)."""

    start: float = 1.0

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        psi = self.param("psi", nn.initializers.constant(self.start), (x.shape[-1],))
        return x @ psi
