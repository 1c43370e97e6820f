r"""EBGAN-PT (Zhao, Mathieu & LeCun 2017) on mnist_5k: an auto-encoder discriminator whose energy is its
reconstruction error, the margin loss and the pulling-away term on G's samples.

    python -m jaxgan.main --config=experiments/ebgan_mnist.py --workdir=/tmp/ebgan_mnist

D (jaxgan/models/autoencoder.py): stride-2 convs with batch norm and LeakyReLU(0.2) to a 64-d embedding, a
mirrored decoder; its energy is the per-pixel mean squared reconstruction error (images in [−1, 1]). D minimises
E[D(x)] + E[max(0, m − D(G(z)))], G minimises E[D(G(z))] + 0.1·f_PT (the paper's PT weight), m = 0.3 on this
scale of energy. G is experiments/dcgan_mnist.py's. Adam (β1 = 0.5) at 2e-4 for D and 1e-3 for G, the
alternating rule; the image evaluation of dcgan_mnist.
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.loss = "ebgan"
    config.discriminator.name = "autoencoder"
    config.discriminator.energy, config.discriminator.autoencoder_activation = "mse", "leaky_relu"
    config.discriminator.embedding_dim = 64
    config.energy.margin = 0.3
    config.energy.pull_away_weight = 0.1
    return config
