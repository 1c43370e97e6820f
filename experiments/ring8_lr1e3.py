r"""The ring8 experiment of Metz et al. 2016 at learning rate 1e-3 for both players: the fast demo.

    python -m jaxgan.main --config=experiments/ring8_lr1e3.py --workdir=/tmp/ring8_lr1e3

Everything else is the paper's setting (experiments/ring8.py, Adam 1e-4) but for the EMA of G, which this file does
not keep. The paper's rate needs tens of thousands of steps to sharpen all 8 modes and ten times the rate far fewer,
so this is what `scripts/demo.sh`
and the many-method ring table (`scripts/reproduce_mixture_tables.py`) train. BUILD_NOTES.md has both settings'
results.
"""

from jaxgan.config import default_config


def get_config():
    config = default_config()
    config.g_optimizer.learning_rate = 1e-3
    config.d_optimizer.learning_rate = 1e-3
    config.num_steps = 10_000
    config.eval_every_steps = 1000
    config.checkpoint_every_steps = 5000
    return config
