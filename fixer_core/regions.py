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
    """Splits an ``(H, W)`` label map (-1 = ignored) into its regions."""
    ids = np.full(label.shape, -1, dtype=np.int32)
    region_labels, region_areas = [], []
    present = np.flatnonzero(np.bincount(label[label >= 0].ravel()))
    for value in present:
        n, comp, stats, _ = cv2.connectedComponentsWithStats(
            (label == value).astype(np.uint8),
            connectivity=8,
        )
        offset = len(region_labels)
        inside = comp > 0
        ids[inside] = comp[inside] + offset - 1
        region_labels.extend([int(value)] * (n - 1))
        region_areas.extend(stats[1:, cv2.CC_STAT_AREA].tolist())
    return LabelRegions(
        ids=ids,
        labels=np.asarray(region_labels, dtype=np.int64),
        areas=np.asarray(region_areas, dtype=np.int64),
    )
