"""Many command lines of this project's programs, each in its own process, for the price of one interpreter start.

A bad-input test runs dozens of `python -m jaxgan.main ...` or `python scripts/X.py ...` commands that each stop in
well under a second, after about 2.5 s of importing jax, flax, optax and orbax. `run_commands` starts one driver
process that imports them once and forks a child per command; the child runs the command as the interpreter would
(`runpy`, with `sys.argv` and `sys.path[0]` set as `python -m`, `python FILE` or `python -c` sets them), so its exit
code, stdout and stderr are the command's own. The driver never touches a jax backend (so no XLA thread pool is
forked) and never imports an absl program (whose flags each child defines afresh).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence

_PRELOADED = ("jax", "jax.numpy", "flax.linen", "optax", "orbax.checkpoint", "ml_collections", "absl.app", "jaxgan.train")


def run_commands(commands: Mapping[str, Sequence[str]], cwd: str, timeout: float = 600) -> dict[str, tuple[int, str, str]]:
    """{name: argv after `python`} -> {name: (exit code, stdout, stderr)}, each argv run as `python *argv` in cwd."""
    driver = subprocess.run(
        [sys.executable, os.path.abspath(__file__)], input=json.dumps({k: list(v) for k, v in commands.items()}),
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert driver.returncode == 0, driver.stderr[-3000:]
    return {name: tuple(result) for name, result in json.loads(driver.stdout).items()}


def _exit_code(error: SystemExit) -> int:
    if error.code is None or isinstance(error.code, int):
        return error.code or 0
    print(error.code, file=sys.stderr)  # as the interpreter does with `sys.exit("message")`
    return 1


def _run_in_child(argv: list[str]) -> int:
    import atexit
    import runpy
    import traceback

    atexit._clear()  # the driver's exit handlers are not the command's
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path[0] = os.getcwd()
            runpy._run_module_as_main(argv[1])  # what `python -m` calls: sys.argv[0] becomes the module's file
        elif argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            sys.path[0] = ""
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv = list(argv)
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as error:
        code = _exit_code(error)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _main() -> None:
    import importlib

    commands = json.load(sys.stdin)
    for module in _PRELOADED:
        importlib.import_module(module)
    results = {}
    tmp = tempfile.mkdtemp()
    try:
        for name, argv in commands.items():
            out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(out, 1)
                os.dup2(err, 2)
                code = 1
                try:
                    code = _run_in_child(argv)
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            with open(out_path) as out, open(err_path) as err:
                results[name] = (code, out.read(), err.read())
    finally:
        shutil.rmtree(tmp)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    _main()
