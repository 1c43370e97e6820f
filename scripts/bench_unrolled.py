r"""Throughput and memory of the unrolled update on the ring8 model, against a naive hand-written step.

    python scripts/bench_unrolled.py --unroll_steps=0,1,5,10,50 --num_steps=500 [--write_notes]

For each K it prints one JSON object per line:
  framework: steps/s of `jaxgan`'s compiled chunk (the runner's `lax.scan` of `unrolled_step`), and the peak
    memory of one compiled step with and without rematerialisation;
  naive: the same math written directly (D step, then a separate K-step unroll from the old D for G's loss,
    i.e. the first unrolled step written twice), compiled with the same jit + scan.
Timings are interleaved round-robin over `--repeats` rounds of one `--num_steps`-step scan each; median and best
steps/s are printed, and the speed-up is the median (with quartiles) of the per-round ratios framework / naive,
which cancels the machine's drift shared by the two contenders of a round.
Peak memory is XLA's compile-time memory analysis of one step: arguments + outputs + temporaries − aliased.
With --write_notes the table replaces the benchmark section of BUILD_NOTES.md.
"""

from __future__ import annotations

import json
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import flags

from jaxgan.config import default_config
from jaxgan.data.mixtures import make_mixture
from jaxgan.state import step_keys
from jaxgan.train import build_game, make_train_chunk
from jaxgan.updates import unrolled_step
from scripts.notes import ROOT, replace_block, run_script

_UNROLL = flags.DEFINE_list("unroll_steps", ["0", "1", "5", "10", "50"], "Values of K to measure.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", 500, "Timed update steps per measurement (one fused scan).")
_REPEATS = flags.DEFINE_integer(
    "repeats", 21, "Timed rounds, interleaved; median and best steps/s and the median per-round speed-up are reported."
)
_BATCH = flags.DEFINE_integer("batch_size", 512, "Batch size.")
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Replace the benchmark table in BUILD_NOTES.md.")



def naive_chunk(game, mixture, batch_size: int, k: int):
    """The unrolled GAN as one would first write it: no shared work, no remat."""

    def d_loss(d_params, real, fake):
        real_logits, _ = game.discriminator.apply(d_params, {}, real)
        fake_logits, _ = game.discriminator.apply(d_params, {}, fake)
        return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))

    def d_update(d_params, d_opt, real, fake):
        grads = jax.grad(d_loss)(d_params, real, fake)
        updates, d_opt = game.d_optimizer.update(grads, d_opt, d_params)
        return optax.apply_updates(d_params, updates), d_opt

    def one_step(state, _):
        keys = step_keys(state)
        data_key, noise_key = keys.data, keys.noise
        real = mixture.sample(data_key, batch_size)
        z = game.sample_noise(noise_key, batch_size)

        def g_loss(g_params):
            fake, _ = game.generator.apply(g_params, {}, z)
            d_params, d_opt = state.d_params, state.d_opt_state
            for _ in range(k):
                d_params, d_opt = d_update(d_params, d_opt, real, fake)
            logits, _ = game.discriminator.apply(d_params, {}, fake)
            return -jnp.mean(jax.nn.softplus(logits))

        g_grads = jax.grad(g_loss)(state.g_params)
        fake, _ = game.generator.apply(state.g_params, {}, z)
        d_params, d_opt = d_update(state.d_params, state.d_opt_state, real, jax.lax.stop_gradient(fake))
        updates, g_opt = game.g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
        new = state.replace(
            step=state.step + 1,
            g_params=optax.apply_updates(state.g_params, updates),
            g_opt_state=g_opt,
            d_params=d_params,
            d_opt_state=d_opt,
        )
        return new, {}

    def chunk(state, num_steps):
        return jax.lax.scan(one_step, state, None, length=num_steps)

    return jax.jit(chunk, static_argnums=1, donate_argnums=0)


def peak_memory_mb(chunk, state) -> float:
    analysis = chunk.lower(state, 1).compile().memory_analysis()
    total = (
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
        - analysis.alias_size_in_bytes
    )
    return total / 2**20


