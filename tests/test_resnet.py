"""Tests of the SNGAN ResNets (jaxgan.models.resnet) and of DCGAN's spectrally normalised discriminator: blocks
against hand-written references, the projection term from the parameters, conditioning, BigGAN's options, and
spectral normalisation against numpy's SVD."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models.dcgan import DCGANDiscriminator, UnsupportedImageSize
from jaxgan.models.resnet import (
    DiscriminatorBlock, GeneratorBlock, ResNetDiscriminator, ResNetGenerator, _downsample, discriminator_plan,
)
from test_layers import power_iteration, top_singular_value, with_spectral_gap

BATCH = 2
EPS = 1e-5


def _normal(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _images(shape, seed=1):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, (BATCH, *shape)).astype(np.float32))


def _init(module, *args, **kwargs):
    # XLA's RngBitGenerator: compiling threefry for every parameter would dominate these tests on a small CPU.
    return jax.jit(lambda key: module.init(key, *args, **kwargs))(jax.random.key(0, impl="rbg"))


def _apply(module, variables, *args, **kwargs):
    """`module.apply` compiled as one program (faster than op by op for a whole network)."""
    return jax.jit(lambda variables, *args: module.apply(variables, *args, **kwargs))(variables, *args)


def _perturbed(params, seed=0, scale=0.5):
    """`params` plus noise, so that initial values (gain 1, bias 0, γ 0) do not hide a mistake."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda p: p + scale * rng.standard_normal(p.shape).astype(np.float32), params)


def _conv(x, kernel, bias):
    y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return np.asarray(y, np.float64) + np.asarray(bias)


def _batch_norm(x, p):
    x = np.asarray(x, np.float64)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(var + EPS) * np.asarray(p["scale"]) + np.asarray(p["bias"])


def _relu(x):
    return np.maximum(np.asarray(x, np.float64), 0.0)


def _up(x):
    return np.repeat(np.repeat(np.asarray(x), 2, axis=1), 2, axis=2)


def _pool(x):
    b, h, w, c = x.shape
    return np.asarray(x, np.float64).reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _f32(x):
    return jnp.asarray(x, jnp.float32)


def test_generator_block_against_reference():
    x = _normal((BATCH, 4, 4, 6))
    block = GeneratorBlock(5)
    params = _perturbed(_init(block, x)["params"])
    out, _ = block.apply({"params": params}, x, mutable=["batch_stats"])
    h = _up(_relu(_batch_norm(x, params["bn1"])))
    h = _conv(_f32(h), params["conv1"]["kernel"], params["conv1"]["bias"])
    h = _conv(_f32(_relu(_batch_norm(h, params["bn2"]))), params["conv2"]["kernel"], params["conv2"]["bias"])
    shortcut = _conv(_f32(_up(x)), params["shortcut"]["kernel"], params["shortcut"]["bias"])
    chex.assert_shape(out, (BATCH, 8, 8, 5))
    np.testing.assert_allclose(out, h + shortcut, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "optimized, downsample, features", [(True, True, 5), (False, True, 4), (False, False, 4), (False, False, 5)]
)
def test_discriminator_block_against_reference(optimized, downsample, features):
    x = _normal((BATCH, 4, 4, 4))
    block = DiscriminatorBlock(features, downsample=downsample, optimized=optimized, spectral_norm=False)
    params = _perturbed(_init(block, x)["params"])
    identity = not optimized and not downsample and features == 4
    assert ("shortcut" in params) == (not identity)  # the paper code's learnable shortcut
    conv = {name: (lambda h, p=p: _conv(_f32(h), p["kernel"], p["bias"])) for name, p in params.items()}
    h = conv["conv2"](_relu(conv["conv1"](x if optimized else _relu(x))))
    if optimized:
        expected = _pool(h) + conv["shortcut"](_pool(x))
    elif downsample:
        expected = _pool(h) + _pool(conv["shortcut"](x))
    else:
        expected = h + (np.asarray(x) if identity else conv["shortcut"](x))
    np.testing.assert_allclose(block.apply({"params": params}, x), expected, atol=1e-4, rtol=1e-4)


def test_average_pooling_of_an_odd_side_averages_what_is_there():
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    expected = np.array([[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8]])
    np.testing.assert_allclose(_downsample(x)[0, :, :, 0], expected)


