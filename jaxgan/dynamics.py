r"""Local analysis of the GAN game: the joint gradient vector field, its Jacobian and the Jacobian's spectrum.

Simultaneous gradient descent on the two losses is the Euler discretisation, with step size η, of the ODE
:math:`\dot\theta = v(\theta)` for the joint field

.. math::
  v(\theta_G, \theta_D) = \big(-\nabla_{\theta_G} L_G(\theta_G, \theta_D),\
                             -\nabla_{\theta_D} L_D(\theta_G, \theta_D)\big).

Near a stationary point :math:`\bar\theta` (:math:`v(\bar\theta) = 0`) the dynamics are governed by the Jacobian
:math:`J = \partial v / \partial \theta`: the ODE is locally stable when every eigenvalue has negative real part,
and the discrete update :math:`\theta + \eta v(\theta)` is locally convergent when every eigenvalue of
:math:`I + \eta J` lies inside the unit circle. Eigenvalues on (or close to) the imaginary axis produce the
oscillation of GAN training; the magnitude of the largest eigenvalue bounds the usable step size.

For the Dirac-GAN (data at 0, :math:`p_\theta = \delta_\theta`, :math:`D_\psi(x) = \psi x`) with
:math:`V(\theta, \psi) = f(\psi\theta) + f(0)`, the Jacobian at the equilibrium (0, 0) is
:math:`\begin{pmatrix} 0 & f'(0) \\ -f'(0) & 0 \end{pmatrix}`, with eigenvalues :math:`\pm f'(0) i`: a pure
rotation, which simultaneous gradient descent turns into an outward spiral. An R1 penalty
:math:`\tfrac\gamma2 \mathbb{E}_{p_{data}} \|\nabla_x D\|^2` adds :math:`-\gamma` to the (ψ, ψ) entry and moves
the eigenvalues to :math:`-\gamma/2 \pm \sqrt{\gamma^2/4 - f'(0)^2}`.

Public functions, all at a fixed real batch ``real`` and fixed noise ``z`` (so the game is deterministic):

* :func:`vector_field`: ``(v_G, v_D)`` as pytrees shaped like the parameters,
* :func:`flat_vector_field`: the same field as a function of one flat vector, for custom analyses,
* :func:`game_jacobian` / :func:`jacobian_eigenvalues`: the dense ``[n, n]`` Jacobian and its spectrum
  (small models only: n forward-mode passes and ``n^2`` memory),
* :func:`top_eigenvalues_arnoldi`: the eigenvalues of largest magnitude from Jacobian-vector products only, for
  real models.

References:
  Mescheder, Nowozin, Geiger, 2017, The Numerics of GANs, https://arxiv.org/abs/1705.10461;
  Mescheder, Geiger, Nowozin, 2018, Which Training Methods for GANs do actually Converge?,
  https://arxiv.org/abs/1801.04406;
  Saad, 2011, Numerical Methods for Large Eigenvalue Problems (2nd ed.), Chapters 5-6 (subspace iteration,
  Arnoldi).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxgan.game import Game, discriminator_loss, generate, generator_loss
from jaxgan.models import ModelState, Params
from jaxgan.registry import check_count

# d_penalty(d_params, real, fake) -> scalar, added to D's loss (e.g. R1: lambda p, r, f: gamma / 2 * r1(p, r)).
Penalty = Callable[[Params, jax.Array, jax.Array], jax.Array]
FlatField = Callable[[jax.Array], jax.Array]

_STATIC = ("game", "d_penalty")


def vector_field(
    game: Game,
    g_params: Params,
    d_params: Params,
    real: jax.Array,
    z: jax.Array,
    d_penalty: Penalty | None = None,
    *,
    g_model_state: ModelState | None = None,
    d_model_state: ModelState | None = None,
) -> tuple[Params, Params]:
    """The joint field (v_G, v_D) at a point: :func:`vector_field_and_losses` without the losses."""
    return vector_field_and_losses(
        game, g_params, d_params, real, z, d_penalty, g_model_state=g_model_state, d_model_state=d_model_state
    )[0]


def vector_field_and_losses(
    game: Game,
    g_params: Params,
    d_params: Params,
    real: jax.Array,
    z: jax.Array,
    d_penalty: Penalty | None = None,
    *,
    key: jax.Array | None = None,
    g_model_state: ModelState | None = None,
    d_model_state: ModelState | None = None,
    g_key: jax.Array | None = None,
) -> tuple[tuple[Params, Params], tuple[jax.Array, jax.Array]]:
    r"""The simultaneous-gradient field :math:`v = (-\nabla_{\theta_G} L_G, -\nabla_{\theta_D} L_D)` at a point.

    This is the one implementation of the joint field: the analyses here and the update rules built on it
    (`jaxgan.updates`: extragradient, consensus, SGA) all call it.

    .. math::
      L_G = \mathrm{loss.generator}(D(G(z))), \qquad
      L_D = \mathrm{loss.discriminator}(D(x_{real}), D(G(z))) + \mathrm{d\_penalty}(\theta_D, x_{real}, G(z)).

    v is the direction each player moves under plain gradient descent (:math:`\theta \leftarrow \theta + \eta v`).
    Model state (batch statistics, spectral-norm vectors) is held fixed at the given values and its updates are
    discarded, so v is a deterministic, differentiable function of the parameters.

    Args:
      game: the game; only its players and loss are used.
      g_params, d_params: the point (θ_G, θ_D).
      real: a batch of real data, ``[batch, ...]``.
      z: noise ``[batch, z_dim]`` (any leading axes, see :func:`jaxgan.game.generate`).
      d_penalty: optional ``(d_params, real, fake) -> scalar`` added to D's loss, e.g. R1 with weight γ as
        ``lambda p, r, f: gamma / 2 * r1(p, r)``. ``fake`` is differentiable with respect to θ_G, so a penalty
        on fake or interpolated samples contributes to :math:`\partial v_D / \partial \theta_G` as it should.
      key: PRNG key of the game's own D-side penalty (random interpolates of WGAN-GP, DRAGAN); ``None``: a fixed
        key, so that analyses at a fixed batch are deterministic.
      g_model_state, d_model_state: the players' model state; ``None`` means ``{}`` (stateless models).
      g_key: G's own randomness beyond z (`jaxgan.game.generate`'s `key`), the same in both players' losses.

    Returns:
      ``((v_g, v_d), (L_G, L_D))``: the field as pytrees shaped like ``g_params`` and ``d_params``, and the losses.
    """
    g_model_state = {} if g_model_state is None else g_model_state
    d_model_state = {} if d_model_state is None else d_model_state

    def g_loss(g: Params) -> jax.Array:
        fake, _ = generate(game, g, g_model_state, z, key=g_key)
        return generator_loss(game, d_params, d_model_state, fake, real)

    def d_loss(d: Params) -> jax.Array:
        # No stop_gradient on the fakes: v_D must stay a function of θ_G, or the off-diagonal block
        # ∂v_D/∂θ_G of the Jacobian (the coupling that makes the game rotate) would be lost.
        fake, _ = generate(game, g_params, g_model_state, z, key=g_key)
        loss, _ = discriminator_loss(game, d, d_model_state, real, fake, key)
        if d_penalty is not None:
            loss = loss + d_penalty(d, real, fake)
        return loss

    loss_g, grad_g = jax.value_and_grad(g_loss)(g_params)
    loss_d, grad_d = jax.value_and_grad(d_loss)(d_params)
    return optax.tree.scale(-1.0, (grad_g, grad_d)), (loss_g, loss_d)


def flat_vector_field(
    game: Game,
    g_params: Params,
    d_params: Params,
    real: jax.Array,
    z: jax.Array,
    d_penalty: Penalty | None = None,
    *,
    g_model_state: ModelState | None = None,
    d_model_state: ModelState | None = None,
) -> tuple[FlatField, jax.Array, Callable[[jax.Array], tuple[Params, Params]]]:
    """:func:`vector_field` as a map of flat vectors: ``ravel_pytree((θ_G, θ_D)) -> ravel_pytree((v_G, v_D))``.

    Returns:
      ``(field, x, unravel)``: the flat field, the flat point x = (θ_G, θ_D), and ``unravel(x) -> (g, d)``.
      The first ``ravel_pytree(g_params)[0].size`` coordinates are G's, the rest D's.
    """
    x, unravel = ravel_pytree((g_params, d_params))

    def field(flat: jax.Array) -> jax.Array:
        g, d = unravel(flat)
        v = vector_field(
            game, g, d, real, z, d_penalty, g_model_state=g_model_state, d_model_state=d_model_state
        )
        return ravel_pytree(v)[0]

    return field, x, unravel


@functools.partial(jax.jit, static_argnames=_STATIC)
def game_jacobian(
    game: Game,
    g_params: Params,
    d_params: Params,
    real: jax.Array,
    z: jax.Array,
    d_penalty: Penalty | None = None,
    *,
    g_model_state: ModelState | None = None,
    d_model_state: ModelState | None = None,
) -> jax.Array:
    r"""The Jacobian :math:`J = \partial v / \partial (\theta_G, \theta_D)` of the flat field, ``[n, n]``.

    .. math::
      J = \begin{pmatrix} -\nabla^2_{\theta_G\theta_G} L_G & -\nabla^2_{\theta_G\theta_D} L_G \\
                          -\nabla^2_{\theta_D\theta_G} L_D & -\nabla^2_{\theta_D\theta_D} L_D \end{pmatrix},

    rows and columns ordered as ``ravel_pytree((g_params, d_params))``. It is not symmetric: for a zero-sum game
    the off-diagonal blocks are minus each other's transpose. Built with ``jax.jacfwd`` (n JVPs) and held densely,
    so it is for small models; use :func:`top_eigenvalues_arnoldi` otherwise.
    ``game`` and ``d_penalty`` are static arguments of ``jax.jit`` (hashed by identity).
    """
    field, x, _ = flat_vector_field(
        game, g_params, d_params, real, z, d_penalty, g_model_state=g_model_state, d_model_state=d_model_state
    )
    return jax.jacfwd(field)(x)


def _sort_by_real_part(eigenvalues: np.ndarray) -> np.ndarray:
    # Real part descending, then imaginary part descending, so a conjugate pair comes out as (a + bi, a - bi).
    return eigenvalues[np.lexsort((-eigenvalues.imag, -eigenvalues.real))]


def _sort_by_magnitude(eigenvalues: np.ndarray) -> np.ndarray:
    return eigenvalues[np.lexsort((-eigenvalues.imag, -eigenvalues.real, -np.abs(eigenvalues)))]


def jacobian_eigenvalues(
    game: Game,
    g_params: Params,
    d_params: Params,
    real: jax.Array,
    z: jax.Array,
    d_penalty: Penalty | None = None,
    *,
    g_model_state: ModelState | None = None,
    d_model_state: ModelState | None = None,
) -> np.ndarray:
    """All eigenvalues of :func:`game_jacobian`, complex, sorted by real part descending (most unstable first).

    Computed on the host with ``np.linalg.eigvals`` (general, non-symmetric eigensolver).
    """
    jac = game_jacobian(
        game, g_params, d_params, real, z, d_penalty, g_model_state=g_model_state, d_model_state=d_model_state
    )
    return _sort_by_real_part(np.linalg.eigvals(np.asarray(jac)).astype(np.complex128))


def _num_params(*trees: Params) -> int:
    # From the shapes: ravel_pytree would concatenate (copy) every parameter on the device just to count them.
    return sum(int(np.size(leaf)) for leaf in jax.tree.leaves(trees))


def _linearized_field(game, g_params, d_params, real, z, d_penalty, g_model_state, d_model_state):
    """(x, jvp) with jvp(t) = J t; ``jax.linearize`` evaluates the field once and reuses its residuals per JVP."""
    field, x, _ = flat_vector_field(
        game, g_params, d_params, real, z, d_penalty, g_model_state=g_model_state, d_model_state=d_model_state
    )
    _, jvp = jax.linearize(field, x)
    return x, jvp


@functools.partial(jax.jit, static_argnames=(*_STATIC, "krylov_dim"))
def _arnoldi(game, g_params, d_params, real, z, key, d_penalty, g_model_state, d_model_state, krylov_dim):
    x, jvp = _linearized_field(game, g_params, d_params, real, z, d_penalty, g_model_state, d_model_state)
    m = krylov_dim
    v0 = jax.random.normal(key, x.shape, x.dtype)
    basis = jnp.zeros((m + 1, x.size), x.dtype).at[0].set(v0 / jnp.linalg.norm(v0))
    hessenberg = jnp.zeros((m + 1, m), x.dtype)
    eps = jnp.finfo(x.dtype).eps

    def body(j, carry):
        basis, hessenberg = carry
        w = jvp(basis[j])
        scale = jnp.linalg.norm(w)
        # Classical Gram-Schmidt applied twice ("CGS2"): as stable as modified Gram-Schmidt, but two
        # matrix-vector products instead of a loop. Rows > j of the basis are still zero, so projecting on
        # the whole basis is the same as projecting on the first j + 1 vectors.
        h = basis @ w
        w = w - basis.T @ h
        h2 = basis @ w
        w = w - basis.T @ h2
        beta = jnp.linalg.norm(w)
        # Breakdown (the Krylov space is invariant, its Ritz values are exact): record 0 and continue with a
        # zero vector, which keeps every later column zero. The host truncates at the first zero.
        broke = beta <= 100 * eps * scale
        beta = jnp.where(broke, 0.0, beta)
        basis = basis.at[j + 1].set(jnp.where(broke, 0.0, w / jnp.where(broke, 1.0, beta)))
        hessenberg = hessenberg.at[:, j].set((h + h2).at[j + 1].set(beta))
        return basis, hessenberg

    _, hessenberg = jax.lax.fori_loop(0, m, body, (basis, hessenberg))
    return hessenberg


def top_eigenvalues_arnoldi(
    game: Game,
    g_params: Params,
    d_params: Params,
    real: jax.Array,
    z: jax.Array,
    *,
    k: int,
    num_iters: int,
    key: jax.Array,
    d_penalty: Penalty | None = None,
    g_model_state: ModelState | None = None,
    d_model_state: ModelState | None = None,
) -> np.ndarray:
    r"""The k eigenvalues of J of largest magnitude by an Arnoldi (Krylov) iteration with Jacobian-vector products.

    Builds an orthonormal basis :math:`V_m` of the Krylov space :math:`\mathrm{span}(v_0, J v_0, \dots,
    J^{m-1} v_0)` and the upper Hessenberg matrix :math:`H_m = V_m^\top J V_m` (one JVP per step, m =
    ``num_iters``); the eigenvalues of :math:`H_m` (Ritz values) converge first to the extremal eigenvalues of J,
    those of largest magnitude among them. No restarts: m JVPs and an ``[m + 1, n]`` basis in memory.

    Arnoldi, not Lanczos: Lanczos is Arnoldi specialised to symmetric matrices, where H is tridiagonal and a
    three-term recurrence suffices. The game Jacobian is not symmetric (its off-diagonal blocks are
    :math:`-\nabla^2_{GD} L_G` and :math:`-\nabla^2_{DG} L_D`, of opposite sign in a zero-sum game) and its
    eigenvalues are complex, so Lanczos would silently return wrong values; Arnoldi orthogonalises against the
    full basis and needs no symmetry.

    The Krylov iteration runs under ``jax.jit`` (``game``, ``d_penalty`` and m static); the small
    ``m x m`` eigenproblem is solved on the host. If the Krylov space becomes invariant before m steps, the
    Ritz values are exact and only those are used. With ``num_iters >= n`` the result is exact up to rounding.

    Args:
      game, g_params, d_params, real, z, d_penalty, g_model_state, d_model_state: as in :func:`vector_field`.
      k: the number of eigenvalues returned (a conjugate pair may be split at position k).
      num_iters: the Krylov dimension m (>= k; clipped to n).
      key: PRNG key for the random start vector.

    Returns:
      ``min(k, m')`` complex Ritz values sorted by magnitude, descending (m' = the Krylov dimension reached).
    """
    n = _num_params(g_params, d_params)
    check_count("k", k, 1)
    check_count("num_iters", num_iters, 1)
    if num_iters < k:
        raise ValueError(f"need 1 <= k <= num_iters, got k={k}, num_iters={num_iters}")
    m = min(num_iters, n)
    hessenberg = np.asarray(
        _arnoldi(game, g_params, d_params, real, z, key, d_penalty, g_model_state, d_model_state, m)
    )
    subdiagonal = np.diagonal(hessenberg, offset=-1)  # H[j + 1, j], j = 0..m-1
    zeros = np.flatnonzero(subdiagonal == 0.0)
    m_reached = int(zeros[0]) + 1 if zeros.size else m
    ritz = np.linalg.eigvals(hessenberg[:m_reached, :m_reached]).astype(np.complex128)
    return _sort_by_magnitude(ritz)[:k]
