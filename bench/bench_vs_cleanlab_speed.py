"""Scoring speed and peak memory: FIXER vs cleanlab on identical inputs.

Writes N images of CamVid shape (11 classes, 360x480) -- real CamVid
labels tiled from ../shared/data/camvid, probabilities simulated from them
-- to one float32 ``.npy`` memmap, then scores them in two fresh
processes: cleanlab's ``segmentation.filter.find_label_issues`` (all
probabilities as one array, as its API needs) and FIXER's streaming finder
(batches read from the same file). Prints one JSON line per size.

    python bench/bench_vs_cleanlab_speed.py --sizes 100 1000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"
K = 11


def write_inputs(root: Path, n: int) -> None:
    """Labels (N, H, W) uint8 and probabilities (N, K, H, W) float32."""
    import cv2

    names = sorted((CAMVID / "labels" / "train").glob("*.png"))
    rng = np.random.default_rng(0)
    first = cv2.imread(str(names[0]), cv2.IMREAD_UNCHANGED)
    h, w = first.shape
    labels = np.lib.format.open_memmap(
        root / "labels.npy", "w+", np.uint8, (n, h, w)
    )
    probs = np.lib.format.open_memmap(
        root / "probs.npy", "w+", np.float32, (n, K, h, w)
    )
    for i in range(n):
        label = cv2.imread(str(names[i % len(names)]), cv2.IMREAD_UNCHANGED)
        label = np.where(label >= K, 0, label)  # cleanlab has no ignore
        logits = 3.0 * np.eye(K, dtype=np.float32)[label].transpose(2, 0, 1)
        noise = rng.standard_normal((K, h // 8, w // 8)).astype(np.float32)
        logits += np.stack(
            [cv2.resize(c, (w, h)) for c in noise]
        )  # smooth noise
        e = np.exp(logits - logits.max(axis=0))
        probs[i] = e / e.sum(axis=0)
        labels[i] = label
    labels.flush()
    probs.flush()


def run_cleanlab(root: Path) -> dict:
    from cleanlab.segmentation.filter import find_label_issues

    labels = np.load(root / "labels.npy")
    probs = np.load(root / "probs.npy")
    t = time.perf_counter()
    issues = find_label_issues(labels, probs, n_jobs=1, verbose=False)
    return {"seconds": time.perf_counter() - t, "flagged": int(issues.sum())}


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


def run_fixer(root: Path, batch_size: int = 8) -> dict:
    from fixer_core import LabelErrorFinder

    def batches():
        return zip(
            _read_batches(root / "labels.npy", batch_size),
            _read_batches(root / "probs.npy", batch_size),
            strict=True,
        )

    finder = LabelErrorFinder([str(k) for k in range(K)])
    t = time.perf_counter()
    for labels, probs in batches():
        finder.update(labels, probs)
    flagged = 0
    for labels, probs in batches():
        found = finder.find(labels, probs)
        flagged += sum(p.area for image in found for p in image)
    return {"seconds": time.perf_counter() - t, "flagged": flagged}


def _peak_rss_mb() -> int:
    """This process's peak RSS. VmHWM starts afresh at exec, unlike
    ru_maxrss, which a child inherits from its parent at fork."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(method: str, root: Path) -> dict:
    """Runs one method in a fresh process; returns time and peak RSS."""
    out = subprocess.run(
        [sys.executable, __file__, "--run", method, "--root", str(root)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100])
    parser.add_argument("--run", choices=("cleanlab", "fixer"))
    parser.add_argument("--root", type=Path)
    args = parser.parse_args()
    if args.run:
        result = (run_cleanlab if args.run == "cleanlab" else run_fixer)(
            args.root
        )
        print(json.dumps({**result, "peak_rss_mb": _peak_rss_mb()}))
        return
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_inputs(root, n)
            fixer = measure("fixer", root)
            cleanlab = measure("cleanlab", root)
        print(
            json.dumps(
                {
                    "images": n,
                    "fixer": fixer,
                    "cleanlab": cleanlab,
                    "speedup": round(
                        cleanlab["seconds"] / fixer["seconds"], 1
                    ),
                    "memory_ratio": round(
                        cleanlab["peak_rss_mb"] / fixer["peak_rss_mb"], 1
                    ),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
