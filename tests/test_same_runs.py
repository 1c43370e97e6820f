"""scripts/same_runs.py: bitwise comparison of runs' records and results, timings left out."""

import json
import subprocess
import sys

import pytest

from scripts.same_runs import first_difference


def _run(path, records, result):
    path.mkdir()
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (path / "eval.json").write_text(json.dumps({"config": {"workdir": str(path)}, **result}))
    return path


RECORDS = [{"step": 10, "d_loss": 1.25, "steps_per_sec": 100.0}, {"step": 10, "eval/modes": 8, "eval/seconds": 0.5}]


def test_timings_and_configs_do_not_count_but_every_computed_value_does(tmp_path):
    a = _run(tmp_path / "a", RECORDS, {"step": 10, "modes": 8})
    timed_otherwise = [{**RECORDS[0], "steps_per_sec": 7.0}, {**RECORDS[1], "eval/seconds": 9.0}]
    assert first_difference(a, _run(tmp_path / "b", timed_otherwise, {"step": 10, "modes": 8})) is None
    off_by_a_bit = [{**RECORDS[0], "d_loss": 1.25 + 2**-20}, RECORDS[1]]
    assert first_difference(a, _run(tmp_path / "c", off_by_a_bit, {"step": 10, "modes": 8})) == (
        "record 0 (step 10): d_loss differ (1.25 against 1.2500009536743164)"
    )
    assert first_difference(a, _run(tmp_path / "d", RECORDS, {"step": 10, "modes": 7})) == "eval.json: modes differ"
    assert first_difference(a, _run(tmp_path / "e", RECORDS[:1], {"step": 10, "modes": 8})) == "2 records against 1"
    signed_zero = [{**RECORDS[0], "d_loss": -0.0}, RECORDS[1]]
    zero = _run(tmp_path / "f", [{**RECORDS[0], "d_loss": 0.0}, RECORDS[1]], {"step": 10, "modes": 8})
    assert first_difference(zero, _run(tmp_path / "g", signed_zero, {"step": 10, "modes": 8})) == (
        "record 0 (step 10): d_loss differ (0.0 against -0.0)"
    )


@pytest.mark.parametrize("second, status, says", [("same", 0, "the same as"), ("other", 1, "eval.json: modes differ")])
def test_exit_status_says_whether_any_run_differs(tmp_path, second, status, says):
    a = _run(tmp_path / "a", RECORDS, {"step": 10, "modes": 8})
    b = _run(tmp_path / second, RECORDS, {"step": 10, "modes": 8 if second == "same" else 6})
    done = subprocess.run([sys.executable, "scripts/same_runs.py", f"--runs={a},{b}"], capture_output=True, text=True)
    assert done.returncode == status, done.stderr
    assert says in done.stdout
