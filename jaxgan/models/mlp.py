"""Multilayer perceptrons for low-dimensional GAN experiments (mixtures of Gaussians, Dirac-GAN).

The settings of Metz et al. 2016 (Unrolled GAN, appendix) are the defaults of `experiments/ring8.py`:
G has 2 hidden layers of 128 ReLU units, D one hidden layer of 128 ReLU units and sees its input scaled
by 1/4, and every kernel is initialised orthogonally with gain 0.8.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jnp.ndarray], jnp.ndarray]] = {
    "relu": nn.relu,
    "leaky_relu": nn.leaky_relu,
    "tanh": jnp.tanh,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "softplus": nn.softplus,
}


class MLP(nn.Module):
    """`depth` hidden layers of `width` units, then a linear layer of `out_features`.

    The input is multiplied by `input_scale` first (Metz et al. scale D's input by 1/4 so that the ring of
    radius 2 sits in the linear range of the first layer at initialisation).
    """

    out_features: int
    width: int = 128
    depth: int = 2
    activation: str = "relu"
    input_scale: float = 1.0
    init_gain: float = 1.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        act = ACTIVATIONS[self.activation]
        kernel_init = nn.initializers.orthogonal(scale=self.init_gain)
        x = x.astype(self.dtype) * self.input_scale
        for _ in range(self.depth):
            x = act(nn.Dense(self.width, kernel_init=kernel_init, dtype=self.dtype)(x))
        return nn.Dense(self.out_features, kernel_init=kernel_init, dtype=self.dtype)(x)


class MLPGenerator(nn.Module):
    """Maps noise z [batch, z_dim] to samples [batch, data_dim]; outputs are float32 for any narrower compute dtype."""

    data_dim: int = 2
    width: int = 128
    depth: int = 2
    activation: str = "relu"
    init_gain: float = 1.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, z: jnp.ndarray) -> jnp.ndarray:
        out = MLP(self.data_dim, self.width, self.depth, self.activation, 1.0, self.init_gain, self.dtype)(z)
        return out.astype(jnp.promote_types(self.dtype, jnp.float32))


class MLPDiscriminator(nn.Module):
    """Maps samples [batch, data_dim] to one logit per sample, [batch], float32 for any narrower compute dtype."""

    width: int = 128
    depth: int = 1
    activation: str = "relu"
    input_scale: float = 1.0
    init_gain: float = 1.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        out = MLP(1, self.width, self.depth, self.activation, self.input_scale, self.init_gain, self.dtype)(x)
        return out[..., 0].astype(jnp.promote_types(self.dtype, jnp.float32))
