"""scripts/recount_stacked_modes.py: at the run's own sample size the count is exactly its eval.json; with batch
statistics it is the count an independent numpy reading of G's train-mode samples gives; bad input is one line."""

import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from forked_cli import run_commands

from jaxgan.config import load_config_file
from jaxgan.train import train_and_evaluate, write_json
from test_image_runs import digits_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = [sys.executable, "scripts/recount_stacked_modes.py"]
LINE = re.compile(r"step (\d+)  (\d+) samples: modes (\d+)  kl ([\d.]+)  \|  G with batch statistics of (\d+): modes (\d+)  kl ([\d.]+)$")


def tiny_stacked_config():
    config = load_config_file(ROOT / "experiments/stacked_mnist_paper.py")
    config.unroll_steps, config.batch_size, config.z_dim = 0, 16, 8
    config.num_steps, config.log_every_steps, config.eval_every_steps = 6, 3, 3
    config.checkpoint_every_steps, config.steps_per_dispatch, config.eval_num_samples = 3, 3, 96
    return config


def assert_one_line_errors(script: list[str], cases: dict[str, list[str]]) -> None:
    """Runs `script` (`[python, FILE]`) with each case's arguments, each in its own process: exit 2, a one-line error
    starting with the case's key on stderr, and nothing on stdout (nothing read or printed before the bad input was
    found)."""
    assert script[0] == sys.executable
    results = run_commands({start: [*script[1:], *args] for start, args in cases.items()}, cwd=str(ROOT))
    for start, (code, out, err) in results.items():
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and err.startswith(start), err
        assert out == ""


@pytest.fixture(scope="module")
def stacked_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("recount") / "run"
    result = train_and_evaluate(tiny_stacked_config(), str(workdir), echo=lambda _: None)
    return workdir, result


def numpy_count(workdir: pathlib.Path, num_samples: int, batch: int) -> tuple[int, float]:
    """Modes and KL of G's train-mode samples on the run's evaluation noise, G normalising each consecutive batch
    of `batch` by its own statistics, counted with numpy."""
    from jaxgan.conditioning import data_of
    from jaxgan.game import generate
    from jaxgan.metrics.classifier import load_classifier
    from jaxgan.metrics.evaluations import eval_generator_key, eval_noise
    from scripts.notes import load_run

    config, _, game, state, _ = load_run(workdir)
    z = eval_noise(game, state, num_samples)
    draw = lambda zb: data_of(generate(game, state.g_params, state.g_model_state, zb, train=True, key=eval_generator_key(state))[0])
    samples = np.concatenate([np.asarray(draw(z[i : i + batch])) for i in range(0, num_samples, batch)])
    classify, _ = load_classifier("mnist_5k", (28, 28, 1))
    digits = np.stack([np.argmax(np.asarray(classify(samples[..., c : c + 1])[0]), -1) for c in range(3)])
    _, counts = np.unique(digits[0] * 100 + digits[1] * 10 + digits[2], return_counts=True)
    p = counts / counts.sum()
    return len(counts), float(np.sum(p * np.log(p * 1000)))


