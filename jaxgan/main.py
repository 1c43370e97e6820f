"""Command line: `python -m jaxgan.main --config=experiments/ring8.py --workdir=DIR [--config.KEY=VALUE ...]`.

Running the same command again on the same workdir resumes from its latest checkpoint. Exit codes: 0 done or
preempted (SIGTERM, checkpoint written), 1 training failed (non-finite loss), 2 bad input.
"""

from __future__ import annotations

import difflib
import pathlib
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. experiments/ring8.py.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and figures.")


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def _config_keys() -> list[str]:
    from jaxgan.config import default_config, flatten

    return list(flatten(default_config()))


def _unknown_config_override(argv: list[str]) -> str | None:
    """The first `--config.KEY=...` in argv whose KEY the runner does not know, as a one-line message."""
    known = _config_keys()
    for arg in argv[1:]:
        match = re.match(r"--config\.([\w.]+)", arg)
        if match and match.group(1) not in known:
            close = difflib.get_close_matches(match.group(1), known, n=1)
            hint = f" (did you mean --config.{close[0]}?)" if close else ""
            return f"--config.{match.group(1)}: unknown config key{hint}"
    return None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _config_path(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing (which also loads the config file), every failure turned into one line (exit 2)."""
    try:
        return flags.FLAGS(argv)
    except Exception as error:  # noqa: BLE001 - includes any failure of user code in the config file
        path = _config_path(argv)
        unknown = re.search(r"Unknown command line flag '([^']+)'", str(error))
        if path and not pathlib.Path(path).is_file():
            fail(f"--config={path}: no such file")
        if message := _unknown_config_override(argv):
            fail(message)
        if unknown:
            close = difflib.get_close_matches(unknown.group(1), ["config", "workdir"], n=1)
            hint = f" (did you mean --{close[0]}?)" if close else ""
            fail(f"--{unknown.group(1)}: unknown flag; allowed: --config, --workdir, --config.KEY{hint}")
        if isinstance(error, flags.Error):
            fail(_one_line(error))
        cause = error.__cause__ or error
        fail(f"--config={path}: could not load it ({type(cause).__name__}: {_one_line(cause)})")
    return []


def load_config():
    """The config named by --config with its overrides applied, or a one-line error (exit 2)."""
    if not flags.FLAGS["config"].present:
        fail("--config is required, e.g. --config=experiments/ring8.py")
    path = flags.FLAGS["config"].config_filename
    if not pathlib.Path(path).is_file():
        fail(f"--config={path}: no such file")
    try:
        config = _CONFIG.value
    except Exception as error:  # noqa: BLE001 - any failure of user code in the config file
        cause = error.__cause__ or error
        fail(f"--config={path}: could not load it ({type(cause).__name__}: {_one_line(cause)})")
    if not hasattr(config, "items"):
        fail(f"--config: get_config() must return an ml_collections.ConfigDict, got {type(config).__name__}")
    return config


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
    if len(argv) > 1:
        fail(f"unexpected argument {argv[1]!r}; flags are written --name=value")
    config = load_config()
    if not _WORKDIR.value:
        fail("--workdir is required: the directory for checkpoints, metrics and figures")
    workdir = pathlib.Path(_WORKDIR.value)
    if workdir.exists() and not workdir.is_dir():
        fail(f"--workdir={workdir}: exists and is not a directory")

    from jaxgan.config import ConfigError, validate

    try:
        validate(config)
    except ConfigError as error:
        fail(str(error))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"--workdir={workdir}: cannot create it ({error.strerror})")

    from jaxgan.checkpoint import CheckpointMismatchError
    from jaxgan.train import NonFiniteLossError, Preempted, train_and_evaluate

    try:
        result = train_and_evaluate(config, str(workdir))
    except CheckpointMismatchError as error:
        fail(f"--workdir={workdir}: {error}; was it written with another config? Use a new --workdir")
    except Preempted as stop:
        print(f"preempted: checkpoint written at step {stop.step}; run the same command to resume", flush=True)
        sys.exit(0)
    except NonFiniteLossError as error:
        fail(str(error), code=1)
    shown = {"step": result["step"], **result["mean"]} if "mean" in result else result
    summary = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()
                        if k not in ("config", "jacobian_eigenvalues"))  # fmt: skip
    if "mean" in result:
        summary = f"{summary} (mean over {len(result['runs'])} seeds)"
    print(f"done: {summary}  -> {workdir}/eval.json", flush=True)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
