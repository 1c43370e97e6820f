#!/usr/bin/env bash
# Creates .venv (once) and installs jaxgan with its test dependencies into it; re-installs when pyproject.toml
# changes. Sourced by scripts/demo.sh, scripts/demo_images.sh and scripts/test.sh, so a fresh clone needs only Python 3.10+ and pip.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv" >&2
  python3 -m venv "$venv"
fi
stamp="$venv/.jaxgan-installed"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing jaxgan and its dependencies into $venv (first run takes a minute or two)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e "$root[dev]"
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
