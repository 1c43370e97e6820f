"""Progressive growing in the runner: the players' level follows the step through the model state, the samples
are the progressive generator's at that level, and a run resumes bitwise across a phase boundary."""

import jax
import numpy as np
import pytest

from jaxgan.game import discriminator_logits_fn, generate
from jaxgan.models.progan import ProgressiveGenerator, fade_in_reals, level_at, progressive_plan
from jaxgan.penalties import r1_penalty
from jaxgan.tasks import make_task
from jaxgan.train import build_game, init_state, real_sampler, train_and_evaluate
from jaxgan.updates import make_update_rule
from test_image_runs import digits_config
from test_train import assert_bitwise_equal, restore_final


def progan_config(**overrides):
    settings = {"generator.name": "progan", "discriminator.name": "progan", "generator.max_width": 8,
                "discriminator.max_width": 8, "progressive_phase_steps": 3, "loss": "wasserstein",
                "penalty": "wgan_gp", "penalty_weight": 10.0}  # fmt: skip
    return digits_config(**{**settings, **overrides})


def test_the_level_follows_the_step_and_g_samples_at_it():
    config = progan_config()
    task = make_task(config)
    game = build_game(config, task)
    rule = make_update_rule(game, config)
    sample = real_sampler(task, game)
    state = rule.init(jax.random.key(0), sample(jax.random.key(0), config.batch_size))
    step = jax.jit(rule.step)
    z = game.sample_noise(jax.random.key(5), 4)
    plain = ProgressiveGenerator(task.data.shape, max_width=8, min_width=16)
    for t in range(1, 8):
        state, _ = step(state, {"real": sample(jax.random.key(t), config.batch_size)[None]})
        assert int(state.g_model_state["progress"]["step"]) == t == int(state.d_model_state["progress"]["step"])
        samples, _ = generate(game, state.g_params, state.g_model_state, z, train=False)
        level = level_at(t, 3, 2)  # 8×8 digits: two stages, 4×4 and 8×8
        reference = plain.apply({"params": state.g_params["module"]}, z, level=level)
        np.testing.assert_allclose(samples, reference, rtol=1e-6, atol=1e-6)
    assert float(level_at(7, 3, 2)) == 1.0 and abs(float(level_at(4, 3, 2)) - 1 / 3) < 1e-7  # grown; mid fade-in


@pytest.mark.parametrize("settings", [{}, {"num_seeds": 2}, {"ema_decay": 0.999}], ids=["run", "sweep", "ema"])
def test_the_initial_state_has_a_buffer_per_leaf(settings):
    # The step is in the state three times (the state's and both players' "progress"), and the EMA's G is G at
    # initialisation; the train step donates the state, and a buffer donated twice fails on a GPU.
    config = progan_config(**settings)
    leaves = jax.tree.leaves(init_state(config, make_update_rule(build_game(config), config)))
    pointers = [leaf.unsafe_buffer_pointer() for leaf in leaves if not jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)]
    assert len(set(pointers)) == len(pointers) > 30


def test_a_progressive_run_resumes_bitwise_across_a_phase(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_and_evaluate(progan_config(), str(straight), echo=lambda _: None)
    train_and_evaluate(progan_config(num_steps=10), str(split), echo=lambda _: None)
    train_and_evaluate(progan_config(), str(split), echo=lambda _: None)
    assert_bitwise_equal(restore_final(straight, progan_config())[0], restore_final(split, progan_config())[0])
    assert (straight / "eval.json").read_bytes() == (split / "eval.json").read_bytes()


def test_lazy_r1_under_progressive_growing_is_taken_on_the_faded_reals():
    """The lazy R1 step must see D's input as the main step does: the reals faded between the transition's two
    resolutions (the progressive wrapper sits outside the lazy one)."""
    lazy = {"penalty": "none", "penalty_weight": 0.0, "lazy.r1_gamma": 10.0, "lazy.r1_interval": 1}
    config, plain_config = progan_config(**lazy), progan_config(**{**lazy, "lazy.r1_gamma": 0.0})
    task = make_task(config)
    game = build_game(config, task)
    sample = real_sampler(task, game)
    state = make_update_rule(game, config).init(jax.random.key(0), sample(jax.random.key(0), config.batch_size))
    state = state.replace(step=4)  # mid fade-in: level 1/3 (test above)
    real = sample(jax.random.key(3), config.batch_size)
    _, metrics = make_update_rule(game, config).step(state, {"real": real[None]}, due=("r1",))
    # D as the R1 step finds it: after the main step (the same without lazy R1), its progress still at step 4
    after, _ = make_update_rule(game, plain_config).step(state, {"real": real[None]})
    d_model_state = {**after.d_model_state, "progress": {"step": state.step}}
    stages = progressive_plan(real.shape[-3:])[-1]
    faded = fade_in_reals(real, level_at(4, 3, stages), stages)

    def r1_on(x):
        return float(r1_penalty(discriminator_logits_fn(game, after.d_params, d_model_state, x), x))

    assert abs(r1_on(faded) - r1_on(real)) > 1e-3 * r1_on(faded)  # the test can tell the two apart
    np.testing.assert_allclose(float(metrics["r1"]), r1_on(faded), rtol=1e-5)
