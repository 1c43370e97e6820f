"""Tests of StyleGAN2-lite (jaxgan.models.stylegan): the modulated convolution against a hand-written reference and
its demodulation from the module's own outputs, noise inputs, style mixing, truncation and the tracked mean w̄,
the path length regularizer against an explicit Jacobian, lazy regularization, the residual discriminator
(minibatch stddev included) against numpy, shapes."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import UnsupportedImageSize, linen_player
from jaxgan.models.stylegan import (
    EqualizedDense, ModulatedConv, NoiseInput, StyleGAN2Discriminator, StyleGAN2Generator,
    path_length_penalty, style_layer_count,
)

Z_DIM = 16


def _normal(shape, seed=0, scale=1.0):
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _init(module, *args, **kwargs):
    # XLA's RngBitGenerator: compiling threefry for every parameter would dominate these tests on a small CPU.
    return jax.jit(lambda key: module.init(key, *args, **kwargs))(jax.random.key(0, impl="rbg"))


def _perturbed(params, seed=0, scale=0.5):
    """`params` plus noise, so that initial values (style bias 1, strengths 0) do not hide a mistake."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda p: p + scale * rng.standard_normal(p.shape).astype(np.float32), params)


# ---------------------------------------------------------------------------------------------------------------
# Equalized learning rate and the modulated convolution.
# ---------------------------------------------------------------------------------------------------------------


def test_equalized_dense_parametrisation():
    layer = EqualizedDense(64, lr_multiplier=0.01, bias_init=0.3)
    x = _normal((3, 50))
    params = _init(layer, x)["params"]
    kernel, bias = np.asarray(params["kernel"]), np.asarray(params["bias"])
    assert 80 < kernel.std() < 120  # stored N(0, 1/λ²), λ = 0.01
    np.testing.assert_allclose(bias, 30.0)  # b₀/λ
    expected = np.asarray(x, np.float64) @ (kernel * 0.01 / math.sqrt(50)) + 0.01 * bias
    np.testing.assert_allclose(layer.apply({"params": params}, x), expected, rtol=1e-5, atol=1e-5)