def test_discriminator_plan():
    assert discriminator_plan(32, 32) == [True, True, False, False]  # the paper's CIFAR-10 discriminator
    assert discriminator_plan(28, 28) == [True, True, False, False]  # 28 -> 14 -> 7
    assert discriminator_plan(64, 64) == [True, True, True, False, False]


@pytest.mark.parametrize("shape, blocks", [((28, 28, 1), 2), ((32, 32, 3), 3)])
def test_shapes_and_output_range(shape, blocks):
    z = _normal((BATCH, 12))
    generator = ResNetGenerator(shape, base_width=8)
    variables = _init(generator, z)
    assert sorted(k for k in variables["params"] if k.startswith("block")) == [f"block_{i}" for i in range(blocks)]
    start = 7 if shape[0] == 28 else 4
    chex.assert_shape(variables["params"]["dense"]["kernel"], (12, start * start * 8))
    images, _ = _apply(generator, variables, z, mutable=["batch_stats"])
    chex.assert_shape(images, (BATCH, *shape))
    chex.assert_type(images, jnp.float32)
    assert float(jnp.max(jnp.abs(images))) <= 1.0 and float(jnp.std(images)) > 0.0
    chex.assert_shape(_apply(generator, variables, z, train=False), (BATCH, *shape))
    discriminator = ResNetDiscriminator(base_width=8)
    variables = _init(discriminator, images)
    assert sorted(k for k in variables["params"] if k.startswith("block")) == [f"block_{i}" for i in range(4)]
    logits, _ = _apply(discriminator, variables, images, mutable=["batch_stats"])
    chex.assert_shape(logits, (BATCH,))
    chex.assert_type(logits, jnp.float32)
    chex.assert_tree_all_finite(logits)


def test_bfloat16_compute_gives_float32_outputs():
    def output_dtype(module, x):  # traced, not compiled: only the types matter
        return jax.eval_shape(lambda: module.init_with_output(jax.random.key(0), x)[0]).dtype

    generator = ResNetGenerator((8, 8, 1), base_width=8, attention_resolution=4, dtype=jnp.bfloat16)
    discriminator = ResNetDiscriminator(base_width=8, attention_resolution=4, dtype=jnp.bfloat16)
    assert output_dtype(generator, _normal((BATCH, 8))) == jnp.float32
    assert output_dtype(discriminator, _images((8, 8, 1))) == jnp.float32


def test_generator_conditional_batch_norm_uses_the_labels():
    z, labels = _normal((BATCH, 8)), jnp.array([0, 2])
    generator = ResNetGenerator((8, 8, 1), base_width=8, num_classes=3)
    variables = _init(generator, z, labels)
    chex.assert_shape(variables["params"]["block_0"]["bn1"]["gain"]["embedding"], (3, 8))
    params = {**variables["params"]}
    for block in ("block_0", "block_1"):  # random class gains and biases (they start at 1 and 0)
        bn1, bn2 = _perturbed(params[block]["bn1"]), _perturbed(params[block]["bn2"], seed=1)
        params[block] = {**params[block], "bn1": bn1, "bn2": bn2}

    @jax.jit
    def generate(y):
        return generator.apply({**variables, "params": params}, z, y, train=False)

    assert float(jnp.max(jnp.abs(generate(labels) - generate(jnp.array([1, 1]))))) > 1e-3
    chex.assert_trees_all_equal(generate(labels), generate(labels))
    with pytest.raises(ValueError, match="needs labels"):
        generator.apply(variables, z, train=False)


