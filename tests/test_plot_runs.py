"""scripts/plot_runs.py: a workdir that is not a jaxgan run, flags that would draw less than asked, or a figure
matplotlib cannot write (here and in the other scripts) are refused in one line naming the flag (exit 2); a sweep is
drawn run by run."""

import os
import subprocess
import sys

from forked_cli import run_commands


def test_a_workdir_without_a_config_is_refused_in_one_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "eval/modes": 3}\n')
    args = [sys.executable, "scripts/plot_runs.py", f"--runs=a={tmp_path}", f"--out={tmp_path / 'runs.png'}"]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 2
    last = (result.stdout + result.stderr).strip().splitlines()[-1]
    assert last == f"error: --runs={tmp_path}: no config.json; give the workdir of a run started by jaxgan.main"
    assert not (tmp_path / "runs.png").exists()
    (tmp_path / "metrics.jsonl").unlink()
    result = subprocess.run(args, capture_output=True, text=True)
    last = (result.stdout + result.stderr).strip().splitlines()[-1]
    assert last == f"error: --runs: {tmp_path} has no metrics.jsonl; give the workdir of a jaxgan run"


def _last_line(args):
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 2
    return (result.stdout + result.stderr).strip().splitlines()[-1]


def test_a_metric_no_run_logged_is_refused_in_one_line(tmp_path):
    from jaxgan.config import default_config
    from jaxgan.train import write_json

    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "eval/modes": 3}\n')
    write_json(tmp_path / "config.json", default_config().to_dict())
    args = [sys.executable, "scripts/plot_runs.py", f"--runs=a={tmp_path}", f"--out={tmp_path / 'runs.png'}"]
    assert _last_line(args + ["--metrics=eval/modes,eval/mode"]) == "error: --metrics: eval/mode logged by none of the runs"
    assert not (tmp_path / "runs.png").exists()


def test_a_sweep_is_drawn_as_one_line_and_one_samples_panel_per_run(tmp_path):
    import numpy as np

    from jaxgan.config import default_config
    from jaxgan.train import write_json

    config = default_config()
    config.seed, config.num_seeds = 3, 2
    write_json(tmp_path / "config.json", config.to_dict())
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 10, "eval/modes": 6.5, "eval/modes/per_seed": [5, 8]}\n'
        '{"step": 20, "eval/modes": 7.5, "eval/modes/per_seed": [8, 7]}\n{"step": 20, "d_loss": 1.0}\n'
    )
    (tmp_path / "samples").mkdir()
    np.save(tmp_path / "samples" / "step_00000020.npy", np.zeros((2, 50, 2), np.float32))
    args = [sys.executable, "scripts/plot_runs.py", f"--runs=sweep={tmp_path}", f"--out={tmp_path / 'runs.png'}",
            "--metrics=eval/modes"]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["sweep seed 3: modes 8 at 20", "sweep seed 4: modes 7 at 20"]
    assert (tmp_path / "runs.png").stat().st_size > 0
    # A metric that a sweep logs only as the runs' mean (a loss) is one line, and beside the per-run ones.
    result = subprocess.run(args[:-1] + ["--metrics=eval/modes,d_loss"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        "sweep seed 3: modes 8 at 20", "sweep seed 4: modes 7 at 20", "sweep mean: d_loss 1 at 20"
    ]  # fmt: skip
    assert (tmp_path / "runs.png").stat().st_size > 0


def test_bad_references_and_a_run_with_none_of_the_metrics_are_refused_in_one_line(tmp_path):
    from jaxgan.config import default_config
    from jaxgan.train import write_json

    write_json(tmp_path / "config.json", default_config().to_dict())
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "eval/modes": 3}\n')
    other = tmp_path / "other"
    other.mkdir()
    write_json(other / "config.json", default_config().to_dict())
    (other / "metrics.jsonl").write_text('{"step": 1, "d_loss": 0.5}\n')
    args = [sys.executable, "scripts/plot_runs.py", f"--runs=a={tmp_path}", f"--out={tmp_path / 'runs.png'}", "--metrics=eval/modes"]
    cases = {
        "--references=eval/modes=abc:x": "--references: 'eval/modes=abc:x': 'abc' is not a number",
        "--references=eval/bogus=8:x": "--references: 'eval/bogus' is not plotted; plotted: eval/modes (--metrics)",
        "--references=eval/modes=8:x,eval/modes=7:y": "--references: two lines for 'eval/modes'; give one per metric",
        f"--runs=a={tmp_path},b={other}": f"--runs: {other} logged none of eval/modes (--metrics)",
    }
    results = run_commands({extra: [*args[1:], extra] for extra in cases}, cwd=os.getcwd())
    for extra, expected in cases.items():
        code, _, err = results[extra]
        assert code == 2 and err.strip().splitlines() == [f"error: {expected}"], err
    assert not (tmp_path / "runs.png").exists()


