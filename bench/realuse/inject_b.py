"""A second error injector for CamVid at native resolution (360x480).

Plants four kinds of errors that the first injector
(``bench/camvid/inject.py``) does not, into a copy of the real labels, with
one seeded generator; errors never overlap:

* relabel: whole objects of 200-1000 px relabelled to a confusable class
  (``RELABEL_TARGETS``), ``RELABEL_SHARE`` of the eligible objects;
* painted: small objects of 30-300 px of any class painted over with the
  most common label around them, ``PAINTED_SHARE`` of the eligible ones;
* shift: ``SHIFT_IMAGES`` whole labels shifted 10-40 px against their
  images (edges repeat the last row or column); the error is every pixel
  whose label changed;
* outline: sloppy outlines: ``OUTLINE_SHARE`` of the objects of 1000 px or
  more grown or shrunk by 2-4 px (the ring takes the object's class, or
  the class of the nearest other label).

The output folder has the layout of the first injector (``Layout``:
``meta.json``, ``errors.json``, ``clean/``, ``noisy/``, ``errors/``), with
this injector's type names in ``meta["error_types"]``::

    python bench/realuse/inject_b.py --out bench/results/rw-b
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "camvid"))
from inject import (  # noqa: E402
    BICYCLIST,
    BUILDING,
    CAMVID,
    CAR,
    FENCE,
    NUM_CLASSES,
    PAVEMENT,
    PEDESTRIAN,
    POLE,
    ROAD,
    SIGN,
    SKY,
    TREE,
    VOID,
    Error,
    Layout,
    components,
    error_maps,
    error_records,
    list_samples,
    load_label,
    ring_majority,
    write_labels,
    write_meta,
)

ERROR_TYPES = ("relabel", "painted", "shift", "outline")
RELABEL_TARGETS: dict[int, tuple[int, ...]] = {
    CAR: (BUILDING, PEDESTRIAN, PAVEMENT),
    TREE: (BUILDING, FENCE),
    BUILDING: (TREE, CAR),
    PEDESTRIAN: (BICYCLIST, CAR),
    BICYCLIST: (PEDESTRIAN, CAR),
    SIGN: (POLE, BUILDING),
    POLE: (SIGN, TREE),
    FENCE: (BUILDING, TREE),
    PAVEMENT: (ROAD,),
    ROAD: (PAVEMENT,),
    SKY: (BUILDING, TREE),
}
RELABEL_AREA = (200, 1000)
RELABEL_SHARE = 0.3
PAINTED_AREA = (30, 300)
PAINTED_SHARE = 0.15
SHIFT_IMAGES = 12
SHIFT_RANGE = (10, 40)
OUTLINE_MIN_AREA = 1000
OUTLINE_SHARE = 0.05
OUTLINE_WIDTH = (2, 4)


def plant_errors(
    clean: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, list[Error]]:
    """Plants the four kinds into a copy of ``(N, H, W)`` labels."""
    noisy = clean.copy()
    touched = np.zeros(clean.shape, dtype=bool)
    errors: list[Error] = []

    def plant(index: int, mask: np.ndarray, kind: str, given) -> None:
        mask = mask & ~touched[index] & (clean[index] != VOID)
        mask &= clean[index] != (given if np.isscalar(given) else -1)
        if not mask.any():
            return
        values = given if np.isscalar(given) else given[mask]
        true = int(np.bincount(clean[index][mask]).argmax())
        noisy[index][mask] = values
        touched[index] |= mask
        errors.append(Error(index, mask, kind, -1, true))

    # shift first: a shifted label is a whole image's error
    for i in sorted(rng.choice(len(clean), SHIFT_IMAGES, replace=False)):
        length = rng.uniform(*SHIFT_RANGE)
        angle = rng.uniform(0, 2 * np.pi)
        dx, dy = round(length * np.cos(angle)), round(length * np.sin(angle))
        h, w = clean.shape[1:]
        shifted = cv2.warpAffine(
            clean[i],
            np.float32([[1, 0, dx], [0, 1, dy]]),
            (w, h),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_REPLICATE,
        )
        plant(int(i), shifted != clean[i], "shift", shifted)
        touched[i] = True  # nothing else is planted into a shifted image

    objects = [
        (i, k, c)
        for i in range(len(clean))
        if not touched[i].all()
        for k in range(NUM_CLASSES)
        for c in components(clean[i] == k)
    ]
    rng.shuffle(objects)
    for i, k, c in objects:
        area = int(c.sum())
        if (c & touched[i]).any():
            continue
        roll = rng.random()
        if RELABEL_AREA[0] <= area <= RELABEL_AREA[1] and k in RELABEL_TARGETS:
            if roll < RELABEL_SHARE:
                targets = RELABEL_TARGETS[k]
                plant(i, c, "relabel", targets[rng.integers(len(targets))])
        elif PAINTED_AREA[0] <= area <= PAINTED_AREA[1]:
            majority = ring_majority(noisy[i], c, k)
            if roll < PAINTED_SHARE and majority is not None:
                plant(i, c, "painted", majority)
        elif area >= OUTLINE_MIN_AREA and roll < OUTLINE_SHARE:
            _sloppy_outline(i, k, c, clean, rng, plant)
    return noisy, errors


def _sloppy_outline(i, k, component, clean, rng, plant) -> None:
    """Grows or shrinks one object by a few pixels."""
    width = int(rng.integers(OUTLINE_WIDTH[0], OUTLINE_WIDTH[1] + 1))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1,) * 2)
    c8 = component.astype(np.uint8)
    if rng.random() < 0.5:
        ring = cv2.dilate(c8, kernel).astype(bool) & ~component
        plant(i, ring, "outline", k)
    else:
        ring = component & ~cv2.erode(c8, kernel).astype(bool)
        # the ring takes the nearest label of another class
        other = (clean[i] != k) & (clean[i] != VOID)
        if not other.any():
            return
        _, labels = cv2.distanceTransformWithLabels(
            (~other).astype(np.uint8),
            cv2.DIST_L2,
            5,
            labelType=cv2.DIST_LABEL_PIXEL,
        )
        ys, xs = np.nonzero(other)
        nearest = np.zeros(labels.max() + 1, dtype=clean.dtype)
        nearest[labels[ys, xs]] = clean[i][ys, xs]
        plant(i, ring, "outline", nearest[labels])


def prepared_meta(layout: Layout, name: str) -> dict | None:
    """The metadata of an output folder an injector ``name`` finished."""
    if not layout.meta.is_file():
        return None
    print(f"{name}: {layout.meta.parent} is already prepared, skipping")
    return json.loads(layout.meta.read_text())


def clean_labels() -> tuple[list, np.ndarray]:
    """CamVid's samples and their clean labels at 360x480."""
    samples = list_samples(CAMVID)
    return samples, np.stack(
        [load_label(s.label, (360, 480)) for s in samples]
    )


