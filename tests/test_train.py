"""The runner end to end: outputs, exact resume after kill -9, SIGTERM checkpoints, non-finite stop."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.checkpoint import Checkpointer
from jaxgan.config import ConfigError, default_config, load_config_file, set_by_path
from jaxgan.updates import make_update_rule
from jaxgan.tasks import make_task
from jaxgan.writers import records_without_wall_clock
from jaxgan.metrics.evaluations import dirac_field
from jaxgan.train import (
    EVAL_SECONDS, NonFiniteLossError, _first_nonfinite, build_game, init_state, next_boundary, train_and_evaluate
)

ROOT = pathlib.Path(__file__).resolve().parents[1]

TINY = {
    "num_steps": 60,
    "batch_size": 32,
    "z_dim": 8,
    "generator.width": 16,
    "discriminator.width": 16,
    "unroll_steps": 2,
    "log_every_steps": 20,
    "eval_every_steps": 20,
    "eval_num_samples": 200,
    "checkpoint_every_steps": 20,
    "steps_per_dispatch": 10,
    "ema_decay": 0.0,  # experiments/ring8.py keeps an EMA of G; default_config does not
}


def tiny_config(**overrides):
    config = default_config()
    for key, value in {**TINY, **overrides}.items():
        set_by_path(config, key, value)
    return config


def cli(workdir, **overrides) -> list[str]:
    args = [sys.executable, "-m", "jaxgan.main", "--config=experiments/ring8.py", f"--workdir={workdir}"]
    return args + [f"--config.{k}={v}" for k, v in {**TINY, **overrides}.items()]


def restore_final(workdir, config):
    rule = make_update_rule(build_game(config), config)
    one_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])  # also for checkpoints written on a mesh
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=one_device), jax.eval_shape(lambda: init_state(config, rule))
    )
    ckpt = Checkpointer(pathlib.Path(workdir) / "checkpoints")
    state, step = ckpt.restore(abstract)
    ckpt.close()
    return state, step


def state_leaves(state) -> list:
    """The state's leaves, the PRNG key as its raw key data (typed keys have no NumPy form)."""
    return jax.tree.leaves(state.replace(key=jax.random.key_data(state.key)))


def assert_bitwise_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(state_leaves(a), state_leaves(b)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_next_boundary_aligns_to_every_period():
    config = tiny_config(log_every_steps=15, eval_every_steps=20, checkpoint_every_steps=25, steps_per_dispatch=7)
    steps, s = [], 0
    while s < config.num_steps:
        s = next_boundary(s, config)
        steps.append(s)
    expected = sorted({m for p in (15, 20, 25, 7) for m in range(p, 60, p)} | {60})
    assert steps == expected


def test_run_writes_its_outputs(tmp_path):
    config = tiny_config()
    result = train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    eval_json = json.loads((tmp_path / "eval.json").read_text())
    assert eval_json["step"] == 60
    assert set(eval_json) >= {"step", "modes", "high_quality_fraction", "reverse_kl", "config"}
    assert eval_json["config"]["unroll_steps"] == 2
    assert eval_json["modes"] == result["modes"]
    assert 0 <= eval_json["high_quality_fraction"] <= 1
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in lines if "d_loss" in r]
    eval_steps = [r["step"] for r in lines if "eval/modes" in r]
    assert train_steps == [20, 40, 60] and eval_steps == [20, 40, 60]
    assert all(np.isfinite(r["d_loss"]) and r["steps_per_sec"] > 0 for r in lines if "d_loss" in r)
    assert (tmp_path / "samples.png").stat().st_size > 10_000
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [f"step_{s:08d}.npy" for s in (20, 40, 60)]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == 60


