r"""AC-GAN (Odena, Olah & Shlens 2017) on mnist_5k: G gets the class, D predicts it with a second head.

    python -m jaxgan.main --config=experiments/acgan_mnist.py --workdir=/tmp/acgan_mnist

experiments/dcgan_mnist.py's networks and training with `conditioning = "acgan"`: D sees the image only and has
a classifier head on its trunk; D minimises L_D + w·(CE_real + CE_fake), G minimises L_G + w·CE_fake, w =
`class_loss_weight` = 1 (jaxgan/conditioning.py). eval.json adds `class_accuracy`; samples.png has one row per class.
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.conditioning = "acgan"
    config.class_loss_weight = 1.0
    return config
