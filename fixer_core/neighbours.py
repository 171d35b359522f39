"""Labels that their neighbouring frames contradict, or vouch for.

Datasets cut from video (CamVid, Cityscapes sequences, driving fleets) hold
consecutive frames, each labelled on its own. Where the previous and the
next frame's labels agree with each other on a region and this frame's
label does not, this frame's label is the odd one out: a slip made once.
Steady motion does not produce that pattern: an object moving steadily
sits, in the middle frame, between its two other places, so each of its
pixels agrees with at least one neighbour. The frames' own boundary
jitter is removed by an opening.

Neighbours count only where they are views of one scene: their labels
agree on at least ``MIN_AGREEMENT`` of the pixels both label, or, where
the images are known, the images are near-duplicates
(:func:`image_signature`, ``MIN_VIEW_CORRELATION``): labels full of
errors agree less, so the images, which hold none, decide then. Where the
images are known, the frame must also lie between its neighbours
(:func:`lies_between`): three views of one scene out of time order (a
shuffled video) would contradict or vouch for what moved between them.
Photos of unrelated scenes never pass; a video stored out of time order
is put back in the order of its views first
(``fixer_core.ordering.view_order``). The finder flags these regions with the
neighbours' class and scores them with the model like every other patch
(see ``LabelErrorFinder.find``); it is the model's doubt in the label, not
the neighbours alone, that ranks them.

The other way round, where both neighbours label a pixel as this frame
does, three labellings made one by one agree: the label is *vouched for*,
and a model that disagrees there shows its own habit (or a policy the
labellers follow throughout), not a slip of this frame. Only the rest of
a patch is in doubt (see :func:`vouched_for`). Where the camera moved, a
pole or a doorway stands a few pixels away in each neighbour; aligned on
the patch's surroundings, their labels vouch for it there
(:func:`vouched_where_moved`).

Where the neighbours contradict a label the model doubts, the two pieces
of evidence are independent: the model's doubt is raised by the
neighbours' testimony (:func:`doubt_with_testimony`), as much as the image
itself shows that testimony to be worth (:func:`likelihood_ratios`). A weak
model's flags that the neighbours confirm then rank above those that rest
on the model alone.
"""

from __future__ import annotations

import functools
import os

import cv2
import numpy as np

# Why a patch was flagged, beyond the model's disagreement
NEIGHBOURS_CAUSE = "the previous and next images label it otherwise"
# What a run's summary says where no image had neighbouring frames
ALONE_NOTE = (
    "no image lies between neighbouring frames of its scene, so every flag "
    "rests on the model alone: review the patches before applying the "
    "corrected masks"
)
# The neighbours are views of one scene when their labels agree on at
# least this share of the pixels both label: frames 2 apart in CamVid's val
# sequence agree on 0.80-0.93 (5th percentile to median, with injected
# errors) and 0.88-0.93 as labelled; unrelated CamVid frames (shuffled)
# on at most 0.81, FIXER's synthetic scenes on at most 0.8 (BENCHMARKS.md,
# "Neighbouring frames").
MIN_AGREEMENT = 0.85
# Two images are near-duplicate views of one scene when their signatures
# (``image_signature``) correlate at least this much: frames 2 apart in
# CamVid's 15 fps val sequence correlate 0.95-0.99 (5th percentile to
# median); frames 2 s apart in its train sequences 0.52-0.83, where the
# labels' agreement alone decides (BENCHMARKS.md, "Neighbouring frames
# told by their images").
MIN_VIEW_CORRELATION = 0.95
# (rows, columns) of an image's signature
SIGNATURE_SHAPE = (24, 32)
# Regions narrower than this square are the frames' boundary jitter
OPENING = 5
# A patch whose neighbours label more than this share of its pixels as it
# does is not reported: most of its label is vouched for, and what remains
# in doubt is a strip along its edge (BENCHMARKS.md, "Labels the
# neighbouring frames vouch for").
MAX_VOUCHED = 0.5
# A run of repeats began with a change of its label when the previous
# image labels at least this share of its first patch with the suggested
# class (a majority; BENCHMARKS.md, "Errors repeated over consecutive
# frames").
RELABEL_SHARE = 0.5
# ... as one region that overlaps the patch at least this much
# (intersection over union, where the patch stands): the object was there,
# labelled as the model sees it. A patch far smaller than the region
# around it is an object outlined for the first time inside it (a sign
# come near enough to be labelled); its run is a habit of the model like
# any other (BENCHMARKS.md, "A change of the label is a relabelled
# object"). The overlap is the linker's for one object in consecutive
# frames (``repeats.MIN_BOX_IOU``).
MIN_REGION_IOU = 0.3
# The previous image's label is searched for a patch's surroundings up to
# this share of the image's larger side away (``relabelled_share``): an
# object that moved with its surroundings between the frames was not
# relabelled (BENCHMARKS.md, "A change of the label told from motion").
MAX_MOTION = 1 / 32


