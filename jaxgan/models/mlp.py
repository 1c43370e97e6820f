"""Multilayer perceptrons for low-dimensional GAN experiments (mixtures of Gaussians, Dirac-GAN).

The settings of Metz et al. 2016 (Unrolled GAN, appendix) are the defaults of `experiments/ring8.py`:
G has 2 hidden layers of 128 ReLU units, D one hidden layer of 128 ReLU units and sees its input scaled
by 1/4, and every kernel is initialised orthogonally with gain 0.8.

The settings of PacGAN's mixture experiments (Lin, Khetan, Fanti & Oh 2018, after VEEGAN, Srivastava et al. 2017)
are the defaults of `experiments/grid25_pacgan.py`: G has 4 hidden layers of 400 units, each a bias-free linear
map, batch norm and ReLU; D has 3 hidden maxout layers (Goodfellow et al. 2013) of 200 units with 5 pieces each;
every kernel is drawn from N(0, 0.02²).
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jnp.ndarray], jnp.ndarray]] = {
    "relu": nn.relu,
    "leaky_relu": nn.leaky_relu,
    "tanh": jnp.tanh,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "softplus": nn.softplus,
}

# How kernels are drawn: orthogonal with gain `init_gain`, or i.i.d. N(0, init_gain²).
KERNEL_INITS = ("orthogonal", "normal")

# Running averages of batch norm: r ← 0.95 r + 0.05 (batch statistic), PacGAN's setting.
_BATCH_NORM_MOMENTUM = 0.95


def kernel_initializer(scheme: str, gain: float) -> Callable:
    if scheme == "orthogonal":
        return nn.initializers.orthogonal(scale=gain)
    if scheme == "normal":
        return nn.initializers.normal(stddev=gain)
    raise ValueError(f"weight_init {scheme!r}: must be one of {', '.join(KERNEL_INITS)}")


class Maxout(nn.Module):
    """Maxout units (Goodfellow, Warde-Farley, Mirza, Courville & Bengio 2013): h_i = max_j (W_ij x + b_ij) over
    `pieces` linear pieces j, for each of `features` units i."""

    features: int
    pieces: int
    kernel_init: Callable = nn.initializers.lecun_normal()
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = nn.Dense(self.features * self.pieces, kernel_init=self.kernel_init, dtype=self.dtype)(x)
        return y.reshape(*y.shape[:-1], self.features, self.pieces).max(axis=-1)


class MLP(nn.Module):
    """`depth` hidden layers of `width` units, then a linear layer of `out_features`.

    The input is multiplied by `input_scale` first (Metz et al. scale D's input by 1/4 so that the ring of
    radius 2 sits in the linear range of the first layer at initialisation). A hidden layer is a linear map and
    `activation`; with `maxout_pieces` = k > 1 it is a maxout layer of k pieces instead; with `batch_norm` the
    linear map has no bias and is followed by batch norm (batch statistics when `train`, running averages kept
    in the `batch_stats` collection otherwise) before the activation.
    """

    out_features: int
    width: int = 128
    depth: int = 2
    activation: str = "relu"
    input_scale: float = 1.0
    init_gain: float = 1.0
    weight_init: str = "orthogonal"
    batch_norm: bool = False
    maxout_pieces: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool = True) -> jnp.ndarray:
        act = ACTIVATIONS[self.activation]
        init = kernel_initializer(self.weight_init, self.init_gain)
        x = x.astype(self.dtype) * self.input_scale
        for _ in range(self.depth):
            if self.maxout_pieces > 1:
                x = Maxout(self.width, self.maxout_pieces, init, self.dtype)(x)
                continue
            x = nn.Dense(self.width, use_bias=not self.batch_norm, kernel_init=init, dtype=self.dtype)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=_BATCH_NORM_MOMENTUM, dtype=self.dtype)(x)
            x = act(x)
        return nn.Dense(self.out_features, kernel_init=init, dtype=self.dtype)(x)


class MLPGenerator(nn.Module):
    """Maps noise z [batch, z_dim] to samples [batch, data_dim]; outputs are float32 for any narrower compute dtype."""

    data_dim: int = 2
    width: int = 128
    depth: int = 2
    activation: str = "relu"
    init_gain: float = 1.0
    weight_init: str = "orthogonal"
    batch_norm: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, z: jnp.ndarray, *, train: bool = True) -> jnp.ndarray:
        out = MLP(self.data_dim, self.width, self.depth, self.activation, 1.0, self.init_gain, self.weight_init,
                  self.batch_norm, dtype=self.dtype)(z, train=train)
        return out.astype(jnp.promote_types(self.dtype, jnp.float32))


class MLPDiscriminator(nn.Module):
    """Maps samples [batch, data_dim] to one logit per sample, [batch], float32 for any narrower compute dtype."""

    width: int = 128
    depth: int = 1
    activation: str = "relu"
    input_scale: float = 1.0
    init_gain: float = 1.0
    weight_init: str = "orthogonal"
    maxout_pieces: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        out = MLP(1, self.width, self.depth, self.activation, self.input_scale, self.init_gain, self.weight_init,
                  maxout_pieces=self.maxout_pieces, dtype=self.dtype)(x)
        return out[..., 0].astype(jnp.promote_types(self.dtype, jnp.float32))
