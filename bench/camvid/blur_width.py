"""How wide, in pixels, is a run's model blur along the label boundaries?

FIXER's spatial thresholds once grew with the image side (now: with the
blur measured in pass 1, ``FinderConfig.blur_reference``),
on the assumption that the model's blur does too. This measures the blur of
a finished run's probabilities (``--up`` upsamples them as
``upsampled.py`` does) two ways, and prints them beside the rule's factor:

- band: pixels whose top probability is under one half, per label-boundary
  pixel (the width of the model's unsure band);
- reach: the distance from the nearest label boundary at which the argmax
  first agrees with the label on 90% of the pixels.

    python bench/camvid/blur_width.py --factor 4 --epochs 12 --lr 5e-3 \\
        --out bench/results/camvid-f4 --up 4
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from evaluate import load_run
from inject import add_arguments as add_common_arguments
from probabilities import add_arguments as add_probability_arguments
from upsampled import upsample_labels, upsample_probs

MAX_DISTANCE = 100
AGREEMENT = 0.9


def label_edges(labels: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another label."""
    edges = np.zeros(labels.shape, bool)
    across = labels[:, 1:] != labels[:, :-1]
    down = labels[1:] != labels[:-1]
    edges[:, 1:] |= across
    edges[:, :-1] |= across
    edges[1:] |= down
    edges[:-1] |= down
    return edges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    add_probability_arguments(parser)
    parser.add_argument("--up", type=int, default=1, help="upsampling factor")
    parser.add_argument(
        "--every", type=int, default=1, help="use every n-th image"
    )
    args = parser.parse_args()

    run = load_run(args)
    num_classes = len(run.meta["class_names"])
    height, width = (args.up * s for s in run.noisy.shape[1:])
    pixels = np.zeros(MAX_DISTANCE + 1)
    agreeing = np.zeros(MAX_DISTANCE + 1)
    unsure = edge_pixels = 0
    for i in range(0, len(run.paths), args.every):
        labels = upsample_labels(run.noisy[i], height, width).astype(int)
        probs = upsample_probs(run.paths[i], height, width)
        valid = labels < num_classes
        edges = label_edges(labels)
        distance = cv2.distanceTransform(
            (~edges).astype(np.uint8), cv2.DIST_L2, 3
        )
        bins = np.minimum(np.rint(distance).astype(int), MAX_DISTANCE)[valid]
        agree = (probs.argmax(0) == labels)[valid]
        pixels += np.bincount(bins, minlength=MAX_DISTANCE + 1)
        agreeing += np.bincount(bins, agree, minlength=MAX_DISTANCE + 1)
        unsure += int((probs.max(0) < 0.5)[valid].sum())
        edge_pixels += int(edges[valid].sum())

    agreement = agreeing / np.maximum(pixels, 1)
    reach = int(np.argmax(agreement >= AGREEMENT))
    curve = " ".join(f"{a:.2f}" for a in agreement[:20])
    print(
        f"{height}x{width}: band {unsure / edge_pixels:.2f} px, reach "
        f"{reach} px "
        f"(agreement by distance 0-19: {curve})"
    )


if __name__ == "__main__":
    main()
