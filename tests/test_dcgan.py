"""Tests of the DCGAN generator and discriminator (jaxgan.models.dcgan)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import UnsupportedImageSize, linen_player
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
    with pytest.raises(UnsupportedImageSize, match=r"unsupported image size .*supported sides are 2\^n") as info:
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


# --- SpaceToDepthConv: D's strided convolutions without strided or dilated convolutions -----------------------


@pytest.mark.parametrize(
    "kernel_size, stride, padding, size, channels",
    [
        # D's convolutions (kernel 4, stride 2, "SAME") on the sides it meets, 1 and 3 channels:
        (4, 2, "SAME", 28, 1), (4, 2, "SAME", 14, 3), (4, 2, "SAME", 7, 3), (4, 2, "SAME", 32, 3), (4, 2, "SAME", 8, 1),
        # other paddings, kernels and strides:
        (4, 2, ((1, 1), (1, 1)), 7, 2), (4, 2, "VALID", 9, 1), (5, 2, "SAME", 7, 2), (3, 3, "VALID", 10, 1),
    ],
)  # fmt: skip
def test_space_to_depth_conv_equals_flax_conv(kernel_size, stride, padding, size, channels):
    """Same parameters, outputs, input/kernel/bias gradients and second-order gradient (of the squared input
    gradient w.r.t. the parameters, as the unrolled rule needs) as nn.Conv, in float64."""
    import flax.linen as nn

    from jaxgan.models.dcgan import SpaceToDepthConv

    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(0).standard_normal((2, size, size + 1, channels)))  # non-square too
        reference = nn.Conv(
            5, (kernel_size, kernel_size), strides=(stride, stride), padding=padding, dtype=jnp.float64,
            param_dtype=jnp.float64,
        )
        s2d = SpaceToDepthConv(5, kernel_size, stride, padding=padding, dtype=jnp.float64)
        params = reference.init(jax.random.key(1), x)
        params = jax.tree.map(lambda a: a + jnp.asarray(np.random.default_rng(2).standard_normal(a.shape)), params)
        shapes = jax.tree.map(jnp.shape, s2d.init(jax.random.key(1), x))
        assert shapes == jax.tree.map(jnp.shape, params)  # same names and shapes
        want = reference.apply(params, x)
        got = s2d.apply(params, x)
        chex.assert_type(got, jnp.float64)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)

        loss = lambda module: lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))  # noqa: E731
        first = lambda module: jax.jit(jax.grad(loss(module), argnums=(0, 1)))(params, x)  # noqa: E731
        second = lambda module: jax.jit(  # noqa: E731
            jax.grad(lambda p: jnp.sum(jax.grad(loss(module), argnums=1)(p, x) ** 2))
        )(params)
        for got_tree, want_tree in [(first(s2d), first(reference)), (second(s2d), second(reference))]:
            assert jax.tree.structure(got_tree) == jax.tree.structure(want_tree)
            for a, b in zip(jax.tree.leaves(got_tree), jax.tree.leaves(want_tree)):
                assert float(jnp.max(jnp.abs(b))) > 0.0
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3)])
def test_discriminator_equals_strided_nn_conv_discriminator(shape):
    """`space_to_depth=True` (the default) and False (strided nn.Conv layers) give the same parameter tree and
    logits (float32), and in float64 the same logits, input gradient and second-order gradient (of the squared
    input gradient w.r.t. the parameters, as the unrolled rule needs)."""
    x = _images(shape)
    variables = _init(DCGANDiscriminator(base_width=8), x)
    with jax.enable_x64(True):
        x64 = _images(shape, dtype=np.float64)
        vars64 = _init(DCGANDiscriminator(base_width=4, dtype=jnp.float64), x64, dtype=jnp.float64)

    def compute(space_to_depth):
        disc = DCGANDiscriminator(base_width=8, space_to_depth=space_to_depth)
        disc64 = DCGANDiscriminator(base_width=4, dtype=jnp.float64, space_to_depth=space_to_depth)
        assert jax.tree.map(jnp.shape, _init(disc, x)) == jax.tree.map(jnp.shape, variables)
        run = lambda module, v, images: module.apply(v, images, mutable=["batch_stats"])[0]  # noqa: E731
        logits32 = run(disc, variables, x)
        with jax.enable_x64(True):
            logit_sum = lambda params, images: jnp.sum(run(disc64, {**vars64, "params": params}, images))  # noqa: E731
            input_grad = jax.jit(jax.grad(logit_sum, argnums=1))
            second = jax.jit(jax.grad(lambda params: jnp.sum(input_grad(params, x64) ** 2)))
            return logits32, run(disc64, vars64, x64), input_grad(vars64["params"], x64), second(vars64["params"])

    got, want = compute(True), compute(False)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    assert jax.tree.structure(got[1:]) == jax.tree.structure(want[1:])
    for quantity in want[1:]:  # biases before a piecewise-linear activation get no second-order gradient
        assert max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(quantity)) > 0.0
    for a, b in zip(jax.tree.leaves(got[1:]), jax.tree.leaves(want[1:])):
        assert a.dtype == jnp.float64
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def _conv_equations(jaxpr):
    """Every conv_general_dilated equation of a jaxpr, nested jaxprs (jit, remat, custom rules) included."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                if hasattr(sub, "eqns"):
                    yield from _conv_equations(sub)
                elif hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    yield from _conv_equations(sub.jaxpr)


