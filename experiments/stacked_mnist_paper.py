r"""Stacked MNIST with the unrolled GAN paper's own networks and training setting (Metz et al. 2017, Section 3.3).

    python -m jaxgan.main --config=experiments/stacked_mnist_paper.py --workdir=/tmp/stacked_mnist_paper
    python -m jaxgan.main --config=experiments/stacked_mnist_paper.py --config.unroll_steps=0 ...   # no unrolling

The networks and optimizer of PacGAN's code for its comparison with the paper's mode counts (Lin et al. 2018,
Section 5.2, Table 3; built on the unrolled GAN paper's architecture): the small DCGAN of jaxgan/models/small_dcgan.py (G 64-32-16-8
channels from a 4×4 map, D 2-4-8 channels, a quarter of G's size; `--config.discriminator.widths="(4, 8, 16)"` is
the half-size D), z ~ N(0, I_256), batch 128, Adam with β1 = 0.5, β2 = 0.99, learning rate 2e-4 for D and 1e-4
for G; the minimax loss of the unrolled objective (PacGAN's code gives G the non-saturating loss:
`--config.loss=nonsaturating`), unrolled K = 5 through D's Adam (`--config.unroll_steps`). Data: stacked mnist_5k
training digits, each channel drawn independently, where the paper draws from MNIST's 60000. PacGAN's code trains
500000 steps; `num_steps` here is what a CPU run allows.
Evaluation as in experiments/stacked_mnist.py (`modes`, distinct digit triples of 1000, `kl`, and FID and friends), on
25600 samples as PacGAN's code counts them: a count grows with the number of samples (BUILD_NOTES.md, "Stacked MNIST
with the paper's networks: the sample count, seeds, the half-size D").
"""

from jaxgan.config import default_config


def get_config():
    config = default_config()
    config.data.name = "stacked_mnist"
    config.generator.name = config.discriminator.name = "small_dcgan"
    config.evaluations = ("images",)
    config.z_dim = 256
    config.batch_size = 128
    config.loss = "minimax"
    config.update_rule, config.unroll_steps = "unrolled", 5
    config.g_optimizer.learning_rate = 1e-4
    config.d_optimizer.learning_rate = 2e-4
    config.g_optimizer.b2 = config.d_optimizer.b2 = 0.99
    config.num_steps = 5000
    config.log_every_steps = 100
    config.eval_every_steps = config.checkpoint_every_steps = 1000
    config.eval_num_samples = 25600  # PacGAN's code counts modes on 25600 samples (its `num_test_sample`)
    config.steps_per_dispatch = 100
    return config
