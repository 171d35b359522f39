#!/usr/bin/env bash
# Install FIXER (if needed) and run it end to end: the bundled demo by
# default, or a real folder (see `python scripts/fixer_run.py --help`).
# `bash scripts/demo.sh --app` opens the FiftyOne App on the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export FIFTYONE_DATABASE_VALIDATION=${FIFTYONE_DATABASE_VALIDATION:-false}
python3 scripts/fixer_run.py "$@"
