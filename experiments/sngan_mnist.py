r"""SNGAN (Miyato et al. 2018) on mnist_5k: the ResNet generator and discriminator of its Appendix B, spectral
normalization in every layer of D, and the hinge loss.

    python -m jaxgan.main --config=experiments/sngan_mnist.py --workdir=/tmp/sngan_mnist

The networks (jaxgan/models/resnet.py) at 28×28: G projects z ~ N(0, I_128) to 7×7, two up-sampling residual
blocks, BN-ReLU-conv-tanh; D has an optimized first block and one more down-sampling block (28 → 14 → 7), two
residual blocks at 7×7, ReLU, global sum pooling and a linear output, every layer spectrally normalized with one
power iteration per training-mode D call (two per D step, on the real and the fake batch, as in the authors'
Chainer code). Widths 32 for both (the paper: 256 for G, 128 for D), batch 64. Optimizer: the paper's
setting C (Adam 2e-4, β1 = 0.5, β2 = 0.999, one D step per G step), which fits the CPU budget; its ResNet runs
use β1 = 0, β2 = 0.9 and five D steps per G step.
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.generator.name = config.discriminator.name = "resnet"
    config.generator.base_width = config.discriminator.base_width = 32
    config.discriminator.norm = "spectral"
    config.loss = "hinge"
    config.z_dim = 128
    config.batch_size = 64
    config.update_rule, config.d_steps = "alternating", 1
    for player in (config.g_optimizer, config.d_optimizer):
        player.learning_rate, player.b1, player.b2 = 2e-4, 0.5, 0.999
    return config
