r"""InfoGAN (Chen et al. 2016) on mnist_5k: one 10-way categorical code and two continuous codes, unsupervised.

    python -m jaxgan.main --config=experiments/infogan_mnist.py --workdir=/tmp/infogan_mnist
    python scripts/reproduce_infogan.py   # the paper's figure (rows: the categorical code; columns: a continuous code)

The paper's MNIST latent (z ~ N(0, I_62), c1 ~ Cat(10), c2, c3 ~ U(−1, 1)) with experiments/dcgan_mnist.py's
networks and training; D's trunk carries the Q head (FC 128 - BN - LReLU, then the code logits and the continuous
codes' means). G and Q both minimise λ·L_I with λ = 1 for the categorical code and 0.1 for the continuous ones
(jaxgan/conditioning.py). No labels are used in training; eval.json's `code_accuracy` is the agreement of the
categorical code with the digit the classifier sees, under the best one-to-one matching (the paper reports about
5% error on MNIST).
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.conditioning = "infogan"
    config.z_dim = 62
    config.info.categorical, config.info.continuous = 10, 2
    config.info.weight, config.info.continuous_weight = 1.0, 0.1
    return config