def test_a_figure_matplotlib_cannot_write_is_refused_before_any_work(tmp_path):
    from jaxgan.cli import figure_formats

    assert {"png", "pdf", "svg"} <= set(figure_formats()) and "npy" not in figure_formats()
    import shutil

    import matplotlib

    assert ("pgf" in figure_formats()) == bool(shutil.which(matplotlib.rcParams["pgf.texsystem"]))  # needs its TeX
    listed = ", .".join(figure_formats())
    cases = {}
    for script, flag in [("plot_runs", "out"), ("sample", "out"), ("reproduce_stacked_mnist", "figure")]:
        for bad in ("runs.npy", "runs"):  # not a figure format; no suffix at all
            args = [f"scripts/{script}.py", f"--{flag}={tmp_path / bad}"]
            args += {"plot_runs": [f"--runs=a={tmp_path}"], "sample": [f"--workdir={tmp_path}"]}.get(script, [])
            cases[" ".join(args)] = (args, f"error: flag --{flag}={tmp_path / bad}: a figure's file name must end in one of .{listed}")
    results = run_commands({name: args for name, (args, _) in cases.items()}, cwd=os.getcwd())
    for name, (_, expected) in cases.items():
        code, out, err = results[name]
        assert code == 2 and (out + err).strip().splitlines()[-1] == expected, name
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing trained (no run is there: flags come first)


def test_without_metrics_the_runs_own_evaluation_is_drawn(tmp_path):
    from jaxgan.config import default_config
    from jaxgan.train import write_json

    write_json(tmp_path / "config.json", default_config().to_dict())
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 10, "d_loss": 1.0, "g_loss": 2.0}\n'
        '{"step": 20, "eval/fid": 12.5, "eval/kid": 0.01, "eval/ema_fid": 11.0, "eval/seconds": 3.0}\n{"step": 2'
    )  # an image run's evaluation, and a last line torn by a crash
    args = [sys.executable, "scripts/plot_runs.py", f"--runs=img={tmp_path}", f"--out={tmp_path / 'runs.png'}"]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["img: fid 12.5 at 20  kid 0.01 at 20", f"figure: {tmp_path / 'runs.png'}"]
    assert result.stderr == ""  # no INFO lines of jax's backend probing
    (tmp_path / "metrics.jsonl").write_text('{"step": 10, "d_loss": 1.0, "g_loss": 2.0}\n')  # not evaluated yet
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.stdout.splitlines()[0] == "img: d_loss 1 at 10  g_loss 2 at 10", result.stderr
    # Runs of different evaluations side by side: each run's own metrics are drawn.
    mixture = tmp_path / "mixture"
    mixture.mkdir()
    write_json(mixture / "config.json", default_config().to_dict())
    (mixture / "metrics.jsonl").write_text('{"step": 10, "eval/modes": 8, "eval/high_quality": 0.5}\n')
    (tmp_path / "metrics.jsonl").write_text('{"step": 20, "eval/fid": 12.5}\n')
    result = subprocess.run([*args[:2], f"--runs=ring={mixture},img={tmp_path}", args[3]], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["ring: modes 8 at 10  high_quality 0.5 at 10", "img: fid 12.5 at 20"]
