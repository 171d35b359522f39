"""Labels shifted against their images."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# The cause of the patches that a moved label explains
SHIFTED_CAUSE = "label shifted against its image"
# Searched shifts reach this share of the image's shorter side
MAX_SHIFT_SHARE = 0.12
# The search runs on maps of about this many pixels along the shorter side
SEARCH_SIDE = 90
# A shift is reported when it removes at least this share of the image's
# disagreement with the model ...
MIN_EXPLAINED = 0.4
# ... and at least this share of its scored pixels
MIN_GAIN = 0.05


@dataclass(frozen=True)
class LabelShift:
    """A label that agrees with the model better when moved.

    Attributes:
        dy, dx: the move, in pixels, that best aligns the label with the
            image (positive: down, right).
        disagreement: share of scored pixels where the label and the
            model's argmax differ, as labelled.
        disagreement_shifted: the same after the move.
    """

    dy: int
    dx: int
    disagreement: float
    disagreement_shifted: float

    def moved(self, label: np.ndarray) -> np.ndarray:
        """Returns the ``(H, W)`` label moved by the shift (-1 where no
        label pixel lands)."""
        out = np.full(label.shape, -1, dtype=label.dtype)
        h, w = label.shape
        dy, dx = self.dy, self.dx
        out[max(dy, 0) : h - max(-dy, 0), max(dx, 0) : w - max(-dx, 0)] = (
            label[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
        )
        return out

    def to_dict(self) -> dict:
        """Returns the shift as JSON-serializable data."""
        return {
            "dy": self.dy,
            "dx": self.dx,
            "disagreement": round(float(self.disagreement), 4),
            "disagreement_shifted": round(float(self.disagreement_shifted), 4),
        }

    @property
    def explained(self) -> float:
        """Share of the disagreement that the move removes."""
        if not self.disagreement:
            return 0.0
        return 1.0 - self.disagreement_shifted / self.disagreement


def search_step(shape: tuple[int, ...]) -> int:
    """The subsampling step of :func:`find_label_shift` for ``(H, W)``
    maps."""
    return max(1, min(shape) // SEARCH_SIDE)


def find_label_shift(
    label: np.ndarray, argmax: np.ndarray
) -> LabelShift | None:
    """Returns the move of an ``(H, W)`` label (-1 = not scored) that
    aligns it with a reference ``(H, W)`` map of the image's classes (-1 =
    unknown), when that move is a real shift: several pixels long, and it
    removes at least ``MIN_EXPLAINED`` of the disagreement and
    ``MIN_GAIN`` of the pixels. ``None`` otherwise.

    The reference is the model's argmax, or, in a video, the classes the
    previous and next frames' labels agree on
    (``neighbours.neighbour_labels``): evidence that needs no model.

    Every move up to ``MAX_SHIFT_SHARE`` of the shorter side is tried on
    maps subsampled to about ``SEARCH_SIDE`` pixels (every
    :func:`search_step`-th pixel; ``argmax`` may be given subsampled
    already). A label drawn for another frame, or misregistered, disagrees
    with its image along every boundary; moved back, it agrees.
    """
    step = search_step(label.shape)
    lab = label[::step, ::step]
    pred = argmax if argmax.shape != label.shape else argmax[::step, ::step]
    if pred.shape != lab.shape:
        raise ValueError(
            f"argmax of shape {argmax.shape} fits neither the label's "
            f"{label.shape} nor its search grid {lab.shape}"
        )
    known = (lab >= 0) & (pred >= 0)
    unmoved = np.count_nonzero(known & (lab != pred)) / max(
        np.count_nonzero(known), 1
    )
    if unmoved < MIN_GAIN:
        return None  # no move can remove MIN_GAIN of the pixels
    reach = max(1, math.ceil(MAX_SHIFT_SHARE * min(label.shape) / step))
    scored, agree = _move_counts(lab, pred, reach)
    # label pixel (y, x) moves to (y + dy, x + dx): entry [dy, dx] + reach;
    # a move counts when half the reference's known pixels stay scored
    moves = scored >= 0.5 * np.count_nonzero(pred >= 0)
    if not moves.any():
        return None
    wrong = (scored - agree) / np.maximum(scored, 1)
    best = np.argmin(np.where(moves, wrong, np.inf))  # the first, row-major
    dy, dx = (int(v) - reach for v in np.unravel_index(best, wrong.shape))
    shift = LabelShift(
        dy * step,
        dx * step,
        float(wrong[reach, reach]),
        float(wrong.flat[best]),
    )
    far_enough = max(abs(dy), abs(dx)) >= 2
    if (
        far_enough
        and shift.explained >= MIN_EXPLAINED
        and shift.disagreement - shift.disagreement_shifted >= MIN_GAIN
    ):
        return shift
    return None


def _move_counts(
    lab: np.ndarray, pred: np.ndarray, reach: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(2 * reach + 1,) * 2`` counts, for every move of ``lab`` up to
    ``reach`` pixels, of its scored pixels that land on a known class of
    ``pred`` and of those that agree with it: one cross-correlation per
    class (exact: the sums are small integers)."""
    h, w = lab.shape
    padded = np.zeros((h + 2 * reach, w + 2 * reach), np.float32)
    inside = padded[reach : reach + h, reach : reach + w]
    inside[:] = pred >= 0
    scored = cv2.matchTemplate(
        padded, (lab >= 0).astype(np.float32), cv2.TM_CCORR
    )
    agree = np.zeros_like(scored)
    for c in np.intersect1d(lab[lab >= 0], pred[pred >= 0]):
        inside[:] = pred == c
        agree += cv2.matchTemplate(
            padded, (lab == c).astype(np.float32), cv2.TM_CCORR
        )
    return np.rint(scored).astype(np.int64), np.rint(agree).astype(np.int64)
