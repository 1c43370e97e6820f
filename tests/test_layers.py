"""Tests of the ResNet GAN layers (jaxgan.models.layers): spectral normalisation against numpy's SVD and the
paper's gradient, conditional batch norm and self-attention against hand-written references."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models.dcgan import SpaceToDepthConv
from jaxgan.models.layers import ConditionalBatchNorm, SelfAttention, spectral_norm

EPS = 1e-5  # the batch norms' epsilon


def power_iteration(kernel: np.ndarray, u: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(σ, v, u') of one power-iteration step from the stored u on the [fan_in, out] matrix, in float64."""
    w = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
    v = np.asarray(u, np.float64) @ w.T
    v /= np.linalg.norm(v)
    u_next = v @ w
    u_next /= np.linalg.norm(u_next)
    return float((v @ w @ u_next.T)[0, 0]), v[0], u_next[0]


def top_singular_value(kernel: np.ndarray) -> float:
    return float(np.linalg.svd(np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1]), compute_uv=False)[0])


def with_spectral_gap(kernel: np.ndarray) -> np.ndarray:
    """`kernel` with its top singular value set to twice the second: power iteration then converges like 4^-k."""
    matrix = np.asarray(kernel, np.float64).reshape(-1, kernel.shape[-1])
    left, values, right = np.linalg.svd(matrix, full_matrices=False)
    values[0] = 2.0 * values[1]
    return (left * values @ right).reshape(kernel.shape).astype(np.float32)


class Normalized(nn.Module):
    """One layer under `spectral_norm`, as the models use it."""

    kind: str

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
        layer = {
            "dense": lambda: nn.Dense(5, name="layer"),
            "conv": lambda: nn.Conv(6, (3, 3), name="layer"),
            "space_to_depth": lambda: SpaceToDepthConv(6, 4, 2, name="layer"),
        }[self.kind]()
        return spectral_norm(layer, train=train)(x)


def plain_layer(kind: str) -> nn.Module:
    return {"dense": nn.Dense(5), "conv": nn.Conv(6, (3, 3)), "space_to_depth": SpaceToDepthConv(6, 4, 2)}[kind]


INPUTS = {"dense": (3, 7), "conv": (2, 5, 5, 4), "space_to_depth": (2, 6, 6, 3)}


