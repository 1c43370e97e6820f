"""Data parallelism on CPU: 4 forced host devices in one process, and a job of two localhost processes.

Each case runs in a subprocess, since the device count is fixed when JAX starts
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`).
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ml_collections
from jaxgan.parallel import with_host_device_count
from test_train import assert_bitwise_equal, restore_final, state_leaves

ROOT = pathlib.Path(__file__).resolve().parents[1]
RING_RUN = [
    "--config=experiments/ring8.py", "--config.num_steps=40", "--config.unroll_steps=2",
    "--config.steps_per_dispatch=10", "--config.log_every_steps=20", "--config.eval_every_steps=20",
    "--config.checkpoint_every_steps=20", "--config.eval_num_samples=200",
]  # fmt: skip
STREAMED_RUN = [
    "--config=experiments/dcgan_digits.py", "--config.data.loader=stream", "--config.num_steps=40",
    "--config.generator.base_width=8", "--config.discriminator.base_width=8", "--config.batch_size=32",
    "--config.steps_per_dispatch=10", "--config.log_every_steps=20", "--config.eval_every_steps=20",
    "--config.checkpoint_every_steps=20", "--config.eval_num_samples=200",
]  # fmt: skip


def _env(devices: int) -> dict:
    xla_flags = with_host_device_count(os.environ.get("XLA_FLAGS", ""), devices)  # conftest's -O0 kept
    return {**os.environ, "XLA_FLAGS": xla_flags, "JAX_PLATFORMS": "cpu"}


def _python(code: str, devices: int) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=_env(devices), capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _main(args: list[str], devices: int, wait: bool = True):
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxgan.main", *args], cwd=ROOT, env=_env(devices), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return proc.communicate(timeout=600) + (proc.returncode,) if wait else proc


STEP_CHECK = """
    import json, re
    import jax, jax.numpy as jnp
    from jaxgan.config import default_config
    from jaxgan.parallel import replicate
    from jaxgan.tasks import make_task
    from jaxgan.train import init_state, make_mesh, make_train_chunk, swept_hparams, game_factory
    from jaxgan.updates import make_update_rule

    report = {}
    for name, seeds in (("single", 1), ("sweep", 2)):
        config = default_config()
        config.unroll_steps, config.num_seeds = 3, seeds
        if seeds > 1:
            config.sweep_key, config.sweep_values = "d_optimizer.learning_rate", (1e-4,)
        task = make_task(config)
        mesh = make_mesh(config)
        ends, firsts = {}, {}
        flat = lambda s: jnp.concatenate([x.ravel() for x in jax.tree.leaves((s.g_params, s.d_params))])
        for where, m in (("one_device", None), ("mesh", mesh)):
            game_for = game_factory(config, task, m)
            rule_for = lambda hp: make_update_rule(game_for(hp), config)
            chunk = make_train_chunk(rule_for, task.data.sample, config.batch_size, seeds, m)
            state, hparams = init_state(config, rule_for({}), task), swept_hparams(config)
            if m is not None:
                state, hparams = replicate((state, hparams), m)
                hlo = chunk.lower(state, 2, hparams).compile().as_text()
                report[name + "_all_reduces"] = hlo.count("all-reduce-start") + hlo.count("all-reduce(")
                report[name + "_per_device_noise"] = bool(re.search(r"f32\\[[\\d,]*128,256\\]", hlo))  # z: 512 / 4
            state, _ = chunk(state, 1, hparams)
            firsts[where] = flat(state)  # a copy: the next chunk donates `state`
            state, _ = chunk(state, 29, hparams)
            ends[where] = state
            report[name + "_" + where + "_sharding"] = str(jax.tree.leaves(state.d_params)[0].sharding.spec
                                                          if m is not None else "")
        start = init_state(config, rule_for({}), task)
        one, split, init = flat(ends["one_device"]), flat(ends["mesh"]), flat(start)
        # the split run's distance from the one-device run, relative to how far training moved the parameters
        report[name + "_rel_diff"] = float(jnp.linalg.norm(split - one) / jnp.linalg.norm(one - init))
        one, split = firsts["one_device"], firsts["mesh"]
        report[name + "_rel_diff_step_1"] = float(jnp.linalg.norm(split - one) / jnp.linalg.norm(one - init))
    print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def step_report():
    return json.loads(_python(STEP_CHECK, devices=4).strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["single", "sweep"])