def _modconv_reference(params, x, w, kernel_size, demodulate, up):
    """Per-example weights w''_bijk built explicitly and a loop convolution, in float64."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    affine = params["affine"]
    styles = w @ (np.asarray(affine["kernel"], np.float64) / math.sqrt(w.shape[1])) + np.asarray(affine["bias"])
    in_channels = x.shape[-1]
    kernel = np.asarray(params["kernel"], np.float64) / math.sqrt(kernel_size**2 * in_channels)
    pad = kernel_size // 2
    outputs = []
    for b in range(x.shape[0]):
        weights = kernel * styles[b][None, None, :, None]  # [k, k, in, out]
        if demodulate:
            weights = weights / np.sqrt(np.sum(weights**2, axis=(0, 1, 2)) + 1e-8)
        image = x[b].repeat(2, 0).repeat(2, 1) if up else x[b]
        height, width = image.shape[:2]
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
        outputs.append(
            sum(
                np.einsum("hwi,io->hwo", padded[u : u + height, v : v + width], weights[u, v])
                for u in range(kernel_size)
                for v in range(kernel_size)
            )
        )
    return np.stack(outputs)


@pytest.mark.parametrize(
    "kernel_size, demodulate, up", [(3, True, False), (3, False, False), (3, True, True), (1, False, False)]
)
def test_modulated_conv_matches_reference(kernel_size, demodulate, up):
    conv = ModulatedConv(5, kernel_size, demodulate=demodulate, up=up)
    x, w = _normal((3, 4, 5, 4), seed=1), _normal((3, 6), seed=2)
    params = _perturbed(_init(conv, x, w)["params"])
    out = conv.apply({"params": params}, x, w)
    assert out.shape == (3, 8 if up else 4, 10 if up else 5, 5)
    np.testing.assert_allclose(out, _modconv_reference(params, x, w, kernel_size, demodulate, up), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("demodulate", [True, False])
def test_effective_weights_of_demodulated_conv_have_unit_norm(demodulate):
    """The per-example kernel read off the module's responses to one-hot inputs: tap (u, v) of input channel i
    is the output at (2 − u, 2 − v) for a one at the centre of a 3x3 image."""
    batch, in_channels, out_channels = 3, 4, 5
    conv = ModulatedConv(out_channels, 3, demodulate=demodulate)
    w = _normal((batch, 6), seed=3)
    probes = jnp.zeros((in_channels, 3, 3, in_channels)).at[jnp.arange(in_channels), 1, 1, jnp.arange(in_channels)].set(1.0)
    params = _perturbed(_init(conv, probes[:1], w[:1])["params"], seed=4)
    x = jnp.tile(probes, (batch, 1, 1, 1))  # [batch·in, 3, 3, in]: example b, channel i at row b·in + i
    out = conv.apply({"params": params}, x, jnp.repeat(w, in_channels, axis=0))
    kernels = np.asarray(out).reshape(batch, in_channels, 3, 3, out_channels)[:, :, ::-1, ::-1]  # [b, i, u, v, o]
    norms = np.sqrt(np.sum(kernels.astype(np.float64) ** 2, axis=(1, 2, 3)))  # [b, o]
    if demodulate:
        np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    else:
        assert np.min(np.abs(norms - 1.0)) > 1e-2  # the probe would see a non-normalised kernel


def test_demodulated_output_has_unit_std_for_unit_inputs():
    conv = ModulatedConv(8, 3, demodulate=True)
    x, w = _normal((4, 24, 24, 8), seed=5), _normal((4, 8), seed=6)
    params = _perturbed(_init(conv, x, w)["params"], seed=7)  # styles far from 1: only demodulation rescales
    out = np.asarray(conv.apply({"params": params}, x, w))[:, 1:-1, 1:-1]  # interior: no zero padding read
    assert abs(out.std() - 1.0) < 0.05
    plain = np.asarray(ModulatedConv(8, 3, demodulate=False).apply({"params": params}, x, w))[:, 1:-1, 1:-1]
    assert abs(plain.std() - 1.0) > 0.1  # so the check above is not met by accident


# ---------------------------------------------------------------------------------------------------------------
# Noise inputs.
# ---------------------------------------------------------------------------------------------------------------


def test_noise_input():
    layer = NoiseInput()
    x = _normal((2, 3, 4, 5))
    params = _init(layer, x)["params"]
    np.testing.assert_array_equal(params["strength"], np.zeros(5))
    rngs = {"noise": jax.random.key(1)}
    np.testing.assert_array_equal(layer.apply({"params": params}, x, rngs=rngs), x)  # zero strength: no effect
    strength = jnp.arange(1.0, 6.0)
    noisy = layer.apply({"params": {"strength": strength}}, x, rngs=rngs)
    noise = (noisy - x) / strength  # one noise image per example, shared by the channels
    assert float(jnp.abs(noise).max()) > 0.1
    np.testing.assert_allclose(noise, jnp.broadcast_to(noise[..., :1], noise.shape), atol=1e-5)
    np.testing.assert_array_equal(layer.apply({"params": {"strength": strength}}, x), x)  # no "noise" stream


# ---------------------------------------------------------------------------------------------------------------
# Generator: noise, style mixing, truncation, w̄.
# ---------------------------------------------------------------------------------------------------------------


@functools.cache
def _generator(shape):
    """(module, {"params", "mapping_stats"}) of a tiny generator, initialised through the player protocol once per
    shape (initialisation is the slowest compilation here)."""
    module = StyleGAN2Generator(shape, width=4, mapping_layers=2, w_dim=8)
    params, state = jax.jit(linen_player(module).init)(jax.random.key(0, impl="rbg"), jnp.zeros((2, Z_DIM)))
    return module, {"params": params, **state}


@pytest.fixture(scope="module")
def generator():
    return _generator((28, 28, 1))


def _apply(module, variables, *args, method=None, rngs=None, **kwargs):
    return module.apply(variables, *args, method=method, rngs=rngs, **kwargs)


def _with_strength(params, value):
    return jax.tree_util.tree_map_with_path(
        lambda path, p: jnp.full_like(p, value) if getattr(path[-1], "key", None) == "strength" else p, params
    )


def test_generator_noise_only_matters_with_nonzero_strength(generator):
    module, variables = generator
    z = _normal((2, Z_DIM), seed=8)
    run = jax.jit(lambda v, rngs: module.apply(v, z, train=False, rngs=rngs))
    plain = run(variables, None)
    np.testing.assert_array_equal(run(variables, {"noise": jax.random.key(2)}), plain)  # strengths 0 at init
    strong = {**variables, "params": _with_strength(variables["params"], 0.5)}
    np.testing.assert_array_equal(run(strong, None), plain)  # no "noise" stream: zero noise
    noisy = run(strong, {"noise": jax.random.key(2)})
    assert float(jnp.abs(noisy - plain).max()) > 1e-3
    np.testing.assert_array_equal(run(strong, {"noise": jax.random.key(2)}), noisy)  # the stream's key decides


def test_style_mixing(generator):
    module, variables = generator
    layers = style_layer_count((28, 28, 1))
    assert layers == 6
    z, mixing_z = _normal((2, Z_DIM), seed=9), _normal((2, Z_DIM), seed=10)

    @jax.jit
    def mixed(crossover):
        return module.apply(variables, z, train=False, mixing_z=mixing_z, crossover=crossover)

    alone = jax.jit(lambda latents: module.apply(variables, latents, train=False))
    image_z, image_mix = alone(z), alone(mixing_z)
    np.testing.assert_allclose(mixed(jnp.array([0, 0])), image_mix, atol=1e-5)
    np.testing.assert_allclose(mixed(jnp.array([layers, 100])), image_z, atol=1e-5)
    per_example = mixed(jnp.array([0, layers]))
    np.testing.assert_allclose(per_example[0], image_mix[0], atol=1e-5)
    np.testing.assert_allclose(per_example[1], image_z[1], atol=1e-5)
    middle = mixed(jnp.array([3, 3]))
    assert min(float(jnp.abs(middle - image_z).max()), float(jnp.abs(middle - image_mix).max())) > 1e-4
    ws = module.apply(variables, z, method="mapping", train=False, mixing_z=mixing_z, crossover=jnp.array([3, 3]))
    w_z = module.apply(variables, z, method="mapping", train=False)[:, 0]
    w_mix = module.apply(variables, mixing_z, method="mapping", train=False)[:, 0]
    np.testing.assert_allclose(ws[:, :3], jnp.broadcast_to(w_z[:, None], (2, 3, 8)), atol=1e-6)
    np.testing.assert_allclose(ws[:, 3:], jnp.broadcast_to(w_mix[:, None], (2, 3, 8)), atol=1e-6)
    with pytest.raises(ValueError, match="both mixing_z"):
        module.apply(variables, z, train=False, mixing_z=mixing_z)


def test_truncation(generator):
    module, variables = generator
    w_avg = _normal((8,), seed=11)
    variables = {**variables, "mapping_stats": {"w_avg": w_avg}}
    z = _normal((3, Z_DIM), seed=12)

    def mapping(psi, m=module):
        return m.apply(variables, z, method="mapping", train=False, truncation_psi=psi)

    ws = mapping(None)
    np.testing.assert_array_equal(mapping(1.0), ws)
    np.testing.assert_allclose(mapping(0.0), jnp.broadcast_to(w_avg, ws.shape), atol=1e-6)
    np.testing.assert_allclose(mapping(jnp.float32(0.7)), w_avg + 0.7 * (ws - w_avg), atol=1e-5)
    np.testing.assert_allclose(mapping(None, module.clone(truncation_psi=0.0)), jnp.broadcast_to(w_avg, ws.shape), atol=1e-6)
    images = jax.jit(lambda v: module.apply(v, z, train=False, truncation_psi=0.0))(variables)
    np.testing.assert_allclose(images, jnp.broadcast_to(images[:1], images.shape), atol=1e-6)  # one image for every z


def test_w_avg_is_an_ema_updated_only_in_training(generator):
    module, variables = generator
    np.testing.assert_array_equal(variables["mapping_stats"]["w_avg"], np.zeros(8))
    old = _normal((8,), seed=13)
    variables = {**variables, "mapping_stats": {"w_avg": old}}
    z = _normal((4, Z_DIM), seed=14)
    w = module.apply(variables, z, method="mapping", train=False)[:, 0]

    def new_w_avg(variables, train):
        return module.apply(variables, z, method="mapping", train=train, mutable=["mapping_stats"])[1]["mapping_stats"]["w_avg"]

    np.testing.assert_allclose(
        jax.jit(lambda v: new_w_avg(v, True))(variables), 0.995 * old + 0.005 * w.mean(axis=0), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_array_equal(jax.jit(lambda v: new_w_avg(v, False))(variables), old)


# ---------------------------------------------------------------------------------------------------------------
# Regularizers.
# ---------------------------------------------------------------------------------------------------------------


def _tiny_generate(a):
    """w [B, D] or [B, L, D] -> [B, 2, 3, 2] images, examples independent."""

    def generate(w):
        flat = w.reshape(w.shape[0], -1)
        return jnp.tanh(flat @ a).reshape(w.shape[0], 2, 3, 2)

    return generate


@pytest.mark.parametrize("w_shape", [(3, 4), (3, 2, 4)])
def test_path_length_penalty_against_jacobian(w_shape):
    w = _normal(w_shape, seed=15)
    generate = _tiny_generate(_normal((math.prod(w_shape[1:]), 12), seed=16, scale=0.5))
    key, pl_mean, decay = jax.random.key(17), 0.5, 0.01
    penalty, new_mean, lengths = jax.jit(lambda w: path_length_penalty(generate, w, key, pl_mean, decay))(w)
    y = np.asarray(jax.random.normal(key, (3, 2, 3, 2))) / math.sqrt(2 * 3)
    jacobians = np.asarray(jax.jit(jax.vmap(jax.jacrev(lambda wb: generate(wb[None])[0])))(w))  # [3, 2, 3, 2, *w_shape[1:]]
    expected = []
    for b in range(3):
        g = np.tensordot(y[b], jacobians[b], axes=3)  # J_wᵀ y for example b
        expected.append(math.sqrt(np.mean(np.sum(g**2, axis=-1))))
    expected = np.array(expected)
    np.testing.assert_allclose(lengths, expected, rtol=1e-5)
    expected_mean = pl_mean + decay * (expected.mean() - pl_mean)
    np.testing.assert_allclose(new_mean, expected_mean, rtol=1e-5)
    np.testing.assert_allclose(penalty, np.mean((expected - expected_mean) ** 2), rtol=1e-4)


def test_path_length_penalty_gradient_matches_finite_differences():
    w, a = _normal((3, 4), seed=18), _normal((4, 12), seed=19, scale=0.5)
    direction = _normal((4, 12), seed=20)

    def penalty(a):
        return path_length_penalty(_tiny_generate(a), w, jax.random.key(21), 0.3)

    _, target, _ = penalty(a)
    grad = float(jnp.sum(jax.grad(lambda a: penalty(a)[0])(a) * direction))

    def with_fixed_target(t):  # a' is a constant of the penalty (stop_gradient), the lengths are not
        return float(jnp.mean(jnp.square(penalty(a + t * direction)[2] - target)))

    h = 1e-3
    finite = (with_fixed_target(h) - with_fixed_target(-h)) / (2 * h)
    assert abs(grad) > 1e-3
    np.testing.assert_allclose(grad, finite, rtol=1e-2)


def test_path_length_penalty_through_the_generator(generator):
    module, variables = generator
    ws = module.apply(variables, _normal((2, Z_DIM), seed=22), method="mapping", train=False)

    def penalty(params):
        generate = lambda ws: module.apply({**variables, "params": params}, ws, method="synthesize")
        return path_length_penalty(generate, ws, jax.random.key(23), 0.0)

    def value_and_aux(params):
        value, new_mean, lengths = penalty(params)
        return value, (new_mean, lengths)

    (value, (new_mean, lengths)), grads = jax.jit(jax.value_and_grad(value_and_aux, has_aux=True))(variables["params"])
    assert lengths.shape == (2,) and bool(jnp.all(lengths > 0)) and np.isfinite(float(value))
    np.testing.assert_allclose(new_mean, 0.01 * lengths.mean(), rtol=1e-5)
    leaves = jax.tree.leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(float(jnp.abs(g).max()) > 0 for g in leaves)


# ---------------------------------------------------------------------------------------------------------------
# Discriminator, shapes, errors.
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_players_shapes(shape):
    module, variables = _generator(shape)
    generator, discriminator = linen_player(module), linen_player(StyleGAN2Discriminator(width=4))
    params, state = variables["params"], {"mapping_stats": variables["mapping_stats"]}
    z = _normal((4, Z_DIM), seed=25)
    images, new_state = jax.jit(lambda p, s, k: generator.apply(p, s, z, rngs={"noise": k}))(params, state, jax.random.key(1))
    assert images.shape == (4, *shape) and bool(jnp.all(jnp.abs(images) <= 1.0))
    assert float(jnp.abs(new_state["mapping_stats"]["w_avg"]).max()) > 0  # train=True moved w̄
    d_params, d_state = jax.jit(discriminator.init)(jax.random.key(2, impl="rbg"), images)
    assert d_state == {}
    logits, _ = jax.jit(lambda p, x: discriminator.apply(p, {}, x))(d_params, images)
    assert logits.shape == (4,) and logits.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(logits)))


def _np_discriminator(params, x, group=4):
    """StyleGAN2's residual D in numpy (Karras et al. 2020, Figure 7c; every layer's weight times 1/√fan_in,
    lrelu = LeakyReLU(0.2)·√2, residual blocks (res + skip)/√2, minibatch stddev over groups, i mod M)."""
    lrelu = lambda v: np.where(v >= 0, v, 0.2 * v) * np.sqrt(2.0)
    pool = lambda v: v.reshape(v.shape[0], v.shape[1] // 2, 2, v.shape[2] // 2, 2, v.shape[3]).mean(axis=(2, 4))

    def conv(v, p):
        kernel = np.asarray(p["kernel"], np.float64)
        k = kernel.shape[0]
        kernel = kernel / np.sqrt(k * k * v.shape[-1])
        padded = np.pad(v, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
        out = sum(np.einsum("bhwc,cd->bhwd", padded[:, i : i + v.shape[1], j : j + v.shape[2]], kernel[i, j])
                  for i in range(k) for j in range(k))  # fmt: skip
        return out + (np.asarray(p["bias"], np.float64) if "bias" in p else 0.0)

    def dense(v, p):
        kernel = np.asarray(p["kernel"], np.float64)
        return v @ kernel / np.sqrt(kernel.shape[0]) + np.asarray(p["bias"], np.float64)

    h = lrelu(conv(np.asarray(x, np.float64), params["from_rgb"]))
    for name in sorted(n for n in params if n.startswith("block_")):
        block = params[name]
        residual = lrelu(pool(conv(lrelu(conv(h, block["conv0"])), block["conv1"])))
        h = (residual + conv(pool(h), block["skip"])) / np.sqrt(2.0)
    batch = h.shape[0]
    groups = h.reshape(group, batch // group, *h.shape[1:])  # example i in group i mod M
    stddev = np.sqrt(groups.var(axis=0) + 1e-8).mean(axis=(1, 2, 3))  # [M]
    feature = np.broadcast_to(stddev[np.arange(batch) % (batch // group), None, None, None], (*h.shape[:3], 1))
    h = lrelu(conv(np.concatenate([h, feature], axis=-1), params["epilogue_conv"]))
    h = lrelu(dense(h.reshape(batch, -1), params["epilogue_dense"]))
    return dense(h, params["logit"])[:, 0]


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
def test_discriminator_against_a_numpy_reference(shape):
    module = StyleGAN2Discriminator(width=4)
    x = _normal((8, *shape), seed=30)  # two groups of four
    params = _perturbed(_init(module, x)["params"], seed=31)
    logits = jax.jit(lambda p, x: module.apply({"params": p}, x))(params, x)
    np.testing.assert_allclose(np.asarray(logits), _np_discriminator(params, np.asarray(x)), rtol=2e-4, atol=2e-5)
    changed = x.at[2].set(-x[2])  # example 2 shares example 0's group (M = 2: groups {0, 2, 4, 6}, {1, 3, 5, 7})
    moved = jax.jit(lambda p, x: module.apply({"params": p}, x))(params, changed)
    assert abs(float(moved[0] - logits[0])) > 1e-4 and float(moved[1] - logits[1]) == 0.0


def test_unsupported_size_is_a_one_line_error():
    for build, who in [
        (lambda: StyleGAN2Generator((30, 30, 3), width=4, w_dim=8).init(jax.random.key(0), jnp.zeros((2, Z_DIM))), "StyleGAN2Generator"),
        (lambda: StyleGAN2Discriminator(width=4).init(jax.random.key(0), jnp.zeros((2, 30, 30, 3))), "StyleGAN2Discriminator"),
        (lambda: style_layer_count((30, 30, 3)), "StyleGAN2Generator"),
    ]:
        with pytest.raises(UnsupportedImageSize, match=f"{who}: unsupported image size 30x30") as error:
            build()
        assert "\n" not in str(error.value)
