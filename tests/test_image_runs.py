"""Image GANs through the runner: DCGAN on the 8×8 digits trains, evaluates with the shipped classifier, saves
samples in [0, 1], and resumes bitwise; the registries reject what they do not know in one line."""

import json
import logging
import re

import jax
import numpy as np
import pytest

from jaxgan.config import ConfigError, validate
from jaxgan.train import saved_config, train_and_evaluate
from scripts.notes import load_experiment
from test_train import assert_bitwise_equal, restore_final


def digits_config(**overrides):
    config = load_experiment("dcgan_digits")
    config.generator.base_width = config.discriminator.base_width = 8
    config.batch_size, config.z_dim = 32, 16
    config.num_steps, config.log_every_steps, config.eval_every_steps = 20, 10, 10
    config.checkpoint_every_steps, config.steps_per_dispatch = 10, 10
    for key, value in overrides.items():
        section, _, leaf = key.rpartition(".")
        (config[section] if section else config)[leaf] = value
    return config


def compiled_programs(caplog, run) -> set[str]:
    """The compilation-cache keys of the programs `run()` compiles or finds in the on-disk cache (tests/conftest.py
    turns it on): a key hashes the program, its argument shardings and the compile options."""
    assert jax.config.jax_compilation_cache_dir, "tests/conftest.py sets JAX_COMPILATION_CACHE_DIR"
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="jax._src.compiler"):
        run()
    keys = {m.group(1) for r in caplog.records if (m := re.search(r"with key '([^']+)'", r.getMessage()))}
    assert keys, "no compilation-cache lookups were logged"
    return keys


def test_dcgan_digits_trains_evaluates_and_resumes_bitwise(tmp_path, caplog):
    straight, split = tmp_path / "straight", tmp_path / "split"
    result = {}
    new_run = compiled_programs(caplog, lambda: result.update(train_and_evaluate(digits_config(), str(straight), echo=lambda _: None)))
    train_and_evaluate(digits_config(num_steps=10), str(split), echo=lambda _: None)
    resumed = compiled_programs(caplog, lambda: train_and_evaluate(digits_config(), str(split), echo=lambda _: None))
    assert resumed <= new_run  # a resumed run runs the very programs of a new run (its state restored as committed)
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
        ("generator.name", "dcgn", "--config.generator.name='dcgn': unknown value; allowed: dcgan, dirac, lapgan, mlp, progan, resnet, small_dcgan, stylegan2 (did you mean 'dcgan'?)"),
        ("data.name", "mnist5k", "(did you mean 'mnist_5k'?)"),
        ("evaluations", ("image",), "--config.evaluations: unknown evaluation 'image'; allowed: dirac, images, inception, mixture, samples (did you mean 'images'?)"),
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


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"eval_num_samples": 9}, "--config.eval_num_samples=9: the image metrics need at least 10 samples (the Inception Score's 10 splits, precision/recall's 3 nearest neighbours)"),
        ({"data.held_out_fraction": 0.001}, "--config.data.held_out_fraction=0.001: holds out 2 of the 1797 images; the image metrics compare samples with the held-out images and need at least 4"),
        ({"data.held_out_fraction": 0.3}, "--config.data.held_out_fraction=0.3: 179 of the 539 held-out images are ones the shipped digits classifier was trained on, which would bias the metrics against them; hold out at most its 360 of the 1797 (held_out_fraction <= 0.2)"),
        ({"data.held_out_fraction": 0.0002}, "--config.data.held_out_fraction=0.0002: leaves 1797 of the 1797 images of digits for training and 0 held out; both must be non-empty"),
    ],
)  # fmt: skip
def test_image_metric_sizes_are_refused_before_training(tmp_path, overrides, message):
    """Sizes the image metrics cannot use fail in one line when the run starts, not at the first evaluation."""
    with pytest.raises(ConfigError) as info:
        train_and_evaluate(digits_config(**overrides), str(tmp_path), echo=lambda _: None)
    assert str(info.value) == message
    assert not (tmp_path / "checkpoints").exists()


