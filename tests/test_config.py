"""Configs: the cosine learning-rate decay against its closed form; every experiment file validates."""

import math
import pathlib
import re

import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.config import ConfigError, check_overrides_have_effect, default_config, differentiates_d_optimizer, make_optimizer, make_optimizers, set_by_path, validate
from jaxgan.models import DISCRIMINATORS, GENERATORS
from scripts.notes import load_experiment


@pytest.mark.parametrize("decay_steps, decay_begin", [(0, 0), (4, 0), (4, 3)])
def test_sgd_step_sizes_follow_the_cosine_decay(decay_steps, decay_begin):
    config = default_config().g_optimizer
    config.name, config.learning_rate = "sgd", 0.3
    config.cosine_decay_steps, config.cosine_decay_begin = decay_steps, decay_begin
    optimizer = make_optimizer(config)
    params = jnp.zeros(())
    state = optimizer.init(params)
    for t in range(10):
        update, state = optimizer.update(jnp.ones(()), state, params)
        into_decay = min(max(t - decay_begin, 0), decay_steps)
        expected = 0.3 if not decay_steps else 0.3 * 0.5 * (1 + math.cos(math.pi * into_decay / decay_steps))
        np.testing.assert_allclose(-float(update), expected, rtol=1e-6, atol=1e-9)


def test_a_decay_begin_without_a_decay_is_refused():
    config = default_config()
    config.g_optimizer.cosine_decay_begin = 100
    with pytest.raises(ConfigError, match=r"^--config.g_optimizer.cosine_decay_begin=100: begins a decay that is off; "
                       r"set --config.g_optimizer.cosine_decay_steps \(its length\) too$"):
        validate(config)


def test_negative_decay_steps_are_refused():
    config = default_config()
    config.d_optimizer.cosine_decay_steps = -1
    with pytest.raises(ConfigError, match=r"--config.d_optimizer.cosine_decay_steps=-1: must be >= 0"):
        validate(config)



def test_unknown_lapgan_coarse_model_is_refused_with_a_suggestion():
    config = default_config()
    config.discriminator.coarse_model = "cnn"
    with pytest.raises(ConfigError, match=r"^--config.discriminator.coarse_model='cnn': unknown value; allowed: conv, mlp"):
        validate(config)

@pytest.mark.parametrize("path", sorted(pathlib.Path(__file__).resolve().parents[1].glob("experiments/*.py")), ids=str)
def test_every_experiment_config_validates(path):
    validate(load_experiment(path.stem))  # raises ConfigError naming the bad key


def first_adam_step(optimizer, gradient: float) -> float:
    params = jnp.zeros(())
    update, _ = optimizer.update(jnp.asarray(gradient), optimizer.init(params), params)
    return -float(update)


@pytest.mark.parametrize(
    "rule, unroll_steps, stop_gradient, differentiated",
    [("unrolled", 10, False, True), ("unrolled", 0, False, False), ("unrolled", 10, True, False),
     ("simultaneous", 10, False, False)],
)  # fmt: skip
def test_d_adam_takes_unroll_eps_root_only_where_it_is_differentiated(rule, unroll_steps, stop_gradient, differentiated):
    # Adam's first step is lr·g/(√(g² + eps_root) + eps): with g = 1e-7 it is lr/(1 + 0.1) at eps_root 0 and
    # about lr·0.0995 at eps_root 1e-12, so the step size tells which eps_root each optimizer has.
    config = default_config()
    config.update_rule, config.unroll_steps, config.unroll_stop_gradient = rule, unroll_steps, stop_gradient
    g_optimizer, d_optimizer = make_optimizers(config)
    lr, g = 1e-4, 1e-7
    plain = lr * g / (g + 1e-8)
    np.testing.assert_allclose(first_adam_step(g_optimizer, g), plain, rtol=1e-5)  # G: eps_root 0, always
    smoothed = lr * g / (math.sqrt(g * g + config.unroll_eps_root) + 1e-8)
    np.testing.assert_allclose(first_adam_step(d_optimizer, g), smoothed if differentiated else plain, rtol=1e-5)
    assert differentiated == differentiates_d_optimizer(config)


def test_eps_root_errors_explain_the_choice():
    config = default_config()  # the unrolled rule with K = 10
    config.unroll_eps_root = 0.0
    with pytest.raises(ConfigError, match=r"^--config.unroll_eps_root=0.0: the unrolled rule differentiates through D's Adam, and d/dv √\(v \+ eps_root\) is infinite at v = 0"):
        validate(config)
    config.unroll_eps_root, config.d_optimizer.eps_root = 1e-12, 1e-8
    with pytest.raises(ConfigError, match=r"^--config.d_optimizer.eps_root=1e-08: the unrolled rule builds D's Adam with --config.unroll_eps_root"):
        validate(config)
    config.update_rule = "simultaneous"  # nothing differentiates through D's Adam: its own eps_root is used
    validate(config)


