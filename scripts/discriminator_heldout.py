r"""How a saved run's D judges held-out real images: D's overfitting to the training images (Karras et al. 2020).

    python scripts/discriminator_heldout.py --workdirs=DIR[,DIR...] [--steps=1000,5000] [--num_batches=20]

A D that separates real from fake almost perfectly (its loss near 0) either has learned what real images look like
or has memorised the training images. The two differ on real images it never saw: the held-out split. For each
run and each of its checkpoints (default: all that are kept) this reads D's logits, in training mode as the
training step calls it (batch norm on each batch's own statistics), on `num_batches` batches of the run's batch
size each of

* training images, drawn as the run draws them (`Dataset.sample`; Stacked MNIST: three training digits),
* held-out images, drawn the same way from the held-out split (Stacked MNIST: three held-out digits),
* G's samples,

and prints the mean D(x) = sigmoid(logit) of each, and ADA's overfitting heuristic (Karras et al. 2020, "Training
Generative Adversarial Networks with Limited Data", Section 2.1, on logits):

    r_v = (E[D_train] − E[D_held-out]) / (E[D_train] − E[D_generated])

0 when D rates held-out images as it rates the training images, 1 when it rates them as it rates G's samples.
A second line per checkpoint reads the same draws two other ways: one batch of half training images and half
G's samples in one call (a D with batch norm that separates all-real from all-fake batches by their statistics,
rather than sample by sample, stops separating there), and D in evaluation mode (batch norm's running averages).
Only for unconditional image runs (a D that takes labels would need the held-out labels' conditioning).
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan.config import ConfigError  # noqa: E402
from jaxgan.train import deleted_since_listed  # noqa: E402
from scripts.notes import load_run, run_script  # noqa: E402

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Workdirs of unconditional image runs.", required=True)
_STEPS = flags.DEFINE_list("steps", None, "Checkpoints to read (default: every checkpoint each run keeps).")
_NUM_BATCHES = flags.DEFINE_integer("num_batches", 20, "Batches of each kind (the run's batch size).", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Draws the batches (the same for every run and step).", lower_bound=0)
_JSON = flags.DEFINE_string("json", None, "Also write the results to this JSON file.")


def heldout_sampler(config, task):
    """`(key, n) -> n held-out real images in the models' range`, drawn as the run draws its training batches."""
    from jaxgan.data import images

    data = task.data.info
    if not isinstance(data, images.ImageData):
        raise ConfigError(f"data.name={config.data.name!r}: needs an image data set with a held-out split")
    test = jnp.asarray(data.test_images)
    if config.data.name == "stacked_mnist":
        labels = jnp.asarray(data.test_labels)
        return lambda key, n: images.to_model_range(images.stacked_mnist_batch(key, test, labels, n)[0])
    return lambda key, n: images.to_model_range(test[jax.random.randint(key, (n,), 0, test.shape[0])])


def discriminator_logits(config, task, game, state, num_batches: int, key: jax.Array) -> dict[str, np.ndarray]:
    """D's logits on training images, held-out images and G's samples (keys "train", "held_out", "generated";
    `[num_batches, batch_size]` each), each batch its own call in training mode (its model-state update discarded),
    as the training step calls D. Batch b of each kind is drawn from `fold_in(key, b)`. Also, on the same draws:

    * "mixed_train", "mixed_generated" `[num_batches, batch_size // 2]`: one call on a batch of the first halves of
      the training and the generated batch: with batch norm, whether D tells the two apart sample by sample or
      by the statistics of a batch that is all real or all fake;
    * "eval_train", "eval_held_out", "eval_generated": D in evaluation mode (batch norm's running averages), where
      each sample is judged on its own."""
    from jaxgan.conditioning import logits_of
    from jaxgan.game import discriminate, generate

    if game.conditioning is not None:
        raise ConfigError(f"conditioning={config.conditioning!r}: this reads unconditional runs only")
    heldout, n = heldout_sampler(config, task), config.batch_size

    def d_logits(x, train=True):
        return logits_of(discriminate(game, state.d_params, state.d_model_state, x, train=train)[0]).reshape(-1)

    @jax.jit
    def one_batch(batch_key):
        data_key, heldout_key, noise_key, g_key = jax.random.split(batch_key, 4)
        z = game.sample_noise(noise_key, n)
        fake, _ = generate(game, state.g_params, state.g_model_state, z, train=True, key=g_key)
        batches = {"train": task.data.sample(data_key, n), "held_out": heldout(heldout_key, n), "generated": fake}
        logits = {name: d_logits(x) for name, x in batches.items()}
        logits.update({f"eval_{name}": d_logits(x, train=False) for name, x in batches.items()})
        half = n // 2
        mixed = d_logits(jnp.concatenate([batches["train"][:half], fake[:half]]))
        return {**logits, "mixed_train": mixed[:half], "mixed_generated": mixed[half:]}

    batches = [one_batch(jax.random.fold_in(key, b)) for b in range(num_batches)]
    return {name: np.stack([np.asarray(b[name]) for b in batches]) for name in batches[0]}


def summarize(logits: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean D(x) of each kind, mean logits, and r_v (NaN when D rates training and generated images alike)."""
    means = {name: float(np.mean(v)) for name, v in logits.items()}
    summary = {f"d_{name}": float(np.mean(1 / (1 + np.exp(-v.astype(np.float64))))) for name, v in logits.items()}
    summary.update({f"logit_{name}": m for name, m in means.items()})
    spread = means["train"] - means["generated"]
    summary["r_v"] = (means["train"] - means["held_out"]) / spread if spread != 0 else float("nan")
    return summary


def checked_steps(workdir: pathlib.Path, steps: list[int] | None) -> list[int]:
    """The checkpoints of `workdir` to read; ConfigError (one line) for a run this cannot read or a missing step."""
    from jaxgan.checkpoint import saved_steps
    from jaxgan.data.images import IMAGE_DATA_NAMES
    from jaxgan.train import saved_config

    config = saved_config(workdir, "--workdirs")
    name = config.data.name
    if name not in (*IMAGE_DATA_NAMES, "stacked_mnist") and not name.startswith("tfds:"):
        raise ConfigError(f"--workdirs={workdir}: needs a run on image data with a held-out split, not {name!r}")
    if config.conditioning != "none":
        raise ConfigError(f"--workdirs={workdir}: reads unconditional runs only, not conditioning={config.conditioning!r}")
    if not (workdir / "checkpoints").is_dir():
        raise ConfigError(f"--workdirs={workdir}: no checkpoints")
    kept = saved_steps(workdir / "checkpoints")
    missing = [s for s in steps or () if s not in kept]
    if missing or not kept:
        raise ConfigError(f"--steps={missing[0] if missing else ''}: {workdir} has no checkpoint of that step (it has {kept})")
    return kept if steps is None else steps


def main(argv):
    del argv
    try:
        steps = None if _STEPS.value is None else [int(s) for s in _STEPS.value]
    except ValueError:
        raise app.UsageError(f"--steps={','.join(_STEPS.value)}: give checkpoint steps, e.g. --steps=1000,5000") from None
    runs = {pathlib.Path(w): None for w in _WORKDIRS.value}
    for workdir in runs:  # every run checked before any is read
        runs[workdir] = checked_steps(workdir, steps)
    results = []
    for workdir, run_steps in runs.items():
        for step in run_steps:
            try:
                config, task, game, state, _ = load_run(workdir, None, step, flag="--workdirs")
            except ConfigError:
                if deleted_since_listed(workdir, step):  # a live run's old step, gone: skipped with a warning
                    continue
                raise
            s = summarize(discriminator_logits(config, task, game, state, _NUM_BATCHES.value, jax.random.key(_SEED.value)))
            results.append({"workdir": str(workdir), "step": step, **s})
            print(
                f"{workdir}  step {step}:  D(x) training {s['d_train']:.4f}  held-out {s['d_held_out']:.4f}  "
                f"generated {s['d_generated']:.4f}  |  logits {s['logit_train']:.2f} / {s['logit_held_out']:.2f} / "
                f"{s['logit_generated']:.2f}  r_v {s['r_v']:.3f}\n"
                f"{workdir}  step {step}:  one batch of half training, half generated: D(x) {s['d_mixed_train']:.4f} / "
                f"{s['d_mixed_generated']:.4f}  |  running averages: D(x) training {s['d_eval_train']:.4f}  held-out "
                f"{s['d_eval_held_out']:.4f}  generated {s['d_eval_generated']:.4f}",
                flush=True,
            )
    if _JSON.value:
        pathlib.Path(_JSON.value).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    run_script(main)
