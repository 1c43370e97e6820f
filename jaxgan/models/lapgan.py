r"""LapGAN (Denton, Chintala, Szlam & Fergus 2015, "Deep generative image models using a Laplacian pyramid of
adversarial networks", https://arxiv.org/abs/1506.05751) as one generator and one discriminator of this package's
model protocol, trained jointly as a single GAN game whose discriminator outputs one logit per pyramid level.

Indexing: level 0 is the coarsest image (7x7 or 8x8) and level L − 1 the full image, the reverse of the paper's
(its I_0 is the full image and I_K the coarsest). With d = `downsample`, u = `upsample`, I_{L−1} = x and
I_{k−1} = d(I_k), the Laplacian pyramid of x is [I_0, h_1, ..., h_{L−1}] with h_k = I_k − u(I_{k−1})
(`laplacian_pyramid`), and x = u(...u(u(I_0) + h_1)...) + h_{L−1} (`reconstruct`).

What follows the paper:
  * the Laplacian pyramid as the image representation (the paper's "Laplacian Pyramid" subsection): a low-pass
    image at the coarsest level plus one band-pass residual per finer level, spaced an octave apart, inverted
    exactly by upsample-and-add;
  * a coarse-to-fine generator (its "LAPGAN" subsection, the sampling procedure): I_0 = G_0(z_0) from noise
    alone, fully connected, as the paper's CIFAR-10/LSUN coarse generator; then for every finer level
    l_k = u(I_{k−1}), h_k = G_k(z_k, l_k) a small ReLU convnet (3 convolutions) that reads the noise as one extra
    channel beside the colour channels of l_k (the paper's "4th colour plane"), and I_k = l_k + h_k;
  * a conditional discriminator per level (the "LAPGAN" subsection): D_0(I_0) at the coarsest scale, fully
    connected, and D_k(h_k, l_k) for k ≥ 1, a small convnet reading the residual together with the low-pass image
    it refines;
  * level independence: each G_k is trained only through its own level's D_k, as the paper trains its levels
    separately (made exact here by the construction below).

Training, as the paper's: each finer level's conditional GAN sees REAL low-pass images. With
`--config.conditioning=real_coarse` (jaxgan/conditioning.py; experiments/lapgan_mnist.py) every training step
hands G the real batch it pairs with as `labels` (the source images): G_0 makes I_0 from z, and each G_k makes h_k
for the real l_k = u(d^{L−k}(x)) of the paired real image x; D reads a sample's I_0 and residuals from its own
pyramid and its l_k from the source. So D_k compares real pairs (h_k, l_k) with pairs (G_k(z_k, l_k), l_k) on the
same real l_k, as the paper's separately trained level k does. Without a source (evaluation, sampling,
`conditioning='none'`) G chains its own levels, the paper's sampling procedure. With the chain in training too
(conditioning 'none'), D_k sees real pairs against pairs whose l_k comes from the lower generated levels and
learns to tell them apart by l_k, which G_k cannot change: at step 678 of such a run D_1 and D_2 scored G_k's
residuals on real coarse images as real (mean sigmoid 0.85 and 0.97, real pairs 0.89 and 0.98) and the real
residuals on generated coarse images as fake (0.19 and 0.07), and the finer levels added noise (BUILD_NOTES.md,
"LapGAN's discriminators judged the coarse image").

What differs:
  * one joint game instead of L separately trained conditional GANs: the logits [B, L] hold one independent
    logit per level, and every loss in jaxgan/losses.py reduces each expectation with a mean over ALL elements
    of its logits argument, so the game played is the mean over levels of the L per-level GAN games (the sum up
    to the constant factor 1/L);
  * exact level independence by three choices, each of which the paper does not need because it trains
    levels separately: (a) the generator's residual is projected to zero mean on every 2x2 block,
    h_k ← h_k − u(d(h_k)), so d(I_k) = I_{k−1} exactly and the pyramid D computes from a generated image equals
    G's own [I_0, h_1, ...] (`LaplacianGenerator.levels`); (b) G_k reads its input l_k through
    `jax.lax.stop_gradient`, so G_k's parameters get no gradient through the finer levels' conditioning (the
    upsample-and-add skip path I_k = l_k + h_k keeps its gradient: the image is one sum of the levels);
    (c) D_k reads l_k = u(stop_gradient(I_{k−1})), so the image gradient of D_k's logit flows only through h_k.
    With (a)-(c) the gradient of level j's logit with respect to G_k's parameters vanishes for k ≠ j: exactly
    (bit for bit) for k > j, and up to float rounding of the pyramid's cancellations for k < j (measured: about
    1e-8 of the own level's gradient in float32). (c) changes only gradients with respect to D's INPUT, not
    D's parameter gradients: a gradient penalty (R1, WGAN-GP, ...) on D's input therefore sees only the
    residual paths h_k (and, at level 0, I_0), not D_k's dependence on its conditioning image;
  * pyramid operators: d is 2x2 average pooling, a stand-in for the paper's blur-and-decimate (it is the box
    filter, i.e. blur + decimate with a 2x2 box kernel), and u is nearest-neighbour 2x upsampling instead of
    the paper's smoothing expansion; with this pair d(u(y)) = y exactly;
  * the noise of level k ≥ 1 is a chunk z_k of the one z vector, linearly projected (a learned Dense layer) to
    one H_k x W_k plane, instead of an independent noise plane per pixel; z [B, z_dim] is split into L chunks,
    as equal as possible (the first z_dim mod L chunks one entry longer), so z_dim must be at least L;
  * 3x3 convolutions with `width` channels in every G_k (the paper's are 5x5), no batch norm (both players are
    stateless: no model state); D_k: stride-2 3x3 convolutions with `width` channels and LeakyReLU(0.2) until
    the side is at most 4, then a dense layer to the logit; D_0: Dense(c) -> LeakyReLU(0.2) -> Dense(1)
    (the paper's D_0 uses ReLU and dropout, and wider layers); G_0: Dense(c) -> ReLU -> Dense(H_0·W_0·C)
    -> tanh; c = `coarse_width`, or `width` when it is 0. With `coarse_model="conv"` (not in the paper) G_0 and
    D_0 are small convnets with c channels instead (`_CoarseGenerator`, `_CoarseDiscriminator`): the MLP level 0
    is where LapGAN's chained samples lose most (BUILD_NOTES.md, "Where the chain loses it");
  * output range: I_0 lies in [-1, 1] (tanh), but the residuals are linear, so a training-mode image
    (train=True) may slightly exceed [-1, 1]; it is left unclipped so that its pyramid is exactly G's levels and
    its gradient never saturates. In evaluation (train=False) the image is clipped to [-1, 1], so samples for
    metrics and plots lie in the data range;
  * no class conditioning (`labels` are the source images of LapGAN's training, never classes).

Supported image sizes: sides 7·2^k (7, 14, 28, 56, ...) and 2^k ≥ 8 (8, 16, 32, 64, ...), with the same number of
halvings for height and width down to the coarsest level (7x7 or 8x8): L = halvings + 1 (`pyramid_levels`;
28x28: 28 -> 14 -> 7, 3 levels; 32x32: 32 -> 16 -> 8, 3 levels).

Parameter counts (measured; width 64, the default): 28x28x1: G 170,475 with z_dim 256 (the package's default;
103,659 with z_dim 64), D 118,531; 32x32x3: G 210,182 with z_dim 256 (124,166 with z_dim 64), D 132,291. G's
noise projections, Dense(z_k -> H_k·W_k), dominate its count (67,424 of the 28x28 level's 106,145 at z_dim 256).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.dcgan import UnsupportedImageSize

Array = jax.Array

_LEAK = 0.2  # LeakyReLU slope of the discriminators
COARSE_MODELS = ("mlp", "conv")  # the coarsest level's G_0 and D_0: the paper's MLPs, or small convnets


def _check_coarse_model(coarse_model: str, who: str) -> None:
    if coarse_model not in COARSE_MODELS:
        raise ValueError(f"{who}: coarse_model must be one of {COARSE_MODELS}, got {coarse_model!r}")


def downsample(x: Array) -> Array:
    """2x2 average pooling with stride 2 over the two spatial axes of [..., H, W, C] (H and W even):

        d(x)[i, j] = (x[2i, 2j] + x[2i, 2j+1] + x[2i+1, 2j] + x[2i+1, 2j+1]) / 4,

    a stand-in for the paper's blur-and-decimate (blurring with a 2x2 box filter, then keeping every second
    pixel)."""
    *lead, height, width, channels = x.shape
    if height % 2 or width % 2:
        raise ValueError(f"downsample: spatial sides must be even, got {height}x{width}")
    blocks = x.reshape(*lead, height // 2, 2, width // 2, 2, channels)
    return jnp.mean(blocks, axis=(-4, -2))


def upsample(x: Array) -> Array:
    """Nearest-neighbour 2x upsampling over the two spatial axes of [..., H, W, C]:
    u(x)[i, j] = x[⌊i/2⌋, ⌊j/2⌋].

    With `downsample`, d(u(y)) = y exactly (the mean of four copies of a value), the property that makes the
    generator's zero-mean residuals reproduce exactly in the discriminator's pyramid."""
    return jnp.repeat(jnp.repeat(x, 2, axis=-3), 2, axis=-2)


def _side_halvings(size: int) -> int | None:
    """Halvings from `size` to the coarsest side (7 for 7·2^k, 8 for 2^k ≥ 8); None if unsupported."""
    for coarsest in (7, 8):
        ratio = size // coarsest
        if size >= coarsest and size % coarsest == 0 and ratio & (ratio - 1) == 0:
            return int(math.log2(ratio))
    return None


def pyramid_levels(image_shape: tuple[int, ...], who: str = "pyramid_levels") -> int:
    """The number L of Laplacian pyramid levels for an [H, W, C] (or [H, W]) image: the halvings from H x W down
    to the coarsest level (7x7 or 8x8), plus one. 28x28 -> 3 (28, 14, 7), 32x32 -> 3 (32, 16, 8), 8x8 -> 1.

    Sides must be 7·2^k or 2^k ≥ 8, with the same number of halvings for height and width; anything else raises a
    one-line ValueError that names `who`."""
    height, width = int(image_shape[0]), int(image_shape[1])
    halvings_h, halvings_w = _side_halvings(height), _side_halvings(width)
    if halvings_h is None or halvings_w is None or halvings_h != halvings_w:
        raise UnsupportedImageSize(
            f"{who}: unsupported image size {height}x{width}; supported sides are 7·2^k (7, 14, 28, 56, ...) and "
            "2^k >= 8 (8, 16, 32, 64, ...), with the same number of halvings for height and width"
        )
    return halvings_h + 1


def laplacian_pyramid(x: Array, levels: int) -> list[Array]:
    """The Laplacian pyramid of images x [..., H, W, C] with `levels` levels, coarsest first:

        [I_0, h_1, ..., h_{L−1}],   I_{L−1} = x,  I_{k−1} = d(I_k),  h_k = I_k − u(I_{k−1}),

    d = `downsample`, u = `upsample` (Denton et al. 2015, "Laplacian Pyramid", with the levels numbered coarse to fine).
    I_0 has sides H/2^{L−1}, W/2^{L−1}; h_k has the sides of I_k. `reconstruct` inverts it exactly (up to float
    rounding). H and W must be divisible by 2^{L−1}."""
    height, width = x.shape[-3], x.shape[-2]
    factor = 2 ** (levels - 1) if levels >= 1 else 0
    if levels < 1 or height % factor or width % factor:
        raise ValueError(
            f"laplacian_pyramid: {levels} levels need levels >= 1 and sides divisible by 2^(levels-1), "
            f"got {height}x{width}"
        )
    lows = _low_passes(x, levels)
    return [lows[0]] + [lows[k] - upsample(lows[k - 1]) for k in range(1, levels)]


def _low_passes(x: Array, levels: int) -> list[Array]:
    """[I_0, ..., I_{L−1}]: x and its `levels` − 1 successive downsamplings, coarsest first."""
    lows = [x]
    for _ in range(levels - 1):
        lows.insert(0, downsample(lows[0]))
    return lows


def reconstruct(pyramid: list[Array]) -> Array:
    """The image of a Laplacian pyramid [I_0, h_1, ..., h_{L−1}]: I_k = u(I_{k−1}) + h_k, returning I_{L−1};
    the exact inverse of `laplacian_pyramid`."""
    image = pyramid[0]
    for residual in pyramid[1:]:
        image = upsample(image) + residual
    return image


def coarse_image(pyramid: list[Array], keep: int) -> Array:
    """The image of a Laplacian pyramid [I_0, h_1, ...] from its first `keep` levels alone (the finer residuals
    set to 0): u^{L−keep}(I_{keep−1}), the low-pass image at level keep − 1 upsampled to full size."""
    return reconstruct(pyramid[:keep] + [jnp.zeros_like(level) for level in pyramid[keep:]])


def _chunk_sizes(z_dim: int, levels: int) -> list[int]:
    """Split z_dim into `levels` chunks as equal as possible, the first z_dim mod levels one entry longer."""
    base, extra = divmod(z_dim, levels)
    return [base + (k < extra) for k in range(levels)]


def noise_chunks(z: Array, levels: int) -> list[Array]:
    """z [..., z_dim] split into the per-level chunks z_0, ..., z_{L−1} the generator gives its levels."""
    return jnp.split(z, list(itertools.accumulate(_chunk_sizes(z.shape[-1], levels)[:-1])), axis=-1)


class _CoarseGenerator(nn.Module):
    """G_0: z_0 -> I_0 [B, H_0, W_0, C] in [-1, 1].

    conv=False (the paper's fully connected G_0): Dense(width) -> ReLU -> Dense(H_0·W_0·C) -> tanh.
    conv=True: Dense(H_0·W_0·width) -> ReLU -> reshape [B, H_0, W_0, width] -> Conv3x3(width) -> ReLU
    -> Conv3x3(C) -> tanh (a DCGAN-like generator at the coarsest resolution, without batch norm)."""

    shape: tuple[int, int, int]
    width: int
    dtype: Any
    conv: bool = False

    @nn.compact
    def __call__(self, z: Array) -> Array:
        height, width, channels = self.shape
        if not self.conv:
            x = nn.relu(nn.Dense(self.width, dtype=self.dtype)(z))
            x = nn.Dense(math.prod(self.shape), dtype=self.dtype)(x)
            return jnp.tanh(x).reshape(z.shape[0], *self.shape)
        x = nn.relu(nn.Dense(height * width * self.width, dtype=self.dtype)(z))
        x = x.reshape(z.shape[0], height, width, self.width)
        x = nn.relu(nn.Conv(self.width, (3, 3), dtype=self.dtype)(x))
        return jnp.tanh(nn.Conv(channels, (3, 3), dtype=self.dtype)(x))


class _ResidualGenerator(nn.Module):
    """G_k, k ≥ 1: (z_k, l_k) -> h_k, a block-zero-mean residual with the shape of l_k.

    noise = Dense(H_k·W_k)(z_k) reshaped to [B, H_k, W_k, 1];
    h = Conv3x3(C)(ReLU(Conv3x3(width)(ReLU(Conv3x3(width)([l_k, noise])))))   (linear output),
    h_k = h − u(d(h)), so that d(h_k) = 0."""

    width: int
    dtype: Any

    @nn.compact
    def __call__(self, z: Array, low: Array) -> Array:
        batch, height, width, channels = low.shape
        noise = nn.Dense(height * width, dtype=self.dtype, name="noise")(z).reshape(batch, height, width, 1)
        x = jnp.concatenate([low, noise], axis=-1)
        x = nn.relu(nn.Conv(self.width, (3, 3), dtype=self.dtype)(x))
        x = nn.relu(nn.Conv(self.width, (3, 3), dtype=self.dtype)(x))
        h = nn.Conv(channels, (3, 3), dtype=self.dtype)(x)
        return h - upsample(downsample(h))


class LaplacianGenerator(nn.Module):
    r"""LapGAN generator (Denton et al. 2015, the coarse-to-fine sampling of its "LAPGAN" subsection):
    z [B, z_dim] -> images [B, H, W, C].

    With L = `pyramid_levels(image_shape)` and z split into chunks z_0, ..., z_{L−1} (as equal as possible, the
    first z_dim mod L one entry longer; z_dim ≥ L):

        I_0 = G_0(z_0)                                       (MLP or convnet, tanh: in [-1, 1]),
        l_k = u(I_{k−1}),  h_k = P(G_k(z_k, sg(l_k))),  I_k = l_k + h_k     (k = 1, ..., L−1),

    u nearest-neighbour upsampling, sg = `jax.lax.stop_gradient`, P(h) = h − u(d(h)) the projection to zero
    mean on every 2x2 block. The output is I_{L−1} = `reconstruct([I_0, h_1, ..., h_{L−1}])`; since d(h_k) = 0,
    `laplacian_pyramid` of the output equals `levels(z)`. G_k's parameters reach the image only through h_k
    (sg cuts the finer levels' conditioning on it), so with `LaplacianDiscriminator` each level's generator is
    trained by its own level's discriminator alone.

    Output: train=True, the image unclipped (it may exceed [-1, 1] by the residuals); train=False, the image
    clipped to [-1, 1]. Computed in `dtype`, returned as promote_types(dtype, float32). Stateless. `labels`: None
    (the chain above), or source images x' [B, H, W, C]: then l_k = u(I'_{k−1}), the source's own low-pass image
    one level coarser, upsampled (LapGAN's training; the output then mixes G_0's I_0 with residuals made for x').
    Submodules (parameter subtrees) are named level_0, ..., level_{L−1}.
    """

    image_shape: tuple[int, int, int]
    width: int = 64
    dtype: Any = jnp.float32
    coarse_width: int = 0  # G_0's hidden units or channels (0: `width`)
    coarse_model: str = "mlp"  # G_0: "mlp" (the paper's) or "conv"

    def _levels(self, z_dim: int) -> int:
        levels = pyramid_levels(tuple(self.image_shape), "LaplacianGenerator")
        _check_coarse_model(self.coarse_model, "LaplacianGenerator")
        if z_dim < levels:
            height, width = self.image_shape[0], self.image_shape[1]
            raise ValueError(
                f"LaplacianGenerator: z_dim {z_dim} is smaller than the {levels} pyramid levels of a {height}x{width} "
                f"image; z is split into one chunk per level, so z_dim must be >= {levels}"
            )
        return levels

    @nn.compact
    def levels(
        self,
        z: Array,
        labels: Array | None = None,
        *,
        train: bool = True,
        coarse: Array | None = None,
        coarsest_only: bool = False,
    ) -> list[Array]:
        """G's Laplacian pyramid [I_0, h_1, ..., h_{L−1}] for z (the same for train=True and False: nothing is
        clipped here), each as promote_types(dtype, float32). `labels`: None, or source images [B, H, W, C] whose
        low-pass images l_k each G_k refines instead of the chain's (LapGAN's training). `coarse`: None, or an I_0
        [B, H_0, W_0, C] that the finer levels refine in place of G_0(z_0) (z_0 is then unused): any level 0 under
        this G's finer levels, which LapGAN trains on real coarse images (`scripts/lapgan_level0.py --chain_workdir`).
        `coarsest_only`: [I_0] alone, the finer levels not run."""
        del train
        levels = self._levels(z.shape[-1])
        if labels is not None and tuple(labels.shape[1:]) != tuple(self.image_shape):
            raise ValueError(
                f"LaplacianGenerator: source images of shape {tuple(labels.shape[1:])} for a generator of "
                f"{tuple(self.image_shape)} images; --config.conditioning='real_coarse' pairs G with real images"
            )
        sources = None if labels is None else _low_passes(labels.astype(self.dtype), levels)
        out_dtype = jnp.promote_types(self.dtype, jnp.float32)
        height, width, channels = self.image_shape
        factor = 2 ** (levels - 1)
        chunks = noise_chunks(z.astype(self.dtype), levels)
        coarse_shape = (height // factor, width // factor, channels)
        if coarse is None:
            image = _CoarseGenerator(
                coarse_shape, self.coarse_width or self.width, self.dtype, self.coarse_model == "conv", name="level_0"
            )(chunks[0])
        elif tuple(coarse.shape[1:]) != coarse_shape or coarse.shape[0] != z.shape[0]:
            raise ValueError(
                f"LaplacianGenerator: a coarse image batch of shape {tuple(coarse.shape)} for z of batch {z.shape[0]}; "
                f"level 0 of {tuple(self.image_shape)} images is {coarse_shape}"
            )
        else:
            image = coarse.astype(self.dtype)
        pyramid = [image]
        if coarsest_only:
            return [image.astype(out_dtype)]
        for k in range(1, levels):
            low = upsample(image if sources is None else sources[k - 1])
            residual = _ResidualGenerator(self.width, self.dtype, name=f"level_{k}")(
                chunks[k], jax.lax.stop_gradient(low)
            )
            pyramid.append(residual)
            image = low + residual
        return [level.astype(out_dtype) for level in pyramid]

    def coarsest(self, z: Array, *, train: bool = True) -> Array:
        """G_0's image I_0 [B, H_0, W_0, C] for z (only level 0 runs): the coarsest level's own game
        (`jaxgan.updates.with_coarse_level_updates`). LaplacianDiscriminator on I_0 gives D_0's logit alone."""
        return self.levels(z, train=train, coarsest_only=True)[0]

    def __call__(self, z: Array, labels: Array | None = None, *, train: bool = True) -> Array:
        image = reconstruct(self.levels(z, labels, train=train))
        return image if train else jnp.clip(image, -1.0, 1.0)


