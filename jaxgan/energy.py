r"""Losses of the energy-based GANs as pure functions of the discriminator's energies.

In EBGAN (Zhao, Mathieu & LeCun 2017) and BEGAN (Berthelot, Schumm & Metz 2017) the discriminator is an
auto-encoder and its output is an ENERGY, the reconstruction error of the input (see
`jaxgan.models.autoencoder.AutoencoderDiscriminator`, whose "logits" output is the energy [batch]):

.. math::
  D(x) = \mathcal{L}(x) = \mathrm{mean}_{pixels}\, |x - \mathrm{Dec}(\mathrm{Enc}(x))|^\eta,
  \qquad \eta = 2 \text{ (EBGAN, mean squared error)}, \ \eta = 1 \text{ (BEGAN)}.

Low energy means "looks like data". Every loss here takes energies of any shape (real and fake batches may differ
in size), reduces each expectation with a mean, and returns a scalar that its player MINIMIZES, as in
`jaxgan.losses`. All functions are jit-able and differentiable in their array arguments, except where a paper
holds a quantity constant (BEGAN's :math:`k_t`), which is then wrapped in ``stop_gradient``.

BEGAN's :math:`k_t` is a state of the training loop, not a parameter: :func:`began_controller` gives an
optax-style ``(init, update)`` pair that carries it.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

ArrayLike = jax.typing.ArrayLike
Array = jax.Array


# ---------------------------------------------------------------------------------------------------------------
# EBGAN.
# ---------------------------------------------------------------------------------------------------------------


def ebgan_discriminator_loss(real_energy: ArrayLike, fake_energy: ArrayLike, margin: ArrayLike) -> Array:
    r"""EBGAN's discriminator loss: pull the energy of data down, push that of samples up to the margin.

    .. math::
      L_D = \mathbb{E}_x[D(x)] + \mathbb{E}_z\big[\max(0,\ m - D(G(z)))\big].

    Generated samples whose energy already reaches the margin :math:`m` contribute neither loss nor gradient, so
    D cannot win by driving fake energies to infinity; with :math:`m` the loss is bounded below by 0. The paper
    tunes :math:`m` per data set (it depends on the scale of the energy: here a per-pixel mean, see the module
    docstring).

    Args:
      real_energy: :math:`D(x)` on data samples, any shape.
      fake_energy: :math:`D(G(z))` on generated samples, any shape.
      margin: :math:`m > 0`.

    Returns:
      A scalar.

    References:
      Zhao, Mathieu & LeCun, 2017, Energy-based Generative Adversarial Network, Eq. (1),
      https://arxiv.org/abs/1609.03126
    """
    return jnp.mean(real_energy) + jnp.mean(jax.nn.relu(margin - fake_energy))


def ebgan_generator_loss(fake_energy: ArrayLike) -> Array:
    r"""EBGAN's generator loss, the mean energy of its samples: :math:`L_G = \mathbb{E}_z[D(G(z))]`.

    The pulling-away term (:func:`pull_away_term` of D's embeddings of the same samples, weighted) is added to it
    by the caller in EBGAN-PT.

    References:
      Zhao, Mathieu & LeCun, 2017, Energy-based Generative Adversarial Network, Eq. (2),
      https://arxiv.org/abs/1609.03126
    """
    return jnp.mean(fake_energy)


def pull_away_term(embeddings: ArrayLike) -> Array:
    r"""EBGAN's pulling-away term: the mean squared cosine similarity between distinct embeddings of a batch.

    .. math::
      f_{PT}(S) = \frac{1}{N(N-1)} \sum_{i} \sum_{j \ne i}
      \left(\frac{S_i^\top S_j}{\|S_i\|\,\|S_j\|}\right)^2,

    with :math:`S_i` the encoder's embedding of the i-th generated sample (all non-batch axes flattened). It lies
    in [0, 1]: 0 when the embeddings are pairwise orthogonal, 1 when they are all parallel (of either sign),
    and it is invariant to the scale of each :math:`S_i`. Added to G's loss, it pushes a batch of samples apart
    in D's representation, against mode collapse; the paper weights it by 0.1.

    A zero embedding has no direction: it is counted as orthogonal to every other one (cosine 0), and its
    gradient is 0. The norm is never divided by where it is 0 (no epsilon either, so the value is exact for all
    non-zero rows), which keeps value and gradient free of NaN.

    Args:
      embeddings: ``[N, ...]`` with :math:`N \ge 2`.

    Returns:
      A scalar.

    References:
      Zhao, Mathieu & LeCun, 2017, Energy-based Generative Adversarial Network, Section 2.4 ("repelling
      regularizer"), https://arxiv.org/abs/1609.03126
    """
    s = jnp.asarray(embeddings)
    n = s.shape[0]
    if n < 2:
        raise ValueError(f"pull_away_term needs at least 2 embeddings, got a batch of {n}")
    s = s.reshape(n, -1)
    squared = jnp.sum(jnp.square(s), axis=-1)
    positive = squared > 0
    # 1/||S_i||, evaluated on a dummy 1 where the norm is 0: jnp.where differentiates both branches, and a nan
    # (from rsqrt at 0) times a zero cotangent is still nan.
    inverse_norm = jnp.where(positive, jax.lax.rsqrt(jnp.where(positive, squared, 1.0)), 0.0)
    unit = s * inverse_norm[:, None]
    cosines = unit @ unit.T  # [N, N]
    off_diagonal = 1.0 - jnp.eye(n, dtype=cosines.dtype)
    return jnp.sum(jnp.square(cosines) * off_diagonal) / (n * (n - 1))


# ---------------------------------------------------------------------------------------------------------------
# BEGAN.
# ---------------------------------------------------------------------------------------------------------------


def began_discriminator_loss(real_energy: ArrayLike, fake_energy: ArrayLike, k: ArrayLike) -> Array:
    r"""BEGAN's discriminator loss, with the proportional control variable :math:`k_t` held constant.

    .. math::
      L_D = \mathbb{E}[\mathcal{L}(x)] - k_t\, \mathbb{E}[\mathcal{L}(G(z_D))],
      \qquad k_t \in [0, 1].

    :math:`k_t` is updated by :func:`began_update_k`, not by gradient descent: it is wrapped in
    ``stop_gradient`` here, so :math:`\partial L_D / \partial k_t = 0` (this matters when the caller
    differentiates with respect to a pytree that contains it). At :math:`k_0 = 0`, D first learns to
    auto-encode real data only.

    Args:
      real_energy: :math:`\mathcal{L}(x)` on data samples, any shape.
      fake_energy: :math:`\mathcal{L}(G(z_D))` on generated samples, any shape.
      k: :math:`k_t`, a scalar.

    Returns:
      A scalar.

    References:
      Berthelot, Schumm & Metz, 2017, BEGAN: Boundary Equilibrium Generative Adversarial Networks, Section 3.4,
      https://arxiv.org/abs/1703.10717
    """
    return jnp.mean(real_energy) - jax.lax.stop_gradient(k) * jnp.mean(fake_energy)


def began_generator_loss(fake_energy: ArrayLike) -> Array:
    r"""BEGAN's generator loss, :math:`L_G = \mathbb{E}[\mathcal{L}(G(z_G))]`.

    References:
      Berthelot, Schumm & Metz, 2017, BEGAN: Boundary Equilibrium Generative Adversarial Networks, Section 3.4,
      https://arxiv.org/abs/1703.10717
    """
    return jnp.mean(fake_energy)


def began_update_k(
    k: ArrayLike, real_energy: ArrayLike, fake_energy: ArrayLike, gamma: ArrayLike, lambda_k: ArrayLike
) -> Array:
    r"""One step of BEGAN's proportional control of :math:`k_t`, which keeps the losses in equilibrium.

    .. math::
      k_{t+1} = \mathrm{clip}\Big(k_t + \lambda_k \big(\gamma\, \mathbb{E}[\mathcal{L}(x)]
      - \mathbb{E}[\mathcal{L}(G(z_G))]\big),\ 0,\ 1\Big).

    The target is the equilibrium :math:`\mathbb{E}[\mathcal{L}(G(z))] = \gamma\, \mathbb{E}[\mathcal{L}(x)]`,
    :math:`\gamma \in [0, 1]` the "diversity ratio" (lower: sharper, less diverse samples). When the samples'
    energy is too low relative to the data's, :math:`k` grows and D weights pushing them up more. The paper
    clips :math:`k` to [0, 1], uses :math:`\lambda_k = 0.001` and :math:`k_0 = 0`. A state update, not a loss:
    the result carries no gradient.

    Args:
      k: :math:`k_t`, a scalar.
      real_energy: :math:`\mathcal{L}(x)`, any shape.
      fake_energy: :math:`\mathcal{L}(G(z_G))`, any shape.
      gamma: :math:`\gamma`.
      lambda_k: the gain :math:`\lambda_k`.

    Returns:
      :math:`k_{t+1}`, a scalar in [0, 1].

    References:
      Berthelot, Schumm & Metz, 2017, BEGAN: Boundary Equilibrium Generative Adversarial Networks, Sections 3.3
      and 3.4, https://arxiv.org/abs/1703.10717
    """
    balance = gamma * jnp.mean(real_energy) - jnp.mean(fake_energy)
    return jax.lax.stop_gradient(jnp.clip(k + lambda_k * balance, 0.0, 1.0))


def began_convergence(real_energy: ArrayLike, fake_energy: ArrayLike, gamma: ArrayLike) -> Array:
    r"""BEGAN's global measure of convergence.

    .. math::
      \mathcal{M}_{global} = \mathbb{E}[\mathcal{L}(x)]
      + \big|\gamma\, \mathbb{E}[\mathcal{L}(x)] - \mathbb{E}[\mathcal{L}(G(z_G))]\big|,

    the reconstruction error of real data plus the distance of the process from its equilibrium; the paper
    reports that it falls as sample quality improves, which makes it usable to detect convergence or collapse.

    Returns:
      A scalar (no gradient is blocked; it is a metric).

    References:
      Berthelot, Schumm & Metz, 2017, BEGAN: Boundary Equilibrium Generative Adversarial Networks, Section 3.4.1,
      https://arxiv.org/abs/1703.10717
    """
    real = jnp.mean(real_energy)
    return real + jnp.abs(gamma * real - jnp.mean(fake_energy))


class BeganController(NamedTuple):
    r"""BEGAN's control of :math:`k_t` as an optax-style pair of pure functions.

    Attributes:
      init: ``() -> k_0``, a float32 scalar: the state the training loop carries.
      update: ``(k_t, real_energy, fake_energy) -> (k_{t+1}, metrics)``, with metrics
        ``{"k": k_{t+1}, "convergence": M_global}``, both scalars, computed from the same energies (those of the
        step that used :math:`k_t`).
    """

    init: Callable[[], Array]
    update: Callable[[ArrayLike, ArrayLike, ArrayLike], tuple[Array, dict[str, Array]]]


def began_controller(gamma: float = 0.5, lambda_k: float = 0.001, k0: float = 0.0) -> BeganController:
    r"""The :class:`BeganController` with the paper's settings as defaults.

    ``update`` is :func:`began_update_k` and :func:`began_convergence` with these hyperparameters closed over.
    The paper shows :math:`\gamma \in \{0.3, 0.5, 0.7\}`; 0.5 is the middle of that range. :math:`\lambda_k =
    0.001` and :math:`k_0 = 0` are the paper's.

    Args:
      gamma: the diversity ratio :math:`\gamma \in [0, 1]`.
      lambda_k: the gain :math:`\lambda_k \ge 0`.
      k0: the initial :math:`k_0 \in [0, 1]`.

    Returns:
      A :class:`BeganController`.

    References:
      Berthelot, Schumm & Metz, 2017, BEGAN: Boundary Equilibrium Generative Adversarial Networks, Sections 3.4
      and 4, https://arxiv.org/abs/1703.10717
    """
    # written so that NaN fails each check (every comparison with NaN is False)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"began_controller: gamma must be in [0, 1], got {gamma}")
    if not 0.0 <= lambda_k < float("inf"):
        raise ValueError(f"began_controller: lambda_k must be finite and >= 0, got {lambda_k}")
    if not 0.0 <= k0 <= 1.0:
        raise ValueError(f"began_controller: k0 must be in [0, 1], got {k0}")

    def init() -> Array:
        return jnp.asarray(k0, jnp.float32)

    def update(k: ArrayLike, real_energy: ArrayLike, fake_energy: ArrayLike) -> tuple[Array, dict[str, Array]]:
        new_k = began_update_k(k, real_energy, fake_energy, gamma, lambda_k).astype(jnp.float32)
        convergence = began_convergence(jax.lax.stop_gradient(real_energy), jax.lax.stop_gradient(fake_energy), gamma)
        return new_k, {"k": new_k, "convergence": convergence}

    return BeganController(init, update)
