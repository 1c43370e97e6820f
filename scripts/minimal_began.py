r"""A minimal, independent BEGAN (Berthelot, Schumm & Metz 2017) on mnist_5k, in one file: the reference against
which experiments/began_mnist.py was measured when it failed to learn at the paper's γ = 0.5 (BUILD_NOTES.md,
"The image GAN zoo on mnist_5k: first runs": γ was the difference that mattered).

    python scripts/minimal_began.py --compare_one_step                       # one step against jaxgan's, exact
    python scripts/minimal_began.py --out=/tmp/began_min.json --samples_png=/tmp/began_min.png   # jaxgan's setting
    python scripts/minimal_began.py --gamma=0.5 --steps=10000 --eval_at=5000,10000                 # the paper's γ
    python scripts/minimal_began.py --arch=paper --g_tanh=false --z_dist=uniform --out=/tmp/began_paper.json
    python scripts/minimal_began.py --steps=20 --eval_at=20 --eval_samples=200   # a smoke run

What is independent of jaxgan: the training loop, the losses, the energies, the k_t controller, the optimizers,
the real-batch sampling and the noise (plain JAX + optax). What comes from jaxgan: the mnist_5k loader (data
only), the metric functions and the shipped digit classifier (so that the scores are jaxgan's), and with
`--arch=jaxgan` (the default) the two Flax Linen modules themselves (`DCGANGenerator`, `AutoencoderDiscriminator`,
built with the arguments jaxgan's registry gives them for this experiment), so that one step can be compared
exactly. `--arch=paper` uses the paper's networks written here with flax.linen layers.

The step (the paper's Section 3.4, both players from the same point, G's loss on the very samples D sees):

    L(v)  = mean over the H·W·C pixels of |v − D(v)|            (per example; D(v) the auto-encoder's output)
    L_D   = mean L(x) − k_t · mean L(G(z))                       (k_t a constant for the gradient)
    L_G   = mean L(G(z))                                          (gradient through G(z) in both places of L)
    k_t+1 = clip(k_t + λ_k (γ · mean L(x) − mean L(G(z))), 0, 1),  k_0 = 0
    M_global = mean L(x) + |γ · mean L(x) − mean L(G(z))|         (logged)

with all energies at the step's starting parameters, Adam for both players (lr 1e-4, β1 0.5, β2 0.999, eps 1e-8,
experiments/began_mnist.py's), batch 16, z ~ N(0, I_64), γ 1, λ_k 0.001, 15000 steps.

Differences from jaxgan's run (python -m jaxgan.main --config=experiments/began_mnist.py), all outside the math of a
step (`one_step_difference` checks that math: same parameters, batch and z in, same parameters, k and losses out):
* Random streams: real batches (uniform with replacement from the 4000 training digits, as jaxgan's) and z come
  from fold_in(key(seed), step) here, from `jaxgan.state.step_keys` there; initial parameters come from this
  script's own split of key(seed). The same seed is therefore not the same trajectory, only the same distribution.
* Evaluation: the same functions (FID, KID, IS with 10 splits, precision/recall with k = 3) of the shipped
  classifier's features against the 1000 held-out digits, of G with batch norm's running averages (train=False),
  on this script's fixed noise (key 2^31 − 1) rather than jaxgan's fold_in(state.key, 2^31 − 1); jaxgan's
  memorization fractions are not computed. `--eval_samples` < 1000 is only for smoke runs (FID is biased by n).
* jaxgan's `with_began_equilibrium` recomputes the energies for k in an extra forward pass; here they come from
  D's loss pass (the same numbers).

Differences from the paper (and how to toggle them here):
* Networks. jaxgan's (default): G is DCGAN's (Dense 7x7x64 - BN - ReLU - 4x4 transposed conv 32 - BN - ReLU -
  4x4 transposed conv 1 - tanh; base width 32); D encodes with one 4x4 stride-2 conv per scale (32, 64, ELU, no
  norm) to a linear h = 64 and decodes with the mirrored 4x4 transposed convs (learned sub-pixel upsampling),
  weights N(0, 0.02). The paper's (Section 3.5; `--arch=paper`, here with n = `--filters` = 32 filters, h =
  `--embedding` = 64): 3x3 convs with ELU, two per scale; the encoder sub-samples with stride-2 convs, its widths
  growing linearly (n, 2n, 3n), ending in a linear Dense to h; the decoder is Dense to 7x7xn (linear) then
  [conv-ELU, conv-ELU, nearest-neighbour upsample] blocks (7 -> 14 -> 28, no upsample after the last), then a
  3x3 conv to 1 channel; G has the decoder's architecture with its own weights. No batch norm anywhere; Glorot
  uniform weights (what TensorFlow's layers default to; the paper does not say). The paper's optional skip
  connections are not used. `--arch=paper_g` / `--arch=paper_d` swap in only one of the two networks.
* G's output: the paper's decoder ends in a plain conv (no tanh); jaxgan's G ends in tanh. `--g_tanh=false`
  (with jaxgan's G: its pre-tanh output, captured from its last layer).
* Noise: the paper samples z uniformly in [−1, 1]^Nz; jaxgan N(0, I). `--z_dist=uniform`.
* Learning rate: the paper (Section 4.1) starts Adam at 1e-4 and halves the rate when M_global stalls; neither
  jaxgan nor this script decays it. The public reimplementation carpedm20/BEGAN-tensorflow (recalled, not checked
  here) uses lr 8e-5, batch 16, n = 128, z uniform in [−1, 1]^64 and halves the rate every 100k steps. `--lr`,
  `--batch`.
* γ: the paper's 0.5 (`--gamma=0.5`) left k_t at 0 and G without digits for 10000 steps here; the experiment
  uses 1.
* Data and length: 28x28 grey digits (4000 of them) for 15000 steps, where the paper trains on 64x64 to 128x128
  CelebA faces for far longer.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = ROOT / "experiments" / "began_mnist.py"
IMAGE_SHAPE = (28, 28, 1)
EVAL_KEY = 2**31 - 1
# experiments/began_mnist.py's settings, which the defaults below reproduce (`one_step_difference` checks them
# against the loaded config, so a change to the experiment cannot pass unnoticed).
EXPERIMENT = dict(batch=16, z_dim=64, lr=1e-4, b1=0.5, b2=0.999, eps=1e-8, gamma=1.0, lambda_k=0.001, width=32,
                  kernel_size=4, embedding=64, steps=15000)

FLAGS = flags.FLAGS


def _define_flags() -> None:
    """The command line; defined only when run as a script, so that importing this module (tests) defines none."""
    flags.DEFINE_enum("arch", "jaxgan", ["jaxgan", "paper", "paper_g", "paper_d"],
                      "Players: jaxgan's DCGAN G and 4x4-conv auto-encoder D (built from jaxgan's modules), the "
                      "paper's 3x3-conv ELU networks, or the paper's G (paper_g) / D (paper_d) with jaxgan's other.")
    flags.DEFINE_integer("filters", 32, "n, the paper networks' base number of filters (paper: 64 or 128).")
    flags.DEFINE_integer("embedding", EXPERIMENT["embedding"], "h, the paper D's embedding size.")
    flags.DEFINE_float("lr", EXPERIMENT["lr"], "Adam learning rate of both players.")
    flags.DEFINE_float("lr_g", 0.0, "> 0: G's rate instead of --lr.")
    flags.DEFINE_float("lr_d", 0.0, "> 0: D's rate instead of --lr.")
    flags.DEFINE_float("b1", EXPERIMENT["b1"], "Adam β1 of both players.")
    flags.DEFINE_float("gamma", EXPERIMENT["gamma"], "γ, the diversity ratio.")
    flags.DEFINE_float("lambda_k", EXPERIMENT["lambda_k"], "λ_k, the gain of k_t's control.")
    flags.DEFINE_float("k0", 0.0, "k_0.")
    flags.DEFINE_integer("batch", EXPERIMENT["batch"], "Batch size (real and generated).")
    flags.DEFINE_integer("z_dim", EXPERIMENT["z_dim"], "Dimension of z.")
    flags.DEFINE_enum("z_dist", "normal", ["normal", "uniform"], "z ~ N(0, I) (jaxgan) or U[-1, 1] (the paper).")
    flags.DEFINE_bool("g_tanh", True, "G's output through tanh (jaxgan); the paper's G has none.")
    flags.DEFINE_integer("steps", EXPERIMENT["steps"], "Training steps.")
    flags.DEFINE_list("eval_at", ["5000", "10000", "15000"], "Steps at which to evaluate.")
    flags.DEFINE_integer("eval_samples", 1000, "Samples per evaluation (jaxgan: 1000).")
    flags.DEFINE_integer("log_every", 100, "Print the mean training metrics every this many steps.")
    flags.DEFINE_integer("seed", 0, "Seed.")
    flags.DEFINE_string("out", "", "Write the results here as JSON.")
    flags.DEFINE_string("samples_png", "", "Save the evaluation samples here (final 8x8 grid, one row per evaluation).")
    flags.DEFINE_bool("compare_one_step", False, "Only compare one step with jaxgan's and print the differences.")


# ---------------------------------------------------------------------------------------------------------------
# The players: a uniform interface over jaxgan's modules and the paper's networks.
# ---------------------------------------------------------------------------------------------------------------

_GLOROT = nn.initializers.xavier_uniform()


def _upsample(x: jax.Array) -> jax.Array:
    return x.repeat(2, axis=1).repeat(2, axis=2)  # nearest neighbour


class PaperDecoder(nn.Module):
    """The paper's decoder (and generator): Dense to 7x7xn (linear), then [conv3x3-ELU, conv3x3-ELU, upsample x2]
    blocks (7 -> 14 -> 28, no upsample after the last block), then conv3x3 to the image's channels (linear, or
    tanh with `tanh`). `train` is accepted and ignored (no batch norm)."""

    filters: int = 32
    channels: int = 1
    start: int = 7
    blocks: int = 3
    tanh: bool = False

    @nn.compact
    def __call__(self, h: jax.Array, train: bool = True) -> jax.Array:
        del train
        n = self.filters
        x = nn.Dense(self.start * self.start * n, kernel_init=_GLOROT)(h).reshape(-1, self.start, self.start, n)
        for block in range(self.blocks):
            for _ in range(2):
                x = nn.elu(nn.Conv(n, (3, 3), kernel_init=_GLOROT)(x))
            if block < self.blocks - 1:
                x = _upsample(x)
        x = nn.Conv(self.channels, (3, 3), kernel_init=_GLOROT)(x)
        return jnp.tanh(x) if self.tanh else x


class PaperAutoencoder(nn.Module):
    """The paper's discriminator: encoder conv3x3-ELU (n), then per scale [conv3x3-ELU x2 at width n·(i+1), and
    but at the last scale a stride-2 conv3x3-ELU sub-sampling], flatten, Dense to h (linear); then
    `PaperDecoder`. Returns the reconstruction."""

    filters: int = 32
    embedding: int = 64
    blocks: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        del train
        n, batch, channels = self.filters, x.shape[0], x.shape[-1]
        y = nn.elu(nn.Conv(n, (3, 3), kernel_init=_GLOROT)(x))
        for block in range(self.blocks):
            width = n * (block + 1)
            for _ in range(2):
                y = nn.elu(nn.Conv(width, (3, 3), kernel_init=_GLOROT)(y))
            if block < self.blocks - 1:
                y = nn.elu(nn.Conv(width, (3, 3), strides=(2, 2), kernel_init=_GLOROT)(y))
        h = nn.Dense(self.embedding, kernel_init=_GLOROT)(y.reshape(batch, -1))
        start = x.shape[1] // 2 ** (self.blocks - 1)
        return PaperDecoder(n, channels, start, self.blocks)(h)


class Players(NamedTuple):
    g_init: Callable[[jax.Array, jax.Array], tuple[Any, dict]]  # (key, z) -> (params, model state)
    g_apply: Callable[[Any, dict, jax.Array, bool], tuple[jax.Array, dict]]  # (params, state, z, train) -> (x, state)
    d_init: Callable[[jax.Array, jax.Array], Any]  # (key, x) -> params
    reconstruct: Callable[[Any, jax.Array], jax.Array]  # (params, x) -> D's reconstruction of x


def jaxgan_modules(width: int = EXPERIMENT["width"], kernel_size: int = EXPERIMENT["kernel_size"],
                   embedding: int = EXPERIMENT["embedding"]) -> tuple[nn.Module, nn.Module]:
    """jaxgan's two modules with the arguments jaxgan's registry builds them with for experiments/began_mnist.py
    (jaxgan/models/__init__.py: `_dcgan_generator`, `_autoencoder_discriminator`; strided_conv "auto" is nn.Conv
    for a first-order rule on a CPU, and space-to-depth is the same function anyway)."""
    from jaxgan.models.autoencoder import AutoencoderDiscriminator
    from jaxgan.models.dcgan import DCGANGenerator

    g = DCGANGenerator(IMAGE_SHAPE, width, 0, kernel_size=kernel_size, dtype=jnp.float32, hidden_dense=0)
    d = AutoencoderDiscriminator(width, embedding, kernel_size=kernel_size, energy="l1", norm="none",
                                 activation="elu", dtype=jnp.float32, space_to_depth=False)
    return g, d


def make_players(arch: str = "jaxgan", g_tanh: bool = True, filters: int = 32,
                 embedding: int = EXPERIMENT["embedding"]) -> Players:
    jaxgan_g, jaxgan_d = jaxgan_modules()
    paper_g, paper_d = arch in ("paper", "paper_g"), arch in ("paper", "paper_d")

    if paper_g:
        g_module = PaperDecoder(filters, IMAGE_SHAPE[-1], tanh=g_tanh)

        def g_init(key, z):
            return g_module.init(key, z)["params"], {}

        def g_apply(params, state, z, train):
            return g_module.apply({"params": params}, z), state
    else:
        g_module = jaxgan_g
        last = "ConvTranspose_1"  # the final transposed conv of the 28x28 DCGAN G (7 -> 14 -> 28), before its tanh

        def g_init(key, z):
            variables = dict(g_module.init(key, z, train=True))
            return variables.pop("params"), variables

        def g_apply(params, state, z, train):
            variables = {"params": params, **state}
            if g_tanh:
                if not train:
                    return g_module.apply(variables, z, train=False), state
                x, new_state = g_module.apply(variables, z, train=True, mutable=list(state))
                return x, dict(new_state)
            # no tanh: the output of G's last layer, captured before the module applies tanh to it
            x, new_state = g_module.apply(variables, z, train=train, mutable=[*state, "intermediates"],
                                          capture_intermediates=lambda mdl, _: mdl.name == last)
            new_state = dict(new_state)
            pre_tanh = new_state.pop("intermediates")[last]["__call__"][0]
            return pre_tanh, (new_state if train else state)

    if paper_d:
        d_module = PaperAutoencoder(filters, embedding)

        def d_init(key, x):
            return d_module.init(key, x)["params"]

        def reconstruct(params, x):
            return d_module.apply({"params": params}, x)
    else:
        d_module = jaxgan_d

        def d_init(key, x):
            return d_module.init(key, x)["params"]

        def reconstruct(params, x):
            return d_module.apply({"params": params}, x)["reconstruction"]

    return Players(g_init, g_apply, d_init, reconstruct)


# ---------------------------------------------------------------------------------------------------------------
# The BEGAN step.
# ---------------------------------------------------------------------------------------------------------------


def energy(x: jax.Array, reconstruction: jax.Array) -> jax.Array:
    """L(v) = mean over pixels of |v − D(v)|, one value per example [B]."""
    return jnp.mean(jnp.abs(x - reconstruction), axis=(1, 2, 3))


def adam(lr: float, b1: float = EXPERIMENT["b1"]) -> optax.GradientTransformation:
    return optax.adam(lr, b1=b1, b2=EXPERIMENT["b2"], eps=EXPERIMENT["eps"])


def make_step(players: Players, g_opt: optax.GradientTransformation, d_opt: optax.GradientTransformation,
              gamma: float, lambda_k: float) -> Callable:
    """step(s, real, z) -> (s, metrics), s = dict(g, gs, go, d, do, k): G's params, model state (batch norm's
    statistics), optimizer state; D's params and optimizer state; k_t. Both players from the same point."""

    def step(s, real, z):
        def g_objective(g_params):
            fake, g_state = players.g_apply(g_params, s["gs"], z, True)
            return jnp.mean(energy(fake, players.reconstruct(s["d"], fake))), (fake, g_state)

        (g_loss, (fake, g_state)), g_grads = jax.value_and_grad(g_objective, has_aux=True)(s["g"])
        fake = jax.lax.stop_gradient(fake)

        def d_objective(d_params):
            real_energy = jnp.mean(energy(real, players.reconstruct(d_params, real)))
            fake_energy = jnp.mean(energy(fake, players.reconstruct(d_params, fake)))
            return real_energy - s["k"] * fake_energy, (real_energy, fake_energy)

        (d_loss, (l_real, l_fake)), d_grads = jax.value_and_grad(d_objective, has_aux=True)(s["d"])
        g_updates, go = g_opt.update(g_grads, s["go"], s["g"])
        d_updates, do = d_opt.update(d_grads, s["do"], s["d"])
        balance = gamma * l_real - l_fake
        k = jnp.clip(s["k"] + lambda_k * balance, 0.0, 1.0)
        new = dict(g=optax.apply_updates(s["g"], g_updates), gs=g_state, go=go,
                   d=optax.apply_updates(s["d"], d_updates), do=do, k=k)
        metrics = dict(d_loss=d_loss, g_loss=g_loss, l_real=l_real, l_fake=l_fake, k=k,
                       m_global=l_real + jnp.abs(balance))
        return new, metrics

    return step


