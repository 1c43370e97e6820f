"""Conditioned games (conditional GAN, AC-GAN, InfoGAN, LapGAN's real coarse images): their objectives against
explicit references, the labels reaching the right player, and every update rule training them."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan.conditioning import Conditioning, Labelled, make_conditioning
from jaxgan.config import ConfigError, validate
from jaxgan.game import discriminator_loss, generate, generator_loss
from jaxgan.metrics.evaluations import code_accuracy, eval_noise
from jaxgan.metrics.image import mode_coverage
from jaxgan.models.lapgan import LaplacianDiscriminator, LaplacianGenerator
from jaxgan.state import step_keys
from jaxgan.tasks import make_task
from jaxgan.train import build_game, real_sampler, train_and_evaluate
from jaxgan.updates import make_update_rule
from test_image_runs import digits_config
from test_train import assert_bitwise_equal, restore_final


def setup(kind: str, **overrides):
    config = digits_config(conditioning=kind, **overrides)
    task = make_task(config)
    game = build_game(config, task)
    rule = make_update_rule(game, config)
    key = jax.random.key(0)
    real = real_sampler(task, game)(key, config.batch_size)
    example = real.data if isinstance(real, Labelled) else real
    state = rule.init(key, example)
    return config, task, game, rule, state, real


def test_labelled_indexes_and_scans_like_its_array():
    x = Labelled(jnp.arange(24.0).reshape(2, 3, 4), labels=jnp.arange(6).reshape(2, 3))
    assert x.shape == (2, 3, 4) and x[1].shape == (3, 4)
    np.testing.assert_array_equal(x[1].labels, [3, 4, 5])
    _, out = jax.lax.scan(lambda c, xi: (c, xi.labels.sum()), 0, x)
    np.testing.assert_array_equal(out, [3, 12])


def test_acgan_objectives_equal_the_papers_terms():
    """D: L_D + w·(CE_real + CE_fake); G: L_G + w·CE_fake, computed here from the module's outputs directly."""
    config, task, game, rule, state, real = setup("acgan", class_loss_weight=0.7)
    z = game.sample_noise(jax.random.key(1), config.batch_size)
    fake, _ = generate(game, state.g_params, state.g_model_state, z)
    d_out = lambda x: game.discriminator.apply(state.d_params, state.d_model_state, x)[0]  # noqa: E731
    real_out, fake_out = d_out(real.data), d_out(fake.data)
    ce = lambda out, y: optax.softmax_cross_entropy_with_integer_labels(out["class_logits"], y).mean()  # noqa: E731
    want_d = game.loss.discriminator(real_out["logits"], fake_out["logits"]) + 0.7 * (
        ce(real_out, real.labels) + ce(fake_out, z.labels)
    )
    got_d, _ = discriminator_loss(game, state.d_params, state.d_model_state, real, fake)
    np.testing.assert_allclose(got_d, want_d, rtol=1e-6)
    want_g = game.loss.generator(fake_out["logits"]) + 0.7 * ce(fake_out, z.labels)
    np.testing.assert_allclose(generator_loss(game, state.d_params, state.d_model_state, fake), want_g, rtol=1e-6)


def test_concat_gives_the_class_to_both_players():
    config, task, game, rule, state, real = setup("concat")
    z = game.sample_noise(jax.random.key(1), config.batch_size)
    fake, _ = generate(game, state.g_params, state.g_model_state, z)
    other = (z.labels + 1) % 10
    fake_other, _ = generate(game, state.g_params, state.g_model_state, z.replace(labels=other))
    assert not np.allclose(fake.data, fake_other.data)  # G sees the class
    loss, _ = discriminator_loss(game, state.d_params, state.d_model_state, real, fake)
    relabelled, _ = discriminator_loss(game, state.d_params, state.d_model_state, real.replace(labels=(real.labels + 3) % 10), fake)
    assert abs(float(loss) - float(relabelled)) > 1e-6  # D sees the class of the real images
    out = lambda x, y: game.discriminator.apply(state.d_params, state.d_model_state, x, labels=y)[0]  # noqa: E731
    np.testing.assert_allclose(loss, game.loss.discriminator(out(real.data, real.labels), out(fake.data, z.labels)), rtol=1e-6)


