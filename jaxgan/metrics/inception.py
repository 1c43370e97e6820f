"""The FID Inception-v3 network in Flax: pool3 features (2048-d) and 1008 logits, as used for FID, KID and IS.

Published FID/KID/IS values are computed with one specific network: the Inception-v3 graph that TensorFlow released
on 2015-12-05 (`inception-2015-12-05.tgz`), which the reference FID code (TTUR, Heusel et al. 2017) and the
Inception Score code (Salimans et al. 2016) load. `pytorch-fid` ported that graph to PyTorch; `InceptionV3` here is
a line-by-line port of the pytorch-fid module (`fid_inception_v3()`), including the quirks in which the 2015 graph
differs from torchvision's Inception-v3 and from the paper (Szegedy et al. 2016):

  * the average pools of the A, C and first E blocks divide by the number of in-image elements
    (TF 'SAME' pooling, `count_include_pad=False` in PyTorch), not by 9;
  * the pool branch of the last E block (`Mixed_7c`) is a 3×3 *max* pool, not an average pool;
  * 1008 output classes (the 2015 graph's label set, not torchvision's 1000), no auxiliary classifier.

Every conv has no bias and is followed by batch norm (eps 1e-3, stored statistics) and ReLU. Variables are in two
collections, `params` and `batch_stats`; this module is for inference only.

Weights. No weights ship with jaxgan. Convert pytorch-fid's port of the TF weights once, with torch installed:

    wget https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
    python -c "import numpy as np, torch; sd = torch.load('pt_inception-2015-12-05-6726825d.pth', map_location='cpu');
               np.savez('pt_inception-2015-12-05.npz', **{k: v.numpy() for k, v in sd.items()})"

then `variables = load_inception_params('pt_inception-2015-12-05.npz')`. The `.npz` keys are the pytorch-fid
state-dict names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`, ..., `fc.weight`, `fc.bias`);
`convert_torch_state_dict` does the same from any mapping of those names to arrays.

Agreement with the reference TF implementation: not measured here (this repository has neither the TF graph nor
the converted weights). Expect the same small differences as pytorch-fid has: its input resize (bilinear, half-pixel
centres, which this module reproduces) is not the TF graph's old `ResizeBilinear`, and convolution arithmetic differs
between libraries; FID differences of order 0.1–1 are commonly quoted for such ports, so compare only numbers
computed with the same implementation, at the same sample count.

References:
  Szegedy, Vanhoucke, Ioffe, Shlens, Wojna. "Rethinking the Inception architecture for computer vision."
  CVPR 2016. https://arxiv.org/abs/1512.00567

  Heusel, Ramsauer, Unterthiner, Nessler, Hochreiter. "GANs trained by a two time-scale update rule converge to
  a local Nash equilibrium." NeurIPS 2017. https://arxiv.org/abs/1706.08500 (FID; code: github.com/bioinf-jku/TTUR)

  Seitzer. "pytorch-fid: FID score for PyTorch." https://github.com/mseitzer/pytorch-fid
"""

from __future__ import annotations

import functools
import os
import pathlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

__all__ = [
    "INCEPTION_SIZE",
    "BasicConv2d",
    "InceptionOutputs",
    "InceptionV3",
    "avg_pool_excluding_padding",
    "convert_torch_state_dict",
    "inception_features",
    "load_inception_params",
    "resize_bilinear",
]

# Input side length of the network; the 2015 graph and every FID implementation resize to it.
INCEPTION_SIZE = 299
NUM_CLASSES = 1008
FEATURE_DIM = 2048

PrecisionLike = Any  # None, a `jax.lax.Precision`, or a pair of them, as `nn.Conv` accepts


class InceptionOutputs(NamedTuple):
    features: Any  # [B, 2048] pool3 features (global average of Mixed_7c), >= 0
    logits: Any  # [B, 1008] logits of the 2015 graph's classifier


