"""The bad-input tests' forked runner gives each command what a fresh `python ...` process gives it."""

import pathlib
import subprocess
import sys

from forked_cli import run_commands

ROOT = pathlib.Path(__file__).resolve().parents[1]

SNIPPETS = {
    "prints_and_exits_0": "import sys; print('out', sys.argv[1:]); print('err', file=sys.stderr)",
    "exit_code": "import sys; print('partial'); sys.exit(3)",
    "exit_message": "import sys; sys.exit('a message')",
    "uncaught": "raise KeyError('boom')",
    "argv_and_path": "import sys; print(sys.argv, repr(sys.path[0]))",
    "exit_handlers_run": "import atexit; atexit.register(lambda: print('at exit'))",
    "jax_in_the_child": "import jax.numpy as jnp; print(float(jnp.arange(4.0).sum()))",
}


def test_each_command_gets_a_fresh_processs_exit_code_stdout_and_stderr(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint(sys.argv[1:], sys.path[0] == __import__('os').path.dirname(__file__))\nsys.exit(2)\n")
    commands = {name: ["-c", code, "--flag=1"] for name, code in SNIPPETS.items()}
    commands["module"] = ["-m", "json.tool", "--help"]
    commands["file"] = [str(script), "--x=1"]
    forked = run_commands(commands, cwd=str(ROOT))
    for name, argv in commands.items():
        fresh = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True)
        if name == "uncaught":  # the traceback's frames differ (the runner's), its first and last lines do not
            summary = lambda result: (result[0], result[1], result[2].splitlines()[0], result[2].splitlines()[-1])
            assert summary(forked[name]) == summary((fresh.returncode, fresh.stdout, fresh.stderr))
        else:
            assert forked[name] == (fresh.returncode, fresh.stdout, fresh.stderr), name
    assert forked["exit_code"][0] == 3 and forked["uncaught"][0] == 1 and "KeyError: 'boom'" in forked["uncaught"][2]
    assert forked["exit_handlers_run"][1] == "at exit\n"
