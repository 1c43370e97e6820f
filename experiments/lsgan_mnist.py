r"""LSGAN (Mao et al. 2017) on mnist_5k: the least-squares loss with the 0-1 coding (a = 0, b = c = 1).

    python -m jaxgan.main --config=experiments/lsgan_mnist.py --workdir=/tmp/lsgan_mnist

D regresses its raw output onto 1 for data and 0 for samples, G pulls its samples' outputs to 1 (jaxgan.losses,
`least_squares`); the paper's Adam (2e-4, β1 = 0.5) for D and experiments/dcgan_mnist.py's everything else (G at
1e-3, the DCGAN networks at base width 32, alternating updates).
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.loss = "least_squares"
    return config
