#!/usr/bin/env bash
# Start CalfLine locally on its embedded defaults: http://127.0.0.1:5000
set -euo pipefail
CALFLINE_EXTRAS="${CALFLINE_EXTRAS:-test}" source "$(dirname "$0")/bootstrap.sh"
exec calfline serve "$@"
