r"""Images per second of the DCGAN-28 train step and of the FID feature extractors, each train step against a
hand-written step of the same math.

    python scripts/bench_images.py [--steps=1] [--repeats=2] [--only=simultaneous,unrolled,classifier,inception] \
        [--write_notes]

With the defaults it took 9 min 45 s on a 2-core CPU shared with other jobs (load average 7–12), two thirds of it
in the unrolled rule (about 90 s of compile + warm-up per contender, 30–60 s per step there); `--only=simultaneous,
classifier,inception` takes about 3 minutes. On a GPU use `--steps=200 --repeats=5`: a scan of a few steps takes
milliseconds there. `--unroll_remat=on` times the framework's unrolled rule with rematerialisation and (but on a
CPU, where the runner traces them out) its K steps in an XLA loop, where "auto" (the config's default) has neither
for these convolutional players, as the hand-written step; that separates their cost from the framework's.

It prints one JSON object per measurement; every line has `what`, `rule`, `impl`, `images_per_sec` (best of
`--repeats`), `median_images_per_sec`, `steps_per_sec` (best), `batch`, `steps`, `device` and `jax`:

  what="dcgan28_train": one update step of experiments/dcgan_mnist.py's model and optimizer (mnist_5k 28×28×1,
    base_width 32, batch 128, z 100, Adam 2e-4 β1 0.5, non-saturating loss, train-mode batch norm whose running
    statistics are carried in the state) with `rule` "simultaneous" or "unrolled" (K = `--unroll_steps`, the
    paper's same-batch unroll, in the form the runner gives it: "remat" or "no remat", its K steps "traced" or in
    an "XLA loop"; `--unroll_remat`), followed by the form of D's
    strided convolutions that both contenders use ("D space_to_depth" or "D conv": `--strided_conv`, by default
    the runner's choice on this backend). `steps` update steps are run
    as the runner runs them (on a CPU: the compiled step called from Python with its inner loops traced out, since
    XLA's CPU backend runs convolutions inside loops 16–27× slower; elsewhere: fused in one `lax.scan`) and timed
    after a compile+warm-up call (whose seconds are compile_and_warmup_s);
    images_per_sec = batch × steps/s, real training images consumed per second (each step also generates a batch
    of fakes).
    impl="jaxgan": the runner's step, `make_train_chunk(make_update_rule(build_game(config), config, ...), ...)`.
    impl="hand_written": the same math written directly with the two Linen modules, optax and `jax.grad` (the
    unroll as a Python loop, no remat), run the same way. Its line also carries:
      one_step_max_abs_diff: max |Δ| of D's and G's losses of the first step, both contenders starting from the
        same parameters, batch statistics and key (so the same real batch and the same noise);
      all_steps_loss_max_abs_diff: the same over all `steps` steps of the warm-up call (the updates as well);
      params_max_abs_diff: max |Δ| over both players' parameters and batch statistics after those steps. Adam's
        first step moves each parameter by lr·g/(|g| + eps), so where |g| is near eps (1e-8) float rounding of
        the gradient moves it by a fraction of lr (2e-4): with `--unroll_remat=on` the unrolled rule's
        second-order gradient, summed in another order by the framework's remat (and XLA loop) than by the
        Python loop, gives 2e-5–3e-5 on 3 of G's 347,073 parameters, with equal losses and D identical (a
        deliberately wrong G loss in the hand-written step gives a loss difference of 1.5 and a parameter
        difference of 4e-4 = 2 lr); in the default form they agreed exactly on the CPU (0.0);
      jaxgan_over_hand_written: median over rounds of the ratio of the two steps/s; the contenders are timed
        round-robin (the order reversed every other round), so the machine's drift cancels in each round's ratio.
  what="classifier_features": `--feature_images` images through the digit classifier's penultimate layer
    (FID/KID/precision-recall features), jitted, in a Python loop over batches of `--feature_batch` (one
    compilation, asynchronous dispatch), timed after a warm-up pass; steps_per_sec is batches per second.
    `model` says which: the shipped mnist_5k classifier at 28×28 if it has been trained
    (jaxgan/metrics/assets/classifier_mnist_5k/metadata.json), otherwise a randomly initialised DigitClassifier of
    the same architecture at 28×28 (same cost); and the shipped digits classifier at 8×8.
  what="inception_features": `--inception_images` images of 32×32×3 through `jaxgan.metrics.inception.InceptionV3`
    with random weights (the cost does not depend on them), resized to 299×299 inside the network, at its default
    precision (HIGHEST), in batches of `--inception_batch`; for natural-image data sets.
Image values do not change the feature extractors' speed, so they see uniform noise in [−1, 1].

With --write_notes a dated table replaces the block `bench_images_<platform>` of BUILD_NOTES.md (one block per
platform, so a GPU run does not overwrite the CPU table).
"""