def test_the_smallest_accepted_image_evaluation_gives_finite_metrics(tmp_path):
    config = digits_config(eval_num_samples=10, num_steps=1, log_every_steps=1, eval_every_steps=1)
    result = train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    assert all(np.isfinite(result[k]) for k in ("fid", "kid", "inception_score", "precision", "recall"))
    # 10 samples in 10 splits: each split's p(y) is its one sample's p(y|x), so every split scores exactly 1.
    assert result["inception_score"] == pytest.approx(1.0, abs=1e-5)
    # FID, precision and recall from the saved samples against the held-out digits, computed here.
    import jax.numpy as jnp

    from jaxgan.data.images import to_model_range
    from jaxgan.metrics import fid_from_features, precision_recall_from_features
    from jaxgan.metrics.classifier import load_classifier
    from jaxgan.tasks import make_task

    samples = np.load(tmp_path / "samples" / "step_00000001.npy")
    classify = load_classifier("digits", samples.shape[1:])[0]
    fake = classify(jnp.asarray(2.0 * samples - 1.0))[1]
    real = classify(to_model_range(jnp.asarray(make_task(config).data.info.test_images)))[1]
    assert result["fid"] == pytest.approx(float(fid_from_features(real, fake)), rel=1e-4)
    precision, recall = precision_recall_from_features(real, fake, k=3)
    assert (result["precision"], result["recall"]) == pytest.approx((float(precision), float(recall)), abs=1e-6)
    assert result["precision"] * 10 == pytest.approx(round(result["precision"] * 10), abs=1e-5)  # a multiple of 1/10


@pytest.mark.parametrize("source", ["train", "held_out"])
def test_memorization_number_flags_copies_of_training_images(source):
    """A G that outputs training images is flagged as memorizing (fraction 1); one that outputs held-out digits
    scores the fraction of them nearer to a training image than the 5% quantile of all held-out digits' nearest
    distances (numpy, float64, in pixels and in the shipped classifier's features)."""
    import dataclasses

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
    if source == "train":
        assert float(metrics["memorized_pixels"]) == float(metrics["memorized_features"]) == 1.0
        return
    from jaxgan.metrics.classifier import load_classifier

    classify = load_classifier("digits", images.shape[1:])[0]
    train_x, held_out_x = (to_model_range(jnp.asarray(a)) for a in (task.data.info.train_images, images))
    for key, (queries, references) in {
        "memorized_pixels": (held_out_x, train_x),
        "memorized_features": (classify(held_out_x)[1], classify(train_x)[1]),
    }.items():
        q, r = (np.asarray(a, np.float64).reshape(a.shape[0], -1) for a in (queries, references))
        nearest = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1)).min(axis=1)
        expected = np.mean(nearest[:300] < np.quantile(nearest, 0.05))
        assert float(metrics[key]) == pytest.approx(expected, abs=1e-6), key
        assert 0.0 < expected < 0.15


def test_ema_of_g_is_evaluated_beside_g_and_the_figure_shows_g():
    """With `ema_decay` the averaged G gets its own metrics (`ema_*`) on the same noise, normalising by the
    evaluation batch's own statistics where G has batch norm; the snapshot (samples.png, the tables' figures) is
    G's, whose samples the unprefixed metrics score."""
    import dataclasses

    import jax
    import jax.numpy as jnp

    from jaxgan.data.images import to_unit_range
    from jaxgan.game import generate
    from jaxgan.metrics.evaluations import eval_noise
    from jaxgan.models import Player
    from jaxgan.tasks import make_task
    from jaxgan.train import build_game, init_state
    from jaxgan.updates import make_update_rule

    config = digits_config(eval_num_samples=200, ema_decay=0.9)
    task = make_task(config)
    game = build_game(config, task)
    state = init_state(config, make_update_rule(game, config), task)
    assert state.g_params_ema is not None
    state = state.replace(g_params_ema=jax.tree.map(lambda p: p * 1.5, state.g_params))
    metrics, snapshot = task.evaluation.evaluate(game, state)
    z = eval_noise(game, state, 200)
    batch_stats, _ = generate(game, state.g_params_ema, state.g_model_state, z, train=True)
    running, _ = generate(game, state.g_params_ema, state.g_model_state, z, train=False)
    assert not np.allclose(np.asarray(batch_stats), np.asarray(running))
    g_samples, _ = generate(game, state.g_params, state.g_model_state, z, train=False)
    np.testing.assert_array_equal(np.asarray(snapshot), np.asarray(to_unit_range(g_samples)))
    assert metrics["ema_fid"] != metrics["fid"]
    # The EMA's metrics are those of its batch-statistics samples: a G that returns exactly those scores them.
    ema_copier = Player(game.generator.init, lambda params, model_state, z, **kw: (batch_stats, model_state))
    copied, _ = task.evaluation.evaluate(dataclasses.replace(game, generator=ema_copier), state)
    for key in ("fid", "kid", "inception_score", "precision", "recall"):
        assert float(copied[key]) == float(metrics["ema_" + key]), key
    summary = task.evaluation.summarize(game, state, jax.device_get(metrics))
    assert {"ema_fid", "ema_kid", "ema_inception_score", "ema_precision", "ema_recall"} <= set(summary)
    assert "| ema: fid" in task.evaluation.describe(jax.device_get(metrics))

    # A G without model state: its average at the same weights scores exactly as G does.
    fixed = jnp.tanh(jax.random.normal(jax.random.key(0), (200, 8, 8, 1)))
    stateless = Player(game.generator.init, lambda params, model_state, z, **kw: (fixed[: z.shape[0]], model_state))
    stateless_state = state.replace(g_model_state={})
    metrics, _ = task.evaluation.evaluate(dataclasses.replace(game, generator=stateless), stateless_state)
    for key in ("fid", "kid", "inception_score", "precision", "recall"):
        assert float(metrics["ema_" + key]) == float(metrics[key]), key


