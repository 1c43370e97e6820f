"""The small DCGAN of the unrolled GAN paper's stacked MNIST experiment (Metz, Poole, Pfau & Sohl-Dickstein
2017, "Unrolled generative adversarial networks", Section 3.3 and its appendix), with which the paper shows
unrolling recovering modes that a discriminator of a quarter of G's size lets a plain GAN drop.

The networks as PacGAN's authors ran them to reproduce that table (Lin, Khetan, Fanti & Oh 2018, "PacGAN",
Section 5.2, code `stacked_MNIST_experiments/unrolled_GAN_experiment`):

* G: z -> Dense(4·4·64) -> BN -> ReLU -> 3 × [3×3 transposed conv, stride 2 (4 -> 7 -> 14 -> 28), 32, 16, 8
  channels -> BN -> ReLU] -> 3×3 conv, stride 1, to the image channels -> tanh;
* D (¼ of G): 3 × [3×3 conv, stride 2 (28 -> 14 -> 7 -> 4), 2, 4, 8 channels -> BN -> LeakyReLU(0.3)] ->
  Dense(1); batch norm on every conv, the first included. D of ½ size has 4, 8, 16 channels.

Differences from `DCGANGenerator` / `DCGANDiscriminator` (jaxgan/models/dcgan.py), which is why this is its own
module: 3×3 kernels, a start map whose side halves to the image side (4 for 28, not 7), a last stride-1
convolution in G, batch norm on D's first layer and a leak of 0.3. Widths are lists, so any size ratio of D
to G is one config value. Weights ~ N(0, 0.02) as in DCGAN; convolutions followed by batch norm carry no bias
(batch norm's own bias stands in for it). The model protocol is that of jaxgan/models/dcgan.py.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.models.dcgan import _WEIGHT_INIT, SpaceToDepthConv, _batch_norm, _conv_padding, _strided_conv


def halving_sides(side: int, stages: int) -> list[int]:
    """[side, ⌈side/2⌉, ...], `stages` + 1 entries: the sides of the maps of a stride-2 "SAME" conv stack."""
    sides = [side]
    for _ in range(stages):
        sides.append(-(-sides[-1] // 2))
    return sides


def transpose_padding(size_in: int, size_out: int, kernel_size: int) -> tuple[int, int]:
    """The explicit padding of a stride-2 transposed convolution from `size_in` to `size_out` that makes it the
    adjoint (gradient) of the stride-2 "SAME" convolution from `size_out` to `size_in`, as TensorFlow's
    `conv2d_transpose` with an output shape is; e.g. 4 -> 7 (kernel 3): (1, 1); 7 -> 14: (2, 1)."""
    low = kernel_size - 1 - _conv_padding(size_out, kernel_size, 2, "SAME")[0]  # the forward conv's low padding
    return low, size_out - 2 * size_in + kernel_size - low


class SmallDCGANGenerator(nn.Module):
    """z [B, z_dim] -> images [B, H, W, C] in [-1, 1]; `widths[0]` channels at the start map, then one stride-2
    transposed convolution per further width (the module docstring has the layout for 28×28)."""

    image_shape: tuple[int, int, int]
    widths: Sequence[int] = (64, 32, 16, 8)
    kernel_size: int = 3
    bn_momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, z: jnp.ndarray, *, train: bool = True) -> jnp.ndarray:
        height, width, channels = self.image_shape
        stages = len(self.widths) - 1
        rows, cols = halving_sides(height, stages)[::-1], halving_sides(width, stages)[::-1]
        x = nn.Dense(rows[0] * cols[0] * self.widths[0], use_bias=False, kernel_init=_WEIGHT_INIT, dtype=self.dtype)(
            z.astype(self.dtype)
        )
        x = x.reshape(x.shape[0], rows[0], cols[0], self.widths[0])
        x = nn.relu(_batch_norm(train, self.bn_momentum, self.dtype)(x))
        for stage, features in enumerate(self.widths[1:]):
            padding = (
                transpose_padding(rows[stage], rows[stage + 1], self.kernel_size),
                transpose_padding(cols[stage], cols[stage + 1], self.kernel_size),
            )
            x = nn.ConvTranspose(
                features, (self.kernel_size,) * 2, strides=(2, 2), padding=padding, transpose_kernel=True,
                use_bias=False, kernel_init=_WEIGHT_INIT, dtype=self.dtype,
            )(x)  # fmt: skip
            x = nn.relu(_batch_norm(train, self.bn_momentum, self.dtype)(x))
        x = nn.Conv(channels, (self.kernel_size,) * 2, padding="SAME", kernel_init=_WEIGHT_INIT, dtype=self.dtype)(x)
        return jnp.tanh(x).astype(jnp.promote_types(self.dtype, jnp.float32))


class SmallDCGANDiscriminator(nn.Module):
    """images [B, H, W, C] -> logits [B]: one stride-2 convolution per width, each followed by batch norm and
    LeakyReLU(`leak`), then Dense(1). `space_to_depth` as in `DCGANDiscriminator` (the same function).

    `first_batch_norm=False` replaces the first conv's batch norm by a bias (DCGAN's convention). With it, D
    cannot see a constant added to an input channel: the first conv turns it into a constant per output channel,
    which the batch's mean removes (up to the zero padding at the borders).
    """

    widths: Sequence[int] = (2, 4, 8)
    kernel_size: int = 3
    leak: float = 0.3
    first_batch_norm: bool = True
    bn_momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32
    space_to_depth: bool = True

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool = True) -> jnp.ndarray:
        x = x.astype(self.dtype)
        conv = SpaceToDepthConv if self.space_to_depth else _strided_conv
        for layer, features in enumerate(self.widths):
            norm = layer > 0 or self.first_batch_norm
            x = conv(
                features, self.kernel_size, 2, padding="SAME", use_bias=not norm, kernel_init=_WEIGHT_INIT,
                dtype=self.dtype, name=f"Conv_{layer}",
            )(x)  # fmt: skip
            if norm:
                x = _batch_norm(train, self.bn_momentum, self.dtype)(x)
            x = nn.leaky_relu(x, self.leak)
        logits = nn.Dense(1, kernel_init=_WEIGHT_INIT, dtype=self.dtype, name="logit")(x.reshape(x.shape[0], -1))
        return logits[:, 0].astype(jnp.promote_types(self.dtype, jnp.float32))