def resize_bilinear(images: jnp.ndarray, size: int = INCEPTION_SIZE) -> jnp.ndarray:
    """Bilinear resize of `[B, H, W, C]` images to `[B, size, size, C]` with half-pixel centres and no
    antialiasing: PyTorch's `F.interpolate(mode='bilinear', align_corners=False)`, which pytorch-fid uses.

    `jax.image.resize` antialiases when downsampling by default (it widens the kernel), which torch does not; that
    would change features of images larger than 299 px, so it is switched off.
    """
    b, _, _, c = images.shape
    return jax.image.resize(images, (b, size, size, c), "bilinear", antialias=False)


def avg_pool_excluding_padding(x: jnp.ndarray, window: int = 3) -> jnp.ndarray:
    """Stride-1 `window`×`window` average pool of `[B, H, W, C]` with 'SAME' zero padding, dividing each sum by
    the number of in-image elements under the window (TF's 'SAME' average pool, PyTorch's
    `avg_pool2d(..., count_include_pad=False)`): a corner output of a 3×3 pool is the mean of 4 values, not their
    sum over 9. The pool branches of the 2015 graph's A, C and E blocks use it."""
    pad = window // 2
    return nn.avg_pool(x, (window, window), (1, 1), padding=((pad, pad), (pad, pad)), count_include_pad=False)


