"""Every bad input ends with exit code 2 and one line on stderr naming the flag and what is allowed."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from forked_cli import run_commands

ROOT = pathlib.Path(__file__).resolve().parents[1]
RING = "--config=experiments/ring8.py"

# (arguments, pattern the single stderr line must contain)
CASES = {
    "negative_steps": ([RING, "--workdir={w}", "--config.num_steps=-5"], "--config.num_steps=-5: must be a positive integer"),
    "zero_batch": ([RING, "--workdir={w}", "--config.batch_size=0"], "--config.batch_size=0: must be a positive integer"),
    "unknown_loss": ([RING, "--workdir={w}", "--config.loss=minmax"], "--config.loss='minmax': unknown value; allowed: began, ebgan, f_gan,"),
    "unknown_rule": ([RING, "--workdir={w}", "--config.update_rule=unroled"], "allowed: alternating, consensus, extragradient, optimistic, sga, simultaneous, unrolled (did you mean 'unrolled'?)"),
    "unknown_key": ([RING, "--workdir={w}", "--config.unroll_step=3"], "--config.unroll_step: unknown config key (did you mean --config.unroll_steps?)"),
    "unknown_nested_key": ([RING, "--workdir={w}", "--config.data.nme=grid"], "--config.data.nme: unknown config key (did you mean --config.data.name?)"),
    "unknown_flag": ([RING, "--workdir={w}", "--wrkdir=x"], "--wrkdir: unknown flag; allowed: --config, --workdir, --coordinator_address, --num_processes, --process_id, --branch_from, --branch_step, --config.KEY (did you mean --workdir?)"),
    "type_error": ([RING, "--workdir={w}", "--config.num_steps=abc"], "--config.num_steps=abc"),
    "float_for_int": ([RING, "--workdir={w}", "--config.batch_size=1.5"], "--config.batch_size=1.5"),
    "missing_config": (["--workdir={w}"], "--config is required"),
    "config_not_found": (["--config=experiments/nope.py", "--workdir={w}"], "--config=experiments/nope.py: no such file"),
    "config_syntax_error": (["--config={bad}", "--workdir={w}"], "could not load it (SyntaxError"),
    "config_without_get_config": (["--config={empty}", "--workdir={w}"], "could not load it (AttributeError"),
    "config_raises": (["--config={raises}", "--workdir={w}"], "--config={raises}: could not load it (ValueError: no such experiment)"),
    "config_raises_os_error": (["--config={oserror}", "--workdir={w}"], "--config={oserror}: could not load it (OSError: disk gone)"),
    "config_not_a_config": (["--config={number}", "--workdir={w}"], "--config: get_config() must return an ml_collections.ConfigDict, got int"),
    "config_twice_last_missing": ([RING, "--config=experiments/nope.py", "--workdir={w}"], "--config=experiments/nope.py: no such file"),
    "config_argument": (["--config=experiments/ring8.py:large", "--workdir={w}"], "--config=experiments/ring8.py:large: could not load it (TypeError: get_config() takes 0 positional arguments but 1 was given)"),
    "missing_workdir": ([RING], "--workdir is required"),
    "workdir_is_a_file": ([RING, "--workdir=pyproject.toml"], "--workdir=pyproject.toml: exists and is not a directory"),
    "grid_not_square": ([RING, "--workdir={w}", "--config.data.name=grid", "--config.data.num_modes=24"], "--config.data.num_modes=24: a grid needs a perfect square"),
    "unknown_mixture": ([RING, "--workdir={w}", "--config.data.name=rng"], "allowed: digits, dirac, grid, image_folder, mnist_5k, ring, stacked_mnist, tfds:NAME (did you mean 'ring'?)"),
    "tfds_without_a_name": ([RING, "--workdir={w}", "--config.data.name=tfds"], "--config.data.name='tfds': name a prepared TFDS data set, e.g. tfds:mnist"),
    "adam_not_differentiable": ([RING, "--workdir={w}", "--config.unroll_eps_root=0.0"], "--config.unroll_eps_root=0.0: the unrolled rule differentiates through D's Adam, and d/dv √(v + eps_root) is infinite at v = 0"),
    "d_eps_root_under_unroll": ([RING, "--workdir={w}", "--config.d_optimizer.eps_root=1e-08"], "--config.d_optimizer.eps_root=1e-08: the unrolled rule builds D's Adam with --config.unroll_eps_root instead"),
    "bad_beta": ([RING, "--workdir={w}", "--config.g_optimizer.b1=1.0"], "--config.g_optimizer.b1=1.0: must be in [0, 1)"),
    "unknown_activation": ([RING, "--workdir={w}", "--config.generator.activation=rellu"], "(did you mean 'relu'?)"),
    "unknown_penalty": ([RING, "--workdir={w}", "--config.penalty=gradient_penalty"], "--config.penalty='gradient_penalty': unknown value; allowed: dragan, nagarajan_kolter, none, r1, r2, wgan_gp"),
    "ema_decay_one": ([RING, "--workdir={w}", "--config.ema_decay=1.0"], "--config.ema_decay=1.0: must be in [0, 1)"),
    "negative_penalty_weight": ([RING, "--workdir={w}", "--config.penalty_weight=-1.0"], "--config.penalty_weight=-1.0: must be >= 0"),
    "unsweepable_key": ([RING, "--workdir={w}", "--config.sweep_key=d_optimizer.learning_rat", "--config.sweep_values=(1e-4,)"], "not sweepable; allowed: g_optimizer.learning_rate, d_optimizer.learning_rate, g_optimizer.b1, d_optimizer.b1, penalty_weight, weight_clip, consensus_gamma, sga_lambda, g_optimizer.eps_root, unroll_eps_root, class_loss_weight, info.weight, info.continuous_weight (did you mean 'd_optimizer.learning_rate'?)"),
    "sweep_without_values": ([RING, "--workdir={w}", "--config.sweep_key=penalty_weight"], "--config.sweep_values=(): must be a non-empty tuple of finite numbers"),
    "sweep_values_without_key": ([RING, "--workdir={w}", "--config.sweep_values=(1.0, 2.0)"], "set --config.sweep_key to the hyperparameter to sweep"),
    "repeated_swept_value": ([RING, "--workdir={w}", "--config.sweep_key=d_optimizer.learning_rate", "--config.sweep_values=(1e-4, 1e-3, 1e-4)"], "--config.sweep_values=(0.0001, 0.001, 0.0001): 0.0001 is given twice; give each value once"),
    "bad_swept_value": ([RING, "--workdir={w}", "--config.sweep_key=d_optimizer.learning_rate", "--config.sweep_values=(1e-4, -1.0)"], "--config.sweep_values: --config.d_optimizer.learning_rate=-1.0: must be > 0"),
    "evaluation_misfit": ([RING, "--workdir={w}", "--config.data.name=digits"], "--config.evaluations: 'mixture' needs a mixture data set (ring, grid), not 'digits'"),
    "missing_image_folder": ([RING, "--workdir={w}", "--config.data.name=image_folder", "--config.data.path={w}/nope"], "--config.data.path='{w}/nope': image folder '{w}/nope' is not a directory"),
    "unprepared_tfds": ([RING, "--workdir={w}", "--config.data.name=tfds:mnist", "--config.data.data_dir={w}"], "--config.data.name='tfds:mnist' (--config.data.data_dir='{w}'): TFDS data set 'mnist' is not prepared in data_dir '{w}'"),
    "model_misfit": ([RING, "--workdir={w}", "--config.generator.name=dcgan"], "--config.generator.name='dcgan': for [H, W, C] images, but data set 'ring' has examples of shape (2,); use --config.generator.name=mlp"),
    "unread_rule_setting": ([RING, "--workdir={w}", "--config.consensus_gamma=2"], "--config.consensus_gamma=2.0: has no effect in this config; it needs --config.update_rule=consensus"),
    "unread_conditioning_setting": ([RING, "--workdir={w}", "--config.info.weight=0.5"], "--config.info.weight=0.5: has no effect in this config; it needs --config.conditioning=infogan"),
    "stray_argument": ([RING, "--workdir={w}", "extra"], "unexpected argument 'extra'"),
    "override_without_config": (["--config.batch_size=4", "--workdir={w}"], "--config.batch_size: an override of --config, which is not given; give --config=FILE first (an experiment file, e.g. experiments/ring8.py)"),
    "section_as_setting": ([RING, "--workdir={w}", "--config.data=ring"], "--config.data: a section of the config, not a setting; give one of its keys, e.g. --config.data.name"),
    "unread_model_setting": ([RING, "--workdir={w}", "--config.generator.base_width=64"], "--config.generator.base_width=64: generator 'mlp' does not read it (it is dcgan, lapgan, resnet, stylegan2's setting)"),
    "d_not_one_logit_per_example": (["--config=experiments/dcgan_digits.py", "--workdir={w}", "--config.discriminator.name=linear"], "--config.discriminator.name='linear': gives logits of shape (2, 8, 8) for 2 examples of shape (8, 8, 1); a discriminator gives one logit per example, [batch] (or [batch, K]: one per level of a pyramid)"),
    "empty_widths": (["--config=experiments/stacked_mnist_paper.py", "--workdir={w}", "--config.generator.widths=()"], "--config.generator.widths=(): must be a non-empty tuple of positive integers"),
    "attention_resolution_of_no_layer": (["--config=experiments/dcgan_digits.py", "--workdir={w}", "--config.generator.attention_resolution=8"], "--config.generator.attention_resolution=8: DCGANGenerator: attention_resolution=8 matches no block output; valid resolutions for this image size: 2, 4 (0: no attention)"),
    "d_attention_resolution_of_no_layer": (["--config=experiments/sngan_mnist.py", "--workdir={w}", "--config.discriminator.attention_resolution=3"], "--config.discriminator.attention_resolution=3: ResNetDiscriminator: attention_resolution=3 matches no block output"),
    "workdir_checkpoints_is_a_file": ([RING, "--workdir={blocked}"], "--workdir={blocked}: cannot make {blocked}/checkpoints (File exists)"),
}


def config_files(tmp: pathlib.Path) -> dict[str, pathlib.Path]:
    return {"blocked": tmp / "blocked", **{name: tmp / f"{name}.py" for name in ("bad", "empty", "raises", "oserror", "number")}}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_input")
    (tmp / "bad.py").write_text("def get_config(:\n")
    (tmp / "empty.py").write_text("x = 1\n")
    (tmp / "raises.py").write_text("def get_config():\n    raise ValueError('no such experiment')\n")
    (tmp / "oserror.py").write_text("def get_config():\n    raise OSError('disk gone')\n")
    (tmp / "number.py").write_text("def get_config():\n    return 5\n")
    (tmp / "blocked").mkdir()
    (tmp / "blocked" / "checkpoints").write_text("a file where the run's checkpoints go")
    commands = {name: ["-m", "jaxgan.main", *(a.format(w=tmp / name, **config_files(tmp)) for a in args)] for name, (args, _) in CASES.items()}
    results = run_commands(commands, cwd=str(ROOT))
    return tmp, results


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_clear_line(outcomes, name):
    tmp, results = outcomes
    code, out, err = results[name]
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert CASES[name][1].format(w=tmp / name, **config_files(tmp)) in lines[0]
    assert "Traceback" not in err + out
    assert not (tmp / name).exists()  # nothing was written, not even the workdir


def test_a_relative_data_path_is_the_folder_it_named_when_the_run_started(tmp_path):
    """`--config.data.path=imgs` saved as typed would make the same command, run from another folder, resume on
    other images (or fail on their shape, blaming the checkpoints); it is saved absolute, so that is refused."""
    from PIL import Image

    for place, count in (("first", 12), ("second", 3)):
        (tmp_path / place / "imgs").mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.full((8, 8), 20 * i, np.uint8), mode="L").save(tmp_path / place / "imgs" / f"{i}.png")
    command = [
        sys.executable, "-m", "jaxgan.main", f"--config={ROOT / 'experiments/dcgan_digits.py'}", "--config.data.name=image_folder",
        "--config.data.path=imgs", "--config.evaluations=('samples',)", "--config.batch_size=4", "--config.eval_num_samples=4",
        "--config.steps_per_dispatch=2", f"--workdir={tmp_path / 'run'}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run([*command, "--config.num_steps=2"], cwd=tmp_path / "first", capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["data"]["path"]
    assert saved == str(tmp_path / "first" / "imgs")
    again = subprocess.run([*command, "--config.num_steps=4"], cwd=tmp_path / "second", capture_output=True, text=True, env=env)
    assert again.returncode == 2 and again.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'run'} holds checkpoints of a run with another config (data.path: {saved!r} → "
        f"{str(tmp_path / 'second' / 'imgs')!r}; saved in {tmp_path / 'run' / 'config.json'}): rerun with the same flags "
        "to resume it, or use a new --workdir"
    ], again.stderr[-2000:]