def test_infogan_codes_reach_g_and_q_and_the_information_loss_is_its_formula():
    config, task, game, rule, state, real = setup("infogan", **{})
    cond = game.conditioning
    z = game.sample_noise(jax.random.key(1), config.batch_size)
    assert z.categorical.shape == (config.batch_size,) and z.continuous.shape == (config.batch_size, 2)
    assert float(jnp.abs(z.continuous).max()) <= 1.0
    g_input, labels = cond.generator_input(z)
    assert labels is None
    np.testing.assert_array_equal(g_input, jnp.concatenate([z.data, jax.nn.one_hot(z.categorical, 10), z.continuous], -1))
    outputs = {"code_logits": jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), "code_mean": jnp.array([[0.5], [-1.0]])}
    small = Conditioning("infogan", categorical=3, continuous=1, info_weight=1.0, continuous_weight=0.1)
    fake = Labelled(jnp.zeros((2, 1)), categorical=jnp.array([0, 2]), continuous=jnp.array([[0.0], [-1.0]]))
    ce = [np.log(np.exp(2) + 2) - 2, np.log(np.e + 2) - 0]
    want = np.mean(ce) + 0.1 * 0.5 * np.mean([0.25, 0.0])
    np.testing.assert_allclose(small.information_loss(outputs, fake), want, rtol=1e-6)
    # G's loss holds the same term as D's (both G and Q maximise the bound).
    fake, _ = generate(game, state.g_params, state.g_model_state, z)
    d_out = game.discriminator.apply(state.d_params, state.d_model_state, fake.data)[0]
    np.testing.assert_allclose(
        generator_loss(game, state.d_params, state.d_model_state, fake),
        game.loss.generator(d_out["logits"]) + cond.information_loss(d_out, fake),
        rtol=1e-6,
    )


@pytest.mark.parametrize("update_rule", ["alternating", "simultaneous", "unrolled"])
def test_every_rule_trains_the_classifier_head_only_through_the_class_loss(update_rule):
    """With class_loss_weight 0 the AC-GAN head gets zero gradients (Adam leaves it in place); with 1 it moves."""
    heads = {}
    for weight in (0.0, 1.0):
        config, task, game, rule, state, real = setup("acgan", class_loss_weight=weight, update_rule=update_rule, unroll_steps=2)
        batch = jax.tree.map(lambda x: x.reshape(rule.num_real_batches, config.batch_size, *x.shape[1:]),
                             real_sampler(task, game)(jax.random.key(3), rule.num_real_batches * config.batch_size))  # fmt: skip
        new_state, metrics = jax.jit(rule.step)(state, {"real": batch})
        assert np.isfinite(float(metrics["d_loss"])) and np.isfinite(float(metrics["g_loss"]))
        heads[weight] = (state.d_params["classifier"], new_state.d_params["classifier"])
    chex.assert_trees_all_equal(*heads[0.0])
    moved = max(float(jnp.abs(a - b).max()) for a, b in zip(*map(jax.tree.leaves, heads[1.0])))
    assert moved > 1e-5


@pytest.mark.parametrize("update_rule", ["alternating", "simultaneous", "unrolled"])
def test_every_rule_gives_lapgan_the_real_batch_its_fakes_refine(update_rule):
    """real_coarse (LapGAN's training): D's loss in the step is the loss on (real, G's residuals refining that
    same real batch, judged against its coarse images), from the raw modules; the chain's fakes give another."""
    config = digits_config(
        conditioning="real_coarse", update_rule=update_rule, unroll_steps=2, batch_size=8, z_dim=12,
        **{"data.name": "mnist_5k", "generator.name": "lapgan", "discriminator.name": "lapgan",
           "generator.base_width": 4, "discriminator.base_width": 4},
    )  # fmt: skip
    task = make_task(config)
    game = build_game(config, task)
    rule = make_update_rule(game, config)
    key = jax.random.key(0)
    batch = real_sampler(task, game)(key, rule.num_real_batches * config.batch_size)
    batch = batch.reshape(rule.num_real_batches, config.batch_size, *batch.shape[1:])
    state = rule.init(key, batch[0])
    _, metrics = jax.jit(rule.step)(state, {"real": batch})

    lead = {"alternating": (config.d_steps + 1,), "simultaneous": (), "unrolled": (rule.num_real_batches,)}[update_rule]
    z = game.sample_noise(step_keys(state).noise, *lead, config.batch_size)
    z = z.data[0] if lead else z.data
    generator, discriminator = LaplacianGenerator((28, 28, 1), width=4), LaplacianDiscriminator(width=4)
    real = batch[0]

    def d_loss(source):
        fake = generator.apply({"params": state.g_params}, z, source)
        d = lambda x, s: discriminator.apply({"params": state.d_params}, x, s)  # noqa: E731
        return game.loss.discriminator(d(real, None), d(fake, source))

    np.testing.assert_allclose(metrics["d_loss"], d_loss(real), rtol=1e-5)
    assert abs(float(d_loss(None)) - float(d_loss(real))) > 1e-4