from __future__ import annotations

import datetime
import json
import math
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from jaxgan.metrics.classifier import DigitClassifier, classifier_dir, load_classifier
from jaxgan.metrics.inception import InceptionV3
from jaxgan.models import strided_conv_as_space_to_depth
from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jaxgan.tasks import make_task
from jaxgan.train import build_game, init_state, make_train_chunk, uses_host_loop
from jaxgan.updates import make_update_rule, unroll_form
from scripts.notes import ROOT, load_experiment, replace_block, run_script, timed_rounds

PARTS = ("simultaneous", "unrolled", "classifier", "inception")

_STEPS = flags.DEFINE_integer("steps", 1, "Update steps fused in one lax.scan per timed call of a train step.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed calls (rounds) per measurement; best and median reported.")
_ONLY = flags.DEFINE_list("only", list(PARTS), f"Measurements to run, a subset of {','.join(PARTS)}.")
_UNROLL_STEPS = flags.DEFINE_integer("unroll_steps", 5, "K of the unrolled rule.")
_UNROLL_REMAT = flags.DEFINE_enum(
    "unroll_remat", "auto", ["auto", "on", "off"], "The framework's unrolled rule's config.unroll_remat."
)
_STRIDED_CONV = flags.DEFINE_enum(
    "strided_conv", "auto", ["auto", "space_to_depth", "conv"],
    "D's strided convolutions, in both contenders (discriminator.strided_conv; auto: the runner's choice).",
)
_FEATURE_IMAGES = flags.DEFINE_integer("feature_images", 4000, "Images per pass through the digit classifier.")
_FEATURE_BATCH = flags.DEFINE_integer("feature_batch", 500, "Batch size of the digit classifier.")
_INCEPTION_IMAGES = flags.DEFINE_integer("inception_images", 16, "Images per pass through InceptionV3.")
_INCEPTION_BATCH = flags.DEFINE_integer("inception_batch", 16, "Batch size of InceptionV3.")
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Put a dated table into BUILD_NOTES.md.")


def device_name() -> str:
    device = jax.devices()[0]
    return f"{device.platform}: {device.device_kind}, {jax.local_device_count()} device(s)"


def dcgan_config(rule: str, unroll_steps: int):
    config = load_experiment("dcgan_mnist")
    config.update_rule = rule
    config.unroll_steps = unroll_steps
    config.unroll_remat = _UNROLL_REMAT.value
    config.discriminator.strided_conv = _STRIDED_CONV.value
    return config


# ------------------------------------------------------------------------------------------ the hand-written step


