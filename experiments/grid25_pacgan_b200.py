r"""Grid of 25, PacGAN4 at half the batch (50 packs of 4, 200 samples) with the learning rate held for 200000
steps and then decayed to 0 over 200000 more (cosine, both players): the setting run over ten seeds for the grid
goal (all 25 modes, ≥ 93.6% high quality, reverse KL < 0.04).

    python -m jaxgan.main --config=experiments/grid25_pacgan_b200.py --config.num_seeds=10 \
        --workdir=/tmp/grid25_pacgan_b200

It is grid25_pacgan_decay.py with `batch_size=200` and a decay twice as long. Its first 200000 steps are
grid25_pacgan.py's at `--config.batch_size=200`, so such a run can be branched into this one at step 200000
(`--branch_from=WORKDIR --branch_step=200000`). Why the smaller batch and the longer decay, and the results,
are in BUILD_NOTES.md.
"""

import pathlib

from jaxgan.config import load_config_file

DECAY_STEPS = 200_000


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("grid25_pacgan_decay.py"))
    config.batch_size = 50 * config.packing
    for optimizer in (config.g_optimizer, config.d_optimizer):
        optimizer.cosine_decay_steps = DECAY_STEPS
    config.num_steps = config.g_optimizer.cosine_decay_begin + DECAY_STEPS
    config.checkpoint_every_steps = 10_000
    return config
