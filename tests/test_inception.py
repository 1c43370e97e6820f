"""Tests for `jaxgan.metrics.inception`: the FID Inception-v3 port, its PyTorch-weight converter and its quirks.

No real weights are used (the repository has none): the architecture is checked against a layer table written out
here from the published PyTorch definitions (torchvision's `Inception3` patched by pytorch-fid's
`fid_inception_v3`), and the converter against random weights in the PyTorch layout.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxgan.metrics.inception import (
    BasicConv2d,
    InceptionV3,
    avg_pool_excluding_padding,
    convert_torch_state_dict,
    inception_features,
    load_inception_params,
    resize_bilinear,
)

# One compiled full-size forward pass (batch 1, a 32x32 input resized to 299 inside), shared by the tests; it also
# returns every submodule's output, for the wiring checks.
_forward_capturing = jax.jit(lambda v, x: InceptionV3().apply(v, x, capture_intermediates=True))
IMAGE_SIZE = 32


def _forward(variables, images):
    return _forward_capturing(variables, images)[0]


# ------------------------------------------------------------------ the published architecture, as a layer table
# (name, out_channels, in_channels, kh, kw) of every BasicConv2d, from torchvision's InceptionA-E definitions
# with the channel counts of `Inception3.__init__` (pytorch-fid replaces blocks but keeps their layers).


def _block_a(p: str, cin: int, pool: int) -> list:
    return [
        (f"{p}.branch1x1", 64, cin, 1, 1),
        (f"{p}.branch5x5_1", 48, cin, 1, 1),
        (f"{p}.branch5x5_2", 64, 48, 5, 5),
        (f"{p}.branch3x3dbl_1", 64, cin, 1, 1),
        (f"{p}.branch3x3dbl_2", 96, 64, 3, 3),
        (f"{p}.branch3x3dbl_3", 96, 96, 3, 3),
        (f"{p}.branch_pool", pool, cin, 1, 1),
    ]


def _block_b(p: str, cin: int) -> list:
    return [
        (f"{p}.branch3x3", 384, cin, 3, 3),
        (f"{p}.branch3x3dbl_1", 64, cin, 1, 1),
        (f"{p}.branch3x3dbl_2", 96, 64, 3, 3),
        (f"{p}.branch3x3dbl_3", 96, 96, 3, 3),
    ]


def _block_c(p: str, cin: int, c7: int) -> list:
    return [
        (f"{p}.branch1x1", 192, cin, 1, 1),
        (f"{p}.branch7x7_1", c7, cin, 1, 1),
        (f"{p}.branch7x7_2", c7, c7, 1, 7),
        (f"{p}.branch7x7_3", 192, c7, 7, 1),
        (f"{p}.branch7x7dbl_1", c7, cin, 1, 1),
        (f"{p}.branch7x7dbl_2", c7, c7, 7, 1),
        (f"{p}.branch7x7dbl_3", c7, c7, 1, 7),
        (f"{p}.branch7x7dbl_4", c7, c7, 7, 1),
        (f"{p}.branch7x7dbl_5", 192, c7, 1, 7),
        (f"{p}.branch_pool", 192, cin, 1, 1),
    ]


def _block_d(p: str, cin: int) -> list:
    return [
        (f"{p}.branch3x3_1", 192, cin, 1, 1),
        (f"{p}.branch3x3_2", 320, 192, 3, 3),
        (f"{p}.branch7x7x3_1", 192, cin, 1, 1),
        (f"{p}.branch7x7x3_2", 192, 192, 1, 7),
        (f"{p}.branch7x7x3_3", 192, 192, 7, 1),
        (f"{p}.branch7x7x3_4", 192, 192, 3, 3),
    ]


def _block_e(p: str, cin: int) -> list:
    return [
        (f"{p}.branch1x1", 320, cin, 1, 1),
        (f"{p}.branch3x3_1", 384, cin, 1, 1),
        (f"{p}.branch3x3_2a", 384, 384, 1, 3),
        (f"{p}.branch3x3_2b", 384, 384, 3, 1),
        (f"{p}.branch3x3dbl_1", 448, cin, 1, 1),
        (f"{p}.branch3x3dbl_2", 384, 448, 3, 3),
        (f"{p}.branch3x3dbl_3a", 384, 384, 1, 3),
        (f"{p}.branch3x3dbl_3b", 384, 384, 3, 1),
        (f"{p}.branch_pool", 192, cin, 1, 1),
    ]


TORCH_CONVS = [
    ("Conv2d_1a_3x3", 32, 3, 3, 3),
    ("Conv2d_2a_3x3", 32, 32, 3, 3),
    ("Conv2d_2b_3x3", 64, 32, 3, 3),
    ("Conv2d_3b_1x1", 80, 64, 1, 1),
    ("Conv2d_4a_3x3", 192, 80, 3, 3),
    *_block_a("Mixed_5b", 192, 32),
    *_block_a("Mixed_5c", 256, 64),
    *_block_a("Mixed_5d", 288, 64),
    *_block_b("Mixed_6a", 288),
    *_block_c("Mixed_6b", 768, 128),
    *_block_c("Mixed_6c", 768, 160),
    *_block_c("Mixed_6d", 768, 160),
    *_block_c("Mixed_6e", 768, 192),
    *_block_d("Mixed_7a", 768),
    *_block_e("Mixed_7b", 1280),
    *_block_e("Mixed_7c", 2048),
]
FC_IN, FC_OUT = 2048, 1008


def _torch_shapes() -> dict[str, tuple[int, ...]]:
    """pytorch-fid state-dict name -> shape (PyTorch layout), without the ignored num_batches_tracked buffers."""
    shapes = {}
    for name, o, i, kh, kw in TORCH_CONVS:
        shapes[f"{name}.conv.weight"] = (o, i, kh, kw)
        for buffer in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{buffer}"] = (o,)
    shapes["fc.weight"] = (FC_OUT, FC_IN)
    shapes["fc.bias"] = (FC_OUT,)
    return shapes


# ------------------------------------------------------------------ random variables and their PyTorch state dict


@pytest.fixture(scope="module")
def variables() -> dict:
    return random_variables()


def random_variables() -> dict:
    """Random Flax variables in the structure of `InceptionV3.init`, scaled so that activations stay O(1)
    through 94 layers; batch-norm statistics are random too, so that swapping mean/var or scale/bias shows."""
    rng = np.random.default_rng(0)
    abstract = jax.eval_shape(InceptionV3().init, jax.random.key(0), jnp.zeros((1, 75, 75, 3)))
    flat = {}
    for path, leaf in traverse_util.flatten_dict(abstract).items():
        shape, kind = leaf.shape, path[-1]
        if kind == "kernel":
            value = rng.normal(size=shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
        elif kind in ("scale", "var"):
            value = rng.uniform(0.5, 1.5, size=shape)
        else:  # conv-bn bias, fc bias, running mean
            value = rng.normal(size=shape) * 0.1
        flat[path] = jnp.asarray(value, jnp.float32)
    return traverse_util.unflatten_dict(flat)


def to_torch_state_dict(variables: dict) -> dict[str, np.ndarray]:
    """The inverse of the converter, written independently: Flax path -> pytorch-fid name and layout."""
    torch_leaf = {
        ("params", "kernel"): "weight",
        ("params", "scale"): "weight",
        ("params", "bias"): "bias",
        ("batch_stats", "mean"): "running_mean",
        ("batch_stats", "var"): "running_var",
    }
    state = {}
    for path, value in traverse_util.flatten_dict(variables).items():
        collection, *modules, leaf = path
        value = np.asarray(value)
        if leaf == "kernel":
            # Flax conv HWIO -> torch OIHW; Flax dense [in, out] -> torch [out, in].
            value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
        state[".".join(modules) + "." + torch_leaf[(collection, leaf)]] = value
    for name, *_ in TORCH_CONVS:
        # torch's BatchNorm2d saves this buffer; the converter must tolerate it.
        state[f"{name}.bn.num_batches_tracked"] = np.array(0, np.int64)
    return state


@pytest.fixture(scope="module")
def state_dict(variables) -> dict[str, np.ndarray]:
    return to_torch_state_dict(variables)


def _images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def full_pass(variables):
    """(outputs, intermediates) of one full-size forward pass of one random image."""
    out, state = _forward_capturing(variables, _images(1))
    return out, state["intermediates"]


# ------------------------------------------------------------------------------------------------ architecture


def test_parameter_count_matches_the_published_architecture(variables):
    expected = sum(o * i * kh * kw + 2 * o for _, o, i, kh, kw in TORCH_CONVS) + FC_IN * FC_OUT + FC_OUT
    # Cross-check of the table with a published figure: torchvision's inception_v3 (1000 classes, with the
    # auxiliary classifier: conv0 1x1 768->128, conv1 5x5 128->768, fc 768->1000) has 27,161,264 parameters.
    aux = (768 * 128 + 2 * 128) + (128 * 768 * 25 + 2 * 768) + (768 * 1000 + 1000)
    assert expected - (FC_IN * 8 + 8) + aux == 27_161_264
    assert expected == 23_850_960

    def count(tree) -> int:
        return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))

    assert count(variables["params"]) == expected
    assert count(variables["batch_stats"]) == 2 * sum(o for _, o, *_ in TORCH_CONVS)


def test_full_size_output_shapes_and_ranges(full_pass):
    out, _ = full_pass
    chex.assert_shape(out.features, (1, 2048))
    chex.assert_shape(out.logits, (1, 1008))
    chex.assert_tree_all_finite(out)
    # pool3 is the average of post-ReLU maps; random weights must still give a non-degenerate feature vector.
    assert float(jnp.min(out.features)) >= 0.0 and float(jnp.max(out.features)) > 0.0


def test_wrong_channel_count_is_rejected(variables):
    with pytest.raises(ValueError, match="3 or 1"):
        InceptionV3().apply(variables, jnp.zeros((1, 32, 32, 2)))


def test_inception_features_chunks_and_pads_like_single_image_passes(variables):
    images = _images(3, seed=2)
    features, logits = inception_features(variables, images, batch_size=2)  # chunks of 2, last one padded
    chex.assert_shape(features, (3, 2048))
    chex.assert_shape(logits, (3, 1008))
    for k in range(3):
        ref = _forward(variables, images[k : k + 1])
        np.testing.assert_allclose(features[k], ref.features[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(logits[k], ref.logits[0], rtol=1e-4, atol=1e-4)


# -------------------------------------------------------------------------------------------------- converter


def test_variable_names_and_shapes_are_pytorch_fids(state_dict):
    got = {k: v.shape for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    assert got == _torch_shapes()


def test_npz_round_trip_restores_variables_and_outputs(variables, state_dict, tmp_path):
    path = tmp_path / "pt_inception.npz"
    np.savez(path, **state_dict)
    loaded = load_inception_params(path)
    chex.assert_trees_all_equal(loaded, variables)
    image = _images(1, seed=3)
    chex.assert_trees_all_equal(_forward(loaded, image), _forward(variables, image))


def _one_line_error(fn, key: str) -> None:
    with pytest.raises(ValueError) as info:
        fn()
    message = str(info.value)
    assert repr(key) in message and "\n" not in message, message


def test_missing_key_in_npz_is_a_one_line_error(state_dict, tmp_path):
    key = "Mixed_6c.branch7x7dbl_3.bn.running_var"
    path = tmp_path / "missing.npz"
    np.savez(path, **{k: v for k, v in state_dict.items() if k != key})
    _one_line_error(lambda: load_inception_params(path), key)


@pytest.mark.parametrize(
    "key, shape",
    [
        ("Mixed_7b.branch3x3_2a.conv.weight", (384, 384, 3, 1)),  # kernel H/W swapped
        ("Conv2d_1a_3x3.conv.weight", (3, 32, 3, 3)),  # in/out swapped
        ("fc.weight", (1000, 2048)),  # torchvision's ImageNet head
    ],
)
def test_wrong_shape_is_a_one_line_error(state_dict, key, shape):
    bad = dict(state_dict, **{key: np.zeros(shape, np.float32)})
    _one_line_error(lambda: convert_torch_state_dict(bad), key)


def test_unexpected_key_is_a_one_line_error(state_dict):
    key = "AuxLogits.fc.weight"
    _one_line_error(lambda: convert_torch_state_dict(dict(state_dict, **{key: np.zeros((1008, 768))})), key)


def test_pth_and_missing_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="convert it to .npz"):
        load_inception_params(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    with pytest.raises(FileNotFoundError):
        load_inception_params(tmp_path / "absent.npz")


# ---------------------------------------------------------------------------------------- layer-level numerics


def _basic_conv_reference(x, w_oihw, gamma, beta, mean, var, stride, padding):
    """conv (no bias, torch OIHW weights, symmetric zero padding) -> BN(eps 1e-3) -> ReLU, in float64 numpy."""
    (sh, sw), (ph, pw) = stride, padding
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    o, _, kh, kw = w_oihw.shape
    ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], ho, wo, o))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw, :]
            out += np.einsum("bhwc,oc->bhwo", patch, w_oihw[:, :, i, j].astype(np.float64))
    return np.maximum((out - mean) / np.sqrt(var + 1e-3) * gamma + beta, 0.0)


@pytest.mark.parametrize(
    "name, kernel, stride, padding, input_shape",
    [
        ("Conv2d_1a_3x3", (3, 3), (2, 2), (0, 0), (2, 11, 9, 3)),
        ("Mixed_6b.branch7x7_3", (7, 1), (1, 1), (3, 0), (1, 9, 8, 128)),  # non-square kernel, 128 -> 192
    ],
)
def test_basic_conv_matches_a_torch_layout_reference(state_dict, name, kernel, stride, padding, input_shape):
    converted = convert_torch_state_dict(state_dict)
    layer_vars = {c: converted[c] for c in ("params", "batch_stats")}
    for part in name.split("."):
        layer_vars = {c: v[part] for c, v in layer_vars.items()}
    w = state_dict[f"{name}.conv.weight"]
    layer = BasicConv2d(w.shape[0], kernel, stride, padding)
    x = np.random.default_rng(4).normal(size=input_shape).astype(np.float32)

    got = layer.apply(layer_vars, x)
    bn = {b: state_dict[f"{name}.bn.{b}"].astype(np.float64) for b in ("weight", "bias", "running_mean", "running_var")}
    ref = _basic_conv_reference(x, w, bn["weight"], bn["bias"], bn["running_mean"], bn["running_var"], stride, padding)
    assert (ref > 0).any() and (ref == 0).any()  # both sides of the ReLU are exercised
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def _pool3x3_reference(x: np.ndarray, kind: str) -> np.ndarray:
    """Stride-1 3x3 pool over the in-image part of each window: 'avg' (count_include_pad=False) or 'max'."""
    out = np.zeros(x.shape)
    for h in range(x.shape[1]):
        for w in range(x.shape[2]):
            window = x[:, max(h - 1, 0) : h + 2, max(w - 1, 0) : w + 2]
            out[:, h, w] = window.mean(axis=(1, 2)) if kind == "avg" else window.max(axis=(1, 2))
    return out


@pytest.mark.parametrize(
    "block, previous, pool",
    [
        ("Mixed_5c", "Mixed_5b", "avg"),  # A
        ("Mixed_6b", "Mixed_6a", "avg"),  # C
        ("Mixed_7b", "Mixed_7a", "avg"),  # first E
        ("Mixed_7c", "Mixed_7b", "max"),  # last E: the 2015 graph's max pool
    ],
)
def test_pool_branches_are_wired_as_in_the_2015_graph(full_pass, state_dict, block, previous, pool):
    _, inter = full_pass
    x = np.asarray(inter[previous]["__call__"][0], np.float64)  # the block's input
    out = np.asarray(inter[block]["__call__"][0])
    branch = np.asarray(inter[block]["branch_pool"]["__call__"][0])
    # The pool branch comes last in the concatenation (the next block's weights depend on the order).
    np.testing.assert_array_equal(out[..., -branch.shape[-1] :], branch)
    name = f"{block}.branch_pool"
    bn = [state_dict[f"{name}.bn.{b}"].astype(np.float64) for b in ("weight", "bias", "running_mean", "running_var")]
    ref = _basic_conv_reference(_pool3x3_reference(x, pool), state_dict[f"{name}.conv.weight"], *bn, (1, 1), (0, 0))
    np.testing.assert_allclose(branch, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


def test_last_block_concatenates_branches_in_pytorch_order(full_pass):
    _, inter = full_pass
    block = inter["Mixed_7c"]
    parts = ["branch1x1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"]
    expected = np.concatenate([np.asarray(block[p]["__call__"][0]) for p in parts], axis=-1)
    np.testing.assert_array_equal(np.asarray(block["__call__"][0]), expected)


def test_average_pool_excludes_padding():
    x = np.random.default_rng(5).normal(size=(2, 5, 6, 3)).astype(np.float32)
    ref = np.zeros_like(x, dtype=np.float64)
    for h in range(5):
        for w in range(6):
            ref[:, h, w] = x[:, max(h - 1, 0) : h + 2, max(w - 1, 0) : w + 2].mean(axis=(1, 2))
    got = np.asarray(avg_pool_excluding_padding(jnp.asarray(x)))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # The corner is a mean over 4 values, not a sum over 9: the count_include_pad=True pool differs there.
    np.testing.assert_allclose(got[:, 0, 0], x[:, :2, :2].mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got[:, 0, 0], x[:, :2, :2].sum(axis=(1, 2)) / 9)


def _torch_bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Interpolation matrix of `F.interpolate(mode='bilinear', align_corners=False)` along one axis."""
    m = np.zeros((n_out, n_in))
    for d in range(n_out):
        src = max((d + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        m[d, i0] += 1.0 - lam
        m[d, i1] += lam
    return m


@pytest.mark.parametrize("shape, size", [((1, 5, 7, 2), 12), ((2, 13, 17, 1), 5)])  # up- and downsampling
def test_resize_matches_torch_bilinear_without_antialiasing(shape, size):
    x = np.random.default_rng(6).normal(size=shape)
    rows, cols = _torch_bilinear_matrix(shape[1], size), _torch_bilinear_matrix(shape[2], size)
    ref = np.einsum("oh,bhwc,pw->bopc", rows, x, cols)
    got = np.asarray(resize_bilinear(jnp.asarray(x, jnp.float32), size))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
