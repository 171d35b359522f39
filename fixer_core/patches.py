"""Patches: cleaned connected regions of flagged pixels."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from .config import FinderConfig
from .evidence import PatchEvidence
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
        score: in [0, 1], the patches' ranking: the model's mean
            probability that a pixel's label is wrong (``1 - p_given``),
            discounted for small patches (see
            ``FinderConfig.score_area_scale``), weighted by the fourth root
            of the label's doubt (``finder.DOUBT_IN_SCORE``; bounded by
            ``ClassStatistics.miss_share`` where the suggested class is
            much more frequent) and of the share of its pair's
            disagreement in its image beyond the model's habit
            (``ClassStatistics.excess_share``), averaged over
            its pixels with none on those whose label the neighbouring
            frames repeat, and the doubt their testimony raises on those
            whose label they agree against (``fixer_core.neighbours``);
            once runs are known, divided by the square root of the run's
            length (``fixer_core.repeats.discount_runs``).
        area: pixels in the patch.
        coverage: share of the given-class region(s) the patch covers (1
            means a whole region is mislabelled).
        inside_share: share of the pixels just outside the patch that carry
            the given class (1 means the patch is enclosed by it).
        given_prob: the patch's probability of the given class: its
            pixels' probabilities pooled in the logs (their normalised
            geometric mean).
        suggested_prob: the patch's probability of the suggested class,
            pooled alike.
        error_type: ``"general"``, ``"ambiguous"`` or ``"false_negative"``.
        error_probability: estimated probability that the patch is a
            label error rather than the model's mistake: the score's size
            factor times the share of label errors the data shows for its
            (given, suggested) confusion at its confidence
            (``ClassStatistics.error_rates``) and the doubt its given
            class's probability casts on the label
            (``ClassStatistics.label_doubts``), times the share not
            vouched for by the neighbouring frames; on a patch whose
            class the neighbouring frames name (``cause``
            ``NEIGHBOURS_CAUSE``), their testimony raises that doubt as
            in the score. A run of repeats shares it
            (``repeats.discount_runs``). Summed over patches, it estimates
            the number of label errors.
        cause: what the finder found behind the patch beyond the model's
            disagreement, e.g. ``"label shifted against its image"``.
        repeat_of: the index of the image where the run this patch
            repeats began: the same disagreement at the same place in the
            previous image(s) (see ``fixer_core.repeats``); ``None`` for a
            run's first patch, and for every patch of a run that began
            with a change of the label (each repeats the label's mistake).
        run: ``(image index, position)`` of its run's first patch, ``None``
            where repeats are not linked.
        run_length: the images the run spans, once known (see
            ``fixer_core.repeats.discount_runs``).
        run_probability: for a patch that continues a run begun with a
            change of the label (not a repeat): the ``error_probability``
            of the run's first patch. A frame of such a run is a label
            error only if the run is (see
            ``fixer_core.corrections.corrects``); ``None`` otherwise.
        issue: name of the specific issue the patch belongs to, if any.
        evidence: what the finder saw on the patch (top classes, the
            given class's threshold, the rule that flagged it).
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
    error_probability: float = 0.0
    cause: str | None = None
    repeat_of: int | None = None
    run: tuple[int, int] | None = None
    run_length: int = 1
    run_probability: float | None = None
    issue: str | None = None
    evidence: PatchEvidence | None = None

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
    slivers: components that touch the suggested class, are nowhere wider
    than ``2 * boundary_width`` pixels and cover less than half of their
    labelled region (a thin object labelled wrong as a whole is kept).

    Args:
        label: ``(H, W)`` int labels, -1 where ignored.
        suggested: ``(H, W)`` int suggested class, -1 where not flagged;
            only labelled pixels are flagged.
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
    free = suggested < 0
    for given, sugg, window in _pair_windows(label, suggested, margin):
        lab = label[window]
        flags = suggested[window] == sugg
        mask = _close(
            flags,
            # Holes are filled only with pixels no other pair claims, so
            # patches never overlap.
            (lab == given) & (free[window] | flags),
        )
        comp = cv2.connectedComponents(mask, connectivity=8)[1]
        boxes = _component_boxes(mask, comp, config.min_area)
        if not boxes:
            continue
        near_suggested = cv2.dilate(
            (lab == sugg).view(np.uint8),
            _square(max(config.boundary_width, 1)),
        ).view(bool)
        top, left = int(window[0].start), int(window[1].start)
        window_ids = patch_ids[window]
        for i, (x, y, w, h), (px, py) in boxes:
            # The box grown by one pixel (within the window) holds the
            # patch and the ring of pixels just outside it.
            y0, x0 = max(y - 1, 0), max(x - 1, 0)
            grown = (slice(y0, y + h + 1), slice(x0, x + w + 1))
            grown_mask = comp[grown] == i
            crop = grown_mask[y - y0 : y - y0 + h, x - x0 : x - x0 + w]
            area = int(np.count_nonzero(crop))
            if area < config.min_area:
                continue
            box = (slice(y, y + h), slice(x, x + w))
            # A patch is 8-connected within its given class, so it lies in
            # one region: the one of any of its pixels.
            region_area = int(regions.areas[regions.ids[py + top, px + left]])
            # A thin patch along a region of its suggested class is the
            # fringe of its own region (boundary noise), unless it is most
            # of that region: a thin object labelled wrong as a whole.
            fringe = 2 * area < region_area
            touches = np.count_nonzero(crop & near_suggested[box]) > 0
            if fringe and touches and _is_sliver(crop, config.boundary_width):
                continue
            window_ids[box][crop] = len(patches)
            inside_share, suggested_share = _shares(
                lab[grown][_ring(grown_mask)], given, sugg
            )
            patches.append(
                PatchGeometry(
                    box=(x + left, y + top, w, h),
                    mask=crop,
                    given_label=given,
                    suggested_label=sugg,
                    area=area,
                    coverage=area / region_area,
                    inside_share=inside_share,
                    suggested_share=suggested_share,
                )
            )
    return patch_ids, patches


def _pair_windows(
    label: np.ndarray, suggested: np.ndarray, margin: int
) -> list[tuple[int, int, tuple[slice, slice]]]:
    """Each flagged (given, suggested) pair, in order, with the window
    holding all its pixels, grown by ``margin`` so that morphology near its
    edge is exact."""
    flat = np.flatnonzero(suggested >= 0)
    if flat.size == 0:
        return []
    k = int(suggested.max()) + 1
    keys = label.ravel()[flat].astype(np.int64) * k + suggested.ravel()[flat]
    # NumPy sorts 16-bit keys by radix sort, several times faster.
    keys = keys.astype(np.min_scalar_type(int(keys.max())))
    order = np.argsort(keys, kind="stable")
    keys, flat = keys[order], flat[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    height, width = label.shape
    # Each pair's pixels stay in raster order: its first and last rows are
    # those of its first and last pixels.
    ys0 = flat[starts] // width
    ys1 = flat[np.r_[starts[1:], flat.size] - 1] // width
    xs = flat % width
    out = []
    for key, y0, y1, x0, x1 in zip(
        keys[starts].tolist(),
        ys0.tolist(),
        ys1.tolist(),
        np.minimum.reduceat(xs, starts).tolist(),
        np.maximum.reduceat(xs, starts).tolist(),
        strict=True,
    ):
        window = (
            slice(max(y0 - margin, 0), min(y1 + margin + 1, height)),
            slice(max(x0 - margin, 0), min(x1 + margin + 1, width)),
        )
        out.append((key // k, key % k, window))
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
    # Pair ids fit int16, by far the fastest, up to 181 classes.
    dtype = np.int16 if k * k <= 2**15 else np.float64
    ids = label.astype(dtype) * k + suggested.astype(dtype, copy=False)
    pairs = np.where(pixel_flags, ids, -1)
    kernel = _square(r)
    uniform = cv2.erode(pairs, kernel) == cv2.dilate(pairs, kernel)
    core = (uniform & pixel_flags).view(np.uint8)
    kept = cv2.dilate(core, kernel).view(bool) | region_flagged
    return np.where(kept, suggested, -1).astype(suggested.dtype, copy=False)


def _close(pair_flags: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Closes a pair's flags (fills holes and gaps of one pixel) within the
    pixels it may claim."""
    closed = cv2.morphologyEx(
        pair_flags.view(np.uint8), cv2.MORPH_CLOSE, _square(1)
    )
    return (closed.view(bool) & allowed).view(np.uint8)


