r"""StyleGAN2-lite (Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and improving the image
quality of StyleGAN", https://arxiv.org/abs/1912.04958) for small images (28x28, 32x32, any size
`generator_plan` supports): a mapping network z -> w, a synthesis network driven by weight (de)modulation with a
skip architecture, a residual discriminator with minibatch standard deviation, and the path length regularizer as
a pure function (`jaxgan.updates.with_lazy_regularization` runs it and R1 lazily; the registry name is "stylegan2").

What follows the paper and its official code:
  * equalized learning rate (Karras et al. 2018, "Progressive growing of GANs", Section 4.1) in every layer: a
    weight is stored N(0, 1/λ²) and multiplied at run time by λ/√fan_in (λ the learning-rate multiplier, 0.01 in
    the mapping network, 1 elsewhere; `EqualizedDense`);
  * LeakyReLU(0.2) times √2, the official code's activation gain, which keeps unit second moments through the
    equalized layers;
  * modulated convolutions with demodulation (Section 2.2, eq. 1-3), noise inputs with learned strengths, a
    learned constant input, skip-connected toRGB outputs (Figure 7b), a residual discriminator (Figure 7c) with
    the minibatch standard deviation layer (group 4, one feature) before its last block;
  * the tracked mean w̄ (EMA β = 0.995) and the truncation trick w' = w̄ + ψ(w − w̄); style mixing.

What is simpler ("lite"):
  * 4 mapping layers instead of 8, one `width` for every resolution instead of a width that halves with it;
  * 2x resampling by nearest neighbour (generator: upsample, then a 3x3 convolution; toRGB sum: upsample) and
    2x2 average pooling (discriminator: after its 3x3 convolution; skip path: before its 1x1) instead of the
    paper's transposed / strided convolutions with the [1, 3, 3, 1] binomial blur filter;
  * a tanh on the summed toRGB output by default (`tanh_output`), as this package's other generators, so
    samples lie in [-1, 1]; the paper's output is linear;
  * no class conditioning (labels are ignored), no output clamping, no mixed-precision tricks.

Parameter counts (measured; z_dim 64, width 64, w_dim 64, the defaults): 32x32x3: G 323,148 params (+ 64 w̄
values of model state), D 337,281; 28x28x1: G 238,211, D 394,369 (its dense layer reads the 7x7 map).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models import progan
from jaxgan.models.dcgan import UnsupportedImageSize, generator_plan
from jaxgan.penalties import safe_sqrt

Array = jax.Array

_LRELU_GAIN = math.sqrt(2.0)
_DEMOD_EPS = 1e-8  # the official code's ε inside the demodulation's square root


def _lrelu(x: Array) -> Array:
    """LeakyReLU(0.2)·√2: the gain restores the second moment the negative half loses (the official `lrelu`)."""
    return nn.leaky_relu(x, 0.2) * jnp.asarray(_LRELU_GAIN, x.dtype)


def _upsample(x: Array) -> Array:
    """Nearest-neighbour 2x upsampling of [B, H, W, C]."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x: Array) -> Array:
    """2x2 average pooling, stride 2 (the supported sides, 7·2^k and 2^k, halve exactly)."""
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


def _conv(x: Array, kernel: Array) -> Array:
    """Stride-1 "SAME" convolution, NHWC with an HWIO kernel."""
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _plan(image_shape: tuple[int, ...], who: str) -> tuple[int, int, int]:
    """`generator_plan` (start height, start width, number of 2x stages) with `who` in its one-line error."""
    try:
        return generator_plan(tuple(image_shape))
    except UnsupportedImageSize as error:
        raise UnsupportedImageSize(str(error).replace("DCGANGenerator", who)) from None