def test_rmsprop_steps_follow_pytorchs_formula():
    """ν_t = b2·ν_{t−1} + (1 − b2)·g_t², step −lr·g_t/(√ν_t + eps), from ν_0 = 0 (WGAN's optimizer)."""
    config = default_config().d_optimizer
    config.name, config.learning_rate, config.b2, config.eps = "rmsprop", 5e-5, 0.99, 1e-8
    optimizer = make_optimizer(config)
    params = jnp.zeros(())
    state = optimizer.init(params)
    nu = 0.0
    for g in (0.3, -2.0, 1e-3):
        update, state = optimizer.update(jnp.asarray(g), state, params)
        nu = 0.99 * nu + 0.01 * g * g
        np.testing.assert_allclose(float(update), -5e-5 * g / (math.sqrt(nu) + 1e-8), rtol=1e-5)


def test_unrolling_through_rmsprop_is_refused():
    config = default_config()  # unrolled, K = 10
    config.d_optimizer.name = "rmsprop"
    with pytest.raises(ConfigError, match=r"--config.d_optimizer.name='rmsprop': the unrolled rule differentiates"):
        validate(config)


def test_a_saved_config_comes_back_as_it_was_written():
    """config.json (JSON: tuples become lists) → `config_from_saved` → the same config, tuples included."""
    import json

    from jaxgan.config import config_from_saved

    config = load_experiment("cgan_mnist")
    config.sweep_key, config.sweep_values = "d_optimizer.learning_rate", (1e-4, 2e-4)
    restored = config_from_saved(json.loads(json.dumps(config.to_dict())))
    assert restored.to_dict() == config.to_dict()
    validate(restored)
    with pytest.raises(ConfigError, match=r"--config.generator.widht: unknown config key in a saved config \(did you mean --config.generator.width\?\)"):
        config_from_saved({"generator": {"widht": 3}})


def test_a_setting_missing_from_a_saved_config_counts_as_its_default():
    from jaxgan.config import config_differences, resume_differences

    config = default_config()
    saved = config.to_dict()
    del saved["energy"]["margin"]  # written before the setting existed
    assert config_differences(saved, config) == []
    config.energy.margin = 0.5
    assert config_differences(saved, config) == ["energy.margin: 0.3 → 0.5"]
    config.num_steps += 1  # a run's length may change on resume, not its settings
    assert resume_differences(saved, config) == ["energy.margin: 0.3 → 0.5"]


@pytest.mark.parametrize("experiment, rule, saved_remat, now, differs", [
    ("ring8", "unrolled", True, "auto", False),  # MLP players: "auto" is "on", the program the old run ran
    ("ring8", "unrolled", False, "auto", True),
    ("dcgan_digits", "unrolled", True, "auto", True),  # convolutional players: "auto" drops remat and the loop
    ("dcgan_digits", "unrolled", True, "on", False),
    ("dcgan_digits", "unrolled", False, "off", False),
    ("dcgan_digits", "alternating", True, "auto", False),  # nothing unrolled: the setting is not read
    ("dcgan_digits", "alternating", False, "on", False),
])
def test_unroll_remat_saved_as_a_bool_resumes_as_the_same_program(experiment, rule, saved_remat, now, differs):
    """A config.json written when `unroll_remat` was a bool loads in today's spelling ("on"/"off"), and a resume
    is refused exactly when the run's program would change."""
    import json

    from jaxgan.config import config_differences, config_from_saved

    config = load_experiment(experiment)
    config.update_rule, config.unroll_steps = rule, 3
    saved = json.loads(json.dumps(config.to_dict()))
    saved["unroll_remat"] = saved_remat
    assert config_from_saved(saved).unroll_remat == ("on" if saved_remat else "off")
    config.unroll_remat = now
    assert bool(config_differences(saved, config)) is differs


def test_eval_truncation_of_an_older_config_json_is_read_as_eval_truncation_in_its_section():
    """A config.json written when the truncation was the top-level `eval_truncation` loads as `eval.truncation`, and
    compares equal to a config with the same value (a resume is allowed), unequal to another value."""
    import json

    from jaxgan.config import config_differences, config_from_saved, differing_settings

    config = load_experiment("dcgan_digits")
    saved = json.loads(json.dumps(config.to_dict()))
    del saved["eval"]
    saved["eval_truncation"] = 0.5
    assert config_from_saved(saved).eval.truncation == 0.5
    config.eval.truncation = 0.5
    assert config_differences(saved, config) == []
    config.eval.truncation = 0.7
    assert differing_settings(saved, config) == {"eval.truncation": (0.5, 0.7)}