def test_resume_in_process_equals_uninterrupted(tmp_path):
    """Stopping at 40 and continuing to 60 gives the bits of a straight run to 60, with the same record."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_and_evaluate(tiny_config(), str(straight), echo=lambda _: None)
    train_and_evaluate(tiny_config(num_steps=40), str(split), echo=lambda _: None)
    train_and_evaluate(tiny_config(), str(split), echo=lambda _: None)
    assert_bitwise_equal(restore_final(straight, tiny_config())[0], restore_final(split, tiny_config())[0])
    assert (straight / "eval.json").read_bytes() == (split / "eval.json").read_bytes()
    assert records_without_wall_clock(straight) == records_without_wall_clock(split)


def test_a_resume_restores_into_the_states_shapes_without_initialising_the_players(tmp_path, monkeypatch):
    """Initialising the players runs op by op (seconds for the image models): a run that resumes only traces it."""
    import jaxgan.train as train_module

    concrete = []
    real_init_state = train_module.init_state

    def spy(*args, **kwargs):
        state = real_init_state(*args, **kwargs)
        concrete.append(not isinstance(state.step, jax.core.Tracer))
        return state

    monkeypatch.setattr(train_module, "init_state", spy)
    train_and_evaluate(tiny_config(num_steps=20), str(tmp_path), echo=lambda _: None)
    assert concrete.count(True) == 1  # (shapes are also traced elsewhere)
    concrete.clear()
    train_and_evaluate(tiny_config(num_steps=40), str(tmp_path), echo=lambda _: None)
    assert True not in concrete and Checkpointer(tmp_path / "checkpoints").latest_step() == 40


def test_non_finite_loss_stops_with_the_step(tmp_path):
    config = tiny_config(num_steps=40)
    config.d_optimizer.name = "sgd"
    config.d_optimizer.learning_rate = 1e30
    with pytest.raises(NonFiniteLossError, match=r"non-finite \w+=(nan|inf|-inf) at step \d+; last good checkpoint"):
        train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    assert not (tmp_path / "eval.json").exists()


def test_first_nonfinite_is_the_earliest_step_then_run_over_all_metrics():
    nan, inf = np.nan, np.inf
    # G's loss goes bad at index 2; D's follows a step later, and comes first in the dict.
    chunk = {"d_loss": np.array([0.7, 0.6, 0.5, nan, nan]), "g_loss": np.array([0.7, 0.8, inf, nan, nan])}
    assert _first_nonfinite(chunk) == (2, "g_loss", inf, None)
    sweep = {"d_loss": np.array([[0.0, 0.0], [0.0, 0.0], [nan, 0.0]]), "g_loss": np.array([[0.0, inf], [0.0, 0.0], [0.0, 0.0]])}
    assert _first_nonfinite(sweep) == (0, "g_loss", inf, 1)
    same_step = {"d_loss": np.array([[0.0, nan]]), "g_loss": np.array([[-inf, 0.0]])}
    assert _first_nonfinite(same_step) == (0, "g_loss", -inf, 0)
    tie = {"d_loss": np.array([1.0, nan]), "g_loss": np.array([1.0, inf])}
    assert _first_nonfinite(tie)[:2] == (1, "d_loss")
    assert _first_nonfinite({"d_loss": np.ones(3), "g_loss": np.zeros(3)}) is None


def _wait_for_checkpoint(workdir, proc, timeout=120):
    deadline = time.time() + timeout
    ckpt = pathlib.Path(workdir) / "checkpoints"
    while time.time() < deadline:
        if ckpt.exists() and any(p.name.isdigit() for p in ckpt.iterdir()):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


SLOW = {"num_steps": 2000, "checkpoint_every_steps": 100, "log_every_steps": 100, "eval_every_steps": 500}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reference")
    subprocess.run(cli(workdir, **SLOW), cwd=ROOT, check=True, capture_output=True, timeout=600)
    return workdir


def test_kill_9_then_restart_is_bitwise_identical(tmp_path, reference_run):
    workdir = tmp_path / "killed"
    proc = subprocess.Popen(cli(workdir, **SLOW), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_checkpoint(workdir, proc)
    time.sleep(np.random.default_rng().uniform(0.0, 1.5))  # any moment, async saves in flight included
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (workdir / "eval.json").exists(), "the run finished before it could be killed"
    done = subprocess.run(cli(workdir, **SLOW), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "resuming from the checkpoint at step" in done.stdout
    config = tiny_config(**SLOW)
    assert_bitwise_equal(restore_final(reference_run, config)[0], restore_final(workdir, config)[0])
    assert (reference_run / "eval.json").read_bytes() == (workdir / "eval.json").read_bytes()


def test_sigterm_writes_a_checkpoint_and_exits_zero(tmp_path, reference_run):
    workdir = tmp_path / "preempted"
    proc = subprocess.Popen(cli(workdir, **SLOW), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(workdir, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    step = int(out.split("checkpoint written at step ")[1].split(";")[0])
    assert 0 < step < SLOW["num_steps"]
    assert Checkpointer(workdir / "checkpoints").latest_step() == step
    done = subprocess.run(cli(workdir, **SLOW), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"resuming from the checkpoint at step {step}" in done.stdout
    assert (reference_run / "eval.json").read_bytes() == (workdir / "eval.json").read_bytes()


def test_reproduction_script_shows_progress_and_a_sigterm_ends_in_one_line_and_exit_zero(tmp_path):
    """The table scripts train through scripts.notes.train_run: progress per run; SIGTERM: a checkpoint, one line, exit 0."""
    args = [sys.executable, "scripts/reproduce_mixture_tables.py", "--config=experiments/ring8.py", "--methods=k1",
            "--seeds=1", f"--workdir={tmp_path}", f"--figure={tmp_path / 'table.png'}"]  # fmt: skip
    args += [f"--config.{k}={v}" for k, v in {**TINY, **SLOW}.items()]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(tmp_path / "k1", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    step = int(out.split("checkpoint written at step ")[1].split(";")[0])
    assert Checkpointer(tmp_path / "k1" / "checkpoints").latest_step() == step < SLOW["num_steps"]
    assert out.strip().endswith("run the same command to resume")
    assert "[k1] starting a new run" in out and "[k1] step " in out  # progress, labelled by run


def test_table_scripts_reuse_the_eval_json_of_a_finished_run_with_the_same_settings(tmp_path):
    """scripts.notes.train_run returns a finished run's eval.json as it is (a run trained elsewhere is tabulated with
    its own evaluation); another setting or an unfinished run trains."""
    from scripts.notes import finished_result, train_run

    config = tiny_config()
    result = train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    marked = {**json.loads((tmp_path / "eval.json").read_text()), "marker": 1}  # not something an evaluation writes
    (tmp_path / "eval.json").write_text(json.dumps(marked))
    assert train_run(config, tmp_path) == marked
    assert result["step"] == config.num_steps
    other = tiny_config()
    other.seed += 1
    assert finished_result(other, tmp_path) is None
    longer = tiny_config()
    longer.num_steps += 20
    assert finished_result(longer, tmp_path) is None
    # a run from before a setting existed ran with its default: still finished for a config at the default only
    del marked["config"]["eval"]["truncation"]
    (tmp_path / "eval.json").write_text(json.dumps(marked))
    assert finished_result(config, tmp_path) == marked
    truncated = tiny_config()
    truncated.eval.truncation = 1.0
    assert finished_result(truncated, tmp_path) is None


def test_corrupt_final_checkpoint_is_set_aside_and_retrained_identically(tmp_path):
    straight, damaged = tmp_path / "straight", tmp_path / "damaged"
    train_and_evaluate(tiny_config(), str(straight), echo=lambda _: None)
    train_and_evaluate(tiny_config(), str(damaged), echo=lambda _: None)
    for f in (damaged / "checkpoints" / "60").rglob("*"):
        if f.is_file() and "metadata" not in f.name:
            f.write_bytes(b"garbage")
    (damaged / "eval.json").unlink()
    messages = []
    train_and_evaluate(tiny_config(), str(damaged), echo=messages.append)
    assert "resuming from the checkpoint at step 40" in messages[0]
    assert (damaged / "checkpoints" / "unreadable_step_60").is_dir()
    assert (straight / "eval.json").read_bytes() == (damaged / "eval.json").read_bytes()
    assert_bitwise_equal(restore_final(straight, tiny_config())[0], restore_final(damaged, tiny_config())[0])


def test_fused_chunk_makes_no_host_transfer():
    """Inside a dispatch nothing crosses between host and device: data and noise are made on device."""
    from jaxgan.train import make_train_chunk

    config = tiny_config()
    rule = make_update_rule(build_game(config), config)
    chunk = make_train_chunk(rule, make_task(config).data.sample, config.batch_size)
    state = jax.device_put(init_state(config, rule))
    state, _ = chunk(state, 10)  # compile outside the guard
    with jax.transfer_guard("disallow"):
        state, metrics = chunk(state, 10)
        jax.block_until_ready((state, metrics))
    assert metrics["d_loss"].shape == (10,)


def test_dispatch_lengths_do_not_change_the_result():
    """The runner's variable-length dispatches are one compiled loop: 3 + 5 + 2 steps give the bits of 10."""
    from jaxgan.train import make_train_chunk

    config = tiny_config()
    rule = make_update_rule(build_game(config), config)
    chunk = make_train_chunk(rule, make_task(config).data.sample, config.batch_size, max_steps=8)
    split = init_state(config, rule)
    losses = []
    for n in (3, 5, 2):
        split, metrics = chunk(split, n)
        losses.append(np.asarray(metrics["d_loss"])[:n])
        assert metrics["d_loss"].shape == (8,)  # one program, whatever the length
    whole, metrics = chunk(chunk(init_state(config, rule), 8)[0], 2)
    assert_bitwise_equal(split, whole)
    scan = make_train_chunk(rule, make_task(config).data.sample, config.batch_size)
    _, scanned = scan(init_state(config, rule), 10)
    np.testing.assert_allclose(np.concatenate(losses), np.asarray(scanned["d_loss"]), rtol=1e-6)
    assert chunk._cache_size() == 1


