"""StyleGAN2 in the runner: G's own randomness reaches it through `generate(..., key=)`, mixing regularization
is the explicit mixing call, lazy R1 and path length steps are one optimizer step on the reference objectives
every N steps and nothing in between, and a run resumes bitwise."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan.config import ConfigError, validate
from jaxgan.game import generate
from jaxgan.models import linen_player
from jaxgan.models.stylegan import StyleGAN2Discriminator, StyleGAN2Generator, path_length_penalty
from jaxgan.penalties import r1_penalty
from jaxgan.state import step_keys
from jaxgan.tasks import make_task
from jaxgan.train import build_game, real_sampler, train_and_evaluate
from jaxgan.updates import alternating_step, make_update_rule, with_lazy_regularization
from test_image_runs import digits_config
from test_train import assert_bitwise_equal, restore_final


def stylegan_config(**overrides):
    settings = {"generator.name": "stylegan2", "discriminator.name": "stylegan2", "generator.base_width": 4,
                "discriminator.base_width": 4, "generator.mapping_layers": 2, "generator.w_dim": 8,
                "lazy.r1_gamma": 1.0, "lazy.r1_interval": 3, "lazy.path_length_weight": 2.0,
                "lazy.path_length_interval": 2}  # fmt: skip
    return digits_config(**{**settings, **overrides})


@pytest.fixture(scope="module")
def setup():
    config = stylegan_config()
    task = make_task(config)
    game = build_game(config, task)
    sample = real_sampler(task, game)
    plain = alternating_step(game)
    state = plain.init(jax.random.key(0), sample(jax.random.key(0), config.batch_size))
    # nonzero noise strengths, so that noise inputs change the samples
    g_params = jax.tree_util.tree_map_with_path(
        lambda path, p: jnp.full_like(p, 0.3) if getattr(path[-1], "key", None) == "strength" else p, state.g_params
    )
    return config, task, game, sample, plain, state.replace(g_params=g_params)


def test_generate_key_feeds_stylegan_noise_and_leaves_other_players_alone(setup):
    _, _, game, _, _, state = setup
    z = game.sample_noise(jax.random.key(1), 4)
    draw = lambda key: np.asarray(generate(game, state.g_params, state.g_model_state, z, train=False, key=key)[0])
    a, b = draw(jax.random.key(2)), draw(jax.random.key(3))
    assert np.abs(a - b).max() > 1e-3
    np.testing.assert_array_equal(a, draw(jax.random.key(2)))

    dcgan = build_game(digits_config())
    d_state = dcgan.init(jax.random.key(0), jnp.zeros((4, 8, 8, 1)))
    plain = generate(dcgan, d_state.g_params, d_state.g_model_state, z, train=False)[0]
    keyed = generate(dcgan, d_state.g_params, d_state.g_model_state, z, train=False, key=jax.random.key(2))[0]
    np.testing.assert_array_equal(plain, keyed)


def test_mixing_regularization_is_the_explicit_mixing_call():
    module = StyleGAN2Generator((8, 8, 1), width=4, mapping_layers=2, w_dim=8, mixing_probability=1.0)
    params, state = linen_player(module).init(jax.random.key(0), jnp.zeros((3, 6)))
    variables = {"params": params, **state}
    z = jax.random.normal(jax.random.key(1), (3, 6))
    rngs = {"noise": jax.random.key(7)}
    drawn, _ = module.apply(variables, z, train=True, rngs=rngs, mutable=["mapping_stats"])
    mixing_z, crossover = module.apply(variables, z, rngs=rngs, method=lambda m, z: m._mixing_draw(z))
    layers = 6  # 8×8: two 2x stages, 2·2 + 2 style inputs
    assert 1 <= int(crossover[0]) < layers and np.all(np.asarray(crossover) == int(crossover[0]))
    explicit, _ = module.apply(
        variables, z, train=True, mixing_z=mixing_z, crossover=crossover, rngs=rngs, mutable=["mapping_stats"]
    )
    np.testing.assert_allclose(drawn, explicit, rtol=1e-6, atol=1e-6)  # noise strengths are 0 at init
    unmixed, _ = module.apply(variables, z, train=True, rngs=rngs, mutable=["mapping_stats"], mixing_z=z, crossover=crossover)
    assert np.abs(np.asarray(drawn) - np.asarray(unmixed)).max() > 1e-4  # the second latent matters
    evaluated = module.apply(variables, z, train=False, rngs=rngs)
    np.testing.assert_allclose(evaluated, module.apply(variables, z, train=False), rtol=1e-6, atol=1e-6)


def _reference_r1_step(game, state, real, gamma, interval):
    """One D optimizer step on interval·γ/2·R1, D applied as the raw module (not through the game)."""
    module = StyleGAN2Discriminator(4)

    def objective(d_params):
        d_fn = lambda x: module.apply({"params": d_params}, x)
        return interval * gamma / 2 * r1_penalty(d_fn, real)

    grads = jax.grad(objective)(state.d_params)
    updates, opt_state = game.d_optimizer.update(grads, state.d_opt_state, state.d_params)
    return optax.apply_updates(state.d_params, updates), opt_state


def test_lazy_regularization_steps_on_the_reference_objectives_every_n_steps(setup):
    config, task, game, sample, plain, state = setup
    lazy = with_lazy_regularization(plain, game, r1_gamma=1.0, r1_interval=3, path_length_weight=2.0, path_length_interval=2)
    state = state.replace(loss_state={"r1": jnp.zeros(()), "path_length_penalty": jnp.zeros(()), "pl_mean": jnp.zeros(())})
    lazy_step, plain_step = jax.jit(lazy.step), jax.jit(plain.step)
    g_module = StyleGAN2Generator((8, 8, 1), width=4, mapping_layers=2, w_dim=8, mixing_probability=0.9)
    # the references compiled once each: run op by op, their second-order gradients dispatch thousands of kernels
    r1_step = jax.jit(lambda s, real: _reference_r1_step(game, s, real, 1.0, 3))

    @jax.jit
    def path_length_step(g_params, g_model_state, key, pl_mean):
        z_key, y_key, noise_key = jax.random.split(key, 3)
        z = game.sample_noise(z_key, config.batch_size // 2)
        variables = lambda p: {"params": p, **g_model_state}

        def objective(g_params):
            ws = g_module.apply(variables(g_params), z, train=False, method="mapping")
            synth = lambda w: g_module.apply(variables(g_params), w, method="synthesize", rngs={"noise": noise_key})
            penalty, new_pl_mean, lengths = path_length_penalty(synth, ws, y_key, pl_mean)
            return 2 * 2.0 * penalty, (new_pl_mean, lengths)

        return jax.value_and_grad(objective, has_aux=True)(g_params)

    for t in range(4):
        state = state.replace(step=jnp.asarray(t, jnp.int32))
        batch = {"real": sample(jax.random.key(10 + t), config.batch_size)[None]}
        after, metrics = lazy_step(state, batch)
        expected, _ = plain_step(state, batch)
        if t % 3 == 0:
            d_params, d_opt_state = r1_step(expected, batch["real"][-1])
            expected = expected.replace(d_params=d_params, d_opt_state=d_opt_state)
        if t % 2 == 0:
            key = jax.random.fold_in(step_keys(state).generator, 1000)
            (_, (pl_mean, lengths)), grads = path_length_step(
                expected.g_params, expected.g_model_state, key, state.loss_state["pl_mean"]
            )
            np.testing.assert_allclose(pl_mean, state.loss_state["pl_mean"] + 0.01 * (jnp.mean(lengths) - state.loss_state["pl_mean"]), rtol=1e-6)
            np.testing.assert_allclose(after.loss_state["pl_mean"], pl_mean, rtol=1e-5)
            updates, g_opt_state = game.g_optimizer.update(grads, expected.g_opt_state, expected.g_params)
            expected = expected.replace(g_params=optax.apply_updates(expected.g_params, updates), g_opt_state=g_opt_state)
        else:
            np.testing.assert_array_equal(after.loss_state["pl_mean"], state.loss_state["pl_mean"])
        for got, want in ((after.d_params, expected.d_params), (after.g_params, expected.g_params)):
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6), got, want)
        assert float(metrics["r1"]) == float(after.loss_state["r1"])
        state = after
    assert float(state.loss_state["r1"]) > 0 and float(state.loss_state["pl_mean"]) > 0


def test_lazy_regularizers_chosen_on_the_host_match_lax_cond():
    """The host loop runs the step's due regularizers without a conditional (`UpdateRule.due`); the fused loop
    decides with `lax.cond` on device. Same steps, same states, here for two seeds trained together under vmap
    (a single run is the same step without the vmap: the runner's, in the resume test below)."""
    num_runs = 2
    from jaxgan.train import init_state, make_train_chunk
    from test_train import state_leaves

    config = stylegan_config(ema_decay=0.9, num_seeds=num_runs)
    task = make_task(config)
    game = build_game(config, task)
    rule = make_update_rule(game, config, unroll_inner=True)
    assert [rule.due(t) for t in range(4)] == [("r1", "path_length"), (), ("path_length",), ("r1",)]
    sample = real_sampler(task, game)
    fused = make_train_chunk(rule, sample, config.batch_size, num_runs, max_steps=8)
    host = make_train_chunk(rule, sample, config.batch_size, num_runs, max_steps=8, host_loop=True)
    by_cond, cond_metrics = fused(init_state(config, rule, task), 7)
    by_host, host_metrics = host(init_state(config, rule, task), 7)
    for a, b in zip(state_leaves(by_cond), state_leaves(by_host)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)
    r1 = np.asarray(host_metrics["r1"])
    np.testing.assert_allclose(np.asarray(cond_metrics["r1"])[:7], r1, rtol=2e-5)
    assert np.all(r1[1:3] == r1[0]) and np.all(r1[3] != r1[0])  # R1 computed at steps 0 and 3 only
    # a host chunk that starts mid-schedule reads the state's step: steps 7.. continue where 0..6 ended
    again, _ = host(by_host, 2)
    expected, _ = fused(by_cond, 2)
    for a, b in zip(state_leaves(expected), state_leaves(again)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)


def test_a_stylegan2_run_resumes_bitwise(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    config = stylegan_config(ema_decay=0.9)
    train_and_evaluate(config, str(straight), echo=lambda _: None)
    train_and_evaluate(stylegan_config(ema_decay=0.9, num_steps=10), str(split), echo=lambda _: None)
    train_and_evaluate(config, str(split), echo=lambda _: None)
    assert_bitwise_equal(restore_final(straight, config)[0], restore_final(split, config)[0])
    assert (straight / "eval.json").read_bytes() == (split / "eval.json").read_bytes()
    assert make_update_rule(build_game(config), config).init(jax.random.key(0), jnp.zeros((4, 8, 8, 1))).loss_state.keys() == {
        "r1", "path_length_penalty", "pl_mean"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"generator.name": "dcgan", "discriminator.name": "dcgan"}, "--config.lazy.path_length_weight=2.0: path length regularization needs a StyleGAN2 generator"),
        ({"penalty": "r1", "penalty_weight": 1.0}, "--config.lazy.r1_gamma with --config.penalty='r1': R1 would be applied twice"),
        ({"lazy.r1_interval": 0}, "--config.lazy.r1_interval=0: must be a positive integer"),
        ({"generator.mixing_probability": 1.5}, "--config.generator.mixing_probability=1.5: must be in [0, 1]"),
    ],
)
def test_lazy_regularization_config_errors(overrides, message):
    with pytest.raises(ConfigError) as error:
        validate(stylegan_config(**overrides))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_discriminator_with_minibatch_stddev_is_not_split_over_devices():
    """Its output for one example depends on the others of its group, so its loss is not a mean of per-example terms
    that each device could take on its own slice (`game._plain_batch_mean` sends such losses to the shard_map path)."""
    from jaxgan.game import _plain_batch_mean
    from jaxgan.models.progan import minibatch_stddev

    x = jax.random.normal(jax.random.key(0), (8, 4, 4, 2))
    whole = minibatch_stddev(x, 4)
    halves = jnp.concatenate([minibatch_stddev(x[:4], 4), minibatch_stddev(x[4:], 4)])
    assert float(jnp.max(jnp.abs(whole - halves))) > 1e-3  # the statistic differs when the batch is split
    stylegan = build_game(digits_config(**{"generator.name": "stylegan2", "discriminator.name": "stylegan2"}))
    assert not stylegan.discriminator.per_example and not _plain_batch_mean(stylegan, {})
    plain = build_game(digits_config(**{"discriminator.norm": "layer"}))
    assert plain.discriminator.per_example and _plain_batch_mean(plain, {})
