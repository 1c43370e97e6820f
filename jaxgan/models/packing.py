"""Packing (Lin, Khetan, Fanti & Oh 2018, "PacGAN: the power of two samples in generative adversarial networks").

A packed discriminator judges m samples at once: the batch [B, ...] is cut into B/m packs of m consecutive
samples, each pack concatenated along the feature axis (the last one: m·d features of flat data, m·C channels of
[H, W, C] images, as in the paper's Section 3), and D gives one logit per pack. Packs are all real or all fake,
so the losses compare B/m real packs with B/m fake ones. A D that sees m samples together sees their joint
distribution, P^m against Q^m: a G that drops modes makes packs with too little variety, which a packed D can
tell from real packs more easily than single samples, and the paper shows that the penalty for mode collapse
grows with m (its Theorem 3).

Samples within a batch are drawn independently, so packs of consecutive samples are packs of independent samples;
cutting consecutive runs also keeps every pack on one device when the batch is split over devices.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxgan.models.calling import call_kwargs


def pack(x: jax.Array, num_packed: int) -> jax.Array:
    """[B, ..., C] → [B/m, ..., m·C]: each run of m consecutive samples concatenated along the last axis (sample
    i·m + j fills the features j·C .. (j+1)·C − 1 of pack i)."""
    batch = x.shape[0]
    if batch % num_packed:
        raise ValueError(f"packing: a batch of {batch} samples cannot be cut into packs of {num_packed}")
    x = x.reshape(batch // num_packed, num_packed, *x.shape[1:])
    x = jax.numpy.moveaxis(x, 1, -2)  # [B/m, ..., m, C]
    return x.reshape(*x.shape[:-2], num_packed * x.shape[-1])


class Packed(nn.Module):
    """`discriminator` applied to packs of `num_packed` samples (PacGAN): [B, ...] → [B/m] logits."""

    discriminator: nn.Module
    num_packed: int

    @property
    def mbstd_group_size(self) -> int:
        """The wrapped D's minibatch-stddev group size (1 without one): a player reads it to know whether D's
        outputs mix examples, which the wrapper must not hide."""
        return getattr(self.discriminator, "mbstd_group_size", 1)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
        return self.discriminator(pack(x, self.num_packed), **call_kwargs(self.discriminator.__call__, train))