@pytest.mark.parametrize("host_loop", [False, True])
def test_given_batches_train_exactly_as_the_batches_drawn_on_device(host_loop):
    """The streamed path's plumbing: a chunk handed the very batches the device path draws from the step keys
    ends in the same state (fused loop and host loop)."""
    import jax

    from jaxgan.state import step_keys
    from jaxgan.tasks import make_task
    from jaxgan.train import build_game, init_state, make_train_chunk, real_sampler
    from jaxgan.updates import make_update_rule

    config = digits_config(d_steps=2, update_rule="alternating")
    task = make_task(config)
    game = build_game(config, task)
    rule = make_update_rule(game, config, unroll_inner=host_loop)
    sample = real_sampler(task, game)
    n = rule.num_real_batches * config.batch_size
    state = init_state(config, rule, task)
    drawn = make_train_chunk(rule, sample, config.batch_size, max_steps=4, host_loop=host_loop)
    given = make_train_chunk(rule, None, config.batch_size, max_steps=4, host_loop=host_loop)
    batches, probe = [], state
    for _ in range(3):  # the keys of steps 0, 1, 2 (they depend on the state's key and step only)
        batches.append(sample(step_keys(probe).data, n))
        probe = probe.replace(step=probe.step + 1)
    real = np.stack(batches + [np.zeros_like(batches[0])])  # padded to max_steps; the pad is never read
    fresh = lambda: init_state(config, rule, task)  # noqa: E731  (each chunk donates its state)
    a, _ = drawn(fresh(), 3, {})
    b, _ = given(fresh(), 3, {}, real)
    shifted, _ = given(fresh(), 3, {}, np.roll(real, 1, axis=0))
    # Equal up to float32 rounding: a batch read from an argument compiles to other fusions than a gather, and
    # Adam's normalised step m/√v can raise a rounding difference to ~1e-6 where a gradient entry is near 0 (jax
    # 0.10.2: 1.05e-6 on one of 2048 entries). Batches off by one step differ by far more (5e-3 there).
    def leaves(state):
        return [np.asarray(leaf) for leaf in jax.tree.leaves((state.g_params, state.d_params))]

    for x, y in zip(leaves(a), leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    rounding = max(np.max(np.abs(x - y)) for x, y in zip(leaves(a), leaves(b)))
    off_by_one = max(np.max(np.abs(x - off)) for x, off in zip(leaves(a), leaves(shifted)))
    assert rounding <= 1e-3 * off_by_one, (rounding, off_by_one)


@pytest.mark.parametrize("d_steps", [1, 2])  # 2: two real batches per step, one global batch of the stream
def test_streamed_run_resumes_bitwise_and_refuses_a_mismatched_position(tmp_path, d_steps):
    """data.loader='stream': batches read on the host with grain; the loader's position is saved in each
    checkpoint and a split run ends bitwise where the straight one does."""
    import json as _json

    from jaxgan.checkpoint import Checkpointer

    config = lambda **kw: digits_config(**{"data.loader": "stream", "d_steps": d_steps, **kw})  # noqa: E731
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_and_evaluate(config(), str(straight), echo=lambda _: None)
    train_and_evaluate(config(num_steps=10), str(split), echo=lambda _: None)
    saved = Checkpointer(split / "checkpoints").restore_data(10)
    assert saved["next_batch"] == 10 and saved["global_batch_size"] == d_steps * config().batch_size
    train_and_evaluate(config(), str(split), echo=lambda _: None)
    assert_bitwise_equal(restore_final(straight, config())[0], restore_final(split, config())[0])
    assert (straight / "eval.json").read_bytes() == (split / "eval.json").read_bytes()
    assert Checkpointer(straight / "checkpoints").restore_data(20)["next_batch"] == 20

    if d_steps > 1:
        return
    # The device path draws other batches: the streamed run really trained on the stream.
    device = tmp_path / "device"
    train_and_evaluate(digits_config(), str(device), echo=lambda _: None)
    assert _json.loads((device / "eval.json").read_text())["fid"] != _json.loads((straight / "eval.json").read_text())["fid"]


def test_streamed_data_set_must_be_streamable(tmp_path):
    config = digits_config(**{"data.loader": "stream", "data.name": "stacked_mnist"})
    with pytest.raises(ConfigError, match=r"^--config.data.loader='stream': 'stacked_mnist' cannot be streamed"):
        train_and_evaluate(config, str(tmp_path), echo=lambda _: None)


def test_a_seed_sweep_is_not_streamed_and_a_run_trained_so_stays_readable(tmp_path):
    """Each run of the sweep would read seed 0's batches (one streamed batch per step for all runs)."""
    config = digits_config(**{"data.loader": "stream", "num_seeds": 2})
    with pytest.raises(ConfigError, match=r"^--config.num_seeds=2 with --config.data.loader='stream': the runs of a "
                       r"sweep share one streamed batch per step, so each seed would train on seed 0's data order"):
        train_and_evaluate(config, str(tmp_path / "run"), echo=lambda _: None)
    assert not (tmp_path / "run").exists()  # refused before the workdir is made
    (tmp_path / "old").mkdir()  # such a run, trained before the refusal, is still read (sampled, plotted, ...)
    (tmp_path / "old" / "config.json").write_text(config.to_json())
    assert saved_config(tmp_path / "old", "--workdir").num_seeds == 2


def test_image_table_reports_mean_and_population_std_over_seeds():
    from scripts.reproduce_image_table import table

    results = {
        "dcgan_mnist": [{"fid": 100.0, "kid": 1.0, "inception_score": 6.0, "precision": 0.5, "recall": 0.5},
                        {"fid": 110.0, "kid": 3.0, "inception_score": 7.0, "precision": 0.7, "recall": 0.3}],
        "cgan_mnist": [{"fid": 50.0, "kid": 2.0, "inception_score": 8.0, "precision": 0.6, "recall": 0.4,
                        "class_accuracy": 0.9}],
    }  # fmt: skip
    lines = table(results, {"dcgan_mnist": 1500, "cgan_mnist": 1000}).splitlines()
    assert lines[0] == "| system | steps | seeds | FID ↓ | KID ↓ | IS ↑ | precision ↑ | recall ↑ | class accuracy ↑ |"
    assert lines[2] == "| `dcgan_mnist` | 1500 | 2 | 105.0 ± 5.0 | 2.0 ± 1.0 | 6.50 ± 0.50 | 0.600 ± 0.100 | 0.400 ± 0.100 | — |"
    assert lines[3] == "| `cgan_mnist` | 1000 | 1 | 50.0 | 2.0 | 8.00 | 0.600 | 0.400 | 0.900 |"


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({}, False),
        ({"update_rule": "unrolled", "unroll_steps": 3}, True),
        ({"update_rule": "unrolled", "unroll_steps": 0}, False),
        ({"penalty": "r1", "penalty_weight": 1.0}, True),
        ({"update_rule": "sga"}, True),
        ({"discriminator.strided_conv": "space_to_depth"}, True),
        ({"update_rule": "unrolled", "unroll_steps": 3, "discriminator.strided_conv": "conv"}, False),
    ],
)
def test_strided_conv_auto_picks_space_to_depth_where_d_is_differentiated_twice(settings, expected, monkeypatch):
    """On a CPU "auto" keeps nn.Conv for a first-order game; on a GPU it always takes space-to-depth."""
    import jax

    from jaxgan.models import build_players

    assert jax.default_backend() == "cpu"
    config = digits_config(**settings)
    _, discriminator = build_players(config, (8, 8, 1))
    assert discriminator.space_to_depth is expected
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    _, discriminator = build_players(config, (8, 8, 1))
    assert discriminator.space_to_depth is (config.discriminator.strided_conv != "conv")


