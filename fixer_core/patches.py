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
    suggested_share: float


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
    patches: list[PatchGeometry] = []
    margin = max(config.boundary_width, 1) + 1
    suggested = _drop_specks(label, suggested, region_flagged, config)
    for given, sugg, window in _pair_windows(label, suggested, margin):
        lab = label[window]
        given_mask = lab == given
        window_suggested = suggested[window]
        mask = _close(
            window_suggested == sugg,
            # Holes are filled only with pixels no other pair claims, so
            # patches never overlap.
            given_mask & ((window_suggested < 0) | (window_suggested == sugg)),
        )
        n, comp, stats, _ = cv2.connectedComponentsWithStats(
            mask, connectivity=8
        )
        if n == 1 or stats[1:, cv2.CC_STAT_AREA].max() < config.min_area:
            continue
        near_suggested = _near(lab == sugg, max(config.boundary_width, 1))
        top, left = int(window[0].start), int(window[1].start)
        window_ids = patch_ids[window]
        window_regions = regions.ids[window]
        valid = lab >= 0
        for i in range(1, n):
            area = int(stats[i, cv2.CC_STAT_AREA])
            if area < config.min_area:
                continue
            x, y, w, h = (int(v) for v in stats[i, :4])
            # The box grown by one pixel (within the window) holds the
            # patch and the ring of pixels just outside it.
            y0, x0 = max(y - 1, 0), max(x - 1, 0)
            grown = (slice(y0, y + h + 1), slice(x0, x + w + 1))
            grown_mask = comp[grown] == i
            crop = grown_mask[y - y0 : y - y0 + h, x - x0 : x - x0 + w]
            box = (slice(y, y + h), slice(x, x + w))
            touches = near_suggested is not None and bool(
                (crop & near_suggested[box]).any()
            )
            if touches and _is_sliver(crop, config.boundary_width):
                continue
            window_ids[box][crop] = len(patches)
            ring = _ring(grown_mask, valid[grown])
            patches.append(
                PatchGeometry(
                    box=(x + left, y + top, w, h),
                    mask=crop,
                    given_label=given,
                    suggested_label=sugg,
                    area=area,
                    coverage=_coverage(
                        window_regions[box][crop], area, regions.areas
                    ),
                    inside_share=_share(ring, given_mask[grown]),
                    suggested_share=_share(ring, lab[grown] == sugg),
                )
            )
    return patch_ids, patches


def _pair_windows(
    label: np.ndarray, suggested: np.ndarray, margin: int
) -> list[tuple[int, int, tuple[slice, slice]]]:
    """Each flagged (given, suggested) pair with the window holding all its
    pixels, grown by ``margin`` so that morphology near its edge is exact."""
    ys, xs = np.nonzero(suggested >= 0)
    if ys.size == 0:
        return []
    keys = label[ys, xs].astype(np.int64) << 32 | suggested[ys, xs]
    order = np.argsort(keys, kind="stable")
    keys, ys, xs = keys[order], ys[order], xs[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    height, width = label.shape
    out = []
    for key, y0, y1, x0, x1 in zip(
        keys[starts],
        np.minimum.reduceat(ys, starts),
        np.maximum.reduceat(ys, starts),
        np.minimum.reduceat(xs, starts),
        np.maximum.reduceat(xs, starts),
        strict=True,
    ):
        window = (
            slice(max(y0 - margin, 0), min(y1 + margin + 1, height)),
            slice(max(x0 - margin, 0), min(x1 + margin + 1, width)),
        )
        out.append((int(key >> 32), int(key & 0xFFFFFFFF), window))
    return out


def _drop_specks(
    label: np.ndarray,
    suggested: np.ndarray,
    region_flagged: np.ndarray,
    config: FinderConfig,
) -> np.ndarray:
    """Opens the pixel-level flags of every (given, suggested) pair at once:
    a flag survives when it lies in a square of ``2 * speck_radius + 1``
    pixels flagged with the same pair throughout. Flags of whole regions
    are kept."""
    r = config.speck_radius
    pixel_flags = (suggested >= 0) & ~region_flagged
    if r == 0 or not pixel_flags.any():
        return suggested
    k = int(max(label.max(), suggested.max())) + 1
    # Pair ids are exact in float32 up to 4096 classes.
    dtype = np.float32 if k < 4096 else np.float64
    pairs = np.where(pixel_flags, label.astype(dtype) * k + suggested, -1)
    kernel = np.ones((2 * r + 1,) * 2, np.uint8)
    uniform = cv2.erode(pairs, kernel) == cv2.dilate(pairs, kernel)
    core = (uniform & pixel_flags).view(np.uint8)
    kept = cv2.dilate(core, kernel).view(bool) | region_flagged
    return np.where(kept, suggested, -1).astype(suggested.dtype)


def _close(pair_flags: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Closes a pair's flags (fills holes and gaps of one pixel) within the
    pixels it may claim."""
    kernel = np.ones((3, 3), np.uint8)
    closed = cv2.morphologyEx(
        pair_flags.view(np.uint8), cv2.MORPH_CLOSE, kernel
    )
    return (closed.view(bool) & allowed).view(np.uint8)


def _near(mask: np.ndarray, width: int) -> np.ndarray | None:
    if not mask.any():
        return None
    kernel = np.ones((2 * width + 1,) * 2, np.uint8)
    return cv2.dilate(mask.view(np.uint8), kernel).view(bool)


def _is_sliver(crop: np.ndarray, width: int) -> bool:
    """A patch touching its suggested class is a boundary sliver when it is
    nowhere wider than ``2 * width`` pixels (0 disables the rule)."""
    if width == 0:
        return False
    kernel = np.ones((2 * width + 1,) * 2, np.uint8)
    eroded = cv2.erode(
        crop.view(np.uint8),
        kernel,
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return not eroded.any()


def _coverage(
    patch_regions: np.ndarray, area: int, areas: np.ndarray
) -> float:
    touched = np.unique(patch_regions)
    touched = touched[touched >= 0]
    total = int(areas[touched].sum())
    return area / total if total else 0.0


def _ring(mask: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The valid pixels just outside ``mask`` (8-connected)."""
    ring = cv2.dilate(mask.view(np.uint8), np.ones((3, 3), np.uint8))
    return ring.view(bool) & ~mask & valid


def _share(ring: np.ndarray, of: np.ndarray) -> float:
    """Share of the ``ring`` pixels in ``of`` (1 when the ring is empty)."""
    n = int(ring.sum())
    return float((ring & of).sum()) / n if n else 1.0
