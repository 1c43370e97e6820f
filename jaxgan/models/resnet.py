"""ResNet generator and discriminator of SNGAN (Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral normalization
for generative adversarial networks", Appendix B: the CIFAR-10 32x32 ResNets), with the projection
discriminator (Miyato & Koyama 2018, "cGANs with projection discriminator"), SAGAN's self-attention (Zhang et al.
2019) and BigGAN's shared class embedding and hierarchical latents (Brock, Donahue & Simonyan 2019) as options.

Both modules follow the model protocol of this package: `__call__(x, labels=None, *, train=True)`, compute in
`dtype`, outputs cast to `promote_types(dtype, float32)`; batch statistics and spectral normalisation's power
iteration vectors are model state in the `batch_stats` collection (pass `mutable=["batch_stats"]` when
`train=True`).

Weights are initialised as in the paper's Chainer code: Glorot (Xavier) uniform with gain √2 for the 3x3
convolutions of the residual branches and gain 1 for the 1x1 shortcut convolutions, the dense layers, the
output convolution and the projection embedding; biases 0, batch-norm gains 1. A spectrally normalised layer then
stores its kernel divided by the first σ estimate (`jaxgan.models.layers.spectral_norm`).

Parameter counts for 32x32x3 at the paper's widths (measured; z_dim 128, unconditional): generator base_width
256: 4,276,739 params (+ 3,584 batch-norm statistics); discriminator base_width 128: 1,053,825 params
(+ 1,292 power-iteration values, u and σ of each of its 11 spectrally normalised layers). Class-conditional
with 10 classes: G 4,304,387 (per-class gains and biases), D 1,055,105 (the projection embedding).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.dcgan import UnsupportedImageSize, generator_plan
from jaxgan.models.layers import ConditionalBatchNorm, SelfAttention, attention_after, spectral_norm

_RESIDUAL_INIT = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")  # Glorot uniform, gain √2
_GLOROT_INIT = nn.initializers.xavier_uniform()


def _batch_norm(train: bool, momentum: float, dtype: Any, name: str) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=1e-5, dtype=dtype, name=name)


def _upsample(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x upsampling (the paper code's `unpooling_2d`)."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x: jax.Array) -> jax.Array:
    """2x2 average pooling, stride 2; an odd side keeps its last row/column as a window of one (padding SAME,
    padded pixels not counted), so 7 -> 4."""
    return nn.avg_pool(x, (2, 2), strides=(2, 2), padding="SAME", count_include_pad=False)


def _labels_needed(who: str, num_classes: int, labels: jax.Array | None) -> None:
    if num_classes > 0 and labels is None:
        raise ValueError(f"{who} has num_classes={num_classes} > 0 and needs labels (int [batch]), got None")


class GeneratorBlock(nn.Module):
    """Up-sampling residual block of SNGAN's generator (Miyato et al. 2018, Appendix B):

        residual: BN -> ReLU -> upsample 2x -> conv3x3 -> BN -> ReLU -> conv3x3
        shortcut: upsample 2x -> conv1x1,

    output = residual + shortcut. With `conditional`, both batch norms are `ConditionalBatchNorm` on
    `condition` (int labels when `num_classes > 0`, else a conditioning vector), otherwise plain batch norm.
    """

    features: int
    conditional: bool = False
    num_classes: int = 0
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, condition: jax.Array | None = None, *, train: bool = True) -> jax.Array:
        def norm(name: str, h: jax.Array) -> jax.Array:
            if self.conditional:
                cbn = ConditionalBatchNorm(self.num_classes, momentum=self.bn_momentum, dtype=self.dtype, name=name)
                return cbn(h, condition, train=train)
            return _batch_norm(train, self.bn_momentum, self.dtype, name)(h)

        conv = functools.partial(
            nn.Conv, self.features, (3, 3), padding="SAME", kernel_init=_RESIDUAL_INIT, dtype=self.dtype
        )
        h = _upsample(nn.relu(norm("bn1", x)))
        h = conv(name="conv1")(h)
        h = conv(name="conv2")(nn.relu(norm("bn2", h)))
        shortcut = nn.Conv(self.features, (1, 1), kernel_init=_GLOROT_INIT, dtype=self.dtype, name="shortcut")
        return h + shortcut(_upsample(x))


class DiscriminatorBlock(nn.Module):
    """Residual block of SNGAN's discriminator (Miyato et al. 2018, Appendix B):

        residual: ReLU -> conv3x3 -> ReLU -> conv3x3 [-> avg pool 2x2]
        shortcut: conv1x1 [-> avg pool 2x2], the identity when the block keeps size and width.

    `optimized=True` is the paper code's first block, which reads the image itself (no ReLU before the first
    conv; pooling before the shortcut's conv, cheaper on 3 channels):

        residual: conv3x3 -> ReLU -> conv3x3 -> avg pool 2x2;   shortcut: avg pool 2x2 -> conv1x1.

    Every convolution is spectrally normalised when `spectral_norm`.
    """

    features: int
    downsample: bool = True
    optimized: bool = False
    spectral_norm: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
        x = x.astype(self.dtype)

        def conv(name: str, kernel: int, init) -> nn.Module:
            layer = nn.Conv(
                self.features, (kernel, kernel), padding="SAME", kernel_init=init, dtype=self.dtype, name=name
            )
            return spectral_norm(layer, train=train, enabled=self.spectral_norm)

        h = x if self.optimized else nn.relu(x)
        h = conv("conv2", 3, _RESIDUAL_INIT)(nn.relu(conv("conv1", 3, _RESIDUAL_INIT)(h)))
        if self.downsample or self.optimized:
            h = _downsample(h)
        if self.optimized:
            return h + conv("shortcut", 1, _GLOROT_INIT)(_downsample(x))
        shortcut = x
        if self.downsample or x.shape[-1] != self.features:
            shortcut = conv("shortcut", 1, _GLOROT_INIT)(x)
        return h + (_downsample(shortcut) if self.downsample else shortcut)


class ResNetGenerator(nn.Module):
    """SNGAN's ResNet generator (Miyato et al. 2018, Appendix B): z [B, z_dim] -> images [B, H, W, C]
    in [-1, 1].

        z -> Dense(h0·w0·base_width) -> reshape -> n x GeneratorBlock(base_width) -> BN -> ReLU -> conv3x3(C) -> tanh

    with the start size h0 x w0 and the number of 2x up-sampling blocks n of `generator_plan` (32x32: 4x4 and 3
    blocks, the paper's CIFAR-10 generator with base_width 256 and z_dim 128; 28x28: 7x7 and 2 blocks).
    Unsupported image sizes raise a one-line ValueError.

    Conditioning of the blocks' batch norms (the output batch norm is always plain, as in SNGAN and BigGAN):
      * `num_classes > 0` alone: categorical conditional batch norm on the labels (SNGAN's conditional G,
        Miyato & Koyama 2018); `labels` (int [B]) is then required;
      * `shared_embedding_dim > 0` (needs `num_classes > 0`): BigGAN's shared class embedding, one nn.Embed
        ("shared_embedding") whose vector feeds every block's conditional batch norms through linear maps;
      * `hierarchical_latents=True` (BigGAN): z is split into n + 1 equal chunks (z_dim must be divisible by
        n + 1), the first feeding the Dense layer and chunk i + 1 the batch norms of block i, concatenated with
        the class vector (the shared embedding, or the one-hot label when shared_embedding_dim is 0) if
        num_classes > 0; without labels, the chunk alone conditions them.
    `attention_resolution = R > 0` inserts `SelfAttention` (SAGAN) after the block whose output height is R.
    """

    image_shape: tuple[int, int, int]
    base_width: int = 256
    num_classes: int = 0
    attention_resolution: int = 0
    hierarchical_latents: bool = False
    shared_embedding_dim: int = 0
    bn_momentum: float = 0.9
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None = None, *, train: bool = True) -> jax.Array:
        try:
            h0, w0, num_blocks = generator_plan(tuple(self.image_shape))
        except UnsupportedImageSize as error:
            raise UnsupportedImageSize(str(error).replace("DCGANGenerator", "ResNetGenerator")) from None
        attention_block = attention_after(
            "ResNetGenerator", self.attention_resolution, [h0 * 2 ** (i + 1) for i in range(num_blocks)]
        )
        if self.shared_embedding_dim > 0 and self.num_classes <= 0:
            raise ValueError("ResNetGenerator: shared_embedding_dim > 0 needs num_classes > 0")
        _labels_needed("ResNetGenerator", self.num_classes, labels)
        z = z.astype(self.dtype)
        vector_conditioning = self.hierarchical_latents or self.shared_embedding_dim > 0
        chunks = [z] + [None] * num_blocks
        if self.hierarchical_latents:
            if z.shape[-1] % (num_blocks + 1) != 0:
                raise ValueError(
                    f"ResNetGenerator: hierarchical_latents splits z into {num_blocks + 1} equal chunks (1 + "
                    f"{num_blocks} blocks), but z_dim {z.shape[-1]} is not divisible by {num_blocks + 1}"
                )
            chunks = jnp.split(z, num_blocks + 1, axis=-1)
        class_vector = None
        if vector_conditioning and self.num_classes > 0:
            if self.shared_embedding_dim > 0:
                shared = nn.Embed(
                    self.num_classes, self.shared_embedding_dim, embedding_init=nn.initializers.orthogonal(),
                    dtype=self.dtype, name="shared_embedding",
                )
                class_vector = shared(labels)
            else:
                class_vector = jax.nn.one_hot(labels, self.num_classes, dtype=self.dtype)

        def block_condition(block: int) -> jax.Array | None:
            if not vector_conditioning:
                return labels if self.num_classes > 0 else None
            parts = [chunks[block + 1]] if self.hierarchical_latents else []
            return jnp.concatenate(parts + ([class_vector] if class_vector is not None else []), axis=-1)

        width = self.base_width
        x = nn.Dense(h0 * w0 * width, kernel_init=_GLOROT_INIT, dtype=self.dtype, name="dense")(chunks[0])
        x = x.reshape(x.shape[0], h0, w0, width)
        for block in range(num_blocks):
            x = GeneratorBlock(
                width, conditional=vector_conditioning or self.num_classes > 0,
                num_classes=0 if vector_conditioning else self.num_classes, bn_momentum=self.bn_momentum,
                dtype=self.dtype, name=f"block_{block}",
            )(x, block_condition(block), train=train)
            if block == attention_block:
                x = SelfAttention(spectral_norm=False, dtype=self.dtype, name="attention")(x, train=train)
        x = nn.relu(_batch_norm(train, self.bn_momentum, self.dtype, "output_bn")(x))
        x = nn.Conv(
            self.image_shape[2], (3, 3), padding="SAME", kernel_init=_GLOROT_INIT, dtype=self.dtype, name="output_conv"
        )(x)
        return jnp.tanh(x).astype(jnp.promote_types(self.dtype, jnp.float32))


def discriminator_plan(height: int, width: int) -> list[bool]:
    """Whether each block of `ResNetDiscriminator` down-samples: the first always; then down-sampling blocks
    while the larger side exceeds 8; then two blocks that keep the size. 32x32: [down, down, same, same] (the
    paper's CIFAR-10 discriminator, ending at 8x8); 28x28: 28 -> 14 -> 7, then two at 7x7."""
    side = max(height, width)
    plan = [True]
    side = -(-side // 2)
    while side > 8:
        plan.append(True)
        side = -(-side // 2)
    return plan + [False, False]


class ResNetDiscriminator(nn.Module):
    """SNGAN's ResNet discriminator (Miyato et al. 2018, Appendix B) with the projection head of
    Miyato & Koyama 2018: images [B, H, W, C] -> logits [B].

        x -> DiscriminatorBlock(optimized, down) -> DiscriminatorBlock(down)... -> 2 x DiscriminatorBlock(same)
          -> ReLU -> global sum pooling = φ(x) [B, base_width]
        logits = Dense(1)(φ(x)) [+ ⟨Embed(y), φ(x)⟩  when num_classes > 0]

    all blocks base_width wide (128 in the paper), down-sampling per `discriminator_plan` (32x32: down, down,
    same, same). The projection term is eq. (3) of Miyato & Koyama 2018, the inner product of a learned class
    embedding ("class_embedding", [num_classes, base_width]) with the features; `labels` (int [B]) is then
    required, otherwise ignored.

    `spectral_norm=True` (the paper's): every convolution, the Dense layer and the class embedding are
    spectrally normalised, as in the paper's code (SNEmbedID; normalising the embedding is optional in Miyato
    & Koyama 2018). `attention_resolution = R > 0` inserts `SelfAttention` (spectrally normalised like the
    rest) after the first block whose output height is R. Logits are float32 (or wider).
    """

    base_width: int = 128
    num_classes: int = 0
    attention_resolution: int = 0
    spectral_norm: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None, *, train: bool = True) -> jax.Array:
        plan = discriminator_plan(x.shape[1], x.shape[2])
        sides, side = [], x.shape[1]
        for downsample in plan:
            side = -(-side // 2) if downsample else side
            sides.append(side)
        attention_block = attention_after("ResNetDiscriminator", self.attention_resolution, sides)
        _labels_needed("ResNetDiscriminator", self.num_classes, labels)
        h = x.astype(self.dtype)
        for block, downsample in enumerate(plan):
            h = DiscriminatorBlock(
                self.base_width, downsample=downsample, optimized=block == 0, spectral_norm=self.spectral_norm,
                dtype=self.dtype, name=f"block_{block}",
            )(h, train=train)
            if block == attention_block:
                h = SelfAttention(spectral_norm=self.spectral_norm, dtype=self.dtype, name="attention")(h, train=train)
        features = jnp.sum(nn.relu(h), axis=(1, 2))  # [B, base_width]: global sum pooling
        logit = nn.Dense(1, kernel_init=_GLOROT_INIT, dtype=self.dtype, name="logit")
        logits = spectral_norm(logit, train=train, enabled=self.spectral_norm)(features)[:, 0]
        if self.num_classes > 0:
            embed = nn.Embed(
                self.num_classes, self.base_width, embedding_init=_GLOROT_INIT, dtype=self.dtype, name="class_embedding"
            )
            class_embedding = spectral_norm(embed, train=train, enabled=self.spectral_norm)(labels)
            logits = logits + jnp.sum(class_embedding * features, axis=-1)
        return logits.astype(jnp.promote_types(self.dtype, jnp.float32))
