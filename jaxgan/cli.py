"""One-line errors on the command line, shared by the runner (`jaxgan.main`) and the scripts.

Bad input ends in `error: MESSAGE` on stderr and exit code 2, never in absl's usage text or a traceback: a bad flag
value, an unknown flag, an unknown `--config.KEY`, a config file that is missing or whose `get_config()` fails. This
module defines no flags, so a script can use it beside its own (importing `jaxgan.main` would define the runner's).
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from absl import app, flags, logging

from jaxgan.registry import did_you_mean, one_line


def fail(message: object, code: int = 2, shutdown: bool = True) -> NoReturn:
    """Bad input: one line on stderr, then exit `code` (2; 1 for a training failure, 3 for an unwritten checkpoint).

    `shutdown=False` exits without the interpreter's shutdown, for a failure before anything was started: orbax's
    abandoned reads of unreadable checkpoints can otherwise print a traceback from their closed event loop after
    the one line (seen in about one run in seven)."""
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
    if not shutdown:
        sys.stdout.flush()
        os._exit(code)
    sys.exit(code)


def _config_flags() -> list[str]:
    from ml_collections.config_flags.config_flags import is_config_flag

    return [name for name in flags.FLAGS if is_config_flag(flags.FLAGS[name])]


def _flag_arguments(argv: Sequence[str], name: str) -> list[str]:
    """The values given to `--name` in argv (`--name=VALUE` or `--name VALUE`), in order: absl keeps the last."""
    values = []
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            values.append(arg.split("=", 1)[1])
        elif arg == f"--{name}" and i + 1 < len(argv):
            values.append(argv[i + 1])
    return values


def _config_file(path: str) -> pathlib.Path:
    """The file of a config flag's value: ml_collections reads `FILE:ARGUMENT` as FILE given ARGUMENT."""
    if pathlib.Path(path).is_file() or ":" not in path:
        return pathlib.Path(path)
    return pathlib.Path(path.split(":", 1)[0])


def _unknown_config_override(argv: Sequence[str], name: str) -> str | None:
    """The first `--NAME.KEY=...` in argv whose KEY the runner's config does not have, as a one-line message."""
    from jaxgan.config import default_config, flatten

    known = None
    for arg in argv[1:]:
        match = re.match(rf"--{name}\.([\w.]+)", arg)
        if match:
            known = known or list(flatten(default_config()))
            key = match.group(1)
            inside = sorted((k for k in known if k.startswith(f"{key}.")), key=lambda k: k != f"{key}.name")
            if inside:  # a section, not a setting
                return f"--{name}.{key}: a section of the config, not a setting; give one of its keys, e.g. --{name}.{inside[0]}"
            if key not in known:
                return f"--{name}.{key}: unknown config key{did_you_mean(key, known, f'--{name}.')}"
    return None


def _given_file(argv: Sequence[str], name: str) -> str | None:
    """The file config flag `name` was given (the last on the command line), else its default."""
    given = _flag_arguments(argv, name)
    if given:
        return given[-1]
    try:
        return flags.FLAGS[name].config_filename
    except Exception:  # noqa: BLE001 - not parsed: absl stopped before it
        return None


def _load_failure(name: str, path: str | None, error: BaseException) -> str:
    cause = error
    while cause.__cause__ is not None:  # the user's own exception, under ml_collections' and absl's wrappers
        cause = cause.__cause__
    if _PARSE_FAILURE in str(cause):  # the traceback is in the message: its last line names the user's error
        return f"--{name}={path}: could not load it ({str(cause).strip().splitlines()[-1].strip()})"
    return f"--{name}={path}: could not load it ({type(cause).__name__}: {one_line(cause) or '-'})"


