#!/usr/bin/env bash
# Install FIXER (once), check lint and formatting, run the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/core -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/setup.sh
echo "Lint and format (ruff)"
"$PY" -m ruff check .
"$PY" -m ruff format --check .
echo "Tests (pytest; a few minutes)"
"$PY" -m pytest "$@"
