"""Patches: cleaned connected regions of flagged pixels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .config import FinderConfig
from .regions import LabelRegions


@dataclass(frozen=True)
class Patch:
    """One flagged patch of pixels whose label looks wrong.

    Attributes:
        image_index: index of the image in the finder's input order.
        box: ``(x, y, w, h)`` in pixels.
        image_shape: ``(H, W)`` of the image.
        mask: ``(h, w)`` bool mask of the patch inside ``box``.
        given_label: the class in the labels.
        suggested_label: the class the patch most likely shows.
        score: in [0, 1]; higher means more likely a real error.
        area: pixels in the patch.
        coverage: share of the given-class region(s) the patch covers (1
            means a whole region is mislabelled).
        inside_share: share of the pixels just outside the patch that carry
            the given class (1 means the patch is enclosed by it).
        given_prob: mean predicted probability of the given class.
        suggested_prob: mean predicted probability of the suggested class.
        error_type: ``"general"``, ``"ambiguous"`` or ``"false_negative"``.
        issue: name of the specific issue the patch belongs to, if any.
    """

    image_index: int
    box: tuple[int, int, int, int]
    image_shape: tuple[int, int]
    mask: np.ndarray
    given_label: int
    suggested_label: int
    score: float
    area: int
    coverage: float
    inside_share: float
    given_prob: float
    suggested_prob: float
    error_type: str
    issue: str | None = None

    @property
    def bounding_box(self) -> list[float]:
        """Normalized ``[x, y, w, h]`` box, as FiftyOne stores it."""
        x, y, w, h = self.box
        height, width = self.image_shape
        return [x / width, y / height, w / width, h / height]

    def full_mask(self) -> np.ndarray:
        """Returns the ``(H, W)`` bool mask of the patch."""
        out = np.zeros(self.image_shape, dtype=bool)
        x, y, w, h = self.box
        out[y : y + h, x : x + w] = self.mask
        return out


@dataclass(frozen=True)
class PatchGeometry:
    """Where a patch is, before it is scored and typed."""

    box: tuple[int, int, int, int]
    mask: np.ndarray
    given_label: int
    suggested_label: int
    area: int
    coverage: float
    inside_share: float


def find_patch_geometry(
    label: np.ndarray,
    suggested: np.ndarray,
    region_flagged: np.ndarray,
    regions: LabelRegions,
    config: FinderConfig,
) -> tuple[np.ndarray, list[PatchGeometry]]:
    """Turns one image's flags into cleaned patches.

    Flagged pixels are grouped by (given, suggested) pair. Pixel-level flags
    lose specks and threads to a morphological opening; flags of whole
    regions are kept as they are. Each pair's mask is closed (holes filled
    within the given class) and split into 8-connected components.
    Components smaller than ``min_area`` are dropped, and so are boundary
    slivers: components that touch the suggested class and are nowhere
    wider than ``2 * boundary_width`` pixels.

    Args:
        label: ``(H, W)`` int labels, -1 where ignored.
        suggested: ``(H, W)`` int suggested class, -1 where not flagged.
        region_flagged: ``(H, W)`` bool, flags that come from whole regions.
        regions: the label's connected regions.
        config: the finder's thresholds.

    Returns:
        ``(H, W)`` int32 patch index per pixel (-1 = none) and the patches.
    """
    patch_ids = np.full(label.shape, -1, dtype=np.int32)
    flagged = suggested >= 0
    if not flagged.any():
        return patch_ids, []
    pairs = np.unique(
        np.stack([label[flagged], suggested[flagged]], axis=1), axis=0
    )
    valid = label >= 0
    patches: list[PatchGeometry] = []
    for given, sugg in pairs.tolist():
        given_mask = label == given
        mask = _clean_pair_mask(
            suggested == sugg, given_mask, region_flagged, config
        )
        near_suggested = _near(label == sugg, config.boundary_width)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(
            mask, connectivity=8
        )
        for i in range(1, n):
            area = int(stats[i, cv2.CC_STAT_AREA])
            if area < config.min_area:
                continue
            x, y, w, h = (int(v) for v in stats[i, :4])
            crop = comp[y : y + h, x : x + w] == i
            if near_suggested is not None and _is_sliver(
                crop, near_suggested[y : y + h, x : x + w], config
            ):
                continue
            full = np.zeros(label.shape, dtype=bool)
            full[y : y + h, x : x + w] = crop
            patch_ids[full] = len(patches)
            patches.append(
                PatchGeometry(
                    box=(x, y, w, h),
                    mask=crop,
                    given_label=int(given),
                    suggested_label=int(sugg),
                    area=area,
                    coverage=_coverage(full, area, regions),
                    inside_share=_inside_share(full, given_mask, valid),
                )
            )
    return patch_ids, patches


def _clean_pair_mask(
    pair_flags: np.ndarray,
    given_mask: np.ndarray,
    region_flagged: np.ndarray,
    config: FinderConfig,
) -> np.ndarray:
    pair_flags = pair_flags & given_mask
    pixel_flags = (pair_flags & ~region_flagged).astype(np.uint8)
    r = config.speck_radius
    if r > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1,) * 2)
        pixel_flags = cv2.morphologyEx(pixel_flags, cv2.MORPH_OPEN, kernel)
    mask = pixel_flags.astype(bool) | (pair_flags & region_flagged)
    kernel = np.ones((3, 3), np.uint8)
    closed = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    return (closed.astype(bool) & given_mask).astype(np.uint8)


def _near(mask: np.ndarray, width: int) -> np.ndarray | None:
    if width == 0 or not mask.any():
        return None
    kernel = np.ones((2 * width + 1,) * 2, np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _is_sliver(
    crop: np.ndarray, near_suggested: np.ndarray, config: FinderConfig
) -> bool:
    """A patch is a boundary sliver when it touches the suggested class and
    is nowhere wider than ``2 * boundary_width`` pixels."""
    if not (crop & near_suggested).any():
        return False
    width = config.boundary_width
    padded = np.pad(crop, width + 1).astype(np.uint8)
    kernel = np.ones((2 * width + 1,) * 2, np.uint8)
    return not cv2.erode(padded, kernel).any()


def _coverage(full: np.ndarray, area: int, regions: LabelRegions) -> float:
    touched = np.unique(regions.ids[full])
    touched = touched[touched >= 0]
    total = int(regions.areas[touched].sum())
    return area / total if total else 0.0


def _inside_share(
    full: np.ndarray, given_mask: np.ndarray, valid: np.ndarray
) -> float:
    ring = cv2.dilate(full.astype(np.uint8), np.ones((3, 3), np.uint8))
    ring = ring.astype(bool) & ~full & valid
    n = int(ring.sum())
    return float((ring & given_mask).sum()) / n if n else 1.0
