r"""The Dirac-GAN of Mescheder, Geiger, Nowozin 2018: data at 0, G = δ_θ, D_ψ(x) = ψx, plain gradient steps.

    python -m jaxgan.main --config=experiments/dirac.py --workdir=/tmp/dirac [--config.update_rule=extragradient]
        [--config.loss=wasserstein] [--config.penalty=r1 --config.penalty_weight=1.0]

Starts at (θ, ψ) = (1, 1). samples.png shows the update field and the trajectory; eval.json holds
`distance_to_equilibrium` and `jacobian_eigenvalues` ([real, imag] pairs of the Jacobian of the update field at the
equilibrium (0, 0) for the configured loss and penalty). With the default minimax loss and no regulariser the
eigenvalues are ±f'(0)i = ±i/2, a pure rotation, and simultaneous gradient steps spiral out from the start; the
non-saturating loss has the same eigenvalues but its steps from (1, 1) spiral in. Under the gradient penalties
(wgan_gp, dragan) the field jumps at ψ = 0, so `jacobian_eigenvalues` is null with a `jacobian_note` saying why.
BUILD_NOTES.md ("Dirac-GAN") has the distances every method reaches.
"""

from jaxgan.config import default_config


def get_config():
    config = default_config()
    config.data.name = "dirac"
    config.generator.name, config.discriminator.name = "dirac", "linear"
    config.evaluations = ("dirac",)
    config.loss = "minimax"
    config.update_rule = "simultaneous"
    config.z_dim = 1
    config.batch_size = 1
    for player in (config.g_optimizer, config.d_optimizer):
        player.name = "sgd"
        player.learning_rate = 0.1
    config.num_steps = 500
    config.log_every_steps = 100
    config.eval_every_steps = 5  # one trajectory point per evaluation
    config.checkpoint_every_steps = 500
    config.steps_per_dispatch = 100
    return config
