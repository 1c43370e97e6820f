r"""Grid of 25 in the setting of PacGAN's Table 1 (Lin, Khetan, Fanti & Oh 2018): PacGAN4 by default.

    python -m jaxgan.main --config=experiments/grid25_pacgan.py --workdir=/tmp/grid25_pacgan [--config.packing=1]

The networks, optimizer and length of the authors' grid experiment (their `2DGrid_GAN&PacGAN` configuration):
z ~ N(0, I₂); G has 4 hidden layers of 400 units (bias-free linear map, batch norm, ReLU) and a linear output;
D has 3 maxout layers of 200 units with 5 pieces and a linear output; every kernel ~ N(0, 0.02²), biases 0; the
non-saturating loss with both players updated simultaneously from the same batch; Adam 1e-4, β1 0.8; 100 packs
per batch (100·m samples) for 400 epochs of 100000 samples, 400000 steps. The authors draw their 100000 training
samples once; here every batch is fresh. `--config.packing=m` with `--config.batch_size=100·m` gives PacGANm
(m = 1: the plain GAN row). Results and their comparison with the paper are in BUILD_NOTES.md.
"""

from jaxgan.config import default_config


def get_config():
    config = default_config()
    config.data.name = "grid"  # the grid of grid25.py: {−4, −2, 0, 2, 4}², std 0.05
    config.data.num_modes = 25
    config.data.scale = 2.0
    config.data.std = 0.05
    config.z_dim = 2
    config.generator.width = 400
    config.generator.depth = 4
    config.generator.batch_norm = True
    config.discriminator.width = 200
    config.discriminator.depth = 3
    config.discriminator.maxout_pieces = 5
    config.discriminator.input_scale = 1.0
    for player in (config.generator, config.discriminator):
        player.weight_init = "normal"
        player.init_gain = 0.02
    config.loss = "nonsaturating"
    config.update_rule = "simultaneous"
    for optimizer in (config.g_optimizer, config.d_optimizer):
        optimizer.learning_rate = 1e-4
        optimizer.b1 = 0.8
    config.packing = 4
    config.batch_size = 100 * config.packing
    config.num_steps = 400_000
    config.eval_every_steps = 20_000
    config.checkpoint_every_steps = 20_000
    config.log_every_steps = 5_000
    return config
