r"""InfoGAN (Chen et al. 2016) on mnist_5k: one 10-way categorical code and two continuous codes, unsupervised.

    python -m jaxgan.main --config=experiments/infogan_mnist.py --workdir=/tmp/infogan_mnist
    python scripts/reproduce_infogan.py   # the paper's figure (rows: the categorical code; columns: a continuous code)

The paper's MNIST latent (z ~ N(0, I_62), c1 ~ Cat(10), c2, c3 ~ U(−1, 1)), its networks (Appendix C.1; G: FC 1024 -
FC 7x7x128 - deconv 64 - deconv 1, D: conv 64 - conv 128 - FC 1024, all with batch norm but D's first layer; the Q
head on D's FC 1024 features: FC 128 - BN - LReLU, then the code logits and the continuous codes' means) and
learning rates (G 1e-3, D 2e-4), with experiments/dcgan_mnist.py's training otherwise. The paper's networks rather
than dcgan_mnist's smaller ones because with those the code did not pick the digit (BUILD_NOTES.md, "Image GANs:
what is measured so far", the InfoGAN item). G and Q both minimise λ·L_I with λ = 1 for the categorical code and 0.1
for the continuous ones (jaxgan/conditioning.py). No labels are used in training; eval.json's `code_accuracy` is the
agreement of the categorical code with the digit the classifier sees, under the best one-to-one matching (the paper
reports about 5% error on MNIST).
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.conditioning = "infogan"
    config.z_dim = 62
    config.info.categorical, config.info.continuous = 10, 2
    config.info.weight, config.info.continuous_weight = 1.0, 0.1
    config.generator.base_width = config.discriminator.base_width = 64
    config.generator.hidden_dense = config.discriminator.hidden_dense = 1024
    config.discriminator.num_convs = 2
    config.g_optimizer.learning_rate, config.d_optimizer.learning_rate = 1e-3, 2e-4
    return config