def test_labelled_samples_are_the_plain_samples_with_their_true_classes():
    config, task, game, *_ = setup("concat")
    key = jax.random.key(7)
    labelled = task.data.sample_labelled(key, 64)
    np.testing.assert_array_equal(labelled.data, task.data.sample(key, 64))
    from jaxgan.data.images import to_model_range

    train = np.asarray(to_model_range(jnp.asarray(task.data.info.train_images))).reshape(len(task.data.info.train_images), -1)
    for image, label in zip(np.asarray(labelled.data)[:8], np.asarray(labelled.labels)[:8]):
        matches = np.flatnonzero((train == image.reshape(-1)).all(axis=1))
        assert label in task.data.info.train_labels[matches]


def test_eval_noise_asks_for_every_class_in_turn():
    config, task, game, rule, state, real = setup("concat")
    np.testing.assert_array_equal(eval_noise(game, state, 25).labels, np.arange(25) % 10)
    config, task, game, rule, state, real = setup("infogan")
    np.testing.assert_array_equal(eval_noise(game, state, 12).categorical, np.arange(12) % 10)


def test_code_accuracy_takes_the_best_matching():
    assert code_accuracy(np.eye(4)[[2, 0, 3, 1]] * 5) == 1.0
    counts = np.array([[8.0, 2.0], [6.0, 4.0]])  # best: code 0 -> class 0? no: 0->1 (2) + 1->0 (6) = 8 < 8 + 4 = 12
    assert code_accuracy(counts) == pytest.approx(12 / 20)


def test_mode_coverage_refuses_indices_outside_the_modes():
    for bad in ([0, 1, 2, 7], [0, 1, 2, -1], [9, 9, 9, 9]):
        with pytest.raises(ValueError, match=r"mode indices must be in \[0, 4\)"):
            mode_coverage(jnp.array(bad), 4)
    with pytest.raises(ValueError, match="n >= 1"):
        mode_coverage(jnp.zeros((0,), jnp.int32), 4)
    _, kl = jax.jit(mode_coverage, static_argnums=1)(jnp.array([0, 1, 2, 7]), 4)  # traced: NaN, not a number
    assert np.isnan(kl)
    _, kl = jax.jit(mode_coverage, static_argnums=1)(jnp.array([0, 1, 2, 3]), 4)
    assert kl == 0.0


def test_mode_coverage_closed_forms():
    modes, kl = mode_coverage(jnp.arange(1000), 1000)
    assert int(modes) == 1000 and float(kl) == pytest.approx(0.0, abs=1e-5)
    modes, kl = mode_coverage(jnp.full((500,), 7), 1000)
    assert int(modes) == 1 and float(kl) == pytest.approx(np.log(1000), rel=1e-6)
    modes, kl = mode_coverage(jnp.array([0, 0, 1, 2]), 4)  # p = (1/2, 1/4, 1/4, 0)
    assert int(modes) == 3 and float(kl) == pytest.approx(0.5 * np.log(2) + 2 * 0.25 * np.log(1.0), rel=1e-6)


def test_conditioned_run_resumes_bitwise_and_reports_class_accuracy(tmp_path):
    config = digits_config(conditioning="acgan")
    straight, split = tmp_path / "straight", tmp_path / "split"
    result = train_and_evaluate(config, str(straight), echo=lambda _: None)
    train_and_evaluate(digits_config(conditioning="acgan", num_steps=10), str(split), echo=lambda _: None)
    train_and_evaluate(config, str(split), echo=lambda _: None)
    assert_bitwise_equal(restore_final(straight, config)[0], restore_final(split, config)[0])
    labels = np.load(straight / "samples" / "step_00000020_labels.npy")
    np.testing.assert_array_equal(labels, np.arange(config.eval_num_samples) % 10)
    # The shipped classifier's agreement with the requested labels, recomputed from the saved samples ([0, 1]).
    from jaxgan.metrics.classifier import load_classifier

    samples = np.load(straight / "samples" / "step_00000020.npy")
    logits, _ = load_classifier("digits", samples.shape[1:])[0](jnp.asarray(2.0 * samples - 1.0))
    assert result["class_accuracy"] == pytest.approx(np.mean(np.argmax(np.asarray(logits), axis=-1) == labels), abs=1e-6)


