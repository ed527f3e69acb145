#!/usr/bin/env bash
# Create .venv (once) and install CalfLine with its test tools into it.
# Sourced by scripts/serve.sh and scripts/test.sh so each works on a fresh machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CALFLINE_VENV:-$ROOT/.venv}"
# The interpreter: CALFLINE_PYTHON if set; else the system's own /usr/bin/python3
# when it is 3.11+ and can make a venv (distributions build CPython with
# profile-guided and link-time optimization, as the Docker image's python:3.11
# is; a version manager's default build, such as pyenv's, is not, and costs a
# webhook about a tenth more CPU: README "Performance"); else python3 on PATH.
system_python_fits() {
  /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}
if [ ! -x "$VENV/bin/python" ]; then
  if [ -n "${CALFLINE_PYTHON:-}" ] || [ -e "$VENV" ] || ! system_python_fits; then
    "${CALFLINE_PYTHON:-python3}" -m venv "$VENV"
  elif ! /usr/bin/python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 makes no venv without the python3-venv package; the failed
    # attempt leaves a directory behind, which did not exist before this line.
    echo "bootstrap: /usr/bin/python3 made no venv; using python3 on PATH" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
fi
# Reinstall only when pyproject.toml changed since the last install.
STAMP="$VENV/.calfline-installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[${CALFLINE_EXTRAS:-test}]"
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
