"""Tests of the DCGAN generator and discriminator (jaxgan.models.dcgan)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import linen_player
from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator, generator_plan

SHAPES = [(8, 8, 1), (28, 28, 1), (32, 32, 3), (64, 64, 3)]
Z_DIM = 16
BATCH = 3


# Inputs and most parameters are drawn with numpy: compiling JAX's PRNG for every parameter shape dominates
# the run time on a small CPU. `module.init` itself is exercised in the protocol tests at the end.


def _z(batch=BATCH, seed=0, dtype=np.float32):
    return jnp.asarray(np.random.default_rng(seed).standard_normal((batch, Z_DIM)).astype(dtype))


def _images(shape, batch=BATCH, seed=1, dtype=np.float32):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, (batch, *shape)).astype(dtype))


def _init(module, *args, seed=0, dtype=None, **kwargs):
    """Variables of the shapes `module.init` gives, drawn with numpy as the module's initialisers would."""
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = path[-1].key
        value = {"mean": np.zeros(leaf.shape), "var": np.ones(leaf.shape), "bias": np.zeros(leaf.shape)}.get(name)
        if value is None:
            value = (1.0 if name == "scale" else 0.0) + 0.02 * rng.standard_normal(leaf.shape)
        return jnp.asarray(value, dtype or leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def _max_diff(a, b):
    return float(jnp.max(jnp.abs(a - b)))


@pytest.mark.parametrize("shape", SHAPES)
def test_generator_shape_and_range(shape):
    gen = DCGANGenerator(shape, base_width=8)
    variables = _init(gen, _z())
    out, _ = gen.apply(variables, _z(), mutable=["batch_stats"])
    chex.assert_shape(out, (BATCH, *shape))
    chex.assert_type(out, jnp.float32)
    chex.assert_tree_all_finite(out)
    assert float(jnp.min(out)) >= -1.0 and float(jnp.max(out)) <= 1.0
    assert float(jnp.std(out)) > 0.0
    eval_out = gen.apply(variables, _z(), train=False)
    chex.assert_shape(eval_out, (BATCH, *shape))
    assert float(jnp.max(jnp.abs(eval_out))) <= 1.0


def test_generator_plan():
    assert generator_plan((8, 8, 1)) == (2, 2, 2)
    assert generator_plan((28, 28, 1)) == (7, 7, 2)
    assert generator_plan((32, 32, 3)) == (4, 4, 3)
    assert generator_plan((64, 64, 3)) == (4, 4, 4)


@pytest.mark.parametrize("shape", [(30, 30, 1), (7, 7, 1), (28, 32, 1)])
def test_generator_unsupported_size(shape):
    gen = DCGANGenerator(shape, base_width=8)
    with pytest.raises(ValueError, match=r"unsupported image size .*supported sides are 2\^n") as info:
        gen.init(jax.random.key(0), _z())
    assert "\n" not in str(info.value)
    assert f"{shape[0]}x{shape[1]}" in str(info.value)


def test_output_dtype_is_float32_for_bfloat16_compute():
    gen = DCGANGenerator((8, 8, 1), base_width=8, dtype=jnp.bfloat16)
    out = gen.apply(_init(gen, _z()), _z(), train=False)
    chex.assert_type(out, jnp.float32)
    disc = DCGANDiscriminator(base_width=8, dtype=jnp.bfloat16)
    logits = disc.apply(_init(disc, out), out, train=False)
    chex.assert_type(logits, jnp.float32)


@pytest.mark.parametrize("shape", SHAPES)
def test_discriminator_logits_shape(shape):
    disc = DCGANDiscriminator(base_width=8)
    x = _images(shape)
    variables = _init(disc, x)
    logits, _ = disc.apply(variables, x, mutable=["batch_stats"])
    chex.assert_shape(logits, (BATCH,))
    chex.assert_type(logits, jnp.float32)
    chex.assert_tree_all_finite(logits)
    eval_logits = disc.apply(variables, x, train=False)
    chex.assert_shape(eval_logits, (BATCH,))
    chex.assert_type(eval_logits, jnp.float32)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(num_classes=10, aux_classifier=True), {"logits": (BATCH,), "class_logits": (BATCH, 10)}),
        (dict(info_categorical=10, info_continuous=2),
         {"logits": (BATCH,), "code_logits": (BATCH, 10), "code_mean": (BATCH, 2)}),
        (dict(info_continuous=3), {"logits": (BATCH,), "code_mean": (BATCH, 3)}),
        (dict(num_classes=5, aux_classifier=True, info_categorical=4),
         {"logits": (BATCH,), "class_logits": (BATCH, 5), "code_logits": (BATCH, 4)}),
    ],
)
def test_discriminator_heads(kwargs, expected):
    disc = DCGANDiscriminator(base_width=8, **kwargs)
    x = _images((28, 28, 1))
    # The AC-GAN discriminator does not condition on labels; passing them must not matter.
    labels = jnp.arange(BATCH, dtype=jnp.int32)
    variables = _init(disc, x, labels)
    out, _ = disc.apply(variables, x, labels, mutable=["batch_stats"])
    assert isinstance(out, dict)
    assert set(out) == set(expected)
    for key, shape in expected.items():
        chex.assert_shape(out[key], shape)
        chex.assert_type(out[key], jnp.float32)
    chex.assert_tree_all_finite(out)
    eval_out = disc.apply(variables, x, train=False)
    assert set(eval_out) == set(expected)