def test_hierarchical_latents_and_shared_embedding():
    labels = jnp.array([0, 1])
    generator = ResNetGenerator(
        (32, 32, 3), base_width=8, num_classes=3, hierarchical_latents=True, shared_embedding_dim=5
    )
    with pytest.raises(ValueError, match="z_dim 10 is not divisible by 4"):
        generator.init(jax.random.key(0), _normal((BATCH, 10)), labels)
    z = _normal((BATCH, 12))
    variables = _init(generator, z, labels)
    params = variables["params"]
    chex.assert_shape(params["dense"]["kernel"], (3, 4 * 4 * 8))  # the first chunk of z
    chex.assert_shape(params["shared_embedding"]["embedding"], (3, 5))
    for block in ("block_0", "block_1", "block_2"):  # chunk + shared class embedding -> gain and bias
        kernels = [params[block][bn][linear]["kernel"] for bn in ("bn1", "bn2") for linear in ("gain", "bias")]
        chex.assert_shape(kernels, [(3 + 5, 8)] * 4)

    @jax.jit
    def generate(z, y=labels):
        return generator.apply(variables, z, y, train=False)

    base = generate(z)
    last_chunk_changed = z.at[:, 9:].add(1.0)  # reaches only block_2's batch norms
    assert float(jnp.max(jnp.abs(generate(last_chunk_changed) - base))) > 1e-4
    assert float(jnp.max(jnp.abs(generate(z, jnp.array([2, 2])) - base))) > 1e-4
    with pytest.raises(ValueError, match="needs num_classes > 0"):
        ResNetGenerator((32, 32, 3), shared_embedding_dim=5).init(jax.random.key(0), z)


def test_unconditional_hierarchical_latents_need_no_labels():
    generator = ResNetGenerator((8, 8, 1), base_width=8, hierarchical_latents=True)
    variables = jax.eval_shape(lambda: generator.init(jax.random.key(0), _normal((BATCH, 9))))
    chex.assert_shape(variables["params"]["block_1"]["bn2"]["gain"]["kernel"], (3, 8))


def test_attention_resolution():
    z, images = _normal((BATCH, 8)), _images((32, 32, 3))
    generator = ResNetGenerator((32, 32, 3), base_width=16, attention_resolution=16)
    variables = jax.eval_shape(lambda: generator.init(jax.random.key(0), z))
    chex.assert_shape(variables["params"]["attention"]["query"]["kernel"], (1, 1, 16, 2))
    with pytest.raises(ValueError, match="attention_resolution=12 .* valid resolutions for this image size: 8, 16, 32"):
        ResNetGenerator((32, 32, 3), base_width=16, attention_resolution=12).init(jax.random.key(0), z)
    discriminator = ResNetDiscriminator(base_width=16, attention_resolution=8)
    variables = jax.eval_shape(lambda: discriminator.init(jax.random.key(0), images))
    assert "attention_spectral_norm" not in variables["batch_stats"]  # its convs are normalised one by one
    assert "query_spectral_norm" in variables["batch_stats"]["attention"]
    with pytest.raises(ValueError, match="valid resolutions for this image size: 8, 16 "):
        ResNetDiscriminator(base_width=16, attention_resolution=32).init(jax.random.key(0), images)


def test_unsupported_generator_size():
    with pytest.raises(UnsupportedImageSize, match="^ResNetGenerator: unsupported image size 30x30") as error:
        ResNetGenerator((30, 30, 3), base_width=8).init(jax.random.key(0), _normal((BATCH, 8)))
    assert "\n" not in str(error.value)


def _features(discriminator, variables, images, labels):
    """φ(x): ReLU and sum pooling of the last block's output, captured from the module."""
    logits, captured = _apply(
        discriminator, variables, images, labels, train=False,
        capture_intermediates=lambda module, _: module.name == "block_3", mutable=["intermediates"],
    )
    (last,) = captured["intermediates"]["block_3"]["__call__"]
    return logits, np.maximum(np.asarray(last, np.float64), 0.0).sum(axis=(1, 2))


def test_projection_term_from_the_parameters():
    images, labels = _images((28, 28, 1)), jnp.array([1, 3])
    discriminator = ResNetDiscriminator(base_width=8, num_classes=4, spectral_norm=False)
    variables = _init(discriminator, images, labels)
    params = _perturbed(variables["params"], scale=0.1)
    logits, features = _features(discriminator, {"params": params}, images, labels)
    chex.assert_shape(features, (BATCH, 8))
    weight, bias = np.asarray(params["logit"]["kernel"], np.float64)[:, 0], float(params["logit"]["bias"][0])
    unconditional = features @ weight + bias
    embedding = np.asarray(params["class_embedding"]["embedding"], np.float64)
    projection = np.sum(embedding[np.asarray(labels)] * features, -1)  # <Embed(y), φ(x)>
    np.testing.assert_allclose(logits - unconditional, projection, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="needs labels"):
        discriminator.apply({"params": params}, images, train=False)


