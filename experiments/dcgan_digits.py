r"""DCGAN on scikit-learn's 8×8 digits (1438 training images, 359 held out): the fastest image experiment.

    python -m jaxgan.main --config=experiments/dcgan_digits.py --workdir=/tmp/dcgan_digits

experiments/dcgan_mnist.py's setting on 8×8 images (G: 2×2 → 4×4 → 8×8, D: one strided convolution), with the
digits classifier's features for the metrics.
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.data.name = "digits"
    config.eval_num_samples = 360  # about the held-out split's 359 images
    config.steps_per_dispatch = 100
    return config
