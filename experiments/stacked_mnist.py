r"""Stacked MNIST (Metz et al. 2016, Section 3.3): three digits as R, G, B, 1000 modes; an unrolled DCGAN.

    python -m jaxgan.main --config=experiments/stacked_mnist.py --workdir=/tmp/stacked_mnist
    python scripts/reproduce_stacked_mnist.py   # K ∈ {0, 1, 5, 10}, several seeds, beside the published table

Each real example stacks three independently drawn mnist_5k training digits (labels 100·r + 10·g + b). G is
experiments/dcgan_mnist.py's (base width 32, 28×28×3 output); D is a quarter of its width (base width 8), the small
discriminator with which the paper shows the unrolled objective recovering modes. Adam 2e-4 for both players
(DCGAN's rate; experiments/stacked_mnist_paper.py has the rates of PacGAN's code for this experiment; with
dcgan_mnist.py's G rate of 1e-3, K = 0 did not collapse: BUILD_NOTES.md, "GPU session"), β1 = 0.5, unrolled K = 5
through D's Adam. Evaluation: each channel of `eval_num_samples` samples is classified by the shipped MNIST
classifier; eval.json has `modes` (distinct triples, of 1000) and `kl`, KL(p ‖ uniform) of the triple histogram
(jaxgan.metrics.image.mode_coverage), beside FID, KID, IS, precision and recall in the channels' concatenated
classifier features against held-out triples (jaxgan.metrics.evaluations.stacked_features).
"""

import pathlib

from jaxgan.config import load_config_file


def get_config():
    config = load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))
    config.data.name = "stacked_mnist"
    config.discriminator.base_width = 8
    config.loss = "minimax"
    config.g_optimizer.learning_rate = config.d_optimizer.learning_rate = 2e-4
    config.update_rule, config.unroll_steps = "unrolled", 5
    config.batch_size = 64
    config.num_steps = 5000
    config.eval_num_samples = 10000
    config.eval_every_steps = config.checkpoint_every_steps = 1000
    return config
