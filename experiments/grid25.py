r"""Grid of 25 Gaussians (5 × 5, spacing 2, std 0.05: PacGAN's grid) with an unrolled GAN.

    python -m jaxgan.main --config=experiments/grid25.py --workdir=/tmp/grid25

Same networks and optimizers as ring8 (Metz et al. 2016 settings); the grid spans [-4, 4]².
"""

from jaxgan.config import default_config


def get_config():
    config = default_config()
    config.data.name = "grid"
    config.data.num_modes = 25
    config.data.scale = 2.0  # spacing
    config.data.std = 0.05
    config.num_steps = 30_000
    return config
