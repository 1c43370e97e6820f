"""Progressive growing of GANs (Karras, Aila, Laine & Lehtinen 2018, "Progressive growing of GANs for improved
quality, stability, and variation", ProGAN), for images up to 32x32 (and 28x28): the generator and discriminator
grow from a start resolution (4x4 for sides 4·2^k, 7x7 for sides 7·2^k) by doubling it stage by stage, each new
stage faded in smoothly, with the paper's three stabilisers:

* equalized learning rate (Section 4.1): weights stored ~ N(0, 1) and multiplied at run time by He's constant
  c = gain/√fan_in (`EqualizedDense`, `EqualizedConv`), so that adaptive optimisers (Adam) take steps of the same
  relative size in every layer;
* pixelwise feature normalisation in the generator (Section 4.2, `pixel_norm`);
* the minibatch standard deviation layer in the discriminator (Section 3, `minibatch_stddev`).

Growth without recompiling: both modules take the growth `level` as a (possibly traced) float scalar and compute
every stage at every level, blending them with weights that are functions of `level`; one compiled program
serves the whole schedule (`level_at`), and shapes never change: the generator always outputs, and the
discriminator always reads, full-resolution images. The price is that every stage is computed at every level,
so the early, low-resolution phases cost as much compute as the fully grown networks (stages a level does not
use get exactly zero weight, hence exactly zero gradient).

Both modules follow the model protocol of this package: `__call__(x, labels=None, *, level=None, train=True)`,
compute in `dtype`, outputs cast to `promote_types(dtype, float32)`; they are unconditional (labels are ignored)
and stateless (no batch norm: no model state). `level=None` means fully grown (level = num_stages − 1).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.dcgan import UnsupportedImageSize

_LEAK = 0.2  # LeakyReLU slope of both players (the paper's)
_HE_GAIN = math.sqrt(2.0)


def _is_pow2(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _side_plan(size: int) -> tuple[int, int] | None:
    """(start side, number of doublings) for one image side: 7·2^k starts at 7, 4·2^k at 4; else None."""
    for start in (7, 4):
        if size >= start and size % start == 0 and _is_pow2(size // start):
            return start, int(math.log2(size // start))
    return None


def progressive_plan(image_shape: tuple[int, ...], who: str = "progressive_plan") -> tuple[int, int, int]:
    """(start height, start width, number of stages) of the progressive players for [H, W, C] `image_shape`.

    Stage k has resolution (start height · 2^k) x (start width · 2^k); the last stage, num_stages − 1, is the
    full resolution. Sides 4·2^k start at 4 (32x32: 4 -> 8 -> 16 -> 32, 4 stages), sides 7·2^k at 7 (28x28:
    7 -> 14 -> 28, 3 stages); both sides need the same number of doublings. Anything else raises a one-line
    ValueError that names `who`.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    plan_h, plan_w = _side_plan(height), _side_plan(width)
    if plan_h is None or plan_w is None or plan_h[1] != plan_w[1]:
        raise UnsupportedImageSize(
            f"{who}: unsupported image size {height}x{width}; supported sides are 4·2^k (4, 8, 16, 32, ...) and "
            f"7·2^k (7, 14, 28, ...), with the same number of doublings for height and width"
        )
    return plan_h[0], plan_w[0], plan_h[1] + 1


def stage_widths(num_stages: int, max_width: int, min_width: int = 16) -> list[int]:
    """Feature maps per stage: `max_width` at the start resolution, halved with every doubling of the resolution
    and never below `min_width` (nor above `max_width`), as the paper's networks narrow towards high resolutions
    (its Table 2: 512 up to 32x32, then 256, 128, ...)."""
    floor = min(min_width, max_width)
    return [max(max_width >> k, floor) for k in range(num_stages)]


