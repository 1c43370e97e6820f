"""jaxgan.sampling and scripts/sample.py: the path through z against its closed forms, draw 0 equal to the run's own saved samples,
walks that start and end at the grid's samples, conditioned rows that keep their class, bad input one line."""

import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.train import train_and_evaluate
from test_image_runs import digits_config
from test_recount_stacked_modes import assert_one_line_errors

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = [sys.executable, "scripts/sample.py"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sample") / "run"
    train_and_evaluate(digits_config(ema_decay=0.9), str(workdir), echo=lambda _: None)
    return workdir


def test_interpolate_closed_forms():
    from jaxgan.sampling import interpolate

    a, b = jax.random.normal(jax.random.key(0), (2, 3, 16))
    b = b * (jnp.linalg.norm(a, axis=-1, keepdims=True) / jnp.linalg.norm(b, axis=-1, keepdims=True))  # |a| = |b|
    path = np.asarray(interpolate(a, b, 9, "slerp"))
    assert path.shape == (3, 9, 16)
    np.testing.assert_allclose(path[:, 0], a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(path[:, -1], b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(path, axis=-1), np.linalg.norm(a, axis=-1)[:, None].repeat(9, 1), rtol=1e-5)
    unit = path / np.linalg.norm(path, axis=-1, keepdims=True)
    angles = np.arccos(np.clip(np.sum(unit[:, 1:] * unit[:, :-1], -1), -1, 1))  # constant angular speed
    np.testing.assert_allclose(angles, angles[:, :1].repeat(8, 1), rtol=1e-3)
    in_plane = np.linalg.lstsq(np.stack([a[0], b[0]], 1), path[0].T, rcond=None)[1]  # on the plane of a and b
    assert np.all(in_plane < 1e-8)
    line = np.asarray(interpolate(a, 2 * a, 3, "linear"))
    np.testing.assert_allclose(line[:, 1], 1.5 * np.asarray(a), rtol=1e-6)
    parallel = np.asarray(interpolate(a, 2 * a, 5, "slerp"))  # Ω = 0: the chord, norms from |a| to 2|a|
    assert np.all(np.isfinite(parallel))
    np.testing.assert_allclose(parallel[:, 2], 1.5 * np.asarray(a), rtol=1e-5)


def test_draw_zero_is_the_runs_own_evaluation_and_other_draws_differ(digits_run, tmp_path):
    saved = np.load(digits_run / "samples" / "step_00000020.npy")
    for draw in (0, 1):
        out = tmp_path / f"draw{draw}.png"
        proc = subprocess.run([*SCRIPT, f"--workdir={digits_run}", f"--num_samples={len(saved)}", f"--draw={draw}",
                               f"--out={out}"], cwd=ROOT, capture_output=True, text=True, check=True)  # fmt: skip
        assert "step 20" in proc.stdout and out.exists()
        drawn = np.load(out.with_suffix(".npy"))
        assert drawn.shape == saved.shape and drawn.dtype == np.float32
        assert np.array_equal(drawn, saved) == (draw == 0)


def test_walks_run_between_the_grids_samples(digits_run):
    from scripts.notes import load_run
    from jaxgan.sampling import sample_images

    config, _, game, state, _ = load_run(digits_run)
    grid, classes = sample_images(game, state, 8, 2, 0.0, "raw")
    assert classes is None
    for path in ("slerp", "linear"):
        walks, _ = sample_images(game, state, 20, 2, 0.0, "raw", walk=5, path=path)
        assert walks.shape == (4, 5, 8, 8, 1)
        np.testing.assert_allclose(walks[:, 0], grid[:4], atol=1e-5)  # from the first half of 2 · rows draws
        np.testing.assert_allclose(walks[:, -1], grid[4:], atol=1e-5)  # to the second half
        assert np.abs(walks[:, 2] - walks[:, 0]).max() > 1e-3


def test_conditioned_rows_keep_their_class():
    from jaxgan.tasks import make_task
    from jaxgan.train import build_game
    from jaxgan.sampling import sample_images

    config = digits_config(conditioning="concat")
    task = make_task(config)
    game = build_game(config, task)
    state = game.init(jax.random.key(0), task.data.sample(jax.random.key(1), config.batch_size))
    images, classes = sample_images(game, state, 30, 0, 0.0, "raw")
    np.testing.assert_array_equal(classes, np.arange(30) % 10)
    walks, row_classes = sample_images(game, state, 12, 0, 0.0, "raw", walk=4)
    assert walks.shape[:2] == (3, 4)
    np.testing.assert_array_equal(row_classes, np.repeat(np.arange(3)[:, None], 4, 1))  # the start's class: 0, 1, 2


def test_bad_input_is_one_line(digits_run, tmp_path):
    from jaxgan.train import CONFIG_FILE, write_json
    from scripts.notes import load_experiment

    for name, config in {"plain": digits_config(), "ring": load_experiment("ring8")}.items():
        (tmp_path / name).mkdir()
        write_json(tmp_path / name / CONFIG_FILE, config.to_dict())  # a run's config, no checkpoint needed
    assert_one_line_errors(SCRIPT, {
        f"error: --workdir={tmp_path / 'missing'}: no config.json": [f"--workdir={tmp_path / 'missing'}"],
        f"error: --workdir={tmp_path / 'ring'}: a run on image data is needed, not 'ring'": [f"--workdir={tmp_path / 'ring'}"],
        "error: --generator=ema: the run keeps no moving average": [f"--workdir={tmp_path / 'plain'}", "--generator=ema"],
        "error: --interpolate=1:": [f"--workdir={digits_run}", "--interpolate=1"],
        "error: --interpolate=99:": [f"--workdir={digits_run}", "--interpolate=99"],
        f"error: --workdir={tmp_path / 'plain'}: no checkpoints": [f"--workdir={tmp_path / 'plain'}"],
    })


def test_unknown_path_or_generator_is_refused():
    from jaxgan.sampling import interpolate, sample_images

    with pytest.raises(ValueError, match=r"^path must be 'slerp' or 'linear', got 'Linear'$"):
        interpolate(jnp.ones(2), jnp.zeros(2), 3, "Linear")
    with pytest.raises(ValueError, match=r"^generator must be 'raw' or 'ema', got 'EMA'$"):
        sample_images(None, None, 4, 0, 0.0, "EMA")


def test_check_generator_refuses_what_a_run_cannot_serve():
    from jaxgan.config import ConfigError
    from jaxgan.sampling import check_generator

    check_generator("raw", 0.0)
    check_generator("ema", 0.999)
    with pytest.raises(ConfigError, match=r"^--generator=ema: the run keeps no moving average of G \(its ema_decay is 0\)$"):
        check_generator("ema", 0.0)
    with pytest.raises(ConfigError, match=r"^--generator=EMA: expected one of raw, ema$"):
        check_generator("EMA", 0.999)
