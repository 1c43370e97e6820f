r"""DCGAN (Radford, Metz, Chintala 2015) on mnist_5k: 4000 real MNIST digits, the held-out 1000 for the metrics.

    python -m jaxgan.main --config=experiments/dcgan_mnist.py --workdir=/tmp/dcgan_mnist

The paper's training setting (Adam, β1 = 0.5, batch 128, a 100-d z, the non-saturating loss, one D step per G step;
z ~ N(0, I_100) where the paper draws it uniformly) except G's learning rate: 1e-3 for G, 2e-4 for D (the paper:
2e-4 for both; 1e-3 for G is InfoGAN's MNIST setting), which gives clearly readable digits within this run's length
where 2e-4 does not (BUILD_NOTES.md, "DCGAN on mnist_5k: G's learning rate"). The paper's architecture (strided
(transposed) convolutions, batch norm, leaky ReLU in D, tanh output; jaxgan/models/dcgan.py) at base_width 32, a
quarter of the widths of the paper's 64×64 generator (4×4×1024 first, base 128) and half of the models' default 64,
which trains several times faster on a CPU. Evaluation: FID, KID, Inception Score, precision and recall from the
shipped digit classifier against the held-out split (jaxgan/metrics/classifier.py); samples.png shows fixed-noise
samples over training.
"""

from jaxgan.config import default_config


def get_config():
    config = default_config()
    config.data.name = "mnist_5k"
    config.generator.name = config.discriminator.name = "dcgan"
    config.generator.base_width = config.discriminator.base_width = 32
    config.evaluations = ("images",)
    config.z_dim = 100
    config.batch_size = 128
    config.loss = "nonsaturating"
    config.update_rule = "alternating"
    config.d_steps = 1
    config.g_optimizer.learning_rate = 1e-3
    config.d_optimizer.learning_rate = 2e-4
    config.num_steps = 1500
    config.log_every_steps = 100
    config.eval_every_steps = 500
    config.eval_num_samples = 1000
    config.checkpoint_every_steps = 500
    config.steps_per_dispatch = 100
    return config