def hand_written_chunk(config, train_images: np.ndarray, unroll_steps: int | None, host_loop: bool):
    """`chunk(state, num_steps) -> (state, {"d_loss", "g_loss"})`: the simultaneous step (`unroll_steps` None) or
    the unrolled one written directly with the DCGAN modules, optax and `jax.grad`; `state` is a plain dict.

    It draws its batches and noise from the framework's key streams (fold_in(fold_in(key, step), i), i = 0 data,
    1 noise), so that from the same state both implementations see the same numbers.
    """
    image_shape = tuple(train_images.shape[1:])  # [H, W, C]
    generator = DCGANGenerator(image_shape, config.generator.base_width, kernel_size=config.generator.kernel_size)
    discriminator = DCGANDiscriminator(
        config.discriminator.base_width, kernel_size=config.discriminator.kernel_size,
        space_to_depth=strided_conv_as_space_to_depth(config.discriminator.strided_conv, config),
    )  # fmt: skip
    g, d = config.g_optimizer, config.d_optimizer
    g_optimizer = optax.adam(g.learning_rate, b1=g.b1, b2=g.b2, eps=g.eps, eps_root=g.eps_root)
    # Differentiating through Adam needs eps_root > 0 (d√v/dv is infinite at v = 0), as the framework sets it.
    d_eps_root = config.unroll_eps_root if unroll_steps else d.eps_root
    d_optimizer = optax.adam(d.learning_rate, b1=d.b1, b2=d.b2, eps=d.eps, eps_root=d_eps_root)
    train = jnp.asarray(train_images)  # [N, H, W, C] uint8
    batch, z_dim = config.batch_size, config.z_dim

    def run_g(params, stats, z):
        images, new = generator.apply({"params": params, "batch_stats": stats}, z, mutable=["batch_stats"])
        return images, new["batch_stats"]

    def run_d(params, stats, images):
        logits, new = discriminator.apply({"params": params, "batch_stats": stats}, images, mutable=["batch_stats"])
        return logits, new["batch_stats"]

    def d_loss_fn(params, stats, real, fake):
        real_logits, stats = run_d(params, stats, real)
        fake_logits, stats = run_d(params, stats, fake)
        loss = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
        return loss, stats

    def d_update(params, opt_state, stats, real, fake):
        (loss, stats), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(params, stats, real, fake)
        updates, opt_state = d_optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, stats, loss

    def g_loss_on(d_params, d_stats, fake):
        logits, _ = run_d(d_params, d_stats, fake)  # D's statistics from G's pass are not kept
        return jnp.mean(jax.nn.softplus(-logits))

    def one_step(state, _):
        step_key = jax.random.fold_in(state["key"], state["step"])
        data_key, noise_key = jax.random.fold_in(step_key, 0), jax.random.fold_in(step_key, 1)
        index = jax.random.randint(data_key, (batch,), 0, train.shape[0])
        real = train[index].astype(jnp.float32) / 255.0 * 2.0 - 1.0  # [B, H, W, C] in [-1, 1]
        z = jax.random.normal(noise_key, (batch, z_dim), jnp.float32)
        d_now = (state["d_params"], state["d_opt_state"], state["d_stats"])

        if unroll_steps is None:
            def g_loss_fn(g_params):
                fake, g_stats = run_g(g_params, state["g_stats"], z)
                return g_loss_on(state["d_params"], state["d_stats"], fake), (fake, g_stats)

            (g_loss, (fake, g_stats)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state["g_params"])
            d_params, d_opt_state, d_stats, d_loss = d_update(*d_now, real, jax.lax.stop_gradient(fake))
        else:
            def g_loss_fn(g_params):
                fake, g_stats = run_g(g_params, state["g_stats"], z)
                first = d_update(*d_now, real, fake)  # D's own update is the first unrolled step
                d_k = first[:3]
                for _ in range(unroll_steps - 1):
                    d_k = d_update(*d_k, real, fake)[:3]
                return g_loss_on(d_k[0], d_k[2], fake), (g_stats, jax.lax.stop_gradient(first))

            (g_loss, (g_stats, first)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state["g_params"])
            d_params, d_opt_state, d_stats, d_loss = first

        updates, g_opt_state = g_optimizer.update(g_grads, state["g_opt_state"], state["g_params"])
        new_state = dict(
            state,
            step=state["step"] + 1,
            g_params=optax.apply_updates(state["g_params"], updates),
            g_opt_state=g_opt_state,
            g_stats=g_stats,
            d_params=d_params,
            d_opt_state=d_opt_state,
            d_stats=d_stats,
        )
        return new_state, {"d_loss": d_loss, "g_loss": g_loss}

    def scan_chunk(state, num_steps):
        return jax.lax.scan(one_step, state, None, length=num_steps)

    if host_loop:  # as the runner does for images on a CPU: the compiled step called from Python
        one = jax.jit(lambda state: one_step(state, None), donate_argnums=0)

        def host_chunk(state, num_steps):
            metrics = []
            for _ in range(num_steps):
                state, m = one(state)
                metrics.append(m)
            return state, jax.tree.map(lambda *xs: jnp.stack(xs), *metrics)

    def init(framework_state) -> dict:
        return {
            "step": framework_state.step,
            "key": framework_state.key,
            "g_params": framework_state.g_params,
            "d_params": framework_state.d_params,
            "g_stats": framework_state.g_model_state["batch_stats"],
            "d_stats": framework_state.d_model_state["batch_stats"],
            "g_opt_state": g_optimizer.init(framework_state.g_params),
            "d_opt_state": d_optimizer.init(framework_state.d_params),
        }

    return (host_chunk if host_loop else jax.jit(scan_chunk, static_argnums=1, donate_argnums=0)), init


