"""Labels shifted against their images."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def find_label_shift(
    label: np.ndarray, argmax: np.ndarray
) -> LabelShift | None:
    """Returns the move of an ``(H, W)`` label (-1 = not scored) that
    aligns it with the model's ``(H, W)`` argmax, when that move is a real
    shift: several pixels long, and it removes at least ``MIN_EXPLAINED``
    of the disagreement and ``MIN_GAIN`` of the pixels. ``None`` otherwise.

    Every move up to ``MAX_SHIFT_SHARE`` of the shorter side is tried on
    maps subsampled to about ``SEARCH_SIDE`` pixels. A label drawn for
    another frame, or misregistered, disagrees with the model along every
    boundary; moved back, it agrees.
    """
    step = max(1, min(label.shape) // SEARCH_SIDE)
    lab = label[::step, ::step]
    pred = argmax[::step, ::step]
    reach = max(1, math.ceil(MAX_SHIFT_SHARE * min(label.shape) / step))
    h, w = lab.shape
    best = None
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            # label pixel (y, x) moves to (y + dy, x + dx)
            src = lab[
                max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
            ]
            dst = pred[
                max(dy, 0) : h - max(-dy, 0), max(dx, 0) : w - max(-dx, 0)
            ]
            valid = src >= 0
            n = int(np.count_nonzero(valid))
            if n < 0.5 * lab.size:
                continue
            wrong = np.count_nonzero((src != dst) & valid) / n
            if dy == 0 and dx == 0:
                unmoved = wrong
            if best is None or wrong < best[0]:
                best = (wrong, dy, dx)
    if best is None:
        return None
    wrong, dy, dx = best
    shift = LabelShift(dy * step, dx * step, unmoved, wrong)
    far_enough = max(abs(dy), abs(dx)) >= 2
    if (
        far_enough
        and shift.explained >= MIN_EXPLAINED
        and unmoved - wrong >= MIN_GAIN
    ):
        return shift
    return None
