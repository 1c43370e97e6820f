"""Players conditioned on class labels or latent codes: conditional GAN, AC-GAN and InfoGAN.

Examples that carry labels or codes travel through the update rules as one pytree, `Labelled`: real images with
their classes, G's noise with the classes or codes it is asked for, and G's samples with the classes or codes they
were made from. `Labelled` indexes and reports its shape like the array it wraps, so every update rule works on
conditioned games unchanged; `jaxgan.game` does the conditioning, through the game's `Conditioning`:

* ``concat`` (Mirza & Osindero 2014, "Conditional generative adversarial nets"): G gets one_hot(y) beside z and
  D gets it beside the image; the objective is the game's loss on (x, y) pairs.
* ``projection`` (Miyato & Koyama 2018, "cGANs with projection discriminator"): G gets the class (the ResNet
  generator through conditional batch norm) and D gets it as the projection term ⟨embed(y), φ(x)⟩ added to its
  logit; the objective is the game's loss on (x, y) pairs, as for ``concat``.
* ``acgan`` (Odena, Olah & Shlens 2017, "Conditional image synthesis with auxiliary classifier GANs"): G gets
  one_hot(y); D gets the image only and has a second head, a classifier. With L_C the classifier's
  cross-entropy, D minimises L_D + w·(L_C(real) + L_C(fake)) and G minimises L_G + w·L_C(fake) (the paper's
  "D maximises L_S + L_C, G maximises L_C − L_S", with the game's own loss for L_S).
* ``infogan`` (Chen, Duan, Houthooft, Schulman, Sutskever, Abbeel 2016, "InfoGAN"): G gets latent codes c beside
  z, a categorical code (one-hot) and continuous codes ~ U(−1, 1); a head Q on D's trunk predicts c from G(z, c).
  Both G and Q minimise λ·L_I on top of their GAN losses, L_I = CE(Q_cat, c_cat) + λ_cont/λ · ½‖Q_μ − c_cont‖²,
  the variational lower bound of I(c; G(z, c)) up to constants (a unit-variance Gaussian Q for the continuous
  codes, as is common; the paper uses λ = 1 for discrete codes and a smaller weight for continuous ones).
* ``real_coarse`` (Denton, Chintala, Szlam & Fergus 2015, LapGAN's training): in a training step, G refines the
  real batch's coarse images instead of its own, and D judges G's residuals against them: every rule hands G the
  real batch it pairs with (`Game.with_real`), as the `source` of G's noise, and D gets the source beside the
  samples. Each finer level's conditional GAN then sees real coarse images on both sides, as the paper trains
  them; without a source (evaluation, sampling) G chains its own levels. LapGAN's players only
  (jaxgan/models/lapgan.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

CONDITIONINGS = ("none", "concat", "projection", "acgan", "infogan", "real_coarse")
# The kinds whose D takes the class as an input (the rest give D the image alone).
_D_TAKES_LABELS = ("concat", "projection")


@flax.struct.dataclass
class Labelled:
    """`data` [..., *shape] (images, or G's noise z) with what conditions it, on the same leading axes.

    `labels` [...] int32 classes (concat, AC-GAN); `categorical` [...] int32 and `continuous` [..., n] float32
    InfoGAN codes; `source` [..., H, W, C] the real images G refines (``real_coarse``, training steps only).
    Indexing maps over every field, and `shape` is `data`'s, so rules written for arrays
    (`real[0]`, `z[:k]`, `lax.scan` over batches) handle it as they are.
    """

    data: jax.Array
    labels: jax.Array | None = None
    categorical: jax.Array | None = None
    continuous: jax.Array | None = None
    source: jax.Array | None = None

    def __getitem__(self, index: Any) -> Labelled:
        return jax.tree.map(lambda x: x[index], self)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype


def data_of(x: jax.Array | Labelled) -> jax.Array:
    return x.data if isinstance(x, Labelled) else x


def logits_of(outputs: jax.Array | dict) -> jax.Array:
    """D's real/fake logits, from a plain array or from a multi-head D's dict ("logits", "class_logits", ...)."""
    return outputs["logits"] if isinstance(outputs, dict) else outputs


@dataclasses.dataclass(frozen=True)
class Conditioning:
    """What conditions the players and what the conditioned objectives add; see the module docstring."""

    kind: str  # one of CONDITIONINGS other than "none"
    num_classes: int = 0
    class_weight: float = 1.0  # AC-GAN's w
    categorical: int = 0  # InfoGAN: size of the categorical code (0: none)
    continuous: int = 0  # InfoGAN: number of continuous codes
    info_weight: float = 1.0  # InfoGAN's λ for the categorical code
    continuous_weight: float = 0.1  # InfoGAN's λ for the continuous codes

    def __post_init__(self):
        if self.kind not in CONDITIONINGS[1:]:
            raise ValueError(f"conditioning {self.kind!r}: must be one of {', '.join(CONDITIONINGS[1:])}")
        if self.uses_labels and self.num_classes < 2:
            raise ValueError(
                f"--config.conditioning={self.kind!r} needs a labelled data set (mnist_5k, digits, stacked_mnist, "
                "an image_folder with class subfolders, a tfds set with labels)"
            )
        if self.categorical < 0 or self.continuous < 0:
            raise ValueError(f"InfoGAN's code sizes must be >= 0, got categorical={self.categorical}, "
                             f"continuous={self.continuous}")  # fmt: skip
        if self.kind == "infogan" and self.categorical + self.continuous == 0:
            raise ValueError("--config.conditioning='infogan' needs --config.info.categorical or --config.info.continuous > 0")

    @property
    def uses_labels(self) -> bool:
        """Whether real batches must carry their classes (and G's noise the classes asked for)."""
        return self.kind in ("concat", "projection", "acgan")

    def latent(self, key: jax.Array, z: jax.Array) -> Labelled:
        """G's input for noise `z` [..., z_dim]: classes uniform over `num_classes` (concat, AC-GAN), or InfoGAN's
        codes from their priors (Cat(K) uniform, U(−1, 1)), drawn from `key` (independent of z's own key)."""
        lead = z.shape[:-1]
        k1, k2 = jax.random.split(key)
        if self.uses_labels:
            return Labelled(z, labels=jax.random.randint(k1, lead, 0, self.num_classes))
        if self.kind != "infogan":  # real_coarse: the source joins in the training step (`with_real`)
            return Labelled(z)
        categorical = jax.random.randint(k1, lead, 0, self.categorical) if self.categorical else None
        continuous = jax.random.uniform(k2, (*lead, self.continuous), z.dtype, -1, 1) if self.continuous else None
        return Labelled(z, categorical=categorical, continuous=continuous)

    def generator_input(self, latent: Labelled) -> tuple[jax.Array, jax.Array | None]:
        """(G's input vector, G's label argument): InfoGAN's codes are concatenated to z, classes go as labels, and
        so do the real images G refines (``real_coarse``)."""
        if self.kind == "real_coarse":
            return latent.data, latent.source
        if self.kind != "infogan":
            return latent.data, latent.labels
        parts = [latent.data]
        if self.categorical:
            parts.append(jax.nn.one_hot(latent.categorical, self.categorical, dtype=latent.data.dtype))
        if self.continuous:
            parts.append(latent.continuous)
        return jnp.concatenate(parts, axis=-1), None

    def discriminator_labels(self, examples: jax.Array | Labelled) -> jax.Array | None:
        """The labels D's network takes as input: the concatenating and the projection D take the class; LapGAN's D
        takes the real images G's samples refine (None for real images: D reads their own pyramid)."""
        if self.kind == "real_coarse":
            return examples.source if isinstance(examples, Labelled) else None
        return examples.labels if self.kind in _D_TAKES_LABELS and isinstance(examples, Labelled) else None

    @property
    def discriminator_takes_labels(self) -> bool:
        return self.kind in _D_TAKES_LABELS

    def with_real(self, latent: Labelled, real: jax.Array | Labelled) -> Labelled:
        """`latent` with the real images it pairs with as G's source (``real_coarse``); unchanged otherwise."""
        return latent.replace(source=data_of(real)) if self.kind == "real_coarse" else latent

    def discriminator_term(self, real_outputs: Any, fake_outputs: Any, real: Labelled, fake: Labelled) -> jax.Array:
        """What D's loss adds: AC-GAN's class cross-entropy on real and fake, InfoGAN's λ·L_I (trains Q)."""
        if self.kind == "acgan":
            return self.class_weight * (_class_loss(real_outputs, real.labels) + _class_loss(fake_outputs, fake.labels))
        if self.kind == "infogan":
            return self.information_loss(fake_outputs, fake)
        return jnp.zeros((), jnp.float32)

    def generator_term(self, fake_outputs: Any, fake: Labelled) -> jax.Array:
        """What G's loss adds: AC-GAN's class cross-entropy on its samples, InfoGAN's λ·L_I."""
        if self.kind == "acgan":
            return self.class_weight * _class_loss(fake_outputs, fake.labels)
        if self.kind == "infogan":
            return self.information_loss(fake_outputs, fake)
        return jnp.zeros((), jnp.float32)

    def information_loss(self, outputs: dict, fake: Labelled) -> jax.Array:
        """λ·CE(Q_cat, c_cat) + λ_cont·½‖Q_μ − c_cont‖² (mean over the batch): −λ × InfoGAN's L_I up to constants."""
        loss = jnp.zeros((), jnp.float32)
        if self.categorical:
            ce = optax.softmax_cross_entropy_with_integer_labels(outputs["code_logits"], fake.categorical)
            loss = loss + self.info_weight * ce.mean()
        if self.continuous:
            squared = jnp.sum((outputs["code_mean"] - fake.continuous) ** 2, axis=-1)
            loss = loss + self.continuous_weight * 0.5 * squared.mean()
        return loss


def _class_loss(outputs: dict, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(outputs["class_logits"], labels).mean()


def make_conditioning(config: Any, num_classes: int) -> Conditioning | None:
    """The `Conditioning` of `config.conditioning` for data with `num_classes` classes (None: unconditional)."""
    if config.conditioning == "none":
        return None
    return Conditioning(
        kind=config.conditioning,
        num_classes=num_classes,
        class_weight=config.class_loss_weight,
        categorical=config.info.categorical,
        continuous=config.info.continuous,
        info_weight=config.info.weight,
        continuous_weight=config.info.continuous_weight,
    )