def test_a_setting_that_no_longer_exists_is_named_as_such():
    from jaxgan.config import config_differences

    saved = {**default_config().to_dict(), "retired_option": 3}
    assert config_differences(saved, default_config()) == ["retired_option: 3 → (no such setting now)"]


def test_ema_rampup_needs_an_ema():
    config = default_config()
    config.ema_rampup = 0.05
    with pytest.raises(ConfigError, match=r"^--config.ema_rampup=0.05: ramps up the EMA of G, which is off; set --config.ema_decay"):
        validate(config)
    config.ema_decay = 0.999
    validate(config)
    config.ema_rampup = -0.1
    with pytest.raises(ConfigError, match=r"^--config.ema_rampup=-0.1: must be >= 0$"):
        validate(config)



@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"penalty": "wgan_gp"}, r"^--config.penalty='wgan_gp' at --config.penalty_weight=0: the penalty is off; give it"),
        ({"penalty_weight": 10.0}, r"^--config.penalty_weight: weighs no penalty \(--config.penalty='none'\); choose one"),
        ({"sweep_key": "penalty_weight", "sweep_values": (1.0, 10.0)}, r"^--config.sweep_values: --config.penalty_weight: weighs no penalty"),
        ({"d_steps": 5, "update_rule": "simultaneous"},
         r"^--config.d_steps=5: n_critic is the alternating rule's; --config.update_rule='simultaneous' makes one D"),
        ({"update_rule": "optimistic", "lazy.r1_gamma": 1.0},
         r"^--config.update_rule='optimistic' with the lazy regularizers \(--config.lazy.\*\): their extra steps"),
        ({"g_optimizer.eps": 0.0},
         r"^--config.g_optimizer.eps=0: with adam's eps_root at 0 a parameter whose gradient is exactly 0 gets the update 0/0 = NaN; use eps > 0 \(e.g. 1e-8\) or --config.g_optimizer.eps_root > 0$"),
        ({"d_optimizer.eps": 0.0, "unroll_eps_root": 0.0},
         r"^--config.d_optimizer.eps=0: with adam's eps_root at 0 .* use eps > 0 \(e.g. 1e-8\) or --config.unroll_eps_root > 0$"),
        ({"update_rule": "alternating", "d_optimizer.name": "rmsprop", "d_optimizer.eps": 0.0},
         r"^--config.d_optimizer.eps=0: with rmsprop's eps_root at 0 .* use eps > 0 \(e.g. 1e-8\)$"),
        ({"g_optimizer.learning_rate": float("inf")}, r"^--config.g_optimizer.learning_rate=inf: must be a finite number$"),
        ({"dirac.theta0": float("nan")}, r"^--config.dirac.theta0=nan: must be a finite number$"),
        ({"sweep_key": "penalty_weight", "penalty": "r1", "sweep_values": (1.0, float("inf"))},
         r"^--config.sweep_values=\(1.0, inf\): must be a non-empty tuple of finite numbers"),
        ({"seed": 2**32}, r"^--config.seed=4294967296: the seeds \(seed to seed \+ num_seeds − 1 = 4294967296\) must be in \[0, 2\*\*32\)"),
        ({"seed": 2**32 - 2, "num_seeds": 3}, r"^--config.seed=4294967294: the seeds .* = 4294967296\) must be in"),
        ({"seed": -1}, r"^--config.seed=-1: the seeds"),
        ({"log_eigenvalues": 101}, r"^--config.log_eigenvalues=101: must be <= 100$"),
        ({"generator.coarse_width": -5}, r"^--config.generator.coarse_width=-5: must be >= 0$"),
        ({"data.split_test": "train[90%:]"}, r"^--config.data.split_test='train\[90%:\]': data set 'ring' does not read it \(it is tfds's setting\)$"),
        ({"data.name": "digits", "data.image_size": 7}, r"^--config.data.image_size=7: data set 'digits' does not read it \(it is image_folder's setting\)$"),
        ({"data.name": "ring", "data.held_out_fraction": 0.3},
         r"^--config.data.held_out_fraction=0.3: data set 'ring' does not read it \(it is digits, image_folder, mnist_5k, stacked_mnist's setting\)$"),
        ({"data.name": "tfds:mnist", "data.loader": "stream", "log_eigenvalues": 2},
         r"^--config.log_eigenvalues=2: the eigenvalues are taken on a batch drawn in memory, and a streamed tfds:mnist"),
        ({"log_eigenvalues": 2, "num_seeds": 3},
         r"^--config.log_eigenvalues=2: the eigenvalues are logged for a single run, not for the 3 runs of a sweep"),
        ({"update_rule": "alternating", "sweep_key": "consensus_gamma", "sweep_values": (0.1, 1.0)},
         r"^--config.sweep_key='consensus_gamma': has no effect in this config; it needs --config.update_rule=consensus$"),
        ({"sweep_key": "class_loss_weight", "sweep_values": (0.5, 1.0)},
         r"^--config.sweep_key='class_loss_weight': has no effect in this config; it needs --config.conditioning=acgan$"),
        ({"update_rule": "alternating", "sweep_key": "unroll_eps_root", "sweep_values": (1e-8, 1e-12)},
         r"^--config.sweep_key='unroll_eps_root': has no effect in this config; it needs the unrolled rule"),
    ],
)
def test_settings_that_would_do_nothing_or_break_the_rule_are_refused(overrides, message):
    config = default_config()
    for key, value in overrides.items():
        set_by_path(config, key, value)
    with pytest.raises(ConfigError, match=message):
        validate(config)


