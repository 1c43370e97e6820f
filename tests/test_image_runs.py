"""Image GANs through the runner: DCGAN on the 8×8 digits trains, evaluates with the shipped classifier, saves
samples in [0, 1], and resumes bitwise; the registries reject what they do not know in one line."""

import json

import numpy as np
import pytest

from jaxgan.config import ConfigError, validate
from jaxgan.train import train_and_evaluate
from scripts.notes import load_experiment
from test_train import assert_bitwise_equal, restore_final


def digits_config(**overrides):
    config = load_experiment("dcgan_digits")
    config.generator.base_width = config.discriminator.base_width = 8
    config.batch_size, config.z_dim = 32, 16
    config.num_steps, config.log_every_steps, config.eval_every_steps = 20, 10, 10
    config.checkpoint_every_steps, config.steps_per_dispatch = 10, 10
    for key, value in overrides.items():
        config[key] = value
    return config


def test_dcgan_digits_trains_evaluates_and_resumes_bitwise(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    result = train_and_evaluate(digits_config(), str(straight), echo=lambda _: None)
    train_and_evaluate(digits_config(num_steps=10), str(split), echo=lambda _: None)
    train_and_evaluate(digits_config(), str(split), echo=lambda _: None)
    assert_bitwise_equal(restore_final(straight, digits_config())[0], restore_final(split, digits_config())[0])
    assert (straight / "eval.json").read_bytes() == (split / "eval.json").read_bytes()

    # Metrics against the held-out split: an untrained-looking G is far from the data (FID well above 0), and the
    # values are the ones eval.json reports.
    assert set(result) >= {"fid", "kid", "inception_score", "precision", "recall"}
    assert result["fid"] > 1.0 and 1.0 <= result["inception_score"] <= 10.0 and 0 <= result["precision"] <= 1
    assert json.loads((straight / "eval.json").read_text())["fid"] == result["fid"]
    samples = np.load(straight / "samples" / "step_00000020.npy")
    assert samples.shape == (360, 8, 8, 1) and samples.dtype == np.float32
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    assert (straight / "samples.png").stat().st_size > 0


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("generator.name", "dcgn", "--config.generator.name='dcgn': unknown value; allowed: dcgan, dirac, mlp (did you mean 'dcgan'?)"),
        ("data.name", "mnist5k", "(did you mean 'mnist_5k'?)"),
        ("evaluations", ("image",), "--config.evaluations: unknown evaluation 'image'; allowed: dirac, images, mixture (did you mean 'images'?)"),
        ("data.held_out_fraction", 1.0, "--config.data.held_out_fraction=1.0: must be in (0, 1)"),
    ],
)  # fmt: skip
def test_registry_names_and_settings_are_validated(key, value, message):
    config = digits_config()
    section, _, leaf = key.rpartition(".")
    (config[section] if section else config)[leaf] = value
    with pytest.raises(ConfigError) as info:
        validate(config)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("source, low, high", [("train", 1.0, 1.0), ("held_out", 0.0, 0.15)])
def test_memorization_number_flags_copies_of_training_images(source, low, high):
    """A G that outputs training images is flagged as memorizing (fraction 1); one that outputs fresh digits of the
    same distribution (the held-out split) scores about the quantile, 0.05."""
    import dataclasses

    import jax
    import jax.numpy as jnp

    from jaxgan.data.images import to_model_range
    from jaxgan.models import Player
    from jaxgan.tasks import make_task
    from jaxgan.train import build_game, init_state
    from jaxgan.updates import make_update_rule

    config = digits_config(eval_num_samples=300)
    task = make_task(config)
    game = build_game(config, task)
    state = init_state(config, make_update_rule(game, config), task)
    images = task.data.info.train_images if source == "train" else task.data.info.test_images
    fixed = to_model_range(jnp.asarray(images[:300]))
    copier = Player(game.generator.init, lambda params, model_state, z, **kw: (fixed[: z.shape[0]], model_state))
    metrics, _ = task.evaluation.evaluate(dataclasses.replace(game, generator=copier), state)
    for key in ("memorized_pixels", "memorized_features"):
        assert low <= float(metrics[key]) <= high, (key, float(metrics[key]))
    jax.block_until_ready(metrics)
