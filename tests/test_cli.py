"""Tests for `jaxgan.cli`: what the scripts' command lines show (help, logging); their one-line errors are tested
with each script (test_main.py, test_reproduction_inputs.py, ...)."""

import pathlib
import subprocess
import sys

from forked_cli import run_commands

ROOT = pathlib.Path(__file__).resolve().parents[1]
PRINT_VERBOSITY = "from absl import logging; from jaxgan.cli import run; run(lambda argv: print(logging.get_verbosity()))"


def test_scripts_log_warnings_only_unless_verbosity_is_given_and_list_their_shared_flags_in_help():
    results = run_commands({
        "quiet": ["-c", PRINT_VERBOSITY],
        "verbose": ["-c", PRINT_VERBOSITY, "--verbosity=0"],
        "figure_flag": ["scripts/plot_runs.py", "--help"],
        "config_flag": ["scripts/reproduce_infogan.py", "--help"],
    }, cwd=str(ROOT))  # fmt: skip
    assert results["quiet"][:2] == (0, "-1\n")  # absl's WARNING: orbax's per-file INFO lines are not shown
    assert results["verbose"][:2] == (0, "0\n")  # INFO, as asked
    # flags defined by jaxgan.cli for a script are listed by its --help, not only by --helpfull
    _, out, _ = results["figure_flag"]
    assert "--out: The figure's path" in out.split("scripts/plot_runs.py:")[1].split("jaxgan.cli:")[0]
    _, out, _ = results["config_flag"]
    assert "--config:" in out.split("scripts/reproduce_infogan.py:")[1]


def test_the_unrolled_ring_wrapper_shows_its_own_defaults_in_help():
    proc = subprocess.run([sys.executable, "scripts/reproduce_unrolled_ring.py", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]  # absl ends --help with exit code 1
    assert "Metz et al. 2016, Figure 1" in proc.stdout
    assert "--methods=k0,k10 --block=unrolled_ring --workdir=runs/unrolled_ring; that script's help:" in proc.stdout
    proc = subprocess.run([sys.executable, "scripts/reproduce_unrolled_ring.py", "-helpshort"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "that script's help:" in proc.stdout  # absl's single-dash spelling too
    # a default the user gives is the user's, not listed as the wrapper's
    proc = subprocess.run([sys.executable, "scripts/reproduce_unrolled_ring.py", "--help", "--methods=k10"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "--methods=k0,k10" not in proc.stdout.split("that script's help:")[0]
