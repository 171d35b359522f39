"""Do the labels' outlines follow the image's edges? A model-free look at
injector B's sloppy outlines (objects grown or shrunk by 2-4 px).

For each object of the noisy labels (a connected region of one class, at
least ``MIN_OBJECT`` px) the image's gradient magnitude is averaged on
rings at signed distances ``-REACH..+REACH`` px from its outline (inside
negative), and ``d*`` is the ring of the strongest edge. Objects are
grouped by the injected errors around them: shrunk (its own ring
relabelled), grown (its neighbours' ring taken), clean (no error within
``REACH`` px); the rest are left out::

    python bench/realuse/outline_edges.py --labels bench/results/rw-b \\
        --probs bench/results/realuse/probs/espnet --split val
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import add_cell_arguments, load_cell  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "camvid"))
from inject import CAMVID, NUM_CLASSES, VOID  # noqa: E402

REACH = 6
MIN_OBJECT = 1000  # injector B's sloppy outlines take objects this large
MIN_RING = 20  # pixels a ring needs for its mean
ERRORS_ABOUT = 100  # error pixels that make an object shrunk or grown


def edge_profile(gradient: np.ndarray, obj: np.ndarray, label: np.ndarray):
    """Mean gradient on the rings ``-REACH..+REACH`` px from the outline
    of the ``(H, W)`` bool object (nan where a ring is too small), and the
    distances outside it."""
    m = obj.astype(np.uint8)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 5)
    profile = []
    for d in range(-REACH, REACH + 1):
        if d <= 0:
            ring = obj & (np.abs(inside - (1 - d)) < 0.5)
        else:
            ring = ~obj & (np.abs(outside - d) < 0.5) & (label != VOID)
        enough = np.count_nonzero(ring) > MIN_RING
        profile.append(gradient[ring].mean() if enough else np.nan)
    return np.array(profile), outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_cell_arguments(parser)
    args = parser.parse_args()
    cell = load_cell(args.labels, args.probs, args.clean, args.split)
    outline_ids = [
        e for e, kind in cell.error_types.items() if kind == "outline"
    ]
    found = defaultdict(list)  # group: [(d*, strongest / outline's edge)]
    for i in cell.images(args.split):
        path = Path(CAMVID) / "images" / args.split / f"{cell.names[i]}.jpg"
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        grey = cv2.GaussianBlur(grey, (0, 0), 1.0)
        across = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
        gradient = np.hypot(across, cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        label, clean, errors = cell.labels[i], cell.clean[i], cell.error_ids[i]
        outline = np.isin(errors, outline_ids)
        for k in range(NUM_CLASSES):
            n, parts, stats, _ = cv2.connectedComponentsWithStats(
                (label == k).astype(np.uint8), connectivity=8
            )
            for j in range(1, n):
                if stats[j, cv2.CC_STAT_AREA] < MIN_OBJECT:
                    continue
                obj = parts == j
                profile, outside = edge_profile(gradient, obj, label)
                if np.isnan(profile).all():
                    continue
                near = obj | (outside <= REACH)
                grown = np.count_nonzero(outline & obj & (clean != k))
                shrunk = np.count_nonzero(
                    outline & ~obj & (outside <= REACH - 1) & (clean == k)
                )
                if grown > ERRORS_ABOUT:
                    group = "grown"
                elif shrunk > ERRORS_ABOUT:
                    group = "shrunk"
                elif not np.any((errors >= 0) & near):
                    group = "clean"
                else:
                    continue
                strongest = int(np.nanargmax(profile))
                ratio = profile[strongest] / max(profile[REACH], 1e-6)
                found[group].append((strongest - REACH, ratio))
    print("| objects | n | d* in {0, +1} | d* >= +2 | d* <= -1 |", end="")
    print(" \\|d*\\| >= 3 and edge 1.3 x the outline's |")
    print("| --- | --- | --- | --- | --- | --- |")
    for group in ("clean", "shrunk", "grown"):
        rows = np.array(found[group]).reshape(-1, 2)
        d, ratio = rows[:, 0], rows[:, 1]
        print(
            f"| {group} | {len(d)} | {np.isin(d, (0, 1)).mean():.2f} |"
            f" {(d >= 2).mean():.2f} | {(d <= -1).mean():.2f} |"
            f" {((np.abs(d) >= 3) & (ratio > 1.3)).mean():.2f} |"
        )


if __name__ == "__main__":
    main()