def test_image_table_pools_recorded_aggregates_with_new_seeds_exactly():
    """Seeds kept only as (n, mean, std) pool with per-run results as if every value were there."""
    from scripts.reproduce_image_table import table

    old, new = [100.0, 130.0, 115.0], [90.0, 140.0]
    aggregate = {"seeds": [0, 1, 2], "n": 3, "mean": {"fid": np.mean(old)}, "std": {"fid": np.std(old)}}
    row = table({"sagan_mnist": [{"aggregate": aggregate}, *({"fid": v} for v in new)]}, {"sagan_mnist": 1500})
    everything = np.asarray(old + new)
    assert row.splitlines()[2] == f"| `sagan_mnist` | 1500 | 5 | {everything.mean():.1f} ± {everything.std():.1f} |"


def test_recorded_results_are_reused_only_for_the_same_finished_settings(tmp_path):
    from scripts.notes import record_result, recorded_result, recorded_samples

    config = digits_config(num_steps=3)
    result = {"config": config.to_dict(), "step": 3, "fid": 12.5}
    samples = np.linspace(0, 1, 8 * 8 * 8).reshape(8, 8, 8, 1)
    record_result(tmp_path / "seed_0.json", result, samples)
    assert recorded_result(config, tmp_path / "seed_0.json")["fid"] == 12.5
    assert np.abs(recorded_samples(tmp_path / "seed_0.json") - samples).max() <= 0.5 / 255 + 1e-7
    assert recorded_result(digits_config(num_steps=4), tmp_path / "seed_0.json") is None  # not finished at 4
    assert recorded_result(digits_config(num_steps=3, loss="hinge"), tmp_path / "seed_0.json") is None
    assert recorded_result(config, tmp_path / "seed_1.json") is None


