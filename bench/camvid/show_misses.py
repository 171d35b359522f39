"""Draws what FIXER finds and misses on some images of the CamVid
known-error benchmark, one row per image: the photo, the clean labels, the
noisy labels, the model's argmax, and the planted errors against FIXER's
patches (red: planted, missed; yellow: planted, flagged; green: flagged,
not planted).

    python bench/camvid/show_misses.py --factor 4 --epochs 12 --lr 5e-3 \\
        --out bench/results/camvid-f4 --images val/0016E5_08103 \\
        --save bench/plots/misses_val.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from evaluate import load_run, run_fixer
from inject import CAMVID, Layout, read_png
from inject import add_arguments as add_common_arguments
from probabilities import add_arguments as add_probability_arguments

CELL = (360, 270)  # width, height of each panel


def palette() -> np.ndarray:
    """RGB colours of the CamVid classes; void and the rest black."""
    classes = json.loads((CAMVID / "classes.json").read_text())
    colors = np.zeros((256, 3), np.uint8)
    colors[: classes["num_classes"]] = classes["class_colors_rgb"]
    return colors


def row(image: dict, layout: Layout, noisy, probs, patches, colors):
    split, name = image["split"], image["name"]
    clean = read_png(layout.label("clean", split, name))
    h, w = clean.shape
    photo = cv2.imread(str(CAMVID / "images" / split / f"{name}.jpg"))
    photo = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)[..., ::-1]
    planted = np.load(layout.error_map(split, name))[2] >= 0
    flagged = np.zeros_like(planted)
    for p in patches:
        flagged |= p.full_mask()
    errors = np.zeros((h, w, 3), np.uint8)
    errors[planted] = (255, 0, 0)
    errors[planted & flagged] = (255, 255, 0)
    errors[flagged & ~planted] = (0, 255, 0)
    panels = [photo, colors[clean], colors[noisy], colors[probs.argmax(0)]]
    panels.append(errors)
    return np.concatenate(
        [cv2.resize(p, CELL, interpolation=cv2.INTER_NEAREST) for p in panels],
        axis=1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    add_probability_arguments(parser)
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--save", type=Path, required=True)
    args = parser.parse_args()

    run = load_run(args)
    images, layout, paths, noisy = run.images, run.layout, run.paths, run.noisy
    patches, _ = run_fixer(
        noisy, paths, run.meta["class_names"], device="cpu", batch_size=16
    )
    index = {f"{im['split']}/{im['name']}": i for i, im in enumerate(images)}
    colors = palette()
    rows = []
    for key in args.images:
        i = index[key]
        probs = np.load(paths[i]).astype(np.float32)
        rows.append(
            row(images[i], layout, noisy[i], probs, patches[i], colors)
        )
    args.save.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.save), np.concatenate(rows)[..., ::-1])
    print(args.save)


if __name__ == "__main__":
    main()
