r"""StyleGAN2-lite (Karras et al. 2020) on mnist_5k at 28×28: mapping network, modulated/demodulated
convolutions, noise inputs, mixing regularization, a residual D with minibatch stddev, lazy R1 and lazy path
length regularization.

    python -m jaxgan.main --config=experiments/stylegan2_mnist.py --workdir=/tmp/stylegan2_mnist

The networks (jaxgan/models/stylegan.py): G maps z ~ N(0, I_64) through 4 equalized dense layers (learning-rate
multiplier 0.01) to w (64), synthesizes from a learned 7×7 constant through 7 → 14 → 28 with skip toRGB outputs;
D is residual, 28 → 14 → 7, minibatch stddev, dense head. 32 channels everywhere (the "lite" part: the paper
uses 512 at these resolutions). The paper's config F settings where they apply: the non-saturating logistic loss,
Adam with lr 0.002, β1 = 0, β2 = 0.99, style mixing with probability 0.9, lazy R1 every 16 D steps and path
length (weight 2, decay 0.01, half batch) every 4 G steps, each optimizer's lr and betas rescaled by
c = N/(N + 1) as the official code does for lazy regularization, and an EMA of G. R1's γ is 0.01, the value of
the StyleGAN2-ADA paper's CIFAR-10 setting (its heuristic 0.0002·res²/batch gives 0.0025 here; config F's γ = 10
is for 1024×1024 faces). The EMA decay 0.995 is a half-life of ~140 steps, close to the official 10k images
(156 steps at batch 64). Batch 64.
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.generator.name = config.discriminator.name = "stylegan2"
    config.generator.base_width = config.discriminator.base_width = 32
    config.generator.mixing_probability = 0.9
    config.z_dim = 64
    config.batch_size = 64
    config.loss = "nonsaturating"
    config.update_rule, config.d_steps = "alternating", 1
    config.lazy.r1_gamma, config.lazy.r1_interval = 0.01, 16
    config.lazy.path_length_weight, config.lazy.path_length_interval = 2.0, 4
    for player, interval in ((config.g_optimizer, config.lazy.path_length_interval), (config.d_optimizer, config.lazy.r1_interval)):
        c = interval / (interval + 1)
        player.learning_rate, player.b1, player.b2 = 0.002 * c, 0.0, 0.99**c
    config.ema_decay = 0.995
    return config
