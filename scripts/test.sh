#!/usr/bin/env bash
# The whole test suite, from a fresh clone: sets up .venv if needed, then runs pytest, one worker per core (up to
# 4; JAXGAN_TEST_WORKERS overrides, 0 runs in this process), each test file on one worker so that its module-level
# fixtures are built once.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
cores='import os; print(min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))'
workers="${JAXGAN_TEST_WORKERS:-$(python -c "$cores")}"
exec python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder "$@"  # no path given: pyproject.toml's testpaths, tests/
