"""The energy-based GANs as games: EBGAN's margin loss and pulling-away term in the players' objectives, BEGAN's
controlled k_t around an update rule (against the plain rule at each k and the closed-form k update), its exact
resume, and the one-line errors of mismatched settings."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from jaxgan import energy
from jaxgan.conditioning import logits_of
from jaxgan.config import ConfigError, validate
from jaxgan.game import discriminate, generate, generator_loss
from jaxgan.losses import began_loss
from jaxgan.state import step_keys
from jaxgan.tasks import make_task
from jaxgan.train import build_game, real_sampler, train_and_evaluate
from jaxgan.updates import make_update_rule, simultaneous_step
from test_image_runs import digits_config
from test_train import assert_bitwise_equal, restore_final


def energy_config(loss: str, **overrides):
    settings = {"loss": loss, "discriminator.name": "autoencoder", "discriminator.embedding_dim": 8}
    if loss == "began":
        settings.update({"update_rule": "simultaneous", "discriminator.norm": "none", "discriminator.energy": "l1",
                         "energy.lambda_k": 0.5})  # fmt: skip  (a large gain so that k moves visibly)
    return digits_config(**{**settings, **overrides})


def setup(config):
    task = make_task(config)
    game = build_game(config, task)
    rule = make_update_rule(game, config)
    key = jax.random.key(0)
    real = real_sampler(task, game)(key, config.batch_size)
    return task, game, rule, rule.init(key, real), real


def test_ebgan_generator_loss_adds_the_weighted_pull_away_term():
    config = energy_config("ebgan", **{"energy.pull_away_weight": 0.1})
    task, game, rule, state, real = setup(config)
    fake, _ = generate(game, state.g_params, state.g_model_state, game.sample_noise(jax.random.key(1), 32))
    outputs, _ = discriminate(game, state.d_params, state.d_model_state, fake)
    expected = np.mean(outputs["logits"]) + 0.1 * energy.pull_away_term(outputs["embedding"])
    np.testing.assert_allclose(generator_loss(game, state.d_params, state.d_model_state, fake), expected, rtol=1e-6)
    plain = dataclasses.replace(game, pull_away_weight=0.0)
    np.testing.assert_allclose(generator_loss(plain, state.d_params, state.d_model_state, fake), np.mean(outputs["logits"]), rtol=1e-6)


def test_began_runs_the_plain_rule_at_k_and_moves_k_by_the_closed_form():
    """Two steps: each equals the simultaneous rule with BEGAN's loss at that step's k, and k_{t+1} =
    clip(k_t + λ_k(γ·E[L(x)] − E[L(G(z))]), 0, 1) from the step's start energies."""
    config = energy_config("began")
    task, game, rule, state, real = setup(config)
    sample = real_sampler(task, game)
    k = 0.0
    assert float(state.loss_state["began_k"]) == 0.0
    for t in range(2):
        batch = {"real": sample(step_keys(state).data, config.batch_size)[None]}
        z = game.sample_noise(step_keys(state).noise, config.batch_size)
        fake, _ = generate(game, state.g_params, state.g_model_state, z)
        real_energy = np.mean(logits_of(discriminate(game, state.d_params, state.d_model_state, batch["real"][0])[0]))
        fake_energy = np.mean(logits_of(discriminate(game, state.d_params, state.d_model_state, fake)[0]))
        plain = simultaneous_step(dataclasses.replace(game, loss=began_loss(k)))
        expected_state, _ = plain.step(state, batch)
        state, metrics = rule.step(state, batch)
        for a, b in zip(jax.tree.leaves((expected_state.g_params, expected_state.d_params)), jax.tree.leaves((state.g_params, state.d_params))):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        k = float(np.clip(k + 0.5 * (0.5 * real_energy - fake_energy), 0.0, 1.0))
        np.testing.assert_allclose(float(state.loss_state["began_k"]), k, rtol=1e-5)
        np.testing.assert_allclose(float(metrics["began_k"]), k, rtol=1e-5)
        convergence = real_energy + abs(0.5 * real_energy - fake_energy)
        np.testing.assert_allclose(float(metrics["convergence"]), convergence, rtol=1e-5)
    assert k > 0  # the second step really ran at a different k than the first


def test_began_resumes_bitwise_with_its_k_and_logs_it(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    config = energy_config("began", **{"energy.lambda_k": 0.01})
    train_and_evaluate(config, str(straight), echo=lambda _: None)
    train_and_evaluate(energy_config("began", **{"energy.lambda_k": 0.01, "num_steps": 10}), str(split), echo=lambda _: None)
    train_and_evaluate(config, str(split), echo=lambda _: None)
    final, _ = restore_final(straight, config)
    assert float(final.loss_state["began_k"]) > 0
    assert_bitwise_equal(final, restore_final(split, config)[0])
    logged = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert any("began_k" in r and "convergence" in r for r in logged)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss": "ebgan"}, "--config.loss='ebgan' with --config.discriminator.name='dcgan': the energy losses (began, ebgan) and the auto-encoder D go together"),
        ({"discriminator.name": "autoencoder"}, "--config.loss='nonsaturating' with --config.discriminator.name='autoencoder'"),
        ({"energy.pull_away_weight": 0.1}, "--config.energy.pull_away_weight=0.1: the pulling-away term needs D's embeddings"),
        ({"loss": "ebgan", "discriminator.name": "autoencoder", "energy.margin": 0.0}, "--config.energy.margin=0.0: must be > 0"),
        ({"loss": "began", "discriminator.name": "autoencoder", "energy.gamma": 1.5}, "--config.energy.gamma=1.5: must be in [0, 1]"),
        ({"loss": "began", "discriminator.name": "autoencoder", "discriminator.energy": "l2"}, "--config.discriminator.energy='l2': unknown value; allowed: l1, mse"),
    ],
)  # fmt: skip
def test_energy_settings_are_checked_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as error:
        validate(digits_config(**overrides))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_logged_eigenvalues_of_began_are_those_of_the_game_at_its_k(monkeypatch):
    import jaxgan.train

    config = energy_config("began", log_eigenvalues=1)
    task, game, rule, state, real = setup(config)
    seen = []
    monkeypatch.setattr(jaxgan.train, "top_eigenvalues_arnoldi", lambda game, *args, **kwargs: seen.append(game) or [0j])
    for k in (0.0, 0.9):
        jaxgan.train.top_eigenvalue_metrics(game, task, state.replace(loss_state={"began_k": np.float32(k)}), config, rule)
        real_energy, fake_energy = np.full(4, 1.0, np.float32), np.full(4, 2.0, np.float32)
        # D's loss E[L(x)] − k·E[L(G(z))] at the state's k, not at the k the game was built with (0)
        np.testing.assert_allclose(seen[-1].loss.discriminator(real_energy, fake_energy), 1.0 - 2.0 * k, rtol=1e-6)