@pytest.mark.parametrize("shift", [0, 1])
def test_class_accuracy_scores_the_requested_class(shift):
    """A G that answers class c with held-out digits of class c + shift: class accuracy is the shipped classifier's
    agreement of those digits with c (its accuracy for shift 0, its confusion for shift 1)."""
    from jaxgan.data.images import to_model_range
    from jaxgan.metrics.classifier import load_classifier
    from jaxgan.models import Player
    from jaxgan.train import init_state

    config = digits_config(conditioning="acgan", eval_num_samples=200)
    task = make_task(config)
    game = build_game(config, task)
    state = init_state(config, make_update_rule(game, config), task)
    info = task.data.info
    by_class = [to_model_range(jnp.asarray(info.test_images[info.test_labels == c][:20])) for c in range(10)]
    bank = jnp.stack(by_class)  # [class, 20, H, W, C]

    def copier(params, model_state, z, *, labels, **kw):
        index = jnp.arange(z.shape[0]) // 10 % 20  # the eval noise asks for classes 0..9 in turn
        return bank[(labels + shift) % 10, index], model_state

    metrics, _ = task.evaluation.evaluate(dataclasses.replace(game, generator=Player(game.generator.init, copier)), state)
    labels = np.arange(200) % 10
    images = bank[(labels + shift) % 10, np.arange(200) // 10 % 20]
    logits, _ = load_classifier("digits", images.shape[1:])[0](images)
    expected = np.mean(np.argmax(np.asarray(logits), axis=-1) == labels)
    assert float(metrics["class_accuracy"]) == pytest.approx(expected, abs=1e-6)
    assert expected > 0.9 if shift == 0 else expected < 0.1


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"conditioning": "acgan", "data.name": "ring", "generator.name": "mlp", "discriminator.name": "mlp", "evaluations": ("mixture",)},
         "--config.conditioning='acgan': --config.generator.name='mlp' does not take it; use one of dcgan"),
        ({"conditioning": "concgan"}, "--config.conditioning='concgan': unknown value; allowed: acgan, concat, infogan, none, projection, real_coarse"),
        ({"conditioning": "infogan", "info.categorical": 0, "info.continuous": 0},
         "--config.conditioning='infogan' needs --config.info.categorical or --config.info.continuous > 0"),
    ],
)  # fmt: skip
def test_bad_conditioning_is_one_line(tmp_path, overrides, message):
    config = digits_config()
    for key, value in overrides.items():
        section, _, leaf = key.rpartition(".")
        (config[section] if section else config)[leaf] = value
    with pytest.raises(ConfigError) as info:
        validate(config)
        train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_conditioning_needs_labelled_data():
    with pytest.raises(ValueError, match="needs a labelled data set"):
        Conditioning("concat", num_classes=0)
    assert make_conditioning(digits_config(), 10) is None
    assert dataclasses.replace(make_conditioning(digits_config(conditioning="acgan"), 10)).uses_labels


def test_truncated_eval_noise_is_the_truncated_normal():
    """ψ > 0: every coordinate within [−ψ, ψ], the classes as without truncation, and the variance of N(0, 1)
    truncated to [−ψ, ψ]: 1 − 2ψφ(ψ) / (2Φ(ψ) − 1)."""
    from scipy import stats

    config, task, game, rule, state, real = setup("concat")
    plain = eval_noise(game, state, 4000)
    for psi in (0.5, 1.0):
        z = eval_noise(game, state, 4000, truncation=psi)
        assert float(jnp.max(jnp.abs(z.data))) <= psi
        np.testing.assert_array_equal(z.labels, plain.labels)
        variance = 1 - 2 * psi * stats.norm.pdf(psi) / (2 * stats.norm.cdf(psi) - 1)
        np.testing.assert_allclose(float(jnp.var(z.data)), variance, rtol=0.02)
    np.testing.assert_array_equal(eval_noise(game, state, 4000, truncation=0.0).data, plain.data)


