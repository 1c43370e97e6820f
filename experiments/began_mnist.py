r"""BEGAN (Berthelot, Schumm & Metz 2017) on mnist_5k: an auto-encoder discriminator with the L1 reconstruction
error as its energy, and the equilibrium controller k_t.

    python -m jaxgan.main --config=experiments/began_mnist.py --workdir=/tmp/began_mnist

D (jaxgan/models/autoencoder.py): stride-2 convs with ELU and no batch norm to a 64-d embedding (the paper's
h = 64), a mirrored decoder; energy L(v) = mean |v − D(v)|. D minimises L(x) − k_t·L(G(z)), G minimises L(G(z)),
k_{t+1} = clip(k_t + λ_k(γ·L(x) − L(G(z))), 0, 1) with λ_k = 0.001 (the paper's), k_0 = 0; both players step
simultaneously (the paper's update) with Adam (1e-4, β1 = 0.5) at the paper's batch of 16, for 15000 steps;
z ~ N(0, I_64). The convergence measure M_global = L(x) + |γ·L(x) − L(G(z))| is logged as `convergence` with k as
`began_k` (metrics.jsonl, TensorBoard). G is experiments/dcgan_mnist.py's (the paper's G mirrors its decoder; a
deliberate simplification).

γ = 1, not the paper's 0.5: on these digits G's samples reach L(G(z)) ≈ γ·L(x) for γ = 0.5 without being digits,
k_t then stays at 0 (D never pushes the samples' energy up) and the samples never become digits; at γ = 1, k_t
stays positive and they do (BUILD_NOTES.md, "The image GAN zoo": the toggles measured one at a time).
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.loss = "began"
    config.update_rule = "simultaneous"
    config.discriminator.name = "autoencoder"
    config.discriminator.energy, config.discriminator.autoencoder_activation = "l1", "elu"
    config.discriminator.norm = "none"
    config.discriminator.embedding_dim = 64
    config.z_dim = 64
    config.energy.gamma, config.energy.lambda_k = 1.0, 0.001
    config.batch_size = 16
    config.num_steps = 15000
    config.eval_every_steps = 2500
    for player in (config.g_optimizer, config.d_optimizer):
        player.learning_rate, player.b1 = 1e-4, 0.5
    return config
