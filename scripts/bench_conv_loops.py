r"""Convolutions inside and outside XLA loops, and transposed vs sub-pixel convolutions, on this machine.

    python scripts/bench_conv_loops.py

Prints JSON lines (milliseconds per step, mean of `--repeats` calls after compilation) for:
  * a gradient step of the digit classifier (batch 128, 28×28) called from Python, and 5 of them inside
    `lax.scan`, `lax.fori_loop` and a fully unrolled `lax.scan`;
  * the kernel gradient of `nn.ConvTranspose` (64 → 32 channels, 7×7 → 14×14, stride 2) and of
    `jaxgan.models.dcgan.SubpixelConvTranspose` with the same parameters.
These are the measurements behind `config.dispatch_loop = "auto"` and `SubpixelConvTranspose` (BUILD_NOTES.md,
"Convolutions inside XLA loops on a CPU").
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan.metrics.classifier import DigitClassifier  # noqa: E402
from jaxgan.models.dcgan import SubpixelConvTranspose  # noqa: E402

_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per measurement.")


def timed(fn, *args, steps: int = 1) -> float:
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(_REPEATS.value):
        jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / _REPEATS.value / steps * 1000


def main(argv):
    del argv
    model = DigitClassifier(10)
    x, y = jnp.ones((128, 28, 28, 1)), jnp.zeros(128, jnp.int32)
    params = model.init(jax.random.key(0), x)["params"]
    grad = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, x)[0], y).mean())

    def step(p, _=None):
        return jax.tree.map(lambda a, b: a - 1e-3 * b, p, grad(p)), None

    one = jax.jit(lambda p: step(p)[0])
    rows = {
        "classifier step, called from Python": timed(one, params),
        "5 classifier steps in lax.scan": timed(jax.jit(lambda p: jax.lax.scan(step, p, None, length=5)[0]), params, steps=5),
        "5 classifier steps in lax.fori_loop": timed(jax.jit(lambda p: jax.lax.fori_loop(0, 5, lambda i, p: step(p)[0], p)), params, steps=5),
        "5 classifier steps in lax.scan(unroll=True)": timed(jax.jit(lambda p: jax.lax.scan(step, p, None, length=5, unroll=True)[0]), params, steps=5),
    }  # fmt: skip
    features = jnp.ones((128, 7, 7, 64))
    transposed = nn.ConvTranspose(32, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)
    subpixel = SubpixelConvTranspose(32, 4, 2, use_bias=False)
    kernel = transposed.init(jax.random.key(0), features)
    for name, module in (("nn.ConvTranspose", transposed), ("SubpixelConvTranspose", subpixel)):
        rows[f"{name} kernel gradient"] = timed(jax.jit(jax.grad(lambda p: jnp.sum(module.apply(p, features) ** 2))), kernel)
    for what, ms in rows.items():
        print(json.dumps({"what": what, "ms_per_step": round(ms, 1), "device": jax.devices()[0].platform, "jax": jax.__version__}))


if __name__ == "__main__":
    app.run(main)
