"""Run configuration: every key the runner knows, and validation that turns bad values into one clear line.

Experiments in `experiments/` start from `default_config()` and override a few fields; any field can be
overridden on the command line as `--config.KEY=VALUE`. `validate` checks the whole config before anything is
built, so a wrong value ends the run with a message naming the key and what is allowed, never a traceback
from inside a compiled function.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import sys
from typing import Any, Callable, Iterable

import ml_collections
import optax

from jaxgan.conditioning import CONDITIONINGS
from jaxgan.data import DATASETS, registry_name
from jaxgan.losses import ENERGY_LOSSES, LOSSES
from jaxgan.metrics.evaluations import EVALUATIONS
from jaxgan.models import DISCRIMINATORS, GENERATORS
from jaxgan.models.lapgan import COARSE_MODELS
from jaxgan.models.mlp import ACTIVATIONS, KERNEL_INITS
from jaxgan.registry import did_you_mean, one_line
from jaxgan import penalties
from jaxgan.penalties import INPUT_GRADIENT_PENALTIES, PENALTIES
from jaxgan.updates import UNROLL_SETTING_OF_FORM, UPDATE_RULES, unroll_form

DTYPES = ("bfloat16", "float32")
OPTIMIZERS = ("adam", "rmsprop", "sgd")


class ConfigError(ValueError):
    """A config value that is not allowed; the message is one line naming the key."""


def import_extensions(modules: Iterable[str]) -> None:
    """Imports the named modules, whose `register` lines add a user's own data sets, models or evaluations to the
    registries. Raises ConfigError (one line) for a module that cannot be imported."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - any failure, as one line
            missing = error.name if isinstance(error, ModuleNotFoundError) else None
            not_found = missing is not None and (module == missing or module.startswith(missing + "."))
            cure = "its folder must be on PYTHONPATH" if not_found else "it raised while being imported"
            raise ConfigError(
                f"--config.imports: cannot import {module!r} ({type(error).__name__}: {one_line(error)}); {cure}"
            ) from None