def inject(out: Path, seed: int = 0) -> dict:
    """Plants the errors; returns the metadata (skips a finished folder)."""
    layout = Layout(out)
    if (meta := prepared_meta(layout, "inject_b")) is not None:
        return meta
    began = time.perf_counter()
    samples, clean = clean_labels()
    noisy, errors = plant_errors(clean, np.random.default_rng(seed))
    maps = error_maps(clean, errors, ERROR_TYPES)
    write_labels(layout, samples, clean, noisy, maps)
    records, counts = error_records(samples, errors, ERROR_TYPES)
    layout.errors.write_text(json.dumps(records, indent=1))
    meta = write_meta(
        layout,
        samples,
        clean,
        noisy,
        counts,
        settings={"injector": "b", "seed": seed, "factor": 1},
        camvid=CAMVID,
        error_types=list(ERROR_TYPES),
    )
    print(
        f"inject_b: {len(records)} errors {counts}, "
        f"{100 * meta['error_pixel_share']:.2f}% of labelled pixels wrong, "
        f"{time.perf_counter() - began:.0f} s"
    )
    return meta


def injector_cli(inject_fn, doc: str) -> None:
    """An injector's command line: ``--out`` folder and ``--seed``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    inject_fn(args.out, args.seed)


def main() -> None:
    injector_cli(inject, __doc__)


if __name__ == "__main__":
    main()
