r"""LapGAN (Denton, Chintala, Szlam & Fergus 2015) on mnist_5k: a Laplacian pyramid of generators, 7×7 → 14×14 →
28×28, and one conditional discriminator per level.

    python -m jaxgan.main --config=experiments/lapgan_mnist.py --workdir=/tmp/lapgan_mnist

The networks (jaxgan/models/lapgan.py): G_0 makes the 7×7 image from its third of z with the paper's fully connected
generator (256 hidden units), judged by a fully connected D_0 (256); after every step the level-0 GAN takes 20 more
steps on its own (`coarse_level_updates`, jaxgan.updates.with_coarse_level_updates: its own real batches and
optimizer states; the finer levels train exactly as without). The paper trains each level as a GAN of its own, as
long as it needs; the 7×7 level needs tens of thousands of updates, far more than the finer levels get in a run, and
its flaws grow at every finer level (BUILD_NOTES.md, "LapGAN's coarsest level needs more updates than the run
gives", has the measurements; `--config.coarse_level_updates=0 --config.generator.coarse_model=conv
--config.discriminator.coarse_model=conv --config.generator.coarse_width=16 --config.discriminator.coarse_width=16`
gives the earlier setting). G_1 and G_2 each add a band-pass residual at 14×14 and 28×28, reading the upsampled
coarser image and their own third of z as one extra plane (the paper's "4th colour plane"), three 3×3 convolutions
with 32 channels, and D_k has 32 too (the model's default is 64; 32 keeps a run within 30 minutes on a 2-core CPU,
and BUILD_NOTES.md, "LapGAN within 30 minutes on the CPU", has the times and FIDs of both widths). D decomposes any
image into its Laplacian pyramid and gives one logit per level: D_0 on the 7×7 image, D_k on (residual,
upsampled coarser image). The levels are independent (each G_k trained only through its D_k), as in the paper, and
trained as one game. As in the paper, each G_k is trained on the REAL coarse images (`conditioning = "real_coarse"`:
every step pairs G with the real batch, and D_k judges G_k's residual against the real image it
refines); samples chain the levels from z. Trained on its own chain instead (`--config.conditioning=none`), D_k
learned to tell real from fake by the coarse image, which G_k cannot change, and the finer levels added noise
(BUILD_NOTES.md, "LapGAN's discriminators judged the coarse image"); the module docstring lists every difference
from the paper. The training setting is experiments/dcgan_mnist.py's (non-saturating loss, Adam β1 = 0.5, batch 128,
z ~ N(0, I_100)) with the DCGAN paper's 2e-4 for G as well as D: with DCGAN's 1e-3 for G, G collapsed to one pattern
(BUILD_NOTES.md, "The image GAN zoo").
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.generator.name = config.discriminator.name = "lapgan"
    config.generator.base_width = config.discriminator.base_width = 32
    config.g_optimizer.learning_rate = 2e-4
    config.conditioning = "real_coarse"
    config.generator.coarse_model = config.discriminator.coarse_model = "mlp"
    config.generator.coarse_width = config.discriminator.coarse_width = 256
    config.coarse_level_updates = 20
    return config