def test_a_vmapped_run_of_seeds_splits_into_one_result_per_seed():
    from scripts.reproduce_image_table import split_seeds

    configs = [digits_config(seed=s) for s in (1, 2)]
    result = {"step": 3, "runs": [{"seed": 1, "fid": 10.0}, {"seed": 2, "fid": 20.0}], "mean": {"fid": 15.0},
              "config": digits_config(seed=1, num_seeds=2).to_dict()}  # fmt: skip
    samples = np.arange(2 * 9 * 4, dtype=np.float32).reshape(2, 9, 4)
    (first, first_samples), (second, second_samples) = split_seeds(result, samples, configs)
    assert (first["fid"], second["fid"]) == (10.0, 20.0) and first["step"] == second["step"] == 3
    assert second["config"]["seed"] == 2 and second["config"]["num_seeds"] == 1 and second["trained_with_seeds"] == [1, 2]
    np.testing.assert_array_equal(second_samples, samples[1, :8])
    assert first_samples.shape == (8, 4)
    with pytest.raises(ValueError, match=r"the vmapped run trained seeds \[1, 2\], not \[0, 1\]"):
        split_seeds(result, samples, [digits_config(seed=s) for s in (0, 1)])


def test_image_table_has_the_mode_columns_only_where_runs_report_them():
    from scripts.reproduce_image_table import table

    results = {"lsgan_mnist": [{"modes": 900.0, "kl": 0.5}, {"modes": 910.0, "kl": 0.3}]}
    lines = table(results, {"lsgan_mnist": 1500}).splitlines()
    assert lines[0] == "| system | steps | seeds | modes of 1000 ↑ | KL ↓ |"
    assert lines[2] == "| `lsgan_mnist` | 1500 | 2 | 905.0 ± 5.0 | 0.40 ± 0.10 |"


@pytest.mark.parametrize("conditioning", ["concat", "acgan"])
def test_logged_eigenvalues_of_a_conditioned_game_see_labelled_real_data(conditioning):
    """D of a conditioned game needs the real images' classes: the eigenvalue logging draws them like training does."""
    from jaxgan.tasks import make_task
    from jaxgan.train import build_game, init_state, top_eigenvalue_metrics
    from jaxgan.updates import make_update_rule

    config = digits_config(conditioning=conditioning, log_eigenvalues=1, batch_size=8, update_rule="simultaneous")
    validate(config)
    task = make_task(config)
    game = build_game(config, task)
    state = init_state(config, make_update_rule(game, config), task)
    metrics = top_eigenvalue_metrics(game, task, state, config)
    assert np.isfinite(metrics["eig0_real"]) and np.isfinite(metrics["eig0_imag"])
    # The same Arnoldi run on the labelled batch drawn as training draws it, and on that batch with other classes:
    # the logged value is the first, and the classes change it (D sees them).
    import jax

    from jaxgan.dynamics import top_eigenvalues_arnoldi
    from jaxgan.train import real_sampler

    key = jax.random.fold_in(state.key, 2**31 - 2)
    real = real_sampler(task, game)(jax.random.fold_in(key, 0), config.batch_size)
    z = game.sample_noise(jax.random.fold_in(key, 1), config.batch_size)

    def top(batch):
        return top_eigenvalues_arnoldi(
            game, state.g_params, state.d_params, batch, z, k=1, num_iters=20, key=jax.random.fold_in(key, 2),
            g_model_state=state.g_model_state, d_model_state=state.d_model_state,
        )[0]  # fmt: skip

    assert complex(top(real)) == pytest.approx(complex(metrics["eig0_real"], metrics["eig0_imag"]), rel=1e-5)
    relabelled = real.replace(labels=(real.labels + 1) % 10)
    assert abs(complex(top(relabelled)) - complex(top(real))) > 1e-3 * abs(complex(top(real)))  # measured: 2%, 16%