def _strided_or_dilated(fn, *args):
    convs = _conv_equations(jax.make_jaxpr(fn)(*args).jaxpr)
    keys = ("window_strides", "lhs_dilation", "rhs_dilation")
    return [eqn.params for eqn in convs if any(d != 1 for key in keys for d in eqn.params[key])]


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_discriminator_has_no_strided_or_dilated_convolution(shape):
    """The property that makes D fast on XLA's CPU backend: neither D's forward pass and input gradient nor the
    second-order gradient of the unrolled rule (squared input gradient w.r.t. the parameters) contains a
    strided or dilated convolution (SpaceToDepthConv leaves none at all: its stride-1 convolution is a matrix
    product); with space_to_depth=False (strided nn.Conv) there are some, so the check can fail."""
    x = _images(shape)
    variables = _init(DCGANDiscriminator(base_width=8), x)

    def traced(disc):
        def logit_sum(params, images):
            logits, _ = disc.apply({**variables, "params": params}, images, mutable=["batch_stats"])
            return jnp.sum(logits)

        def forward_and_input_grad(params, images):
            return jax.value_and_grad(logit_sum, argnums=1)(params, images)

        def second_order(params, images):
            return jax.grad(lambda p: jnp.sum(jax.grad(logit_sum, argnums=1)(p, images) ** 2))(params)

        return [_strided_or_dilated(fn, variables["params"], x) for fn in (forward_and_input_grad, second_order)]

    assert traced(DCGANDiscriminator(base_width=8)) == [[], []]
    forward, second = traced(DCGANDiscriminator(base_width=8, space_to_depth=False))
    assert forward and second


def test_infogan_networks_have_the_papers_layers_and_parameter_count():
    """Chen et al. 2016, Appendix C.1 (MNIST): G = FC 1024 - BN - FC 7x7x128 - BN - deconv 64 - BN - deconv 1;
    D = conv 64 - conv 128 - BN - FC 1024 - BN - logit, counted from that layer list (z 74 = 62 + 10 + 2)."""
    import jax
    import jax.numpy as jnp

    from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator

    count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))  # noqa: E731
    g = DCGANGenerator((28, 28, 1), base_width=64, hidden_dense=1024)
    g_vars = g.init(jax.random.key(0), jnp.zeros((2, 74)))
    expected_g = (74 * 1024 + 2 * 1024) + (1024 * 7 * 7 * 128 + 2 * 128) + (4 * 4 * 128 * 64 + 2 * 64) + (4 * 4 * 64 * 1 + 1)
    assert count(g_vars["params"]) == expected_g
    assert g.apply(g_vars, jnp.zeros((2, 74)), train=False).shape == (2, 28, 28, 1)

    d = DCGANDiscriminator(base_width=64, num_convs=2, hidden_dense=1024, info_categorical=10, info_continuous=2)
    d_vars = d.init(jax.random.key(0), jnp.zeros((2, 28, 28, 1)))
    expected_d = (4 * 4 * 1 * 64 + 64) + (4 * 4 * 64 * 128 + 2 * 128) + (7 * 7 * 128 * 1024 + 2 * 1024) + (1024 + 1)
    expected_q = (1024 * 128 + 2 * 128) + (128 * 12 + 12)
    assert count(d_vars["params"]) == expected_d + expected_q
    assert d_vars["params"]["hidden"]["kernel"].shape == (7 * 7 * 128, 1024)
    out = d.apply(d_vars, jnp.zeros((2, 28, 28, 1)), train=False)
    assert out["logits"].shape == (2,) and out["code_logits"].shape == (2, 10) and out["code_mean"].shape == (2, 2)


def _without_attention(variables):
    return {col: {k: v for k, v in tree.items() if k != "attention"} for col, tree in variables.items()}


def _with_gamma(variables, gamma):
    params = dict(variables["params"])
    params["attention"] = {**params["attention"], "gamma": jnp.asarray(gamma, jnp.float32)}
    return {**variables, "params": params}


