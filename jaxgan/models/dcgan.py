"""DCGAN generator and discriminator (Radford, Metz & Chintala 2015, "Unsupervised representation learning
with deep convolutional generative adversarial networks"), with the conditioning and extra heads of the
label-using variants built on it:

* conditioning by concatenation (Mirza & Osindero 2014, "Conditional generative adversarial nets"): a one-hot
  label is concatenated to z in G and, broadcast over the image, to the input channels of D;
* an auxiliary classifier head on D (Odena, Olah & Shlens 2017, "Conditional image synthesis with auxiliary
  classifier GANs", AC-GAN);
* a Q head sharing D's trunk that predicts the latent codes (Chen et al. 2016, "InfoGAN").

Both modules follow the model protocol of this package: `__call__(x, labels=None, *, train=True)`, compute in
`dtype`, outputs cast to `promote_types(dtype, float32)`, batch norm with `use_running_average=not train` whose
running statistics live in the `batch_stats` collection (pass `mutable=["batch_stats"]` when `train=True`).
As in the paper, weights are drawn from N(0, 0.02), the generator uses ReLU and a tanh output, the
discriminator LeakyReLU(0.2), there are no pooling or hidden fully connected layers (the extra heads aside),
and batch norm is used everywhere except on G's output layer and D's input layer.

Parameter counts for 28x28x1 images, z_dim 100, unconditional, kernel 4 (measured): base_width 64 (default):
G 759,681 params (+ 384 batch-norm statistics), D 661,313 (+ 768); base_width 32: G 347,073, D 166,817.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.eager import outside_any_trace
from jaxgan.models.layers import SelfAttention, attention_after, spectral_norm

_WEIGHT_INIT = nn.initializers.normal(stddev=0.02)


def _scale_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Batch-norm scale ~ N(1, 0.02), as in the reference DCGAN implementations."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _batch_norm(train: bool, momentum: float, dtype) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train, momentum=momentum, epsilon=1e-5, dtype=dtype, scale_init=_scale_init
    )


def _side_plan(size: int) -> tuple[int, int] | None:
    """(start size, number of stride-2 upsamplings) for one image side, or None if unsupported.

    7*2^k (k >= 1) starts at 7 (28 -> 7x7); powers of two start at 4 when >= 16 (32, 64 -> 4x4), else at 2
    (4, 8 -> 2x2). Every size gets at least one upsampling stage.
    """
    if size >= 14 and size % 7 == 0 and _is_pow2(size // 7):
        return 7, int(math.log2(size // 7))
    if size >= 4 and _is_pow2(size):
        start = 4 if size >= 16 else 2
        return start, int(math.log2(size // start))
    return None


def _is_pow2(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


@functools.lru_cache(maxsize=None)
def _subpixel_taps(kernel_size: int, stride: int) -> tuple[tuple[int, int, int, int, int, int], ...]:
    """Where each tap (u, v) of a stride-`stride` "SAME" transposed convolution sends an input pixel: as
    (u, v, phase row a, phase column b, row offset dy, column offset dx), found by probing `lax.conv_transpose`
    itself with one-hot kernels on a one-hot image, so the decomposition follows its padding exactly. A constant,
    also when first needed inside a trace: all probes run in one eager call."""
    return outside_any_trace(functools.partial(_probe_taps, kernel_size, stride))


def _probe_taps(kernel_size: int, stride: int) -> tuple[tuple[int, int, int, int, int, int], ...]:
    size = 2 * kernel_size + 1
    centre = kernel_size
    image = np.zeros((1, size, size, 1), np.float32)
    image[0, centre, centre, 0] = 1.0
    taps = []
    for u in range(kernel_size):
        for v in range(kernel_size):
            kernel = np.zeros((kernel_size, kernel_size, 1, 1), np.float32)
            kernel[u, v, 0, 0] = 1.0
            out = jax.lax.conv_transpose(image, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
            hits = np.argwhere(np.asarray(out)[0, :, :, 0] > 0.5)
            if len(hits) != 1:  # the tap falls outside the cropped output: it never contributes
                continue
            p, q = hits[0]
            taps.append((u, v, p % stride, q % stride, centre - p // stride, centre - q // stride))
    return tuple(taps)


class SubpixelConvTranspose(nn.Module):
    """`nn.ConvTranspose(features, (k, k), strides=(s, s), padding="SAME")`, the same parameters and outputs,
    computed as one ordinary convolution to s²·features channels followed by a depth-to-space shuffle (the
    sub-pixel identity of Shi et al. 2016, "Real-time single image and video super-resolution using an efficient
    sub-pixel convolutional neural network").

    Why: XLA's CPU backend computes the kernel gradient of a transposed convolution (an input-dilated
    convolution) about 9× slower than that of an ordinary one (270 ms vs 32 ms for 64 → 32 channels at 7×7,
    batch 128, measured), which made DCGAN's generator gradient dominate its training step on a CPU. The kernel
    keeps nn.ConvTranspose's layout [k, k, in, out] and is scattered into the [w, w, in, s²·out] kernel of the
    equivalent convolution at trace time.
    """

    features: int
    kernel_size: int = 4
    stride: int = 2
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        k, s, out = self.kernel_size, self.stride, self.features
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], out), jnp.float32)
        taps = _subpixel_taps(k, s)
        low = min(min(t[4], t[5]) for t in taps)
        high = max(max(t[4], t[5]) for t in taps)
        window = high - low + 1
        sub = jnp.zeros((window, window, x.shape[-1], s * s * out), kernel.dtype)
        for u, v, a, b, dy, dx in taps:
            phase = a * s + b
            sub = sub.at[dy - low, dx - low, :, phase * out : (phase + 1) * out].set(kernel[u, v])
        y = jax.lax.conv_general_dilated(
            x.astype(self.dtype), sub.astype(self.dtype), (1, 1), ((-low, high), (-low, high)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )  # fmt: skip
        batch, height, width, _ = y.shape
        y = y.reshape(batch, height, width, s, s, out).transpose(0, 1, 3, 2, 4, 5).reshape(batch, height * s, width * s, out)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros_init(), (out,), jnp.float32).astype(self.dtype)
        return y


def _conv_padding(size: int, kernel_size: int, stride: int, padding) -> tuple[int, int]:
    """(low, high) padding of one spatial axis, as `lax.conv_general_dilated` resolves "SAME"/"VALID"."""
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return 0, 0
        if padding.upper() == "SAME":
            out = -(-size // stride)
            total = max((out - 1) * stride + kernel_size - size, 0)
            return total // 2, total - total // 2
        raise ValueError(f"SpaceToDepthConv: padding must be 'SAME', 'VALID' or ((lo, hi), (lo, hi)), got {padding!r}")
    low, high = padding
    return int(low), int(high)


class SpaceToDepthConv(nn.Module):
    """`nn.Conv(features, (k, k), strides=(s, s), padding=padding)`, the same parameters and outputs, computed
    without any strided or dilated convolution: the padded input is rearranged space-to-depth (blocks of s×s
    pixels become s²·in channels), and the stride-1 ⌈k/s⌉×⌈k/s⌉ convolution that remains (its kernel the
    [k, k, in, out] kernel zero-padded to a multiple of s and rearranged the same way) is computed as one
    matrix product of the ⌈k/s⌉² shifted block images, concatenated, with the [⌈k/s⌉²·s²·in, out] kernel.
    Output pixel i reads padded pixels s·i + u, u = s·q + r (q < ⌈k/s⌉, r < s), i.e. block i + q, phase r.
    Every derivative, of any order, is then made of matrix products, slices, pads and transposes.

    Why: on XLA's CPU backend the gradients of D's strided convolutions are input- or window-dilated
    convolutions, which it runs with a slow generic loop, and the unrolled rule differentiates them once
    more. A stride-1 `lax.conv_general_dilated` after space-to-depth does not help there: its second-order
    gradient (the kernel gradient of JAX's input gradient, which reverses the kernel) becomes a
    window-reversed convolution that takes the same slow loop (3× slower than strided nn.Conv in an unrolled
    K=5 DCGAN-28 step, measured); the matrix product form is about 3.5× faster than nn.Conv there. No custom
    derivative rules, so forward mode (jvp, SGA, Jacobians) works as for nn.Conv.

    Padding: "SAME", "VALID" or explicit ((lo, hi), (lo, hi)), resolved as nn.Conv (lax) does, for any input
    size (odd ones such as 7×7 included); the input is padded (or cropped of pixels no tap reads) to
    s·(out + ⌈k/s⌉ − 1) per side. NHWC inputs with one batch dimension; the parameters are stored in float32
    and cast, with the input, to `dtype`, as nn.Conv does.
    """

    features: int
    kernel_size: int = 4
    stride: int = 2
    padding: Any = "SAME"
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        k, s, out = self.kernel_size, self.stride, self.features
        batch, in_channels = x.shape[0], x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (k, k, in_channels, out), jnp.float32)
        taps = -(-k // s)  # ⌈k/s⌉ blocks per side
        pads = self.padding if isinstance(self.padding, str) else tuple(self.padding)
        config, blocks = [(0, 0, 0)], []
        for axis, size in enumerate(x.shape[1:3]):
            low, high = _conv_padding(size, k, s, pads if isinstance(pads, str) else pads[axis])
            size_out = (size + low + high - k) // s + 1
            if size_out < 1:
                raise ValueError(
                    f"SpaceToDepthConv: input side {size} with padding {(low, high)} is smaller than the kernel {k}"
                )
            high += s * (size_out + taps - 1) - (size + low + high)  # negative: crop pixels no tap reads
            config.append((low, high, 0))
            blocks.append(size_out + taps - 1)
        config.append((0, 0, 0))
        x = jax.lax.pad(x.astype(self.dtype), jnp.zeros((), self.dtype), config)
        x = x.reshape(batch, blocks[0], s, blocks[1], s, in_channels).transpose(0, 1, 3, 2, 4, 5)
        x = x.reshape(batch, blocks[0], blocks[1], s * s * in_channels)
        w = jnp.pad(kernel, ((0, s * taps - k), (0, s * taps - k), (0, 0), (0, 0)))
        w = w.reshape(taps, s, taps, s, in_channels, out).transpose(0, 2, 1, 3, 4, 5)
        w = w.reshape(taps, taps, s * s * in_channels, out)
        rows, cols = blocks[0] - taps + 1, blocks[1] - taps + 1
        patches = [x[:, q : q + rows, r : r + cols, :] for q in range(taps) for r in range(taps)]
        y = jnp.concatenate(patches, axis=-1) @ w.reshape(-1, out).astype(self.dtype)  # the stride-1 convolution
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (out,), jnp.float32).astype(self.dtype)
        return y


def _strided_conv(features: int, kernel_size: int, stride: int, **kwargs) -> nn.Conv:
    """The nn.Conv that `SpaceToDepthConv(features, kernel_size, stride, **kwargs)` computes."""
    return nn.Conv(features, (kernel_size, kernel_size), strides=(stride, stride), **kwargs)


class UnsupportedImageSize(ValueError):
    """A model cannot make or read images of this height and width; the one-line message names the model and the
    sides it supports. Its own type, so the runner can name the flags that chose the images and the models."""


def generator_plan(image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(start height, start width, number of stride-2 upsampling stages) of `DCGANGenerator` for `image_shape`."""
    height, width, _ = image_shape
    plan_h, plan_w = _side_plan(height), _side_plan(width)
    if plan_h is None or plan_w is None or plan_h[1] != plan_w[1]:
        raise UnsupportedImageSize(
            f"DCGANGenerator: unsupported image size {height}x{width}; supported sides are 2^n (4, 8, 16, 32, "
            f"64, ...) and 7·2^k with k ≥ 1 (14, 28, 56, ...), with the same number of doublings for height and width"
        )
    return plan_h[0], plan_w[0], plan_h[1]


def _one_hot(labels: jnp.ndarray | None, num_classes: int, dtype, who: str) -> jnp.ndarray:
    if labels is None:
        raise ValueError(f"{who} has num_classes={num_classes} > 0 and needs labels (int [batch]), got None")
    return jax.nn.one_hot(labels, num_classes, dtype=dtype)


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2015): z [B, z_dim] -> images [B, H, W, C] in [-1, 1].

    Architecture, with n = number of doublings from the start map to `image_shape` (see `generator_plan`;
    4x4 for 32 and 64, 7x7 for 28, 2x2 for 8 and 4):
      [z, one_hot(labels)] -> Dense(h0*w0*base_width*2^(n-1)) -> reshape -> BN -> ReLU
      -> (n-1) x [ConvTranspose(stride 2, SAME), channels halved each stage -> BN -> ReLU]
      -> ConvTranspose(C, stride 2, SAME) -> tanh,
    each ConvTranspose computed as `SubpixelConvTranspose` (the same parameters and outputs, faster on CPUs).
    E.g. 64x64x3 with base 64: 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3 (the paper's Figure 1 is
    this layout at base 128, 4x4x1024 first);
    28x28x1: 7x7x128 -> 14x14x64 -> 28x28x1.

    With `num_classes > 0` the one-hot label is concatenated to z (Mirza & Osindero 2014) and `labels`
    (int [B]) is required; with `num_classes == 0` labels are ignored. `hidden_dense > 0` puts a
    Dense(hidden_dense) -> BN -> ReLU layer before the projection (InfoGAN's MNIST generator, Chen et al. 2016,
    Appendix C.1: FC 1024 - FC 7x7x128 - deconv 64 - deconv 1, i.e. base_width 64 with hidden_dense 1024).
    `attention_resolution = R > 0` inserts SAGAN's `SelfAttention` (Zhang et al. 2019) after the layer (the
    projection or a ConvTranspose stage, each with its BN and ReLU) whose output side is R (28x28: 7 or 14).
    Unsupported image sizes raise a one-line ValueError.
    """

    image_shape: tuple[int, int, int]
    base_width: int = 64
    num_classes: int = 0
    hidden_dense: int = 0
    kernel_size: int = 4
    bn_momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32
    attention_resolution: int = 0

    @nn.compact
    def __call__(self, z: jnp.ndarray, labels: jnp.ndarray | None = None, *, train: bool = True) -> jnp.ndarray:
        h0, w0, stages = generator_plan(tuple(self.image_shape))
        channels = self.image_shape[2]
        # layer 0 is the projection, layer i + 1 the ConvTranspose stage i (the last, to the image, excluded)
        attention = attention_after("DCGANGenerator", self.attention_resolution, [h0 * 2**i for i in range(stages)])
        x = z.astype(self.dtype)
        if self.num_classes > 0:
            x = jnp.concatenate([x, _one_hot(labels, self.num_classes, self.dtype, "DCGANGenerator")], axis=-1)
        if self.hidden_dense > 0:
            x = nn.Dense(self.hidden_dense, use_bias=False, kernel_init=_WEIGHT_INIT, dtype=self.dtype, name="hidden")(x)
            x = nn.relu(_batch_norm(train, self.bn_momentum, self.dtype)(x))
        width = self.base_width * 2 ** (stages - 1)
        x = nn.Dense(h0 * w0 * width, use_bias=False, kernel_init=_WEIGHT_INIT, dtype=self.dtype)(x)
        x = x.reshape(x.shape[0], h0, w0, width)
        x = nn.relu(_batch_norm(train, self.bn_momentum, self.dtype)(x))
        if attention == 0:
            x = SelfAttention(dtype=self.dtype, name="attention")(x, train=train)
        for stage in range(stages - 1):  # named as nn.ConvTranspose layers would be: the same parameter tree
            width //= 2
            x = SubpixelConvTranspose(
                width, self.kernel_size, use_bias=False, kernel_init=_WEIGHT_INIT, dtype=self.dtype,
                name=f"ConvTranspose_{stage}",
            )(x)
            x = nn.relu(_batch_norm(train, self.bn_momentum, self.dtype)(x))
            if attention == stage + 1:
                x = SelfAttention(dtype=self.dtype, name="attention")(x, train=train)
        x = SubpixelConvTranspose(
            channels, self.kernel_size, kernel_init=_WEIGHT_INIT, dtype=self.dtype, name=f"ConvTranspose_{stages - 1}"
        )(x)
        return jnp.tanh(x).astype(jnp.promote_types(self.dtype, jnp.float32))


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator (Radford et al. 2015): images [B, H, W, C] -> logits [B], or a dict with extra heads.

    Trunk: stride-2 Conv(SAME) layers with base_width * 2^i channels and LeakyReLU(0.2), batch norm on all but
    the first, repeated until the spatial size is <= 4 (64 -> 32 -> 16 -> 8 -> 4: 4 convs; 28 -> 14 -> 7 -> 4:
    3 convs; 8 -> 4: one conv, hence no batch norm), then flatten and Dense(1) -> logit. Each strided conv is
    computed as `SpaceToDepthConv` (the same parameters, named Conv_i, and outputs as nn.Conv; no strided or
    dilated convolution in the forward pass or its derivatives, which XLA's CPU backend runs slowly), or, with
    `space_to_depth=False`, as nn.Conv.

    `num_convs > 0` stops the trunk after that many convs, and `hidden_dense > 0` adds Dense(hidden_dense) -> BN
    -> LeakyReLU(0.2) on the flattened features, which the logit and the heads then read (InfoGAN's MNIST
    discriminator, Chen et al. 2016, Appendix C.1: conv 64 - conv 128 - FC 1024, i.e. base_width 64, num_convs
    2, hidden_dense 1024).

    Conditioning (Mirza & Osindero 2014): with `num_classes > 0` and not `aux_classifier`, the one-hot label is
    broadcast to [B, H, W, num_classes] and concatenated to the image channels; `labels` is then required.
    Otherwise labels are ignored.

    `norm`: "batch" after every conv but the first (the paper's), "layer" (each position's channels) or
    "layer_chw" (all C·H·W features of an example, WGAN-GP's critic) there instead, "none", or "spectral"
    (the "standard CNN" discriminator of SNGAN's experiments, Miyato et al. 2018): every conv and
    dense layer, heads included, spectrally normalised by `spectral_norm` (power iteration state in
    `batch_stats`), with biases and without batch norm; the InfoGAN Q head keeps its batch norm, as in every
    mode. The parameter names are those of the other modes (the normalised kernels stay at `Conv_i/kernel`).

    Extra heads on the flattened trunk features:
      * `aux_classifier=True` (AC-GAN, Odena et al. 2017; needs num_classes > 0): Dense(num_classes) ->
        "class_logits" [B, num_classes];
      * `info_categorical > 0` / `info_continuous > 0` (InfoGAN Q head, Chen et al. 2016): Dense(q_width) -> BN ->
        LeakyReLU(0.2) -> Dense(info_categorical + info_continuous), split into "code_logits"
        [B, info_categorical] and "code_mean" [B, info_continuous].
    Return value: the plain logits array [B] when there is no extra head; otherwise a dict with "logits" and
    only those of "class_logits", "code_logits", "code_mean" that apply. All outputs are float32 (or wider).

    `attention_resolution = R > 0` inserts SAGAN's `SelfAttention` (Zhang et al. 2019; spectrally normalised
    when `norm` is "spectral", as in SAGAN's D) after the conv layer (with its normalisation and LeakyReLU)
    whose output side is R (28x28: 14, 7 or 4).
    """

    base_width: int = 64
    num_classes: int = 0
    aux_classifier: bool = False
    info_categorical: int = 0
    info_continuous: int = 0
    q_width: int = 128
    kernel_size: int = 4
    bn_momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32
    num_convs: int = 0  # 0: until the spatial size is <= 4
    hidden_dense: int = 0
    # "batch" (the paper's), "layer" or "layer_chw" (for gradient penalties, which are per example: WGAN-GP,
    # Gulrajani et al. 2017, Section 4; "layer" normalizes each position's channels, "layer_chw" all of an example's
    # C·H·W features together, as the WGAN-GP authors' code does, with a scale and bias per channel), "spectral"
    # (SNGAN's "standard CNN" runs, Miyato et al. 2018: every conv and dense layer spectrally normalised, with
    # biases, and no batch or layer norm in the trunk) or "none".
    norm: str = "batch"
    # The strided convolutions as `SpaceToDepthConv` (True) or as nn.Conv (False): the same parameters and outputs.
    # On XLA's CPU backend (2 cores, DCGAN-28, base width 32, batch 128, measured) True makes the unrolled rule's
    # step (K=5) about 3.5x faster and a simultaneous step about 20% slower (data movement of the patches).
    space_to_depth: bool = True
    attention_resolution: int = 0

    @nn.compact
    def __call__(self, x: jnp.ndarray, labels: jnp.ndarray | None = None, *, train: bool = True):
        if self.norm not in ("batch", "layer", "layer_chw", "spectral", "none"):
            raise ValueError(
                "DCGANDiscriminator: norm must be 'batch', 'layer', 'layer_chw', 'spectral' or 'none', "
                f"got {self.norm!r}"
            )
        if self.aux_classifier and self.num_classes <= 0:
            raise ValueError("DCGANDiscriminator: aux_classifier=True needs num_classes > 0")
        out_dtype = jnp.promote_types(self.dtype, jnp.float32)
        spectral = self.norm == "spectral"
        normalize = functools.partial(spectral_norm, train=train, enabled=spectral)
        x = x.astype(self.dtype)
        if self.num_classes > 0 and not self.aux_classifier:
            one_hot = _one_hot(labels, self.num_classes, self.dtype, "DCGANDiscriminator")
            one_hot = jnp.broadcast_to(one_hot[:, None, None, :], (*x.shape[:3], self.num_classes))
            x = jnp.concatenate([x, one_hot], axis=-1)
        more = lambda size, layer: layer == 0 or (size > 4 if self.num_convs <= 0 else layer < self.num_convs)  # noqa: E731
        sides, size = [], max(x.shape[1], x.shape[2])
        while more(size, len(sides)):
            size = -(-size // 2)
            sides.append(size)
        attention = attention_after("DCGANDiscriminator", self.attention_resolution, sides)
        size, layer = max(x.shape[1], x.shape[2]), 0
        while more(size, layer):
            conv = SpaceToDepthConv if self.space_to_depth else _strided_conv
            # named as nn.Conv layers would be: the same parameter tree either way; with spectral norm and no
            # normalisation layer after them, every conv has a bias (batch norm's own bias stands in for it)
            x = normalize(conv(
                self.base_width * 2**layer, self.kernel_size, 2, padding="SAME", use_bias=layer == 0 or spectral,
                kernel_init=_WEIGHT_INIT, dtype=self.dtype, name=f"Conv_{layer}",
            ))(x)
            if layer > 0 and self.norm == "batch":
                x = _batch_norm(train, self.bn_momentum, self.dtype)(x)
            elif layer > 0 and self.norm in ("layer", "layer_chw"):
                over = (1, 2, 3) if self.norm == "layer_chw" else -1
                x = nn.LayerNorm(reduction_axes=over, feature_axes=-1, dtype=self.dtype)(x)
            x = nn.leaky_relu(x, 0.2)
            if layer == attention:
                x = SelfAttention(spectral_norm=spectral, dtype=self.dtype, name="attention")(x, train=train)
            size, layer = -(-size // 2), layer + 1
        features = x.reshape(x.shape[0], -1)
        if self.hidden_dense > 0:
            hidden = nn.Dense(
                self.hidden_dense, use_bias=spectral, kernel_init=_WEIGHT_INIT, dtype=self.dtype, name="hidden"
            )
            features = normalize(hidden)(features)
            if self.norm == "batch":
                features = _batch_norm(train, self.bn_momentum, self.dtype)(features)
            elif self.norm in ("layer", "layer_chw"):
                features = nn.LayerNorm(dtype=self.dtype)(features)
            features = nn.leaky_relu(features, 0.2)
        logits = normalize(nn.Dense(1, kernel_init=_WEIGHT_INIT, dtype=self.dtype, name="logit"))(features)[:, 0]
        logits = logits.astype(out_dtype)
        num_codes = self.info_categorical + self.info_continuous
        if not self.aux_classifier and num_codes == 0:
            return logits
        outputs = {"logits": logits}
        if self.aux_classifier:
            class_logits = nn.Dense(self.num_classes, kernel_init=_WEIGHT_INIT, dtype=self.dtype, name="classifier")
            outputs["class_logits"] = normalize(class_logits)(features).astype(out_dtype)
        if num_codes > 0:
            q_hidden = nn.Dense(
                self.q_width, use_bias=False, kernel_init=_WEIGHT_INIT, dtype=self.dtype, name="q_hidden"
            )
            q = nn.leaky_relu(_batch_norm(train, self.bn_momentum, self.dtype)(normalize(q_hidden)(features)), 0.2)
            codes = normalize(nn.Dense(num_codes, kernel_init=_WEIGHT_INIT, dtype=self.dtype, name="q_out"))(q)
            codes = codes.astype(out_dtype)
            if self.info_categorical > 0:
                outputs["code_logits"] = codes[:, : self.info_categorical]
            if self.info_continuous > 0:
                outputs["code_mean"] = codes[:, self.info_categorical :]
        return outputs