def test_host_loop_runs_the_same_steps_as_the_fused_loop():
    """dispatch_loop="host" (images on a CPU) calls the compiled step from Python: the same math as the fused loop."""
    from jaxgan.train import make_train_chunk, uses_host_loop

    config = tiny_config()
    rule = make_update_rule(build_game(config), config)
    sample = make_task(config).data.sample
    fused, metrics = make_train_chunk(rule, sample, config.batch_size, max_steps=8)(init_state(config, rule), 5)
    host, host_metrics = make_train_chunk(rule, sample, config.batch_size, max_steps=8, host_loop=True)(init_state(config, rule), 5)
    for a, b in zip(state_leaves(fused), state_leaves(host)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(metrics["d_loss"])[:5], np.asarray(host_metrics["d_loss"]), rtol=1e-5)
    assert not uses_host_loop(config, make_task(config))  # the ring is 2-D points: fused
    from test_image_runs import digits_config

    assert uses_host_loop(digits_config(), make_task(digits_config())) == (jax.default_backend() == "cpu")


def test_dispatch_clock_bounds_the_seconds_per_dispatch():
    from jaxgan.train import DispatchClock

    clock = DispatchClock(max_steps=250, max_seconds=2.0)
    assert clock.length == 1
    clock.record(1, 30.0)  # the first dispatch compiles: not a measurement
    assert clock.length == 1
    clock.record(1, 0.01)  # 200 steps would fit: grows by at most 8x per dispatch
    assert clock.length == 8
    clock.record(8, 0.08)
    assert clock.length == 64
    clock.record(64, 0.64)
    assert clock.length == 200  # 200 fit
    clock.record(200, 20.0)  # the machine got 10x slower
    assert clock.length == 20
    clock.record(20, 100.0)
    assert clock.length == 1
    clock.record(1, 0.0001)
    assert clock.length == 8
    clock.record(8, 0.0008)
    assert clock.length == 64
    clock.record(64, 0.0064)
    assert clock.length == 250  # at most max_steps
    assert clock.end(step=33, boundary=1000) == 283 and DispatchClock(250, 2.0).end(0, 1) == 1
    clock.length = 16
    assert clock.end(step=33, boundary=1000) == 49 and clock.end(step=33, boundary=40) == 40


def test_sigterm_latency_is_bounded_with_a_slow_step(tmp_path, monkeypatch):
    """A step of 50 ms and 200-step dispatches would take 10 s to reach the host; with max_dispatch_seconds=0.5
    every dispatch is at most 10 steps and the preemption checkpoint follows SIGTERM within about a second."""
    import os
    import threading

    import jaxgan.train as train
    from jaxgan.train import Preempted

    fast = train.make_train_chunk
    lengths, sent = [], []

    def slow_chunk(*args, **kwargs):
        chunk = fast(*args, **kwargs)

        def slowly(state, num_steps, hparams=None):
            lengths.append(num_steps)
            if len(lengths) == 6:  # well into training, compiled: SIGTERM arrives during a dispatch
                threading.Timer(0.02, lambda: (sent.append(time.perf_counter()), os.kill(os.getpid(), signal.SIGTERM))).start()
            time.sleep(0.05 * num_steps)
            return chunk(state, num_steps, hparams)

        return slowly

    monkeypatch.setattr(train, "make_train_chunk", slow_chunk)
    config = tiny_config(num_steps=2000, steps_per_dispatch=200, max_dispatch_seconds=0.5, log_every_steps=1000,
                         eval_every_steps=1000, checkpoint_every_steps=1000)  # fmt: skip
    with pytest.raises(Preempted) as stop:
        train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    latency = time.perf_counter() - sent[0]
    assert max(lengths[1:]) <= 10, lengths  # 0.5 s at >= 50 ms a step
    assert latency < 3.0, latency
    assert stop.value.step == sum(lengths)
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == stop.value.step


def _eval_records(workdir) -> list[dict]:
    return [record for record in records_without_wall_clock(workdir) if any(k.startswith("eval/") for k in record)]


EVAL_STOP = {"num_steps": 60, "eval_every_steps": 20, "checkpoint_every_steps": 20, "log_every_steps": 20,
             "steps_per_dispatch": 10}  # fmt: skip


@pytest.fixture(scope="module", params=[1, 2], ids=["run", "sweep"])
def eval_stop_reference(request, tmp_path_factory):
    """(config, workdir) of an uninterrupted run of EVAL_STOP, and of a 2-seed sweep."""
    config = tiny_config(**EVAL_STOP, num_seeds=request.param)
    workdir = tmp_path_factory.mktemp("eval_stop_reference")
    train_and_evaluate(config, str(workdir), echo=lambda _: None)
    return config, workdir


def test_sigterm_at_an_evaluation_step_stops_before_evaluating_and_the_restart_evaluates_it(
    tmp_path, monkeypatch, eval_stop_reference
):
    import os

    import jaxgan.train as train
    from jaxgan.train import Preempted

    config, reference = eval_stop_reference
    fast, done = train.make_train_chunk, []

    def chunk_then_sigterm(*args, **kwargs):
        chunk = fast(*args, **kwargs)

        def run(state, num_steps, hparams=None):
            done.append(num_steps)
            if sum(done) == 40:  # the dispatch that ends at the second evaluation
                os.kill(os.getpid(), signal.SIGTERM)
            return chunk(state, num_steps, hparams)

        return run

    monkeypatch.setattr(train, "make_train_chunk", chunk_then_sigterm)
    with pytest.raises(Preempted) as stop:
        train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    assert stop.value.step == 40 == Checkpointer(tmp_path / "checkpoints").latest_step()
    assert ("eval/modes/per_seed" in _eval_records(reference)[0]) == (config.num_seeds > 1)  # one record a step
    assert len(_eval_records(tmp_path)) == 1 and not (tmp_path / "samples" / "step_00000040.npy").exists()
    monkeypatch.setattr(train, "make_train_chunk", fast)
    lines = []
    train_and_evaluate(config, str(tmp_path), echo=lines.append)
    assert lines[1].startswith("eval      40") and "resuming from the checkpoint at step 40" in lines[0]
    assert _eval_records(tmp_path) == _eval_records(reference)
    assert (tmp_path / "eval.json").read_bytes() == (reference / "eval.json").read_bytes()


@pytest.mark.parametrize("killed_at", [40, 60])  # an evaluation within the run, and the last
def test_a_crash_during_an_evaluation_keeps_its_steps_checkpoint_and_the_restart_evaluates_it(
    tmp_path, monkeypatch, eval_stop_reference, killed_at
):
    import jaxgan.train as train

    config, reference = eval_stop_reference

    class Killed(Exception):
        pass

    write = train.MetricWriter.write

    def killed_in_an_evaluation(self, step, metrics):
        if step == killed_at and EVAL_SECONDS in metrics:
            raise Killed
        write(self, step, metrics)

    monkeypatch.setattr(train.MetricWriter, "write", killed_in_an_evaluation)
    with pytest.raises(Killed):
        train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == killed_at  # written before the evaluation began
    assert not (tmp_path / "eval.json").exists()
    monkeypatch.setattr(train.MetricWriter, "write", write)
    train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    assert _eval_records(tmp_path) == _eval_records(reference)
    assert (tmp_path / "eval.json").read_bytes() == (reference / "eval.json").read_bytes()