def _component_boxes(
    mask: np.ndarray, comp: np.ndarray, min_area: int
) -> list[tuple[int, tuple[int, int, int, int], tuple[int, int]]]:
    """The components of ``mask`` (labelled in ``comp``) whose box may hold
    ``min_area`` pixels, by label: each label, box ``(x, y, w, h)`` and a
    pixel ``(x, y)``.

    Boxes come from the components' outer contours, which costs a fraction
    of OpenCV's component stats.
    """
    contours, hierarchy = cv2.findContours(
        mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
    )
    if not contours:
        return []
    out = []
    parents = hierarchy[0, :, 3].tolist()
    for contour, parent in zip(contours, parents, strict=True):
        if parent >= 0:  # a hole's contour
            continue
        x, y, w, h = cv2.boundingRect(contour)
        if w * h >= min_area:
            px, py = contour[0, 0].tolist()
            out.append((int(comp[py, px]), (x, y, w, h), (px, py)))
    out.sort()
    return out


def _is_sliver(crop: np.ndarray, width: int) -> bool:
    """A patch touching its suggested class is a boundary sliver when it is
    nowhere wider than ``2 * width`` pixels (0 disables the rule)."""
    if width == 0:
        return False
    eroded = cv2.erode(
        crop.view(np.uint8),
        _square(width),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return not np.count_nonzero(eroded)


def _ring(mask: np.ndarray) -> np.ndarray:
    """The pixels just outside ``mask`` (8-connected)."""
    # The dilation holds the mask.
    return cv2.dilate(mask.view(np.uint8), _square(1)).view(bool) ^ mask


def _shares(
    ring_labels: np.ndarray, given: int, suggested: int
) -> tuple[float, float]:
    """Shares of the valid ``ring_labels`` that are ``given`` and
    ``suggested`` (1 when there are none)."""
    counts = np.bincount(ring_labels + 1, minlength=max(given, suggested) + 2)
    n = ring_labels.size - int(counts[0])
    if n == 0:
        return 1.0, 1.0
    return int(counts[given + 1]) / n, int(counts[suggested + 1]) / n


@functools.cache
def _square(radius: int) -> np.ndarray:
    """The square structuring element of side ``2 * radius + 1``."""
    return np.ones((2 * radius + 1,) * 2, np.uint8)