class _CoarseDiscriminator(nn.Module):
    """D_0: I_0 -> logit [B].

    conv=False (fully connected, as the paper's D_0 without its dropout): flatten -> Dense(width)
    -> LeakyReLU(0.2) -> Dense(1).
    conv=True: Conv3x3(width) -> LeakyReLU(0.2), then stride-2 Conv3x3(width) -> LeakyReLU(0.2) until the side is
    at most 4 -> flatten -> Dense(1)."""

    width: int
    dtype: Any
    conv: bool = False

    @nn.compact
    def __call__(self, image: Array) -> Array:
        if not self.conv:
            x = image.reshape(image.shape[0], -1)
            x = nn.leaky_relu(nn.Dense(self.width, dtype=self.dtype)(x), _LEAK)
            return nn.Dense(1, dtype=self.dtype)(x)[:, 0]
        x = nn.leaky_relu(nn.Conv(self.width, (3, 3), dtype=self.dtype)(image), _LEAK)
        return _strided_logit(x, self.width, self.dtype)


def _strided_logit(x: Array, width: int, dtype: Any) -> Array:
    """Stride-2 Conv3x3(width) -> LeakyReLU(0.2) until the side is at most 4, then flatten -> Dense(1): logits [B].
    Called inside a compact module, whose parameters these layers become."""
    size = max(x.shape[1], x.shape[2])
    while size > 4:
        x = nn.leaky_relu(nn.Conv(width, (3, 3), strides=(2, 2), padding="SAME", dtype=dtype)(x), _LEAK)
        size = -(-size // 2)
    return nn.Dense(1, dtype=dtype)(x.reshape(x.shape[0], -1))[:, 0]


class _ResidualDiscriminator(nn.Module):
    """D_k, k ≥ 1: [h_k, l_k] (channels concatenated) -> stride-2 Conv3x3(width) -> LeakyReLU(0.2), repeated until
    the side is at most 4 -> flatten -> Dense(1) -> logit [B]."""

    width: int
    dtype: Any

    @nn.compact
    def __call__(self, residual: Array, low: Array) -> Array:
        return _strided_logit(jnp.concatenate([residual, low], axis=-1), self.width, self.dtype)


class LaplacianDiscriminator(nn.Module):
    r"""LapGAN discriminator (Denton et al. 2015, the per-level conditional discriminators of its "LAPGAN"
    subsection): images [B, H, W, C] -> logits [B, L], one independent logit per Laplacian pyramid level
    (L = `pyramid_levels`).

    The input x is decomposed by the fixed pyramid operator, I_{L−1} = x, I_{k−1} = d(I_k),
    h_k = I_k − u(I_{k−1}) (`laplacian_pyramid`), and

        logits[:, 0] = D_0(I_0)                          (MLP or convnet on the coarsest image),
        logits[:, k] = D_k(h_k, u(sg(I_{k−1})))          (convnet on [residual, low-pass image], k ≥ 1),

    sg = `jax.lax.stop_gradient`: the low-pass conditioning image carries no gradient to the input, so the input
    gradient of logit k flows only through h_k (D's parameter gradients are unaffected). A real image is seen
    through its own pyramid; a `LaplacianGenerator` image through G's levels exactly (its residuals have zero 2x2
    block means). jaxgan/losses.py reduces logits with a mean over all elements, so the game is the mean of the
    L per-level games.

    With `labels` (source images, the shape of x) the conditioning image of level k is the source's, u(sg(I'_{k−1})),
    and x gives only I_0 and the residuals: LapGAN's training, where a sample's residuals refine a real image.
    Computed in `dtype`, returned as promote_types(dtype, float32). Stateless. Submodules are
    named level_0, ..., level_{L−1}. Unsupported image sizes raise a one-line ValueError.
    """

    width: int = 64
    dtype: Any = jnp.float32
    coarse_width: int = 0  # D_0's hidden units or channels (0: `width`)
    coarse_model: str = "mlp"  # D_0: "mlp" (the paper's) or "conv"

    @nn.compact
    def __call__(self, x: Array, labels: Array | None = None, *, train: bool = True) -> Array:
        del train
        levels = pyramid_levels(tuple(x.shape[1:]), "LaplacianDiscriminator")
        _check_coarse_model(self.coarse_model, "LaplacianDiscriminator")
        if labels is not None and labels.shape != x.shape:
            raise ValueError(
                f"LaplacianDiscriminator: source images of shape {tuple(labels.shape)} for images of {tuple(x.shape)}"
            )
        lows = _low_passes(x.astype(self.dtype), levels)
        conditions = lows if labels is None else _low_passes(labels.astype(self.dtype), levels)
        coarse = _CoarseDiscriminator(self.coarse_width or self.width, self.dtype, self.coarse_model == "conv", name="level_0")
        logits = [coarse(lows[0])]
        for k in range(1, levels):
            residual = lows[k] - upsample(lows[k - 1])
            low = upsample(jax.lax.stop_gradient(conditions[k - 1]))
            logits.append(_ResidualDiscriminator(self.width, self.dtype, name=f"level_{k}")(residual, low))
        return jnp.stack(logits, axis=-1).astype(jnp.promote_types(self.dtype, jnp.float32))


__all__ = [
    "COARSE_MODELS",
    "LaplacianDiscriminator",
    "LaplacianGenerator",
    "coarse_image",
    "downsample",
    "laplacian_pyramid",
    "noise_chunks",
    "pyramid_levels",
    "reconstruct",
    "upsample",
]