def steps_per_sec(chunks: dict, states: dict, num_steps: int, repeats: int) -> dict:
    """Steps/s of each chunk in each of `repeats` rounds, measured round-robin (the order reversed every other
    round) so that drift in the machine's speed (shared hosts vary by ±15% over a minute) hits every contender
    alike."""
    times = {name: [] for name in chunks}
    for name, chunk in chunks.items():  # compile and warm up
        states[name] = jax.block_until_ready(chunk(states[name], num_steps)[0])
    for round_ in range(repeats):
        order = list(chunks.items())
        for name, chunk in order if round_ % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            states[name] = jax.block_until_ready(chunk(states[name], num_steps)[0])
            times[name].append(num_steps / (time.perf_counter() - start))
    return {name: np.array(t) for name, t in times.items()}


def fresh_state(config, game, mixture):
    return game.init(jax.random.key(config.seed), jnp.zeros((config.batch_size, 2)))


def main(argv):
    del argv
    config = default_config()
    config.batch_size = _BATCH.value
    game = build_game(config)
    mixture = make_mixture(config.data.name, config.data.num_modes, config.data.scale, config.data.std)
    rows = []
    for k in map(int, _UNROLL.value):
        framework = make_train_chunk(unrolled_step(game, k, remat=True), mixture.sample, config.batch_size)
        no_remat = make_train_chunk(unrolled_step(game, k, remat=False), mixture.sample, config.batch_size)
        naive = naive_chunk(game, mixture, config.batch_size, k)
        chunks = {"framework": framework, "naive": naive}
        speed = steps_per_sec(
            chunks, {name: fresh_state(config, game, mixture) for name in chunks}, _NUM_STEPS.value, _REPEATS.value
        )
        # Per-round ratios cancel the drift common to both contenders of a round; their median and quartiles
        # are the speed-up figures.
        ratio = speed["framework"] / speed["naive"]
        row = {
            "unroll_steps": k,
            "batch_size": config.batch_size,
            "steps_per_sec": float(np.median(speed["framework"])),
            "naive_steps_per_sec": float(np.median(speed["naive"])),
            "best_steps_per_sec": float(speed["framework"].max()),
            "naive_best_steps_per_sec": float(speed["naive"].max()),
            "speedup_vs_naive": float(np.median(ratio)),
            "speedup_q25": float(np.percentile(ratio, 25)),
            "speedup_q75": float(np.percentile(ratio, 75)),
            "peak_memory_mb": peak_memory_mb(framework, fresh_state(config, game, mixture)),
            "peak_memory_mb_no_remat": peak_memory_mb(no_remat, fresh_state(config, game, mixture)),
            "naive_peak_memory_mb": peak_memory_mb(naive, fresh_state(config, game, mixture)),
        }
        rows.append(row)
        print(json.dumps({key: round(v, 3) if isinstance(v, float) else v for key, v in row.items()}), flush=True)
    if _WRITE_NOTES.value:
        write_notes(rows)


def write_notes(rows):
    machine = f"{platform.machine()}, {jax.devices()[0].platform}, {jax.local_device_count()} device(s), jax {jax.__version__}"
    lines = [
        (
            f"`python scripts/bench_unrolled.py --unroll_steps={','.join(str(r['unroll_steps']) for r in rows)} "
            f"--num_steps={_NUM_STEPS.value} --write_notes` on {machine}, batch {rows[0]['batch_size']}:"
        ),
        "",
        (
            "| K | jaxgan steps/s (median, best) | naive steps/s (median, best) | speed-up (median [quartiles]) "
            "| peak MB (remat) | peak MB (no remat) | naive peak MB |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['unroll_steps']} | {r['steps_per_sec']:.1f}, {r['best_steps_per_sec']:.1f} | "
            f"{r['naive_steps_per_sec']:.1f}, {r['naive_best_steps_per_sec']:.1f} | "
            f"{r['speedup_vs_naive']:.2f}× [{r['speedup_q25']:.2f}, {r['speedup_q75']:.2f}] | "
            f"{r['peak_memory_mb']:.2f} | {r['peak_memory_mb_no_remat']:.2f} | {r['naive_peak_memory_mb']:.2f} |"
        )
    replace_block(ROOT / "BUILD_NOTES.md", "bench_unrolled", "\n".join(lines))


if __name__ == "__main__":
    run_script(main)
