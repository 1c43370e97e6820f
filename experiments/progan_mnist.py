r"""Progressive growing (Karras et al. 2018) on mnist_5k: 7×7 → 14×14 → 28×28, each new resolution faded in.

    python -m jaxgan.main --config=experiments/progan_mnist.py --workdir=/tmp/progan_mnist

The players of jaxgan/models/progan.py: equalized learning rate in every layer, pixelwise feature normalization in
G, the minibatch standard deviation layer in D, G's linear output; the stage width 128 at 7×7, halved per stage.
The schedule is a function of the step (`progressive_phase_steps` = 300: 7×7 alone for 300 steps, then 14×14 fades
in over 300 and trains stabilised for 300, then 28×28 likewise; fully grown from step 1200). The paper's WGAN-GP
(λ = 10, one critic step per G step) with Adam (1e-3, β1 = 0, β2 = 0.99); its ε-drift term is left out. An EMA of
G (0.999) is evaluated beside G, as the paper samples from it.
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.generator.name = config.discriminator.name = "progan"
    config.generator.max_width = config.discriminator.max_width = 128
    config.progressive_phase_steps = 300
    config.loss = "wasserstein"
    config.penalty, config.penalty_weight = "wgan_gp", 10.0
    config.update_rule, config.d_steps = "alternating", 1
    config.z_dim = 128
    config.batch_size = 64
    config.ema_decay = 0.999
    for player in (config.g_optimizer, config.d_optimizer):
        player.learning_rate, player.b1, player.b2 = 1e-3, 0.0, 0.99
    config.num_steps = 1800
    return config
