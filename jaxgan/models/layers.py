"""Layers of the ResNet GANs (SNGAN, SAGAN, BigGAN): spectral normalisation, conditional batch norm and
self-attention.

* `spectral_norm` (Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral normalization for generative adversarial
  networks"): a layer's weight matrix divided by its largest singular value, estimated by power iteration;
* `ConditionalBatchNorm` (de Vries et al. 2017, "Modulating early visual processing by language"; Miyato &
  Koyama 2018, "cGANs with projection discriminator"; Brock, Donahue & Simonyan 2019, "Large scale GAN training
  for high fidelity natural image synthesis", BigGAN): batch norm whose gain and bias depend on the class or
  on a conditioning vector;
* `SelfAttention` (Zhang, Goodfellow, Metaxas & Odena 2019, "Self-attention generative adversarial networks",
  SAGAN, Section 3).

All follow the model protocol of this package: `train=True` updates model state (batch statistics, the power
iteration vector), which lives in the `batch_stats` collection (pass `mutable=["batch_stats"]`); `train=False`
reads it and leaves it unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def spectral_norm(
    layer: nn.Module, *, train: bool, enabled: bool = True, power_iterations: int = 1
) -> Callable[..., jax.Array]:
    """`layer` with every weight matrix W replaced by W / σ(W) (Miyato et al. 2018), built on `nn.SpectralNorm`.

    A kernel of rank > 2 ([k, k, in, out] for a convolution, also `SpaceToDepthConv`'s) is reshaped to the
    [k·k·in, out] matrix first, as in the paper's code: σ is then the largest singular value of that matrix,
    not the convolution's operator norm (which it bounds only up to a factor that grows with k). Vectors and
    scalars (biases, gains) are left as they are.

    σ is estimated by power iteration: with the stored estimate u of the top singular vector on the output side
    (the paper's ũ, an `out`-vector; random at initialisation),

        v = Wu / ‖Wu‖,   u' = Wᵀv / ‖Wᵀv‖,   σ = vᵀ W u'     (W as the [in, out] kernel matrix),

    `power_iterations` times per call (the paper uses one per update of W, Algorithm 1, reusing u across
    steps, so the estimate converges as training goes). Stored per train-mode call, as the authors' Chainer code
    stores it whenever W̄ is computed in training (pfnet-research/sngan_projection, `SNConvolution2D.W_bar`): a D
    step calls D on the real and on the fake batch, so u advances twice per D step there and here, and the fake
    call's σ is one iteration further on than the real call's (G's call keeps nothing here). u and v are constants for differentiation
    (`stop_gradient`, the paper's treatment), so σ's gradient is ∂σ/∂W = v u'ᵀ and that of a loss L through
    W̄ = W/σ is (1/σ)(G − ⟨G, W̄⟩ v u'ᵀ), G = ∂L/∂W̄: the gradient of the paper's Section 2.2.

    `train=True` stores the new u and σ in the `batch_stats` collection (model state; under the wrapper's
    name `{layer.name}_spectral_norm`, keys `{layer.name}/kernel/u`, `.../sigma`). `train=False` runs the same
    iteration from the stored u and stores nothing, as the paper's (Chainer) and BigGAN's code do: the output
    is a deterministic function of the parameters and the state, and equals W/σ with the stored σ once u has
    converged. The wrapped layer's parameters keep their own name and place in the parameter tree.

    Initialisation differs from the paper's code: flax's `SpectralNorm` stores the normalised kernel W/σ̂ as the
    parameter at `init` (σ̂ one power iteration from the random u), where Chainer keeps the raw W. The forward
    pass is the same (W/σ is invariant to W's scale), but the stored kernel starts smaller than the layer's own
    initializer draws it (by σ̂, about 1.1–1.5 for the layers here), so Adam's first steps are larger relative to
    the weights than in the paper's setting.

    Returns a callable taking the layer's arguments; with `enabled=False`, `layer` itself.
    """
    if not enabled:
        return layer
    name = f"{layer.name}_spectral_norm" if layer.name else None
    wrapper = nn.SpectralNorm(layer, n_steps=power_iterations, name=name)
    return functools.partial(wrapper, update_stats=train)


class ConditionalBatchNorm(nn.Module):
    """Batch norm without its own affine map, followed by a per-example gain and bias set by the condition:

        y = γ(c) ⊙ (x − μ_B) / sqrt(σ²_B + ε) + β(c),

    μ_B, σ²_B the batch statistics per channel (running averages with `train=False`).

    * `num_classes > 0`: `condition` is int labels [B]; γ and β are rows of two per-class tables ("gain",
      init 1, and "bias", init 0, so the layer starts as plain batch norm): the categorical conditional batch
      norm of SNGAN's conditional generator (Miyato & Koyama 2018, after de Vries et al. 2017).
    * `num_classes == 0`: `condition` is a float vector [B, d] (BigGAN, Brock et al. 2019: a shared class
      embedding, with a chunk of z for hierarchical latents); γ = 1 + Dense(c) and
      β = Dense(c), named "gain" and "bias", with orthogonal initial weights as in BigGAN's code and
      spectrally normalised if `spectral_norm` (BigGAN normalises every linear map of G).

    x is [B, C] or [B, H, W, C]; statistics over all axes but the last; running statistics in `batch_stats`
    (`use_running_average=not train`), momentum 0.9 and ε = 1e-5 like this package's other batch norms.
    """

    num_classes: int = 0
    momentum: float = 0.9
    epsilon: float = 1e-5
    spectral_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, condition: jax.Array, *, train: bool = True) -> jax.Array:
        channels = x.shape[-1]
        normalized = nn.BatchNorm(
            use_running_average=not train, momentum=self.momentum, epsilon=self.epsilon, use_scale=False,
            use_bias=False, dtype=self.dtype, name="batch_norm",
        )(x)
        if self.num_classes > 0:
            gain = nn.Embed(self.num_classes, channels, embedding_init=nn.initializers.ones, name="gain")(condition)
            bias = nn.Embed(self.num_classes, channels, embedding_init=nn.initializers.zeros, name="bias")(condition)
        else:
            linear = functools.partial(nn.Dense, channels, kernel_init=nn.initializers.orthogonal(), dtype=self.dtype)
            condition = condition.astype(self.dtype)
            gain = 1.0 + spectral_norm(linear(name="gain"), train=train, enabled=self.spectral_norm)(condition)
            bias = spectral_norm(linear(name="bias"), train=train, enabled=self.spectral_norm)(condition)
        broadcast = (x.shape[0],) + (1,) * (x.ndim - 2) + (channels,)  # [B, 1, 1, C] for images
        return normalized * gain.reshape(broadcast).astype(self.dtype) + bias.reshape(broadcast).astype(self.dtype)


class AttentionResolutionError(ValueError):
    """An `attention_resolution` that matches no layer of the model; `player` ('generator' or 'discriminator')
    lets the runner name the flag that set it."""

    def __init__(self, message: str, player: str, resolution: int):
        super().__init__(message)
        self.player, self.resolution = player, resolution


def attention_after(who: str, resolution: int, sides: list[int]) -> int:
    """Where a model puts its `SelfAttention`: the index of the first of its blocks (or layers) whose output side
    is `resolution`, -1 (none) when `resolution` is 0; any other side is a one-line `AttentionResolutionError`
    listing the valid ones for this image size. `who` is the model's class name, ending in Generator or
    Discriminator."""
    if resolution <= 0:
        return -1
    if resolution not in sides:
        raise AttentionResolutionError(
            f"{who}: attention_resolution={resolution} matches no block output; valid resolutions for this image "
            f"size: {', '.join(map(str, sorted(set(sides))))} (0: no attention)",
            "generator" if who.endswith("Generator") else "discriminator",
            resolution,
        )
    return sides.index(resolution)


class SelfAttention(nn.Module):
    """Self-attention block of SAGAN (Zhang et al. 2019, Section 3), in the layout of the official
    implementation (also BigGAN's): x [B, H, W, C] -> x + γ·o, γ a scalar parameter initialised to 0 (the
    block starts as the identity and learns how much non-local evidence to use).

    With 1x1 convolutions without bias, query q = W_q x (C/8 channels), key k = W_k x (C/8) and value
    h = W_v x (C/2), the key and value max-pooled 2x2 (a quarter of the positions: cheaper, as in the official
    code; the paper's equations use all positions and C/8 value channels):

        β_ij = exp(q_iᵀ k_j) / Σ_j' exp(q_iᵀ k_j'),   o_i = W_o Σ_j β_ij h_j,   y_i = x_i + γ o_i,

    i over the H·W positions, j over the pooled ones, W_o a 1x1 convolution back to C channels. Named "query",
    "key", "value", "output" and "gamma" (the paper's f, g, h, v and γ; official code: theta, phi, g, o).
    A side of odd length is not pooled (7x7 maps attend over all 49 positions), so any spatial size works.
    Channel counts are at least 1 (C/8 of a narrow test model). The softmax is computed in float32 or wider.
    `spectral_norm=True` normalises the four convolutions (SAGAN uses spectral norm in both players).
    """

    spectral_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
        batch, height, width, channels = x.shape
        x = x.astype(self.dtype)

        def conv(features: int, name: str) -> Callable[[jax.Array], jax.Array]:
            layer = nn.Conv(
                features, (1, 1), use_bias=False, kernel_init=nn.initializers.xavier_uniform(), dtype=self.dtype,
                name=name,
            )
            return spectral_norm(layer, train=train, enabled=self.spectral_norm)

        window = (2 if height % 2 == 0 else 1, 2 if width % 2 == 0 else 1)
        pool = functools.partial(nn.max_pool, window_shape=window, strides=window)
        attention_channels, value_channels = max(1, channels // 8), max(1, channels // 2)
        query = conv(attention_channels, "query")(x).reshape(batch, height * width, attention_channels)
        key = pool(conv(attention_channels, "key")(x)).reshape(batch, -1, attention_channels)
        value = pool(conv(value_channels, "value")(x)).reshape(batch, -1, value_channels)
        softmax_dtype = jnp.promote_types(self.dtype, jnp.float32)
        scores = jnp.einsum("bic,bjc->bij", query, key).astype(softmax_dtype)  # [B, HW, HW/4]
        beta = jax.nn.softmax(scores, axis=-1).astype(self.dtype)
        attended = jnp.einsum("bij,bjc->bic", beta, value).reshape(batch, height, width, value_channels)
        output = conv(channels, "output")(attended)
        gamma = self.param("gamma", nn.initializers.zeros, (), jnp.float32)
        return x + gamma.astype(self.dtype) * output
