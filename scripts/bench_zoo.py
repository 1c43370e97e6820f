r"""Images per second of every image GAN system's train step and of its sampling, and the cost of spectral
normalization, self-attention and the R1 penalty relative to the plain step, in one run.

    python scripts/bench_zoo.py [--steps=3] [--repeats=3] [--batch=64] [--only=NAME,...] [--write_notes]

Each measurement is an experiment of `experiments/` (its model, loss, rule and optimizers) at batch `--batch`,
or one of them with one option changed (the ablations below). The train step runs as the runner runs it
(`make_train_chunk`, on a CPU the compiled step called from Python), `--steps` steps per call, timed after a
compile + warm-up call; sampling is G's forward pass in evaluation mode on `--batch` noise vectors, jitted.
Every contender is timed in each of `--repeats` rounds, round-robin with the order reversed every other round, so
a shared machine's drift hits them alike; images/s is the best round (`train_images_per_sec`: real images a step
consumes per second, batch × num_real_batches × steps/s) with the median beside it. The `relative_to` ratio of
an ablation is the median over rounds of its steps/s over its base's, so the drift cancels within a round.

Ablations (base → variant):
  sn_dcgan:      dcgan_mnist's D with batch norm → `discriminator.norm = "spectral"` (SN in every layer of D);
  sngan:         sngan_mnist with `discriminator.norm = "none"` (resnet_no_sn) → sngan_mnist (SN's cost in
                 the ResNet D);
  attention:     sngan_mnist → sagan_mnist's self-attention at 14×14 in G and D (same optimizer settings);
  r1:            dcgan_mnist → `penalty = "r1"`, γ = 10 (D's input gradient, differentiated once more);
  stylegan2:     stylegan2_mnist without its lazy regularizers (stylegan2_no_reg) → with them (R1 every 16
                 steps, path length every 4): their cost averaged over the timed steps, so exact only when
                 --steps is a multiple of 16;
  lapgan_width64: lapgan_mnist (32 channels in G_k and D_k, k ≥ 1) → the model's default 64 (what the width
                 the experiment gave up for the CPU costs);
  lapgan:        lapgan_mnist without its extra level-0 steps (lapgan_no_coarse_updates) → with its 20 a step
                 (what training the coarsest level longer costs).
With --write_notes a dated table replaces the block `bench_zoo_<platform>` of BUILD_NOTES.md.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from absl import app, flags

from jaxgan.conditioning import data_of
from jaxgan.game import generate
from jaxgan.tasks import make_task
from jaxgan.train import build_game, init_state, make_train_chunk, real_sampler, uses_host_loop
from jaxgan.updates import make_update_rule
from scripts.notes import ROOT, load_experiment, replace_block, run_script, timed_rounds

_STEPS = flags.DEFINE_integer("steps", 3, "Update steps per timed call.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed rounds.")
_BATCH = flags.DEFINE_integer("batch", 64, "Batch size of every contender.")
_ONLY = flags.DEFINE_list("only", [], "Contenders to time (default: all).")
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Write the table into BUILD_NOTES.md.")

# name: (experiment, overrides, base of the ablation or None)
CONTENDERS = {
    "dcgan": ("dcgan_mnist", {}, None),
    "lsgan": ("lsgan_mnist", {}, None),
    "wgan_clip": ("wgan_mnist", {}, None),
    "wgan_gp": ("wgan_gp_mnist", {}, None),
    "ebgan": ("ebgan_mnist", {}, None),
    "began": ("began_mnist", {}, None),
    "sngan": ("sngan_mnist", {}, "resnet_no_sn"),
    "sagan": ("sagan_mnist", {}, None),
    "biggan": ("biggan_cmnist", {}, None),
    "sn_dcgan": ("dcgan_mnist", {"discriminator.norm": "spectral"}, "dcgan"),
    "resnet_no_sn": ("sngan_mnist", {"discriminator.norm": "none"}, None),
    "progan": ("progan_mnist", {}, None),
    "attention": ("sngan_mnist", {"generator.attention_resolution": 14, "discriminator.attention_resolution": 14}, "sngan"),
    "r1": ("dcgan_mnist", {"penalty": "r1", "penalty_weight": 10.0}, "dcgan"),
    "lapgan": ("lapgan_mnist", {}, "lapgan_no_coarse_updates"),
    "lapgan_no_coarse_updates": ("lapgan_mnist", {"coarse_level_updates": 0}, None),
    "lapgan_width64": ("lapgan_mnist", {"generator.base_width": 64, "discriminator.base_width": 64}, "lapgan"),
    "stylegan2": ("stylegan2_mnist", {}, "stylegan2_no_reg"),
    "stylegan2_no_reg": ("stylegan2_mnist", {"lazy.r1_gamma": 0.0, "lazy.path_length_weight": 0.0}, None),
}


def device_name() -> str:
    device = jax.devices()[0]
    return getattr(device, "device_kind", device.platform)


def contender_config(name: str):
    experiment, overrides, _ = CONTENDERS[name]
    config = load_experiment(experiment)
    config.batch_size = _BATCH.value
    for key, value in overrides.items():
        section, _, leaf = key.rpartition(".")
        (config[section] if section else config)[leaf] = value
    return config


def prepare(name: str) -> dict:
    """The compiled train chunk and sampler of one contender, warmed up: {train, sample, compile_s, ...}."""
    config = contender_config(name)
    task = make_task(config)
    game = build_game(config, task)
    host_loop = uses_host_loop(config, task)
    rule = make_update_rule(game, config, unroll_inner=host_loop)
    chunk = make_train_chunk(rule, real_sampler(task, game), config.batch_size, max_steps=_STEPS.value, host_loop=host_loop)
    holder = {"state": init_state(config, rule, task)}
    z = game.sample_noise(jax.random.key(1), config.batch_size)
    sample = jax.jit(lambda state: data_of(generate(game, state.g_params, state.g_model_state, z, train=False)[0]))

    def train():
        holder["state"], metrics = chunk(holder["state"], _STEPS.value)
        jax.block_until_ready(metrics)

    def draw():
        jax.block_until_ready(sample(holder["state"]))

    start = time.perf_counter()
    train()
    draw()
    params = sum(x.size for x in jax.tree.leaves((holder["state"].g_params, holder["state"].d_params)))
    return dict(
        train=train, sample=draw, compile_s=time.perf_counter() - start, params=int(params),
        images_per_step=config.batch_size * rule.num_real_batches,
    )  # fmt: skip


def main(argv):
    del argv
    names = _ONLY.value or list(CONTENDERS)
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown:
        raise app.UsageError(f"--only: unknown {','.join(unknown)}; choose from {','.join(CONTENDERS)}")
    # each ablation's base (and its base's base: lapgan_width64 → lapgan → lapgan_no_coarse_updates) once, however
    # many of the named contenders share it
    def with_bases(name: str) -> list[str]:
        chain = [name]
        while CONTENDERS[chain[-1]][2]:
            chain.append(CONTENDERS[chain[-1]][2])
        return chain

    names = list(dict.fromkeys(n for name in names for n in with_bases(name)))
    prepared = {}
    for name in names:
        prepared[name] = prepare(name)
        print(f"compiled {name} in {prepared[name]['compile_s']:.1f} s", file=sys.stderr, flush=True)
    train_s = timed_rounds({n: p["train"] for n, p in prepared.items()}, _REPEATS.value)
    sample_s = timed_rounds({n: p["sample"] for n, p in prepared.items()}, _REPEATS.value)
    rows = []
    for name in names:
        p, steps = prepared[name], _STEPS.value
        row = {
            "what": name, "experiment": CONTENDERS[name][0], "overrides": CONTENDERS[name][1], "batch": _BATCH.value,
            "params": p["params"], "train_steps_per_sec": steps / train_s[name].min(),
            "train_images_per_sec": p["images_per_step"] * steps / train_s[name].min(),
            "median_train_images_per_sec": p["images_per_step"] * steps / float(np.median(train_s[name])),
            "sample_images_per_sec": _BATCH.value / sample_s[name].min(), "compile_and_warmup_s": p["compile_s"],
            "device": device_name(), "jax": jax.__version__,
        }  # fmt: skip
        base = CONTENDERS[name][2]
        if base:
            row["relative_to"] = base
            row["step_time_over_base"] = float(np.median(train_s[name] / train_s[base]))
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    if _WRITE_NOTES.value:
        write_notes(rows)


def write_notes(rows: list[dict]) -> None:
    machine = f"{platform.machine()}, {device_name()}, jax {jax.__version__}"
    command = " ".join(["python scripts/bench_zoo.py", *sys.argv[1:]])
    lines = [
        f"{datetime.date.today().isoformat()}: `{command}` on {machine} (best of {_REPEATS.value} rounds, median):",
        "",
        "| contender | experiment (+ change) | params | train images/s (best / median) | sampling images/s | step time vs |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        change = ", ".join(f"{k}={v}" for k, v in r["overrides"].items())
        versus = f"{r['step_time_over_base']:.2f}× {r['relative_to']}" if "relative_to" in r else ""
        lines.append(
            f"| {r['what']} | {r['experiment']}{' + ' + change if change else ''} | {r['params']:,} | "
            f"{r['train_images_per_sec']:.0f} / {r['median_train_images_per_sec']:.0f} | "
            f"{r['sample_images_per_sec']:.0f} | {versus} |"
        )
    replace_block(ROOT / "BUILD_NOTES.md", f"bench_zoo_{jax.devices()[0].platform}", "\n".join(lines))


if __name__ == "__main__":
    run_script(main)