def test_an_evaluation_is_owed_at_an_evaluation_step_without_its_record(tmp_path):
    from jaxgan.train import evaluation_owed

    config = tiny_config(**EVAL_STOP)
    (tmp_path / "metrics.jsonl").write_text(
        f'{{"step": 20, "d_loss": 1.0}}\n{{"step": 20, "{EVAL_SECONDS}": 0.1}}\n{{"step": 40, "d_loss": 1.0}}\n'
    )  # an evaluation that measures nothing (samples only) still has its record
    assert not evaluation_owed(config, 20, tmp_path)
    assert evaluation_owed(config, 40, tmp_path) and evaluation_owed(config, 60, tmp_path)
    assert not evaluation_owed(config, 30, tmp_path) and not evaluation_owed(config, 0, tmp_path)


def dirac_config(**overrides):
    config = default_config()
    config.data.name, config.z_dim, config.batch_size = "dirac", 1, 1
    config.generator.name, config.discriminator.name, config.evaluations = "dirac", "linear", ("dirac",)
    for player in (config.g_optimizer, config.d_optimizer):
        player.name, player.learning_rate = "sgd", 0.1
    config.update_rule, config.loss = "simultaneous", "nonsaturating"
    config.num_steps = config.log_every_steps = config.checkpoint_every_steps = config.steps_per_dispatch = 40
    config.eval_every_steps = 10
    for key, value in overrides.items():
        config[key] = value
    return config


@pytest.mark.parametrize("gamma", [0.0, 0.3, 3.0])
def test_dirac_run_reports_the_closed_form_jacobian_eigenvalues(tmp_path, gamma):
    """Mescheder et al. 2018: ±f'(0)i unregularised, −γ/2 ± sqrt(γ²/4 − f'(0)²) with R1 of weight γ; f'(0) = 1/2."""
    config = dirac_config(penalty="r1" if gamma else "none", penalty_weight=gamma)
    result = train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    by_parts = lambda c: (c.real, c.imag)  # noqa: E731
    got = sorted((complex(re, im) for re, im in result["jacobian_eigenvalues"]), key=by_parts)
    root = np.sqrt(complex(gamma**2 / 4 - 0.25))
    expected = sorted([-gamma / 2 + root, -gamma / 2 - root], key=by_parts)
    np.testing.assert_allclose(np.array(got), np.array(expected), atol=1e-5)
    np.testing.assert_allclose(result["distance_to_equilibrium"], np.hypot(result["theta"], result["psi"]), rtol=1e-6)
    assert (tmp_path / "samples.png").stat().st_size > 10_000
    trajectory = sorted((tmp_path / "samples").glob("step_*.npy"))
    assert len(trajectory) == 4


@pytest.mark.parametrize("penalty", ["wgan_gp", "dragan"])
def test_dirac_run_under_a_gradient_penalty_reports_no_jacobian(tmp_path, penalty):
    """D's part of the field, −2λ(|ψ| − 1)·sign(ψ), jumps from +2λ to −2λ across ψ = 0: no Jacobian at (0, 0)."""
    config = dirac_config(loss="wasserstein", penalty=penalty, penalty_weight=1.0)
    result = train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    assert result["jacobian_eigenvalues"] is None
    assert result["jacobian_note"] == "the gradient penalty's field jumps at psi = 0, so (0, 0) is no equilibrium and has no Jacobian"
    # the jump itself, measured on the field either side of ψ = 0
    game = build_game(config)
    field = dirac_field(game)
    _, up = field(np.zeros(1), np.array([1e-4]))
    _, down = field(np.zeros(1), np.array([-1e-4]))
    np.testing.assert_allclose([up[0], down[0]], [2.0, -2.0], atol=1e-3)


def test_a_dirac_sweep_over_the_gradient_penalty_weight_reports_no_jacobian_for_any_run(tmp_path):
    config = dirac_config(loss="wasserstein", penalty="wgan_gp", penalty_weight=0.0, sweep_key="penalty_weight",
                          sweep_values=(1.0, 2.0))  # fmt: skip
    result = train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    assert [run["jacobian_eigenvalues"] for run in result["runs"]] == [None, None]


def test_dirac_r1_converges_and_plain_simultaneous_does_not(tmp_path):
    plain = train_and_evaluate(dirac_config(num_steps=400, checkpoint_every_steps=400), str(tmp_path / "a"), echo=lambda _: None)
    r1 = train_and_evaluate(
        dirac_config(num_steps=400, checkpoint_every_steps=400, penalty="r1", penalty_weight=1.0, loss="minimax"),
        str(tmp_path / "b"),
        echo=lambda _: None,
    )
    assert r1["distance_to_equilibrium"] < 1e-3
    assert plain["distance_to_equilibrium"] > 0.3


def test_vmapped_seed_sweep_equals_each_seed_trained_alone(tmp_path):
    """Run i of a sweep is seed `seed + i` trained alone, up to float reassociation inside the batched kernels."""
    sweep = train_and_evaluate(tiny_config(num_seeds=3, seed=4), str(tmp_path / "sweep"), echo=lambda _: None)
    alone = train_and_evaluate(tiny_config(seed=5), str(tmp_path / "alone"), echo=lambda _: None)
    assert [r["seed"] for r in sweep["runs"]] == [4, 5, 6]
    for key in ("modes", "high_quality_fraction", "reverse_kl"):
        values = [r[key] for r in sweep["runs"]]
        np.testing.assert_allclose(sweep["mean"][key], np.mean(values), rtol=1e-6)
        np.testing.assert_allclose(sweep["std"][key], np.std(values), rtol=1e-6)
    assert sweep["runs"][1]["modes"] == alone["modes"]
    np.testing.assert_allclose(sweep["runs"][1]["high_quality_fraction"], alone["high_quality_fraction"], atol=2e-3)
    config = tiny_config(num_seeds=3, seed=4)
    stacked, _ = restore_final(tmp_path / "sweep", config)
    single, _ = restore_final(tmp_path / "alone", tiny_config(seed=5))
    run1 = jax.tree.map(lambda x: x[1], stacked)
    np.testing.assert_array_equal(jax.random.key_data(run1.key), jax.random.key_data(single.key))
    for a, b in zip(jax.tree.leaves(run1.replace(key=None)), jax.tree.leaves(single.replace(key=None))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)  # measured: 7.5e-9


