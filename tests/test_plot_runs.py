"""scripts/plot_runs.py: a workdir that is not a jaxgan run is refused in one line naming the flag."""

import subprocess
import sys


def test_a_workdir_without_a_config_is_refused_in_one_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "eval/modes": 3}\n')
    args = [sys.executable, "scripts/plot_runs.py", f"--runs=a={tmp_path}", f"--out={tmp_path / 'runs.png'}"]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 1
    last = (result.stdout + result.stderr).strip().splitlines()[-1]
    assert last == f"--runs={tmp_path}: no config.json; give the workdir of a run started by jaxgan.main"
    assert not (tmp_path / "runs.png").exists()
    (tmp_path / "metrics.jsonl").unlink()
    result = subprocess.run(args, capture_output=True, text=True)
    last = (result.stdout + result.stderr).strip().splitlines()[-1]
    assert last == f"--runs: {tmp_path} has no metrics.jsonl; give the workdir of a jaxgan run"