def level_at(step: jax.Array | int, steps_per_phase: int, num_stages: int) -> jax.Array:
    """Growth level after `step` training steps under the paper's schedule (Section 3 and Appendix A.1: 800k
    images per phase there).

    The start resolution trains for one phase; then each new resolution is first faded in for one phase, its
    weight α rising linearly from 0 to 1, and then trained stabilised for one phase. With P = `steps_per_phase`,
    phase p = ⌊step / P⌋ and r = (step mod P) / P:

        level(step) = min(⌊p/2⌋ + [p odd]·r,  num_stages − 1),

    i.e. level 0 for step < P, level s − 1 + r while stage s fades in (p = 2s − 1) and level s while it is
    stabilised (p = 2s). Fully grown (level num_stages − 1) from step 2·(num_stages − 1)·P on. The level is a
    function of the step alone, so a resumed run continues the schedule exactly. The phase arithmetic is in
    integers (exact for any step); `step` may be traced. Returns a float32 scalar (or an array of the shape of
    `step`).
    """
    if steps_per_phase < 1 or num_stages < 1:
        raise ValueError(
            f"level_at: steps_per_phase and num_stages must be >= 1, got {steps_per_phase} and {num_stages}"
        )
    step = jnp.maximum(jnp.asarray(step), 0)
    phase, within = jnp.divmod(step, steps_per_phase)
    fade = jnp.where(phase % 2 == 1, within.astype(jnp.float32) / steps_per_phase, 0.0)
    level = (phase // 2).astype(jnp.float32) + fade
    return jnp.minimum(level, float(num_stages - 1))


def pixel_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Pixelwise feature vector normalisation (Karras et al. 2018, Section 4.2): at every pixel,

        b = a / sqrt((1/N) Σ_j a_j² + ε),

    N the number of channels (the last axis), so each feature vector has unit mean square. The mean square is
    computed in float32 (or wider); the result has x's dtype."""
    wide = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    scale = jax.lax.rsqrt(jnp.mean(jnp.square(wide), axis=-1, keepdims=True) + eps)
    return (wide * scale).astype(x.dtype)


def minibatch_stddev(x: jax.Array, group_size: int = 4, num_features: int = 1, eps: float = 1e-8) -> jax.Array:
    """Minibatch standard deviation layer (Karras et al. 2018, Section 3; StyleGAN2's `num_features` form): the
    batch [B, H, W, C] is split into M = B/G groups of G examples, G the largest divisor of B that is at most
    `group_size` (the papers' code needs G | B; this also serves odd evaluation batches), example i in group
    i mod M (the official reshape [G, M, ...]), and the channels into F = `num_features` chunks. For each group and
    chunk f

        σ_hwc = sqrt(Var_group(x_hwc) + ε)   (the population variance over the G examples),
        s_f = mean_{h,w,c in chunk f} σ_hwc,

    and the F values are appended to every example of the group as constant feature maps: [B, H, W, C + F]. It
    lets the discriminator see the variation within a batch, which penalises a generator that collapses modes.

    The output of each example depends on the other examples of its group; a penalty that differentiates the
    discriminator one example at a time (a batch of one) sees s = √ε. Computed in float32 (or wider); the
    result has x's dtype. Raises ValueError when F does not divide C.
    """
    batch, height, width, channels = x.shape
    group = max(g for g in range(1, min(group_size, batch) + 1) if batch % g == 0)
    if channels % num_features != 0:
        raise ValueError(f"minibatch_stddev: {channels} channels do not split into {num_features} features")
    wide = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    grouped = wide.reshape(group, batch // group, height, width, num_features, channels // num_features)
    variance = jnp.mean(jnp.square(grouped - jnp.mean(grouped, axis=0)), axis=0)  # [M, H, W, F, C/F]
    stddev = jnp.mean(jnp.sqrt(variance + eps), axis=(1, 2, 4))  # [M, F]
    feature = jnp.tile(stddev, (group, 1))  # [B, F]: row i is group i mod M
    feature = jnp.broadcast_to(feature[:, None, None, :], (batch, height, width, num_features))
    return jnp.concatenate([x, feature.astype(x.dtype)], axis=-1)


class EqualizedDense(nn.Module):
    """Dense layer with the equalized learning rate (Karras et al. 2018, Section 4.1) and a learning-rate
    multiplier λ (StyleGAN, Karras et al. 2019, Appendix C: λ = 0.01 in the mapping network):

        y = x (λ·c·W) + λ·b,   c = gain / √fan_in,   W ~ N(0, 1/λ²), b = b₀/λ at initialisation,

    fan_in = x.shape[-1], b₀ = `bias_init`. The effective weight λcW starts N(0, c²) and the effective bias at b₀;
    He's constant c is applied at run time, so Adam's scale-invariant steps (about its step size η per stored
    entry) change every layer at the same relative rate, λ times slower where λ < 1. `gain` √2 suits
    LeakyReLU/ReLU layers (the paper's default); 1 suits linear outputs and StyleGAN's layers (whose activation
    carries the gain). Parameters float32, computation in `dtype`.
    """

    features: int
    gain: float = _HE_GAIN
    use_bias: bool = True
    dtype: Any = jnp.float32
    lr_multiplier: float = 1.0
    bias_init: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in, lr = x.shape[-1], self.lr_multiplier
        kernel = self.param("kernel", nn.initializers.normal(stddev=1.0 / lr), (fan_in, self.features), jnp.float32)
        y = x.astype(self.dtype) @ (kernel * (self.gain * lr / math.sqrt(fan_in))).astype(self.dtype)
        if self.use_bias:
            bias = self.param("bias", nn.initializers.constant(self.bias_init / lr), (self.features,), jnp.float32)
            y = y + (bias * lr).astype(self.dtype)
        return y


class EqualizedConv(nn.Module):
    """Stride-1 "SAME" convolution with the equalized learning rate (Karras et al. 2018, Section 4.1):

        y = conv(x, c·W) + b,   c = gain / √(k·k·C_in),   W [k, k, C_in, C_out] ~ N(0, 1) at initialisation, b = 0.

    As `EqualizedDense`: unit-variance stored weights, He's constant at run time. NHWC inputs; parameters
    float32, computation in `dtype`.
    """

    features: int
    kernel_size: int = 3
    gain: float = _HE_GAIN
    use_bias: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, in_channels = self.kernel_size, x.shape[-1]
        shape = (k, k, in_channels, self.features)
        kernel = self.param("kernel", nn.initializers.normal(stddev=1.0), shape, jnp.float32)
        scale = self.gain / math.sqrt(k * k * in_channels)
        y = jax.lax.conv_general_dilated(
            x.astype(self.dtype), (kernel * scale).astype(self.dtype), (1, 1), "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )  # fmt: skip
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32).astype(self.dtype)
        return y


def _upsample(x: jax.Array, factor: int = 2) -> jax.Array:
    """Nearest-neighbour upsampling by `factor` per side (the paper's)."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def _downsample(x: jax.Array) -> jax.Array:
    """2x2 average pooling, stride 2 (the paper's), as a reshape and a mean: its derivatives of every order are
    plain reductions and broadcasts, which XLA's CPU backend runs fast (unlike reduce_window's). Even sides only,
    which every stage above the start has."""
    batch, height, width, channels = x.shape
    return jnp.mean(x.reshape(batch, height // 2, 2, width // 2, 2, channels), axis=(2, 4))


def _leaky_relu(x: jax.Array) -> jax.Array:
    return nn.leaky_relu(x, _LEAK)


def _level(level: float | jax.Array | None, top: int) -> jax.Array:
    """`level` as a float32 scalar in [0, top] (None: fully grown); a traced value cannot be checked, so clip."""
    if level is None:
        return jnp.float32(top)
    return jnp.clip(jnp.asarray(level, jnp.float32), 0.0, float(top))


class _GeneratorBlock(nn.Module):
    """One stage of the generator (Karras et al. 2018, Table 2), every conv followed by LeakyReLU(0.2) and
    `pixel_norm`. The first stage: pixel-normalised z -> dense to start_h x start_w x features -> conv3x3; later
    stages: upsample 2x (nearest) -> conv3x3 -> conv3x3."""

    features: int
    start_shape: tuple[int, int] | None = None  # set for the first stage only
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def conv(h: jax.Array, name: str) -> jax.Array:
            return pixel_norm(_leaky_relu(EqualizedConv(self.features, 3, dtype=self.dtype, name=name)(h)))

        if self.start_shape is not None:
            height, width = self.start_shape
            # gain √2 where the paper's code uses √2/4 (after its Theano version): the pixel norm that follows
            # makes the forward pass at initialisation independent of it.
            h = EqualizedDense(height * width * self.features, dtype=self.dtype, name="dense")(pixel_norm(x))
            h = pixel_norm(_leaky_relu(h.reshape(x.shape[0], height, width, self.features)))
            return conv(h, "conv")
        return conv(conv(_upsample(x), "conv1"), "conv2")


class ProgressiveGenerator(nn.Module):
    """ProGAN's generator (Karras et al. 2018): z [B, z_dim] -> images [B, H, W, C], any z_dim.

    Stages k = 0 .. n (n + 1 = num_stages of `progressive_plan`; 32x32: 4x4, 8x8, 16x16, 32x32), stage k with
    `stage_widths(...)[k]` feature maps (`max_width` halved per doubling, at least `min_width`); each stage ends
    in its own toRGB, a linear 1x1 `EqualizedConv` with gain 1 (block_k and to_rgb_k in the parameter tree).
    The image is built from the start stage upwards, each stage fading in over the upsampled image of the
    stages below it (the paper's Figure 2):

        img_0 = toRGB_0(f_0),   img_k = (1 − t_k)·upsample(img_{k−1}) + t_k·toRGB_k(f_k),
        t_k = clip(level − k + 1, 0, 1),

    so at level = s + α (0 ≤ α < 1) the output is upsample(toRGB_s(f_s))·(1 − α) + toRGB_{s+1}(f_{s+1})·α,
    nearest-upsampled to the full resolution: the output shape never depends on the level. At integer levels
    the weights are exactly 0 and 1, so the stages above s + 1 (and s + 1 itself at α = 0) have no effect and
    get exactly zero gradient. `level` (float, possibly traced; None: fully grown) is clipped to [0, n].

    The output is linear (no tanh), as in the paper; images of the data lie in [-1, 1], samples may overshoot
    slightly, so clip them for display. Every stage is computed at every level (see the module docstring).
    Labels are ignored (unconditional); `train` is accepted for the protocol and unused (no state).
    """

    image_shape: tuple[int, int, int]
    max_width: int = 128
    min_width: int = 16
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        z: jax.Array,
        labels: jax.Array | None = None,
        *,
        level: float | jax.Array | None = None,
        train: bool = True,
    ) -> jax.Array:
        start_h, start_w, num_stages = progressive_plan(self.image_shape, "ProgressiveGenerator")
        level = _level(level, num_stages - 1)
        widths = stage_widths(num_stages, self.max_width, self.min_width)
        features, image = z.astype(self.dtype), None
        for k, width in enumerate(widths):
            start = (start_h, start_w) if k == 0 else None
            features = _GeneratorBlock(width, start, dtype=self.dtype, name=f"block_{k}")(features)
            rgb = EqualizedConv(self.image_shape[2], 1, gain=1.0, dtype=self.dtype, name=f"to_rgb_{k}")(features)
            if image is None:
                image = rgb
            else:
                # (1 − t)·a + t·b rather than a + t·(b − a): exactly a at t = 0 and exactly b at t = 1
                t = jnp.clip(level - (k - 1), 0.0, 1.0).astype(self.dtype)
                image = (1 - t) * _upsample(image) + t * rgb
        return image.astype(jnp.promote_types(self.dtype, jnp.float32))


class _DiscriminatorBlock(nn.Module):
    """One stage of the discriminator (Karras et al. 2018, Table 2), from stage k's resolution to stage k − 1's:
    conv3x3(`features`) -> LeakyReLU -> conv3x3(`out_features`) -> LeakyReLU -> 2x2 average pooling."""

    features: int
    out_features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = _leaky_relu(EqualizedConv(self.features, 3, dtype=self.dtype, name="conv1")(x))
        h = _leaky_relu(EqualizedConv(self.out_features, 3, dtype=self.dtype, name="conv2")(h))
        return _downsample(h)


class _DiscriminatorOutput(nn.Module):
    """The discriminator's last stage, at the start resolution (Karras et al. 2018, Table 2): minibatch stddev
    -> conv3x3 -> LeakyReLU -> dense (the paper's 4x4 "valid" conv, i.e. a dense layer on the flattened map)
    -> LeakyReLU -> linear dense to one logit (gain 1). Returns [B]."""

    features: int
    group_size: int = 4
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = minibatch_stddev(x, self.group_size)
        h = _leaky_relu(EqualizedConv(self.features, 3, dtype=self.dtype, name="conv")(h))
        h = _leaky_relu(EqualizedDense(self.features, dtype=self.dtype, name="dense")(h.reshape(h.shape[0], -1)))
        return EqualizedDense(1, gain=1.0, dtype=self.dtype, name="logit")(h)[:, 0]


class ProgressiveDiscriminator(nn.Module):
    """ProGAN's discriminator (Karras et al. 2018): full-resolution images [B, H, W, C] -> logits [B].

    The mirror of `ProgressiveGenerator`: stage k (resolution start·2^k, `stage_widths(...)[k]` feature maps)
    reads the input average-pooled to its resolution, x_k, through its own fromRGB (1x1 `EqualizedConv` ->
    LeakyReLU(0.2), from_rgb_k), and block_k (k ≥ 1) takes stage k's features to stage k − 1's resolution.
    From the top stage n down, the newest stage fades in over the pooled-input path (the paper's Figure 2):

        e_n = fromRGB_n(x_n),   e_{k−1} = β_{k−1}·block_k(e_k) + (1 − β_{k−1})·fromRGB_{k−1}(x_{k−1}),
        β_k = clip(level − k, 0, 1),

    so at level = s + α the network starts at stage s + 1, e_s = α·block_{s+1}(fromRGB_{s+1}(x_{s+1}))
    + (1 − α)·fromRGB_s(x_s), and continues through blocks s .. 1. The start stage ends in `_DiscriminatorOutput`
    (minibatch stddev with groups of `mbstd_group_size`, conv3x3, dense, linear logit). At integer levels the
    weights are exactly 0 and 1: the input is then seen only at the current resolution x_s (average pooling
    undoes the generator's nearest upsampling), and the stages above s get exactly zero gradient. `level` (float,
    possibly traced; None: fully grown) is clipped to [0, n]. The image size must be one `progressive_plan`
    accepts (one-line ValueError otherwise).

    No batch norm (per-example penalties such as WGAN-GP's and R1 stay per example, up to minibatch stddev's
    group statistic). Labels are ignored (unconditional); `train` is accepted for the protocol and unused.
    Logits are float32 (or wider).
    """

    max_width: int = 128
    min_width: int = 16
    mbstd_group_size: int = 4
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        labels: jax.Array | None = None,
        *,
        level: float | jax.Array | None = None,
        train: bool = True,
    ) -> jax.Array:
        _, _, num_stages = progressive_plan(x.shape[1:], "ProgressiveDiscriminator")
        top = num_stages - 1
        level = _level(level, top)
        widths = stage_widths(num_stages, self.max_width, self.min_width)
        inputs = [x.astype(self.dtype)]  # x_top, x_{top-1}, ..., x_0
        for _ in range(top):
            inputs.append(_downsample(inputs[-1]))
        inputs = inputs[::-1]  # inputs[k] is at stage k's resolution

        def from_rgb(k: int) -> jax.Array:
            return _leaky_relu(EqualizedConv(widths[k], 1, dtype=self.dtype, name=f"from_rgb_{k}")(inputs[k]))

        h = from_rgb(top)
        for k in range(top, 0, -1):
            h = _DiscriminatorBlock(widths[k], widths[k - 1], dtype=self.dtype, name=f"block_{k}")(h)
            beta = jnp.clip(level - (k - 1), 0.0, 1.0).astype(self.dtype)
            h = beta * h + (1 - beta) * from_rgb(k - 1)
        logits = _DiscriminatorOutput(widths[0], self.mbstd_group_size, dtype=self.dtype, name="output")(h)
        return logits.astype(jnp.promote_types(self.dtype, jnp.float32))


__all__ = [
    "EqualizedConv", "EqualizedDense", "ProgressiveDiscriminator", "ProgressiveGenerator", "level_at",
    "minibatch_stddev", "pixel_norm", "progressive_plan", "stage_widths",
]  # fmt: skip


def fade_in_reals(x: jax.Array, level: jax.Array | float, num_stages: int) -> jax.Array:
    """The real images as D must see them at growth `level` (Karras et al. 2018, Figure 2: "during a resolution
    transition, we interpolate between two resolutions of the real images, similarly to how the generator output
    combines two resolutions"): with r_k the image average-pooled to stage k's resolution and upsampled back
    (nearest), the reals are Σ_k w_k·r_k with the generator's fade-in weights w_k = t_k·Π_{j>k}(1 − t_j),
    t_k = clip(level − k + 1, 0, 1) (t_0 = 1): r_s at an integer level s, (1 − α)·r_s + α·r_{s+1} at s + α, the
    images themselves once fully grown. `x` is [..., H, W, C] at full resolution; `level` may be traced."""
    shape = x.shape
    images = x.reshape(-1, *shape[-3:])
    top = num_stages - 1
    level = _level(level, top)
    pooled = [images]
    for _ in range(top):
        pooled.append(_downsample(pooled[-1]))
    faded, remaining = jnp.zeros_like(images), jnp.ones((), jnp.float32)
    for k in range(top, -1, -1):  # from the full resolution down: w_k = t_k · Π_{j>k} (1 − t_j)
        t = jnp.float32(1.0) if k == 0 else jnp.clip(level - k + 1, 0.0, 1.0)
        faded = faded + (remaining * t).astype(images.dtype) * _upsample(pooled[top - k], 2 ** (top - k))
        remaining = remaining * (1 - t)
    return faded.reshape(shape)