def test_aux_classifier_needs_classes():
    with pytest.raises(ValueError, match="num_classes > 0"):
        DCGANDiscriminator(base_width=8, aux_classifier=True).init(jax.random.key(0), _images((8, 8, 1)))


def _stats_differ(a, b):
    return any(not np.allclose(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("which", ["generator", "discriminator"])
def test_batch_norm_train_and_eval(which):
    if which == "generator":
        module = DCGANGenerator((28, 28, 1), base_width=8)
        inputs = _z(batch=6)
    else:
        module = DCGANDiscriminator(base_width=8)
        inputs = _images((28, 28, 1), batch=6)
    variables = _init(module, inputs)
    assert jax.tree.leaves(variables["batch_stats"])

    # train=True: running statistics move, and a sample's output depends on the rest of the batch.
    out, new_state = module.apply(variables, inputs, mutable=["batch_stats"])
    assert _stats_differ(variables["batch_stats"], new_state["batch_stats"])
    out_single, _ = module.apply(variables, inputs[:2], mutable=["batch_stats"])
    assert _max_diff(out[0], out_single[0]) > 1e-4

    # train=False: per-sample outputs, statistics untouched (also when the collection is mutable).
    trained = {"params": variables["params"], **new_state}
    eval_batch, eval_state = module.apply(trained, inputs, train=False, mutable=["batch_stats"])
    chex.assert_trees_all_equal(eval_state["batch_stats"], new_state["batch_stats"])
    eval_single = module.apply(trained, inputs[:1], train=False)
    np.testing.assert_allclose(eval_single[0], eval_batch[0], atol=1e-5, rtol=1e-5)
    eval_other = module.apply(trained, jnp.concatenate([inputs[:1], -inputs[1:]]), train=False)
    np.testing.assert_allclose(eval_other[0], eval_batch[0], atol=1e-5, rtol=1e-5)


def test_generator_conditioning():
    gen = DCGANGenerator((28, 28, 1), base_width=8, num_classes=10)
    z = _z()
    labels_a = jnp.array([0, 1, 2], jnp.int32)
    labels_b = jnp.array([3, 1, 7], jnp.int32)
    variables = _init(gen, z, labels_a)
    out_a = gen.apply(variables, z, labels_a, train=False)
    out_b = gen.apply(variables, z, labels_b, train=False)
    assert _max_diff(out_a[0], out_b[0]) > 1e-5
    assert _max_diff(out_a[2], out_b[2]) > 1e-5
    np.testing.assert_allclose(out_a[1], out_b[1], atol=1e-6)
    with pytest.raises(ValueError, match="needs labels"):
        gen.apply(variables, z, train=False)


def test_discriminator_conditioning():
    disc = DCGANDiscriminator(base_width=8, num_classes=10)
    x = _images((28, 28, 1))
    labels_a = jnp.array([0, 1, 2], jnp.int32)
    labels_b = jnp.array([3, 1, 7], jnp.int32)
    variables = _init(disc, x, labels_a)
    # The first conv sees image channels + num_classes label planes.
    assert variables["params"]["Conv_0"]["kernel"].shape[2] == 1 + 10
    logit_a = disc.apply(variables, x, labels_a, train=False)
    logit_b = disc.apply(variables, x, labels_b, train=False)
    assert abs(float(logit_a[0] - logit_b[0])) > 1e-6
    assert abs(float(logit_a[2] - logit_b[2])) > 1e-6
    np.testing.assert_allclose(logit_a[1], logit_b[1], atol=1e-6)
    with pytest.raises(ValueError, match="needs labels"):
        disc.apply(variables, x, train=False)


def test_discriminator_input_gradient():
    disc = DCGANDiscriminator(base_width=8)
    x = _images((28, 28, 1))
    variables = _init(disc, x)

    def total_logit(images):
        logits, _ = disc.apply(variables, images, mutable=["batch_stats"])
        return jnp.sum(logits)

    grad = jax.grad(total_logit)(x)
    chex.assert_shape(grad, x.shape)
    chex.assert_tree_all_finite(grad)
    assert float(jnp.max(jnp.abs(grad))) > 0.0


def test_linen_player_protocol():
    """The real initialisers, through the package's player protocol (BN statistics are model state)."""
    player = linen_player(DCGANGenerator((8, 8, 1), base_width=8))
    params, state = player.init(jax.random.key(0), _z())
    assert set(state) == {"batch_stats"}
    out, new_state = player.apply(params, state, _z())
    chex.assert_shape(out, (BATCH, 8, 8, 1))
    chex.assert_tree_all_finite((params, out))
    assert _stats_differ(state, new_state)
    assert 0.01 < float(jnp.std(params["ConvTranspose_0"]["kernel"])) < 0.04  # N(0, 0.02), Radford et al.

    # On 8x8 images the discriminator has a single conv, hence no batch norm and no model state.
    player = linen_player(DCGANDiscriminator(base_width=8))
    params, state = player.init(jax.random.key(1), _images((8, 8, 1)))
    assert state == {}
    logits, _ = player.apply(params, state, _images((8, 8, 1)))
    chex.assert_shape(logits, (BATCH,))
    chex.assert_tree_all_finite((params, logits))


def test_float64_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        gen = DCGANGenerator((8, 8, 1), base_width=4, dtype=jnp.float64)
        disc = DCGANDiscriminator(base_width=4, dtype=jnp.float64)
        z = _z(batch=4, dtype=np.float64)
        g_vars = _init(gen, z, dtype=jnp.float64)
        fake = gen.apply(g_vars, z, train=False)
        chex.assert_type(fake, jnp.float64)
        d_vars = _init(disc, fake, seed=1, dtype=jnp.float64)
        index = (1, 2, 3, 0)  # an entry of the first transposed convolution's kernel
        kernel = g_vars["params"]["ConvTranspose_0"]["kernel"]
        assert kernel.shape == (4, 4, 8, 4) and kernel.dtype == jnp.float64

        def objective(entry):
            params = jax.tree.map(lambda a: a, g_vars["params"])
            params["ConvTranspose_0"] = dict(params["ConvTranspose_0"], kernel=kernel.at[index].set(entry))
            images = gen.apply({**g_vars, "params": params}, z, train=False)
            logits = disc.apply(d_vars, images, train=False)
            chex.assert_type(logits, jnp.float64)
            return jnp.sum(logits)

        entry = kernel[index]
        grad = float(jax.grad(objective)(entry))
        eps = 1e-5
        fd = float((objective(entry + eps) - objective(entry - eps)) / (2 * eps))
        assert abs(grad) > 1e-8
        np.testing.assert_allclose(grad, fd, rtol=1e-5)


@pytest.mark.parametrize("kernel_size, stride, size", [(4, 2, 7), (4, 2, 14), (5, 2, 4), (3, 2, 5), (4, 2, 2), (3, 1, 6)])
def test_subpixel_conv_transpose_equals_flax_conv_transpose(kernel_size, stride, size):
    """Same parameters, same outputs and same gradients as nn.ConvTranspose(padding="SAME")."""
    import flax.linen as nn

    from jaxgan.models.dcgan import SubpixelConvTranspose

    x = jax.random.normal(jax.random.key(0), (2, size, size, 3))
    reference = nn.ConvTranspose(4, (kernel_size, kernel_size), strides=(stride, stride), padding="SAME")
    subpixel = SubpixelConvTranspose(4, kernel_size, stride)
    params = reference.init(jax.random.key(1), x)
    params = jax.tree.map(lambda a: a + jax.random.normal(jax.random.key(2), a.shape), params)  # a nonzero bias too
    assert jax.tree.structure(params) == jax.tree.structure(subpixel.init(jax.random.key(1), x))
    np.testing.assert_allclose(subpixel.apply(params, x), reference.apply(params, x), rtol=1e-5, atol=1e-5)
    loss = lambda module: lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))  # noqa: E731
    got = jax.grad(loss(subpixel), argnums=(0, 1))(params, x)
    want = jax.grad(loss(reference), argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
