r"""SAGAN (Zhang et al. 2019) on mnist_5k: experiments/sngan_mnist.py's ResNets with a self-attention block in G
and in D at 14×14, and SAGAN's two time-scale learning rates.

    python -m jaxgan.main --config=experiments/sagan_mnist.py --workdir=/tmp/sagan_mnist

Self-attention (jaxgan/models/layers.py, `SelfAttention`: query and key at C/8, value at C/2 with 2×2 max-pooling
of keys and values as in the official code, γ starting at 0) after G's first up-sampling block and after D's first
block, the 14×14 feature maps (the paper puts it at 32×32 of 64×64 images, the same relative place). The hinge
loss, spectral normalization in D (the paper also normalizes G; here G has batch norm only), Adam with β1 = 0,
β2 = 0.9 and the paper's TTUR rates, 1e-4 for G and 4e-4 for D, one D step per G step.
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("sngan_mnist.py"))
    config.generator.attention_resolution = config.discriminator.attention_resolution = 14
    for player in (config.g_optimizer, config.d_optimizer):
        player.b1, player.b2 = 0.0, 0.9
    config.g_optimizer.learning_rate, config.d_optimizer.learning_rate = 1e-4, 4e-4
    return config