def test_a_command_line_setting_the_config_never_reads_is_refused_but_a_file_setting_is_kept():
    config = default_config()
    config.update_rule = "alternating"
    config.consensus_gamma = 2.0  # as an experiment file may set it for a script that switches rules
    validate(config)
    check_overrides_have_effect(config, ["update_rule", "batch_size"])
    with pytest.raises(ConfigError, match=r"^--config.consensus_gamma=2.0: has no effect in this config; it needs --config.update_rule=consensus$"):
        check_overrides_have_effect(config, ["consensus_gamma"])
    config.update_rule = "consensus"
    check_overrides_have_effect(config, ["consensus_gamma"])
    config.d_optimizer.name = "sgd"
    with pytest.raises(ConfigError, match=r"^--config.d_optimizer.b1=0.5: has no effect in this config; it needs --config.d_optimizer.name=adam$"):
        check_overrides_have_effect(config, ["d_optimizer.b1"])


@pytest.mark.parametrize(
    "settings, key, message",
    [
        ({"update_rule": "alternating"}, "unroll_steps", "unroll_steps=10: has no effect in this config; it needs --config.update_rule=unrolled"),
        ({}, "generator.base_width", "generator.base_width=64: generator 'mlp' does not read it (it is dcgan, lapgan, resnet, stylegan2's setting)"),
        ({}, "penalty_weight", "penalty_weight=0.0: has no effect in this config; it needs a --config.penalty"),
        ({}, "energy.margin", "energy.margin=0.3: has no effect in this config; it needs --config.loss=ebgan"),
        ({}, "progressive_phase_steps", "progressive_phase_steps=500: has no effect in this config; it needs a progan generator or discriminator"),
        ({}, "dirac.theta0", "dirac.theta0=1.0: has no effect in this config; it needs --config.generator.name=dirac"),
        ({}, "info.categorical", "info.categorical=10: has no effect in this config; it needs --config.conditioning=infogan"),
        ({"g_optimizer.name": "sgd"}, "g_optimizer.b2", "g_optimizer.b2=0.999: has no effect in this config; it needs --config.g_optimizer.name=adam or rmsprop"),
    ],
)
def test_a_command_line_setting_of_another_rule_loss_model_or_optimizer_is_refused(settings, key, message):
    config = default_config()
    for k, v in settings.items():
        set_by_path(config, k, v)
    with pytest.raises(ConfigError, match="^" + re.escape("--config." + message) + "$"):
        check_overrides_have_effect(config, [key])


def test_every_setting_of_the_chosen_models_and_rule_is_accepted_on_the_command_line():
    config = default_config()  # the MLP players, the unrolled rule, Adam
    keys = [f"{s}.{k}" for s in ("generator", "discriminator") for k in config[s].keys() if k in
            {"generator": GENERATORS, "discriminator": DISCRIMINATORS}[s][config[s].name].defaults]
    keys += ["unroll_steps", "unroll_same_batch", "unroll_remat", "g_optimizer.b2", "d_optimizer.eps", "generator.name"]
    check_overrides_have_effect(config, keys)


def test_adam_without_eps_gives_nan_on_a_zero_gradient_unless_eps_root_is_positive():
    """Why `eps = 0` is refused where eps_root is 0: optax's m̂/(√(v̂ + eps_root) + eps) is 0/0 for a zero gradient.
    D's Adam under the unrolled rule takes unroll_eps_root > 0, so eps = 0 is accepted there."""
    config = default_config()
    config.d_optimizer.eps = 0.0
    assert differentiates_d_optimizer(config)
    validate(config)
    for eps_root, finite in ((0.0, False), (1e-12, True)):
        settings = default_config().g_optimizer
        settings.eps, settings.eps_root = 0.0, eps_root
        optimizer = make_optimizer(settings)
        params = jnp.zeros(2)
        update, _ = optimizer.update(jnp.asarray([0.0, 1.0]), optimizer.init(params), params)
        assert bool(np.isfinite(update[0])) == finite and np.isfinite(update[1])
