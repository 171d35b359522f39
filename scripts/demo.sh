#!/usr/bin/env bash
# Install FIXER (once) and run it end to end: the demo by default, or your
# own folder (see `bash scripts/demo.sh --help`).
# `bash scripts/demo.sh --app` opens the FiftyOne App on the result.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
for arg in "$@"; do
    if [[ $arg == -h || $arg == --help ]] &&
        "$PY" -c "import cv2, numpy" 2>/dev/null; then
        exec "$PY" scripts/fixer_run.py --help
    fi
done
bash scripts/setup.sh
exec "$PY" scripts/fixer_run.py "$@"