def _pad2(padding: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    return ((padding[0], padding[0]), (padding[1], padding[1]))


class BasicConv2d(nn.Module):
    """Conv without bias → batch norm (eps 1e-3, stored statistics) → ReLU: torchvision's `BasicConv2d`, with
    PyTorch's symmetric integer `padding` (rows, cols). Submodules are named `conv` and `bn` as in PyTorch."""

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    precision: PrecisionLike = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = nn.Conv(
            self.features,
            self.kernel_size,
            self.strides,
            padding=_pad2(self.padding),
            use_bias=False,
            precision=self.precision,
            name="conv",
        )(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


class FIDInceptionA(nn.Module):
    """35×35 block (Mixed_5b-d): 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg-pool (padding excluded)→1×1."""

    pool_features: int
    precision: PrecisionLike = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b1 = conv(64, (1, 1), name="branch1x1")(x)
        b5 = conv(48, (1, 1), name="branch5x5_1")(x)
        b5 = conv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
        b3 = conv(64, (1, 1), name="branch3x3dbl_1")(x)
        b3 = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
        b3 = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
        bp = conv(self.pool_features, (1, 1), name="branch_pool")(avg_pool_excluding_padding(x))
        # Channel order is the PyTorch concatenation order; the next block's weights depend on it.
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """35→17 reduction (Mixed_6a): 3×3/2 | 1×1→3×3→3×3/2 | 3×3/2 max pool."""

    precision: PrecisionLike = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b3 = conv(384, (3, 3), strides=(2, 2), name="branch3x3")(x)
        bd = conv(64, (1, 1), name="branch3x3dbl_1")(x)
        bd = conv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = conv(96, (3, 3), strides=(2, 2), name="branch3x3dbl_3")(bd)
        bp = nn.max_pool(x, (3, 3), (2, 2))
        return jnp.concatenate([b3, bd, bp], axis=-1)


class FIDInceptionC(nn.Module):
    """17×17 block (Mixed_6b-e) with factorised 7×7 convs (1×7, 7×1) and an avg pool that excludes padding."""

    channels_7x7: int
    precision: PrecisionLike = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        c7 = self.channels_7x7
        b1 = conv(192, (1, 1), name="branch1x1")(x)
        b7 = conv(c7, (1, 1), name="branch7x7_1")(x)
        b7 = conv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = conv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = conv(c7, (1, 1), name="branch7x7dbl_1")(x)
        bd = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = conv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = conv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        bp = conv(192, (1, 1), name="branch_pool")(avg_pool_excluding_padding(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """17→8 reduction (Mixed_7a): 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | 3×3/2 max pool."""

    precision: PrecisionLike = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b3 = conv(192, (1, 1), name="branch3x3_1")(x)
        b3 = conv(320, (3, 3), strides=(2, 2), name="branch3x3_2")(b3)
        b7 = conv(192, (1, 1), name="branch7x7x3_1")(x)
        b7 = conv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = conv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = conv(192, (3, 3), strides=(2, 2), name="branch7x7x3_4")(b7)
        bp = nn.max_pool(x, (3, 3), (2, 2))
        return jnp.concatenate([b3, b7, bp], axis=-1)


class FIDInceptionE(nn.Module):
    """8×8 block (Mixed_7b, Mixed_7c) with split 1×3 / 3×1 branches. `max_pool=True` is the 2015 graph's Mixed_7c,
    whose pool branch is a padded 3×3 max pool (pytorch-fid's `FIDInceptionE_2`); otherwise an average pool that
    excludes padding (`FIDInceptionE_1`)."""

    max_pool: bool = False
    precision: PrecisionLike = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        conv = functools.partial(BasicConv2d, precision=self.precision)
        b1 = conv(320, (1, 1), name="branch1x1")(x)
        b3 = conv(384, (1, 1), name="branch3x3_1")(x)
        b3 = jnp.concatenate(
            [
                conv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                conv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3),
            ],
            axis=-1,
        )
        bd = conv(448, (1, 1), name="branch3x3dbl_1")(x)
        bd = conv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate(
            [
                conv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                conv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd),
            ],
            axis=-1,
        )
        if self.max_pool:
            # -inf padding (reduce_window's max identity), as PyTorch's padded max_pool2d.
            pooled = nn.max_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)))
        else:
            pooled = avg_pool_excluding_padding(x)
        bp = conv(192, (1, 1), name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
    """The FID Inception-v3 (the TF 2015-12-05 graph as ported by pytorch-fid), inference only.

    Input: images `[B, H, W, C]`, C = 3 (RGB) or 1 (grey, repeated to RGB), with values in [−1, 1], jaxgan's model
    range, or in [0, 1] with `zero_one_input=True` (mapped by x ↦ 2x − 1, as pytorch-fid's `normalize_input`).
    With `resize_input` (the default, as in every FID implementation) images are first resized to 299×299 by
    `resize_bilinear`; without it, any H, W >= 75 works (the smallest size with a non-empty 8×8-stage map).

    Returns `InceptionOutputs(features [B, 2048], logits [B, 1008])`: the global average of the last block
    (the graph's `pool_3`, used for FID/KID) and the classifier logits (`softmax/logits`, used for the IS).

    Convs and the final dense layer use `precision` (default HIGHEST): GPUs/TPUs otherwise run float32 convs in
    TF32/bfloat16 passes, whose ~1e-3 relative feature error shifts FID; pass None for speed when that is fine.
    Apply with `model.apply(variables, images)`, variables = {'params', 'batch_stats'} from
    `load_inception_params`.
    """

    resize_input: bool = True
    zero_one_input: bool = False
    precision: PrecisionLike = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> InceptionOutputs:
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"images must be [batch, height, width, 3 or 1], got shape {images.shape}")
        x = jnp.asarray(images, jnp.float32)
        if x.shape[-1] == 1:
            x = jnp.repeat(x, 3, axis=-1)
        if self.resize_input and x.shape[1:3] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = resize_bilinear(x, INCEPTION_SIZE)
        if self.zero_one_input:
            x = 2.0 * x - 1.0

        conv = functools.partial(BasicConv2d, precision=self.precision)
        p = {"precision": self.precision}
        x = conv(32, (3, 3), strides=(2, 2), name="Conv2d_1a_3x3")(x)  # [B, 149, 149, 32]
        x = conv(32, (3, 3), name="Conv2d_2a_3x3")(x)  # [B, 147, 147, 32]
        x = conv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)  # [B, 147, 147, 64]
        x = nn.max_pool(x, (3, 3), (2, 2))  # [B, 73, 73, 64]
        x = conv(80, (1, 1), name="Conv2d_3b_1x1")(x)
        x = conv(192, (3, 3), name="Conv2d_4a_3x3")(x)  # [B, 71, 71, 192]
        x = nn.max_pool(x, (3, 3), (2, 2))  # [B, 35, 35, 192]
        x = FIDInceptionA(32, **p, name="Mixed_5b")(x)  # [B, 35, 35, 256]
        x = FIDInceptionA(64, **p, name="Mixed_5c")(x)  # [B, 35, 35, 288]
        x = FIDInceptionA(64, **p, name="Mixed_5d")(x)
        x = InceptionB(**p, name="Mixed_6a")(x)  # [B, 17, 17, 768]
        x = FIDInceptionC(128, **p, name="Mixed_6b")(x)
        x = FIDInceptionC(160, **p, name="Mixed_6c")(x)
        x = FIDInceptionC(160, **p, name="Mixed_6d")(x)
        x = FIDInceptionC(192, **p, name="Mixed_6e")(x)
        x = InceptionD(**p, name="Mixed_7a")(x)  # [B, 8, 8, 1280]
        x = FIDInceptionE(max_pool=False, **p, name="Mixed_7b")(x)  # [B, 8, 8, 2048]
        x = FIDInceptionE(max_pool=True, **p, name="Mixed_7c")(x)
        features = jnp.mean(x, axis=(1, 2))  # [B, 2048]
        logits = nn.Dense(NUM_CLASSES, precision=self.precision, name="fc")(features)
        return InceptionOutputs(features, logits)