def parse_flags(argv: list[str], allowed: Sequence[str] = ()) -> list[str]:
    """absl's parsing of `argv` that also loads every config file given (ml_collections loads them lazily: here
    before any work), with each failure as one line (`fail`). `allowed`, the program's own flags, are listed when
    a flag is unknown; without it, absl's message (with its suggestions) is the line."""
    config_names = _config_flags()
    for name in config_names:
        for path in _flag_arguments(argv, name):
            if not _config_file(path).is_file():
                fail(f"--{name}={path}: no such file")
    loading = None
    try:
        rest = flags.FLAGS(argv)
        for loading in config_names:  # its default file too: `--NAME.KEY` overrides apply when it loads
            _check_loaded(loading, flags.FLAGS[loading].value)
        return rest
    except Exception as error:  # noqa: BLE001 - includes any failure of user code in a config file
        for name in config_names:
            if message := _unknown_config_override(argv, name):
                fail(message)
        unknown = re.search(r"Unknown command line flag '([^']+)'", str(error))
        for name in config_names if unknown else ():
            if unknown.group(1).startswith(f"{name}.") and not _flag_arguments(argv, name):
                fail(f"--{unknown.group(1)}: an override of --{name}, which is not given; give --{name}=FILE first "
                     "(an experiment file, e.g. experiments/ring8.py)")  # fmt: skip
        if unknown and allowed:
            hint = did_you_mean(unknown.group(1), allowed, "--")
            listed = ", ".join(f"--{name}" for name in allowed)
            configs = "".join(f", --{name}.KEY" for name in config_names if name in allowed)
            fail(f"--{unknown.group(1)}: unknown flag; allowed: {listed}{configs}{hint}")
        name = loading or (config_names[0] if config_names else "config")
        if isinstance(error, flags.Error) and not (name in config_names and _PARSE_FAILURE in str(error)):
            fail(error)
        fail(_load_failure(name, _given_file(argv, name), error))


# ml_collections' wording when get_config() raises while absl parses the flag (the traceback follows it)
_PARSE_FAILURE = "Error whilst parsing config file"


def _check_loaded(name: str, config: object) -> None:
    """Fails in one line unless `config`, the loaded value of config flag `name`, is a config (or no file was
    given). ml_collections keeps a file that raised OSError as a placeholder that raises on use."""
    if config is None or hasattr(type(config), "items"):
        return
    stored = vars(config).get("_error") if hasattr(config, "__dict__") else None
    if isinstance(stored, BaseException):
        fail(_load_failure(name, flags.FLAGS[name].config_filename, stored))  # parsed: its name is known
    fail(f"--{name}: get_config() must return an ml_collections.ConfigDict, got {type(config).__name__}")


def figure_formats() -> list[str]:
    """The file suffixes (without the dot) matplotlib writes figures in here: pgf only where its TeX is installed."""
    import shutil

    import matplotlib
    from matplotlib.figure import Figure

    formats = set(Figure().canvas.get_supported_filetypes())
    if not shutil.which(matplotlib.rcParams["pgf.texsystem"]):
        formats.discard("pgf")
    return sorted(formats)


def define_figure_flag(name: str, default: str | None, help_text: str, **kwargs):
    """`flags.DEFINE_string` for the path of a figure, checked when the flags are parsed (one line), not when the
    figure is drawn after the training: its suffix must be one matplotlib writes."""

    def check(value: str | None) -> bool:
        formats = figure_formats() if value else []
        if value and pathlib.Path(value).suffix.lstrip(".").lower() not in formats:
            raise flags.ValidationError(f"a figure's file name must end in one of .{', .'.join(formats)}")
        return True

    holder = flags.DEFINE_string(name, default, help_text, **kwargs)
    flags.register_validator(name, check)
    _list_in_callers_help(name)
    return holder


def _list_in_callers_help(name: str) -> None:
    """Makes --NAME, defined here for a script, a key flag of that script, so that its `--help` lists it (absl's
    `--help` shows the main module's key flags; a flag defined in this module would only be under `--helpfull`)."""
    caller = sys._getframe(2).f_globals["__name__"]
    module = sys.argv[0] if caller == "__main__" else caller  # the name absl gives the main module
    flags.FLAGS.register_key_flag_for_module(module, flags.FLAGS[name])


def define_config_file(name: str, default: str, help_text: str):
    """`config_flags.DEFINE_config_file` with a default file, whose overrides (`--NAME.KEY=...`, read from sys.argv
    as the flag is defined, when the script is imported) fail in one line rather than in a traceback on import."""
    from ml_collections import config_flags

    try:
        holder = config_flags.DEFINE_config_file(name, default, help_text)
    except Exception as error:  # noqa: BLE001 - an override that does not fit the default file
        fail(_unknown_config_override(sys.argv, name) or _load_failure(name, default, error))
    _list_in_callers_help(name)
    return holder


def quiet_logging() -> None:
    """absl logging at WARNING and above unless the command line sets --verbosity: orbax logs every file it reads or
    writes at INFO, jax its backend probing."""
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)


def run(main, allowed: Sequence[str] = ()) -> None:
    """`absl.app.run(main)` with `parse_flags`, and `app.UsageError` or `jaxgan.config.ConfigError` raised by `main`
    (a missing run, a config that does not fit) ending in one line."""
    from jaxgan.config import ConfigError

    def checked(argv: list[str]) -> None:
        quiet_logging()
        try:
            main(argv)
        except (app.UsageError, ConfigError) as error:
            fail(error)

    app.run(checked, flags_parser=lambda argv: parse_flags(argv, allowed))