@pytest.mark.parametrize("resolution, channels", [(7, 16), (14, 8)])
def test_generator_self_attention_at_a_chosen_resolution(resolution, channels):
    """SAGAN's block after the layer whose output side is `resolution` (28x28, base 8: 7x7x16 -> 14x14x8 -> image):
    it reads that layer's channels, starts as the identity (γ = 0: the plain G's output from the same weights) and
    changes the output once γ ≠ 0 (100: the weights are N(0, 0.02), so the block adds little at γ of order 1)."""
    z = jax.random.normal(jax.random.key(1), (4, 16))
    attended = DCGANGenerator((28, 28, 1), base_width=8, attention_resolution=resolution)
    plain = DCGANGenerator((28, 28, 1), base_width=8)
    variables = attended.init(jax.random.key(0), z)
    assert variables["params"]["attention"]["query"]["kernel"].shape == (1, 1, channels, max(1, channels // 8))
    run = lambda module, v: module.apply(v, z, train=False)  # noqa: E731
    np.testing.assert_array_equal(run(attended, variables), run(plain, _without_attention(variables)))
    moved = np.abs(np.asarray(run(attended, _with_gamma(variables, 100.0)) - run(plain, _without_attention(variables))))
    assert moved.max() > 1e-3


@pytest.mark.parametrize("norm", ["batch", "spectral"])
def test_discriminator_self_attention_at_a_chosen_resolution(norm):
    """After the conv layer whose output side is 7 (28 -> 14 -> 7 -> 4, base 8: 16 channels there); spectrally
    normalised with the rest of D under norm='spectral' (its power-iteration vectors in the model state)."""
    x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1), minval=-1.0, maxval=1.0)
    attended = DCGANDiscriminator(base_width=8, attention_resolution=7, norm=norm)
    plain = DCGANDiscriminator(base_width=8, norm=norm)
    variables = attended.init(jax.random.key(0), x)
    assert variables["params"]["attention"]["query"]["kernel"].shape == (1, 1, 16, 2)
    assert ("attention" in variables.get("batch_stats", {})) == (norm == "spectral")
    run = lambda module, v: module.apply(v, x, train=False)  # noqa: E731
    np.testing.assert_array_equal(run(attended, variables), run(plain, _without_attention(variables)))
    assert np.abs(np.asarray(run(attended, _with_gamma(variables, 100.0)) - run(plain, _without_attention(variables)))).max() > 1e-4


def test_attention_at_a_resolution_no_layer_has_is_one_line():
    with pytest.raises(ValueError) as error:
        DCGANGenerator((28, 28, 1), base_width=8, attention_resolution=28).init(jax.random.key(0), jnp.zeros((2, 16)))
    assert str(error.value) == (
        "DCGANGenerator: attention_resolution=28 matches no block output; valid resolutions for this image size: "
        "7, 14 (0: no attention)"
    )
    with pytest.raises(ValueError) as error:
        DCGANDiscriminator(base_width=8, attention_resolution=5).init(jax.random.key(0), jnp.zeros((2, 28, 28, 1)))
    assert str(error.value).startswith("DCGANDiscriminator: attention_resolution=5 matches no block output; valid "
                                       "resolutions for this image size: 4, 7, 14 (0: no attention)")  # fmt: skip


@pytest.mark.parametrize("norm, axes", [("layer", (3,)), ("layer_chw", (1, 2, 3))])
def test_layer_norm_of_the_critic_normalizes_over_its_axes_with_a_scale_and_bias_per_channel(norm, axes):
    """"layer": each position's channels; "layer_chw": all of an example's C·H·W features (the WGAN-GP authors'
    critic): (x − mean) / sqrt(var + 1e-6) · scale[c] + bias[c], checked on the captured input and output."""
    module = DCGANDiscriminator(base_width=4, norm=norm, num_convs=2)
    images = _images((8, 8, 1), batch=4)
    variables = _init(module, images, seed=3)
    ln = variables["params"]["LayerNorm_0"]
    assert ln["scale"].shape == ln["bias"].shape == (8,)  # 8 channels after the second conv
    _, captured = module.apply(variables, images, capture_intermediates=True, mutable=["intermediates"])
    x = np.asarray(captured["intermediates"]["Conv_1"]["__call__"][0], np.float64)
    y = np.asarray(captured["intermediates"]["LayerNorm_0"]["__call__"][0], np.float64)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-6) * np.asarray(ln["scale"]) + np.asarray(ln["bias"])
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    # each example alone: the same output (what the gradient penalty's per-example gradients need)
    _, alone = module.apply(variables, images[1:2], capture_intermediates=True, mutable=["intermediates"])
    np.testing.assert_allclose(alone["intermediates"]["LayerNorm_0"]["__call__"][0][0], y[1], rtol=1e-5, atol=1e-6)
