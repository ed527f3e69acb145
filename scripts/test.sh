#!/usr/bin/env bash
# Run every check CI runs: lint, types, then the whole test suite.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
# The console's browser tests drive Debian's Chromium (Playwright's browser download is
# unreachable here); install it when missing so CI never skips them.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
ruff check .
mypy
exec python -m pytest -q "$@"