def test_projection_conditioning_gives_the_class_to_the_resnets():
    """conditioning='projection': real batches carry labels, G's conditional batch norm and D's projection term
    both read them (other classes, other outputs), and a D without a projection head is refused in one line."""
    from jaxgan.game import discriminate

    resnets = {"generator.name": "resnet", "discriminator.name": "resnet", "discriminator.norm": "spectral"}
    config, task, game, rule, state, real = setup("projection", **resnets)
    assert isinstance(real, Labelled) and real.labels is not None
    other = real.replace(labels=(real.labels + 1) % 10)
    logits, _ = discriminate(game, state.d_params, state.d_model_state, real, train=False)
    other_logits, _ = discriminate(game, state.d_params, state.d_model_state, other, train=False)
    assert float(jnp.max(jnp.abs(logits - other_logits))) > 1e-4
    # G's per-class gains start at 1 and biases at 0 (plain batch norm); one step makes them differ by class
    state, metrics = jax.jit(rule.step)(state, {"real": jax.tree.map(lambda x: x[None], real)})
    assert np.isfinite(float(metrics["d_loss"]))
    z = game.sample_noise(jax.random.key(3), 8)
    images, _ = generate(game, state.g_params, state.g_model_state, z, train=False)
    others, _ = generate(game, state.g_params, state.g_model_state, z.replace(labels=(z.labels + 1) % 10), train=False)
    assert float(jnp.max(jnp.abs(images.data - others.data))) > 1e-6
    with pytest.raises(ConfigError, match=r"--config.conditioning='projection': --config.discriminator.name='dcgan' does not take it; use one of resnet"):
        train_and_evaluate(digits_config(conditioning="projection"), "/nonexistent/never", echo=lambda _: None)
    with pytest.raises(ConfigError, match=r"--config.discriminator.norm='batch': the ResNet D is normalized by spectral norm or not at all"):
        train_and_evaluate(digits_config(**{**resnets, "discriminator.norm": "batch"}), "/nonexistent/never", echo=lambda _: None)


def test_negative_code_sizes_are_refused():
    with pytest.raises(ValueError, match=r"^InfoGAN's code sizes must be >= 0, got categorical=-1, continuous=2$"):
        Conditioning("infogan", categorical=-1, continuous=2)


def test_an_infogan_run_logs_its_code_accuracy_as_eval_json_reports_it(tmp_path):
    """The code accuracy is a best matching computed on the host: it is logged with the device's scalars, per run of
    a sweep too, and equals eval.json's."""
    from jaxgan.writers import read_metric

    result = train_and_evaluate(digits_config(conditioning="infogan", num_steps=10), str(tmp_path / "one"), echo=lambda _: None)
    steps, values = read_metric(tmp_path / "one", "eval/code_accuracy")
    assert list(steps) == [10] and values[-1] == pytest.approx(result["code_accuracy"], abs=1e-6)
    sweep = train_and_evaluate(
        digits_config(conditioning="infogan", num_steps=10, num_seeds=2), str(tmp_path / "two"), echo=lambda _: None
    )
    per_seed = read_metric(tmp_path / "two", "eval/code_accuracy/per_seed")[1][-1]
    np.testing.assert_allclose(per_seed, [run["code_accuracy"] for run in sweep["runs"]], atol=1e-6)
    assert read_metric(tmp_path / "two", "eval/code_accuracy")[1][-1] == pytest.approx(np.mean(per_seed), abs=1e-6)


def test_an_infogan_runs_samples_png_sweeps_the_codes(tmp_path, monkeypatch):
    """samples.png of an InfoGAN run: one row per categorical code value, its first continuous code swept over
    [−2, 2] across, one z, drawn from the final G (each cell is G's sample for that code, generated here)."""
    from jaxgan import plotting
    from jaxgan.data.images import to_unit_range
    from jaxgan.metrics.evaluations import CODE_SWEEP
    from scripts.notes import load_run

    drawn = {}
    real_plot = plotting.plot_image_rows
    monkeypatch.setattr(plotting, "plot_image_rows", lambda path, labels, rows, **kw: drawn.update(
        path=path, labels=labels, rows=np.stack(rows), **kw) or real_plot(path, labels, rows, **kw))  # fmt: skip
    train_and_evaluate(digits_config(conditioning="infogan", num_steps=10), str(tmp_path), echo=lambda _: None)
    assert drawn["path"] == tmp_path / "samples.png" and (tmp_path / "samples.png").stat().st_size > 0
    assert (tmp_path / "nearest_neighbours.png").stat().st_size > 0  # the evaluation's own figures are still drawn
    assert drawn["labels"] == [f"c1={k}" for k in range(10)] and drawn["rows"].shape == (10, 9, 8, 8, 1)
    assert drawn["column_labels"][0] == "-2.0" and drawn["column_labels"][-1] == "+2.0"
    _, _, game, state, _ = load_run(tmp_path)
    z = game.noise(jax.random.key(0), (1, game.z_dim))
    for k, j in ((0, 0), (3, 8), (9, 4)):
        code = Labelled(z, categorical=jnp.array([k]), continuous=jnp.array([[CODE_SWEEP[j], 0.0]], jnp.float32))
        cell = to_unit_range(generate(game, state.g_params, state.g_model_state, code, train=False)[0].data)[0]
        np.testing.assert_allclose(drawn["rows"][k, j], np.asarray(cell), atol=1e-6)
    assert np.abs(drawn["rows"][:, 0] - drawn["rows"][:, -1]).max() > 1e-4  # the swept code changes the samples