def style_layer_count(image_shape: tuple[int, int, int]) -> int:
    r"""The number of style inputs (w vectors) of `StyleGAN2Generator` for `image_shape`: 2n + 2 for n 2x
    stages (32x32: n = 3, 8 layers; 28x28: n = 2, 6 layers).

    Layer ℓ counts the modulated layers in order: the first block's convolution is 0 and its toRGB 1; block
    i ≥ 1 has its up-sampling convolution at 2i − 1, its second convolution at 2i and its toRGB at 2i + 1. As in
    the official code, a toRGB layer shares its index with the next block's first convolution (both read the
    same w). The training loop draws a style-mixing `crossover` in [1, style_layer_count) (the official code's
    `randint(1, num_ws)`).
    """
    return 2 * _plan(image_shape, "StyleGAN2Generator")[2] + 2


# ---------------------------------------------------------------------------------------------------------------
# Equalized-learning-rate layers.
# ---------------------------------------------------------------------------------------------------------------


# A dense layer with equalized learning rate and a learning-rate multiplier (`lr_multiplier`, 0.01 in the mapping
# network; `bias_init`, 1 for the style affine), gain 1 (the activation carries it): ProGAN's layer.
EqualizedDense = functools.partial(progan.EqualizedDense, gain=1.0)


# A stride-1 "SAME" convolution with equalized learning rate, kernel stored N(0, 1) and used as V/√(k²·in) (gain 1):
# ProGAN's layer (jaxgan/models/progan.py).
EqualizedConv = functools.partial(progan.EqualizedConv, gain=1.0)


