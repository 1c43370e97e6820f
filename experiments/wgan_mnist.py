r"""WGAN with weight clipping (Arjovsky, Chintala & Bottou 2017) on mnist_5k: the paper's Algorithm 1.

    python -m jaxgan.main --config=experiments/wgan_mnist.py --workdir=/tmp/wgan_mnist

The critic maximises E[f(x)] − E[f(G(z))] with every parameter clipped to [−0.01, 0.01] after each of its steps,
n_critic = 5 critic steps per generator step, RMSProp (5e-5, PyTorch's form) for both players, batch 64: the
paper's defaults. The DCGAN networks of experiments/dcgan_mnist.py (the paper's critic keeps batch norm), 7000
generator steps, each reading five real batches, evaluated every 1000: clipping makes the critic slow to learn, so
the samples improve more slowly per step than WGAN-GP's (experiments/wgan_gp_mnist.py); at 2000 steps they were
not yet readable (BUILD_NOTES.md, "WGAN with clipping past 2000 steps").
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.loss = "wasserstein"
    config.weight_clip = 0.01
    config.update_rule, config.d_steps = "alternating", 5
    config.batch_size = 64
    for player in (config.g_optimizer, config.d_optimizer):
        player.name, player.learning_rate, player.b2, player.eps = "rmsprop", 5e-5, 0.99, 1e-8
    config.num_steps = 7000
    config.eval_every_steps = 1000
    return config