def test_image_folder_run_saves_samples_without_a_classifier(tmp_path):
    """Users' own images (no shipped classifier to judge them) train through the runner with the 'samples'
    evaluation: G's samples saved in [0, 1] and drawn, eval.json without metrics; 'images' and 'mixture' refuse
    such data in one line."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = tmp_path / "folder"
    for cls in range(3):
        (folder / f"class_{cls}").mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == cls][:10]):
            Image.fromarray((image * 15).astype(np.uint8), mode="L").save(folder / f"class_{cls}" / f"{i:02d}.png")
    settings = {"data.name": "image_folder", "data.path": str(folder), "eval_num_samples": 12}
    config = digits_config(**settings, evaluations=("samples",))
    result = train_and_evaluate(config, str(tmp_path / "run"), echo=lambda _: None)
    assert set(result) == {"step", "config"} and result["step"] == 20
    samples = np.load(tmp_path / "run" / "samples" / "step_00000020.npy")
    assert samples.shape == (12, 8, 8, 1) and samples.min() >= 0.0 and samples.max() <= 1.0
    # G's evaluation-mode samples on the run's evaluation noise, regenerated from the final checkpoint.
    from jaxgan.conditioning import data_of
    from jaxgan.data.images import to_unit_range
    from jaxgan.game import generate
    from jaxgan.metrics.evaluations import eval_generator_key, eval_noise
    from scripts.notes import load_run

    _, _, game, state, _ = load_run(tmp_path / "run")
    z = eval_noise(game, state, 12)
    expected = to_unit_range(data_of(generate(game, state.g_params, state.g_model_state, z, train=False, key=eval_generator_key(state))[0]))
    np.testing.assert_allclose(samples, np.asarray(expected), atol=1e-6)
    assert samples.std() > 0  # G's output, not a constant
    assert (tmp_path / "run" / "samples.png").stat().st_size > 0
    for evaluation, message in (
        ("images", r"^--config.evaluations: 'images' needs mnist_5k, digits or stacked_mnist data .* not 'image_folder'; use --config.evaluations='\(\"samples\",\)' to save and draw samples only, or '\(\"inception\",\)' for the metrics in Inception-v3's features \(weights: --config.eval.inception_weights\)$"),
        ("mixture", r"^--config.evaluations: 'mixture' needs a mixture data set .*; for images use 'images' .* or 'samples'$"),
        ("dirac", r"^--config.evaluations: 'dirac' needs the dirac data set, not 'image_folder'$"),
    ):
        with pytest.raises(ConfigError, match=message):
            train_and_evaluate(digits_config(**settings, evaluations=(evaluation,)), str(tmp_path / evaluation))
    # An image size the models cannot make is refused naming the flags that chose the images and the models.
    with pytest.raises(ConfigError, match=r"^--config.data.name='image_folder' \(--config.data.image_size=7\) with "
                       r"--config.generator.name='dcgan', --config.discriminator.name='dcgan': \w+: unsupported image "
                       r"size 7x7; .*7·2\^k with k ≥ 1 \(14, 28, 56, ...\)"):  # fmt: skip
        train_and_evaluate(digits_config(**settings, evaluations=("samples",), **{"data.image_size": 7}), str(tmp_path / "7"))


def test_seeds_recorded_as_an_aggregate_get_their_figure_row_from_a_finished_run_of_the_first_seed(tmp_path):
    import json

    from scripts.reproduce_image_table import aggregate_samples

    config = digits_config(num_steps=3)
    aggregate, run_dir = tmp_path / "records" / "aggregate.json", tmp_path / "run"
    assert aggregate_samples(aggregate, config, run_dir, write=True) is None  # no run, no record
    (run_dir / "samples").mkdir(parents=True)
    samples = np.linspace(0, 1, 10 * 8 * 8).reshape(10, 8, 8, 1).astype(np.float32)
    np.save(run_dir / "samples" / "step_2.npy", samples[::-1])
    np.save(run_dir / "samples" / "step_3.npy", samples)
    (run_dir / "eval.json").write_text(json.dumps({"config": config.to_dict(), "step": 2}))
    assert aggregate_samples(aggregate, config, run_dir, write=True) is None  # not finished
    (run_dir / "eval.json").write_text(json.dumps({"config": config.to_dict(), "step": 3}))
    assert aggregate_samples(aggregate, digits_config(num_steps=3, loss="hinge"), run_dir, write=True) is None
    np.testing.assert_array_equal(aggregate_samples(aggregate, config, run_dir, write=False), samples[:8])
    assert not aggregate.with_suffix(".samples.npy").exists()
    aggregate_samples(aggregate, config, run_dir, write=True)
    kept = aggregate_samples(aggregate, config, tmp_path / "gone", write=False)  # the run folder is scratch
    assert np.abs(kept - samples[:8]).max() <= 0.5 / 255 + 1e-7


def test_a_new_record_never_keeps_the_samples_of_the_record_it_replaces(tmp_path):
    from scripts.notes import record_result, recorded_samples

    record = tmp_path / "seed_0.json"
    record_result(record, {"step": 1}, np.zeros((8, 8, 8, 1), np.float32))
    record_result(record, {"step": 2})  # no samples this time: the old ones go, they were another run's
    assert recorded_samples(record) is None
    record_result(record, {"step": 3}, np.ones((8, 8, 8, 1), np.float32))
    assert recorded_samples(record).min() == 1.0 and sorted(p.name for p in tmp_path.iterdir()) == ["seed_0.json", "seed_0.samples.npy"]
    record.with_suffix(".samples.npy").write_bytes(b"\x93NUMPY torn")  # torn by a crash before writes were atomic
    with pytest.raises(SystemExit) as stop:
        recorded_samples(record)
    assert stop.value.code == 2


def test_a_finished_run_rerun_under_other_evaluation_settings_logs_the_evaluation_it_reports(tmp_path):
    """eval.json, metrics.jsonl and the saved samples of the last step hold one evaluation: the one made now."""
    import json

    from jaxgan.writers import records_without_wall_clock

    train_and_evaluate(digits_config(eval_num_samples=200), str(tmp_path), echo=lambda _: None)
    first = records_without_wall_clock(tmp_path)
    result = train_and_evaluate(digits_config(eval_num_samples=300), str(tmp_path), echo=lambda _: None)
    again = records_without_wall_clock(tmp_path)
    assert again[:-1] == first[:-1] and again[-1] != first[-1]  # only the last evaluation's record, replaced
    assert again[-1]["step"] == 20 and again[-1]["eval/fid"] == result["fid"] != first[-1]["eval/fid"]
    assert np.load(tmp_path / "samples" / "step_00000020.npy").shape == (300, 8, 8, 1)
    assert json.loads((tmp_path / "eval.json").read_text())["fid"] == result["fid"]
    # The same settings again: the same evaluation, logged once.
    train_and_evaluate(digits_config(eval_num_samples=300), str(tmp_path), echo=lambda _: None)
    assert records_without_wall_clock(tmp_path) == again


def _digit_folder(root, per_class: int):
    """An image folder of scikit-learn's 8×8 digits, classes 0–2, `per_class` PNGs each."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for cls in range(3):
        (root / f"class_{cls}").mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == cls][:per_class]):
            Image.fromarray((image * 15).astype(np.uint8), mode="L").save(root / f"class_{cls}" / f"{i:02d}.png")
    return root


