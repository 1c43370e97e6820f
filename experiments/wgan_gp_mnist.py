r"""WGAN-GP (Gulrajani et al. 2017) on mnist_5k: the Wasserstein critic with a gradient penalty, n_critic = 5.

    python -m jaxgan.main --config=experiments/wgan_gp_mnist.py --workdir=/tmp/wgan_gp_mnist

The paper's setting: λ = 10 on random interpolates, five critic steps per generator step, Adam (1e-4, β1 = 0,
β2 = 0.9), and no batch norm in the critic (the penalty is per example; layer norm instead, its Section 4), with
experiments/dcgan_mnist.py's networks otherwise. The critic takes five real batches per update step, so a step
costs about three DCGAN steps.
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.loss = "wasserstein"
    config.penalty, config.penalty_weight = "wgan_gp", 10.0
    config.update_rule, config.d_steps = "alternating", 5
    config.discriminator.norm = "layer"
    for player in (config.g_optimizer, config.d_optimizer):
        player.learning_rate, player.b1, player.b2 = 1e-4, 0.0, 0.9
    config.num_steps = 2000
    return config
