r"""How small D's eps_root can be in the unrolled rule: G's unrolled gradient against float64 finite differences.

    python scripts/measure_eps_root.py [--workdir=runs/ring8_seed0] [--values=0,1e-30,1e-20,1e-12,1e-8] \
        [--config.KEY=VALUE ...]

For each eps_root and each state (the initial one of experiments/ring8.py and, with --workdir, every checkpoint of
that run, which must be a run of --config: its config.json is compared), G's gradient of the unrolled surrogate
L_G(θ_G, θ_D^K) through K Adam steps of D is computed three ways on one fixed batch:
  * `float32`: the framework's gradient as training computes it;
  * `float64`: the same step traced in float64 (models, data and state), by reverse-mode autodiff;
  * `fd`: central finite differences of the float64 surrogate (h = 1e-5) along 8 random unit directions.
It prints, per row: whether the float32 gradient is finite, its relative error ‖g32 − g64‖/‖g64‖, and the largest
relative error of the float64 directional derivatives against the finite differences. An eps_root is correct
where both errors are small: the gradient then is the derivative of the surrogate and not of its regularised
version.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from absl import flags  # noqa: E402

from jaxgan.cli import define_config_file  # noqa: E402
from jaxgan.checkpoint import saved_steps  # noqa: E402
from jaxgan.config import RESUMABLE, ConfigError, config_differences, shorten_differences  # noqa: E402
from jaxgan.tasks import make_task  # noqa: E402
from jaxgan.train import abstract_state, build_game, deleted_since_listed, init_state, restore_saved, saved_config  # noqa: E402
from jaxgan.updates import make_update_rule, unrolled_step  # noqa: E402
from scripts.notes import ROOT, run_script  # noqa: E402

_CONFIG = define_config_file("config", str(ROOT / "experiments/ring8.py"), "The unrolled setting.")
_WORKDIR = flags.DEFINE_string("workdir", None, "A run of the same config whose checkpoints are measured too.")
_VALUES = flags.DEFINE_list("values", ["0", "1e-30", "1e-20", "1e-16", "1e-12", "1e-8"], "eps_root values.")
_DIRECTIONS = flags.DEFINE_integer("directions", 8, "Random directions for the finite differences.")


def _is_non_negative(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


flags.register_validator("values", lambda values: all(_is_non_negative(v) for v in values), "must be numbers >= 0, e.g. 0,1e-12")


def surrogate_and_gradient(config, state, real):
    """(L_G at θ_G, ∇_{θ_G} L_G) of the unrolled rule at `state`, read off one step with G's optimizer sgd(1)."""
    game = dataclasses.replace(build_game(config), g_optimizer=optax.sgd(1.0))
    rule = unrolled_step(game, config.unroll_steps, same_batch=config.unroll_same_batch)

    def value_and_grad(g_params):
        new, metrics = rule.step(state.replace(g_params=g_params), {"real": real})
        return metrics["g_loss"], jax.tree.map(lambda a, b: a - b, g_params, new.g_params)

    return jax.jit(value_and_grad)


def measure(config, state, eps_root: float, key) -> dict:
    config = config.copy_and_resolve_references()
    config.unroll_eps_root = eps_root
    real = make_task(config).data.sample(key, config.batch_size)[None]
    _, g32 = surrogate_and_gradient(config, state, real)(state.g_params)
    g32 = jax.flatten_util.ravel_pytree(g32)[0]
    with jax.enable_x64(True):
        config64 = config.copy_and_resolve_references()
        config64.dtype = "float64"  # not a runner option: only this measurement traces the models in float64
        to64 = lambda t: jax.tree.map(lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x, t)  # noqa: E731
        state64 = to64(state)
        fn = surrogate_and_gradient(config64, state64, real.astype(jnp.float64))
        _, g64 = fn(state64.g_params)
        flat, unravel = jax.flatten_util.ravel_pytree(state64.g_params)
        g64 = jax.flatten_util.ravel_pytree(g64)[0]
        loss = jax.jit(lambda x: fn(unravel(x))[0])
        h, errors = 1e-5, []
        for i in range(_DIRECTIONS.value):
            u = jax.random.normal(jax.random.fold_in(key, 100 + i), flat.shape, jnp.float64)
            u = u / jnp.linalg.norm(u)
            fd = (loss(flat + h * u) - loss(flat - h * u)) / (2 * h)
            ad = jnp.vdot(g64, u)
            errors.append(float(jnp.abs(ad - fd) / jnp.maximum(jnp.abs(fd), 1e-12)))
        g64 = np.asarray(g64)
    g32 = np.asarray(g32, np.float64)
    finite = bool(np.all(np.isfinite(g32)))
    rel32 = float(np.linalg.norm(g32 - g64) / np.linalg.norm(g64)) if finite else float("nan")
    return {"eps_root": eps_root, "float32_finite": finite, "float32_vs_float64": rel32,
            "float64_vs_fd_max": max(errors), "grad_norm": float(np.linalg.norm(g64))}  # fmt: skip


def run_states(config, workdir: pathlib.Path) -> dict:
    """{"step S": state} of every checkpoint of the run in `workdir`, read as the evaluation scripts read a run.
    Raises ConfigError (one line naming --workdir) when it is no checkpointed run, or a run of another config than
    `config` (apart from the settings a run resumes across and the eps_root measured here)."""
    differences = config_differences(saved_config(workdir, "--workdir").to_dict(), config, ignore=(*RESUMABLE, "unroll_eps_root"))
    if differences:
        raise ConfigError(f"--workdir={workdir}: a run of another config than --config ({shorten_differences(differences)}); "
                          "give the --config and overrides it was trained with")  # fmt: skip
    abstract = abstract_state(config)
    latest_state, _, latest = restore_saved(workdir, abstract, flag="--workdir")  # one line when none restores
    states = {}
    for step in (s for s in saved_steps(workdir / "checkpoints") if s <= latest):  # newer: damaged (warned) or newer than the read
        try:
            states[f"step {step}"] = latest_state if step == latest else restore_saved(workdir, abstract, step, flag="--workdir")[0]
        except ConfigError:
            if not deleted_since_listed(workdir, step):  # a live run's old step, gone: skipped with a warning
                raise
    return states


def main(argv):
    del argv
    config = _CONFIG.value
    checkpoints = run_states(config, pathlib.Path(_WORKDIR.value)) if _WORKDIR.value else {}
    states = {"init": init_state(config, make_update_rule(build_game(config), config)), **checkpoints}
    print("| state | eps_root | float32 finite | ‖g32 − g64‖/‖g64‖ | max rel. error of g64 vs finite differences |")
    print("|---|---|---|---|---|")
    for name, state in states.items():
        for value in map(float, _VALUES.value):
            r = measure(config, state, value, jax.random.key(1))
            print(f"| {name} | {value:g} | {r['float32_finite']} | {r['float32_vs_float64']:.2e} | "
                  f"{r['float64_vs_fd_max']:.2e} |", flush=True)  # fmt: skip
            print(json.dumps({"state": name, **r}), file=sys.stderr)


if __name__ == "__main__":
    run_script(main)