# ------------------------------------------------------------------------------------------ timing


def fresh_copy(tree):
    """Own buffers: the chunks donate their state."""
    return jax.tree.map(jnp.copy, tree)


def _max_abs_diff(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def measure_train(rule: str) -> list[dict]:
    unroll_steps = _UNROLL_STEPS.value if rule == "unrolled" else None
    config = dcgan_config(rule, unroll_steps or 0)
    task = make_task(config)
    host_loop = uses_host_loop(config, task)  # the runner's choice: on a CPU, no XLA loop around a convolution
    framework_rule = make_update_rule(build_game(config, task), config, unroll_inner=host_loop)
    framework = make_train_chunk(framework_rule, task.data.sample, config.batch_size, host_loop=host_loop)
    reference, reference_init = hand_written_chunk(config, task.data.info.train_images, unroll_steps, host_loop)
    start_state = init_state(config, framework_rule, task)
    steps, batch = _STEPS.value, config.batch_size

    # Compile and warm up from the same start; the warm-up's losses and final states are the agreement check.
    states, losses, warmup_s = {}, {}, {}
    for name, chunk, state in (("jaxgan", framework, fresh_copy(start_state)),
                               ("hand_written", reference, fresh_copy(reference_init(start_state)))):  # fmt: skip
        start = time.perf_counter()
        states[name], losses[name] = jax.block_until_ready(chunk(state, steps))
        warmup_s[name] = time.perf_counter() - start
    fw, hw = states["jaxgan"], states["hand_written"]
    first = [abs(float(losses["jaxgan"][k][0]) - float(losses["hand_written"][k][0])) for k in ("d_loss", "g_loss")]
    agreement = {
        "one_step_max_abs_diff": max(first),
        "one_step_losses": {k: float(losses["jaxgan"][k][0]) for k in ("d_loss", "g_loss")},
        "all_steps_loss_max_abs_diff": _max_abs_diff(losses["jaxgan"], losses["hand_written"]),
        "params_max_abs_diff": _max_abs_diff(
            (fw.g_params, fw.d_params, fw.g_model_state["batch_stats"], fw.d_model_state["batch_stats"]),
            (hw["g_params"], hw["d_params"], hw["g_stats"], hw["d_stats"]),
        ),
    }

    def call(name, chunk):
        def run():
            states[name] = jax.block_until_ready(chunk(states[name], steps)[0])

        return run

    seconds = timed_rounds({"jaxgan": call("jaxgan", framework), "hand_written": call("hand_written", reference)},
                           _REPEATS.value)  # fmt: skip
    ratio = seconds["hand_written"] / seconds["jaxgan"]  # per-round steps/s of jaxgan over hand-written
    rule_name = rule
    if unroll_steps is not None:
        remat, traced = unroll_form(config.unroll_remat, config.discriminator.name)
        form = ", ".join(["remat" if remat else "no remat", "traced" if traced or host_loop else "XLA loop"])
        rule_name = f"unrolled (K={unroll_steps}, {form})"
    d_conv = "space_to_depth" if strided_conv_as_space_to_depth(config.discriminator.strided_conv, config) else "conv"
    rule_name += f", D {d_conv}"
    rows = []
    for name in ("jaxgan", "hand_written"):
        steps_per_sec = steps / seconds[name]
        row = {
            "what": "dcgan28_train",
            "rule": rule_name,
            "impl": name,
            "images_per_sec": float(batch * steps_per_sec.max()),
            "median_images_per_sec": float(batch * np.median(steps_per_sec)),
            "steps_per_sec": float(steps_per_sec.max()),
            "batch": batch,
            "steps": steps,
            "repeats": _REPEATS.value,
            "compile_and_warmup_s": warmup_s[name],
            "device": device_name(),
            "jax": jax.__version__,
        }
        if name == "hand_written":
            row.update(agreement, jaxgan_over_hand_written=float(np.median(ratio)))
        rows.append(row)
    return rows


def measure_features(what: str, model: str, apply, image_shape: tuple[int, ...], num_images: int, batch: int) -> dict:
    """Images/s of the jitted `apply(images) -> features` over `num_images` (rounded up to whole batches)."""
    features = jax.jit(apply)
    num_batches = math.ceil(num_images / batch)
    images = jax.random.uniform(jax.random.key(0), (num_batches, batch, *image_shape), jnp.float32, -1.0, 1.0)
    batches = [images[i] for i in range(num_batches)]

    def one_pass():
        jax.block_until_ready([features(b) for b in batches])

    start = time.perf_counter()
    one_pass()  # compile and warm up
    warmup_s = time.perf_counter() - start
    seconds = timed_rounds({what: one_pass}, _REPEATS.value)[what]
    images_per_sec = num_batches * batch / seconds
    return {
        "what": what,
        "rule": None,
        "impl": "jaxgan",
        "model": model,
        "images_per_sec": float(images_per_sec.max()),
        "median_images_per_sec": float(np.median(images_per_sec)),
        "steps_per_sec": float(num_batches / seconds.min()),
        "batch": batch,
        "steps": num_batches,
        "images": num_batches * batch,
        "image_shape": list(image_shape),
        "repeats": _REPEATS.value,
        "compile_and_warmup_s": warmup_s,
        "device": device_name(),
        "jax": jax.__version__,
    }


def measure_classifiers() -> list[dict]:
    rows = []
    if (classifier_dir("mnist_5k") / "metadata.json").exists():
        classify, _ = load_classifier("mnist_5k", (28, 28, 1))
        mnist_apply, mnist_model = (lambda x: classify(x)[1]), "mnist_5k classifier (shipped), 28x28x1"
    else:
        module = DigitClassifier()
        params = module.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]

        def mnist_apply(x):
            return module.apply({"params": params}, x)[1]

        mnist_model = "DigitClassifier, random init (mnist_5k classifier not trained yet), 28x28x1"
    rows.append(measure_features("classifier_features", mnist_model, mnist_apply, (28, 28, 1),
                                 _FEATURE_IMAGES.value, _FEATURE_BATCH.value))  # fmt: skip
    digits, _ = load_classifier("digits", (8, 8, 1))
    rows.append(measure_features("classifier_features", "digits classifier (shipped), 8x8x1", lambda x: digits(x)[1],
                                 (8, 8, 1), _FEATURE_IMAGES.value, _FEATURE_BATCH.value))  # fmt: skip
    return rows


