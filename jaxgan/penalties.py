r"""Regularizers of the GAN game as pure functions: Lipschitz constraints and gradient penalties.

Discriminator-side penalties take ``d_fn: x[batch, ...] -> logits[batch]``, a closure over D's parameters (and
model state), e.g. ``lambda x: game.discriminator.apply(d_params, d_model_state, x)[0]``, and return a scalar
that is ADDED, with a weight, to D's loss. They differentiate ``d_fn`` with respect to its input, so the caller
takes second derivatives when it differentiates the penalty with respect to D's parameters; every function here
is differentiable in all of its array arguments (nothing is hidden behind ``stop_gradient``).

Per-sample input gradients :math:`\nabla_x D(x_i)` are computed with ONE ``jax.grad`` of
:math:`\sum_i D(x_i)`: since :math:`D(x_i)` depends on :math:`x_i` only, the i-th row of that gradient is
:math:`\nabla_x D(x_i)`. This requires that D treats samples independently (no batch normalisation in training
mode, no minibatch discrimination); otherwise the rows mix cross-sample terms. All non-batch axes are flattened,
so for images the norm is the Frobenius norm over (height, width, channels).

:data:`PENALTIES` names the penalties a config can choose; :func:`discriminator_penalty` evaluates the D-side
ones by name. The generator-side :func:`nagarajan_kolter_penalty` needs D's loss as a function of D's parameters
and is added to G's loss by `jaxgan.game.generator_loss`; consensus optimization, which regularises the joint
gradient field, is an update rule (`jaxgan.updates.consensus_step`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from jaxgan.registry import unknown_name

Array = jax.Array
Params = Any
DiscriminatorFn = Callable[[Array], Array]

PENALTIES: tuple[str, ...] = ("none", "wgan_gp", "dragan", "r1", "r2", "nagarajan_kolter")
# The D-side penalties on the gradient of D with respect to its input, taken per sample.
INPUT_GRADIENT_PENALTIES: tuple[str, ...] = ("wgan_gp", "dragan", "r1", "r2")


# ---------------------------------------------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------------------------------------------


def _input_gradients(d_fn: DiscriminatorFn, x: Array) -> Array:
    r"""Per-sample gradients :math:`\nabla_x D(x_i)`, flattened to shape ``[batch, features]``."""
    # Valid because D(x_i) depends on x_i only: d/dx_i sum_j D(x_j) = grad D(x_i).
    grads = jax.grad(lambda inputs: jnp.sum(d_fn(inputs)))(x)
    return grads.reshape(x.shape[0], -1)


def _safe_norm(g: Array) -> Array:
    r"""Row-wise Euclidean norm of ``g[batch, features]`` whose gradient is finite (zero) at ``g = 0``.

    :math:`d\|g\|/dg = g / \|g\|` is 0/0 at the origin, and jax evaluates it to nan there (e.g. a critic that
    is locally constant, or zero-initialised weights). Instead of biasing every norm with an epsilon inside the
    sqrt, the sqrt is only evaluated where the squared norm is positive; at 0 the norm is the constant 0, so its
    gradient there is 0 (a valid subgradient) and the value is exact everywhere.
    """
    return safe_sqrt(jnp.sum(jnp.square(g), axis=-1))


def safe_sqrt(x: Array) -> Array:
    """√x with a zero (not nan) gradient at x = 0 (and exact values everywhere)."""
    positive = x > 0
    # jnp.where evaluates both branches: feed the sqrt a dummy 1 where it is not selected, so that its nan
    # gradient at 0 is never formed (a nan times the zero cotangent of the unselected branch is still nan).
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _check_same_shape(real: Array, fake: Array) -> None:
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {real.shape} and {fake.shape}")


# ---------------------------------------------------------------------------------------------------------------
# Weight clipping.
# ---------------------------------------------------------------------------------------------------------------


def weight_clip(params: Params, clip: float) -> Params:
    r"""Clamps every leaf of ``params`` to :math:`[-c, c]`, the original WGAN's crude Lipschitz constraint.

    .. math::
      w \leftarrow \mathrm{clip}(w, -c, c)

    applied to the critic's parameters after each of its optimizer steps. It bounds the Lipschitz constant of the
    critic (for a given architecture) but biases it towards very simple functions; the gradient penalty
    (:func:`gradient_penalty`) was introduced to replace it. The paper uses :math:`c = 0.01`.

    Args:
      params: a pytree of arrays (D's parameters).
      clip: the bound :math:`c \ge 0`.

    Returns:
      A pytree of the same structure and dtypes.

    References:
      Arjovsky, Chintala, Bottou, 2017, Wasserstein GAN, Algorithm 1, https://arxiv.org/abs/1701.07875
    """
    if isinstance(clip, (int, float)) and clip < 0:
        raise ValueError(f"clip must be >= 0, got {clip}")
    return jax.tree.map(lambda p: jnp.clip(p, -clip, clip).astype(p.dtype), params)


# ---------------------------------------------------------------------------------------------------------------
# Gradient-norm penalties (Lipschitz).
# ---------------------------------------------------------------------------------------------------------------


def gradient_penalty(
    d_fn: DiscriminatorFn, real: Array, fake: Array, key: jax.Array, target: float = 1.0
) -> Array:
    r"""WGAN-GP gradient penalty on random interpolates between real and fake samples.

    .. math::
      \hat x_i = \epsilon_i x_i^{real} + (1 - \epsilon_i) x_i^{fake}, \quad \epsilon_i \sim U[0, 1], \qquad
      P = \frac1n \sum_i \big(\|\nabla_x D(\hat x_i)\|_2 - t\big)^2,

    with one :math:`\epsilon_i` per sample, drawn as
    ``jax.random.uniform(key, (batch, 1, ..., 1), real.dtype)`` (broadcast over the non-batch axes). The optimal
    1-Lipschitz critic has gradient norm 1 on the lines between coupled points, hence the two-sided target
    :math:`t = 1`; the paper adds :math:`\lambda P` with :math:`\lambda = 10` to the critic's loss.

    The norm has no epsilon: see :func:`_safe_norm` for how a zero gradient is kept nan-free.

    Args:
      d_fn: ``x[batch, ...] -> logits[batch]``, samples must be processed independently (see module docstring).
      real: data samples, ``[batch, ...]``.
      fake: generated samples, same shape as ``real``.
      key: PRNG key for the :math:`\epsilon_i`.
      target: the target norm :math:`t`.

    Returns:
      A scalar.

    References:
      Gulrajani et al., 2017, Improved Training of Wasserstein GANs, Algorithm 1, https://arxiv.org/abs/1704.00028
    """
    _check_same_shape(real, fake)
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    interpolates = eps * real + (1.0 - eps) * fake
    norms = _safe_norm(_input_gradients(d_fn, interpolates))
    return jnp.mean(jnp.square(norms - target))


def dragan_penalty(
    d_fn: DiscriminatorFn, real: Array, key: jax.Array, noise_scale: float = 0.5, target: float = 1.0
) -> Array:
    r"""DRAGAN gradient penalty on perturbed real samples.

    .. math::
      \hat x = x^{real} + \delta, \quad \delta = s \cdot \mathrm{std}(x^{real}) \cdot u, \quad
      u \sim U[0, 1]^{\text{shape of } x^{real}}, \qquad
      P = \frac1n \sum_i \big(\|\nabla_x D(\hat x_i)\|_2 - t\big)^2.

    Exact perturbation used here (implementations differ): :math:`\mathrm{std}` is ONE scalar, the population
    standard deviation (``ddof=0``) over all entries of the real batch, :math:`u` is drawn elementwise as
    ``jax.random.uniform(key, real.shape, real.dtype)`` and :math:`s` is ``noise_scale``, so the noise is
    one-sided (:math:`u \ge 0`). This is the widely used ``X + 0.5 * X.std() * np.random.random(X.shape)`` of
    DRAGAN implementations; the paper itself writes a Gaussian :math:`\delta \sim N(0, cI)`, and some codes also
    take a random point between :math:`x` and :math:`\hat x` (not done here) or use a per-feature std. The paper
    adds :math:`\lambda P`, :math:`\lambda = 10`, to D's loss: it penalises sharp gradients of D in a
    neighbourhood of the data, which the authors link to mode collapse.

    Args:
      d_fn: ``x[batch, ...] -> logits[batch]``.
      real: data samples, ``[batch, ...]``.
      key: PRNG key for :math:`u`.
      noise_scale: :math:`s`.
      target: the target norm :math:`t`.

    Returns:
      A scalar.

    References:
      Kodali, Abernethy, Hays, Kira, 2017, On Convergence and Stability of GANs, https://arxiv.org/abs/1705.07215
    """
    u = jax.random.uniform(key, real.shape, real.dtype)
    perturbed = real + noise_scale * jnp.std(real) * u
    norms = _safe_norm(_input_gradients(d_fn, perturbed))
    return jnp.mean(jnp.square(norms - target))


def r1_penalty(d_fn: DiscriminatorFn, real: Array) -> Array:
    r"""R1 penalty: the squared input-gradient norm of D on real data.

    .. math::
      R_1 = \frac1n \sum_i \|\nabla_x D(x_i^{real})\|_2^2.

    The regularizer added to D's loss is :math:`\frac{\gamma}{2} R_1`. At an equilibrium where
    :math:`p_g = p_{data}` and D is constant on the data, it vanishes with its gradient, and Mescheder et al.
    show that it makes gradient descent locally convergent (the unregularised Dirac-GAN oscillates). No norm
    (sqrt) is taken, so it is smooth everywhere.

    Args:
      d_fn: ``x[batch, ...] -> logits[batch]``.
      real: data samples, ``[batch, ...]``.

    Returns:
      A scalar.

    References:
      Mescheder, Geiger, Nowozin, 2018, Which Training Methods for GANs do actually Converge?, Eq. (9),
      https://arxiv.org/abs/1801.04406
    """
    return jnp.mean(jnp.sum(jnp.square(_input_gradients(d_fn, real)), axis=-1))


def r2_penalty(d_fn: DiscriminatorFn, fake: Array) -> Array:
    r"""R2 penalty: the squared input-gradient norm of D on generated data.

    .. math::
      R_2 = \frac1n \sum_i \|\nabla_x D(x_i^{fake})\|_2^2,

    added to D's loss as :math:`\frac{\gamma}{2} R_2`; the same as :func:`r1_penalty` on samples of
    :math:`p_g`, with the same local-convergence guarantee.

    Args:
      d_fn: ``x[batch, ...] -> logits[batch]``.
      fake: generated samples, ``[batch, ...]``.

    Returns:
      A scalar.

    References:
      Mescheder, Geiger, Nowozin, 2018, Which Training Methods for GANs do actually Converge?, Eq. (10),
      https://arxiv.org/abs/1801.04406
    """
    return jnp.mean(jnp.sum(jnp.square(_input_gradients(d_fn, fake)), axis=-1))


# ---------------------------------------------------------------------------------------------------------------
# Penalties on the game's gradient field.
# ---------------------------------------------------------------------------------------------------------------


def nagarajan_kolter_penalty(value_fn: Callable[[Params], Array], d_params: Params) -> Array:
    r"""The squared norm of the discriminator's gradient of the value function, a generator-side penalty.

    .. math::
      P(\theta_G) = \|\nabla_{\theta_D} V(\theta_G, \theta_D)\|^2,

    where the generator minimizes :math:`V + \frac{\eta}{2} P` (D's update is unchanged; the authors' Gaussian-mixture
    code, `gaussian-toy.py` of locuslab/gradient_regularized_gan, adds 0.5·P, which is η = 1 here). Near an equilibrium
    G thus also moves to where D's gradient is small, which damps the rotation of simultaneous gradient descent
    and makes it locally asymptotically stable.

    ``value_fn(d_params) -> scalar V`` is a closure over G's parameters; the caller differentiates this penalty
    with respect to those through the closure (a second derivative, mixed in :math:`\theta_G, \theta_D`).

    Args:
      value_fn: ``d_params -> V``, a scalar.
      d_params: D's parameters, any pytree.

    Returns:
      A scalar, the sum of squares over all leaves of :math:`\nabla_{\theta_D} V`.

    References:
      Nagarajan & Kolter, 2017, Gradient descent GAN optimization is locally stable, Eq. (7),
      https://arxiv.org/abs/1706.04156
    """
    return optax.tree.norm(jax.grad(value_fn)(d_params), squared=True)


# ---------------------------------------------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------------------------------------------


def discriminator_penalty(
    name: str, d_fn: DiscriminatorFn, real: Array, fake: Array, key: jax.Array
) -> Array:
    r"""The D-side penalty called ``name``, with the default settings of each paper, as a scalar.

    * ``'none'``: 0.
    * ``'wgan_gp'``: :func:`gradient_penalty` on (real, fake) with ``key``, target 1.
    * ``'dragan'``: :func:`dragan_penalty` on real with ``key``, noise scale 0.5, target 1.
    * ``'r1'``: :func:`r1_penalty` on real.
    * ``'r2'``: :func:`r2_penalty` on fake.
    * ``'nagarajan_kolter'``: 0, because it is a GENERATOR-side penalty.

    'nagarajan_kolter' regularizes G's loss (:func:`nagarajan_kolter_penalty`), so D's loss gets nothing from
    it and this returns 0. The weight (:math:`\lambda`, or :math:`\gamma/2` for R1/R2) is the caller's.
    ``name`` is a Python string, static under ``jax.jit``.

    Raises:
      ValueError: if ``name`` is not in :data:`PENALTIES`; the message lists the allowed names and, when there
        is one, the closest match.
    """
    if not isinstance(name, str) or name not in PENALTIES:
        raise ValueError(unknown_name("penalty", name, PENALTIES))
    if name == "wgan_gp":
        return gradient_penalty(d_fn, real, fake, key)
    if name == "dragan":
        return dragan_penalty(d_fn, real, key)
    if name == "r1":
        return r1_penalty(d_fn, real)
    if name == "r2":
        return r2_penalty(d_fn, fake)
    return jnp.zeros((), jnp.result_type(real))  # 'none', 'nagarajan_kolter'


# ---------------------------------------------------------------------------------------------------------------
# Weight regularizers.
# ---------------------------------------------------------------------------------------------------------------


def orthogonal_regularization(
    params: Params, beta: float = 1e-4, *, include: Callable[[str, Array], bool] | None = None
) -> Array:
    r"""BigGAN's off-diagonal orthogonal regularization, summed over the weight matrices in ``params``.

    .. math::
      R_\beta = \beta \sum_W \big\|W^\top W \odot (\mathbf{1} - I)\big\|_F^2
              = \beta \sum_W \sum_{i \ne j} (w_i^\top w_j)^2,

    where each kernel of two or more axes is reshaped to :math:`W` of shape ``[fan_in, out]`` (Linen's layouts:
    Dense ``[in, out]``, Conv ``[kh, kw, in, out]``) and :math:`w_i` is the column of output unit i. The Gram
    matrix is over OUTPUT units, as in BigGAN's official code (``w = param.view(out, -1)``, Gram ``w wᵀ``).
    Unlike full orthogonal regularization :math:`\|W^\top W - I\|_F^2`, the norms of the filters are left free:
    only the cosine-like overlaps between filters are penalised, which BigGAN found makes G amenable to the
    truncation trick. The paper uses :math:`\beta = 10^{-4}` on G.

    Scale convention: this is the paper's Eq. (3), whose gradient is :math:`4\beta\, W (W^\top W \odot
    (\mathbf{1} - I))`. BigGAN's official code adds the gradient :math:`2\beta\,(\ldots)` directly to the
    parameters' gradients, i.e. it applies HALF of Eq. (3): its ``strength=1e-4`` equals ``beta=5e-5`` here.

    Leaves with fewer than two axes (biases, batch-norm scales and statistics, scalars) are always skipped.
    ``include(path, leaf) -> bool``, given the '/'-joined key path (e.g. ``"Conv_0/kernel"``) and the leaf, can
    skip more, e.g. class embeddings as BigGAN skips G's shared embedding:
    ``include=lambda path, w: not path.endswith("embedding")``. With ``include=None`` every kernel counts.

    When a matrix has more output units than inputs (a wide Dense projection such as G's first layer, whose
    ``out x out`` Gram matrix can take gigabytes), the same value is computed from the smaller
    ``fan_in x fan_in`` Gram matrix: :math:`\|W^\top W\|_F^2 = \|W W^\top\|_F^2`, less the diagonal
    :math:`\sum_i \|w_i\|^4`.

    Args:
      params: a pytree of arrays (a player's parameters).
      beta: the weight :math:`\beta`.
      include: optional predicate ``(path, leaf) -> bool`` on the leaves of two or more axes.

    Returns:
      A scalar, float32 (float64 if the parameters are).

    References:
      Brock, Donahue & Simonyan, 2019, Large Scale GAN Training for High Fidelity Natural Image Synthesis,
      Section 3.1, Eq. (3), https://arxiv.org/abs/1809.11096
    """
    total = jnp.zeros((), jnp.float32)
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        leaf, name = jnp.asarray(leaf), jax.tree_util.keystr(path, simple=True, separator="/")  # 'Conv_0/kernel'
        if leaf.ndim < 2 or (include is not None and not include(name, leaf)):
            continue
        w = leaf.reshape(-1, leaf.shape[-1]).astype(jnp.promote_types(leaf.dtype, jnp.float32))  # [fan_in, out]
        fan_in, out = w.shape
        if out <= fan_in:
            gram = w.T @ w  # [out, out]
            off_diagonal = jnp.sum(jnp.square(gram * (1.0 - jnp.eye(out, dtype=w.dtype))))
        else:
            # Exact for any shape, but a difference of two large numbers near orthogonality: used only where the
            # direct form would not fit.
            column_norms = jnp.sum(jnp.square(w), axis=0)  # ||w_i||^2
            off_diagonal = jnp.sum(jnp.square(w @ w.T)) - jnp.sum(jnp.square(column_norms))
        total = total + off_diagonal
    return beta * total


def add_orthogonal_regularization(beta: float, include: Callable[[str, Array], bool] | None = None) -> optax.GradientTransformation:
    r"""Adds :math:`\nabla_\theta R_\beta(\theta)` (:func:`orthogonal_regularization`) to a player's gradient, as
    ``optax.add_decayed_weights`` adds weight decay: chained before the player's optimizer, it regularises the
    player under every update rule without touching the rule (BigGAN applies it to G, Brock et al. 2019)."""

    def update(updates, state, params):
        if params is None:
            raise ValueError("add_orthogonal_regularization needs the parameters: call update(grads, state, params)")
        grads = jax.grad(lambda p: orthogonal_regularization(p, beta, include=include))(params)
        return jax.tree.map(lambda u, g: u + g.astype(u.dtype), updates, grads), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def not_an_embedding(path: str, leaf: Array) -> bool:
    """False for class embeddings (a path ending in "embedding"), which BigGAN's orthogonal regularization skips."""
    return not path.endswith("embedding")