# ------------------------------------------------------------------------------------------ weights from PyTorch

# Buffers of torch's BatchNorm2d that inference does not use; accepted and ignored when present.
_IGNORED_SUFFIXES = (".num_batches_tracked",)


@functools.lru_cache(maxsize=1)
def _flat_variable_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
    """Flax variable path -> shape, from an abstract init (no compute, no memory)."""
    abstract = jax.eval_shape(
        InceptionV3(resize_input=False).init,
        jax.random.key(0),
        jax.ShapeDtypeStruct((1, INCEPTION_SIZE, INCEPTION_SIZE, 3), jnp.float32),
    )
    return {path: tuple(leaf.shape) for path, leaf in traverse_util.flatten_dict(abstract).items()}


def _torch_name_and_layout(path: tuple[str, ...]) -> tuple[str, tuple[int, ...] | None]:
    """(pytorch-fid state-dict name, axis permutation torch -> Flax or None) of a Flax variable path such as
    ('params', 'Mixed_5b', 'branch1x1', 'conv', 'kernel')."""
    collection, *modules, leaf = path
    prefix = ".".join(modules)
    if modules[-1] == "conv":  # torch OIHW -> Flax HWIO
        return f"{prefix}.weight", (2, 3, 1, 0)
    if modules[-1] == "fc":  # torch Linear [out, in] -> Flax Dense [in, out]
        return (f"{prefix}.weight", (1, 0)) if leaf == "kernel" else (f"{prefix}.bias", None)
    suffix = {
        ("params", "scale"): "weight",
        ("params", "bias"): "bias",
        ("batch_stats", "mean"): "running_mean",
        ("batch_stats", "var"): "running_var",
    }[(collection, leaf)]
    return f"{prefix}.{suffix}", None