def default_config(imports: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """Every key the runner knows, with the ring8 values of Metz et al. 2016; experiments override a few.

    `imports`: modules of a user's own registry entries (`jaxgan.data.DATASETS`, `jaxgan.models.GENERATORS`, ...),
    imported first so that their settings join the config sections; kept as `config.imports`, so that config.json
    names them and every tool that reads the run imports them too.
    """
    if isinstance(imports, str):
        raise ConfigError(f"default_config(imports={imports!r}): a tuple of module names, e.g. ({imports!r},)")
    imports = tuple(imports)
    import_extensions(imports)
    config = ml_collections.ConfigDict()
    config.imports = imports
    config.seed = 0
    config.num_seeds = 1  # > 1: seeds seed, seed+1, ... trained together as one vmapped program
    # A hyperparameter sweep in the same program: one run per value of `sweep_key` (one of SWEEPABLE) and seed.
    config.sweep_key = ""
    config.sweep_values = ()
    config.num_steps = 25_000
    config.batch_size = 512
    config.loss = "minimax"
    config.update_rule = "unrolled"
    config.unroll_steps = 10
    config.unroll_same_batch = True  # the paper's choice: one minibatch for all K steps
    config.unroll_stop_gradient = False  # True: first-order ablation, no backprop through the unroll
    # Rematerialise the K unrolled steps in G's backward pass: "on" (memory flat in K), "off", or "auto": on for
    # MLP players; for convolutional ones off, and the K steps traced out (no XLA loop): `updates.unroll_form`.
    config.unroll_remat = "auto"
    # eps_root of D's Adam, √(v̂ + eps_root) + eps, in a rule that differentiates through D's optimizer (unrolled,
    # K > 0, not stop_gradient): d√v/dv is infinite at v = 0. Every other Adam uses its player's own eps_root.
    # BUILD_NOTES.md ("Ring of 8 at the paper's learning rate") has the measurements behind the value.
    config.unroll_eps_root = 1e-12
    config.d_steps = 1  # n_critic of the alternating rule
    config.consensus_gamma = 1.0  # γ of the consensus rule
    config.sga_lambda = 1.0  # λ of symplectic gradient adjustment
    config.ema_decay = 0.0  # > 0 keeps an exponential moving average of G, evaluated beside G
    config.ema_rampup = 0.0  # > 0 caps the average's half-life at ema_rampup × steps so far (StyleGAN2-ADA: 0.05)
    config.penalty = "none"  # none, wgan_gp, dragan, r1, r2, nagarajan_kolter
    config.penalty_weight = 0.0  # λ (WGAN-GP, DRAGAN), γ (R1/R2: γ/2·penalty), η (Nagarajan–Kolter: η/2·‖∇‖²)
    config.weight_clip = 0.0  # > 0 clips D's parameters to [-c, c] after each of its steps (WGAN)
    # PacGAN (Lin et al. 2018, jaxgan.models.packing): D judges packs of this many samples, concatenated along
    # the feature axis, one logit per pack; 1 is the plain D.
    config.packing = 1
    config.dtype = "float32"  # compute dtype of the networks; parameters stay float32
    # Class labels or latent codes for the players (jaxgan.conditioning): none, concat (conditional GAN, Mirza &
    # Osindero 2014), projection (Miyato & Koyama 2018), acgan (Odena et al. 2017, with class_loss_weight),
    # infogan (Chen et al. 2016, with info).
    config.conditioning = "none"
    config.class_loss_weight = 1.0
    # The energy-based GANs' settings (loss = ebgan / began; D = the auto-encoder, jaxgan.energy): EBGAN's margin m
    # (on the per-pixel mean squared reconstruction error) and the weight of its pulling-away term on G's samples
    # (EBGAN-PT: 0.1), BEGAN's diversity ratio γ and the gain λ_k of its control of k_t.
    config.energy = ml_collections.ConfigDict(dict(margin=0.3, pull_away_weight=0.0, gamma=0.5, lambda_k=0.001))
    # StyleGAN2's lazy regularization (jaxgan.updates.with_lazy_regularization): every r1_interval steps one extra
    # D step on r1_interval·γ/2·R1 (γ = r1_gamma > 0), every path_length_interval steps one extra G step on
    # path_length_interval·w·P (w = path_length_weight > 0; a StyleGAN2 G), P's length average with path_length_decay.
    config.lazy = ml_collections.ConfigDict(
        dict(r1_gamma=0.0, r1_interval=16, path_length_weight=0.0, path_length_interval=4, path_length_decay=0.01)
    )
    config.info = ml_collections.ConfigDict(dict(categorical=10, continuous=2, weight=1.0, continuous_weight=0.1))

    # The data set, the players and the evaluations are chosen by name from their registries (jaxgan.data,
    # jaxgan.models, jaxgan.metrics.evaluations); each section holds the settings of every registered entry.
    config.data = _section("ring", DATASETS)
    # Image data only: "device" holds the training split in device memory and draws each batch there from the
    # step's key; "stream" reads batches on the host with grain (jaxgan.data.streaming), for data that do not fit.
    config.data.loader = "device"
    config.evaluations = ("mixture",)
    config.eval = ml_collections.ConfigDict(EVALUATIONS.section_defaults())  # the evaluations' own settings

    config.dirac = ml_collections.ConfigDict()  # data.name = "dirac": the Dirac-GAN's starting point
    config.dirac.theta0 = 1.0
    config.dirac.psi0 = 1.0

    config.z_dim = 256
    config.generator = _section("mlp", GENERATORS)
    config.discriminator = _section("mlp", DISCRIMINATORS)

    # eps_root is 0 as in Adam: a positive value floors the denominator at √eps_root and slows every parameter whose
    # gradients are smaller (see unroll_eps_root for the one place it is needed).
    # cosine_decay_steps > 0: the learning rate decays from its value to 0 over that many updates, beginning after
    # cosine_decay_begin updates (held constant before, e.g. until a mixture's modes are covered). Both count this
    # optimizer's updates: one per training step for G, d_steps for D (n_critic), so D's decay begins at step B/d_steps.
    # orthogonal_regularization = β > 0 adds the gradient of BigGAN's β‖WᵀW ⊙ (1 − I)‖² over the player's kernels
    # (class embeddings excepted) to its gradient (jaxgan.penalties.add_orthogonal_regularization).
    for player in ("g_optimizer", "d_optimizer"):
        config[player] = ml_collections.ConfigDict(
            dict(name="adam", learning_rate=1e-4, b1=0.5, b2=0.999, eps=1e-8, eps_root=0.0, cosine_decay_steps=0,
                 cosine_decay_begin=0, orthogonal_regularization=0.0)
        )

    config.log_every_steps = 500
    config.log_eigenvalues = 0  # > 0: at each evaluation, log this many top eigenvalues of the game Jacobian
    config.eval_every_steps = 2500
    config.eval_num_samples = 2500
    # Progressive growing (generator/discriminator "progan"): each new resolution fades in over this many steps and
    # then trains stabilised as long (Karras et al. 2018); fully grown after 2·(stages − 1)·this many steps.
    config.progressive_phase_steps = 500
    # LapGAN (generator and discriminator "lapgan"): after every step, this many more steps of the coarsest level's
    # GAN alone (jaxgan.updates.with_coarse_level_updates), which needs far more updates than the finer levels.
    config.coarse_level_updates = 0
    config.checkpoint_every_steps = 2500
    config.keep_checkpoints = 3
    config.steps_per_dispatch = 250  # at most this many update steps fused into one compiled call
    # ... and fewer where a dispatch would take longer than this: the host sees SIGTERM (and writes the preemption
    # checkpoint) only between dispatches, and clusters give about 30 s of grace.
    config.max_dispatch_seconds = 2.0
    # How a dispatch runs its steps: "fused" (one XLA loop), "host" (the compiled step called from Python, dispatched
    # asynchronously) or "auto" (host for images on a CPU, whose XLA loops run convolutions much slower; else fused).
    config.dispatch_loop = "auto"
    # Data parallelism (jaxgan.parallel): the batch is split over this many devices of all processes (0: all).
    config.num_devices = 0
    return config


def load_config_file(path: str | os.PathLike) -> ml_collections.ConfigDict:
    """`get_config()` of the experiment file at `path`; experiments build on each other with
    `load_config_file(pathlib.Path(__file__).with_name("dcgan_mnist.py"))` (experiments/ is not a package)."""
    import importlib.util

    path = pathlib.Path(path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _section(name: str, registry) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"name": name, **registry.section_defaults()})


def differentiates_d_optimizer(config: ml_collections.ConfigDict) -> bool:
    """Whether the update rule differentiates through D's optimizer steps (the unrolled rule with K > 0)."""
    return config.update_rule == "unrolled" and config.unroll_steps > 0 and not config.unroll_stop_gradient


