r"""Ring of 8 Gaussians with an unrolled GAN: the setting of Metz et al. 2016 (Unrolled GAN), Figure 1.

    python -m jaxgan.main --config=experiments/ring8.py --workdir=/tmp/ring8

8 Gaussians on a circle of radius 2 with std 0.02; z ~ N(0, I_256); G: 2 hidden layers of 128 ReLU; D: input
scaled by 1/4, 1 hidden layer of 128 ReLU; orthogonal init, gain 0.8; Adam(1e-4, β1 = 0.5) for both players;
batch 512; the minimax (saturating) loss; K = 10 unrolling steps on the same minibatch; Adam's eps_root 0 for G
and 1e-12 for D, whose steps the unroll differentiates through. These are the defaults of
`jaxgan.config.default_config`, restated here so the file documents the experiment; 50000 steps.

`ema_decay = 0.999`: an exponential moving average of G's parameters is kept beside G and evaluated on the same
noise (Yazıcı et al. 2019). It does not change the training, which stays the paper's; it averages out the
oscillation of G's samples around the modes, which is what limits the high-quality fraction of the raw G here
(BUILD_NOTES.md, "Ring of 8 at the paper's learning rate", has the 10-seed results of both).
"""

from jaxgan.config import default_config


def get_config():
    config = default_config()
    config.data.name = "ring"
    config.data.num_modes = 8
    config.data.scale = 2.0  # radius
    config.data.std = 0.02
    config.update_rule = "unrolled"
    config.unroll_steps = 10
    config.loss = "minimax"
    config.num_steps = 50_000  # at Adam 1e-4 the modes sharpen slowly: BUILD_NOTES.md has the trajectory
    config.eval_every_steps = config.checkpoint_every_steps = 5000
    config.ema_decay = 0.999
    return config
