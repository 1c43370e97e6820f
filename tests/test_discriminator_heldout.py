"""scripts/discriminator_heldout.py: held-out batches hold only held-out images (Stacked MNIST: three held-out
digits), r_v and the mean D(x) against their closed forms, the printed lines against the run's own D applied by
hand (separate, mixed and evaluation-mode batches), bad input one line."""

import json
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxgan.train import train_and_evaluate, write_json
from test_image_runs import digits_config
from test_recount_stacked_modes import assert_one_line_errors, tiny_stacked_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = [sys.executable, "scripts/discriminator_heldout.py"]
LINE = re.compile(
    r"step (\d+):  D\(x\) training ([\d.]+)  held-out ([\d.]+)  generated ([\d.]+)  \|  "
    r"logits (-?[\d.]+) / (-?[\d.]+) / (-?[\d.]+)  r_v (-?[\d.]+|nan)$", re.MULTILINE
)
MIXED = re.compile(r"one batch of half training, half generated: D\(x\) ([\d.]+) / ([\d.]+)  \|  running averages: "
                   r"D\(x\) training ([\d.]+)  held-out ([\d.]+)  generated ([\d.]+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def stacked_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("heldout") / "run"
    train_and_evaluate(tiny_stacked_config(), str(workdir), echo=lambda _: None)
    return workdir


def test_stacked_heldout_batches_are_three_heldout_digits(stacked_run):
    from jaxgan.data.images import to_model_range
    from scripts.discriminator_heldout import heldout_sampler
    from scripts.notes import load_run

    config, task, _, _, _ = load_run(stacked_run)
    data = task.data.info
    batch = np.asarray(heldout_sampler(config, task)(jax.random.key(3), 64))
    assert batch.shape == (64, 28, 28, 3)
    test = np.asarray(to_model_range(data.test_images))[..., 0].reshape(len(data.test_images), -1)
    train = np.asarray(to_model_range(data.train_images))[..., 0].reshape(len(data.train_images), -1)
    channels = np.moveaxis(batch, -1, 1).reshape(64 * 3, -1)
    for channel in channels:
        assert np.any(np.all(test == channel, axis=1))
        assert not np.any(np.all(train == channel, axis=1))
    assert len({c.tobytes() for c in channels}) > 150  # drawn, not one digit repeated


def test_summary_closed_forms():
    from scripts.discriminator_heldout import summarize

    train, generated = np.full((2, 3), 2.0), np.full((2, 3), -4.0)
    as_train = summarize({"train": train, "held_out": train.copy(), "generated": generated})
    assert as_train["r_v"] == 0.0
    assert as_train["d_train"] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert summarize({"train": train, "held_out": generated.copy(), "generated": generated})["r_v"] == 1.0
    halfway = summarize({"train": train, "held_out": np.full((2, 3), -1.0), "generated": generated})
    assert halfway["r_v"] == pytest.approx(0.5)
    mixed = summarize({"train": np.array([[0.0, np.log(3.0)]]), "held_out": train, "generated": generated})
    assert mixed["d_train"] == pytest.approx((0.5 + 0.75) / 2)  # mean of D(x), not D of the mean logit


def test_printed_line_is_the_runs_discriminator(stacked_run, tmp_path):
    """The script's numbers against D applied by hand (train-mode batch norm, one call per batch) to the same
    draws."""
    from jaxgan.game import discriminate, generate
    from scripts.notes import load_run

    out = subprocess.run(
        [*SCRIPT, f"--workdirs={stacked_run}", "--num_batches=2", "--steps=6", f"--json={tmp_path / 'r.json'}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    step, d_train, d_heldout, d_generated, *_ = LINE.search(out).groups()
    mixed_train, mixed_generated, eval_train, eval_heldout, eval_generated = map(float, MIXED.search(out).groups())
    assert int(step) == 6
    config, task, game, state, _ = load_run(stacked_run, None, 6)
    from scripts.discriminator_heldout import heldout_sampler

    def d_of(x, train=True):
        logits = np.asarray(discriminate(game, state.d_params, state.d_model_state, x, train=train)[0], np.float64)
        return 1 / (1 + np.exp(-logits.reshape(-1)))

    expected = {name: [] for name in ("train", "held_out", "generated", "mixed_train", "mixed_generated")}
    expected.update({f"eval_{name}": [] for name in ("train", "held_out", "generated")})
    for b in range(2):
        data_key, heldout_key, noise_key, g_key = jax.random.split(jax.random.fold_in(jax.random.key(0), b), 4)
        fake, _ = generate(game, state.g_params, state.g_model_state, game.sample_noise(noise_key, 16), key=g_key)
        real = task.data.sample(data_key, 16)
        for name, x in (("train", real), ("held_out", heldout_sampler(config, task)(heldout_key, 16)), ("generated", fake)):
            expected[name].append(d_of(x))
            expected[f"eval_{name}"].append(d_of(x, train=False))
        mixed = d_of(np.concatenate([real[:8], fake[:8]]))
        expected["mixed_train"].append(mixed[:8])
        expected["mixed_generated"].append(mixed[8:])
    assert float(d_train) == pytest.approx(np.mean(expected["train"]), abs=1e-4)
    assert float(d_heldout) == pytest.approx(np.mean(expected["held_out"]), abs=1e-4)
    assert float(d_generated) == pytest.approx(np.mean(expected["generated"]), abs=1e-4)
    assert mixed_train == pytest.approx(np.mean(expected["mixed_train"]), abs=1e-4)
    assert mixed_generated == pytest.approx(np.mean(expected["mixed_generated"]), abs=1e-4)
    assert eval_train == pytest.approx(np.mean(expected["eval_train"]), abs=1e-4)
    assert eval_heldout == pytest.approx(np.mean(expected["eval_held_out"]), abs=1e-4)
    assert eval_generated == pytest.approx(np.mean(expected["eval_generated"]), abs=1e-4)
    # batch statistics: the mixed batch's real half is not D's output on the all-real batch's first half
    assert not np.allclose(np.concatenate(expected["mixed_train"]), np.concatenate([e[:8] for e in expected["train"]]))
    saved = json.loads((tmp_path / "r.json").read_text())
    assert [r["step"] for r in saved] == [6] and saved[0]["d_train"] == pytest.approx(float(d_train), abs=1e-4)


def test_bad_input_is_one_line(stacked_run, tmp_path):
    ring = tmp_path / "ring"
    ring.mkdir()  # a run's config is all the check reads
    config = digits_config()
    config.data.name = "ring"
    write_json(ring / "config.json", config.to_dict())
    cases = {
        f"error: --workdirs={ring}: needs a run on image data with a held-out split, not 'ring'": [f"--workdirs={stacked_run},{ring}"],
        f"error: --steps=7: {stacked_run} has no checkpoint of that step (it has [3, 6])": [f"--workdirs={stacked_run}", "--steps=7"],
        f"error: --workdirs={tmp_path / 'none'}: no config.json": [f"--workdirs={tmp_path / 'none'}"],
    }  # fmt: skip
    assert_one_line_errors(SCRIPT, cases)