def optimizer_settings(config: ml_collections.ConfigDict, player: str) -> ml_collections.ConfigDict:
    """The settings `player`'s optimizer ("g_optimizer" or "d_optimizer") is built with: its own, except that D's
    eps_root is `unroll_eps_root` where the rule differentiates through D's optimizer."""
    settings = config[player]
    if player == "d_optimizer" and differentiates_d_optimizer(config):
        settings = ml_collections.ConfigDict(settings.to_dict(), type_safe=False)
        settings.eps_root = config.unroll_eps_root
    return settings


def make_optimizers(config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    """(G's, D's) optimizers; D's Adam takes `unroll_eps_root` where the rule differentiates through it."""
    return make_optimizer(optimizer_settings(config, "g_optimizer")), make_optimizer(optimizer_settings(config, "d_optimizer"))


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Adam, RMSProp or SGD at `learning_rate`; with `cosine_decay_steps` = T > 0 and `cosine_decay_begin` = B the
    rate at update t of this optimizer is lr · ½(1 + cos(π·min(max(t − B, 0), T)/T)) (Loshchilov & Hutter 2017,
    without restarts): constant for B updates, then 0 from update B + T on. t counts this optimizer's updates (D
    makes `d_steps` per training step), not training steps.

    RMSProp (WGAN's optimizer, Arjovsky et al. 2017) is PyTorch's: ν ← b2·ν + (1 − b2)·g², step
    −lr·g / (√ν + eps), ν starting at 0 (`b2` is PyTorch's `alpha`, the decay of the squared-gradient average).
    Neither RMSProp nor SGD has momentum here (WGAN's RMSProp has none): `b1` is Adam's alone.

    `orthogonal_regularization` β > 0 chains the gradient of BigGAN's orthogonal regularization before the optimizer."""
    optimizer = _optimizer(config)
    if config.orthogonal_regularization:
        regularize = penalties.add_orthogonal_regularization(config.orthogonal_regularization, penalties.not_an_embedding)
        return optax.chain(regularize, optimizer)
    return optimizer


def _optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    rate = config.learning_rate
    if config.cosine_decay_steps:
        rate = optax.cosine_decay_schedule(config.learning_rate, config.cosine_decay_steps)
        if config.cosine_decay_begin:
            constant = optax.constant_schedule(config.learning_rate)
            rate = optax.join_schedules([constant, rate], boundaries=[config.cosine_decay_begin])
    if config.name == "adam":
        return optax.adam(rate, b1=config.b1, b2=config.b2, eps=config.eps, eps_root=config.eps_root)
    if config.name == "rmsprop":
        return optax.rmsprop(rate, decay=config.b2, eps=config.eps, eps_in_sqrt=False)
    return optax.sgd(rate)


# Float hyperparameters a sweep can vary inside one vmapped program (they enter the step as traced values).
SWEEPABLE = (
    "g_optimizer.learning_rate", "d_optimizer.learning_rate", "g_optimizer.b1", "d_optimizer.b1",
    "penalty_weight", "weight_clip", "consensus_gamma", "sga_lambda", "g_optimizer.eps_root", "unroll_eps_root",
    "class_loss_weight", "info.weight", "info.continuous_weight",
)  # fmt: skip


# What a resumed run may change: how long it runs and what the host does between dispatches, never the state's
# layout or the math of a step. A resume on other hardware (another device count, or `dispatch_loop="auto"` choosing
# the other loop) runs the same math in another order: equal to the uninterrupted run up to float rounding only.
RESUMABLE = (
    "num_steps", "log_every_steps", "log_eigenvalues", "eval_every_steps", "eval_num_samples", "evaluations",
    "checkpoint_every_steps", "keep_checkpoints", "steps_per_dispatch", "max_dispatch_seconds", "num_devices",
    "eval.truncation", "eval.inception_weights",
)  # fmt: skip  (dispatch_loop is not: a fused and a host loop are different programs, equal only up to rounding)


def resume_differences(saved: dict[str, Any], config: ml_collections.ConfigDict) -> list[str]:
    """`key: saved → now` for every key outside `RESUMABLE` whose value differs between the config a workdir was
    started with (`saved`, as written to its config.json) and `config` (`config_differences`)."""
    return config_differences(saved, config, ignore=RESUMABLE)


def config_differences(saved: dict[str, Any], config: ml_collections.ConfigDict, ignore: Iterable[str] = ()) -> list[str]:
    """`key: saved → now` for every key (outside `ignore`) whose value differs between a saved config (as written
    to a config.json) and `config` (`differing_settings`)."""
    return [f"{key}: {before!r} → {now!r}" for key, (before, now) in differing_settings(saved, config, ignore).items()]


def shorten_differences(differences: list[str], shown: int = 3) -> str:
    """The first `shown` of `config_differences`' lines joined for a one-line error, and how many more there are."""
    rest = len(differences) - shown
    return "; ".join(differences[:shown]) + (f"; and {rest} more" if rest > 0 else "")


def differing_settings(
    saved: dict[str, Any], config: ml_collections.ConfigDict, ignore: Iterable[str] = ()
) -> dict[str, tuple[Any, Any]]:
    """{key: (saved value, value now)} for every key (outside `ignore`) whose value differs between a saved config
    (as written to a config.json) and `config`. A key only one side has counts as its default value there: a config
    written before a setting existed ran with that setting's default, so it matches a config that keeps the default
    and differs from one that changes it."""
    default = _as_json(flatten(default_config()))
    now = _resolved({**default, **_as_json(flatten(config))})
    before = _resolved({**default, **_as_json(flatten(ml_collections.ConfigDict(saved)))})
    missing = _Missing()
    values = {key: (before.get(key, missing), now.get(key, missing)) for key in {**before, **now} if key not in ignore}
    return {key: pair for key, pair in values.items() if pair[0] != pair[1]}


class _Missing:
    """A setting this jaxgan does not have (removed since a saved config was written)."""

    def __repr__(self) -> str:
        return "(no such setting now)"


def _in_current_spelling(values: dict[str, Any]) -> dict[str, Any]:
    """A flattened saved config with the values an older jaxgan wrote in today's spelling: `unroll_remat` was a
    bool before "auto" existed (True/False: today's "on"/"off", the same program), and `eval.truncation` was
    `eval_truncation` before the evaluations had their section."""
    if "eval_truncation" in values:
        values = {**values, "eval.truncation": values["eval_truncation"]}
        del values["eval_truncation"]
    remat = values.get("unroll_remat")
    return {**values, "unroll_remat": "on" if remat else "off"} if isinstance(remat, bool) else values


def _resolved(values: dict[str, Any]) -> dict[str, Any]:
    """A flattened config (every key present) with the settings that do not change its program made equal, so
    that configs that run the same program compare equal: `unroll_remat` means nothing without unrolled inner
    steps (another rule, or K ≤ 1), and otherwise it is written as the setting that names its form
    (`updates.unroll_form`: "auto" with MLP players is "on")."""
    values = _in_current_spelling(values)
    if values["update_rule"] != "unrolled" or values["unroll_steps"] <= 1:
        return {**values, "unroll_remat": "auto"}
    form = unroll_form(values["unroll_remat"], values["discriminator.name"])
    return {**values, "unroll_remat": UNROLL_SETTING_OF_FORM[form]}


def config_from_saved(saved: dict[str, Any]) -> ml_collections.ConfigDict:
    """The config a run's config.json was written from: the default config with the saved values (in today's
    spelling), the lists that JSON made of tuples made tuples again; keys it does not have keep their defaults (an
    older jaxgan)."""
    config = default_config(imports=saved.get("imports", ()))  # a user's own entries first: their settings are saved
    reference = flatten(config)
    for key, value in _in_current_spelling(flatten(ml_collections.ConfigDict(saved))).items():
        if key not in reference:
            raise ConfigError(f"--config.{key}: unknown config key in a saved config{did_you_mean(key, reference, prefix='--config.')}")
        set_by_path(config, key, tuple(value) if isinstance(reference[key], tuple) else value)
    return config


def _as_json(values: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values))  # tuples and lists compare alike, as they come back from config.json


def get_by_path(config: Any, path: str) -> Any:
    for part in path.split("."):
        config = config[part]
    return config


def set_by_path(config: Any, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        config = config[part]
    config[leaf] = value


def num_runs(config: ml_collections.ConfigDict) -> int:
    """Runs trained together: `num_seeds` per value of the swept hyperparameter."""
    return config.num_seeds * (len(config.sweep_values) if config.sweep_key else 1)


def run_configs(config: ml_collections.ConfigDict) -> list[ml_collections.ConfigDict]:
    """The concrete config of every run of a sweep, value-major: for each value of `sweep_key` (or just the
    config's own), the seeds `seed`, `seed + 1`, ..., `seed + num_seeds − 1`. Each is a single run: no sweep
    and `num_seeds = 1`."""
    values = tuple(config.sweep_values) if config.sweep_key else (None,)
    runs = []
    for value in values:
        for i in range(config.num_seeds):
            run = ml_collections.ConfigDict(config.to_dict())
            run.seed, run.num_seeds = config.seed + i, 1
            run.sweep_key, run.sweep_values = "", ()
            if value is not None:
                set_by_path(run, config.sweep_key, value)
            runs.append(run)
    return runs


def flatten(config: ml_collections.ConfigDict, prefix: str = "") -> dict[str, Any]:
    """{"data.name": "ring", ...}: every leaf of a nested config under its dotted command-line name."""
    out = {}
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(type(value), type(value).__name__)


_CHOICES: dict[str, Iterable[str]] = {
    "loss": (*LOSSES, *ENERGY_LOSSES),
    "update_rule": UPDATE_RULES,
    "penalty": PENALTIES,
    "dtype": DTYPES,
    "conditioning": CONDITIONINGS,
    "dispatch_loop": ("auto", "fused", "host"),
    "data.name": DATASETS,  # registries, read when validating: entries registered later count
    "data.loader": ("device", "stream"),
    "generator.name": GENERATORS,
    "discriminator.name": DISCRIMINATORS,
    "generator.activation": ACTIVATIONS,
    "discriminator.activation": ACTIVATIONS,
    "generator.weight_init": KERNEL_INITS,
    "discriminator.weight_init": KERNEL_INITS,
    "g_optimizer.name": OPTIMIZERS,
    "discriminator.norm": ("batch", "layer", "layer_chw", "spectral", "none"),
    "discriminator.energy": ("mse", "l1"),
    "discriminator.autoencoder_activation": ("leaky_relu", "elu"),
    "discriminator.strided_conv": ("auto", "space_to_depth", "conv"),
    "unroll_remat": ("auto", "on", "off"),
    "generator.coarse_model": COARSE_MODELS,
    "discriminator.coarse_model": COARSE_MODELS,
    "d_optimizer.name": OPTIMIZERS,
}

_POSITIVE_INTS = (
    "num_seeds", "num_steps", "batch_size", "d_steps", "packing", "z_dim", "log_every_steps", "eval_every_steps", "eval_num_samples",
    "checkpoint_every_steps", "keep_checkpoints", "steps_per_dispatch", "data.num_modes",
    "generator.width", "discriminator.width", "generator.base_width", "discriminator.base_width",
    "generator.kernel_size", "discriminator.kernel_size", "progressive_phase_steps", "generator.max_width", "discriminator.embedding_dim",
    "discriminator.max_width", "lazy.r1_interval", "lazy.path_length_interval", "generator.mapping_layers", "generator.w_dim",
    "discriminator.maxout_pieces",
)  # fmt: skip
_NON_NEGATIVE = ("num_devices", "coarse_level_updates", "ema_rampup", "g_optimizer.cosine_decay_steps", "d_optimizer.cosine_decay_steps", "g_optimizer.cosine_decay_begin",
                 "d_optimizer.cosine_decay_begin", "log_eigenvalues", "unroll_steps", "consensus_gamma", "sga_lambda", "penalty_weight", "weight_clip", "generator.depth", "discriminator.depth", "generator.hidden_dense", "discriminator.hidden_dense", "discriminator.num_convs", "g_optimizer.eps", "d_optimizer.eps",
                 "g_optimizer.eps_root", "d_optimizer.eps_root", "unroll_eps_root", "eval.truncation", "class_loss_weight", "info.categorical",
                 "info.continuous", "info.weight", "info.continuous_weight", "energy.pull_away_weight", "energy.lambda_k",
                 "g_optimizer.orthogonal_regularization", "d_optimizer.orthogonal_regularization",
                 "generator.attention_resolution", "discriminator.attention_resolution", "generator.shared_embedding_dim",
                 "lazy.r1_gamma", "lazy.path_length_weight", "generator.coarse_width", "discriminator.coarse_width")  # fmt: skip
_POSITIVE = ("max_dispatch_seconds", "data.scale", "data.std", "generator.init_gain", "discriminator.init_gain", "discriminator.input_scale",
             "g_optimizer.learning_rate", "d_optimizer.learning_rate")  # fmt: skip
_UNIT_INTERVAL = ("g_optimizer.b1", "d_optimizer.b1", "g_optimizer.b2", "d_optimizer.b2", "ema_decay")

MAX_LOGGED_EIGENVALUES = 100

_RULES: list[tuple[Iterable[str], Callable[[Any], bool], str]] = [
    (("data.held_out_fraction",), lambda v: 0 < v < 1, "must be in (0, 1)"),
    (("energy.gamma", "generator.mixing_probability"), lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    (("lazy.path_length_decay",), lambda v: 0 < v <= 1, "must be in (0, 1]"),
    (("energy.margin",), lambda v: v > 0, "must be > 0"),
    (("data.image_size",), lambda v: v >= 0, "must be >= 0 (0: the images' own size)"),
    # The top eigenvalues come from 2k Arnoldi iterations, each keeping a vector of every parameter.
    (("log_eigenvalues",), lambda v: v <= MAX_LOGGED_EIGENVALUES, f"must be <= {MAX_LOGGED_EIGENVALUES}"),
    (_POSITIVE_INTS, lambda v: v >= 1, "must be a positive integer"),
    (_NON_NEGATIVE, lambda v: v >= 0, "must be >= 0"),
    (_POSITIVE, lambda v: v > 0, "must be > 0"),
    (_UNIT_INTERVAL, lambda v: 0 <= v < 1, "must be in [0, 1)"),
    (("generator.widths", "discriminator.widths"), lambda v: len(v) > 0 and all(type(w) is int and w > 0 for w in v),
     "must be a non-empty tuple of positive integers, e.g. (64, 32, 16, 8)"),
]


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises `ConfigError` naming the first bad key (as its command-line flag) and what is allowed."""
    imports = config.get("imports", ())
    late = [m for m in (imports if isinstance(imports, tuple) else ()) if m not in sys.modules]
    if late:  # imported now, its entries' settings would be missing from the sections built before
        raise ConfigError(
            f"--config.imports={imports!r}: {late[0]!r} was not imported when the config was built; a config file "
            f"names it as default_config(imports=({late[0]!r},))"
        )
    reference = flatten(default_config())
    values = flatten(config)
    for key in values:
        if key not in reference:
            raise ConfigError(f"--config.{key}: unknown config key{did_you_mean(key, reference)}")
    for key, default in reference.items():
        if key not in values:
            raise ConfigError(f"--config.{key}: missing from the config (default {default!r})")
        value = values[key]
        ok_type = isinstance(value, type(default)) and not (isinstance(value, bool) and not isinstance(default, bool))
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            ok_type = True
        if not ok_type:
            raise ConfigError(f"--config.{key}={value!r}: must be {_type_name(default)}, got {_type_name(value)}")
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"--config.{key}={value!r}: must be a finite number")
    last_seed = config.seed + config.num_seeds - 1
    if config.seed < 0 or last_seed >= 2**32:
        raise ConfigError(
            f"--config.seed={config.seed!r}: the seeds (seed to seed + num_seeds − 1 = {last_seed}) must be in "
            "[0, 2**32): a PRNG key keeps 32 bits of its seed, so others would repeat the runs of smaller seeds"
        )
    for key, allowed in _CHOICES.items():
        value = registry_name(values[key]) if key == "data.name" else values[key]
        if value not in allowed:
            shown = sorted("tfds:NAME" if key == "data.name" and a == "tfds" else a for a in allowed)
            raise ConfigError(
                f"--config.{key}={values[key]!r}: unknown value; allowed: {', '.join(shown)}"
                f"{did_you_mean(values[key], allowed)}"
            )
    for keys, check, message in _RULES:
        for key in keys:
            if not check(values[key]):
                raise ConfigError(f"--config.{key}={values[key]!r}: {message}")
    unread = DATASETS.unread_settings(registry_name(config.data.name), config.data)
    if unread:
        raise ConfigError(
            f"--config.data.{unread[0]}={config.data[unread[0]]!r}: data set {config.data.name!r} does not read it "
            f"(it is {', '.join(DATASETS.owners(unread[0]))}'s setting)"
        )
    for name in config.evaluations:
        if name not in EVALUATIONS:
            raise ConfigError(
                f"--config.evaluations: unknown evaluation {name!r}; allowed: {', '.join(EVALUATIONS.names)}"
                f"{did_you_mean(name, EVALUATIONS.names)}"
            )
    if not config.evaluations:
        raise ConfigError(f"--config.evaluations=(): name at least one of {', '.join(EVALUATIONS.names)}")
    unread = EVALUATIONS.unread_settings(config.evaluations, config.eval)
    if unread:
        raise ConfigError(
            f"--config.eval.{unread[0]}={config.eval[unread[0]]!r}: no evaluation in --config.evaluations reads it "
            f"(it is {', '.join(EVALUATIONS.owners(unread[0]))}'s setting)"
        )
    if {"images", "inception"} <= set(config.evaluations):
        raise ConfigError(
            f"--config.evaluations={list(config.evaluations)}: 'images' and 'inception' both write fid, kid, "
            "inception_score, precision and recall (in the digit classifier's and in Inception-v3's features); choose one"
        )
    _validate_sweep(config)
    energy_d = config.discriminator.name == "autoencoder"
    if (config.loss in ENERGY_LOSSES) != energy_d:
        raise ConfigError(
            f"--config.loss={config.loss!r} with --config.discriminator.name={config.discriminator.name!r}: the energy "
            f"losses ({', '.join(ENERGY_LOSSES)}) and the auto-encoder D go together (its outputs are reconstruction "
            "errors, not logits)"
        )
    if config.energy.pull_away_weight > 0 and not energy_d:
        raise ConfigError(
            f"--config.energy.pull_away_weight={config.energy.pull_away_weight!r}: the pulling-away term needs D's "
            "embeddings: use --config.discriminator.name=autoencoder"
        )
    if config.lazy.path_length_weight > 0 and config.generator.name != "stylegan2":
        raise ConfigError(
            f"--config.lazy.path_length_weight={config.lazy.path_length_weight!r}: path length regularization needs "
            f"a StyleGAN2 generator (its mapping network), not {config.generator.name!r}; use --config.generator.name=stylegan2"
        )
    for player in ("g_optimizer", "d_optimizer"):
        if config[player].cosine_decay_begin > 0 and config[player].cosine_decay_steps == 0:
            raise ConfigError(
                f"--config.{player}.cosine_decay_begin={config[player].cosine_decay_begin!r}: begins a decay that is "
                f"off; set --config.{player}.cosine_decay_steps (its length) too"
            )
    if config.coarse_level_updates > 0:
        players = (config.generator.name, config.discriminator.name)
        decaying = [p for p in ("g_optimizer", "d_optimizer") if config[p].cosine_decay_steps > 0]
        if players != ("lapgan", "lapgan"):
            raise ConfigError(
                f"--config.coarse_level_updates={config.coarse_level_updates!r}: trains LapGAN's coarsest level, which "
                f"needs --config.generator.name=lapgan and --config.discriminator.name=lapgan, not {players[0]!r} and "
                f"{players[1]!r}"
            )
        if config.packing > 1:
            raise ConfigError(
                f"--config.coarse_level_updates={config.coarse_level_updates!r} with --config.packing={config.packing!r}: "
                "the coarsest level's extra steps judge single examples; use --config.packing=1 with them"
            )
        if config.penalty != "none" or decaying:
            what = f"--config.penalty={config.penalty!r}" if config.penalty != "none" else f"--config.{decaying[0]}.cosine_decay_steps"
            raise ConfigError(
                f"--config.coarse_level_updates={config.coarse_level_updates!r} with {what}: the coarsest level's extra "
                "steps take the game's loss alone, at a constant rate; use no penalty and no decay with them"
            )
    if config.ema_rampup > 0 and config.ema_decay == 0:
        raise ConfigError(
            f"--config.ema_rampup={config.ema_rampup!r}: ramps up the EMA of G, which is off; set --config.ema_decay "
            "(e.g. 0.999) too"
        )
    if config.lazy.r1_gamma > 0 and config.penalty == "r1":
        raise ConfigError(
            "--config.lazy.r1_gamma with --config.penalty='r1': R1 would be applied twice; use --config.penalty=none "
            "for lazy R1, or --config.lazy.r1_gamma=0 for R1 on every step"
        )
    weight_swept = config.sweep_key == "penalty_weight"
    if config.penalty != "none" and config.penalty_weight == 0 and not weight_swept:
        raise ConfigError(
            f"--config.penalty={config.penalty!r} at --config.penalty_weight=0: the penalty is off; give it a weight "
            "(e.g. 10 for wgan_gp)"
        )
    if config.penalty == "none" and (config.penalty_weight > 0 or weight_swept):
        raise ConfigError(
            "--config.penalty_weight: weighs no penalty (--config.penalty='none'); choose one with --config.penalty"
        )
    if config.d_steps > 1 and config.update_rule != "alternating":
        raise ConfigError(
            f"--config.d_steps={config.d_steps}: n_critic is the alternating rule's; --config.update_rule="
            f"{config.update_rule!r} makes one D step per training step"
        )
    if config.update_rule == "optimistic" and (config.lazy.r1_gamma > 0 or config.lazy.path_length_weight > 0):
        raise ConfigError(
            "--config.update_rule='optimistic' with the lazy regularizers (--config.lazy.*): their extra steps would "
            "apply plain updates to the optimistic rule's optimizer state; use another rule or penalty='r1'"
        )
    for player in ("g_optimizer", "d_optimizer"):
        settings = optimizer_settings(config, player)
        if settings.eps == 0 and (settings.name == "rmsprop" or (settings.name == "adam" and settings.eps_root == 0)):
            eps_root_key = "unroll_eps_root" if settings is not config[player] else f"{player}.eps_root"
            raise ConfigError(
                f"--config.{player}.eps=0: with {settings.name}'s eps_root at 0 a parameter whose gradient is exactly "
                "0 gets the update 0/0 = NaN; use eps > 0 (e.g. 1e-8)"
                + (f" or --config.{eps_root_key} > 0" if settings.name == "adam" else "")
            )
    if config.log_eigenvalues and config.data.get("loader") == "stream" and config.data.name.startswith("tfds:"):
        raise ConfigError(
            f"--config.log_eigenvalues={config.log_eigenvalues}: the eigenvalues are taken on a batch drawn in memory, "
            f"and a streamed {config.data.name} keeps its training split on disk; use --config.data.loader=device or "
            "--config.log_eigenvalues=0"
        )
    if config.log_eigenvalues and num_runs(config) > 1:
        raise ConfigError(
            f"--config.log_eigenvalues={config.log_eigenvalues}: the eigenvalues are logged for a single run, not for "
            f"the {num_runs(config)} runs of a sweep (--config.num_seeds, --config.sweep_key); train the run alone"
        )
    _validate_packing(config)
    if config.data.name == "grid" and round(config.data.num_modes**0.5) ** 2 != config.data.num_modes:
        raise ConfigError(f"--config.data.num_modes={config.data.num_modes}: a grid needs a perfect square, e.g. 25 for 5 × 5 (experiments/grid25.py)")
    if differentiates_d_optimizer(config) and config.d_optimizer.name == "rmsprop":
        raise ConfigError(
            "--config.d_optimizer.name='rmsprop': the unrolled rule differentiates through D's optimizer, and "
            "RMSProp's d/dν √ν is infinite at ν = 0; use adam (with unroll_eps_root) or sgd"
        )
    if differentiates_d_optimizer(config) and config.d_optimizer.name == "adam":
        if config.unroll_eps_root <= 0:
            raise ConfigError(
                f"--config.unroll_eps_root={config.unroll_eps_root!r}: the unrolled rule differentiates through D's "
                "Adam, and d/dv √(v + eps_root) is infinite at v = 0 (NaN gradients); use a value > 0, e.g. 1e-8"
            )
        if config.d_optimizer.eps_root != 0:
            raise ConfigError(
                f"--config.d_optimizer.eps_root={config.d_optimizer.eps_root!r}: the unrolled rule builds D's Adam "
                "with --config.unroll_eps_root instead; set that one"
            )


def _validate_packing(config: ml_collections.ConfigDict) -> None:
    m = config.packing
    if m == 1:
        return
    if config.batch_size % m:
        raise ConfigError(f"--config.packing={m}: the batch of {config.batch_size} (--config.batch_size) must be a multiple of it")
    if config.conditioning != "none":
        raise ConfigError(
            f"--config.packing={m} with --config.conditioning={config.conditioning!r}: a pack mixes samples of different "
            "classes or codes; packing is for unconditional games"
        )
    if config.discriminator.name == "autoencoder":
        raise ConfigError(f"--config.packing={m}: the auto-encoder D reconstructs single samples; use packing=1 with it")
    input_gradient = config.penalty if config.penalty in INPUT_GRADIENT_PENALTIES and config.penalty_weight > 0 else ""
    if input_gradient or config.lazy.r1_gamma > 0:
        raise ConfigError(
            f"--config.packing={m} with --config.{'penalty=' + repr(input_gradient) if input_gradient else 'lazy.r1_gamma'}: "
            "the input-gradient penalties are defined per sample, not per pack; use packing=1 with them"
        )


# A swept hyperparameter (or one set on the command line) that the config's rule, optimizer or objective never reads
# would give identical runs (or a run that ignores it): what each needs to act. None depends on a sweepable key.
_SWEEP_NEEDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "consensus_gamma": (lambda c: c.update_rule == "consensus", "--config.update_rule=consensus"),
    "sga_lambda": (lambda c: c.update_rule == "sga", "--config.update_rule=sga"),
    "unroll_eps_root": (lambda c: differentiates_d_optimizer(c) and c.d_optimizer.name == "adam",
                        "the unrolled rule (unroll_steps > 0) differentiating through D's Adam"),
    "g_optimizer.eps_root": (lambda c: c.g_optimizer.name == "adam", "--config.g_optimizer.name=adam"),
    "g_optimizer.b1": (lambda c: c.g_optimizer.name == "adam", "--config.g_optimizer.name=adam"),
    "d_optimizer.b1": (lambda c: c.d_optimizer.name == "adam", "--config.d_optimizer.name=adam"),
    "class_loss_weight": (lambda c: c.conditioning == "acgan", "--config.conditioning=acgan"),
    "info.weight": (lambda c: c.conditioning == "infogan" and c.info.categorical > 0,
                    "--config.conditioning=infogan with a categorical code (info.categorical > 0)"),
    "info.continuous_weight": (lambda c: c.conditioning == "infogan" and c.info.continuous > 0,
                               "--config.conditioning=infogan with continuous codes (info.continuous > 0)"),
}  # fmt: skip

_UNROLLED = (lambda c: c.update_rule == "unrolled", "--config.update_rule=unrolled")
_PROGAN = (lambda c: "progan" in (c.generator.name, c.discriminator.name), "a progan generator or discriminator")
# Settings that only some rules, losses, models or optimizers read, beyond the sweepable ones above.
_OVERRIDE_NEEDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    **_SWEEP_NEEDS,
    **{key: _UNROLLED for key in ("unroll_steps", "unroll_same_batch", "unroll_stop_gradient", "unroll_remat")},
    "penalty_weight": (lambda c: c.penalty != "none", "a --config.penalty"),
    "energy.margin": (lambda c: c.loss == "ebgan", "--config.loss=ebgan"),
    "energy.gamma": (lambda c: c.loss == "began", "--config.loss=began"),
    "energy.lambda_k": (lambda c: c.loss == "began", "--config.loss=began"),
    "progressive_phase_steps": _PROGAN,
    "coarse_level_updates": (lambda c: c.generator.name == c.discriminator.name == "lapgan",
                             "--config.generator.name=lapgan and --config.discriminator.name=lapgan"),
    "dirac.theta0": (lambda c: c.generator.name == "dirac", "--config.generator.name=dirac"),
    "dirac.psi0": (lambda c: c.discriminator.name == "linear", "--config.discriminator.name=linear"),
    "info.categorical": (lambda c: c.conditioning == "infogan", "--config.conditioning=infogan"),
    "info.continuous": (lambda c: c.conditioning == "infogan", "--config.conditioning=infogan"),
    **{f"{p}.b2": (lambda c, p=p: c[p].name in ("adam", "rmsprop"), f"--config.{p}.name=adam or rmsprop")
       for p in ("g_optimizer", "d_optimizer")},
    **{f"{p}.eps": (lambda c, p=p: c[p].name in ("adam", "rmsprop"), f"--config.{p}.name=adam or rmsprop")
       for p in ("g_optimizer", "d_optimizer")},
}  # fmt: skip


def check_overrides_have_effect(config: ml_collections.ConfigDict, overridden: Iterable[str]) -> None:
    """Refuses a setting given on the command line that this config never reads: one of another update rule,
    optimizer, loss or conditioning (`--config.consensus_gamma=2` with the unrolled rule would train as if it were
    not there), or one of another generator or discriminator than the one chosen (`--config.generator.base_width`
    with the MLP). Only the command line's keys: an experiment file may set values for rules that scripts switch to."""
    for key in overridden:
        needs = _OVERRIDE_NEEDS.get(key)
        if needs is not None and not needs[0](config):
            raise ConfigError(f"--config.{key}={get_by_path(config, key)!r}: has no effect in this config; it needs {needs[1]}")
        section, _, setting = key.partition(".")
        registry = {"generator": GENERATORS, "discriminator": DISCRIMINATORS}.get(section)
        name = config[section].name if registry is not None else None
        if registry is not None and setting and setting != "name" and setting not in registry[name].defaults:
            users = registry.owners(setting)
            raise ConfigError(
                f"--config.{key}={get_by_path(config, key)!r}: {section} {name!r} does not read it"
                + (f" (it is {', '.join(users)}'s setting)" if users else "")
            )


def _validate_sweep(config: ml_collections.ConfigDict) -> None:
    key, values = config.sweep_key, tuple(config.sweep_values)
    if not key:
        if values:
            raise ConfigError(f"--config.sweep_values={values!r}: set --config.sweep_key to the hyperparameter to sweep")
        return
    if key not in SWEEPABLE:
        raise ConfigError(
            f"--config.sweep_key={key!r}: not sweepable; allowed: {', '.join(SWEEPABLE)}{did_you_mean(key, SWEEPABLE)}"
        )
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise ConfigError(f"--config.sweep_values={values!r}: must be a non-empty tuple of finite numbers, e.g. '(1e-4, 1e-3)'")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:  # the same runs twice, reported as two values
        raise ConfigError(f"--config.sweep_values={values!r}: {repeated[0]!r} is given twice; give each value once")
    needs = _SWEEP_NEEDS.get(key)
    if needs is not None and not needs[0](config):
        raise ConfigError(f"--config.sweep_key={key!r}: has no effect in this config; it needs {needs[1]}")
    if key == "weight_clip" and min(values) <= 0:
        raise ConfigError(f"--config.sweep_values={values!r}: swept weight_clip values must be > 0")
    for run in run_configs(config):
        try:
            validate(run)
        except ConfigError as e:
            raise ConfigError(f"--config.sweep_values: {e}") from None