def test_split_step_equals_one_device_step(step_report, name):
    """Unrolled steps with the batch split over 4 devices = on one device, up to the order of float sums; the
    program really is split (cross-device all-reduces, G's noise at a quarter of the batch per device) and the
    state stays replicated. After one step the two differ by float rounding alone; over 30 steps the game
    amplifies it (jax 0.10.2: 1.8e-6 and 2.1e-6 after one step, 4.8e-7 and 8.2e-5 after 30 for the single run
    and the sweep), while a wrongly split batch or a
    missing reduction would differ by order 1 from the first step."""
    assert step_report[f"{name}_rel_diff_step_1"] < 1e-5
    assert step_report[f"{name}_rel_diff"] < 1e-3
    assert step_report[f"{name}_all_reduces"] > 0
    assert step_report[f"{name}_per_device_noise"]
    assert step_report[f"{name}_mesh_sharding"] == "P()"


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--config.num_devices=3", "--config.batch_size=512: must be divisible by the 3 devices it is split over"),
        ("--config.num_devices=8", "--config.num_devices=8: only 4 device(s) present"),
    ],
)
def test_device_errors_are_one_line(tmp_path, flag, message):
    _, err, code = _main([*RING_RUN, f"--workdir={tmp_path}", flag], devices=4)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}"), err[-2000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _final_state(workdir: pathlib.Path):
    """(state, step) of the run's latest checkpoint, restored with the config its eval.json records."""
    return restore_final(workdir, ml_collections.ConfigDict(json.loads((workdir / "eval.json").read_text())["config"]))


