"""The auto-encoder discriminator of the energy-based GANs: EBGAN (Zhao, Mathieu & LeCun 2017, "Energy-based
generative adversarial network") and BEGAN (Berthelot, Schumm & Metz 2017, "BEGAN: Boundary equilibrium
generative adversarial networks").

D is an auto-encoder and its output is an energy, the reconstruction error of its input, low on the data and
high elsewhere; the losses that use it are in `jaxgan.energy`. The module follows the model protocol of this
package (`__call__(x, labels=None, *, train=True)`; batch norm with `use_running_average=not train`, its running
statistics in `batch_stats`) and returns a dict whose main output, "logits", is the energy.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.models.dcgan import (
    _WEIGHT_INIT,
    SpaceToDepthConv,
    SubpixelConvTranspose,
    UnsupportedImageSize,
    _batch_norm,
    _strided_conv,
    generator_plan,
)

ENERGIES = ("mse", "l1")
NORMS = ("batch", "none")
ACTIVATIONS = ("leaky_relu", "elu")


class AutoencoderDiscriminator(nn.Module):
    r"""Auto-encoder discriminator: images [B, H, W, C] -> {"logits": energy [B], "embedding", "reconstruction"}.

    Energy (per example, a mean over the H·W·C pixels):

    .. math::
      \text{mse (EBGAN)}: \ D(x) = \mathrm{mean}\,(x - \mathrm{Dec}(\mathrm{Enc}(x)))^2, \qquad
      \text{l1 (BEGAN)}: \ \mathcal{L}(x) = \mathrm{mean}\,|x - \mathrm{Dec}(\mathrm{Enc}(x))|.

    EBGAN writes the energy as the norm :math:`\|\mathrm{Dec}(\mathrm{Enc}(x)) - x\|`, which its
    implementations compute as the mean squared error; BEGAN's :math:`\mathcal{L}(v) = |v - D(v)|^\eta` takes
    :math:`\eta = 1`. A mean rather than a sum keeps the EBGAN margin and the BEGAN losses on the same scale for
    every image size.

    Architecture, with n = the number of stride-2 stages of `generator_plan` (28x28: 7x7 after n = 2; 32x32: 4x4
    after n = 3; 8x8: 2x2 after n = 2):
      encoder: n x [Conv(base_width * 2^i, stride 2, SAME) -> (BN but on the first) -> act]
               -> flatten -> Dense(embedding_dim) = h (linear, as BEGAN's embedding);
      decoder: h -> Dense(h0 * w0 * base_width * 2^(n-1)) -> reshape -> (BN) -> act
               -> (n-1) x [ConvTranspose(stride 2, SAME), channels halved -> (BN) -> act]
               -> ConvTranspose(C, stride 2, SAME), linear.
    The decoder mirrors the DCGAN generator. Its output is linear (no tanh): a reconstruction that cannot
    saturate keeps the energy's gradient alive at any error (BEGAN's decoder, too, ends in a plain
    convolution). act is LeakyReLU(0.2) (`activation="leaky_relu"`, DCGAN-style as EBGAN) or ELU (`"elu"`,
    BEGAN). `norm="batch"` (EBGAN) puts batch norm after every hidden conv of the encoder but the first and after
    every hidden layer of the decoder; `"none"` (BEGAN) has none, and then each example's energy depends on that
    example only (what input-gradient penalties need). Weights ~ N(0, 0.02) as in DCGAN.

    Deliberate simplifications of BEGAN's network (Section 3.5: two 3x3 convs per scale, channels growing
    linearly, nearest-neighbour upsampling): one 4x4 conv per scale with doubling widths, as EBGAN, and learned
    sub-pixel upsampling. The strided convs are computed as `SpaceToDepthConv` (the same parameters and outputs
    as nn.Conv, faster derivatives on XLA's CPU backend), or as nn.Conv with `space_to_depth=False`; the
    transposed convs as `SubpixelConvTranspose`. Labels are ignored (unconditional).

    Supported image sizes: those of `generator_plan` (sides 2^n >= 4 and 7*2^k >= 14, the same number of doublings
    for height and width); others raise a one-line ValueError. Outputs are float32 (or wider) whatever `dtype`.
    """

    base_width: int = 64
    embedding_dim: int = 64
    kernel_size: int = 4
    energy: str = "mse"  # "mse" (EBGAN) or "l1" (BEGAN)
    norm: str = "batch"  # "batch" (EBGAN) or "none" (BEGAN)
    activation: str = "leaky_relu"  # "leaky_relu" (EBGAN) or "elu" (BEGAN)
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32
    space_to_depth: bool = True

    def _act(self, x: jnp.ndarray) -> jnp.ndarray:
        return nn.leaky_relu(x, 0.2) if self.activation == "leaky_relu" else nn.elu(x)

    def _normalize(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        return _batch_norm(train, self.bn_momentum, self.dtype)(x) if self.norm == "batch" else x

    def _check(self, x: jnp.ndarray) -> tuple[int, int, int]:
        for field, value, allowed in (
            ("energy", self.energy, ENERGIES),
            ("norm", self.norm, NORMS),
            ("activation", self.activation, ACTIVATIONS),
        ):
            if value not in allowed:
                raise ValueError(
                    f"AutoencoderDiscriminator: {field} must be one of {', '.join(allowed)}; got {value!r}"
                )
        if x.ndim != 4:
            raise ValueError(f"AutoencoderDiscriminator: expects images [batch, H, W, C], got shape {tuple(x.shape)}")
        height, width = x.shape[1], x.shape[2]
        try:
            return generator_plan((height, width, x.shape[3]))
        except UnsupportedImageSize:
            raise UnsupportedImageSize(
                f"AutoencoderDiscriminator: unsupported image size {height}x{width}; supported sides are 2^n (4, 8, "
                f"16, 32, ...) and 7·2^k with k ≥ 1 (14, 28, 56, ...), with the same number of doublings for height and width"
            ) from None

    @nn.compact
    def __call__(
        self, x: jnp.ndarray, labels: jnp.ndarray | None = None, *, train: bool = True
    ) -> dict[str, jnp.ndarray]:
        h0, w0, stages = self._check(x)
        out_dtype = jnp.promote_types(self.dtype, jnp.float32)
        batch, channels = x.shape[0], x.shape[3]
        y = x.astype(self.dtype)

        conv = SpaceToDepthConv if self.space_to_depth else _strided_conv
        for layer in range(stages):
            normed = layer > 0 and self.norm == "batch"
            y = conv(  # named as nn.Conv layers would be: the same parameter tree either way
                self.base_width * 2**layer, self.kernel_size, 2, padding="SAME", use_bias=not normed,
                kernel_init=_WEIGHT_INIT, dtype=self.dtype, name=f"Conv_{layer}",
            )(y)  # fmt: skip
            y = self._act(self._normalize(y, train) if normed else y)
        embedding = nn.Dense(self.embedding_dim, kernel_init=_WEIGHT_INIT, dtype=self.dtype, name="encode")(
            y.reshape(batch, -1)
        )

        width = self.base_width * 2 ** (stages - 1)
        normed = self.norm == "batch"
        y = nn.Dense(h0 * w0 * width, use_bias=not normed, kernel_init=_WEIGHT_INIT, dtype=self.dtype, name="decode")(
            embedding
        )
        y = self._act(self._normalize(y.reshape(batch, h0, w0, width), train))
        for stage in range(stages - 1):
            width //= 2
            y = SubpixelConvTranspose(
                width, self.kernel_size, use_bias=not normed, kernel_init=_WEIGHT_INIT, dtype=self.dtype,
                name=f"ConvTranspose_{stage}",
            )(y)  # fmt: skip
            y = self._act(self._normalize(y, train))
        y = SubpixelConvTranspose(
            channels, self.kernel_size, kernel_init=_WEIGHT_INIT, dtype=self.dtype, name=f"ConvTranspose_{stages - 1}"
        )(y)

        reconstruction = y.astype(out_dtype)
        # The error in float32 (or wider) even for a bfloat16 network: it is the discriminator's only output.
        error = x.astype(out_dtype) - reconstruction
        error = jnp.square(error) if self.energy == "mse" else jnp.abs(error)
        return {
            "logits": jnp.mean(error.reshape(batch, -1), axis=-1),
            "embedding": embedding.astype(out_dtype),
            "reconstruction": reconstruction,
        }


__all__ = ["ACTIVATIONS", "AutoencoderDiscriminator", "ENERGIES", "NORMS"]
