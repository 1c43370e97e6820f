"""Tests for jaxgan.penalties.orthogonal_regularization (BigGAN, Brock et al. 2019, Eq. 3).

References: a hand-computed 3x2 matrix, orthonormal columns from numpy's QR, the formula written out with an
explicit Gram matrix over output units, and the closed-form gradient of BigGAN's official code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.penalties import orthogonal_regularization


def _enable_x64():
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older jax
        from jax.experimental import enable_x64 as enable
    return enable(True)


def _explicit(params, beta):
    """beta * sum over >= 2-D leaves of ||W^T W * (1 - I)||_F^2, W = leaf as [fan_in, out], Gram over outputs."""
    total = 0.0
    for leaf in jax.tree.leaves(params):
        if leaf.ndim < 2:
            continue
        w = leaf.reshape(-1, leaf.shape[-1])
        gram = w.T @ w
        total = total + jnp.sum((gram * (1.0 - jnp.eye(w.shape[1], dtype=w.dtype))) ** 2)
    return beta * total


def _params(rng, dtype=np.float32):
    """A Linen-like tree: a conv kernel, a wide Dense (out > fan_in), a narrow Dense, biases, BN scale."""
    return {
        "Conv_0": {"kernel": rng.normal(size=(3, 3, 2, 5)).astype(dtype), "bias": rng.normal(size=5).astype(dtype)},
        "project": {"kernel": rng.normal(size=(4, 12)).astype(dtype)},
        "logit": {"kernel": rng.normal(size=(6, 1)).astype(dtype), "bias": np.ones(1, dtype)},
        "BatchNorm_0": {"scale": rng.normal(size=5).astype(dtype)},
    }


def test_zero_for_orthonormal_columns():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(36, 8)))  # orthonormal columns: W^T W = I
    kernel = jnp.asarray(q.reshape(3, 3, 4, 8), jnp.float32)
    np.testing.assert_allclose(orthogonal_regularization({"kernel": kernel}, 1.0), 0.0, atol=1e-10)
    # Off-diagonal only: orthogonal columns of any norms are free too.
    scaled = kernel * jnp.arange(1.0, 9.0)
    np.testing.assert_allclose(orthogonal_regularization({"kernel": scaled}, 1.0), 0.0, atol=1e-8)


def test_closed_form_small_matrix():
    # W^T W = [[10, 14], [14, 21]]: off-diagonal squares 2 * 196 = 392.
    w = jnp.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(orthogonal_regularization({"w": w}), 1e-4 * 392.0, rtol=1e-6)
    np.testing.assert_allclose(orthogonal_regularization({"w": w}, beta=0.5), 196.0, rtol=1e-6)
    # The same matrix as a 1 x 3 x 1 x 2 "conv" kernel: reshaped to [fan_in = 3, out = 2].
    np.testing.assert_allclose(orthogonal_regularization({"w": w.reshape(1, 3, 1, 2)}, 1.0), 392.0, rtol=1e-6)
    # Its transpose has 3 output units (more than fan_in = 2): the Gram matrix is over OUTPUT units, not WW^T.
    wt = w.T
    expected = np.sum((np.asarray(wt.T @ wt) * (1 - np.eye(3))) ** 2)
    assert not np.isclose(expected, 392.0)
    np.testing.assert_allclose(orthogonal_regularization({"w": wt}, 1.0), expected, rtol=1e-6)


def test_matches_explicit_formula_on_a_tree_and_ignores_one_dimensional_leaves():
    params = jax.tree.map(jnp.asarray, _params(np.random.default_rng(1)))
    np.testing.assert_allclose(orthogonal_regularization(params, 1e-3), _explicit(params, 1e-3), rtol=1e-5)
    # Changing biases, BN scales and scalars does not change the value.
    changed = jax.tree.map(lambda p: p if p.ndim >= 2 else 100.0 * p + 7.0, params)
    changed["step"] = jnp.float32(3.0)
    np.testing.assert_array_equal(orthogonal_regularization(changed, 1e-3), orthogonal_regularization(params, 1e-3))
    # A single-output kernel has no off-diagonal entry: it contributes 0.
    np.testing.assert_array_equal(orthogonal_regularization({"logit": params["logit"]}, 1.0), 0.0)


def test_include_predicate_skips_by_path():
    rng = np.random.default_rng(2)
    params = {
        "Embed_0": {"embedding": jnp.asarray(rng.normal(size=(10, 4)), jnp.float32)},
        "Dense_0": {"kernel": jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)},
    }
    seen = []

    def include(path, leaf):
        seen.append(path)
        return not path.endswith("embedding")

    value = orthogonal_regularization(params, 1.0, include=include)
    assert sorted(seen) == ["Dense_0/kernel", "Embed_0/embedding"]
    np.testing.assert_allclose(value, _explicit({"k": params["Dense_0"]["kernel"]}, 1.0), rtol=1e-6)
    np.testing.assert_allclose(orthogonal_regularization(params, 1.0), _explicit(params, 1.0), rtol=1e-5)


def test_gradient_matches_explicit_formula_and_biggan_closed_form():
    with _enable_x64():
        params = jax.tree.map(jnp.asarray, _params(np.random.default_rng(3), np.float64))
        beta = 1e-2
        value = orthogonal_regularization(params, beta)
        assert value.dtype == jnp.float64
        grads = jax.grad(orthogonal_regularization)(params, beta)
        expected = jax.grad(_explicit)(params, beta)
        for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(grads["Conv_0"]["bias"], 0.0)
        # BigGAN's code adds 2 * beta * (w w^T * (1 - I)) w with w = [out, fan_in]: half of Eq. (3)'s gradient.
        for name in ("Conv_0", "project"):
            kernel = np.asarray(params[name]["kernel"])
            w = kernel.reshape(-1, kernel.shape[-1]).T  # [out, fan_in], PyTorch's layout
            code_grad = 2 * beta * ((w @ w.T) * (1 - np.eye(len(w)))) @ w
            np.testing.assert_allclose(
                np.asarray(grads[name]["kernel"]).reshape(-1, kernel.shape[-1]).T, 2 * code_grad, rtol=1e-10
            )


def test_empty_or_vector_only_tree_is_zero_and_jits():
    assert orthogonal_regularization({"b": jnp.ones(3)}) == 0.0
    params = jax.tree.map(jnp.asarray, _params(np.random.default_rng(4)))
    np.testing.assert_allclose(
        jax.jit(orthogonal_regularization)(params, 1e-4), orthogonal_regularization(params, 1e-4), rtol=1e-6
    )


@pytest.mark.parametrize("shape", [(5, 3), (3, 5)])
def test_both_gram_forms_agree_in_float64(shape):
    # fan_in >= out uses W^T W directly; fan_in < out goes through W W^T: the same number.
    with _enable_x64():
        w = jnp.asarray(np.random.default_rng(5).normal(size=shape))
        np.testing.assert_allclose(orthogonal_regularization({"w": w}, 1.0), _explicit({"w": w}, 1.0), rtol=1e-12)


def test_the_optimizer_option_adds_the_regularizers_gradient_except_to_embeddings():
    """`g_optimizer.orthogonal_regularization = β`: an SGD step moves by lr·(g + ∇R_β), R over the kernels only;
    a class embedding (BigGAN's shared embedding) gets the plain step."""
    from jaxgan.config import default_config, make_optimizer

    config = default_config().g_optimizer
    config.name, config.learning_rate, config.orthogonal_regularization = "sgd", 0.1, 1e-2
    optimizer = make_optimizer(config)
    rng = np.random.default_rng(0)
    params = {"Dense_0": {"kernel": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)},
              "shared": {"embedding": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)}}  # fmt: skip
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    w = params["Dense_0"]["kernel"]
    reference = jax.grad(lambda w: 1e-2 * jnp.sum(((w.T @ w) * (1 - jnp.eye(3))) ** 2))(w)
    np.testing.assert_allclose(updates["Dense_0"]["kernel"], -0.1 * (1.0 + reference), rtol=1e-5)
    np.testing.assert_allclose(updates["shared"]["embedding"], -0.1 * np.ones((4, 3)), rtol=1e-6)
