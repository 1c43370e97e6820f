"""Command line: `python -m jaxgan.main --config=experiments/ring8.py --workdir=DIR [--config.KEY=VALUE ...]`.

Running the same command again on the same workdir resumes from its latest checkpoint. Exit codes: 0 done or
preempted (SIGTERM, checkpoint written), 1 training failed (non-finite loss), 2 bad input.

The batch is split over every device present (`--config.num_devices` to use fewer). A multi-host job runs the
same command on every host with `--coordinator_address=HOST:PORT --num_processes=N --process_id=I`
(`jax.distributed.initialize`; on clusters it detects these itself, leave them out there); process 0 writes the
files.

`--branch_from=WORKDIR --branch_step=N` starts the new workdir from that run's checkpoint at step N, under a config
that may add a learning-rate decay beginning at or after N updates of that optimizer (jaxgan/branch.py); the same
command resumes it.
"""

from __future__ import annotations

import pathlib
import sys

from absl import app, flags
from ml_collections import config_flags

from jaxgan.cli import fail, one_line, parse_flags, quiet_logging

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. experiments/ring8.py.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and figures.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "Multi-host job: HOST:PORT of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-host job: number of processes.", lower_bound=1)
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-host job: this process's index.", lower_bound=0)
_BRANCH_FROM = flags.DEFINE_string(
    "branch_from", None, "Workdir of a run to branch from at --branch_step (a new schedule from there on; jaxgan/branch.py)."
)
_BRANCH_STEP = flags.DEFINE_integer("branch_step", None, "The step of --branch_from's checkpoint to branch at.", lower_bound=0)
_FLAGS = ("config", "workdir", "coordinator_address", "num_processes", "process_id", "branch_from", "branch_step")


def load_config():
    """The config named by --config with its overrides applied (`parse_flags` has loaded it), or a one-line error."""
    if not flags.FLAGS["config"].present:
        fail("--config is required, e.g. --config=experiments/ring8.py")
    return _CONFIG.value


def initialize_distributed() -> None:
    """Joins the multi-host job named by the flags (nothing without them); before any JAX computation."""
    if _COORDINATOR.value is None and _NUM_PROCESSES.value is None and _PROCESS_ID.value is None:
        return
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU hosts; GPUs and TPUs use their own
    try:
        jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    except Exception as error:  # noqa: BLE001 - bad address, missing flag, coordinator unreachable
        fail(f"--coordinator_address={_COORDINATOR.value}: could not join the job ({one_line(error)})")


def branch(config, workdir: pathlib.Path) -> None:
    """Writes the branch named by --branch_from/--branch_step into `workdir`, unless it holds it already (a rerun of
    the same command, which then resumes), or a one-line error (exit 2). A branch cut short before its checkpoint
    was written is written again."""
    import json

    from jaxgan.branch import BRANCHED_FROM_FILE, branch_run
    from jaxgan.config import ConfigError

    if _BRANCH_FROM.value is None or _BRANCH_STEP.value is None:
        fail("--branch_from and --branch_step go together: the run to branch from and the step of its checkpoint")
    source, step = pathlib.Path(_BRANCH_FROM.value), _BRANCH_STEP.value
    record = workdir / BRANCHED_FROM_FILE
    if record.exists():
        try:  # written atomically, but a power cut before the data reached the disk can leave it empty
            saved = json.loads(record.read_text())
            saved_source, saved_step = saved["source"], saved["step"]
        except (ValueError, KeyError, TypeError) as error:
            fail(f"--workdir={workdir}: its {BRANCHED_FROM_FILE} is unreadable ({type(error).__name__}: {error}); "
                 "remove the workdir to branch again")  # fmt: skip
        if (saved_source, saved_step) != (str(source.resolve()), step):
            fail(f"--workdir={workdir}: holds the branch of {saved_source} at step {saved_step}; use a new --workdir")
        from jaxgan.checkpoint import saved_steps

        if saved_steps(workdir / "checkpoints"):
            return
    import jax

    if jax.process_count() > 1:
        fail("--branch_from: branch in one process first (same flags, no multi-host flags), then start the job")
    try:
        changes = branch_run(str(source), step, config, str(workdir))
    except ConfigError as error:
        fail(str(error))
    print(f"branched {source} at step {step} into {workdir}: {'; '.join(changes) or 'no setting changed'}", flush=True)


def main(argv: list[str]) -> None:
    quiet_logging()
    if len(argv) > 1:
        fail(f"unexpected argument {argv[1]!r}; flags are written --name=value")
    config = load_config()
    if not _WORKDIR.value:
        fail("--workdir is required: the directory for checkpoints, metrics and figures")
    workdir = pathlib.Path(_WORKDIR.value)
    if workdir.exists() and not workdir.is_dir():
        fail(f"--workdir={workdir}: exists and is not a directory")

    from jaxgan.config import ConfigError, check_overrides_have_effect, validate

    try:
        validate(config)
        check_overrides_have_effect(config, config_flags.get_override_values(flags.FLAGS["config"]))
    except ConfigError as error:
        fail(str(error))
    for key in ("path", "data_dir"):  # saved absolute: a resume from another folder must read the same data
        if config.data.get(key):
            config.data[key] = str(pathlib.Path(config.data[key]).expanduser().absolute())
    initialize_distributed()
    if _BRANCH_FROM.value is not None or _BRANCH_STEP.value is not None:
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            fail(f"--workdir={workdir}: cannot create it ({error.strerror})")
        branch(config, workdir)

    from jaxgan.checkpoint import CheckpointDamagedError, CheckpointMismatchError, CheckpointSaveError
    from jaxgan.train import NonFiniteLossError, Preempted, final_summary, train_and_evaluate

    try:
        result = train_and_evaluate(config, str(workdir))
    except ConfigError as error:  # what depends on the machine: devices present, batch split over them
        fail(str(error))
    except CheckpointDamagedError as error:
        fail(
            f"--workdir={workdir}: {error}; move them out of {workdir / 'checkpoints'} to start over (nothing was "
            "changed), and keep_checkpoints >= 2 keeps an older step to fall back on",
            shutdown=False,
        )
    except CheckpointMismatchError as error:
        fail(
            f"--workdir={workdir}: {error}; if another config or jaxgan version wrote them, rerun with its flags, "
            "or start over with a new --workdir",
            shutdown=False,
        )
    except Preempted as stop:
        print(f"preempted: {stop}", flush=True)
        sys.exit(0)
    except NonFiniteLossError as error:
        fail(str(error), code=1)
    except CheckpointSaveError as error:
        fail(
            f"--workdir={workdir}: {error}; the run stopped there. Once the disk has room (or the path is back), the "
            "same command resumes from the last checkpoint that was written",
            code=3,
        )
    lines = final_summary(result)
    for line in lines[:-1]:
        print(f"done: {line}", flush=True)
    print(f"done: {lines[-1]}  -> {workdir}/eval.json", flush=True)


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: parse_flags(argv, _FLAGS))
