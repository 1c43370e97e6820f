r"""Steps per second of every update rule on the ring8 model, each as the runner compiles it (one fused scan).

    python scripts/bench_rules.py [--num_steps=300] [--write_notes]

Prints one JSON object per rule; with --write_notes the table replaces the rule benchmark in BUILD_NOTES.md.
"""

from __future__ import annotations

import json
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
from absl import flags  # noqa: E402

from jaxgan.config import default_config  # noqa: E402
from jaxgan.tasks import make_task  # noqa: E402
from jaxgan.train import build_game, init_state, make_train_chunk  # noqa: E402
from jaxgan.updates import make_update_rule  # noqa: E402
from scripts.notes import ROOT, replace_block, run_script  # noqa: E402

_NUM_STEPS = flags.DEFINE_integer("num_steps", 300, "Timed update steps per measurement (one fused scan).", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions; the best is reported.", lower_bound=1)
_WRITE_NOTES = flags.DEFINE_boolean("write_notes", False, "Replace the rule table in BUILD_NOTES.md.")

RULES = {
    "simultaneous": {},
    "alternating (n_critic=1)": {"update_rule": "alternating", "d_steps": 1},
    "alternating (n_critic=5)": {"update_rule": "alternating", "d_steps": 5},
    "unrolled (K=5)": {"update_rule": "unrolled", "unroll_steps": 5},
    "extragradient": {"update_rule": "extragradient"},
    "optimistic": {"update_rule": "optimistic"},
    "consensus": {"update_rule": "consensus"},
    "sga": {"update_rule": "sga"},
    "simultaneous + R1": {"penalty": "r1", "penalty_weight": 1.0},
    "simultaneous + WGAN-GP": {"penalty": "wgan_gp", "penalty_weight": 10.0, "loss": "wasserstein"},
    "simultaneous + EMA": {"ema_decay": 0.999},
}


def measure(overrides: dict) -> float:
    """Update steps per second (per run: with num_seeds = S, S runs advance one step each per step)."""
    config = default_config()
    config.update_rule = "simultaneous"
    for key, value in overrides.items():
        config[key] = value
    task = make_task(config)
    rule = make_update_rule(build_game(config, task), config)
    chunk = make_train_chunk(rule, task.data.sample, config.batch_size, config.num_seeds)
    state, _ = chunk(init_state(config, rule, task), _NUM_STEPS.value)  # compile and warm up
    jax.block_until_ready(state)
    best = 0.0
    for _ in range(_REPEATS.value):
        start = time.perf_counter()
        state, _ = chunk(state, _NUM_STEPS.value)
        jax.block_until_ready(state)
        best = max(best, _NUM_STEPS.value / (time.perf_counter() - start))
    return best


def main(argv):
    del argv
    rows = []
    for name, overrides in RULES.items():
        rows.append((name, measure(overrides)))
        print(json.dumps({"rule": name, "steps_per_sec": round(rows[-1][1], 1)}), flush=True)
    # A sweep of 8 seeds: one vmapped program against 8 runs one after the other in this process.
    vmapped = measure({"num_seeds": 8})
    sequential = 1 / sum(1 / measure({"seed": s}) for s in range(8))
    sweep = {"vmapped_seed_steps_per_sec": 8 * vmapped, "sequential_seed_steps_per_sec": 8 * sequential}
    print(json.dumps({k: round(v, 1) for k, v in sweep.items()}), flush=True)
    if _WRITE_NOTES.value:
        machine = f"{platform.machine()}, {jax.devices()[0].platform}, jax {jax.__version__}"
        lines = [
            f"`python scripts/bench_rules.py --num_steps={_NUM_STEPS.value} --repeats={_REPEATS.value} --write_notes` on "
            f"{machine}; ring8 model, batch {default_config().batch_size}, best of {_REPEATS.value}:",
            "",
            "| update rule | steps/s |",
            "|---|---|",
            *(f"| {name} | {rate:.1f} |" for name, rate in rows),
            "",
            f"Sweep of 8 seeds (simultaneous rule), seed-steps per second: one vmapped program "
            f"{sweep['vmapped_seed_steps_per_sec']:.1f}, 8 sequential runs {sweep['sequential_seed_steps_per_sec']:.1f} "
            f"({sweep['vmapped_seed_steps_per_sec'] / sweep['sequential_seed_steps_per_sec']:.2f}×).",
        ]
        replace_block(ROOT / "BUILD_NOTES.md", "bench_rules", "\n".join(lines))


if __name__ == "__main__":
    run_script(main)
