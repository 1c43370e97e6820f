r"""LapGAN's coarsest level on its own: the level-0 GAN of `jaxgan.models.lapgan` (G_0 makes the 7×7 image from its
chunk of z, D_0 judges it) trained on the training digits average-pooled to 7×7, for each G_0/D_0 kind asked for.

    python scripts/lapgan_level0.py [--models=mlp:64,conv:32] [--steps=3000] [--config=experiments/lapgan_mnist.py]

LapGAN's levels are trained independently (the paper trains one GAN per level; jaxgan's joint game keeps them
independent by construction), and the finer levels on real coarse images, so this is the game that a run's level
0 plays, without the finer levels' cost (BUILD_NOTES.md, "Where the chain loses it: the coarsest level"). Each
entry of --models is `coarse_model:coarse_width`: the model's own `_CoarseGenerator` and `_CoarseDiscriminator`
("mlp", the paper's fully connected pair, or "conv"), trained with the experiment's loss (non-saturating), Adam
rates and β1, batch size and z chunk, one D step per G step. Printed every 500 steps: the 7×7 FID of G_0's
samples (upsampled to 28×28, scored by the shipped digit classifier against the held-out digits reduced the same
way, as `scripts/lapgan_levels.py`'s "0..0" row) and the seconds so far. No run directory is needed.
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
_STEPS = flags.DEFINE_integer("steps", 3000, "Training steps of each level-0 GAN (a multiple of 500).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the initialisation, the batches and the noise.")


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
    from scripts.notes import level0_trainer

    config = _CONFIG.value
    validate(config)
    if config.generator.name != "lapgan" or config.loss != "nonsaturating":
        raise SystemExit(f"--config: needs a LapGAN experiment with the non-saturating loss, got generator "
                         f"{config.generator.name!r}, loss {config.loss!r}")  # fmt: skip
    if _STEPS.value % 500:
        raise SystemExit(f"--steps={_STEPS.value}: must be a multiple of 500 (the evaluation interval)")
    models = []
    for entry in _MODELS.value:
        kind, _, width = entry.partition(":")
        if kind not in lapgan.COARSE_MODELS or not width.isdigit() or int(width) < 1:
            raise SystemExit(f"--models: {entry!r} is not coarse_model:width with coarse_model in {lapgan.COARSE_MODELS}")
        models.append((kind, int(width)))

    task = make_task(config)
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
    z_eval = lapgan.noise_chunks(jax.random.normal(key_noise, (len(held), config.z_dim)), levels)[0]
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
        for done in range(500, _STEPS.value + 1, 500):
            carry = train(carry, jax.random.split(jax.random.fold_in(key_train, done), 500))
            fid = float(image.fid_from_features(held_features, classify(to_full(generate(carry[0], z_eval)))[1]))
            curve.append(f"{fid:.1f}")
            print(f"  {kind}:{width} step {done}: 7×7 FID {fid:.1f} ({time.time() - start:.0f} s)", flush=True)
        print(f"{kind}:{width}, 7×7 FID every 500 steps: {', '.join(curve)}", flush=True)


if __name__ == "__main__":
    run_script(main)