def test_counts_match_the_runs_evaluation_and_a_numpy_count(stacked_run):
    workdir, result = stacked_run
    out = subprocess.run(
        [*SCRIPT, f"--workdirs={workdir}", "--num_samples=96", "--batch_statistics=48"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    step, samples, modes, kl, batch, batch_modes, batch_kl = LINE.search(out.strip()).groups()
    assert (int(step), int(samples), int(batch)) == (6, 96, 48)
    saved = json.loads((workdir / "eval.json").read_text())
    assert int(modes) == saved["modes"] == result["modes"]
    assert float(kl) == pytest.approx(saved["kl"], abs=5e-4)  # printed to 3 decimals
    expected_modes, expected_kl = numpy_count(workdir, 96, batch=48)  # two batches, each by its own statistics
    assert int(batch_modes) == expected_modes
    assert float(batch_kl) == pytest.approx(expected_kl, abs=5e-4)


def test_fid_kid_is_precision_recall_are_those_of_the_channels_features_and_the_triples(stacked_run):
    """A stacked run's eval.json also has FID, KID, IS, precision and recall: the channels' classifier features
    concatenated (R, G, B) against a fixed draw of held-out triples, and the IS over the 1000 triples with
    p(triple | x) the product of the channels' digit probabilities (computed here with numpy)."""
    import jax
    import jax.numpy as jnp

    from jaxgan.data.images import stacked_mnist_batch, to_model_range
    from jaxgan.metrics import image
    from jaxgan.metrics.classifier import load_classifier
    from scripts.notes import load_run

    workdir, result = stacked_run
    _, task, _, _, _ = load_run(workdir)
    classify, _ = load_classifier("mnist_5k", (28, 28, 1))

    def read(images):  # [n, 28, 28, 3] in [-1, 1] -> (features [n, 3d], p(digit) per channel [3, n, 10])
        outputs = [classify(jnp.asarray(images[..., c : c + 1])) for c in range(3)]
        features = np.concatenate([np.asarray(f) for _, f in outputs], axis=1)
        return features, np.stack([np.asarray(jax.nn.softmax(l)) for l, _ in outputs])

    samples = np.load(workdir / "samples" / "step_00000006.npy") * 2 - 1
    triples, _ = stacked_mnist_batch(jax.random.key(0), task.data.info.test_images, task.data.info.test_labels, 96)
    reference, _ = read(np.asarray(to_model_range(triples)))
    features, p = read(samples)
    d = np.asarray(classify(jnp.zeros((1, 28, 28, 1)))[1]).shape[1]
    assert features.shape == reference.shape == (96, 3 * d)
    p_triple = np.einsum("na,nb,nc->nabc", *p).reshape(96, 1000)  # index 100 d_R + 10 d_G + d_B
    scores = []
    for s in range(10):  # split s: samples [floor(96 s / 10), floor(96 (s + 1) / 10))
        split = p_triple[96 * s // 10 : 96 * (s + 1) // 10]
        marginal = split.mean(0)
        scores.append(np.exp(np.mean(np.sum(split * (np.log(split + 1e-30) - np.log(marginal + 1e-30)), axis=1))))
    assert result["inception_score"] == pytest.approx(float(np.mean(scores)), rel=1e-3)
    assert result["fid"] == pytest.approx(float(image.fid_from_features(reference, features)), rel=1e-3)
    precision, recall = image.precision_recall_from_features(reference, features, k=3)
    assert (result["precision"], result["recall"]) == pytest.approx((float(precision), float(recall)), abs=1e-6)
    kid = image.kid_from_features(reference, features, num_subsets=50, subset_size=96)
    assert result["kid"] == pytest.approx(float(kid), rel=1e-3, abs=1e-6)
    assert result["fid"] > 0 and 1.0 <= result["inception_score"] <= 1000.0


def test_more_samples_count_at_least_as_many_modes(stacked_run):
    """The first 96 of a draw of 192 are the run's own 96 (the evaluation noise is one stream): a larger draw can
    only add triples."""
    from jaxgan.metrics.evaluations import eval_noise
    from scripts.notes import load_run

    workdir, result = stacked_run
    _, _, game, state, _ = load_run(workdir)
    np.testing.assert_array_equal(eval_noise(game, state, 192)[:96], eval_noise(game, state, 96))
    out = subprocess.run(
        [*SCRIPT, f"--workdirs={workdir}", "--num_samples=192", "--batch_statistics=96"], cwd=ROOT, capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip
    assert int(LINE.search(out.strip()).group(3)) >= result["modes"]


def test_further_draws_are_counted_on_their_own_noise(stacked_run):
    """Draw d counts G's evaluation-mode samples on the noise of the run key folded with d, as a numpy reading of
    them gives; draw 0 is the run's own count; the last line is their mean and standard deviation."""
    import jax

    from jaxgan.conditioning import data_of
    from jaxgan.game import generate
    from jaxgan.metrics.classifier import load_classifier
    from jaxgan.metrics.evaluations import eval_generator_key, eval_noise
    from scripts.notes import load_run

    workdir, result = stacked_run
    out = subprocess.run([*SCRIPT, f"--workdirs={workdir}", "--num_samples=96", "--draws=3"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()  # fmt: skip
    assert len(out) == 4 and f"modes {result['modes']}  " in out[0]
    _, _, game, state, _ = load_run(workdir)
    classify, _ = load_classifier("mnist_5k", (28, 28, 1))
    expected = []
    for draw in (0, 1, 2):
        drawn = state.replace(key=jax.random.fold_in(state.key, draw)) if draw else state
        z = eval_noise(game, drawn, 96)
        samples = data_of(generate(game, drawn.g_params, drawn.g_model_state, z, train=False, key=eval_generator_key(drawn))[0])
        digits = np.stack([np.argmax(np.asarray(classify(samples[..., c : c + 1])[0]), -1) for c in range(3)])
        expected.append(len(np.unique(digits[0] * 100 + digits[1] * 10 + digits[2])))
    assert expected[0] == result["modes"]
    for draw in (1, 2):
        assert f"96 samples, draw {draw}: modes {expected[draw]}  " in out[draw]
    assert f"over 3 draws: modes {np.mean(expected):.1f} ± {np.std(expected):.1f}  " in out[3]


def test_the_ema_of_g_is_counted_beside_g_on_every_draw(tmp_path):
    import re

    config = tiny_stacked_config()
    config.ema_decay = 0.9
    result = train_and_evaluate(config, str(tmp_path / "run"), echo=lambda _: None)
    out = subprocess.run([*SCRIPT, f"--workdirs={tmp_path / 'run'}", "--num_samples=96", "--draws=3"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()  # fmt: skip
    assert len(out) == 4
    assert out[0].endswith(f"modes {result['modes']}  kl {result['kl']:.3f}  |  ema: modes {result['ema_modes']}  "
                           f"kl {result['ema_kl']:.3f}")  # fmt: skip
    per_draw = [re.search(r": modes (\d+)  kl (\S+)  \|  ema: modes (\d+)  kl (\S+)$", line).groups() for line in out[:3]]
    g, ema = np.array([d[0] for d in per_draw], float), np.array([d[2] for d in per_draw], float)
    assert f"over 3 draws: modes {g.mean():.1f} ± {g.std():.1f}  " in out[3]
    assert f"|  ema: modes {ema.mean():.1f} ± {ema.std():.1f}  kl " in out[3]


def test_bad_input_is_one_line(stacked_run, tmp_path):
    workdir, _ = stacked_run
    (tmp_path / "digits").mkdir()  # a run's config is all the check reads
    write_json(tmp_path / "digits" / "config.json", digits_config().to_dict())
    cases = {
        "error: --batch_statistics=64: must divide --num_samples=96 (whole batches)": [f"--workdirs={workdir}", "--num_samples=96", "--batch_statistics=64"],
        f"error: --workdirs={tmp_path / 'digits'}: a run on stacked_mnist data is needed, not 'digits'": [f"--workdirs={workdir},{tmp_path / 'digits'}"],
        f"error: --workdirs={tmp_path / 'none'}: no config.json": [f"--workdirs={tmp_path / 'none'}"],
    }  # fmt: skip
    assert_one_line_errors(SCRIPT, cases)
