r"""DCGAN on scikit-learn's 8×8 digits (1437 training images, 360 held out): the fastest image experiment.

    python -m jaxgan.main --config=experiments/dcgan_digits.py --workdir=/tmp/dcgan_digits

experiments/dcgan_mnist.py's setting on 8×8 images (G: 2×2 → 4×4 → 8×8, D: one strided convolution), with the
digits classifier's features for the metrics.
"""

import importlib.util
import pathlib


def get_config():
    spec = importlib.util.spec_from_file_location("dcgan_mnist", pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.data.name = "digits"
    config.eval_num_samples = 360  # the size of the held-out split
    config.steps_per_dispatch = 100
    return config
