r"""Where a LapGAN run's samples go wrong: each pyramid level's contribution, and what each level's D judges.

    python scripts/lapgan_levels.py --workdir=runs/lapgan_mnist [--num_samples=1000]

For a run of experiments/lapgan_mnist.py (its latest checkpoint and WORKDIR/config.json):

* per level j, the images rebuilt from the first j + 1 pyramid levels (finer residuals set to 0,
  `jaxgan.models.lapgan.coarse_image`) of G's samples (sampled as at evaluation: the chain from z) against the
  held-out digits rebuilt the same way: FID, precision and recall in the digit classifier's features (and the FID
  of the rebuilt held-out digits against the full ones, for scale). A level whose rebuilt FID rises where the real
  one falls adds what the digits do not have.
* per finer level k, D_k's mean sigmoid on four kinds of pairs (h_k, l_k): real (the held-out digits' own),
  chained fakes (G's residual on its own coarse image, as sampled), G_k's residual on the REAL coarse image (what
  LapGAN's training shows D_k), and the real residual on G's coarse image. A D_k that scores by the residual ranks
  "G_k on real coarse" with the fakes; one that scores by the coarse image ranks it with the reals. Last column:
  the level on its own (as the paper evaluates a level), the real coarse images refined by G_k (finer residuals
  0) against the held-out digits rebuilt from the same levels.
"""

from __future__ import annotations

import pathlib
import sys

from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from scripts.notes import run_script  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A LapGAN image run (finished or checkpointed).", required=True)
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 1000, "Samples of G (the held-out split is used whole).")
_SEED = flags.DEFINE_integer("seed", 123, "Key of G's noise for the samples.")


def main(argv):
    del argv
    import jax
    import jax.numpy as jnp

    from jaxgan.data.images import to_model_range
    from jaxgan.metrics import image
    from jaxgan.metrics.classifier import load_classifier
    from jaxgan.models import lapgan
    from scripts.notes import load_run

    config, task, game, state, step = load_run(pathlib.Path(_WORKDIR.value), "images")
    if config.generator.name != "lapgan" or config.discriminator.name != "lapgan":
        raise SystemExit(f"{_WORKDIR.value}: not a LapGAN run (generator {config.generator.name!r})")
    real = to_model_range(jnp.asarray(task.data.info.test_images))
    shape = tuple(real.shape[1:])
    levels = lapgan.pyramid_levels(shape)
    width = (config.generator.base_width, config.discriminator.base_width)
    generator = lapgan.LaplacianGenerator(
        shape, width[0], coarse_width=config.generator.get("coarse_width", 0),
        coarse_model=config.generator.get("coarse_model", "mlp"))  # fmt: skip
    z = game.sample_noise(jax.random.key(_SEED.value), _NUM_SAMPLES.value)
    z = z.data if hasattr(z, "data") else z
    fake_levels = generator.apply({"params": state.g_params}, z, method="levels")
    real_levels = lapgan.laplacian_pyramid(real, levels)
    classify, _ = load_classifier(config.data.name, shape)
    real_features = classify(real)[1]

    print(f"{_WORKDIR.value}, step {step}\n")
    print("| levels kept | FID, rebuilt held-out vs full | FID, G vs held-out (both rebuilt) | precision | recall |")
    print("|---|---|---|---|---|")
    for keep in range(1, levels + 1):
        real_rebuilt = classify(jnp.clip(lapgan.coarse_image(real_levels, keep), -1, 1))[1]
        fake_rebuilt = classify(jnp.clip(lapgan.coarse_image(fake_levels, keep), -1, 1))[1]
        precision, recall = image.precision_recall_from_features(real_rebuilt, fake_rebuilt, k=3)
        print(f"| 0..{keep - 1} | {float(image.fid_from_features(real_features, real_rebuilt)):.1f} | "
              f"{float(image.fid_from_features(real_rebuilt, fake_rebuilt)):.1f} | {float(precision):.3f} | "
              f"{float(recall):.3f} |")  # fmt: skip

    n = min(len(real), _NUM_SAMPLES.value)
    real_lows = lapgan._low_passes(real[:n], levels)
    fake_lows = lapgan._low_passes(lapgan.reconstruct([level[:n] for level in fake_levels]), levels)
    chunks = lapgan.noise_chunks(z[:n], levels)
    print("\n| level | real pair | chained fake | G_k on real coarse | real residual on G's coarse | FID of G_k on real coarse |")
    print("|---|---|---|---|---|---|")
    for k in range(1, levels):
        d_k = lapgan._ResidualDiscriminator(width[1], jnp.float32)
        g_k = lapgan._ResidualGenerator(width[0], jnp.float32)

        def score(residual, low, k=k, d_k=d_k):
            logits = d_k.apply({"params": state.d_params[f"level_{k}"]}, residual, lapgan.upsample(low))
            return float(jnp.mean(jax.nn.sigmoid(logits)))

        real_residual = real_levels[k][:n]
        on_real = g_k.apply({"params": state.g_params[f"level_{k}"]}, chunks[k], lapgan.upsample(real_lows[k - 1]))
        # The level on its own, as the paper evaluates a level: the real coarse image refined by G_k, finer
        # residuals 0, against the held-out digits rebuilt from the same levels.
        refined = classify(jnp.clip(lapgan.coarse_image(real_levels[:k] + [on_real] + real_levels[k + 1:], k + 1)[:n], -1, 1))[1]
        reference = classify(jnp.clip(lapgan.coarse_image(real_levels, k + 1), -1, 1))[1]
        print(f"| {k} | {score(real_residual, real_lows[k - 1]):.3f} | {score(fake_levels[k][:n], fake_lows[k - 1]):.3f} | "
              f"{score(on_real, real_lows[k - 1]):.3f} | {score(real_residual, fake_lows[k - 1]):.3f} | "
              f"{float(image.fid_from_features(reference, refined)):.1f} |")  # fmt: skip


if __name__ == "__main__":
    run_script(main)