def sample_z(key: jax.Array, n: int, z_dim: int, dist: str = "normal") -> jax.Array:
    if dist == "uniform":
        return jax.random.uniform(key, (n, z_dim), jnp.float32, -1.0, 1.0)
    return jax.random.normal(key, (n, z_dim), jnp.float32)


# ---------------------------------------------------------------------------------------------------------------
# One step against jaxgan's.
# ---------------------------------------------------------------------------------------------------------------


def _max_abs(a: Any, b: Any) -> float:
    leaves = jax.tree.leaves(jax.tree.map(lambda x, y: jnp.max(jnp.abs(jnp.asarray(x, jnp.float32) - y)), a, b))
    return float(max(leaves)) if leaves else 0.0


def _max_rel(a: Any, b: Any) -> float:
    """The largest, over leaves, of max|a − b| / max|b|: relative to each leaf's own scale (Adam's second moments
    are ~1e-10 where its parameters are ~1)."""
    rel = lambda x, y: jnp.max(jnp.abs(jnp.asarray(x, jnp.float32) - y)) / jnp.maximum(jnp.max(jnp.abs(y)), 1e-30)
    leaves = jax.tree.leaves(jax.tree.map(rel, a, b))
    return float(max(leaves)) if leaves else 0.0


def _max_norm(a: Any) -> float:
    leaves = jax.tree.leaves(jax.tree.map(lambda x: jnp.max(jnp.abs(jnp.asarray(x, jnp.float32))), a))
    return float(max(leaves)) if leaves else 0.0