def image_signature(image: np.ndarray) -> np.ndarray:
    """An image's coarse look, to tell near-duplicate views of one scene
    (:func:`same_view`): its grey levels averaged over ``SIGNATURE_SHAPE``
    cells, less their mean, of unit norm.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` image, any channel order.

    Returns:
        ``(rows * columns,)`` float32 (zeros for a flat image).
    """
    gray = np.asarray(image, dtype=np.float32)
    if gray.ndim == 3:
        gray = gray.mean(axis=2)
    rows, columns = SIGNATURE_SHAPE
    small = cv2.resize(gray, (columns, rows), interpolation=cv2.INTER_AREA)
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    return (small / norm if norm else small).ravel()


def file_signature(path: str | os.PathLike) -> np.ndarray | None:
    """The signature (:func:`image_signature`) of an image file, decoded
    in grey at a quarter of its size; ``None`` where it cannot be read."""
    image = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    return None if image is None else image_signature(image)


def same_view(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Whether two images, by their signatures (:func:`image_signature`,
    ``None`` where unknown), are near-duplicate views of one scene."""
    if a is None or b is None:
        return False
    return float(np.dot(a, b)) >= MIN_VIEW_CORRELATION


def lies_between(
    previous: np.ndarray | None,
    image: np.ndarray | None,
    following: np.ndarray | None,
) -> bool:
    """Whether an image, by the signatures (:func:`image_signature`) of it
    and of the images before and after it, lies between them as a frame
    lies between the frames around it: the two neighbours resemble each
    other no more than each resembles it. Frames in time order do
    (CamVid's val sequence: every one); three frames of one scene in any
    other order, as a shuffled dataset puts them, mostly do not, and then
    the odd one out is no slip (BENCHMARKS.md, "Frames out of time
    order"). True where a signature is unknown: the order is trusted."""
    if previous is None or image is None or following is None:
        return True
    apart = float(np.dot(previous, following))
    return apart <= min(
        float(np.dot(previous, image)), float(np.dot(image, following))
    )


def neighbour_labels(
    previous: np.ndarray,
    label: np.ndarray,
    following: np.ndarray,
    ignore_index: tuple[int, ...] = (),
    *,
    one_view: bool = False,
) -> np.ndarray | None:
    """What the previous and next frames' labels say of ``label``'s
    pixels: their common class where they agree.

    Args:
        previous, label, following: ``(H, W)`` integer labels of three
            consecutive images.
        ignore_index: mask values that are never scored.
        one_view: whether the previous and next images are known to be
            near-duplicate views of one scene (:func:`same_view`); else
            their labels must agree on ``MIN_AGREEMENT`` of the pixels.

    Returns:
        ``(H, W)`` int array: the neighbours' common class where they agree
        and all three images are scored, -1 elsewhere; ``None`` where the
        neighbours are not views of one scene (or differ in shape), or
        where one is a copy of ``label``: a copied label was not made on
        its own, so it testifies to nothing.
    """
    if not previous.shape == label.shape == following.shape:
        return None
    if np.array_equal(previous, label) or np.array_equal(following, label):
        return None
    scored = np.ones(label.shape, dtype=bool)
    for value in ignore_index:
        scored &= (previous != value) & (following != value)
        scored &= label != value
    agree = scored & (previous == following)
    if not one_view and agree.sum() < MIN_AGREEMENT * max(
        int(scored.sum()), 1
    ):
        return None
    return np.where(agree, previous, -1).astype(np.int32)


def odd_one_out(common: np.ndarray, label: np.ndarray) -> np.ndarray | None:
    """The neighbours' class where they agree with each other and not with
    ``label``.

    Args:
        common: the neighbours' common class (see :func:`neighbour_labels`).
        label: ``(H, W)`` integer label of the image between them.

    Returns:
        ``(H, W)`` int array: the neighbours' common class on regions at
        least ``OPENING`` pixels wide, -1 elsewhere; ``None`` where there
        are none.
    """
    odd = (common >= 0) & (common != label)
    if not odd.any():
        return None
    return np.where(_opened(odd), common, -1).astype(np.int32)


def vouched_for(
    common: np.ndarray, label: np.ndarray, flagged: np.ndarray
) -> np.ndarray:
    """The flagged pixels whose label the neighbours repeat: three
    labellings made one by one agree there, so a disagreement of the model
    is its own habit (or a policy the labellers follow throughout), not a
    slip of this image.

    Args:
        common: the neighbours' common class (see :func:`neighbour_labels`).
        label: ``(H, W)`` integer label of the image between them.
        flagged: ``(H, W)`` bool, the pixels in doubt.

    Returns:
        ``(H, W)`` bool, on regions at least ``OPENING`` pixels wide: a
        narrower strip along a flagged object's edge is the frames'
        motion.
    """
    return _opened((common == label) & flagged)


def same_scene(
    previous: np.ndarray, label: np.ndarray, *, one_view: bool = False
) -> bool:
    """Whether the previous image is a view of the same scene: the images
    are known to be near-duplicates (``one_view``, see :func:`same_view`),
    or its label agrees with ``label`` on at least ``MIN_AGREEMENT`` of the
    pixels both score (negative values unscored)."""
    if previous.shape != label.shape:
        return False
    if one_view:
        return True
    scored = (previous >= 0) & (label >= 0)
    agree = int((scored & (previous == label)).sum())
    return agree >= MIN_AGREEMENT * max(int(scored.sum()), 1)


def relabelled_share(
    previous: np.ndarray,
    label: np.ndarray,
    suggested: int,
    box: tuple[int, int, int, int],
    mask: np.ndarray,
) -> float:
    """The share of a patch's pixels that the previous image (a view of
    the same scene, see :func:`same_scene`) labels with its suggested
    class, where they are and where the patch's surroundings moved to: the
    previous label is aligned on the labels around the patch, searched up
    to ``MAX_MOTION`` of the image away, and the smaller share counts. A
    pole that the camera's motion moved with the facade behind it was not
    relabelled where it stood before.

    A majority counts only where the previous image labels it, where the
    patch stands, as one region of about the patch's extent
    (``MIN_REGION_IOU``); else the share is 0: the patch is an object
    outlined for the first time inside a larger region, not an object
    relabelled.

    Args:
        previous: ``(H, W)`` integer label of the previous image.
        label: ``(H, W)`` integer label of the image (negative values
            unscored).
        suggested: the patch's suggested class.
        box: the patch's ``(x, y, w, h)``.
        mask: its ``(h, w)`` bool mask in the box.
    """
    x, y, w, h = box
    share = _share(previous[y : y + h, x : x + w], mask, suggested)
    radius = _search_radius(label)
    if share >= RELABEL_SHARE and radius:
        surroundings = _surroundings(label, box, mask, radius)
        dx, dy, _ = _motion(previous, surroundings, radius)
        moved = _crop(previous, x + dx, y + dy, w, h)
        share = min(share, _share(moved, mask, suggested))
    if share < RELABEL_SHARE:
        return share
    region = _region_iou(previous, suggested, box, mask)
    return share if region >= MIN_REGION_IOU else 0.0


def _region_iou(
    previous: np.ndarray,
    suggested: int,
    box: tuple[int, int, int, int],
    mask: np.ndarray,
) -> float:
    """Intersection over union of a patch (its ``box`` and ``mask``) with
    the 8-connected region of the ``suggested`` class in the ``previous``
    label that holds most of it, seen within the box grown on each side by
    its longer side (a region reaching beyond that is larger still)."""
    x, y, w, h = box
    margin = max(w, h)
    height, width = previous.shape
    x0, y0 = max(x - margin, 0), max(y - margin, 0)
    x1, y1 = min(x + w + margin, width), min(y + h + margin, height)
    patch = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    patch[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = mask
    flags = (previous[y0:y1, x0:x1] == suggested).view(np.uint8)
    _, ids, stats, _ = cv2.connectedComponentsWithStats(flags, connectivity=8)
    under = np.bincount(ids[patch], minlength=len(stats))
    under[0] = 0  # the other classes
    best = int(under.argmax())
    inter = int(under[best])
    area = int(stats[best, cv2.CC_STAT_AREA])
    return inter / (area + int(np.count_nonzero(mask)) - inter)


def vouched_where_moved(
    previous: np.ndarray,
    label: np.ndarray,
    following: np.ndarray,
    box: tuple[int, int, int, int],
    mask: np.ndarray,
    above: float = 0.0,
) -> float:
    """The share of a patch's pixels whose label both neighbouring frames
    repeat where the patch's surroundings moved to (see
    :func:`vouched_for`, which reads them in place): each neighbour's
    label is aligned on the labels around the patch, up to ``MAX_MOTION``
    of the image away, as in :func:`relabelled_share`. A pole the camera
    panned past is vouched for where it stands in each frame.

    The alignment counts only where it shows the steady motion of one
    scene: the previous frame repeats at least ``MIN_AGREEMENT`` of the
    labels around the patch at its best shift, and the next frame as much
    at the opposite shift (the middle frame sits between its neighbours;
    within 2 px, each shift being found to the pixel). Else, as where a
    label error reaches beyond its patch and pulls the search aside, 0.
    As in :func:`vouched_for`, parts narrower than ``OPENING`` do not
    count.

    Args:
        previous, label, following: ``(H, W)`` integer labels of three
            consecutive images (negative values unscored).
        box: the patch's ``(x, y, w, h)``.
        mask: its ``(h, w)`` bool mask in the box.
        above: a share already known (in place): where the previous frame
            alone shows the result cannot exceed it, 0 without searching
            the next frame.
    """
    radius = _search_radius(label)
    if radius == 0:
        return 0.0
    x, y, w, h = box
    here = label[y : y + h, x : x + w]
    area = max(int(np.count_nonzero(mask)), 1)
    surroundings = _surroundings(label, box, mask, radius)
    ax, ay, agreement = _motion(previous, surroundings, radius)
    repeated = mask & (_crop(previous, x + ax, y + ay, w, h) == here)
    if agreement < MIN_AGREEMENT or np.count_nonzero(repeated) <= above * area:
        return 0.0
    bx, by, agreement = _motion(
        following, surroundings, radius, near=(-ax, -ay)
    )
    if agreement < MIN_AGREEMENT:
        return 0.0
    repeated &= _crop(following, x + bx, y + by, w, h) == here
    return int(np.count_nonzero(_opened(repeated))) / area


def _search_radius(label: np.ndarray) -> int:
    """How far, in pixels, a neighbour is searched for a patch's
    surroundings: ``MAX_MOTION`` of the image's larger side, made even
    (the coarse search steps by 2)."""
    radius = round(MAX_MOTION * max(label.shape))
    return radius + radius % 2


def _share(label: np.ndarray, mask: np.ndarray, value: int) -> float:
    same = label[mask] == value
    return int(np.count_nonzero(same)) / same.size  # np.mean, faster


def _surroundings(
    label: np.ndarray,
    box: tuple[int, int, int, int],
    mask: np.ndarray,
    radius: int,
) -> tuple[int, int, np.ndarray, np.ndarray]:
    """The labels around a patch that a neighbour is aligned on: the
    corner ``(x0, y0)`` of the box grown by ``radius`` (within the image),
    its labels and the ``ring`` of them that count (scored, outside the
    patch)."""
    x, y, w, h = box
    height, width = label.shape
    x0, y0 = max(x - radius, 0), max(y - radius, 0)
    x1, y1 = min(x + w + radius, width), min(y + h + radius, height)
    around = label[y0:y1, x0:x1]
    ring = around >= 0
    ring[y - y0 : y - y0 + h, x - x0 : x - x0 + w] &= ~mask
    return x0, y0, around, ring


def _motion(
    other: np.ndarray,
    surroundings: tuple[int, int, np.ndarray, np.ndarray],
    radius: int,
    near: tuple[int, int] | None = None,
) -> tuple[int, int, float]:
    """The shift ``(dx, dy)``, each within about ``radius`` (or within 2
    px of ``near``), at which the ``other`` frame's label agrees best with
    a patch's ``surroundings`` (see :func:`_surroundings`, grown by the
    same even ``radius``; the smallest shift among the best), and the
    share of them it repeats there: searched on every other row and
    column at even shifts, then to the pixel around the best (around
    ``near``, to the pixel only)."""
    x0, y0, around, ring = surroundings
    if not ring.any():
        return 0, 0, 0.0  # nothing around the patch to align on
    reach = 2
    if near is None:
        classes = np.unique(around[ring])
        rows, cols = around.shape
        span = (cols + 2 * radius, rows + 2 * radius)
        search = _crop(other, x0 - radius, y0 - radius, *span)
        coarse = _agreement(
            search[::2, ::2], around[::2, ::2], ring[::2, ::2], classes
        )
        coarse -= _shift_penalty(radius // 2)
        cy, cx = np.unravel_index(np.argmax(coarse), coarse.shape)
        near, reach = (2 * int(cx) - radius, 2 * int(cy) - radius), 1
    rows, cols = around.shape
    size = 2 * reach + 1
    dx, dy = near[0] - reach, near[1] - reach
    search = _crop(other, x0 + dx, y0 + dy, cols + size - 1, rows + size - 1)
    fine = [
        (
            np.count_nonzero(
                ring & (search[j : j + rows, i : i + cols] == around)
            ),
            -abs(dx + i) - abs(dy + j),
            (dx + i, dy + j),
        )
        for j in range(size)
        for i in range(size)
    ]
    agreeing, _, (dx, dy) = max(fine)
    return dx, dy, agreeing / max(int(np.count_nonzero(ring)), 1)


def _agreement(
    search: np.ndarray,
    around: np.ndarray,
    ring: np.ndarray,
    classes: np.ndarray,
) -> np.ndarray:
    """The pixels of ``ring`` whose label in ``around`` the ``search``
    label repeats, at each placement of ``around`` inside ``search``."""
    out = 0.0
    for k in classes:
        out = out + cv2.matchTemplate(
            (search == k).astype(np.float32),
            (ring & (around == k)).astype(np.float32),
            cv2.TM_CCORR,
        )
    return np.asarray(out, np.float32)


@functools.lru_cache(maxsize=8)
def _shift_penalty(radius: int) -> np.ndarray:
    """``(2 radius + 1, 2 radius + 1)`` float32: each shift's length, over
    ``2 radius + 1``; under 1, so that it only breaks ties between the
    agreements' whole pixel counts (the smallest shift wins)."""
    offsets = np.abs(np.arange(-radius, radius + 1))
    length = offsets[:, None] + offsets[None, :]
    penalty = (length / (2.0 * radius + 1.0)).astype(np.float32)
    penalty.flags.writeable = False
    return penalty


def _crop(label: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """``label[y : y + h, x : x + w]``, -1 outside the image."""
    height, width = label.shape
    if x >= 0 and y >= 0 and x + w <= width and y + h <= height:
        return label[y : y + h, x : x + w]
    out = np.full((h, w), -1, dtype=label.dtype)
    xa, ya = max(x, 0), max(y, 0)
    xb, yb = min(x + w, width), min(y + h, height)
    if xa < xb and ya < yb:
        out[ya - y : yb - y, xa - x : xb - x] = label[ya:yb, xa:xb]
    return out


def began_with_relabel(relabelled: float | None) -> bool:
    """Whether a run of repeats whose first patch the previous image
    labels ``relabelled`` (see :func:`relabelled_share`) with its
    suggested class began with a change of the label, not of the model's
    view."""
    return relabelled is not None and relabelled >= RELABEL_SHARE


def likelihood_ratios(
    contradicted: np.ndarray,
    confirmed: np.ndarray,
    label: np.ndarray,
    num_classes: int,
) -> np.ndarray:
    """How many times more often the neighbouring frames contradict a wrong
    label than a right one, for each class's labels in one image.

    A slip made in this frame alone is contradicted wherever its
    neighbours are views of the scene; a right label only where the scene
    changed between the frames, and how much depends on the object: a car
    driving by or a thin pole passing is contradicted often, the road
    rarely. That rate is read on the class's pixels whose label the model
    confirms (its argmax), and the ratio is its inverse: a frame where
    cars drove across earns the neighbours little weight on its cars.
    With one pixel added to each count, the ratio is at most the class's
    confirmed pixels plus one: where the model confirms none of a class in
    the image, nothing shows what the neighbours' word is worth on it, and
    it counts for nothing (ratio 1).

    Args:
        contradicted: ``(H, W)`` bool, the labels the neighbours contradict
            (see :func:`odd_one_out`).
        confirmed: ``(H, W)`` bool, the labels the model confirms.
        label: ``(H, W)`` integer label (negative values unscored).
        num_classes: the number of classes ``K``.

    Returns:
        ``(K,)`` float64 ratios.
    """
    confirmed = confirmed & (label >= 0)
    classes = label.astype(np.intp)
    counts = np.bincount(classes[confirmed], minlength=num_classes)
    moved = np.bincount(
        classes[confirmed & contradicted], minlength=num_classes
    )
    return (counts + 1.0) / (moved + 1.0)


def doubt_with_testimony(doubt: float, ratio: float) -> float:
    """The model's ``doubt`` in a label (a probability that it is wrong)
    once the neighbouring frames contradict it, by Bayes' rule with their
    likelihood ``ratio`` (see :func:`likelihood_ratios`).

    Example:
        >>> round(doubt_with_testimony(0.2, 100.0), 3)
        0.962
    """
    odds = doubt * ratio
    return odds / (1.0 - doubt + odds)


def _opened(mask: np.ndarray) -> np.ndarray:
    """``mask`` without the parts narrower than ``OPENING``."""
    kernel = np.ones((OPENING, OPENING), np.uint8)
    opened = cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_OPEN, kernel)
    return opened.view(bool)
