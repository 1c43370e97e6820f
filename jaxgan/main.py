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


def _known_flag_names() -> list[str]:
    names = ["config", "workdir"]
    try:
        from jaxgan.config import default_config

        names += [f"config.{k}" for k in _flatten_keys(default_config())]
    except Exception:  # noqa: BLE001 - suggestions are a nicety
        pass
    return names


def _flatten_keys(config, prefix: str = "") -> list[str]:
    out = []
    for key, value in config.items():
        if hasattr(value, "items"):
            out += _flatten_keys(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def _explain_flags_error(error: Exception, argv: list[str]) -> str:
    """One line for an absl/ml_collections flag-parsing error, with a did-you-mean for unknown names."""
    text = " ".join(str(error).split())
    unknown = re.search(r"Unknown command line flag '([^']+)'", text) or re.search(
        r"[Kk]ey '?([\w.]+)'? (?:does not exist|not found)", text
    )
    if unknown:
        name = unknown.group(1)
        if not name.startswith("config.") and any(a.startswith(f"--config.{name}") for a in argv):
            name = f"config.{name}"
        close = difflib.get_close_matches(name, _known_flag_names(), n=1)
        hint = f" (did you mean --{close[0]}?)" if close else ""
        return f"--{name}: unknown flag or config key{hint}"
    return text


def parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        fail(_explain_flags_error(error, argv))
    except (OSError, SyntaxError, ImportError, AttributeError, KeyError, TypeError, ValueError) as error:
        fail(f"--config: could not load the config ({type(error).__name__}: {' '.join(str(error).split())})")
    return []


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
    if len(argv) > 1:
        fail(f"unexpected argument {argv[1]!r}; flags are written --name=value")
    if _CONFIG.value is None:
        fail("--config is required, e.g. --config=experiments/ring8.py")
    if not _WORKDIR.value:
        fail("--workdir is required: the directory for checkpoints, metrics and figures")
    workdir = pathlib.Path(_WORKDIR.value)
    if workdir.exists() and not workdir.is_dir():
        fail(f"--workdir={workdir}: exists and is not a directory")

    from jaxgan.config import ConfigError, validate

    config = _CONFIG.value
    try:
        validate(config)
    except ConfigError as error:
        fail(str(error))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"--workdir={workdir}: cannot create it ({error.strerror})")

    from jaxgan.train import NonFiniteLossError, Preempted, train_and_evaluate

    try:
        result = train_and_evaluate(config, str(workdir))
    except Preempted as stop:
        print(f"preempted: checkpoint written at step {stop.step}; run the same command to resume", flush=True)
        sys.exit(0)
    except NonFiniteLossError as error:
        fail(str(error), code=1)
    print(
        f"done: step {result['step']}  modes {result['modes']}  high_quality_fraction "
        f"{result['high_quality_fraction']:.3f}  reverse_kl {result['reverse_kl']:.3f}  -> {workdir}/eval.json",
        flush=True,
    )


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
