r"""LapGAN's coarsest level on its own: the level-0 GAN of `jaxgan.models.lapgan` (G_0 makes the 7×7 image from its
chunk of z, D_0 judges it) trained on the training digits average-pooled to 7×7, for each G_0/D_0 kind asked for.

    python scripts/lapgan_level0.py [--models=mlp:64,conv:32] [--steps=3000] [--config=experiments/lapgan_mnist.py]
    python scripts/lapgan_level0.py --chain_workdir=runs/lapgan_mnist [--models=mlp:256] [--steps=30000]

LapGAN's levels are trained independently (the paper trains one GAN per level; jaxgan's joint game keeps them
independent by construction), and the finer levels on real coarse images, so this is the game that a run's level
0 plays, without the finer levels' cost (BUILD_NOTES.md, "Where the chain loses it: the coarsest level"). Each
entry of --models is `coarse_model:coarse_width`: the model's own `_CoarseGenerator` and `_CoarseDiscriminator`
("mlp", the paper's fully connected pair, or "conv"), trained with the experiment's loss (non-saturating), Adam
rates and β1, batch size and z chunk, one D step per G step. Printed every --eval_every steps: the 7×7 FID of
G_0's samples (upsampled to 28×28, scored by the shipped digit classifier against the held-out digits reduced the
same way, as `scripts/lapgan_levels.py`'s "0..0" row) and the seconds so far. No run directory is needed.

With --chain_workdir=RUN (a LapGAN run; its config replaces --config) each evaluation also puts G_0's images under
the run's finer levels (`LaplacianGenerator.levels(..., coarse=...)`) and prints the FID of the full-size images
against the held-out digits: what the run's samples would score with this level 0. LapGAN trains its finer levels
on real coarse images, so any level 0 fits under them; the held-out digits' own coarse images under them give the
chain's floor, printed first (BUILD_NOTES.md, "LapGAN's coarsest level needs more updates than the run gives").
"""

from __future__ import annotations

import pathlib
import sys
import time