def measure_inception() -> list[dict]:
    model = InceptionV3()
    shape = (32, 32, 3)
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, *shape)))
    row = measure_features(
        "inception_features",
        "InceptionV3 (FID variant), random weights, 32x32x3 resized to 299x299, precision HIGHEST",
        lambda x: model.apply(variables, x).features,
        shape,
        _INCEPTION_IMAGES.value,
        _INCEPTION_BATCH.value,
    )
    return [row]


def main(argv):
    del argv
    unknown = sorted(set(_ONLY.value) - set(PARTS))
    if unknown:
        raise app.UsageError(f"--only: unknown {','.join(unknown)}; choose from {','.join(PARTS)}")
    rows = []
    for part in PARTS:
        if part not in _ONLY.value:
            continue
        if part in ("simultaneous", "unrolled"):
            new = measure_train(part)
        elif part == "classifier":
            new = measure_classifiers()
        else:
            new = measure_inception()
        for row in new:
            print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        rows += new
    if _WRITE_NOTES.value:
        write_notes(rows)


def write_notes(rows: list[dict]) -> None:
    machine = f"{platform.machine()}, {device_name()}, jax {jax.__version__}"
    command = " ".join(["python scripts/bench_images.py", *sys.argv[1:]])
    lines = [
        f"{datetime.date.today().isoformat()}: `{command}` on {machine} (images/s: best of {_REPEATS.value}, median):",
        "",
        (
            "| measurement | model / rule | impl | images/s (best) | images/s (median) | batch "
            "| jaxgan / hand-written | one-step loss max abs diff |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        what = r["rule"] if r["what"] == "dcgan28_train" else r["model"]
        ratio = f"{r['jaxgan_over_hand_written']:.2f}×" if "jaxgan_over_hand_written" in r else ""
        diff = f"{r['one_step_max_abs_diff']:.1e}" if "one_step_max_abs_diff" in r else ""
        lines.append(
            f"| {r['what']} | {what} | {r['impl']} | {r['images_per_sec']:.1f} | {r['median_images_per_sec']:.1f} "
            f"| {r['batch']} | {ratio} | {diff} |"
        )
    replace_block(ROOT / "BUILD_NOTES.md", f"bench_images_{jax.devices()[0].platform}", "\n".join(lines))


if __name__ == "__main__":
    run_script(main)
