"""A page of FIXER's best patches per class, to be looked at by a person.

Runs FIXER on one benchmark cell (as ``evaluate.py`` does) and draws, for
each given class, its ``--per-class`` best patches in the reviewer's order
(first patches of runs by score; repeats of the previous image are left
out, as a reviewer meets them last): the image crop around the patch with
the patch outlined, and beside it the labels with the same outline. One
sheet per class, ``<out>/<class>.png``, and ``<out>/patches.json`` with
each tile's image, classes, score and error probability, for the verdicts
(real error, ambiguous, the model's mistake) to be written beside::

    python bench/realuse/review_page.py --labels bench/results/rw-a \\
        --clean --probs bench/results/realuse/probs/espnet --split val \\
        --out bench/results/realuse/review-clean
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from evaluate import add_cell_arguments, load_cell, run_fixer

from fixer_core.patches import Patch

TILE = 160
PAD = 24  # context around the patch's box, in pixels


def _palette(colors_rgb: list[list[int]]) -> np.ndarray:
    """BGR colour per mask value (void and unknown values black)."""
    colors = np.zeros((256, 3), np.uint8)
    colors[: len(colors_rgb)] = np.asarray(colors_rgb)[:, ::-1]
    return colors


def _crop_box(patch: Patch) -> tuple[int, int, int, int]:
    x, y, w, h = patch.box
    height, width = patch.image_shape
    side = max(w, h) + 2 * PAD
    cx, cy = x + w // 2, y + h // 2
    x0 = int(np.clip(cx - side // 2, 0, max(width - side, 0)))
    y0 = int(np.clip(cy - side // 2, 0, max(height - side, 0)))
    return x0, y0, min(side, width), min(side, height)


def _tile(image, label, patch, palette, names, number) -> np.ndarray:
    x0, y0, w, h = _crop_box(patch)
    outline = np.zeros(patch.image_shape, np.uint8)
    outline[patch.full_mask()] = 255
    contours, _ = cv2.findContours(
        outline, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    photo = image.copy()
    colored = palette[label]
    for canvas in (photo, colored):
        cv2.drawContours(canvas, contours, -1, (0, 255, 255), 1)
    crops = [
        cv2.resize(
            c[y0 : y0 + h, x0 : x0 + w],
            (TILE, TILE),
            interpolation=cv2.INTER_NEAREST,
        )
        for c in (photo, colored)
    ]
    tile = np.concatenate(crops, axis=1)
    text = (
        f"{number} {names[patch.given_label]}>"
        f"{names[patch.suggested_label]} {patch.score:.2f}"
    )
    cv2.rectangle(tile, (0, 0), (2 * TILE, 14), (0, 0, 0), -1)
    cv2.putText(
        tile, text, (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255)
    )
    return tile


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_cell_arguments(parser)
    parser.add_argument("--per-class", type=int, default=25)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    cell = load_cell(args.labels, args.probs, args.clean, args.split)
    patches, _ = run_fixer(cell)
    meta = json.loads((args.labels / "meta.json").read_text())
    camvid = Path(meta["camvid"])
    classes = json.loads((camvid / "classes.json").read_text())
    names = dict(enumerate(classes["classes"]))
    palette = _palette(classes["class_colors_rgb"])
    images = {im["name"]: im["image"] for im in meta["images"]}

    @functools.lru_cache(maxsize=32)
    def photo(index: int) -> np.ndarray:
        """An image at the labels' size (read once: patches share it)."""
        image = cv2.imread(images[cell.names[index]])
        return cv2.resize(image, cell.labels.shape[:0:-1])

    args.out.mkdir(parents=True, exist_ok=True)
    first = sorted(
        (p for p in patches if p.repeat_of is None), key=lambda p: -p.score
    )
    records = []
    for k, name in sorted(names.items()):
        best = [p for p in first if p.given_label == k][: args.per_class]
        if not best:
            continue
        tiles = []
        for j, p in enumerate(best):
            image_name = cell.names[p.image_index]
            tiles.append(
                _tile(
                    photo(p.image_index),
                    cell.labels[p.image_index],
                    p,
                    palette,
                    names,
                    j,
                )
            )
            records.append(
                {
                    "class": name,
                    "tile": j,
                    "image": image_name,
                    "box": list(p.box),
                    "given": names[p.given_label],
                    "suggested": names[p.suggested_label],
                    "score": round(p.score, 3),
                    "error_probability": round(p.error_probability, 3),
                    "area": p.area,
                }
            )
        tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 5)
        rows = [
            np.concatenate(tiles[i : i + 5], axis=1)
            for i in range(0, len(tiles), 5)
        ]
        cv2.imwrite(
            str(args.out / f"{name}.png"),
            np.concatenate(rows, axis=0),
        )
    (args.out / "patches.json").write_text(json.dumps(records, indent=1))
    print(f"{len(records)} patches on {args.out}")


if __name__ == "__main__":
    main()