def test_inception_evaluation_scores_image_folder_samples_in_inception_features(tmp_path):
    """'inception' on users' own images: eval.json's FID, KID, IS, precision and recall (of G and of its EMA) are the
    metrics of Inception-v3 features (random weights here, from an .npz in pytorch-fid's layout) of the saved
    samples against the held-out split, recomputed here from the saved samples and the folder's held-out images."""
    import jax.numpy as jnp

    from jaxgan.data.images import to_model_range
    from jaxgan.metrics.evaluations import feature_metrics
    from jaxgan.metrics.inception import inception_features, load_inception_params
    from scripts.notes import load_run
    from test_inception import random_variables, to_torch_state_dict

    weights = tmp_path / "inception.npz"
    np.savez(weights, **to_torch_state_dict(random_variables()))
    folder = _digit_folder(tmp_path / "folder", per_class=20)
    settings = {"data.name": "image_folder", "data.path": str(folder), "eval_num_samples": 12, "ema_decay": 0.5,
                "eval_every_steps": 20, "eval.inception_weights": str(weights)}  # fmt: skip
    result = train_and_evaluate(digits_config(**settings, evaluations=("inception",)), str(tmp_path / "run"), echo=lambda _: None)

    _, task, _, _, _ = load_run(tmp_path / "run")
    variables = load_inception_params(weights)
    held_out = task.data.info.test_images  # uint8 [n, 8, 8, 1]: 12 of the 60 images
    assert held_out.shape == (12, 8, 8, 1)
    reference, _ = inception_features(variables, to_model_range(jnp.asarray(held_out)), batch_size=12)
    samples = np.load(tmp_path / "run" / "samples" / "step_00000020.npy")
    features, logits = inception_features(variables, jnp.asarray(samples) * 2 - 1, batch_size=12)
    expected = jax.jit(feature_metrics, static_argnames="kid_subset")(reference, features, logits, kid_subset=12)
    assert set(expected) == {"fid", "kid", "inception_score", "precision", "recall"}
    for key, value in expected.items():
        np.testing.assert_allclose(result[key], float(value), rtol=2e-3, atol=1e-4, err_msg=key)
    assert result["fid"] > 0 and 1.0 <= result["inception_score"] <= 10.0
    assert {f"ema_{key}" for key in expected} <= set(result) and result["ema_fid"] != result["fid"]
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in logged if "eval/fid" in r][-1]
    assert last["step"] == 20 and last["eval/fid"] == pytest.approx(result["fid"])
    assert not any("inception_samples" in key for r in logged for key in r)  # the samples are not logged


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({}, r"^--config.eval.inception_weights='': the 'inception' evaluation needs the FID Inception weights as an "
             r"\.npz \(see jaxgan.metrics.inception for how to make it from pytorch-fid's \.pth\)$"),
        ({"eval.inception_weights": "pt_inception-2015-12-05-6726825d.pth"},
         r"^--config.eval.inception_weights='pt_inception-2015-12-05-6726825d.pth': not an \.npz file \(see "),
        ({"eval.inception_weights": "missing.npz"}, r"^--config.eval.inception_weights='missing.npz': no such file$"),
        ({"evaluations": ("samples",), "eval.inception_weights": "w.npz"},
         r"^--config.eval.inception_weights='w.npz': no evaluation in --config.evaluations reads it \(it is "
         r"inception's setting\)$"),
        ({"evaluations": ("images", "inception")}, r"^--config.evaluations=\['images', 'inception'\]: 'images' and "
         r"'inception' both write fid, kid, inception_score, precision and recall .*; choose one$"),
        ({"data.name": "stacked_mnist"}, r"^--config.evaluations: 'inception' would compare stacked \(RGB\) samples "
         r"with grey held-out digits; stacked_mnist is judged by 'images' \(modes of 1000, KL\)$"),
    ],
)  # fmt: skip
def test_inception_evaluation_refuses_missing_weights_and_wrong_data_in_one_line(tmp_path, overrides, message):
    overrides = {"evaluations": ("inception",), **overrides}
    with pytest.raises(ConfigError, match=message):
        train_and_evaluate(digits_config(**overrides), str(tmp_path / "run"), echo=lambda _: None)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_inception_weights_of_another_layout_are_refused_before_training(tmp_path):
    np.savez(tmp_path / "other.npz", fc_weight=np.zeros((3, 3), np.float32))
    folder = _digit_folder(tmp_path / "folder", per_class=10)
    config = digits_config(**{"data.name": "image_folder", "data.path": str(folder), "eval_num_samples": 12,
                              "evaluations": ("inception",), "eval.inception_weights": str(tmp_path / "other.npz")})  # fmt: skip
    with pytest.raises(ConfigError) as error:
        train_and_evaluate(config, str(tmp_path / "run"), echo=lambda _: None)
    message = str(error.value)
    assert message.startswith(f"--config.eval.inception_weights='{tmp_path / 'other.npz'}': ") and "\n" not in message
    assert not (tmp_path / "run" / "checkpoints").exists()
