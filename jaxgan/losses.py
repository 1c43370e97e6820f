r"""GAN losses as pure functions of discriminator outputs.

Every function takes raw discriminator outputs ("logits" / critic values ``v``, float arrays of any shape; real
and fake batches may differ in shape), reduces each expectation with a mean, and returns a scalar that the
corresponding player MINIMIZES. Where a probability is meant, ``D = sigmoid(v)``; the losses are written with
``softplus`` / ``log_sigmoid`` so that no ``log(sigmoid(v))`` is ever formed and logits of any size stay finite:

    -log sigmoid(v) = softplus(-v),        -log(1 - sigmoid(v)) = softplus(v).

A :class:`GanLoss` pairs a discriminator loss ``(real_logits, fake_logits) -> scalar`` with a generator loss
``fake_logits -> scalar``; :data:`LOSSES` names them and :func:`get_loss` looks them up.

The f-GAN losses (Nowozin et al. 2016) are parametrised by an :class:`FDivergence`; :data:`F_DIVERGENCES` holds
the seven of their Table 2.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from jaxgan import energy
from jaxgan.registry import unknown_name

ArrayLike = jax.typing.ArrayLike
Array = jax.Array

_LOG2 = math.log(2.0)


class GanLoss(NamedTuple):
    """A pair of losses, each MINIMIZED by its player.

    Attributes:
      discriminator: ``(real_logits, fake_logits) -> scalar``, the discriminator's (critic's) loss.
      generator: ``fake_logits -> scalar``, the generator's loss.
    """

    discriminator: Callable[[ArrayLike, ArrayLike], Array]
    generator: Callable[[ArrayLike], Array]


# ---------------------------------------------------------------------------------------------------------------
# Minimax / non-saturating GAN.
# ---------------------------------------------------------------------------------------------------------------


def minimax_discriminator_loss(real_logits: ArrayLike, fake_logits: ArrayLike) -> Array:
    r"""Discriminator loss of the original GAN: the negated value function.

    With :math:`D = \sigma(v)` the discriminator maximizes
    :math:`V(D, G) = \mathbb{E}_{x \sim p_{data}}[\log D(x)] + \mathbb{E}_{z}[\log(1 - D(G(z)))]`; this is

    .. math::
      L_D = -V = \mathbb{E}[\mathrm{softplus}(-v_{real})] + \mathbb{E}[\mathrm{softplus}(v_{fake})].

    At the optimum for :math:`p_g = p_{data}` (:math:`D = 1/2`, logits 0) it equals :math:`\log 4`; in general
    its minimum over D is :math:`\log 4 - 2\,\mathrm{JSD}(p_{data} \| p_g)`.

    Args:
      real_logits: discriminator logits on data samples, any shape.
      fake_logits: discriminator logits on generated samples, any shape.

    Returns:
      A scalar.

    References:
      Goodfellow et al., 2014, Generative Adversarial Nets, https://arxiv.org/abs/1406.2661
    """
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def minimax_generator_loss(fake_logits: ArrayLike) -> Array:
    r"""Saturating generator loss of the original GAN: exactly minus the fake part of :math:`L_D`.

    .. math::
      L_G = \mathbb{E}_z[\log(1 - D(G(z)))] = -\mathbb{E}[\mathrm{softplus}(v_{fake})].

    Its gradient vanishes when D confidently rejects the fakes (:math:`v_{fake} \to -\infty`), which is why
    :func:`nonsaturating_generator_loss` is used in practice.

    References:
      Goodfellow et al., 2014, Generative Adversarial Nets, https://arxiv.org/abs/1406.2661
    """
    return -jnp.mean(jax.nn.softplus(fake_logits))


def nonsaturating_generator_loss(fake_logits: ArrayLike) -> Array:
    r"""Non-saturating ("-log D trick") generator loss.

    .. math::
      L_G = -\mathbb{E}_z[\log D(G(z))] = \mathbb{E}[\mathrm{softplus}(-v_{fake})].

    Same fixed points as :func:`minimax_generator_loss` but strong gradients early in training, when D rejects
    the fakes easily.

    References:
      Goodfellow et al., 2014, Generative Adversarial Nets, Section 3, https://arxiv.org/abs/1406.2661
    """
    return jnp.mean(jax.nn.softplus(-fake_logits))


# ---------------------------------------------------------------------------------------------------------------
# Wasserstein, hinge, least squares.
# ---------------------------------------------------------------------------------------------------------------


def wasserstein_discriminator_loss(real_logits: ArrayLike, fake_logits: ArrayLike) -> Array:
    r"""Wasserstein critic loss.

    .. math::
      L_D = \mathbb{E}[v_{fake}] - \mathbb{E}[v_{real}].

    By Kantorovich-Rubinstein duality, :math:`-\min L_D` over 1-Lipschitz critics is :math:`W_1(p_{data}, p_g)`.
    The Lipschitz constraint (weight clipping, gradient penalty, spectral norm) is NOT part of this loss; without
    one the loss is unbounded below.

    References:
      Arjovsky, Chintala, Bottou, 2017, Wasserstein GAN, https://arxiv.org/abs/1701.07875
    """
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def wasserstein_generator_loss(fake_logits: ArrayLike) -> Array:
    r"""Wasserstein generator loss, :math:`L_G = -\mathbb{E}[v_{fake}]`.

    References:
      Arjovsky, Chintala, Bottou, 2017, Wasserstein GAN, https://arxiv.org/abs/1701.07875
    """
    return -jnp.mean(fake_logits)


def hinge_discriminator_loss(real_logits: ArrayLike, fake_logits: ArrayLike) -> Array:
    r"""Hinge discriminator loss.

    .. math::
      L_D = \mathbb{E}[\max(0, 1 - v_{real})] + \mathbb{E}[\max(0, 1 + v_{fake})].

    Samples already classified with margin 1 contribute no gradient.

    References:
      Lim & Ye, 2017, Geometric GAN, https://arxiv.org/abs/1705.02894;
      Miyato et al., 2018, Spectral Normalization for GANs, https://arxiv.org/abs/1802.05957
    """
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_generator_loss(fake_logits: ArrayLike) -> Array:
    r"""Hinge generator loss, :math:`L_G = -\mathbb{E}[v_{fake}]` (no margin on the generator side).

    References:
      Lim & Ye, 2017, Geometric GAN, https://arxiv.org/abs/1705.02894;
      Miyato et al., 2018, Spectral Normalization for GANs, https://arxiv.org/abs/1802.05957
    """
    return -jnp.mean(fake_logits)


def least_squares_discriminator_loss(real_logits: ArrayLike, fake_logits: ArrayLike) -> Array:
    r"""Least-squares (LSGAN) discriminator loss with targets a = 0 (fake), b = 1 (real).

    .. math::
      L_D = \tfrac12 \mathbb{E}[(v_{real} - 1)^2] + \tfrac12 \mathbb{E}[v_{fake}^2].

    The raw output is regressed onto the targets (no sigmoid).

    References:
      Mao et al., 2017, Least Squares Generative Adversarial Networks, https://arxiv.org/abs/1611.04076
    """
    return 0.5 * jnp.mean(jnp.square(real_logits - 1.0)) + 0.5 * jnp.mean(jnp.square(fake_logits))


def least_squares_generator_loss(fake_logits: ArrayLike) -> Array:
    r"""Least-squares (LSGAN) generator loss with target c = 1: :math:`L_G = \tfrac12 \mathbb{E}[(v_{fake} - 1)^2]`.

    References:
      Mao et al., 2017, Least Squares Generative Adversarial Networks, https://arxiv.org/abs/1611.04076
    """
    return 0.5 * jnp.mean(jnp.square(fake_logits - 1.0))


# ---------------------------------------------------------------------------------------------------------------
# f-GAN.
# ---------------------------------------------------------------------------------------------------------------


class FDivergence(NamedTuple):
    r"""An f-divergence :math:`D_f(P \| Q) = \int q(x) f(p(x)/q(x)) dx` in the f-GAN parametrisation.

    The critic is :math:`T(x) = g_f(V(x))` with an unconstrained output :math:`V` and an output activation
    :math:`g_f` whose range lies in the domain of the Fenchel conjugate :math:`f^*(t) = \sup_u (u t - f(u))`.

    Attributes:
      name: short name, the key in :data:`F_DIVERGENCES`.
      activation: :math:`g_f: \mathbb{R} \to \mathrm{dom} f^*`.
      conjugate: :math:`f^*: \mathrm{dom} f^* \to \mathbb{R}` (undefined, may be nan, outside its domain).
      f: the convex generator :math:`f(u)`, :math:`u > 0` (not used by the losses; there for checks).
      conjugate_of_activation: :math:`v \mapsto f^*(g_f(v))`, simplified analytically so that it is finite
        for any finite v (composing ``conjugate`` and ``activation`` overflows for some divergences, e.g. for
        the GAN divergence :math:`g_f(v) \to 0^-` and :math:`f^*(t) = -\log(1 - e^t) \to \infty`).
    """

    name: str
    activation: Callable[[ArrayLike], Array]
    conjugate: Callable[[ArrayLike], Array]
    f: Callable[[ArrayLike], Array]
    conjugate_of_activation: Callable[[ArrayLike], Array]


def _log1mexp(x: ArrayLike) -> Array:
    """``log(1 - exp(x))`` for ``x < 0``, accurate near 0 and for very negative x (Maechler, 2012)."""
    x = jnp.asarray(x)
    near_zero = x > -_LOG2
    # Both branches are evaluated by jnp.where: give each only arguments where it is accurate and finite, so
    # that neither the value nor the gradient picks up nan from the branch that is not selected.
    x_near = jnp.where(near_zero, x, -1.0)
    x_far = jnp.where(near_zero, -1.0, x)
    return jnp.where(near_zero, jnp.log(-jnp.expm1(x_near)), jnp.log1p(-jnp.exp(x_far)))


def _identity(x: ArrayLike) -> Array:
    return jnp.asarray(x)


TOTAL_VARIATION = FDivergence(
    name="total_variation",
    activation=lambda v: 0.5 * jnp.tanh(v),
    conjugate=_identity,  # on |t| <= 1/2
    f=lambda u: 0.5 * jnp.abs(u - 1.0),
    conjugate_of_activation=lambda v: 0.5 * jnp.tanh(v),
)

KL = FDivergence(
    name="kl",
    activation=_identity,
    conjugate=lambda t: jnp.exp(t - 1.0),
    f=lambda u: xlogy(u, u),
    conjugate_of_activation=lambda v: jnp.exp(v - 1.0),
)

REVERSE_KL = FDivergence(
    name="reverse_kl",
    activation=lambda v: -jnp.exp(-v),
    conjugate=lambda t: -1.0 - jnp.log(-t),  # on t < 0
    f=lambda u: -jnp.log(u),
    # -1 - log(exp(-v)) = v - 1: no exp, so finite even where exp(-v) overflows.
    conjugate_of_activation=lambda v: v - 1.0,
)

PEARSON = FDivergence(
    name="pearson",
    activation=_identity,
    conjugate=lambda t: 0.25 * jnp.square(t) + t,
    f=lambda u: jnp.square(u - 1.0),
    conjugate_of_activation=lambda v: 0.25 * jnp.square(v) + v,
)

SQUARED_HELLINGER = FDivergence(
    name="squared_hellinger",
    activation=lambda v: -jnp.expm1(-v),  # 1 - exp(-v), exact near v = 0
    conjugate=lambda t: t / (1.0 - t),  # on t < 1
    f=lambda u: jnp.square(jnp.sqrt(u) - 1.0),
    # t / (1 - t) at t = 1 - exp(-v) is (1 - exp(-v)) exp(v) = exp(v) - 1: avoids the cancellation in 1 - t.
    conjugate_of_activation=jnp.expm1,
)

JENSEN_SHANNON = FDivergence(
    name="jensen_shannon",
    # log 2 - log(1 + exp(-v)) = log(2 sigmoid(v)).
    activation=lambda v: _LOG2 + jax.nn.log_sigmoid(v),
    # -log(2 - exp(t)) = -log 2 - log(1 - exp(t - log 2)), on t < log 2.
    conjugate=lambda t: -_LOG2 - _log1mexp(t - _LOG2),
    f=lambda u: xlogy(u, u) - (u + 1.0) * (jnp.log1p(u) - _LOG2),
    # -log(2 - 2 sigmoid(v)) = -log 2 - log sigmoid(-v) = softplus(v) - log 2.
    conjugate_of_activation=lambda v: jax.nn.softplus(v) - _LOG2,
)

GAN = FDivergence(
    name="gan",
    # -log(1 + exp(-v)) = log sigmoid(v).
    activation=jax.nn.log_sigmoid,
    conjugate=lambda t: -_log1mexp(t),  # -log(1 - exp(t)), on t < 0
    # Note f(1) = -log 4, not 0: D_f(P||Q) = 2 JSD(P||Q) - log 4 (Nowozin et al., Table 1).
    f=lambda u: xlogy(u, u) - xlogy(u + 1.0, u + 1.0),
    # -log(1 - sigmoid(v)) = softplus(v).
    conjugate_of_activation=jax.nn.softplus,
)

F_DIVERGENCES: dict[str, FDivergence] = {
    d.name: d for d in (TOTAL_VARIATION, KL, REVERSE_KL, PEARSON, SQUARED_HELLINGER, JENSEN_SHANNON, GAN)
}


def f_gan_discriminator_loss(real_logits: ArrayLike, fake_logits: ArrayLike, divergence: FDivergence) -> Array:
    r"""f-GAN discriminator (variational function) loss: minus the variational lower bound on :math:`D_f`.

    With :math:`T = g_f(V)` the critic maximizes

    .. math::
      F(\theta, \omega) = \mathbb{E}_{x \sim P}[g_f(V_\omega(x))] - \mathbb{E}_{x \sim Q_\theta}[f^*(g_f(V_\omega(x)))]
        \le D_f(P \| Q_\theta),

    with equality at :math:`T^*(x) = f'(p(x)/q(x))`; this returns :math:`L_D = -F`. :math:`f^* \circ g_f` is
    evaluated through ``divergence.conjugate_of_activation``, which is finite for all finite logits.

    ``divergence`` holds Python callables, so it cannot be a traced argument of ``jax.jit``: bind it with
    ``functools.partial`` (as :data:`LOSSES` does) or mark it static.

    For 'kl', 'reverse_kl' and 'squared_hellinger' the loss itself grows like :math:`e^{|v|}`, so it exceeds
    the float32 range (and becomes inf, never nan) once a logit passes about :math:`\pm 88`; that is the true
    value, not a cancellation, and float64 keeps it finite.

    Args:
      real_logits: critic outputs :math:`V` on data samples (:math:`x \sim P`), any shape.
      fake_logits: critic outputs :math:`V` on generated samples (:math:`x \sim Q_\theta`), any shape.
      divergence: an :class:`FDivergence`, e.g. ``F_DIVERGENCES['kl']``.

    Returns:
      A scalar.

    References:
      Nowozin, Cseke, Tomioka, 2016, f-GAN: Training Generative Neural Samplers using Variational Divergence
      Minimization, Eq. (6) and Table 2, https://arxiv.org/abs/1606.00709
    """
    real_term = jnp.mean(divergence.activation(real_logits))
    fake_term = jnp.mean(divergence.conjugate_of_activation(fake_logits))
    return fake_term - real_term


def f_gan_generator_loss(fake_logits: ArrayLike, divergence: FDivergence) -> Array:
    r"""f-GAN generator loss of the saddle-point objective: :math:`L_G = -\mathbb{E}_{Q_\theta}[f^*(g_f(V))]`.

    The generator minimizes :math:`F` (see :func:`f_gan_discriminator_loss`), and this is its only term that
    depends on the generator's parameters.

    Note: Nowozin et al. (Section 3.2) also train G with the alternative :math:`-\mathbb{E}_{Q_\theta}[g_f(V)]`,
    i.e. ``-jnp.mean(divergence.activation(fake_logits))``, by analogy with the non-saturating GAN loss (for
    the GAN divergence it is exactly :func:`nonsaturating_generator_loss`, while this function reduces to
    :func:`minimax_generator_loss`). It has the same fixed points but stronger gradients early in training.

    References:
      Nowozin, Cseke, Tomioka, 2016, f-GAN, https://arxiv.org/abs/1606.00709
    """
    return -jnp.mean(divergence.conjugate_of_activation(fake_logits))


# ---------------------------------------------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------------------------------------------


def _f_gan_loss(divergence: FDivergence) -> GanLoss:
    return GanLoss(
        discriminator=functools.partial(f_gan_discriminator_loss, divergence=divergence),
        generator=functools.partial(f_gan_generator_loss, divergence=divergence),
    )


LOSSES: dict[str, GanLoss] = {
    "minimax": GanLoss(minimax_discriminator_loss, minimax_generator_loss),
    # Only the generator changes: D still minimizes the minimax (binary cross-entropy) loss.
    "nonsaturating": GanLoss(minimax_discriminator_loss, nonsaturating_generator_loss),
    "wasserstein": GanLoss(wasserstein_discriminator_loss, wasserstein_generator_loss),
    "hinge": GanLoss(hinge_discriminator_loss, hinge_generator_loss),
    "least_squares": GanLoss(least_squares_discriminator_loss, least_squares_generator_loss),
    **{f"f_{name}": _f_gan_loss(divergence) for name, divergence in F_DIVERGENCES.items()},
}


# Objectives of an energy (auto-encoder) discriminator, whose "logits" are its reconstruction errors (jaxgan.energy);
# each takes a hyperparameter, so they are built by `energy_loss` rather than listed in LOSSES.
ENERGY_LOSSES = ("began", "ebgan")


def ebgan_loss(margin: float | Array) -> GanLoss:
    """EBGAN (Zhao et al. 2017): D minimises E[D(x)] + E[max(0, m − D(G(z)))], G minimises E[D(G(z))]."""
    return GanLoss(lambda real, fake: energy.ebgan_discriminator_loss(real, fake, margin), energy.ebgan_generator_loss)


def began_loss(k: float | Array) -> GanLoss:
    """BEGAN (Berthelot et al. 2017) at a fixed k_t: D minimises E[L(x)] − k_t·E[L(G(z))], G minimises E[L(G(z))];
    `jaxgan.updates.with_began_equilibrium` moves k_t between steps."""
    return GanLoss(lambda real, fake: energy.began_discriminator_loss(real, fake, k), energy.began_generator_loss)


def get_loss(name: str) -> GanLoss:
    """Returns ``LOSSES[name]``.

    Raises:
      ValueError: if ``name`` is not a key of :data:`LOSSES`; the message lists the allowed names and, when
        there is one, the closest match.
    """
    if isinstance(name, str) and name in LOSSES:
        return LOSSES[name]
    if name in ENERGY_LOSSES:
        raise ValueError(f"loss {name!r} takes a hyperparameter: use ebgan_loss(margin) or began_loss(k)")
    raise ValueError(unknown_name("loss", name, sorted(LOSSES)))