def test_projection_with_spectral_norm_changes_only_the_class_term():
    images = _images((28, 28, 1))
    discriminator = ResNetDiscriminator(base_width=8, num_classes=4)
    variables = _init(discriminator, images, jnp.array([0, 0]))
    first, second = jnp.array([1, 3]), jnp.array([2, 0])
    logits, features = _features(discriminator, variables, images, first)
    other, features_other = _features(discriminator, variables, images, second)
    np.testing.assert_array_equal(features, features_other)
    embedding = np.asarray(variables["params"]["class_embedding"]["embedding"], np.float64)
    u = variables["batch_stats"]["class_embedding_spectral_norm"]["class_embedding/embedding/u"]
    embedding = embedding / power_iteration(embedding, u)[0]  # the embedding is spectrally normalised too
    difference = np.sum((embedding[np.asarray(first)] - embedding[np.asarray(second)]) * features, -1)
    np.testing.assert_allclose(logits - other, difference, atol=1e-4, rtol=1e-4)

    # Every conv, the Dense layer and the embedding are normalised; their u moves in training only.
    leaves = jax.tree_util.tree_flatten_with_path
    kernels = [path for path, _ in leaves(variables["params"])[0] if path[-1].key in ("kernel", "embedding")]
    u_values = {
        jax.tree_util.keystr(path): u for path, u in leaves(variables["batch_stats"])[0] if path[-1].key.endswith("/u")
    }
    assert len(u_values) == len(kernels) == 3 + 3 + 2 + 2 + 2
    _, trained = _apply(discriminator, variables, images, first, mutable=["batch_stats"])
    trained_u = {jax.tree_util.keystr(path): u for path, u in leaves(trained["batch_stats"])[0]}
    assert all(float(jnp.max(jnp.abs(trained_u[k] - u))) > 0 for k, u in u_values.items() if u.size > 1)
    _, evaluated = _apply(discriminator, variables, images, first, train=False, mutable=["batch_stats"])
    chex.assert_trees_all_equal(evaluated["batch_stats"], variables["batch_stats"])


def test_dcgan_discriminator_spectral_norm():
    images = _images((28, 28, 1))
    discriminator = DCGANDiscriminator(base_width=8, norm="spectral")  # SpaceToDepthConv under spectral_norm
    variables = _init(discriminator, images)
    params = jax.tree_util.tree_map(np.array, variables["params"])
    assert jax.tree_util.tree_map(np.shape, params) == {
        "Conv_0": {"kernel": (4, 4, 1, 8), "bias": (8,)},
        "Conv_1": {"kernel": (4, 4, 8, 16), "bias": (16,)},
        "Conv_2": {"kernel": (4, 4, 16, 32), "bias": (32,)},
        "logit": {"kernel": (4 * 4 * 32, 1), "bias": (1,)},
    }
    assert set(variables["batch_stats"]) == {f"{name}_spectral_norm" for name in params}  # and no batch norm
    for name in ("Conv_0", "Conv_1", "Conv_2"):
        params[name]["kernel"] = with_spectral_gap(params[name]["kernel"])

    @jax.jit
    def step(state):
        variables = {"params": params, "batch_stats": state}
        return discriminator.apply(variables, images, mutable=["batch_stats"])[1]["batch_stats"]

    state = variables["batch_stats"]
    for _ in range(25):
        state = step(state)
    normalized = {}
    for name, layer in params.items():
        stats = state[f"{name}_spectral_norm"]
        np.testing.assert_allclose(float(stats[f"{name}/kernel/sigma"]), top_singular_value(layer["kernel"]), rtol=1e-5)
        sigma = power_iteration(layer["kernel"], stats[f"{name}/kernel/u"])[0]
        np.testing.assert_allclose(top_singular_value(layer["kernel"] / sigma), 1.0, atol=1e-3)
        normalized[name] = {**layer, "kernel": layer["kernel"] / np.float32(sigma)}
    # Evaluation equals the unnormalised discriminator (no batch norm; it has no conv biases but the first, so
    # those are zero here) with the normalised kernels.
    for name in ("Conv_1", "Conv_2"):
        params[name]["bias"][:] = 0.0
        del normalized[name]["bias"]
    plain = DCGANDiscriminator(base_width=8, norm="none")
    np.testing.assert_allclose(
        _apply(discriminator, {"params": params, "batch_stats": state}, images, train=False),
        _apply(plain, {"params": normalized}, images, train=False),
        atol=1e-5, rtol=1e-5,
    )
