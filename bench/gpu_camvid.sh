#!/usr/bin/env bash
# The CamVid known-error benchmark at full resolution (360x480) on a lent
# GPU: 5-fold U-Nets trained on CUDA, then FIXER vs cleanlab on val and
# train. The device machine has no ../shared and no cleanlab, so prepare
# both here first (into folders .git/info/exclude ignores), then carry them:
#
#   bash bench/gpu_camvid.sh prepare          # here: .camvid/ and .whl/
#   run(command="bash bench/gpu_camvid.sh", carry=[".camvid", ".whl"])
#
# EPOCHS (default 30), FACTOR (default 1) and WIDTH (U-Net width, default
# 16) choose the run; further arguments go to bench/camvid/run.py (a smoke
# run on the CPU: `FACTOR=4 EPOCHS=1 bash bench/gpu_camvid.sh --device cpu
# --limit 40 --folds 2`). Reports and logs go to $OUT (when set) or
# bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} == prepare ]]; then
    for path in /.camvid/ /.whl/; do
        grep -qxF "$path" .git/info/exclude 2>/dev/null \
            || echo "$path" >>.git/info/exclude
    done
    rm -rf .camvid && cp -r ../shared/data/camvid .camvid
    python3 -m pip download -q --no-deps --only-binary=:all: -d .whl \
        cleanlab==2.9.0 termcolor==3.3.0
    du -sh .camvid .whl
    exit 0
fi

out=${OUT:-bench/results}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if ! python3 -c "import cleanlab" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --target /tmp/site .whl/*.whl
    export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
camvid=.camvid
[[ -d $camvid ]] || camvid=../shared/data/camvid
options=(--camvid "$camvid" --factor "${FACTOR:-1}" --epochs "${EPOCHS:-30}"
    --lr 5e-3 --width "${WIDTH:-16}" --device cuda
    --out bench/results/camvid-gpu "$@")
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
fi
python3 bench/camvid/run.py "${options[@]}" 2>&1 | tee "$out/camvid-val.log"
python3 bench/camvid/evaluate.py "${options[@]}" --split train 2>&1 \
    | tee "$out/camvid-train.log"
cp bench/results/camvid-gpu/runs/*/report-*.md "$out/"
