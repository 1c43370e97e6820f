r"""How much of LapGAN's chained-sample quality is lost at the coarsest level: a trained run's finer generators
G_1 .. G_{L−1} chained on 7×7 images from (a) the held-out digits, (b) the run's own G_0, (c) a level-0 GAN trained
here on its own for each of --steps.

    python scripts/lapgan_coarse_level.py --workdir=runs/zoo/lapgan_mnist/seed_0 [--steps=1500,6000]

The level-0 GAN of (c) is the setting of jaxgan/models/lapgan.py's G_0 and D_0 written out in plain JAX and optax
(MLPs with one hidden layer of each player's coarse width, ReLU and tanh in G, LeakyReLU(0.2) in D; the
non-saturating loss; Adam with the run's rates and β1; one D step per G step; the run's batch size and z chunk),
on the training digits average-pooled to 7×7. Since LapGAN's levels are trained independently, this is the game
the run's level 0 plays, without the finer levels' cost. Printed: the 7×7 FID of the level-0 GAN every 500 steps
(the images upsampled to 28×28, against the held-out digits reduced the same way, as `scripts/lapgan_levels.py`'s
"0..0" row) and the FID of the full chained images against the held-out digits for (a), (b) and (c).
"""

from __future__ import annotations

import math
import pathlib
import sys

from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from scripts.notes import run_script  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A finished lapgan_mnist run.", required=True)
_STEPS = flags.DEFINE_list("steps", ["1500", "6000"], "Training lengths of the stand-alone level-0 GAN.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the stand-alone level-0 GAN and of the noise.")


def main(argv):
    del argv
    import jax
    import jax.numpy as jnp
    import optax

    from jaxgan.data.images import to_model_range
    from jaxgan.metrics import image
    from jaxgan.metrics.classifier import load_classifier
    from jaxgan.models import lapgan
    from scripts.notes import level0_trainer, load_run

    config, task, game, state, step = load_run(pathlib.Path(_WORKDIR.value), "images")
    if config.generator.name != "lapgan":
        raise SystemExit(f"{_WORKDIR.value}: not a LapGAN run (generator {config.generator.name!r})")
    real = to_model_range(jnp.asarray(task.data.info.test_images))
    shape, n = tuple(real.shape[1:]), len(real)
    levels = lapgan.pyramid_levels(shape)
    classify, _ = load_classifier(config.data.name, shape)
    train_coarse = lapgan._low_passes(to_model_range(jnp.asarray(task.data.info.train_images)), levels)[0]
    held_coarse = lapgan._low_passes(real, levels)[0]

    def to_full(coarse):  # nearest-neighbour upsampling to the full size, as coarse_image(pyramid, 1)
        for _ in range(levels - 1):
            coarse = lapgan.upsample(coarse)
        return coarse

    held_coarse_features = classify(to_full(held_coarse))[1]
    real_features = classify(real)[1]
    width = config.generator.base_width
    g_coarse = config.generator.get("coarse_width", 0)  # 0: the player's base width, as in the model
    d_coarse = config.discriminator.get("coarse_width", 0) or config.discriminator.base_width

    z = game.sample_noise(jax.random.key(_SEED.value), n)
    z = z.data if hasattr(z, "data") else z
    chunks = lapgan.noise_chunks(z, levels)
    residual = lapgan._ResidualGenerator(width, jnp.float32)

    def chain_fid(coarse):
        x = coarse
        for k in range(1, levels):
            low = lapgan.upsample(x)
            x = low + residual.apply({"params": state.g_params[f"level_{k}"]}, chunks[k], low)
        return float(image.fid_from_features(real_features, classify(jnp.clip(x, -1, 1))[1]))

    def coarse_fid(coarse):
        return float(image.fid_from_features(held_coarse_features, classify(to_full(coarse))[1]))

    # The level-0 game in plain JAX.
    z_dim, size, batch = chunks[0].shape[-1], math.prod(held_coarse.shape[1:]), config.batch_size

    def init(key, sizes):
        keys = jax.random.split(key, len(sizes) - 1)
        return [(jax.random.normal(k, (a, b)) / jnp.sqrt(a), jnp.zeros(b)) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]

    def mlp(params, x, activation):
        for w, b in params[:-1]:
            x = activation(x @ w + b)
        return x @ params[-1][0] + params[-1][1]

    generate = lambda p, z: jnp.tanh(mlp(p, z, jax.nn.relu)).reshape(-1, *held_coarse.shape[1:])  # noqa: E731
    discriminate = lambda p, x: mlp(p, x.reshape(len(x), -1), lambda h: jax.nn.leaky_relu(h, 0.2))[:, 0]  # noqa: E731
    g_opt = optax.adam(config.g_optimizer.learning_rate, config.g_optimizer.b1)
    d_opt = optax.adam(config.d_optimizer.learning_rate, config.d_optimizer.b1)

    train = level0_trainer(generate, discriminate, train_coarse, g_opt, d_opt, batch, z_dim)
    own = lapgan.LaplacianGenerator(shape, width, coarse_width=g_coarse, coarse_model=config.generator.get("coarse_model", "mlp")).apply(
        {"params": state.g_params}, z, method="levels")[0]  # fmt: skip
    print(f"{_WORKDIR.value}, step {step}; full-image FID of the chain on each 7×7 source (7×7 FID in brackets):")
    print(f"  held-out digits: {chain_fid(held_coarse):.1f}")
    print(f"  the run's G_0: {chain_fid(own):.1f} ({coarse_fid(own):.1f})")
    if config.generator.get("coarse_model", "mlp") != "mlp" and _STEPS.value:
        print("  (the stand-alone level-0 GAN is the MLP setting; this run's G_0 is not an MLP, so it is skipped)")
        return
    for steps in sorted(int(s) for s in _STEPS.value):
        key_g, key_d, key_train = jax.random.split(jax.random.key(_SEED.value), 3)
        g, d = init(key_g, [z_dim, g_coarse or width, size]), init(key_d, [size, d_coarse, 1])
        carry, curve, done = (g, d, g_opt.init(g), d_opt.init(d)), [], 0
        while done < steps:
            chunk = min(500, steps - done)
            carry = train(carry, jax.random.split(jax.random.fold_in(key_train, done), chunk))
            done += chunk
            curve.append(f"{coarse_fid(generate(carry[0], chunks[0])):.1f}")
        samples = generate(carry[0], chunks[0])
        print(f"  stand-alone level-0 GAN, {steps} steps: {chain_fid(samples):.1f} (7×7 FID every 500 steps: "
              f"{', '.join(curve)})", flush=True)


if __name__ == "__main__":
    run_script(main)