# ---------------------------------------------------------------------------------------------------------------
# Generator.
# ---------------------------------------------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    r"""StyleGAN's mapping network f: Z -> W (Karras et al. 2019, Section 2; StyleGAN2 keeps it):

    .. math::
      x_0 = z / \sqrt{\mathrm{mean}_j z_j^2 + 10^{-8}}, \qquad
      x_{l+1} = \mathrm{lrelu}_{0.2}(\mathrm{EqualizedDense}_\lambda(x_l)) \cdot \sqrt2, \qquad w = x_L,

    the pixel norm of the first line putting every z on the sphere of radius √z_dim; L = `num_layers` (8 in the
    paper, 4 here) layers of `width` units each (w = x_L has `width` entries), learning-rate multiplier
    λ = `lr_multiplier` = 0.01 (stored weights N(0, 1/λ²), used times λ/√fan_in; see `EqualizedDense`). Any
    z_dim works. z [B, z_dim] -> w [B, width].
    """

    num_layers: int = 4
    width: int = 64
    lr_multiplier: float = 0.01
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: Array) -> Array:
        z = z.astype(jnp.float32)
        x = z * jax.lax.rsqrt(jnp.mean(jnp.square(z), axis=-1, keepdims=True) + 1e-8)
        for layer in range(self.num_layers):
            x = _lrelu(EqualizedDense(self.width, lr_multiplier=self.lr_multiplier, dtype=self.dtype, name=f"dense_{layer}")(x))
        return x


class ModulatedConv(nn.Module):
    r"""StyleGAN2's modulated convolution (Karras et al. 2020, Section 2.2, eq. 1-3): x [B, H, W, in] and
    w [B, w_dim] -> [B, H', W', features], H' = 2H with `up`, else H.

    With the style s = A(w) [B, in] (A an `EqualizedDense` named "affine", its bias initialised to 1 as in the
    official code, so styles are centred on 1) and the stored kernel V [k, k, in, out] ~ N(0, 1) (equalized: w_ijk = V_kij / √(k²·in)), example b
    uses the weights

    .. math::
      w'_{ijk} = s_i \cdot w_{ijk}, \qquad
      w''_{ijk} = w'_{ijk} \Big/ \sqrt{\textstyle\sum_{i,k} {w'_{ijk}}^2 + \epsilon} \quad (\text{demodulate}),

    i the input channel, j the output channel, k the tap, ε = 1e-8. With inputs of unit variance, i.i.d., each
    output of the demodulated convolution then has unit variance (eq. 2-3). No bias (the synthesis layer adds it
    after the noise).

    Computed without per-example kernels: scaling the input by s, one convolution shared by the batch, then
    scaling output j by d_j = (Σ_i s_i² Σ_k w_ijk² + ε)^{-1/2} is the same linear map, since s_i is constant over
    taps and d_j over inputs and positions (the official code's non-fused path; the paper's grouped convolution
    is the fused one).

    `up=True`: nearest-neighbour 2x upsampling of the (modulated) input, then the k x k convolution; the paper
    uses a stride-2 transposed convolution followed by a [1, 3, 3, 1] blur. Modulation commutes with nearest
    upsampling, and demodulation keeps its meaning (each output reads k² taps of i.i.d.-like inputs).
    """

    features: int
    kernel_size: int = 3
    demodulate: bool = True
    up: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, w: Array) -> Array:
        in_channels, k = x.shape[-1], self.kernel_size
        styles = EqualizedDense(in_channels, bias_init=1.0, name="affine")(w.astype(jnp.float32))  # [B, in], float32
        kernel = self.param(
            "kernel", nn.initializers.normal(stddev=1.0), (k, k, in_channels, self.features), jnp.float32
        ) / math.sqrt(k * k * in_channels)
        x = x.astype(self.dtype) * styles[:, None, None, :].astype(self.dtype)
        if self.up:
            x = _upsample(x)
        y = _conv(x, kernel.astype(self.dtype))
        if self.demodulate:
            # Σ_{i,k} (s_i w_ijk)² = Σ_i s_i² Σ_k w_ijk², in float32 whatever `dtype`.
            norms = jnp.square(styles) @ jnp.sum(jnp.square(kernel), axis=(0, 1))  # [B, out]
            y = y * jax.lax.rsqrt(norms + _DEMOD_EPS)[:, None, None, :].astype(self.dtype)
        return y


class NoiseInput(nn.Module):
    r"""Per-pixel noise with learned per-channel strengths (Karras et al. 2019, Section 2, "B" in Figure 1):

    .. math::
      y_{bhwc} = x_{bhwc} + \alpha_c \, n_{bhw}, \qquad n_{bhw} \sim N(0, 1),

    one single-channel noise image per example broadcast to all channels, α ("strength", [C]) initialised to 0
    (the official StyleGAN2 code learns one α per layer; per channel is StyleGAN's form).

    The noise is drawn from the "noise" RNG stream (`self.make_rng("noise")`, a fresh key per layer and call)
    when the caller passes one (`rngs={"noise": key}`); without it the noise is zero and the layer is the
    identity, so evaluation and `init` are deterministic. The strengths are parameters either way.
    """

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        strength = self.param("strength", nn.initializers.zeros_init(), (x.shape[-1],), jnp.float32)
        if not self.has_rng("noise"):
            return x
        noise = jax.random.normal(self.make_rng("noise"), x.shape[:-1] + (1,), jnp.float32)
        return x + (noise * strength).astype(x.dtype)


class SynthesisLayer(nn.Module):
    """One layer of the synthesis network: `ModulatedConv` (3x3, demodulated) -> `NoiseInput` -> + bias ->
    LeakyReLU(0.2)·√2, the order of the official code."""

    features: int
    up: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, w: Array) -> Array:
        x = ModulatedConv(self.features, 3, demodulate=True, up=self.up, dtype=self.dtype, name="conv")(x, w)
        x = NoiseInput(dtype=self.dtype, name="noise")(x)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        return _lrelu(x + bias.astype(x.dtype))


class ToRGB(nn.Module):
    """The skip architecture's output layer: a modulated 1x1 convolution without demodulation (the image's
    scale carries information; Karras et al. 2020, Figure 7b and the official code) plus a bias, linear."""

    channels: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, w: Array) -> Array:
        y = ModulatedConv(self.channels, 1, demodulate=False, dtype=self.dtype, name="conv")(x, w)
        return y + self.param("bias", nn.initializers.zeros_init(), (self.channels,), jnp.float32).astype(y.dtype)


class SynthesisNetwork(nn.Module):
    r"""StyleGAN2's synthesis network with the skip architecture (Karras et al. 2020, Figure 7b): ws
    [B, style_layer_count(image_shape), w_dim] -> images [B, H, W, C].

    With the start size h0 x w0 and n 2x stages of `generator_plan` (32x32: 4x4, n = 3; 28x28: 7x7, n = 2):

        block 0:  x = SynthesisLayer(const)              rgb = ToRGB(x)
        block i:  x = SynthesisLayer(x, up), SynthesisLayer(x)   rgb = upsample(rgb) + ToRGB(x)   (i = 1..n)
        images = tanh(rgb)   (rgb itself with tanh_output=False, the paper's linear output)

    const ("const", [h0, w0, width]) a learned input ~ N(0, 1); every layer `width` channels; the style index of
    each layer as in `style_layer_count`; upsampling of the summed image by nearest neighbour (the paper: the
    [1, 3, 3, 1] filter). Block 0 has one convolution, as in the paper.
    """

    image_shape: tuple[int, int, int]
    width: int = 64
    tanh_output: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, ws: Array) -> Array:
        h0, w0, stages = _plan(self.image_shape, "StyleGAN2Generator")
        count = 2 * stages + 2
        if ws.ndim != 3 or ws.shape[1] != count:
            raise ValueError(f"SynthesisNetwork: ws must be [batch, {count}, w_dim] for {tuple(self.image_shape)}, got {ws.shape}")
        channels = self.image_shape[2]
        const = self.param("const", nn.initializers.normal(stddev=1.0), (h0, w0, self.width), jnp.float32)
        x = jnp.broadcast_to(const.astype(self.dtype), (ws.shape[0], h0, w0, self.width))
        x = SynthesisLayer(self.width, dtype=self.dtype, name="block_0_conv")(x, ws[:, 0])
        rgb = ToRGB(channels, dtype=self.dtype, name="block_0_torgb")(x, ws[:, 1])
        for block in range(1, stages + 1):
            x = SynthesisLayer(self.width, up=True, dtype=self.dtype, name=f"block_{block}_conv0")(x, ws[:, 2 * block - 1])
            x = SynthesisLayer(self.width, dtype=self.dtype, name=f"block_{block}_conv1")(x, ws[:, 2 * block])
            rgb = _upsample(rgb) + ToRGB(channels, dtype=self.dtype, name=f"block_{block}_torgb")(x, ws[:, 2 * block + 1])
        rgb = rgb.astype(jnp.promote_types(self.dtype, jnp.float32))
        return jnp.tanh(rgb) if self.tanh_output else rgb


class StyleGAN2Generator(nn.Module):
    r"""StyleGAN2-lite generator (Karras et al. 2020): z [B, z_dim] -> images [B, H, W, C] in [-1, 1]
    (any z_dim); `MappingNetwork` then `SynthesisNetwork`, for the image sizes of `generator_plan`
    (unsupported ones raise a one-line ValueError).

    Methods, usable with `module.apply(..., method=...)`:
      * `mapping(z, *, train, mixing_z, crossover, truncation_psi)` -> ws [B, L, w_dim], L = `style_layer_count`;
      * `synthesize(ws)` -> images (path length regularization differentiates this with respect to ws);
      * `__call__(z, labels=None, *, train=True, mixing_z=None, crossover=None, truncation_psi=None)`:
        `synthesize(mapping(...))`. Labels are ignored (unconditional).

    Style mixing (Karras et al. 2019, Section 3.1): with `mixing_z` [B, z_dim] and `crossover` [B] int (traced
    values are fine), layer ℓ of example b reads w(mixing_z_b) where ℓ ≥ crossover_b and w(z_b) below;
    crossover 0 gives the second latent's image, crossover ≥ L the first's. Both or neither must be given.

    Tracked mean and truncation (Karras et al. 2019, Appendix B; StyleGAN2 keeps them): w̄ ("w_avg", in the
    `mapping_stats` collection, model state, 0 at initialisation) follows

    .. math::
      \bar w \leftarrow \beta \bar w + (1 - \beta) \, \mathrm{mean}_b \, w(z_b), \qquad \beta = 0.995,

    on every call with `train=True` (not while initialising; pass `mutable=["mapping_stats"]`), from the first
    latent's w before mixing and truncation, as the official code does; `train=False` leaves it as is. The
    truncation trick w' = w̄ + ψ(w − w̄) is applied to every layer's w (after mixing) when ψ ≠ 1: ψ is the call's
    `truncation_psi` when given, else the attribute `truncation_psi` (1: none), so a copy
    `module.clone(truncation_psi=0.7)` samples truncated images through the player protocol.

    Noise inputs are drawn from the "noise" RNG stream when given, zero otherwise (see `NoiseInput`).

    Mixing regularization in training (Karras et al. 2019, Section 3.1; StyleGAN2 keeps it with probability 0.9):
    with `mixing_probability` p > 0, a call with `train=True`, no explicit `mixing_z` and a "noise" RNG stream
    draws a second latent z₂ ~ N(0, I) and, with probability p, one crossover c uniform on {1, ..., L − 1} for the
    batch (else c = L, no mixing), as the official code does; the batch is then generated as with
    `mixing_z=z₂, crossover=c`. Evaluation (`train=False`) never mixes.
    """

    image_shape: tuple[int, int, int]
    width: int = 64
    mapping_layers: int = 4
    w_dim: int = 64
    w_avg_beta: float = 0.995
    truncation_psi: float = 1.0
    tanh_output: bool = True
    mixing_probability: float = 0.0
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.mapping_network = MappingNetwork(self.mapping_layers, self.w_dim, dtype=self.dtype)
        self.synthesis_network = SynthesisNetwork(tuple(self.image_shape), self.width, self.tanh_output, self.dtype)
        self.w_avg = self.variable("mapping_stats", "w_avg", jnp.zeros, (self.w_dim,), jnp.float32)

    def mapping(
        self,
        z: Array,
        *,
        train: bool = True,
        mixing_z: Array | None = None,
        crossover: Array | None = None,
        truncation_psi: float | Array | None = None,
    ) -> Array:
        """z [B, z_dim] -> ws [B, L, w_dim]: w̄'s update, style mixing and truncation as in the class docstring."""
        layers = style_layer_count(tuple(self.image_shape))
        if (mixing_z is None) != (crossover is None):
            raise ValueError("StyleGAN2Generator: style mixing needs both mixing_z [batch, z_dim] and crossover [batch]")
        if mixing_z is None:
            w = self.mapping_network(z)
            ws = jnp.broadcast_to(w[:, None, :], (w.shape[0], layers, w.shape[1]))
        else:
            both = self.mapping_network(jnp.concatenate([z, mixing_z], axis=0))  # one pass for both latents
            w, w_mix = both[: z.shape[0]], both[z.shape[0] :]
            second = jnp.arange(layers)[None, :] >= jnp.asarray(crossover)[:, None]  # [B, L]
            ws = jnp.where(second[:, :, None], w_mix[:, None, :], w[:, None, :])
        if train and not self.is_initializing():
            mean_w = jnp.mean(jax.lax.stop_gradient(w).astype(jnp.float32), axis=0)
            self.w_avg.value = self.w_avg_beta * self.w_avg.value + (1.0 - self.w_avg_beta) * mean_w
        psi = self.truncation_psi if truncation_psi is None else truncation_psi
        if not (isinstance(psi, (int, float)) and psi == 1.0):
            w_avg = self.w_avg.value.astype(ws.dtype)
            ws = w_avg + jnp.asarray(psi, ws.dtype) * (ws - w_avg)
        return ws

    def synthesize(self, ws: Array) -> Array:
        """ws [B, L, w_dim] -> images [B, H, W, C]."""
        return self.synthesis_network(ws)

    def __call__(
        self,
        z: Array,
        labels: Array | None = None,
        *,
        train: bool = True,
        mixing_z: Array | None = None,
        crossover: Array | None = None,
        truncation_psi: float | Array | None = None,
    ) -> Array:
        drawn = train and mixing_z is None and self.mixing_probability > 0 and not self.is_initializing()
        if drawn and self.has_rng("noise"):
            mixing_z, crossover = self._mixing_draw(z)
        ws = self.mapping(z, train=train, mixing_z=mixing_z, crossover=crossover, truncation_psi=truncation_psi)
        return self.synthesize(ws)

    def _mixing_draw(self, z: Array) -> tuple[Array, Array]:
        """(z₂ [B, z_dim], crossover [B]) of mixing regularization: one crossover for the batch (the official code's)."""
        layers = style_layer_count(tuple(self.image_shape))
        z_key, cut_key, coin_key = jax.random.split(self.make_rng("noise"), 3)
        cut = jax.random.randint(cut_key, (), 1, layers)
        cut = jnp.where(jax.random.uniform(coin_key, ()) < self.mixing_probability, cut, layers)
        return jax.random.normal(z_key, z.shape, z.dtype), jnp.full(z.shape[:1], cut, jnp.int32)


# ---------------------------------------------------------------------------------------------------------------
# Discriminator.
# ---------------------------------------------------------------------------------------------------------------


class ResidualDiscriminatorBlock(nn.Module):
    """The residual block of StyleGAN2's discriminator (Karras et al. 2020, Figure 7c): with lrelu the
    LeakyReLU(0.2)·√2 and every convolution equalized,

        residual: conv3x3 -> lrelu -> conv3x3 -> avg pool 2x2 -> lrelu
        skip:     avg pool 2x2 -> conv1x1 (no bias)
        output:   (residual + skip) / √2,

    the 1/√2 keeping the variance of the sum of two unit-variance paths (the official code's choice)."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        h = _lrelu(EqualizedConv(self.features, 3, dtype=self.dtype, name="conv0")(x))
        h = _lrelu(_downsample(EqualizedConv(self.features, 3, dtype=self.dtype, name="conv1")(h)))
        skip = EqualizedConv(self.features, 1, use_bias=False, dtype=self.dtype, name="skip")(_downsample(x))
        return (h + skip) * jnp.asarray(1.0 / math.sqrt(2.0), h.dtype)


class StyleGAN2Discriminator(nn.Module):
    """StyleGAN2-lite's residual discriminator (Karras et al. 2020, Figure 7c): images [B, H, W, C] -> logits
    [B] (float32 or wider).

        x -> fromRGB (1x1 conv -> lrelu) -> n x ResidualDiscriminatorBlock (halving) -> minibatch stddev
          -> conv3x3 -> lrelu -> flatten -> dense(width) -> lrelu -> dense(1)

    n the number of 2x stages of `generator_plan` for the image size (32x32: 32 -> 16 -> 8 -> 4; 28x28: 28 -> 14
    -> 7), unsupported sizes a one-line ValueError. `width` channels everywhere, lrelu = LeakyReLU(0.2)·√2,
    every layer equalized (`EqualizedConv`, `EqualizedDense`), minibatch standard deviation with groups of
    `mbstd_group_size` (4) and `mbstd_features` (1) feature. Labels and `train` are accepted for the player
    protocol and unused (no batch statistics, unconditional).
    """

    width: int = 64
    mbstd_group_size: int = 4
    mbstd_features: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, labels: Array | None = None, *, train: bool = True) -> Array:
        _, _, stages = _plan(x.shape[1:], "StyleGAN2Discriminator")
        conv = functools.partial(EqualizedConv, self.width, dtype=self.dtype)
        h = _lrelu(conv(1, name="from_rgb")(x))
        for block in range(stages):
            h = ResidualDiscriminatorBlock(self.width, dtype=self.dtype, name=f"block_{block}")(h)
        h = progan.minibatch_stddev(h, self.mbstd_group_size, self.mbstd_features)
        h = _lrelu(conv(3, name="epilogue_conv")(h))
        h = _lrelu(EqualizedDense(self.width, dtype=self.dtype, name="epilogue_dense")(h.reshape(h.shape[0], -1)))
        logits = EqualizedDense(1, dtype=self.dtype, name="logit")(h)[:, 0]
        return logits.astype(jnp.promote_types(self.dtype, jnp.float32))


# ---------------------------------------------------------------------------------------------------------------
# Regularizers.
# ---------------------------------------------------------------------------------------------------------------


def path_length_penalty(
    generate_fn: Callable[[Array], Array], w: Array, key: Array, pl_mean: Array | float, decay: float = 0.01
) -> tuple[Array, Array, Array]:
    r"""StyleGAN2's path length regularizer (Karras et al. 2020, Section 3.2, eq. 4):

    .. math::
      L_b = \big\| J_{w_b}^\top y_b \big\|_2, \quad y \sim N(0, I) / \sqrt{H W}, \qquad
      a' = a + \delta\,(\mathrm{mean}_b L_b - a), \qquad
      P = \mathrm{mean}_b (L_b - a')^2,

    J_w = ∂g(w)/∂w the Jacobian of the generated images, computed as one `jax.vjp` of `generate_fn` with the
    cotangent y (exactly ``jax.random.normal(key, images.shape, images.dtype) / sqrt(H·W)``; the normalisation
    by the image area, the official code's, makes the lengths independent of the resolution); a = `pl_mean`,
    the exponential moving average of the lengths with decay δ (0.01), updated before the penalty as in the
    official code. For per-layer ws [B, L, w_dim] the length is √(mean_ℓ Σ_j g_bℓj²) with g = J_wᵀy (the
    official code's mean over layers); for w [B, w_dim], ‖g_b‖. The paper's penalty weight, with the lazy
    interval 4 (`jaxgan.updates.with_lazy_regularization`), is 2 (official code: pl_weight = 2 on a half batch).

    The lengths, and P through them, are differentiable with respect to whatever `generate_fn` closes over
    (take `jax.grad` of P over G's parameters); the new mean is `stop_gradient`-ed and is the constant target
    a' in P (the official code lets a gradient of weight δ flow through a'). `generate_fn` must map examples
    independently (StyleGAN2's synthesis does), e.g. with a player's parameters and a fresh noise key::

        generate_fn = lambda ws: generator.apply({"params": p, **state}, ws, method="synthesize", rngs={"noise": k})

    Args:
      generate_fn: w [B, ...] -> images [B, H, W, C] (any rank ≥ 2: the area is the product of the axes between
        the first and the last).
      w: the latents to differentiate at, [B, w_dim] or [B, L, w_dim].
      key: PRNG key for y.
      pl_mean: the current a, a scalar (start at 0).
      decay: δ.

    Returns:
      (P, a', L): a scalar, a scalar, and the lengths [B].
    """
    images, pullback = jax.vjp(generate_fn, w)
    area = math.prod(images.shape[1:-1])
    y = jax.random.normal(key, images.shape, images.dtype) / math.sqrt(area)
    (grads,) = pullback(y)
    squared = jnp.sum(jnp.square(grads.astype(jnp.float32)), axis=-1)  # [B] or [B, L]
    if squared.ndim > 1:
        squared = jnp.mean(squared.reshape(squared.shape[0], -1), axis=1)
    lengths = safe_sqrt(squared)
    pl_mean = jnp.asarray(pl_mean, jnp.float32)
    new_pl_mean = jax.lax.stop_gradient(pl_mean + decay * (jnp.mean(lengths) - pl_mean))
    penalty = jnp.mean(jnp.square(lengths - new_pl_mean))
    return penalty, new_pl_mean, lengths


__all__ = [
    "EqualizedConv", "EqualizedDense", "MappingNetwork", "ModulatedConv", "NoiseInput", "ResidualDiscriminatorBlock", "StyleGAN2Discriminator",
    "StyleGAN2Generator", "SynthesisLayer", "SynthesisNetwork", "ToRGB", "path_length_penalty", "style_layer_count",
]  # fmt: skip