def convert_torch_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Flax variables `{'params': ..., 'batch_stats': ...}` of `InceptionV3` from a pytorch-fid state dict
    (names as in `pt_inception-2015-12-05-6726825d.pth`, values as numpy arrays or anything `np.asarray` reads).

    Conv kernels go from torch's [out, in, kh, kw] to Flax's [kh, kw, in, out], the fc weight from [out, in] to
    [in, out]; batch norm's weight/bias/running_mean/running_var become scale/bias/mean/var. Values are float32.
    `*.num_batches_tracked` buffers are ignored. Any other mismatch raises a one-line ValueError naming the first
    offending key: a missing key or a wrong shape (in network order), then an unexpected key (in sorted order;
    torchvision's ImageNet Inception, with `AuxLogits.*` and 1000 classes, is rejected this way).
    """
    flat: dict[tuple[str, ...], jnp.ndarray] = {}
    used: set[str] = set()
    for path, shape in _flat_variable_shapes().items():
        name, perm = _torch_name_and_layout(path)
        torch_shape = shape if perm is None else tuple(shape[i] for i in np.argsort(perm))
        if name not in state_dict:
            raise ValueError(f"Inception state dict is missing {name!r} (expected pytorch-fid FID Inception names)")
        value = np.asarray(state_dict[name], dtype=np.float32)
        if value.shape != torch_shape:
            raise ValueError(
                f"Inception state dict entry {name!r} has shape {value.shape}, expected {torch_shape} (PyTorch layout)"
            )
        flat[path] = jnp.asarray(value if perm is None else np.transpose(value, perm))
        used.add(name)
    for name in sorted(state_dict):
        if name not in used and not name.endswith(_IGNORED_SUFFIXES):
            raise ValueError(f"Inception state dict has unexpected key {name!r} (not part of the FID Inception-v3)")
    return traverse_util.unflatten_dict(flat)


def load_inception_params(path: str | os.PathLike) -> dict[str, Any]:
    """Flax variables of `InceptionV3` from an `.npz` of the pytorch-fid state dict (see the module docstring for
    the one-line conversion from `pt_inception-2015-12-05-6726825d.pth`). Errors are one-line: FileNotFoundError
    for a missing file, ValueError for a `.pth` given directly (torch is not a dependency) and for mismatched keys
    or shapes (`convert_torch_state_dict`)."""
    path = pathlib.Path(path)
    if path.suffix in (".pth", ".pt"):
        raise ValueError(
            f"{path} is a PyTorch checkpoint; convert it to .npz first (see jaxgan.metrics.inception's docstring)"
        )
    if not path.exists():
        raise FileNotFoundError(f"no Inception weights at {path}; see jaxgan.metrics.inception for how to make them")
    with np.load(path, allow_pickle=False) as archive:
        return convert_torch_state_dict({name: archive[name] for name in archive.files})


@functools.partial(jax.jit, static_argnames="model")
def _apply(model: InceptionV3, variables: Mapping[str, Any], images: jnp.ndarray) -> InceptionOutputs:
    return model.apply(variables, images)


def inception_features(
    variables: Mapping[str, Any],
    images: Any,
    batch_size: int = 100,
    model: InceptionV3 | None = None,
) -> InceptionOutputs:
    """`InceptionOutputs(features [N, 2048], logits [N, 1008])` as numpy float32 arrays, for `[N, H, W, C]`
    images (numpy or jax, in [−1, 1] unless `model` says otherwise) evaluated `batch_size` at a time.

    A python loop over chunks of one jitted forward pass: the last chunk is zero-padded to `batch_size`, so
    there is a single compilation per (model, batch_size, image shape), and chunks are dispatched
    asynchronously, so the host slices the next chunk while the device works. Memory on device is one chunk of
    299×299 activations plus the N × 3056 outputs. `model` defaults to `InceptionV3()`.
    """
    model = InceptionV3() if model is None else model
    n = images.shape[0]
    if n == 0:
        raise ValueError("inception_features needs at least one image")
    batch_size = min(batch_size, n)
    outputs = []
    for start in range(0, n, batch_size):
        chunk = jnp.asarray(images[start : start + batch_size])
        valid = chunk.shape[0]
        if valid < batch_size:
            chunk = jnp.pad(chunk, ((0, batch_size - valid),) + ((0, 0),) * (chunk.ndim - 1))
        out = _apply(model, variables, chunk)
        outputs.append((out.features[:valid], out.logits[:valid]))
    features = np.concatenate([np.asarray(f) for f, _ in outputs])
    logits = np.concatenate([np.asarray(l) for _, l in outputs])
    return InceptionOutputs(features, logits)
