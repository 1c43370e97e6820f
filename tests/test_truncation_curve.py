"""scripts/truncation_curve.py: a finished run reloaded from its workdir gives, untruncated, exactly its
eval.json, and truncated noise changes the samples; bad workdirs are refused in one line."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from forked_cli import run_commands

from jaxgan.config import ConfigError
from jaxgan.train import train_and_evaluate
from scripts.notes import evaluate_at, load_run
from test_image_runs import digits_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_untruncated_curve_point_is_the_runs_evaluation(tmp_path):
    result = train_and_evaluate(digits_config(num_steps=10), str(tmp_path / "run"), echo=lambda _: None)
    config, task, game, state, step = load_run(tmp_path / "run")
    assert step == 10
    summary, samples = evaluate_at(config, task, game, state, 0.0)
    for key in ("fid", "kid", "inception_score", "precision", "recall"):
        assert summary[key] == pytest.approx(result[key], rel=1e-5), key
    saved = np.load(tmp_path / "run" / "samples" / "step_00000010.npy")
    np.testing.assert_allclose(samples, saved, atol=1e-6)
    truncated, truncated_samples = evaluate_at(config, task, game, state, 0.5)
    assert not np.allclose(truncated_samples, samples, atol=1e-3)


def test_with_an_ema_the_curve_samples_the_average(tmp_path):
    """BigGAN samples and truncates the averaged G: with an EMA the samples are the EMA's on the truncated noise
    (the run's own figure shows G's), and the summary has the EMA's metrics beside G's."""
    from jaxgan.data.images import to_unit_range
    from jaxgan.metrics.evaluations import eval_noise, generate_ema

    train_and_evaluate(digits_config(num_steps=10, ema_decay=0.5), str(tmp_path / "run"), echo=lambda _: None)
    config, task, game, state, _ = load_run(tmp_path / "run")
    summary, samples = evaluate_at(config, task, game, state, 0.5)
    expected = to_unit_range(generate_ema(game, state, eval_noise(game, state, config.eval_num_samples, 0.5)))
    np.testing.assert_allclose(samples, np.asarray(expected), atol=1e-6)
    saved = np.load(tmp_path / "run" / "samples" / "step_00000010.npy")  # G's, untruncated
    assert not np.allclose(samples, saved, atol=1e-3)
    assert {"fid", "ema_fid"} <= set(summary)


def test_the_script_writes_the_curve(tmp_path):
    result = train_and_evaluate(digits_config(num_steps=10), str(tmp_path / "run"), echo=lambda _: None)
    args = [sys.executable, "scripts/truncation_curve.py", f"--workdir={tmp_path / 'run'}", "--truncations=0,1"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    assert "ψ=0: fid" in out and "ψ=1: fid" in out
    assert (tmp_path / "run" / "truncation.png").exists() and (tmp_path / "run" / "truncation_samples.png").exists()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary) == {"0.0", "1.0"}
    for key in ("fid", "kid", "inception_score", "precision", "recall"):  # ψ = 0 is the run's own evaluation
        assert summary["0.0"][key] == pytest.approx(result[key], rel=1e-5), key
    assert summary["1.0"]["fid"] != pytest.approx(result["fid"], rel=1e-5)


def test_a_workdir_without_a_run_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r": no config.json; give the workdir of a run started by jaxgan.main"):
        load_run(tmp_path)


def test_the_scripts_refuse_bad_input_in_one_line_before_evaluating(tmp_path):
    """Bad ψ values are refused before the (long) evaluations start; a missing run is one line, not a traceback."""
    cases = {
        ("scripts/truncation_curve.py", f"--workdir={tmp_path}", "--truncations=0,abc"): "--truncations=0,abc: must be numbers ψ >= 0",
        ("scripts/truncation_curve.py", f"--workdir={tmp_path}", "--truncations=-1"): "--truncations=-1: must be finite numbers ψ >= 0",
        ("scripts/truncation_curve.py", f"--workdir={tmp_path}"): f"--workdir={tmp_path}: no config.json",
        ("scripts/lapgan_levels.py", f"--workdir={tmp_path}"): f"--workdir={tmp_path}: no config.json",
        ("scripts/lapgan_coarse_level.py", f"--workdir={tmp_path}"): f"--workdir={tmp_path}: no config.json",
        ("scripts/remeasure_mixture.py", f"--workdir={tmp_path}"): f"--workdir={tmp_path}: no config.json",
    }
    results = run_commands({" ".join(args): list(args) for args in cases}, cwd=str(ROOT))
    for args, expected in cases.items():
        code, out, err = results[" ".join(args)]
        lines = err.strip().splitlines()
        assert code == 2 and "Traceback" not in out + err, (args, err)
        assert len(lines) == 1 and lines[0].startswith(f"error: {expected}"), (args, err)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_remeasure_refuses_the_ema_of_a_run_without_one_before_restoring(tmp_path):
    """A run with no EMA and no checkpoint: the --generator error comes first, as nothing needs restoring for it."""
    from jaxgan.config import default_config
    from jaxgan.train import CONFIG_FILE, write_json

    write_json(tmp_path / CONFIG_FILE, default_config().to_dict())  # ema_decay 0
    done = subprocess.run([sys.executable, "scripts/remeasure_mixture.py", f"--workdir={tmp_path}", "--generator=ema"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: --generator=ema: the run keeps no moving average of G (its ema_decay is 0)"
    ), done.stderr
