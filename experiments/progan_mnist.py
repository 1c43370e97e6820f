r"""Progressive growing (Karras et al. 2018) on mnist_5k: 7×7 → 14×14 → 28×28, each new resolution faded in.

    python -m jaxgan.main --config=experiments/progan_mnist.py --workdir=/tmp/progan_mnist

The players of jaxgan/models/progan.py: equalized learning rate in every layer, pixelwise feature normalization in
G, the minibatch standard deviation layer in D, G's linear output; the stage width 64 at 7×7, halved per stage (min
16). The schedule is a function of the step (`progressive_phase_steps` = 125: 7×7 alone for 125 steps, then 14×14
fades in over 125 and trains stabilised for 125, then 28×28 likewise; fully grown from step 500, so 1000 of the 1500
steps are at full resolution; BUILD_NOTES.md, "ProGAN: shorter phases", compares it with 250-step phases). The
paper's Adam (1e-3, β1 = 0, β2 = 0.99) and one D step per G step, but the non-saturating loss instead of its WGAN-GP
and stage width 64 (the models' default is 128 and the paper's 512; at 128 a run on a 2-core CPU did not fit in 30
minutes, BUILD_NOTES.md, "The image GAN zoo"); `--config.loss=wasserstein --config.penalty=wgan_gp
--config.penalty_weight=10` gives the paper's objective (its ε-drift term is left out). An EMA of G (0.999) is
evaluated beside G, as the paper samples from it.
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.generator.name = config.discriminator.name = "progan"
    config.generator.max_width = config.discriminator.max_width = 64
    config.progressive_phase_steps = 125
    config.loss = "nonsaturating"
    config.update_rule, config.d_steps = "alternating", 1
    config.z_dim = 128
    config.batch_size = 64
    config.ema_decay = 0.999
    for player in (config.g_optimizer, config.d_optimizer):
        player.learning_rate, player.b1, player.b2 = 1e-3, 0.0, 0.99
    config.num_steps = 1500
    return config
