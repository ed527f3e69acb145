#!/usr/bin/env bash
# Run every check CI runs: lint, types, then the whole test suite.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
ruff check .
mypy
exec python -m pytest -q "$@"
