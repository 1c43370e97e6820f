"""Branching a run: the branch at step N under a decay that begins at N equals the new config's run from scratch,
bitwise; every branch that could not equal it is refused with one line."""

import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

from jaxgan.branch import BRANCHED_FROM_FILE, branch_run, graft_optimizer_state, update_count
from jaxgan.config import ConfigError
from jaxgan.train import train_and_evaluate
from tests.test_train import ROOT, assert_bitwise_equal, restore_final, tiny_config

DECAY = {
    "g_optimizer.cosine_decay_begin": 40,
    "g_optimizer.cosine_decay_steps": 20,
    "d_optimizer.cosine_decay_begin": 40,
    "d_optimizer.cosine_decay_steps": 20,
}


@pytest.fixture(scope="module")
def constant_run(tmp_path_factory):
    """The constant-rate run whose checkpoints are branched (unrolled: D's K = 2 lookahead steps are not updates)."""
    workdir = tmp_path_factory.mktemp("constant")
    train_and_evaluate(tiny_config(), str(workdir), echo=lambda _: None)
    return workdir


def test_a_branch_at_the_decays_start_equals_the_decayed_run_from_scratch(constant_run, tmp_path):
    decayed = tiny_config(**DECAY)
    train_and_evaluate(decayed, str(tmp_path / "scratch"), echo=lambda _: None)
    changes = branch_run(str(constant_run), 40, decayed, str(tmp_path / "branch"))
    assert sorted(changes) == sorted(f"{key}: 0 → {value}" for key, value in DECAY.items())
    train_and_evaluate(decayed, str(tmp_path / "branch"), echo=lambda _: None)

    scratch, step = restore_final(tmp_path / "scratch", decayed)
    branch, branch_step = restore_final(tmp_path / "branch", decayed)
    assert step == branch_step == 60
    assert_bitwise_equal(branch, scratch)
    # The decay acted: the rate reached 0 by step 60, so the branch differs from the constant run's end.
    constant, _ = restore_final(constant_run, tiny_config())
    assert not np.array_equal(np.asarray(jax.tree.leaves(branch.g_params)[0]),
                              np.asarray(jax.tree.leaves(constant.g_params)[0]))
    # The record, and the source's history up to the branch step (the branch's own from there on).
    record = json.loads((tmp_path / "branch" / BRANCHED_FROM_FILE).read_text())
    assert (record["source"], record["step"]) == (str(constant_run.resolve()), 40)
    lines = [json.loads(line) for line in (tmp_path / "branch" / "metrics.jsonl").read_text().splitlines()]
    source_lines = [json.loads(line) for line in (constant_run / "metrics.jsonl").read_text().splitlines()]
    assert [line for line in lines if line["step"] <= 40] == [line for line in source_lines if line["step"] <= 40]
    assert max(line["step"] for line in lines) == 60


def test_a_sweep_of_seeds_branches_as_one_program_and_equals_its_decayed_sweep_from_scratch(tmp_path):
    train_and_evaluate(tiny_config(num_seeds=2), str(tmp_path / "constant"), echo=lambda _: None)
    decayed = tiny_config(num_seeds=2, **DECAY)
    train_and_evaluate(decayed, str(tmp_path / "scratch"), echo=lambda _: None)
    branch_run(str(tmp_path / "constant"), 40, decayed, str(tmp_path / "branch"))
    train_and_evaluate(decayed, str(tmp_path / "branch"), echo=lambda _: None)
    scratch, step = restore_final(tmp_path / "scratch", decayed)
    branch, branch_step = restore_final(tmp_path / "branch", decayed)
    assert step == branch_step == 60
    assert_bitwise_equal(branch, scratch)
    counts = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(branch.g_opt_state) if jax.tree_util.keystr(path).endswith(".count")]
    assert np.asarray(counts[0]).tolist() == [60, 60]  # one count per run
    assert (tmp_path / "branch" / "eval.json").read_bytes() == (tmp_path / "scratch" / "eval.json").read_bytes()


def test_graft_fills_the_schedules_count_from_adams():
    params = {"w": np.ones(3, np.float32)}
    constant = optax.adam(1e-3).init(params)
    scheduled = jax.eval_shape(lambda: optax.adam(optax.constant_schedule(1e-3)).init(params))  # + a count
    constant = (constant[0]._replace(count=np.int32(7)),) + constant[1:]
    grafted = graft_optimizer_state(constant, scheduled, update_count(constant))
    assert jax.tree.structure(grafted) == jax.tree.structure(scheduled)
    assert int(grafted[0].count) == int(grafted[1].count) == 7
    swept = jax.tree.map(lambda leaf: np.stack([leaf, leaf]), constant)  # a sweep of two runs
    grafted = graft_optimizer_state(swept, jax.eval_shape(lambda: jax.vmap(optax.adam(optax.constant_schedule(1e-3)).init)(
        {"w": np.ones((2, 3), np.float32)})), update_count(swept))  # fmt: skip
    assert grafted[1].count.tolist() == [7, 7]
    uneven = (swept[0]._replace(count=np.array([7, 8], np.int32)),) + swept[1:]
    with pytest.raises(ValueError, match=r"^the runs of the sweep have applied different numbers of updates \(\[7, 8\]\)$"):
        update_count(uneven)
    with pytest.raises(ValueError, match=r"^the source's optimizer state has \[0\]\.count, which the new one lacks$"):
        graft_optimizer_state(constant, jax.eval_shape(lambda: optax.sgd(1e-3).init(params)), 7)


