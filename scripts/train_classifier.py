r"""Trains the offline digit classifier whose features and logits give FID/KID/IS/precision-recall on digit data.

    python scripts/train_classifier.py --data=mnist_5k [--num_steps=2000] [--write_notes]
    python scripts/train_classifier.py --data=digits

Trains `jaxgan.metrics.classifier.DigitClassifier` with Adam (1e-3, batch 128, random shifts of up to 2 pixels) on
the training split only, reports its accuracy on the held-out split, and saves the parameters as an Orbax
checkpoint in jaxgan/metrics/assets/classifier_DATA/ with metadata.json (accuracy, steps, command).
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import orbax.checkpoint as ocp  # noqa: E402
from absl import app, flags  # noqa: E402

from jaxgan.data import images  # noqa: E402
from jaxgan.metrics.classifier import DigitClassifier, classifier_dir  # noqa: E402

_DATA = flags.DEFINE_enum("data", "mnist_5k", ["mnist_5k", "digits"], "Data set.")
_STEPS = flags.DEFINE_integer("num_steps", 2000, "Adam steps.")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed.")

LOADERS = {"mnist_5k": images.load_mnist_5k, "digits": images.load_digits}


def shift(key: jax.Array, x: jax.Array, max_shift: int = 2) -> jax.Array:
    """Each image rolled by a random offset in [−max_shift, max_shift]² (zero padding keeps the borders blank)."""
    pad = jnp.pad(x, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)), constant_values=-1.0)
    offsets = jax.random.randint(key, (x.shape[0], 2), 0, 2 * max_shift + 1)
    crop = lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), x.shape[1:])  # noqa: E731
    return jax.vmap(crop)(pad, offsets)


def main(argv):
    del argv
    data = LOADERS[_DATA.value]()
    train_x, train_y = images.to_model_range(jnp.asarray(data.train_images)), jnp.asarray(data.train_labels)
    test_x, test_y = images.to_model_range(jnp.asarray(data.test_images)), jnp.asarray(data.test_labels)
    model = DigitClassifier(data.num_classes)
    key = jax.random.key(_SEED.value)
    params = model.init(key, train_x[:1])["params"]
    optimizer = optax.adam(1e-3)

    def loss_fn(params, x, y):
        logits, _ = model.apply({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(params, opt_state, i):
        k = jax.random.fold_in(key, i)
        idx = jax.random.randint(k, (128,), 0, train_x.shape[0])
        x = shift(jax.random.fold_in(k, 1), train_x[idx])
        loss, grads = jax.value_and_grad(loss_fn)(params, x, train_y[idx])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    # A Python loop of the compiled step, not a lax.scan: XLA's CPU backend runs convolutions inside loops about
    # 25x slower (BUILD_NOTES.md, "Convolutions inside XLA loops on a CPU"); the calls are dispatched asynchronously.
    start = time.perf_counter()
    opt_state, losses = optimizer.init(params), []
    for i in range(_STEPS.value):
        params, opt_state, loss = step(params, opt_state, i)
        losses.append(loss)
        if (i + 1) % 200 == 0:
            print(f"step {i + 1}/{_STEPS.value}  loss {float(loss):.4f}  {time.perf_counter() - start:.0f} s", flush=True)
    losses = jnp.stack(losses)
    accuracy = float(jnp.mean(jnp.argmax(model.apply({"params": params}, test_x)[0], -1) == test_y))
    seconds = time.perf_counter() - start
    path = classifier_dir(_DATA.value)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save((path / "params").absolute(), params)
    checkpointer.wait_until_finished()
    metadata = {
        "data": _DATA.value, "num_classes": data.num_classes, "feature_dim": model.feature_dim,
        "held_out_accuracy": accuracy, "held_out_images": int(test_y.shape[0]), "num_steps": _STEPS.value,
        "final_train_loss": float(losses[-100:].mean()), "seconds": round(seconds, 1),
        "command": f"python scripts/train_classifier.py --data={_DATA.value} --num_steps={_STEPS.value}",
    }  # fmt: skip
    (path / "metadata.json").write_text(json.dumps(metadata, indent=1) + "\n")
    print(json.dumps(metadata))


if __name__ == "__main__":
    app.run(main)