def _inputs(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


@pytest.mark.parametrize("kind", ["dense", "conv", "space_to_depth"])
def test_spectral_norm_converges_to_the_top_singular_value(kind):
    module, x = Normalized(kind), _inputs(INPUTS[kind])
    variables = module.init(jax.random.key(0), x)
    params = jax.tree_util.tree_map(np.asarray, variables["params"])
    kernel = with_spectral_gap(params["layer"]["kernel"])
    params["layer"]["kernel"] = kernel
    params["layer"]["bias"] = np.random.default_rng(1).standard_normal(params["layer"]["bias"].shape).astype(np.float32)
    state = variables["batch_stats"]
    step = jax.jit(
        lambda s: module.apply({"params": params, "batch_stats": s}, x, mutable=["batch_stats"])[1]["batch_stats"]
    )
    for _ in range(25):
        state = step(state)
    stats = state["layer_spectral_norm"]
    sigma = top_singular_value(kernel)
    np.testing.assert_allclose(float(stats["layer/kernel/sigma"]), sigma, rtol=1e-5)
    sigma_eval, _, _ = power_iteration(kernel, stats["layer/kernel/u"])
    np.testing.assert_allclose(top_singular_value(kernel / sigma_eval), 1.0, atol=1e-3)
    # Evaluation applies the layer with kernel / σ and leaves the state as it was.
    out, unchanged = module.apply({"params": params, "batch_stats": state}, x, train=False, mutable=["batch_stats"])
    chex.assert_trees_all_equal(unchanged["batch_stats"], state)
    explicit = plain_layer(kind).apply({"params": {**params["layer"], "kernel": kernel / np.float32(sigma_eval)}}, x)
    np.testing.assert_allclose(out, explicit, atol=1e-5, rtol=1e-5)


def test_spectral_norm_state_changes_in_training_only():
    module, x = Normalized("conv"), _inputs(INPUTS["conv"])
    variables = module.init(jax.random.key(0), x)
    _, trained = module.apply(variables, x, train=True, mutable=["batch_stats"])
    _, evaluated = module.apply(variables, x, train=False, mutable=["batch_stats"])
    before = variables["batch_stats"]["layer_spectral_norm"]
    after = trained["batch_stats"]["layer_spectral_norm"]
    assert float(jnp.max(jnp.abs(after["layer/kernel/u"] - before["layer/kernel/u"]))) > 1e-3
    assert float(after["layer/kernel/sigma"]) != float(before["layer/kernel/sigma"])
    chex.assert_trees_all_equal(evaluated["batch_stats"], variables["batch_stats"])
    # The state has the shapes the docstring promises: u an out-vector, σ a scalar.
    chex.assert_shape([after["layer/kernel/u"], after["layer/kernel/sigma"]], [(1, 6), ()])


def test_spectral_norm_gradient_treats_u_and_v_as_constants():
    """∂L/∂W = (1/σ)(G − ⟨G, W̄⟩ v u'ᵀ), G = ∂L/∂W̄ (Miyato et al. 2018, Section 2.2), at an unconverged u
    (differentiating through u and v would differ there)."""
    module, x = Normalized("dense"), _inputs(INPUTS["dense"])
    variables = module.init(jax.random.key(0), x)
    cotangent = _inputs((3, 5), seed=2)

    def loss(kernel):
        params = {"layer": {**variables["params"]["layer"], "kernel": kernel}}
        return jnp.sum(cotangent * module.apply({**variables, "params": params}, x, train=False))

    kernel = np.asarray(variables["params"]["layer"]["kernel"], np.float64)
    grad = jax.grad(loss)(variables["params"]["layer"]["kernel"])
    sigma, v, u = power_iteration(kernel, variables["batch_stats"]["layer_spectral_norm"]["layer/kernel/u"])
    g = np.asarray(x, np.float64).T @ np.asarray(cotangent, np.float64)  # ∂L/∂W̄
    expected = (g - np.sum(g * kernel / sigma) * np.outer(v, u)) / sigma
    np.testing.assert_allclose(grad, expected, atol=1e-5, rtol=1e-4)


def _bn_reference(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(var + EPS)


def test_conditional_batch_norm_per_class_gain_and_bias():
    x, labels = _inputs((6, 2, 3, 4)) * 2.0 + 1.0, jnp.array([0, 2, 1, 2, 0, 0])
    module = ConditionalBatchNorm(num_classes=3)
    variables = module.init(jax.random.key(0), x, labels)
    # At initialisation (gain 1, bias 0) it is plain batch norm without affine.
    out, _ = module.apply(variables, x, labels, mutable=["batch_stats"])
    np.testing.assert_allclose(out, _bn_reference(x), atol=1e-5)
    rng = np.random.default_rng(3)
    gain, bias = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    params = {name: {"embedding": jnp.asarray(table, jnp.float32)} for name, table in (("gain", gain), ("bias", bias))}
    out, state = module.apply({**variables, "params": params}, x, labels, mutable=["batch_stats"])
    y = np.asarray(labels)
    expected = _bn_reference(x) * gain[y][:, None, None, :] + bias[y][:, None, None, :]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # Running statistics: momentum 0.9 from (0, 1); evaluation normalises with them.
    stats = state["batch_stats"]["batch_norm"]
    x64 = np.asarray(x, np.float64)
    np.testing.assert_allclose(stats["mean"], 0.1 * x64.mean(axis=(0, 1, 2)), atol=1e-6)
    np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * x64.var(axis=(0, 1, 2)), atol=1e-6)
    out_eval = module.apply({"params": params, **state}, x, labels, train=False)
    normalized = (x64 - np.asarray(stats["mean"])) / np.sqrt(np.asarray(stats["var"]) + EPS)
    np.testing.assert_allclose(out_eval, normalized * gain[y][:, None, None, :] + bias[y][:, None, None, :], atol=1e-5)


@pytest.mark.parametrize("normalized", [False, True])
def test_conditional_batch_norm_from_a_vector(normalized):
    x, condition = _inputs((5, 3)) - 0.5, _inputs((5, 4), seed=1)
    module = ConditionalBatchNorm(spectral_norm=normalized)
    variables = module.init(jax.random.key(0), x, condition)
    params = variables["params"]
    rng = np.random.default_rng(4)
    params = {
        name: {"kernel": params[name]["kernel"], "bias": jnp.asarray(rng.standard_normal(3), jnp.float32)}
        for name in ("gain", "bias")
    }
    out = module.apply({**variables, "params": params}, x, condition, train=True, mutable=["batch_stats"])[0]

    def linear(name):
        kernel = np.asarray(params[name]["kernel"], np.float64)
        if normalized:
            u = variables["batch_stats"][f"{name}_spectral_norm"][f"{name}/kernel/u"]
            kernel = kernel / power_iteration(kernel, u)[0]
        return np.asarray(condition, np.float64) @ kernel + np.asarray(params[name]["bias"])

    x64 = np.asarray(x, np.float64)
    expected = (x64 - x64.mean(0)) / np.sqrt(x64.var(0) + EPS) * (1.0 + linear("gain")) + linear("bias")
    # In either mode the output uses one power-iteration step from the stored u, as `power_iteration` does.
    np.testing.assert_allclose(out, expected, atol=1e-5)


def _max_pool(x: np.ndarray) -> np.ndarray:
    batch, height, width, channels = x.shape
    a, b = (2 if height % 2 == 0 else 1), (2 if width % 2 == 0 else 1)
    return x.reshape(batch, height // a, a, width // b, b, channels).max(axis=(2, 4))


def _attention_reference(x: np.ndarray, kernels: dict, gamma: float) -> np.ndarray:
    x = np.asarray(x, np.float64)
    batch, height, width, _ = x.shape
    project = {name: x @ np.asarray(kernels[name], np.float64)[0, 0] for name in ("query", "key", "value")}
    query = project["query"].reshape(batch, height * width, -1)
    key = _max_pool(project["key"]).reshape(batch, -1, query.shape[-1])
    value = _max_pool(project["value"]).reshape(batch, key.shape[1], -1)
    scores = query @ key.transpose(0, 2, 1)
    beta = np.exp(scores - scores.max(-1, keepdims=True))
    beta /= beta.sum(-1, keepdims=True)
    attended = (beta @ value).reshape(batch, height, width, -1)
    return x + gamma * attended @ np.asarray(kernels["output"], np.float64)[0, 0]


@pytest.mark.parametrize("shape", [(2, 4, 6, 16), (1, 7, 7, 16), (1, 6, 5, 8)])
def test_self_attention_against_reference(shape):
    x = _inputs(shape)
    module = SelfAttention()
    variables = module.init(jax.random.key(0), x)
    chex.assert_trees_all_equal(module.apply(variables, x), x)  # γ = 0: exactly the identity
    channels = shape[-1]
    attention, value = max(1, channels // 8), channels // 2
    chex.assert_shape(
        [variables["params"][name]["kernel"] for name in ("query", "key", "value", "output")],
        [(1, 1, channels, attention)] * 2 + [(1, 1, channels, value), (1, 1, value, channels)],
    )
    rng = np.random.default_rng(5)
    kernels = {
        name: rng.standard_normal(p["kernel"].shape).astype(np.float32)
        for name, p in variables["params"].items()
        if name != "gamma"
    }
    params = {**{name: {"kernel": k} for name, k in kernels.items()}, "gamma": jnp.float32(0.7)}
    out = module.apply({"params": params}, x)
    np.testing.assert_allclose(out, _attention_reference(x, kernels, 0.7), atol=1e-4, rtol=1e-4)


def test_self_attention_with_spectral_norm():
    x = _inputs((2, 4, 4, 16))
    module = SelfAttention(spectral_norm=True)
    variables = module.init(jax.random.key(0), x)
    assert set(variables["batch_stats"]) == {f"{name}_spectral_norm" for name in ("query", "key", "value", "output")}
    params = {**variables["params"], "gamma": jnp.float32(1.5)}
    out, state = module.apply({**variables, "params": params}, x, train=False, mutable=["batch_stats"])
    chex.assert_trees_all_equal(state["batch_stats"], variables["batch_stats"])
    kernels = {}
    for name in ("query", "key", "value", "output"):
        kernel = np.asarray(params[name]["kernel"], np.float64)
        u = variables["batch_stats"][f"{name}_spectral_norm"][f"{name}/kernel/u"]
        kernels[name] = kernel / power_iteration(kernel, u)[0]
    np.testing.assert_allclose(out, _attention_reference(x, kernels, 1.5), atol=1e-4, rtol=1e-4)