def one_step_difference(seed: int = 0, batch_size: int = 8) -> dict[str, float]:
    """One step of jaxgan's BEGAN (experiments/began_mnist.py, at `batch_size`) and one of `make_step` from the same
    state, on the same real batch and z; returns the max absolute differences of the results (NAME) and the same
    relative to each array's largest magnitude (NAME_rel), with the scale of the step (the largest parameter
    change of jaxgan's step) to judge them by. After one Adam step the first moments are (1 − β1)·gradient, so
    `g_opt_state` / `d_opt_state` compare the two implementations' gradients.

    The framework's state comes from its own `rule.init`; its real batch and z are reproduced here from the
    state's key as jaxgan's runner draws them (`make_train_chunk`: `data.sample(step_keys(state).data, B)`; the
    simultaneous rule: `game.sample_noise(step_keys(state).noise, B)`), and `real_diff`, `z_diff` say whether the
    reproduction matches."""
    from jaxgan.config import load_config_file
    from jaxgan.data.images import load_mnist_5k
    from jaxgan.state import step_keys
    from jaxgan.tasks import make_task
    from jaxgan.train import build_game
    from jaxgan.updates import make_update_rule

    config = load_config_file(CONFIG)
    expected = dict(batch=config.batch_size, z_dim=config.z_dim, lr=config.g_optimizer.learning_rate,
                    b1=config.g_optimizer.b1, b2=config.g_optimizer.b2, eps=config.g_optimizer.eps,
                    gamma=config.energy.gamma, lambda_k=config.energy.lambda_k, width=config.generator.base_width,
                    kernel_size=config.generator.kernel_size, embedding=config.discriminator.embedding_dim,
                    steps=config.num_steps)
    if expected != EXPERIMENT or config.d_optimizer.to_dict() != config.g_optimizer.to_dict():
        raise ValueError(f"experiments/began_mnist.py changed: {expected} (D: {config.d_optimizer}) != {EXPERIMENT}")
    config.batch_size, config.seed = batch_size, seed
    task = make_task(config)
    game = build_game(config, task)
    rule = make_update_rule(game, config)
    state = rule.init(jax.random.key(seed), jnp.zeros((batch_size, *task.data.shape), jnp.float32))

    # The runner's inputs of step 0, reproduced without jaxgan's samplers.
    step_key = jax.random.fold_in(state.key, 0)
    data_key, noise_key = jax.random.fold_in(step_key, 0), jax.random.fold_in(step_key, 1)
    train = jnp.asarray(load_mnist_5k(4000).train_images.astype(np.float64) * 2.0 / 255.0 - 1.0, jnp.float32)  # rounded once
    real = train[jax.random.randint(data_key, (batch_size,), 0, train.shape[0])]
    z = sample_z(noise_key, batch_size, config.z_dim)
    real_diff = _max_abs(real, task.data.sample(step_keys(state).data, batch_size))
    z_diff = _max_abs(z, game.sample_noise(step_keys(state).noise, batch_size))

    new_state, metrics = jax.jit(rule.step)(state, {"real": real[None]})

    players = make_players("jaxgan", g_tanh=True)
    step = jax.jit(make_step(players, adam(EXPERIMENT["lr"]), adam(EXPERIMENT["lr"]), EXPERIMENT["gamma"],
                             EXPERIMENT["lambda_k"]))
    s = dict(g=state.g_params, gs=state.g_model_state, go=state.g_opt_state, d=state.d_params,
             do=state.d_opt_state, k=state.loss_state["began_k"])
    mine, m = step(s, real, z)

    trees = dict(g_params=(mine["g"], new_state.g_params), d_params=(mine["d"], new_state.d_params),
                 g_batch_stats=(mine["gs"], new_state.g_model_state), g_opt_state=(mine["go"], new_state.g_opt_state),
                 d_opt_state=(mine["do"], new_state.d_opt_state))
    scalars = dict(k=(mine["k"], new_state.loss_state["began_k"]), d_loss=(m["d_loss"], metrics["d_loss"]),
                   g_loss=(m["g_loss"], metrics["g_loss"]), m_global=(m["m_global"], metrics["convergence"]))
    return {
        **{name: _max_abs(a, b) for name, (a, b) in {**trees, **scalars}.items()},
        **{f"{name}_rel": _max_rel(a, b) for name, (a, b) in {**trees, **scalars}.items()},
        "real_diff": real_diff,
        "z_diff": z_diff,
        # the scale: how far jaxgan's step moved, and the values compared
        "g_step": _max_abs(new_state.g_params, state.g_params),
        "d_step": _max_abs(new_state.d_params, state.d_params),
        "k_1": float(new_state.loss_state["began_k"]),
        "d_loss_value": float(metrics["d_loss"]),
        "g_loss_value": float(metrics["g_loss"]),
        "l_real_value": float(m["l_real"]),
        "g_params_scale": _max_norm(new_state.g_params),
        "d_params_scale": _max_norm(new_state.d_params),
    }


