#!/usr/bin/env bash
# Start CalfLine locally on its embedded defaults: http://127.0.0.1:5000
set -euo pipefail
CALFLINE_EXTRAS="${CALFLINE_EXTRAS:-test}" source "$(dirname "$0")/bootstrap.sh"
# Fit the matcher once if intents/ changed since the stored model (about 10 s).
calfline train --if-stale
exec calfline serve "$@"
