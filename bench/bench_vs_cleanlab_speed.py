"""Scoring speed and peak memory: FIXER vs cleanlab on identical inputs.

Inputs of CamVid shape (11 classes, 360x480): the real CamVid labels of
../shared/data/camvid (train then val, repeated to reach N images), and
real model outputs -- the out-of-fold probabilities that the CamVid
known-error benchmark (``bench/camvid/run.py``) cached for each image,
resized bilinearly to 360x480 -- written once to float32 ``.npy`` files.
Void pixels take the model's argmax (cleanlab has no ignore value).
Each method then scores the identical arrays in a fresh process:
cleanlab's ``segmentation.filter.find_label_issues`` (all probabilities as
one array, as its API needs) and FIXER's streaming ``LabelErrorFinder``
(batches of 8 read from the same file, both passes). The time of the
scoring step alone is the bar; the time to read the inputs is reported
beside it. ``--cores`` gives both the same cores: FIXER's torch threads
and cleanlab's ``n_jobs`` (and both processes' BLAS threads). Prints one
JSON line per size. ``--stages`` also splits FIXER's time per image into
its stages (one more run, timers around the finder's steps).

    python bench/camvid/run.py --factor 4 --epochs 12 --lr 5e-3 \
        --out bench/results/camvid-f4
    python bench/bench_vs_cleanlab_speed.py --sizes 100 1000 \
        --run-dir bench/results/camvid-f4/runs/<tag>
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from peak_memory import peak_rss_mb

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"
K = 11


def write_inputs(root: Path, n: int, run_dir: Path) -> None:
    """Writes labels (N, H, W) uint8 and probabilities (N, K, H, W)
    float32 under ``root``."""
    samples = []
    for split in ("train", "val"):
        for path in sorted((run_dir / "probs" / split).glob("*.npy")):
            samples.append(
                (CAMVID / "labels" / split / f"{path.stem}.png", path)
            )
    if not samples:
        raise SystemExit(
            f"no cached probabilities under {run_dir}/probs: run "
            "bench/camvid/run.py first (see this script's docstring)"
        )
    h, w = cv2.imread(str(samples[0][0]), cv2.IMREAD_UNCHANGED).shape
    labels = np.lib.format.open_memmap(
        root / "labels.npy", "w+", np.uint8, (n, h, w)
    )
    probs = np.lib.format.open_memmap(
        root / "probs.npy", "w+", np.float32, (n, K, h, w)
    )
    for i in range(n):
        label_path, probs_path = samples[i % len(samples)]
        label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
        small = np.load(probs_path).astype(np.float32).transpose(1, 2, 0)
        large = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        large /= large.sum(axis=2, keepdims=True)
        probs[i] = large.transpose(2, 0, 1)
        # cleanlab has no ignore value: void pixels take the model's
        # argmax, so that neither method is scored on them.
        labels[i] = np.where(label >= K, large.argmax(axis=2), label)
    labels.flush()
    probs.flush()


def run_cleanlab(root: Path, cores: int) -> dict:
    from cleanlab.segmentation.filter import find_label_issues

    t = time.perf_counter()
    labels = np.load(root / "labels.npy")
    probs = np.load(root / "probs.npy")
    read = time.perf_counter() - t
    t = time.perf_counter()
    issues = find_label_issues(labels, probs, n_jobs=cores, verbose=False)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "read_s": read, "flagged": int(issues.sum())}


def _read_batches(path: Path, batch_size: int):
    """Yields consecutive batches of a ``.npy`` array by plain reads (a
    memmap would keep every page it touched in the process's RSS)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(f)
        per_item = int(np.prod(shape[1:]))
        for start in range(0, shape[0], batch_size):
            n = min(batch_size, shape[0] - start)
            data = np.fromfile(f, dtype=dtype, count=n * per_item)
            yield data.reshape(n, *shape[1:])


def run_fixer(root: Path, cores: int, batch_size: int = 8) -> dict:
    import torch

    from fixer_core import LabelErrorFinder

    torch.set_num_threads(cores)

    def batches():
        return zip(
            _read_batches(root / "labels.npy", batch_size),
            _read_batches(root / "probs.npy", batch_size),
            strict=True,
        )

    finder = LabelErrorFinder([str(k) for k in range(K)])
    began, scoring, flagged = time.perf_counter(), 0.0, 0
    for labels, probs in batches():
        t = time.perf_counter()
        finder.update(labels, probs)
        scoring += time.perf_counter() - t
    for labels, probs in batches():
        t = time.perf_counter()
        found = finder.find(labels, probs)
        scoring += time.perf_counter() - t
        flagged += sum(p.area for image in found for p in image)
    total = time.perf_counter() - began
    return {"seconds": scoring, "read_s": total - scoring, "flagged": flagged}


# The steps of pass 2 that ``--stages`` times, as named in fixer_core.finder
# (``_doubtful_region_pixels`` runs inside ``_apply_region_suggestions``).
PASS_2_STEPS = (
    "prepare_labels",
    "prepare_pred_probs",
    "_pixel_suggestions",
    "label_regions",
    "_apply_region_suggestions",
    "_doubtful_region_pixels",
    "find_patch_geometry",
    "_mean_probs",
)


def run_fixer_stages(root: Path, cores: int, batch_size: int = 8) -> dict:
    """FIXER's milliseconds per image in each pass and each step of pass 2
    (wall time; the inputs are read first)."""
    import torch

    import fixer_core.finder as finder_module
    from fixer_core import LabelErrorFinder

    torch.set_num_threads(cores)
    labels = np.load(root / "labels.npy")
    probs = np.load(root / "probs.npy")
    n = len(labels)
    spans = [slice(i, i + batch_size) for i in range(0, n, batch_size)]
    finder = LabelErrorFinder([str(k) for k in range(K)])
    t = time.perf_counter()
    for b in spans:
        finder.update(labels[b], probs[b])
    pass_1 = time.perf_counter() - t
    finder.statistics  # noqa: B018 (ends pass 1 outside the timers)

    spent = dict.fromkeys(PASS_2_STEPS, 0.0)

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - began

        return wrapper

    for name in PASS_2_STEPS:
        fn = getattr(finder_module, name)
        setattr(finder_module, name, timed(name, fn))
    t = time.perf_counter()
    for b in spans:
        finder.find(labels[b], probs[b])
    pass_2 = time.perf_counter() - t
    ms = {"pass_1": pass_1, "pass_2": pass_2, **spent}
    return {name: round(seconds / n * 1e3, 2) for name, seconds in ms.items()}


def measure(method: str, root: Path, cores: int) -> dict:
    """Runs one method in a fresh process on ``cores`` cores; returns time
    and peak RSS."""
    blas = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    threads = dict.fromkeys(blas, str(cores))
    out = subprocess.run(
        [sys.executable, __file__, "--run", method, "--root", str(root)]
        + ["--cores", str(cores)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **threads},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100])
    parser.add_argument("--run", choices=("cleanlab", "fixer", "stages"))
    parser.add_argument("--root", type=Path)
    parser.add_argument(
        "--cores",
        type=int,
        default=1,
        help="cores each method may use (default 1)",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        help="a CamVid benchmark run folder holding probs/<split>/*.npy",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also time FIXER's stages (ms per image)",
    )
    args = parser.parse_args()
    if not args.run and args.run_dir is None:
        parser.error("--run-dir is required")
    if args.run:
        runner = {
            "cleanlab": run_cleanlab,
            "fixer": run_fixer,
            "stages": run_fixer_stages,
        }[args.run]
        result = runner(args.root, args.cores)
        if args.run != "stages":  # that run holds all inputs at once
            result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_inputs(root, n, args.run_dir)
            fixer = measure("fixer", root, args.cores)
            cleanlab = measure("cleanlab", root, args.cores)
            stages = (
                measure("stages", root, args.cores) if args.stages else None
            )
        print(
            json.dumps(
                {
                    "images": n,
                    "cores": args.cores,
                    "fixer": fixer,
                    "cleanlab": cleanlab,
                    "speedup": round(
                        cleanlab["seconds"] / fixer["seconds"], 1
                    ),
                    "speedup_with_reads": round(
                        (cleanlab["seconds"] + cleanlab["read_s"])
                        / (fixer["seconds"] + fixer["read_s"]),
                        1,
                    ),
                    "memory_ratio": round(
                        cleanlab["peak_rss_mb"] / fixer["peak_rss_mb"], 1
                    ),
                    **({"fixer_ms_per_image": stages} if stages else {}),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