def test_learning_rate_sweep_runs_equal_each_value_trained_alone(tmp_path):
    """A sweep over D's learning rate × 2 seeds is one program; run (value j, seed i) equals that config alone."""
    rates = (3e-4, 1e-3)
    config = tiny_config(num_seeds=2, num_steps=40, sweep_key="d_optimizer.learning_rate", sweep_values=rates)
    sweep = train_and_evaluate(config, str(tmp_path / "sweep"), echo=lambda _: None)
    assert [(r["seed"], r["d_optimizer.learning_rate"]) for r in sweep["runs"]] == [(0, 3e-4), (1, 3e-4), (0, 1e-3), (1, 1e-3)]
    for j, group in enumerate(sweep["by_value"]):
        assert group["d_optimizer.learning_rate"] == rates[j]
        values = [r["high_quality_fraction"] for r in sweep["runs"][2 * j : 2 * j + 2]]
        np.testing.assert_allclose(group["mean"]["high_quality_fraction"], np.mean(values), rtol=1e-6)
        np.testing.assert_allclose(group["std"]["high_quality_fraction"], np.std(values), rtol=1e-6)
    stacked, _ = restore_final(tmp_path / "sweep", config)
    alone_config = tiny_config(num_steps=40, seed=1, **{"d_optimizer.learning_rate": 1e-3})
    train_and_evaluate(alone_config, str(tmp_path / "alone"), echo=lambda _: None)
    single, _ = restore_final(tmp_path / "alone", alone_config)
    run3 = jax.tree.map(lambda x: x[3], stacked)
    for a, b in zip(jax.tree.leaves(run3.replace(key=None)), jax.tree.leaves(single.replace(key=None))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    # The swept value really reached the step: seed 1 at the other rate (run 1) ends elsewhere.
    run1 = jax.tree.map(lambda x: x[1], stacked)
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(run3.d_params), jax.tree.leaves(run1.d_params)))
    assert gap > 1e-3


@pytest.mark.parametrize("rule, key", [("consensus", "consensus_gamma"), ("sga", "sga_lambda")])
def test_a_sweep_over_a_rules_own_hyperparameter_reaches_the_rule(tmp_path, rule, key):
    """consensus_gamma and sga_lambda are the update rule's, not the game's: each run of the sweep equals its value
    trained alone."""
    values = (0.1, 2.0)
    config = tiny_config(num_steps=20, update_rule=rule, unroll_steps=0, sweep_key=key, sweep_values=values)
    train_and_evaluate(config, str(tmp_path / "sweep"), echo=lambda _: None)
    stacked, _ = restore_final(tmp_path / "sweep", config)
    for j, value in enumerate(values):
        alone_config = tiny_config(num_steps=20, update_rule=rule, unroll_steps=0, **{key: value})
        train_and_evaluate(alone_config, str(tmp_path / f"alone{j}"), echo=lambda _: None)
        single, _ = restore_final(tmp_path / f"alone{j}", alone_config)
        run = jax.tree.map(lambda x: x[j], stacked)
        for a, b in zip(jax.tree.leaves(run.g_params), jax.tree.leaves(single.g_params)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    # The two values train differently (a rule that ignored its value would pass the equalities above).
    first, second = (jax.tree.map(lambda x: x[j], stacked) for j in range(2))
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(first.g_params), jax.tree.leaves(second.g_params)))
    assert gap > 1e-4, gap


def test_sweep_over_one_value_is_a_plain_run_at_that_value(tmp_path):
    swept = train_and_evaluate(
        tiny_config(num_steps=20, sweep_key="penalty_weight", sweep_values=(2.0,), penalty="r1"),
        str(tmp_path / "swept"), echo=lambda _: None,
    )  # fmt: skip
    plain = train_and_evaluate(
        tiny_config(num_steps=20, penalty_weight=2.0, penalty="r1"), str(tmp_path / "plain"), echo=lambda _: None
    )
    assert swept["config"]["penalty_weight"] == 2.0
    assert {k: v for k, v in swept.items() if k != "config"} == {k: v for k, v in plain.items() if k != "config"}


def test_workdir_of_another_config_is_refused_before_restoring_and_left_untouched(tmp_path):
    from jaxgan.config import ConfigError

    train_and_evaluate(tiny_config(num_steps=20), str(tmp_path), echo=lambda _: None)
    (tmp_path / "checkpoints" / "40.orbax-checkpoint-tmp").mkdir()  # as a save in flight of the run looks
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    with pytest.raises(ConfigError, match=r"another config \(generator.width: 16 → 8; saved in .*config.json\): rerun"):
        train_and_evaluate(tiny_config(num_steps=40, **{"generator.width": 8}), str(tmp_path), echo=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
    # What a resumed run may change (its length, its cadence) is not a mismatch.
    result = train_and_evaluate(tiny_config(num_steps=40, log_every_steps=10), str(tmp_path), echo=lambda _: None)
    assert result["step"] == 40
    saved = json.loads((tmp_path / "config.json").read_text())  # what the run now does, for the tools that read it
    assert (saved["num_steps"], saved["log_every_steps"]) == (40, 10)



def test_a_second_run_in_a_workdir_that_trains_is_refused_and_leaves_it_alone(tmp_path):
    from jaxgan.config import ConfigError
    from jaxgan.train import workdir_lock

    train_and_evaluate(tiny_config(num_steps=20), str(tmp_path), echo=lambda _: None)
    (tmp_path / "checkpoints" / "40.orbax-checkpoint-tmp").mkdir()  # the first run's save in flight
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    with workdir_lock(tmp_path):  # the first run, still training
        with pytest.raises(ConfigError, match=rf"^--workdir={tmp_path}: another run is training in it \(process "
                           rf"{os.getpid()} on [^)]+\); wait for it to end, or use another --workdir$"):  # fmt: skip
            train_and_evaluate(tiny_config(num_steps=40), str(tmp_path), echo=lambda _: None)
        assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
    assert train_and_evaluate(tiny_config(num_steps=40), str(tmp_path), echo=lambda _: None)["step"] == 40  # it ended

def test_the_workdir_lock_holds_with_a_lock_file_it_cannot_write(tmp_path, monkeypatch):
    from jaxgan import train
    from jaxgan.config import ConfigError

    # A full disk: the holder cannot be recorded, yet the workdir is locked and a second run refused.
    def full_disk(*args):
        raise OSError(28, "No space left on device")

    (tmp_path / "full").mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(train.os, "pwrite", full_disk)
        with train.workdir_lock(tmp_path / "full"):
            with pytest.raises(ConfigError, match=r"another run is training in it \(process unknown\)"):
                with train.workdir_lock(tmp_path / "full"):
                    pass
    # Another user's lock file in a shared workdir, which this user may read but not write: locked all the same.
    opened = os.open
    def read_only_lock(path, flags, *args):  # noqa: E306
        if str(path).endswith("training.lock") and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied", str(path))
        return opened(path, flags, *args)

    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "training.lock").write_text("1234 on elsewhere\n")  # the last run's record
    monkeypatch.setattr(train.os, "open", read_only_lock)
    with train.workdir_lock(tmp_path / "shared"):
        with pytest.raises(ConfigError, match=r"another run is training in it \(process 1234 on elsewhere\)"):
            with train.workdir_lock(tmp_path / "shared"):
                pass