# ---------------------------------------------------------------------------------------------------------------
# Training and evaluation.
# ---------------------------------------------------------------------------------------------------------------


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax's lines on loading the classifier
    if FLAGS.compare_one_step:
        diffs = one_step_difference(FLAGS.seed, FLAGS.batch)
        for name, value in diffs.items():
            print(f"{name:18s} {value:.3e}")
        return

    from jaxgan.data.images import load_mnist_5k, to_model_range  # data only
    from jaxgan.metrics import image  # score only: jaxgan's metric functions of the shipped classifier's outputs
    from jaxgan.metrics.classifier import load_classifier

    cfg = {k: FLAGS[k].value for k in ("arch", "filters", "embedding", "lr", "lr_g", "lr_d", "b1", "gamma",
                                        "lambda_k", "k0", "batch", "z_dim", "z_dist", "g_tanh", "steps",
                                        "eval_samples", "seed")}
    print("config", cfg, flush=True)
    batch, z_dim, z_dist = cfg["batch"], cfg["z_dim"], cfg["z_dist"]
    data = load_mnist_5k(4000)
    train = to_model_range(data.train_images)  # [4000, 28, 28, 1] in [-1, 1]
    held_out_x = to_model_range(data.test_images)  # the 1000 held-out digits: the metrics' reference
    classify, _ = load_classifier("mnist_5k", IMAGE_SHAPE)
    held_out = jax.jit(lambda x: classify(x)[1])(held_out_x)

    players = make_players(cfg["arch"], cfg["g_tanh"], cfg["filters"], cfg["embedding"])
    g_opt, d_opt = adam(cfg["lr_g"] or cfg["lr"], cfg["b1"]), adam(cfg["lr_d"] or cfg["lr"], cfg["b1"])
    key = jax.random.key(cfg["seed"])
    g_key, d_key = jax.random.split(jax.random.fold_in(key, 0))  # steps use fold_in(key, i), i >= 1
    g_params, g_state = players.g_init(g_key, sample_z(g_key, batch, z_dim, z_dist))
    d_params = players.d_init(d_key, jnp.zeros((batch, *IMAGE_SHAPE), jnp.float32))
    s = dict(g=g_params, gs=g_state, go=g_opt.init(g_params), d=d_params, do=d_opt.init(d_params),
             k=jnp.asarray(cfg["k0"], jnp.float32))
    count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
    print(f"parameters: G {count(g_params):,}  D {count(d_params):,}", flush=True)
    step = make_step(players, g_opt, d_opt, cfg["gamma"], cfg["lambda_k"])

    @jax.jit
    def train_step(s, i, train):
        real_key, z_key = jax.random.split(jax.random.fold_in(key, i))
        real = train[jax.random.randint(real_key, (batch,), 0, train.shape[0])]
        return step(s, real, sample_z(z_key, batch, z_dim, z_dist))

    eval_z = sample_z(jax.random.key(EVAL_KEY), cfg["eval_samples"], z_dim, z_dist)

    @jax.jit
    def evaluate(s, held_out, held_out_x):
        samples, _ = players.g_apply(s["g"], s["gs"], eval_z, False)
        logits, features = classify(samples)
        precision, recall = image.precision_recall_from_features(held_out, features, k=3)
        inception_score, _ = image.inception_score_from_logits(logits, num_splits=10)
        kid_subset = min(1000, samples.shape[0], held_out.shape[0])
        return dict(
            fid=image.fid_from_features(held_out, features),
            kid=image.kid_from_features(held_out, features, num_subsets=50, subset_size=kid_subset),
            inception_score=inception_score, precision=precision, recall=recall,
            # energies of the 1000 held-out digits and of the evaluation samples, for comparison with the training ones
            eval_l_real=jnp.mean(energy(held_out_x, players.reconstruct(s["d"], held_out_x))),
            eval_l_fake=jnp.mean(energy(samples, players.reconstruct(s["d"], samples))),
            sample_mean=jnp.mean(samples), sample_std=jnp.std(samples), samples=samples[:64],
        )

    eval_at = {int(v) for v in FLAGS.eval_at}
    results, log, since, start, snapshots = [], [], [], time.perf_counter(), {}
    for i in range(1, cfg["steps"] + 1):
        s, m = train_step(s, i, train)
        since.append(m)
        if i % FLAGS.log_every == 0 or i == cfg["steps"]:
            mean = {k: float(np.mean([float(x[k]) for x in since])) for k in since[0]}
            since = []
            log.append(dict(step=i, **mean))
            print(f"step {i}  " + "  ".join(f"{k} {v:.4f}" for k, v in mean.items())
                  + f"  {time.perf_counter() - start:.0f}s", flush=True)
        if i in eval_at:
            ev = evaluate(s, held_out, held_out_x)
            snapshots[i] = np.clip((np.asarray(ev.pop("samples")) + 1) / 2, 0, 1)  # [-1, 1] -> [0, 1]
            ev = {k: float(v) for k, v in ev.items()}
            r = dict(step=i, **ev, k=float(m["k"]), l_real=float(m["l_real"]), l_fake=float(m["l_fake"]),
                     m_global=float(m["m_global"]), seconds=round(time.perf_counter() - start, 1))
            results.append(r)
            print("eval " + "  ".join(f"{k} {v:.4g}" for k, v in r.items()), flush=True)
    if FLAGS.samples_png and snapshots:
        from jaxgan.plotting import plot_image_snapshots

        plot_image_snapshots(FLAGS.samples_png, snapshots, title="minimal BEGAN: " + ", ".join(
            f"{k} {cfg[k]}" for k in ("arch", "gamma", "lambda_k", "lr", "batch", "z_dist", "g_tanh")
        ), count=len(snapshots))
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(dict(config=cfg, results=results, log=log), f, indent=1)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
