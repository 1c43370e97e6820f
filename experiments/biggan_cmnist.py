r"""BigGAN's tricks (Brock et al. 2019) on class-conditional mnist_5k: hierarchical latents with a shared class
embedding feeding conditional batch norm, the projection discriminator, orthogonal regularization of G, an EMA of
G, and the truncation trick (`scripts/truncation_curve.py` evaluates the finished run over ψ).

    python -m jaxgan.main --config=experiments/biggan_cmnist.py --workdir=/tmp/biggan_cmnist
    python scripts/truncation_curve.py --workdir=/tmp/biggan_cmnist   # the FID/IS trade-off over ψ

experiments/sngan_mnist.py's ResNets with: z ~ N(0, I_120) split into three 40-d chunks (one for the first linear
layer, one per residual block), each concatenated with a shared 32-d class embedding to set that block's
conditional batch-norm gains and biases; D with the projection term ⟨embed(y), φ(x)⟩ (conditioning
"projection"); the hinge loss; orthogonal regularization β = 1e-4 on G (class embedding excepted); G's
exponential moving average (decay 0.999) evaluated beside G; Adam with β1 = 0, β2 = 0.999 and the paper's two
rates, 5e-5 for G and 2e-4 for D, raised fourfold here (2e-4 / 8e-4) for this run's length, one D step per G step
(the paper: two).
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("sngan_mnist.py"))
    config.conditioning = "projection"
    config.z_dim = 120
    config.generator.hierarchical_latents = True
    config.generator.shared_embedding_dim = 32
    config.g_optimizer.orthogonal_regularization = 1e-4
    config.ema_decay = 0.999
    for player in (config.g_optimizer, config.d_optimizer):
        player.b1, player.b2 = 0.0, 0.999
    config.g_optimizer.learning_rate, config.d_optimizer.learning_rate = 2e-4, 8e-4
    return config
