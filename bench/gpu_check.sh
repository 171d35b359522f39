#!/usr/bin/env bash
# The GPU checks, as one short script for a lent GPU machine (about 5
# minutes on an H100): the core tests on CUDA (the same results as on the
# CPU), then FIXER's scoring throughput on ADE20K-like batches on the GPU
# and, for the ratio, on that machine's CPU. Run from the repository root;
# it needs torch, numpy, opencv and pytest, no FiftyOne. Results go to
# $OUT (when set) or bench/results/. With two or more GPUs it also runs
# the finder over one rank per GPU (bench/bench_ranks.py, nccl).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv \
    | tee "$out/gpu.txt"
python3 -m pytest tests/core -q -p no:cacheprovider --device cuda \
    2>&1 | tee "$out/core-tests-cuda.txt"
python3 bench/bench_scoring.py --sizes 1000 2000 --device cuda \
    | tee "$out/scale-ade-cuda.jsonl"
python3 bench/bench_scoring.py --sizes 200 --device cpu \
    | tee "$out/scale-ade-cpu.jsonl"
# Multi-GPU: the finder over one rank per GPU (nccl), checked against one
# process on the same data; skipped where fewer than two GPUs are seen.
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU" || true)
if [ "${ngpu:-0}" -ge 2 ]; then
    torchrun --standalone --nproc-per-node "$ngpu" bench/bench_ranks.py \
        --device cuda --images 256 --check | tee "$out/ranks-ade-cuda.jsonl"
    python3 bench/bench_ranks.py --device cuda --images 256 \
        | tee -a "$out/ranks-ade-cuda.jsonl"
else
    echo "multi-GPU case skipped: ${ngpu:-0} GPU(s)" \
        | tee "$out/ranks-ade-cuda.jsonl"
fi