def test_a_workdir_damaged_or_blocked_is_refused_in_one_line_and_left_untouched(tmp_path):
    from jaxgan.config import ConfigError
    from jaxgan.train import saved_config

    run = tmp_path / "run"
    train_and_evaluate(tiny_config(num_steps=20), str(run), echo=lambda _: None)
    (run / "config.json").write_text("{garbage")
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    with pytest.raises(ConfigError, match=r"^--workdir=.*run: its config.json is not valid JSON of a config \(Expecting .*\), so whether"):
        train_and_evaluate(tiny_config(num_steps=40), str(run), echo=lambda _: None)
    (run / "config.json").write_text("[]")  # JSON, but not a config's
    with pytest.raises(ConfigError, match=r"^--workdir=.*run: its config.json is not valid JSON of a config \(it holds a JSON list, not an object\), so"):
        train_and_evaluate(tiny_config(num_steps=40), str(run), echo=lambda _: None)
    with pytest.raises(ConfigError, match=r"^--branch_from=.*run: its config.json is not a valid config \(it holds a JSON list, not an object\)$"):
        saved_config(run, "--branch_from")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before

    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "samples").write_text("a file where the run's samples folder goes")
    with pytest.raises(ConfigError, match=r"^--workdir=.*blocked: cannot make .*samples \(File exists\)$"):
        train_and_evaluate(tiny_config(), str(blocked), echo=lambda _: None)
    assert not (blocked / "checkpoints").exists()


def test_a_saved_run_is_read_without_a_change_and_refused_in_one_line(tmp_path):
    from jaxgan.config import ConfigError
    from jaxgan.train import abstract_state, restore_saved, saved_config

    run = tmp_path / "run"
    train_and_evaluate(tiny_config(), str(run), echo=lambda _: None)
    files = lambda: sorted((str(p), p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))  # noqa: E731
    before = files()
    config = saved_config(run, "--workdir")
    state, data, step = restore_saved(run, abstract_state(config), flag="--workdir")
    assert step == 60 and data is None
    assert_bitwise_equal(state, restore_final(run, tiny_config())[0])
    assert restore_saved(run, abstract_state(config), 40, flag="--workdir")[2] == 40
    with pytest.raises(ConfigError, match=r"^--step=30: .* has no checkpoint of that step \(it has \[20, 40, 60\]\)$"):
        restore_saved(run, abstract_state(config), 30, flag="--workdir")
    other = abstract_state(tiny_config(**{"generator.width": 8}))
    with pytest.raises(ConfigError, match=r"^--workdir=.*/run: no checkpoint restores \(none of the checkpoints \[20, 40, 60\] .* "
                       r"can be restored into this run's state [^\n]+\)$"):  # fmt: skip
        restore_saved(run, other, flag="--workdir")
    with pytest.raises(ConfigError, match=r"^--workdir=.*/run: the checkpoint of step 40 does not restore \([^\n]+\)$"):
        restore_saved(run, other, 40, flag="--workdir")
    with pytest.raises(ConfigError, match=r"^--from=.*/elsewhere: no checkpoints$"):
        restore_saved(tmp_path / "elsewhere", abstract_state(config), flag="--from")
    assert files() == before  # nothing created, moved or changed
    # A damaged newest step: the newest that restores is read, as a resume would pick it, and the damage is left.
    for f in (run / "checkpoints" / "60").rglob("*"):
        if f.is_file() and "metadata" not in f.name:
            f.write_bytes(b"garbage")
    before = files()
    state, _, step = restore_saved(run, abstract_state(config), flag="--workdir")
    assert step == 40
    assert_bitwise_equal(state, restore_saved(run, abstract_state(config), 40, flag="--workdir")[0])
    assert files() == before
    (run / "config.json").write_text('{"generator": {"widht": 16}}')
    with pytest.raises(ConfigError, match=r"^--workdir=.*/run: its config.json is not a valid config \(.*widht"):
        saved_config(run, "--workdir")
    (run / "config.json").write_text('{"generator": ')  # torn
    with pytest.raises(ConfigError, match=r"^--workdir=.*/run: its config.json is not a valid config \("):
        saved_config(run, "--workdir")


def test_workdir_without_its_config_is_refused_by_the_stored_layout(tmp_path):
    """A workdir of an older jaxgan has no config.json: orbax's metadata is compared before any array is read."""
    from jaxgan.checkpoint import CheckpointMismatchError

    train_and_evaluate(tiny_config(num_steps=20), str(tmp_path), echo=lambda _: None)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointMismatchError, match=r"none of the checkpoints \[20\] .* leaf g_\w+\.0\.mu\.MLP_0\.Dense_0\.bias: stored float32\[16\], this run has float32\[8\]"):
        train_and_evaluate(tiny_config(num_steps=40, **{"generator.width": 8}), str(tmp_path), echo=lambda _: None)
    train_and_evaluate(tiny_config(num_steps=40), str(tmp_path), echo=lambda _: None)  # resumes, and writes it
    assert json.loads((tmp_path / "config.json").read_text())["generator"]["width"] == 16


