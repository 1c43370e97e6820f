r"""Grid of 25 with a two-hidden-layer discriminator: the setting in which consensus optimization covers the grid.

    python -m jaxgan.main --config=experiments/grid25_deep.py --workdir=/tmp/grid25_deep [--config.num_seeds=10]

Two hidden layers in D, consensus optimization (γ = 1), the non-saturating loss, Adam 1e-3 (β1 0.5) held constant
for 30000 steps and then decayed along a cosine to 0 at step 50000, and an EMA of G with decay 0.999. Why each of
these (the one-hidden-layer D of grid25.py leaves mass along the grid lines; a decay that starts before the rate has
done its work ends no better than the constant rate; the saturating loss strands a seed off the data), with the
pilots and the 10-seed results, is in BUILD_NOTES.md ("Grid of 25 with a two-hidden-layer discriminator").
"""

from jaxgan.config import default_config


def get_config():
    config = default_config()
    config.data.name = "grid"  # the grid of grid25.py: 5 × 5, spacing 2, std 0.05
    config.data.num_modes = 25
    config.data.scale = 2.0
    config.data.std = 0.05
    config.update_rule = "consensus"
    config.loss = "nonsaturating"  # the saturating loss stranded a seed off the data (BUILD_NOTES.md)
    config.discriminator.depth = 2
    config.num_steps = 50_000
    for player in (config.g_optimizer, config.d_optimizer):
        player.learning_rate = 1e-3
        player.cosine_decay_begin = 30_000  # the modes are covered and the EMA of G has levelled off by then
        player.cosine_decay_steps = 20_000
    config.ema_decay = 0.999
    config.eval_every_steps = 2_000
    config.checkpoint_every_steps = 2_000
    return config