from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxgan.cli import define_config_file  # noqa: E402
from scripts.notes import run_script  # noqa: E402

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_CONFIG = define_config_file("config", str(_ROOT / "experiments" / "lapgan_mnist.py"), "A LapGAN experiment.")
_MODELS = flags.DEFINE_list("models", ["mlp:64", "conv:32"], "coarse_model:coarse_width pairs to train.")
_STEPS = flags.DEFINE_integer("steps", 3000, "Training steps of each level-0 GAN (a multiple of --eval_every).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the initialisation, the batches and the noise.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 500, "Steps between evaluations (--steps must be a multiple).")
_CHAIN = flags.DEFINE_string(
    "chain_workdir", None, "A LapGAN run whose finer levels refine G_0's images (its config replaces --config)."
)


def main(argv):
    del argv
    import jax
    import jax.numpy as jnp
    import optax

    from jaxgan.config import validate
    from jaxgan.data.images import to_model_range
    from jaxgan.metrics import image
    from jaxgan.metrics.classifier import load_classifier
    from jaxgan.models import lapgan
    from jaxgan.tasks import make_task
    from scripts.notes import level0_trainer, load_run

    if _EVAL_EVERY.value < 1 or _STEPS.value < 1 or _STEPS.value % _EVAL_EVERY.value:
        raise SystemExit(f"--steps={_STEPS.value}: must be a positive multiple of --eval_every={_EVAL_EVERY.value}")
    run = None
    if _CHAIN.value is None:
        config = _CONFIG.value
        validate(config)
    else:
        run = load_run(pathlib.Path(_CHAIN.value), flag="--chain_workdir")
        config = run[0]
    flag = "--config" if run is None else "--chain_workdir"
    if config.generator.name != "lapgan" or config.loss != "nonsaturating":
        raise SystemExit(f"{flag}: needs a LapGAN experiment with the non-saturating loss, got generator "
                         f"{config.generator.name!r}, loss {config.loss!r}")  # fmt: skip
    models = []
    for entry in _MODELS.value:
        kind, _, width = entry.partition(":")
        if kind not in lapgan.COARSE_MODELS or not width.isdigit() or int(width) < 1:
            raise SystemExit(f"--models: {entry!r} is not coarse_model:width with coarse_model in {lapgan.COARSE_MODELS}")
        models.append((kind, int(width)))

    task = make_task(config) if run is None else run[1]
    held = to_model_range(jnp.asarray(task.data.info.test_images))
    shape = tuple(held.shape[1:])
    levels = lapgan.pyramid_levels(shape)
    train_coarse = lapgan._low_passes(to_model_range(jnp.asarray(task.data.info.train_images)), levels)[0]
    held_coarse = lapgan._low_passes(held, levels)[0]
    classify, _ = load_classifier(config.data.name, shape)

    def to_full(coarse):  # nearest-neighbour upsampling to the full size, as coarse_image(pyramid, 1)
        for _ in range(levels - 1):
            coarse = lapgan.upsample(coarse)
        return coarse

    held_features = classify(to_full(held_coarse))[1]
    key_noise, key_init, key_train = jax.random.split(jax.random.key(_SEED.value), 3)
    z_full = jax.random.normal(key_noise, (len(held), config.z_dim))
    z_eval = lapgan.noise_chunks(z_full, levels)[0]
    chained = None
    if run is not None:
        held_full_features = classify(held)[1]
        finer = lapgan.LaplacianGenerator(shape, config.generator.base_width)  # its level 0 is never called

        def chained(coarse):  # FID of the run's finer levels on `coarse`, against the held-out digits
            pyramid = finer.apply({"params": run[3].g_params}, z_full, coarse=coarse, method="levels")
            images = jnp.clip(lapgan.reconstruct(pyramid), -1.0, 1.0)
            return float(image.fid_from_features(held_full_features, classify(images)[1]))

        print(f"{_CHAIN.value} (step {run[4]}): its finer levels on the held-out coarse images, FID {chained(held_coarse):.1f}")
    z_dim, batch = z_eval.shape[-1], config.batch_size
    g_opt = optax.adam(config.g_optimizer.learning_rate, config.g_optimizer.b1)
    d_opt = optax.adam(config.d_optimizer.learning_rate, config.d_optimizer.b1)
    print(f"level 0 of {shape[0]}x{shape[1]} LapGAN: {tuple(held_coarse.shape[1:])} images, batch {batch}, z chunk {z_dim}, "
          f"Adam G {config.g_optimizer.learning_rate} / D {config.d_optimizer.learning_rate}, β1 {config.g_optimizer.b1}")  # fmt: skip

    for kind, width in models:
        generator = lapgan._CoarseGenerator(tuple(held_coarse.shape[1:]), width, jnp.float32, kind == "conv")
        discriminator = lapgan._CoarseDiscriminator(width, jnp.float32, kind == "conv")
        key_g, key_d = jax.random.split(key_init)
        g = generator.init(key_g, z_eval[:2])["params"]
        d = discriminator.init(key_d, held_coarse[:2])["params"]

        def generate(params, z):
            return generator.apply({"params": params}, z)

        def discriminate(params, x):
            return discriminator.apply({"params": params}, x)

        train = level0_trainer(generate, discriminate, train_coarse, g_opt, d_opt, batch, z_dim)
        carry, start, curve = (g, d, g_opt.init(g), d_opt.init(d)), time.time(), []
        every = _EVAL_EVERY.value
        for done in range(every, _STEPS.value + 1, every):
            carry = train(carry, jax.random.split(jax.random.fold_in(key_train, done), every))
            coarse = generate(carry[0], z_eval)
            fid = float(image.fid_from_features(held_features, classify(to_full(coarse))[1]))
            chain = None if chained is None else chained(coarse)
            curve.append(f"{fid:.1f}" if chain is None else f"{fid:.1f} / {chain:.1f}")
            shown = "" if chain is None else f", chained FID {chain:.1f}"
            print(f"  {kind}:{width} step {done}: 7×7 FID {fid:.1f}{shown} ({time.time() - start:.0f} s)", flush=True)
        what = "7×7 FID" if chained is None else "7×7 FID / chained FID"
        print(f"{kind}:{width}, {what} every {every} steps: {', '.join(curve)}", flush=True)


if __name__ == "__main__":
    run_script(main)
