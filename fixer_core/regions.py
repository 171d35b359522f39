"""Connected regions of a label map."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class LabelRegions:
    """Connected regions (8-connectivity) of each class of one label map.

    Attributes:
        ids: ``(H, W)`` int32 region index per pixel, -1 where ignored.
        labels: ``(R,)`` class of each region.
        areas: ``(R,)`` pixels of each region.
    """

    ids: np.ndarray
    labels: np.ndarray
    areas: np.ndarray


def label_regions(label: np.ndarray) -> LabelRegions:
    """Splits an ``(H, W)`` label map (-1 = ignored) into its regions.

    Each class is labelled within its bounding box only, which is what
    keeps this fast with many classes per image.
    """
    ids = np.full(label.shape, -1, dtype=np.int32)
    region_labels: list[int] = []
    for value, rows, cols in _class_boxes(label):
        n, comp = cv2.connectedComponents(
            (label[rows, cols] == value).view(np.uint8),
            connectivity=8,
            ltype=cv2.CV_32S,
        )
        comp += len(region_labels) - 1
        np.copyto(ids[rows, cols], comp, where=comp >= len(region_labels))
        region_labels.extend([value] * (n - 1))
    areas = np.bincount(ids.ravel() + 1, minlength=len(region_labels) + 1)
    return LabelRegions(
        ids=ids,
        labels=np.asarray(region_labels, dtype=np.int64),
        areas=areas[1:].astype(np.int64),
    )


def _class_boxes(label: np.ndarray) -> list[tuple[int, slice, slice]]:
    """Each class present in ``label`` with the rows and columns of its
    bounding box, from two bincounts over the whole map."""
    height, width = label.shape
    if label.size == 0:
        return []
    k = int(label.max()) + 2  # -1 counts as class 0 here
    shifted = label + 1
    in_rows = np.bincount(
        (np.arange(height)[:, None] * k + shifted).ravel(),
        minlength=height * k,
    ).reshape(height, k)
    in_cols = np.bincount(
        (np.arange(width)[None, :] * k + shifted).ravel(),
        minlength=width * k,
    ).reshape(width, k)
    boxes = []
    for c in np.flatnonzero(in_rows[:, 1:].any(axis=0)):
        rows = np.flatnonzero(in_rows[:, c + 1])
        cols = np.flatnonzero(in_cols[:, c + 1])
        boxes.append(
            (
                int(c),
                slice(rows[0], rows[-1] + 1),
                slice(cols[0], cols[-1] + 1),
            )
        )
    return boxes
