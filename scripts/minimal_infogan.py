r"""A minimal, independent InfoGAN (Chen et al. 2016) on mnist_5k, in one file: the measurements that found why
experiments/infogan_mnist.py's categorical code did not pick the digit (BUILD_NOTES.md, "Image GANs").

    python scripts/minimal_infogan.py --out=/tmp/infogan_min.json                     # jaxgan's earlier setting
    python scripts/minimal_infogan.py --arch=paper --lr_g=1e-3 --out=/tmp/infogan_p.json  # the paper's

Model, losses and training are plain JAX + optax + flax.linen layers; only the data (the mnist_5k loader) and the
score (the shipped classifier, `code_accuracy`'s Hungarian matching) come from jaxgan, so the score is the same.

Defaults reproduce experiments/infogan_mnist.py as it was before it took the paper's networks and learning rates: latent z ~ N(0, I_62), c1 ~ Cat(10) (one-hot), c2, c3 ~ U(−1, 1),
concatenated as G's input; DCGAN players at base width 32 (G: Dense 7x7x64 - BN - ReLU - deconv 32 - BN - ReLU -
deconv 1 - tanh; D: conv 32 - lrelu - conv 64 - BN - lrelu - conv 128 - BN - lrelu - Dense 1; Q on D's flattened
trunk: Dense 128 - BN - lrelu - Dense 12); non-saturating loss; Adam 2e-4, β1 0.5 for both; batch 128; one D
step then one G step on fresh noise; D and G both add λ·CE(Q_cat, c1) + λ_c·½‖Q_μ − c_cont‖² (λ 1, λ_c 0.1).
`--arch=paper` uses the paper's MNIST networks (D: conv 64 - lrelu - conv 128 - BN - lrelu - FC 1024 - BN -
lrelu; Q: FC 128 - BN - lrelu on the FC 1024 features; G: FC 1024 - BN - ReLU - FC 7x7x128 - BN - ReLU - deconv
64 - BN - ReLU - deconv 1). Evaluation as jaxgan's: 1000 samples of G (running batch-norm averages) on fixed
noise with c1 cycling 0..9, each classified by the shipped classifier; code_accuracy = agreement of c1 with the
digit under the best one-to-one matching. Also reported: q_accuracy, how often Q recovers c1 from G(z, c).
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

sys.path.insert(0, __file__.rsplit("/scripts/", 1)[0])

Z_DIM, N_CAT, N_CONT = 62, 10, 2

flags.DEFINE_enum("arch", "dcgan32", ["dcgan32", "paper", "paper_g", "paper_d"], "Players: jaxgan's DCGAN at width "
                  "32, the paper's MNIST networks, or the paper's G (paper_g) / D+Q (paper_d) with the other DCGAN.")
flags.DEFINE_float("lr_g", 2e-4, "G's Adam learning rate (paper: 1e-3).")
flags.DEFINE_float("lr_d", 2e-4, "D's (and Q's) Adam learning rate (paper: 2e-4).")
flags.DEFINE_integer("batch", 128, "Batch size.")
flags.DEFINE_float("info_weight", 1.0, "λ of the categorical code.")
flags.DEFINE_float("cont_weight", 0.1, "λ of the continuous codes (official code: 1.0).")
flags.DEFINE_bool("info_to_g", True, "G's loss includes λ·L_I (False: G gets no information gradient).")
flags.DEFINE_bool("info_in_d", True, "D's step trains Q (and D's trunk) with λ·L_I.")
flags.DEFINE_integer("steps", 1500, "Training steps.")
flags.DEFINE_list("eval_at", ["500", "1000", "1500"], "Steps at which to evaluate.")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_string("out", "", "Write the results here as JSON.")
flags.DEFINE_string("state", "", "Resumable state file: continue from it if it exists; save to it on stopping.")
flags.DEFINE_float("max_seconds", 0.0, "> 0: stop after about this long (saving --state); rerun to continue.")
FLAGS = flags.FLAGS

W_INIT = nn.initializers.normal(0.02)


def scale_init(key, shape, dtype=jnp.float32):
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def bn(train: bool, name: str | None = None):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, scale_init=scale_init, name=name)


# Which of a 4x4, stride-2, "SAME" transposed convolution's taps u (lax.conv_transpose's layout, no kernel flip)
# reach output phase a (row 2m + a) from input row m - 1 + t: y[2m] = x[m-1] k[0] + x[m] k[2],
# y[2m+1] = x[m] k[1] + x[m+1] k[3].
_TAPS = np.zeros((2, 3, 4), np.float32)
_TAPS[0, 0, 0] = _TAPS[0, 1, 2] = _TAPS[1, 1, 1] = _TAPS[1, 2, 3] = 1.0


class Deconv(nn.Module):
    """nn.ConvTranspose(features, (4, 4), (2, 2), "SAME") (same parameters, same outputs), computed as one 3x3
    convolution to 4·features channels and a depth-to-space shuffle: XLA's CPU backend differentiates the
    input-dilated convolution of a transposed convolution several times slower."""

    features: int
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        k = self.param("kernel", W_INIT, (4, 4, x.shape[-1], self.features))
        sub = jnp.einsum("atu,bsv,uvio->tsiabo", _TAPS, _TAPS, k).reshape(3, 3, x.shape[-1], 4 * self.features)
        y = jax.lax.conv_general_dilated(x, sub, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        n, h, w, _ = y.shape
        y = y.reshape(n, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, self.features)
        return y + self.param("bias", nn.initializers.zeros_init(), (self.features,)) if self.use_bias else y


class Generator(nn.Module):
    paper: bool = False

    @nn.compact
    def __call__(self, x, train: bool = True):
        if self.paper:  # FC 1024 - BN - ReLU - FC 7x7x128 - BN - ReLU - deconv 64 - BN - ReLU - deconv 1
            x = nn.relu(bn(train, "BatchNorm_fc")(nn.Dense(1024, use_bias=False, kernel_init=W_INIT, name="fc")(x)))
            width = 128
        else:
            width = 64
        x = nn.Dense(7 * 7 * width, use_bias=False, kernel_init=W_INIT, name="Dense_0")(x).reshape(-1, 7, 7, width)
        x = nn.relu(bn(train, "BatchNorm_0")(x))
        x = Deconv(width // 2, use_bias=False, name="ConvTranspose_0")(x)
        x = nn.relu(bn(train, "BatchNorm_1")(x))
        x = Deconv(1, name="ConvTranspose_1")(x)
        return jnp.tanh(x)


class Discriminator(nn.Module):
    """Returns (D's logit [B], code logits [B, 10], continuous means [B, 2]); Q shares D's trunk."""

    paper: bool = False

    @nn.compact
    def __call__(self, x, train: bool = True):
        lrelu = lambda v: nn.leaky_relu(v, 0.2)
        if self.paper:  # conv 64 - lrelu - conv 128 - BN - lrelu - FC 1024 - BN - lrelu
            x = lrelu(nn.Conv(64, (4, 4), (2, 2), "SAME", kernel_init=W_INIT, name="Conv_0")(x))
            x = nn.Conv(128, (4, 4), (2, 2), "SAME", use_bias=False, kernel_init=W_INIT, name="Conv_1")(x)
            x = lrelu(bn(train, "BatchNorm_0")(x)).reshape(x.shape[0], -1)
            x = lrelu(bn(train, "BatchNorm_fc")(nn.Dense(1024, use_bias=False, kernel_init=W_INIT, name="fc")(x)))
        else:  # conv 32 - lrelu - conv 64 - BN - lrelu - conv 128 - BN - lrelu (28 -> 14 -> 7 -> 4)
            x = lrelu(nn.Conv(32, (4, 4), (2, 2), "SAME", kernel_init=W_INIT, name="Conv_0")(x))
            x = nn.Conv(64, (4, 4), (2, 2), "SAME", use_bias=False, kernel_init=W_INIT, name="Conv_1")(x)
            x = lrelu(bn(train, "BatchNorm_0")(x))
            x = nn.Conv(128, (4, 4), (2, 2), "SAME", use_bias=False, kernel_init=W_INIT, name="Conv_2")(x)
            x = lrelu(bn(train, "BatchNorm_1")(x)).reshape(x.shape[0], -1)
        logit = nn.Dense(1, kernel_init=W_INIT, name="logit")(x)[:, 0]
        q = nn.Dense(128, use_bias=False, kernel_init=W_INIT, name="q_hidden")(x)
        q = lrelu(bn(train, "BatchNorm_q")(q))
        codes = nn.Dense(N_CAT + N_CONT, kernel_init=W_INIT, name="q_out")(q)
        return logit, codes[:, :N_CAT], codes[:, N_CAT:]


def g_input(z, cat, cont):
    return jnp.concatenate([z, jax.nn.one_hot(cat, N_CAT), cont], axis=-1)


def latent(key, n):
    kz, kc, ku = jax.random.split(key, 3)
    return (jax.random.normal(kz, (n, Z_DIM)), jax.random.randint(kc, (n,), 0, N_CAT),
            jax.random.uniform(ku, (n, N_CONT), minval=-1.0, maxval=1.0))


def info_loss(cat_logits, cont_mean, cat, cont, w_cat, w_cont):
    """λ·CE(Q_cat, c1) + λ_c·½‖Q_μ − c_cont‖², batch means: −λ·L_I up to constants."""
    ce = optax.softmax_cross_entropy_with_integer_labels(cat_logits, cat).mean()
    return w_cat * ce + w_cont * 0.5 * jnp.sum((cont_mean - cont) ** 2, -1).mean()


def make_fns(G, D, g_opt, d_opt, cfg):
    """(d_loss, g_loss, step): the losses at given inputs and one alternating step (D then G), as pure functions."""

    def d_loss(d_params, d_stats, real, fake, cat, cont):
        (real_logit, _, _), upd = D.apply({"params": d_params, "batch_stats": d_stats}, real, mutable=["batch_stats"])
        (fake_logit, cl, cm), upd = D.apply({"params": d_params, **upd}, fake, mutable=["batch_stats"])
        loss = jax.nn.softplus(-real_logit).mean() + jax.nn.softplus(fake_logit).mean()
        li = info_loss(cl, cm, cat, cont, cfg["info_weight"], cfg["cont_weight"])
        return loss + (li if cfg["info_in_d"] else 0.0), (upd["batch_stats"], li)

    def g_loss(g_params, g_stats, d_params, d_stats, z, cat, cont):
        fake, upd = G.apply({"params": g_params, "batch_stats": g_stats}, g_input(z, cat, cont), mutable=["batch_stats"])
        (fake_logit, cl, cm), _ = D.apply({"params": d_params, "batch_stats": d_stats}, fake, mutable=["batch_stats"])
        li = info_loss(cl, cm, cat, cont, cfg["info_weight"], cfg["cont_weight"])
        loss = jax.nn.softplus(-fake_logit).mean() + (li if cfg["info_to_g"] else 0.0)
        return loss, (upd["batch_stats"], li, jnp.mean(jnp.argmax(cl, -1) == cat))

    def step(s, real, lat_d, lat_g):
        """s = dict(g, gs, go, d, ds, do): params, batch stats, optimizer state of G and D."""
        fake, upd = G.apply({"params": s["g"], "batch_stats": s["gs"]}, g_input(*lat_d), mutable=["batch_stats"])
        fake = jax.lax.stop_gradient(fake)
        (dl, (ds, li_d)), dg = jax.value_and_grad(d_loss, has_aux=True)(s["d"], s["ds"], real, fake, lat_d[1], lat_d[2])
        du, do = d_opt.update(dg, s["do"], s["d"])
        d = optax.apply_updates(s["d"], du)
        (gl, (gs, li_g, q_acc)), gg = jax.value_and_grad(g_loss, has_aux=True)(
            s["g"], upd["batch_stats"], d, ds, *lat_g)
        gu, go = g_opt.update(gg, s["go"], s["g"])
        g = optax.apply_updates(s["g"], gu)
        return dict(g=g, gs=gs, go=go, d=d, ds=ds, do=do), dict(d_loss=dl, g_loss=gl, info_g=li_g, q_acc=q_acc)

    return d_loss, g_loss, step


def build(cfg, key, batch):
    G = Generator(paper=cfg["arch"] in ("paper", "paper_g"))
    D = Discriminator(paper=cfg["arch"] in ("paper", "paper_d"))
    g_opt = optax.adam(cfg["lr_g"], b1=0.5, b2=0.999, eps=1e-8)
    d_opt = optax.adam(cfg["lr_d"], b1=0.5, b2=0.999, eps=1e-8)
    kg, kd = jax.random.split(key)
    gv = G.init(kg, g_input(*latent(kg, batch)))
    dv = D.init(kd, jnp.zeros((batch, 28, 28, 1)))
    s = dict(g=gv["params"], gs=gv["batch_stats"], go=g_opt.init(gv["params"]),
             d=dv["params"], ds=dv["batch_stats"], do=d_opt.init(dv["params"]))
    return G, D, g_opt, d_opt, s


def main(argv):
    del argv
    from jaxgan.data.images import load_mnist_5k  # data only
    from jaxgan.metrics.classifier import load_classifier  # score only
    from jaxgan.metrics.evaluations import code_accuracy

    cfg = {k: FLAGS[k].value for k in ("arch", "lr_g", "lr_d", "batch", "info_weight", "cont_weight", "info_to_g",
                                        "info_in_d", "steps", "seed")}
    print("config", cfg, flush=True)
    train = jnp.asarray(load_mnist_5k(4000).train_images.astype(np.float64) * 2.0 / 255.0 - 1.0, jnp.float32)  # rounded once
    classify, _ = load_classifier("mnist_5k", (28, 28, 1))
    key = jax.random.key(cfg["seed"])
    G, D, g_opt, d_opt, s = build(cfg, key, cfg["batch"])
    _, _, step = make_fns(G, D, g_opt, d_opt, cfg)

    @jax.jit
    def train_step(s, k):
        kr, kd, kg = jax.random.split(k, 3)
        real = train[jax.random.randint(kr, (cfg["batch"],), 0, train.shape[0])]
        return step(s, real, latent(kd, cfg["batch"]), latent(kg, cfg["batch"]))

    eval_z, _, eval_cont = latent(jax.random.key(2**31 - 1), 1000)
    eval_cat = jnp.arange(1000) % N_CAT

    @jax.jit
    def evaluate(s):
        x = G.apply({"params": s["g"], "batch_stats": s["gs"]}, g_input(eval_z, eval_cat, eval_cont), train=False)
        digits = jnp.argmax(classify(x)[0], -1)
        counts = jnp.zeros((N_CAT, 10)).at[eval_cat, digits].add(1.0)
        _, cl, _ = D.apply({"params": s["d"], "batch_stats": s["ds"]}, x, mutable=["batch_stats"])[0]
        return counts, jnp.mean(jnp.argmax(cl, -1) == eval_cat)

    eval_at = {int(v) for v in FLAGS.eval_at}
    results, start, logs, first, elapsed = [], time.perf_counter(), [], 1, 0.0
    if FLAGS.state and os.path.exists(FLAGS.state):  # resume: same per-step keys, so the same run
        with open(FLAGS.state, "rb") as f:
            saved = pickle.load(f)
        assert saved["config"] == cfg, (saved["config"], cfg)
        s, first, results, elapsed = saved["s"], saved["step"] + 1, saved["results"], saved["elapsed"]
        print(f"resumed at step {saved['step']}", flush=True)
    start -= elapsed
    for i in range(first, cfg["steps"] + 1):
        s, m = train_step(s, jax.random.fold_in(key, i))
        logs.append(m)
        if i % 100 == 0:
            mean = {k: float(np.mean([float(l[k]) for l in logs])) for k in logs[0]}
            logs = []
            print(f"step {i}  " + "  ".join(f"{k} {v:.4f}" for k, v in mean.items())
                  + f"  {time.perf_counter() - start:.0f}s", flush=True)
        if i in eval_at:
            counts, q_acc = evaluate(s)
            counts = np.asarray(counts)
            r = dict(step=i, code_accuracy=code_accuracy(counts), q_accuracy=float(q_acc),
                     digit_histogram=counts.sum(0).astype(int).tolist(), seconds=round(time.perf_counter() - start, 1))
            results.append(r)
            print("eval", json.dumps(r), flush=True)
        if FLAGS.max_seconds and time.perf_counter() - start - elapsed > FLAGS.max_seconds and i < cfg["steps"]:
            with open(FLAGS.state, "wb") as f:
                pickle.dump(dict(config=cfg, s=jax.device_get(s), step=i, results=results,
                                 elapsed=time.perf_counter() - start), f)
            print(f"stopped at step {i}; rerun to continue", flush=True)
            return
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(dict(config=cfg, results=results), f, indent=1)


if __name__ == "__main__":
    app.run(main)