@pytest.mark.parametrize("run", ["ring", "streamed_digits"])
def test_two_process_job_and_exact_resume_on_a_mesh(tmp_path, run):
    """Two localhost processes of 2 devices each train as one 4-device job: the result equals one process with 4
    devices (up to float summation order), process 0 alone writes the metrics; and a 4-device run stopped at step
    20 and resumed ends bitwise equal to the uninterrupted one. Also for image batches streamed from the host
    (each process reads its half of every global batch)."""
    args = {"ring": RING_RUN, "streamed_digits": STREAMED_RUN}[run]
    port = _free_port()
    job = [
        _main([*args, f"--workdir={tmp_path / 'job'}", f"--coordinator_address=localhost:{port}",
               "--num_processes=2", f"--process_id={i}"], devices=2, wait=False)
        for i in range(2)
    ]  # fmt: skip
    whole = _main([*args, f"--workdir={tmp_path / 'whole'}"], devices=4)
    halves = [_main([*args, f"--workdir={tmp_path / 'halves'}", f"--config.num_steps={n}"], devices=4) for n in (20, 40)]
    for proc in job:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    for out, err, code in (whole, *halves):
        assert code == 0, err[-3000:]
    assert "resuming from the checkpoint at step 20" in halves[1][0]

    steps = [json.loads(line)["step"] for line in (tmp_path / "job" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [json.loads(line)["step"] for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert json.loads((tmp_path / "job" / "eval.json").read_text())["step"] == 40

    (job_state, job_step), (whole_state, whole_step), (resumed_state, _) = (
        _final_state(tmp_path / name) for name in ("job", "whole", "halves")
    )
    assert job_step == whole_step == 40
    # Summation order differs between 2 and 4 local devices; over 40 Adam steps through batch-norm statistics
    # (the DCGAN) that reached 1.8e-5 relative in one entry of 6400 in one CI run.
    rtol, atol = {"ring": (1e-5, 1e-7), "streamed_digits": (1e-4, 1e-6)}[run]
    for x, y in zip(state_leaves(job_state), state_leaves(whole_state)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)
    assert_bitwise_equal(resumed_state, whole_state)



def test_a_job_in_a_workdir_where_a_run_trains_is_refused_by_every_process(tmp_path):
    """Process 0 holds a job's lock; the others learn its answer from it, so none of them goes on to wait, alone,
    in a collective of a job whose process 0 has left."""
    from jaxgan.train import workdir_lock

    port = _free_port()
    args = [*RING_RUN, f"--workdir={tmp_path}", f"--coordinator_address=localhost:{port}", "--num_processes=2"]
    with workdir_lock(tmp_path):  # the run that trains there
        job = [_main([*args, f"--process_id={i}"], devices=2, wait=False) for i in range(2)]
        errors = [proc.communicate(timeout=300)[1] for proc in job]
    expected = [f"error: --workdir={tmp_path}: another run is training in it (process {os.getpid()} on",
                f"error: --workdir={tmp_path}: another run is training in it (process named in training.lock)"]
    for proc, err, want in zip(job, errors, expected):
        lines = err.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(want), err[-2000:]

def test_a_sigterm_to_one_process_of_a_job_stops_every_process_at_the_same_step(tmp_path):
    """Preemption may reach one process of a job first: every process stops at the same step (one that stopped
    alone would leave the other waiting in a collective), and the checkpoint there is the job's latest."""
    import signal

    from jaxgan.checkpoint import Checkpointer
    from test_train import _wait_for_checkpoint

    port = _free_port()
    args = [*RING_RUN, "--config.num_steps=100000", "--config.max_dispatch_seconds=0.5", f"--workdir={tmp_path}",
            f"--coordinator_address=localhost:{port}", "--num_processes=2"]  # fmt: skip
    job = [_main([*args, f"--process_id={i}"], devices=2, wait=False) for i in range(2)]
    _wait_for_checkpoint(tmp_path, job[0], timeout=300)
    job[1].send_signal(signal.SIGTERM)
    steps = []
    for proc in job:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        steps.append(int(out.split("checkpoint written at step ")[1].split(";")[0]))
    assert steps[0] == steps[1] == Checkpointer(tmp_path / "checkpoints").latest_step() > 0


def test_a_checkpoint_of_two_devices_is_read_on_one(tmp_path):
    """Reading tools (branch, sample, the scripts' load_run) restore a run trained on another device count."""
    from scripts.notes import load_run

    out, err, code = _main([*RING_RUN, f"--workdir={tmp_path / 'run'}"], devices=2)
    assert code == 0, err[-3000:]
    _, _, _, state, step = load_run(tmp_path / "run")  # "topology mismatch" before
    assert step == 40
    assert_bitwise_equal(state, _final_state(tmp_path / "run")[0])


def test_a_sweep_of_image_runs_on_two_devices_evaluates_as_on_one(tmp_path):
    """The vmapped image evaluation of a seed sweep hung on a 2-device mesh; each process now evaluates its
    replica of the (replicated) state on one device. Per-seed results as on one device, up to summation order."""
    args = [*STREAMED_RUN[:1], "--config.num_steps=20", "--config.generator.base_width=8",
            "--config.discriminator.base_width=8", "--config.steps_per_dispatch=10", "--config.eval_every_steps=20",
            "--config.eval_num_samples=200", "--config.num_seeds=2"]  # fmt: skip
    for name, devices in (("two", 2), ("one", 1)):
        proc = _main([*args, f"--workdir={tmp_path / name}"], devices=devices, wait=False)
        out, err = proc.communicate(timeout=300)  # a hang fails here instead of blocking the suite
        assert proc.returncode == 0, err[-3000:]
    per_seed = [json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[-1]) for name in ("two", "one")]
    for key in ("eval/fid/per_seed", "eval/inception_score/per_seed"):
        np.testing.assert_allclose(per_seed[0][key], per_seed[1][key], rtol=1e-3)