@pytest.mark.parametrize(
    "overrides, step, message",
    [
        ({"g_optimizer.learning_rate": 1e-3}, 40,
         r"^--branch_from=.*: the run differs from this config in settings that act before step 40 "
         r"\(g_optimizer.learning_rate: 0.0001 → 0.001\); a branch may change only g_optimizer.cosine_decay_steps, "),
        ({"g_optimizer.cosine_decay_begin": 30, "g_optimizer.cosine_decay_steps": 20}, 40,
         r"^--config.g_optimizer.cosine_decay_begin=30: the branch starts after 40 updates of this optimizer "
         r"\(step 40\), so its decay must begin at or after 40$"),
        ({"d_optimizer.cosine_decay_begin": 39, "d_optimizer.cosine_decay_steps": 20}, 40,
         r"^--config.d_optimizer.cosine_decay_begin=39: the branch starts after 40 updates of this optimizer "),
        ({}, 30, r"^--branch_step=30: .* has no checkpoint of that step \(it has \[20, 40, 60\]\)$"),
        ({"num_steps": 30}, 40, r"^--config.num_steps=30: the branch starts at step 40 \(--branch_step\); give at least 40$"),
    ],
)
def test_branches_that_could_not_equal_a_run_from_scratch_are_refused(constant_run, tmp_path, overrides, step, message):
    with pytest.raises(ConfigError, match=message):
        branch_run(str(constant_run), step, tiny_config(**overrides), str(tmp_path / "branch"))
    assert not (tmp_path / "branch").exists()  # nothing written



def test_a_branch_drops_what_another_run_left_in_its_workdir(constant_run, tmp_path):
    """An earlier run that died before its first checkpoint leaves samples and log lines; the branch's history is
    the source's up to the branch step, nothing else."""
    branch = tmp_path / "branch"
    (branch / "samples").mkdir(parents=True)
    np.save(branch / "samples" / "step_00000010.npy", np.zeros((2, 2), np.float32))
    (branch / "metrics.jsonl").write_text(json.dumps({"step": 10, "d_loss": 9.0}) + "\n")
    branch_run(str(constant_run), 40, tiny_config(**DECAY), str(branch))
    source_samples = sorted(p.name for p in (constant_run / "samples").glob("step_*.npy"))
    expected = [name for name in source_samples if int(name[5:-4]) <= 40]
    assert expected and sorted(p.name for p in (branch / "samples").glob("step_*.npy")) == expected
    lines = [json.loads(line) for line in (branch / "metrics.jsonl").read_text().splitlines()]
    source = [json.loads(line) for line in (constant_run / "metrics.jsonl").read_text().splitlines()]
    assert lines == [record for record in source if record["step"] <= 40] and lines


def test_a_branch_into_a_workdir_where_a_run_trains_is_refused(constant_run, tmp_path):
    from jaxgan.train import workdir_lock

    (tmp_path / "branch").mkdir()
    with workdir_lock(tmp_path / "branch"):  # a run started there meanwhile, before its first checkpoint
        with pytest.raises(ConfigError, match=r"^--workdir=.*branch: another run is training in it \(process \d+ on "):
            branch_run(str(constant_run), 40, tiny_config(**DECAY), str(tmp_path / "branch"))
    assert [p.name for p in (tmp_path / "branch").iterdir()] == ["training.lock"]  # nothing of the branch written

def test_the_command_line_branches_once_and_then_resumes(constant_run, tmp_path):
    def run(*extra):
        args = [sys.executable, "-m", "jaxgan.main", "--config=experiments/ring8.py", f"--workdir={tmp_path / 'b'}",
                f"--branch_from={constant_run}", "--branch_step=40", "--config.ema_decay=0.0"]
        from tests.test_train import TINY

        args += [f"--config.{k}={v}" for k, v in {**TINY, **DECAY}.items() if k != "ema_decay"]
        return subprocess.run(args + list(extra), cwd=ROOT, capture_output=True, text=True, timeout=600)

    first = run()
    assert first.returncode == 0, first.stderr
    assert f"branched {constant_run} at step 40 into" in first.stdout
    again = run()
    assert again.returncode == 0, again.stderr
    assert "branched" not in again.stdout and "resuming from the checkpoint at step 60" in again.stdout
    shutil.rmtree(tmp_path / "b" / "checkpoints")  # as if the branch had died before writing its checkpoint
    redone = run()
    assert redone.returncode == 0, redone.stderr
    assert f"branched {constant_run} at step 40 into" in redone.stdout
    (tmp_path / "b" / BRANCHED_FROM_FILE).write_text("")  # as a power cut can leave it
    torn = run()
    assert torn.returncode == 2
    assert torn.stderr.strip() == (f"error: --workdir={tmp_path / 'b'}: its {BRANCHED_FROM_FILE} is unreadable "
                                   "(JSONDecodeError: Expecting value: line 1 column 1 (char 0)); remove the workdir "
                                   "to branch again")
    lonely = subprocess.run([sys.executable, "-m", "jaxgan.main", "--config=experiments/ring8.py",
                             f"--workdir={tmp_path / 'c'}", "--branch_step=40"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert lonely.returncode == 2
    assert lonely.stderr.strip() == ("error: --branch_from and --branch_step go together: the run to branch from and "
                                     "the step of its checkpoint")
