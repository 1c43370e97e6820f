r"""Grid of 25 in PacGAN's setting (experiments/grid25_pacgan.py, PacGAN4) with the learning rate held for 200000
steps, by which the modes are covered, and then decayed to 0 over 100000 more (cosine, both players).

    python -m jaxgan.main --config=experiments/grid25_pacgan_decay.py --workdir=/tmp/grid25_pacgan_decay

The first 200000 steps are grid25_pacgan.py's, so a run of it can be branched into this one at step 200000
(`--branch_from=WORKDIR --branch_step=200000`) instead of repeating them. Results in BUILD_NOTES.md.
"""

import pathlib

from jaxgan.config import load_config_file

HOLD_STEPS = 200_000
DECAY_STEPS = 100_000


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("grid25_pacgan.py"))
    for optimizer in (config.g_optimizer, config.d_optimizer):
        optimizer.cosine_decay_begin = HOLD_STEPS
        optimizer.cosine_decay_steps = DECAY_STEPS
    config.num_steps = HOLD_STEPS + DECAY_STEPS
    return config
