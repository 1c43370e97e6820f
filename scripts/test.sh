#!/usr/bin/env bash
# The whole test suite, from a fresh clone: sets up .venv if needed, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
exec python -m pytest tests "$@"
