"""How alike CamVid's images are by their signatures
(``fixer_core.neighbours.image_signature``): consecutive frames, frames 2
apart (the pair the neighbours' test reads) and random pairs of one
split, and what reading a signature costs::

    python bench/realuse/view_correlations.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "camvid"))
from inject import CAMVID  # noqa: E402

from fixer_core.neighbours import MIN_VIEW_CORRELATION, file_signature  # noqa: E402


def _describe(name: str, values: np.ndarray) -> None:
    p5, p50, p95 = np.percentile(values, (5, 50, 95))
    alike = (values >= MIN_VIEW_CORRELATION).mean()
    print(
        f"  {name:28s} n {len(values):5d}  5% {p5:.3f}  median {p50:.3f}"
        f"  95% {p95:.3f}  max {values.max():.3f}"
        f"  >= {MIN_VIEW_CORRELATION}: {alike:.2f}"
    )


def main() -> None:
    root = Path(CAMVID)
    for split in ("val", "train"):
        lines = (root / f"{split}.txt").read_text().split("\n")
        files = [root / line.split()[0] for line in lines if line.strip()]
        began = time.perf_counter()
        sig = np.stack([file_signature(f) for f in files])
        took = (time.perf_counter() - began) / len(files)
        sequence = [f.name.split("_")[0] for f in files]
        n = len(files)
        apart = {
            step: np.array(
                [
                    sig[i] @ sig[i + step]
                    for i in range(n - step)
                    if sequence[i] == sequence[i + step]
                ]
            )
            for step in (1, 2)
        }
        rng = np.random.default_rng(0)
        a, b = rng.integers(0, n, 3000), rng.integers(0, n, 3000)
        far = np.array(
            [
                sig[i] @ sig[j]
                for i, j in zip(a, b, strict=True)
                if abs(i - j) > 5
            ]
        )
        print(f"{split}: {n} images, {1000 * took:.2f} ms a signature")
        _describe("adjacent frames", apart[1])
        _describe("frames 2 apart", apart[2])
        _describe("random pairs > 5 apart", far)


if __name__ == "__main__":
    main()