def test_a_run_whose_only_checkpoint_is_damaged_says_so_in_one_line(tmp_path):
    workdir = tmp_path / "w"
    assert subprocess.run(cli(workdir, num_steps=20, keep_checkpoints=1), cwd=ROOT, capture_output=True).returncode == 0
    for f in (workdir / "checkpoints" / "20").rglob("*"):
        if f.is_file() and "metadata" not in f.name:
            f.write_bytes(b"garbage")
    before = {p: p.stat().st_mtime_ns for p in (workdir / "checkpoints").rglob("*")}
    run = subprocess.run(cli(workdir, num_steps=40, keep_checkpoints=1), cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2
    lines = (run.stdout + run.stderr).splitlines()
    assert len(lines) == 1, lines[:5]
    assert lines[0].startswith(f"error: --workdir={workdir}: none of the checkpoints [20] in ")
    assert "they are damaged; move them out of" in lines[0] and "another config" not in lines[0]
    assert {p: p.stat().st_mtime_ns for p in (workdir / "checkpoints").rglob("*")} == before


@pytest.mark.parametrize("keep_config", [True, False], ids=["config_json", "old_workdir"])
def test_rerun_with_another_config_prints_exactly_one_line(tmp_path, keep_config):
    workdir = tmp_path / "w"
    assert subprocess.run(cli(workdir, num_steps=20), cwd=ROOT, capture_output=True).returncode == 0
    if not keep_config:
        (workdir / "config.json").unlink()
    before = {p: p.stat().st_mtime_ns for p in (workdir / "checkpoints").rglob("*")}
    run = subprocess.run(cli(workdir, num_steps=40, **{"generator.width": 8}), cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2
    lines = (run.stdout + run.stderr).splitlines()
    assert len(lines) == 1, lines[:5]
    assert "generator.width: 16 → 8" in lines[0] if keep_config else "stored float32[16], this run has float32[8]" in lines[0]
    assert "new --workdir" in lines[0]
    assert {p: p.stat().st_mtime_ns for p in (workdir / "checkpoints").rglob("*")} == before


def test_every_step_unreadable_is_one_line_with_orbax_reason(tmp_path):
    workdir = tmp_path / "w"
    assert subprocess.run(cli(workdir, num_steps=40), cwd=ROOT, capture_output=True).returncode == 0
    for metadata in (workdir / "checkpoints").glob("*/_CHECKPOINT_METADATA"):
        metadata.write_text("{garbage")
    for metadata in (workdir / "checkpoints").glob("*/state/_METADATA"):
        metadata.write_text("{garbage")
    run = subprocess.run(cli(workdir, num_steps=40), cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2
    lines = (run.stdout + run.stderr).splitlines()
    assert len(lines) == 1, lines[:5]
    assert "none of the checkpoints [20, 40]" in lines[0] and "Failed to json parse" in lines[0]
    assert "they are damaged; move them out of" in lines[0]  # their metadata is unreadable, not another layout


def test_top_jacobian_eigenvalues_are_logged_at_evaluations(tmp_path):
    """On the Dirac-GAN (2 parameters) Arnoldi is exact: the logged pair is the Jacobian's at the current point."""
    from jaxgan.dynamics import jacobian_eigenvalues

    config = dirac_config(log_eigenvalues=2)
    train_and_evaluate(config, str(tmp_path), echo=lambda _: None)
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]  # noqa: E741
    last = [r for r in lines if "eval/eig0_real" in r][-1]
    assert last["step"] == 40
    state, _ = restore_final(tmp_path, config)
    game = build_game(config)
    expected = jacobian_eigenvalues(game, state.g_params, state.d_params, np.zeros((1, 1)), np.zeros((1, 1)))
    got = sorted([complex(last["eval/eig0_real"], last["eval/eig0_imag"]), complex(last["eval/eig1_real"], last["eval/eig1_imag"])], key=lambda c: (c.real, c.imag))
    np.testing.assert_allclose(got, sorted(expected, key=lambda c: (c.real, c.imag)), atol=1e-5)
    assert abs(got[0].imag) > 0.1  # a rotation, not a trivial answer


def test_sigterm_during_start_up_checkpoints_step_0_and_the_restart_equals_a_straight_run(tmp_path, monkeypatch):
    """A signal while the run loads its data and builds its models (before the loop) stops it at its first step
    boundary, checkpointed, instead of killing it with no message."""
    import os

    import jaxgan.train as train
    from jaxgan.train import Preempted

    building = train.make_task

    def make_task_then_sigterm(config):
        os.kill(os.getpid(), signal.SIGTERM)
        return building(config)

    monkeypatch.setattr(train, "make_task", make_task_then_sigterm)
    with pytest.raises(Preempted) as stop:
        train_and_evaluate(tiny_config(), str(tmp_path / "split"), echo=lambda _: None)
    assert stop.value.step == 0 == Checkpointer(tmp_path / "split" / "checkpoints").latest_step()
    monkeypatch.setattr(train, "make_task", building)
    resumed = train_and_evaluate(tiny_config(), str(tmp_path / "split"), echo=lambda _: None)
    straight = train_and_evaluate(tiny_config(), str(tmp_path / "straight"), echo=lambda _: None)
    assert resumed == straight


def test_a_fresh_start_drops_the_samples_of_an_attempt_that_left_no_checkpoint(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    for step in (20, 30):  # an earlier attempt with other settings, killed before its first checkpoint
        np.save(samples / f"step_{step:08d}.npy", np.zeros((3, 2)))
    train_and_evaluate(tiny_config(num_steps=40), str(tmp_path), echo=lambda _: None)
    assert sorted(p.name for p in samples.iterdir()) == ["step_00000020.npy", "step_00000040.npy"]
    assert np.load(samples / "step_00000020.npy").shape == (200, 2)  # this run's


def test_num_steps_below_the_trained_step_is_refused_and_the_workdir_left_as_it_was(tmp_path):
    train_and_evaluate(tiny_config(num_steps=40), str(tmp_path), echo=lambda _: None)
    files = lambda: sorted((str(p), p.stat().st_mtime_ns) for p in tmp_path.rglob("*")  # noqa: E731
                           if p.name != "training.lock")  # which records each run that takes it
    before = files()
    with pytest.raises(ConfigError, match=r"^--config.num_steps=20: .* has trained to step 40 already; give at "
                       r"least 40, or branch from an earlier step \(--branch_from, --branch_step\) into a new --workdir$"):
        train_and_evaluate(tiny_config(num_steps=20), str(tmp_path), echo=lambda _: None)
    assert files() == before


def test_pace_counts_training_dispatches_after_the_compiling_one_and_the_evaluations_still_due():
    from jaxgan.train import Pace

    pace = Pace()
    config = tiny_config(num_steps=100, eval_every_steps=30)  # evaluations at 30, 60, 90 and 100
    pace.trained(10, 5.0)  # the first dispatch compiles
    pace.trained(10, 1.0)
    pace.trained(10, 1.0)
    assert pace.interval_rate() == pytest.approx(30 / 7.0)  # the interval's own dispatches, compile and all
    pace.evaluated(4.0)
    pace.trained(10, 2.0)
    assert pace.interval_rate() == pytest.approx(5.0)
    # steady rate 30 steps / 4 s; at step 40 (logged before its evaluation, if one were due) 60 steps and 3 evaluations
    assert pace.eta(40, config) == pytest.approx(60 / 7.5 + 3 * 4.0)
    assert pace.eta(30, config) == pytest.approx(70 / 7.5 + 4 * 4.0)  # step 30's own evaluation is still due
    pace.evaluated(9.0, compiling=6.5)  # a first evaluation: its compile time is not due again
    assert pace.eta(40, config) == pytest.approx(60 / 7.5 + 3 * 2.5)


def test_compile_seconds_counts_compiling_only_while_open():
    from jaxgan.train import CompileSeconds

    with CompileSeconds() as compiling:
        f = jax.jit(lambda x: jnp.sin(x) @ x.T)
        x = jnp.ones((64, 64))
        f(x).block_until_ready()
        first = compiling.seconds
        assert first > 0
        f(x).block_until_ready()  # cached: nothing compiles
        assert compiling.seconds == first
    jax.jit(lambda x: jnp.cos(x) + 2)(x).block_until_ready()  # closed: not counted
    assert compiling.seconds == first


def test_a_checkpoint_that_cannot_be_written_stops_the_run_with_that_error(tmp_path, monkeypatch):
    """A full disk: the failed save's own error reaches the caller, not a second one raised while closing."""
    import orbax.checkpoint as ocp

    from jaxgan.checkpoint import CheckpointSaveError

    waiting = ocp.CheckpointManager.wait_until_finished
    calls = []

    def full_disk(self):
        waiting(self)
        calls.append(None)
        if len(calls) >= 3:  # the wait before the save of step 40 finds step 20's failed; orbax re-raises it after
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(ocp.CheckpointManager, "wait_until_finished", full_disk)
    with pytest.raises(CheckpointSaveError, match=r"^the checkpoint of step 20 was not written \(OSError: \[Errno 28\] "
                       r"No space left on device\)$"):
        train_and_evaluate(tiny_config(), str(tmp_path), echo=lambda _: None)


def test_main_reports_an_unwritten_checkpoint_in_one_line_and_exits_3(tmp_path):
    driver = "\n".join([
        "import runpy, sys",
        "import orbax.checkpoint as ocp",
        "waiting, calls = ocp.CheckpointManager.wait_until_finished, []",
        "def full_disk(self):",
        "    waiting(self)",
        "    calls.append(None)",
        "    if len(calls) >= 3:",
        "        raise OSError(28, 'No space left on device')",
        "ocp.CheckpointManager.wait_until_finished = full_disk",
        "sys.argv = ['jaxgan.main'] + sys.argv[1:]",
        "runpy.run_module('jaxgan.main', run_name='__main__', alter_sys=True)",
    ])  # fmt: skip
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", driver, *cli(run)[3:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        f"error: --workdir={run}: the checkpoint of step 20 was not written (OSError: [Errno 28] No space left on "
        "device); the run stopped there. Once the disk has room (or the path is back), the same command resumes "
        "from the last checkpoint that was written"
    ]


def test_sigterm_during_start_up_stops_before_an_evaluation_the_restart_owes(tmp_path, monkeypatch):
    import os

    import jaxgan.train as train
    from jaxgan.train import Preempted

    train_and_evaluate(tiny_config(num_steps=40), str(tmp_path), echo=lambda _: None)
    records = (tmp_path / "metrics.jsonl").read_text().splitlines()
    owed = [r for r in records if not (json.loads(r)["step"] == 40 and "eval/modes" in r)]
    (tmp_path / "metrics.jsonl").write_text("".join(r + "\n" for r in owed))  # as a kill during that evaluation leaves it
    building = train.make_task

    def make_task_then_sigterm(config):
        os.kill(os.getpid(), signal.SIGTERM)
        return building(config)

    monkeypatch.setattr(train, "make_task", make_task_then_sigterm)
    lines = []
    with pytest.raises(Preempted) as stop:
        train_and_evaluate(tiny_config(num_steps=60), str(tmp_path), echo=lines.append)
    assert stop.value.step == 40 and not any(line.startswith("eval") for line in lines)
    monkeypatch.setattr(train, "make_task", building)
    lines = []
    train_and_evaluate(tiny_config(num_steps=60), str(tmp_path), echo=lines.append)
    assert lines[1].startswith("eval      40")  # still owed, and evaluated first


def test_sigterm_during_the_final_evaluation_lets_it_finish_then_stops_the_caller(tmp_path, monkeypatch):
    """A script that trains several runs in one process must not start the next one after a preemption."""
    import os

    import jaxgan.train as train
    from jaxgan.train import Preempted

    summarizing = train.summarize

    def summarize_then_sigterm(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return summarizing(*args, **kwargs)

    monkeypatch.setattr(train, "summarize", summarize_then_sigterm)
    with pytest.raises(Preempted) as stop:
        train_and_evaluate(tiny_config(num_steps=20), str(tmp_path), echo=lambda _: None)
    assert stop.value.step == 20 and json.loads((tmp_path / "eval.json").read_text())["step"] == 20
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == 20


@pytest.mark.parametrize("data", ["ring", "ring_sweep", "stacked_mnist", "dirac"])
def test_the_console_shows_the_ema_of_g_beside_g(tmp_path, data):
    from test_recount_stacked_modes import tiny_stacked_config

    if data == "stacked_mnist":
        config = tiny_stacked_config()
    elif data == "dirac":
        config = load_config_file(ROOT / "experiments/dirac.py")
        config.num_steps = config.eval_every_steps = config.checkpoint_every_steps = config.log_every_steps = 20
    else:
        config = tiny_config(num_steps=20, num_seeds=2 if data == "ring_sweep" else 1)
    config.ema_decay = 0.9
    lines = []
    result = train_and_evaluate(config, str(tmp_path), echo=lines.append)
    line = [x for x in lines if x.startswith("eval")][-1]
    if data == "dirac":  # the EMA of θ, as the state holds it
        ema_theta = float(restore_final(tmp_path, config)[0].g_params_ema["theta"][0])
        assert result["ema_theta"] == ema_theta != result["theta"]
        assert line.endswith(f"| ema: theta {ema_theta:+.4f}"), line
        return
    record = [r for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines()) if "eval/ema_modes" in r][-1]
    if data == "ring_sweep":  # the means, G's first
        assert line.startswith(f"eval      20  mean over 2 runs: high_quality_fraction {record['eval/high_quality_fraction']:.3f}")
        assert line.endswith(f"| ema: high_quality_fraction {record['eval/ema_high_quality_fraction']:.3f}  "
                             f"modes {record['eval/ema_modes']:.3f}  reverse_kl {record['eval/ema_reverse_kl']:.3f}"), line
        return
    if data == "ring":
        want = (f"| ema: modes {record['eval/ema_modes']}/8  high_quality {record['eval/ema_high_quality_fraction']:.3f}  "
                f"reverse_kl {record['eval/ema_reverse_kl']:.3f}")
    else:
        want = f"| ema: modes {record['eval/ema_modes']}/1000  kl {record['eval/ema_kl']:.3f}  fid {record['eval/ema_fid']:.2f}"
    assert line.endswith(want), line


def test_the_closing_lines_keep_the_values_of_a_sweep_apart():
    from jaxgan.train import final_summary

    one = {"step": 20, "modes": 8, "reverse_kl": 0.0123456, "config": {"num_seeds": 1, "sweep_key": ""}}
    assert final_summary(one) == ["step 20  modes 8  reverse_kl 0.01235"]
    seeds = {"step": 20, "runs": [{}, {}], "mean": {"modes": 7.5}, "std": {"modes": 0.5},
             "config": {"num_seeds": 2, "sweep_key": ""}}
    assert final_summary(seeds) == ["step 20  modes 7.5 (mean over 2 seeds)"]
    rates = {**seeds, "by_value": [{"d_optimizer.learning_rate": 1e-4, "mean": {"modes": 0.0}},
                                   {"d_optimizer.learning_rate": 3e-4, "mean": {"modes": 2.0}}],
             "config": {"num_seeds": 1, "sweep_key": "d_optimizer.learning_rate"}}  # two runs: one seed, two rates
    assert final_summary(rates) == ["step 20  d_optimizer.learning_rate=0.0001  modes 0",
                                    "step 20  d_optimizer.learning_rate=0.0003  modes 2"]
    assert final_summary({**rates, "config": {**rates["config"], "num_seeds": 3}})[1].endswith("modes 2 (mean over 3 seeds)")
