"""Repeated patches: one disagreement seen again in the next images.

Datasets cut from video (CamVid, Cityscapes sequences, driving fleets) hold
runs of near-identical frames, each labelled on its own. Where the model
disagrees with the labels on an object in one frame, it mostly does so in
the next frames too, at the same place, while their labels agree with each
other: that run is one finding, and mostly the model's habit on that object
(or a labelling policy), not a string of independent slips. Label errors
are independent from frame to frame. A reviewer should meet the run once.

A patch *repeats* when the previous ``window`` images, in input order, hold
a patch with the same (given, suggested) classes whose box overlaps its own
(intersection over union at least ``MIN_BOX_IOU``). It links to the run's
first patch, so a run that moves slowly across the frames stays one run.
Disagreements left unreported because the neighbouring frames vouch for
their labels (``fixer_core.neighbours``) still belong to their runs: they
link the frames around them and count in the run's length.
Repeats keep their corrections; the finder reports how many there are,
and FIXER's views show them after the first patches of their runs. Once
every image is scored, each patch of a run of ``L`` frames has its score
divided by ``sqrt(L)`` (``discount_runs``): a long run is mostly the
model's habit, so its first patch ranks under a one-off disagreement.
On datasets that are not ordered in time nothing links, by the same rule.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, deque
from collections.abc import Mapping, Sequence

import numpy as np

from .patches import Patch, PatchGeometry

# The boxes of a run's patches in consecutive frames overlap at least this
# much: a moving object's box shifts by a fraction of its size per frame
# (BENCHMARKS.md, "Repeated patches").
MIN_BOX_IOU = 0.3


class RepeatLinker:
    """Streams each image's patches, in input order, and marks repeats.

    Every patch gets its run (``Patch.run``: the image index and position
    of the run's first patch); repeats also get ``repeat_of``. Memory holds
    the patches' boxes of the last ``window`` images, and the length of
    each run of more than one image (:attr:`run_lengths`).

    Args:
        window: how many previous images a patch is compared with (0 links
            nothing).
    """

    def __init__(self, window: int) -> None:
        self.window = window
        # (image index, boxes (n, 4), pairs (n, 2), each patch's run)
        self._recent: deque[
            tuple[int, np.ndarray, np.ndarray, list[tuple[int, int]]]
        ]
        self._recent = deque(maxlen=max(window, 1))
        self.run_lengths: Counter[tuple[int, int]] = Counter()
        """The images each run of more than one image spans, so far."""

    def link(
        self,
        image_index: int,
        patches: list[Patch],
        unreported: Sequence[PatchGeometry] = (),
    ) -> list[Patch]:
        """Returns the image's patches with their runs, repeats with
        ``repeat_of`` set to the image index where their run began.
        ``unreported`` disagreements (their boxes and classes) join runs,
        and may begin one."""
        if not self.window:
            return patches
        recent = [r for r in self._recent if r[0] >= image_index - self.window]
        both = [*patches, *unreported]
        boxes = np.array([p.box for p in both], dtype=np.float64)
        pairs = np.array([(p.given_label, p.suggested_label) for p in both])
        out, runs = [], []
        for j, patch in enumerate(both):
            run = _run_of(boxes[j], pairs[j], recent)
            if run is None:
                run = (image_index, j)
                repeat_of = None
            else:
                self.run_lengths[run] = self.run_lengths.get(run, 1) + 1
                repeat_of = run[0]
            if j < len(patches):
                out.append(
                    dataclasses.replace(patch, run=run, repeat_of=repeat_of)
                )
            runs.append(run)
        self._recent.append((image_index, boxes, pairs, runs))
        return out


def run_score(score: float, run_length: int, scored_as: int = 1) -> float:
    """The score of a patch of a run of ``run_length`` images, from its
    score as a patch of a run of ``scored_as`` (1: the finder's score):
    the run's evidence is shared, ``1 / sqrt(run_length)``."""
    return score * math.sqrt(scored_as / run_length)


def discount_runs(
    patches: Sequence[Patch],
    run_lengths: Mapping[tuple[int, int], int] | None = None,
) -> list[Patch]:
    """Returns the patches with their runs' lengths and scores (see
    :func:`run_score`; once: a second call changes nothing).

    ``run_lengths`` (e.g. ``LabelErrorFinder.run_lengths``) gives the
    images each run spans, its unreported patches included (runs not
    listed span one image); by default, the patches of each run are
    counted.

    A disagreement that one object shows in ``L`` consecutive frames, each
    labelled on its own, is mostly the model's habit: a label error would
    have to recur in every frame. On CamVid's val sequence, the first
    patches of runs of 1, 2, 3-5 and 6+ frames were label errors 19-26%,
    10-14%, 4-7% and 2-4% of the time (BENCHMARKS.md, "The label's doubt
    in the score, and runs of frames").
    """
    if run_lengths is None:
        run_lengths = Counter(p.run for p in patches if p.run is not None)
    out = []
    for p in patches:
        length = 1 if p.run is None else run_lengths.get(p.run, 1)
        if length != p.run_length:
            p = dataclasses.replace(
                p,
                score=run_score(p.score, length, p.run_length),
                run_length=length,
            )
        out.append(p)
    return out


def _run_of(
    box: np.ndarray,
    pair: np.ndarray,
    recent: list[tuple[int, np.ndarray, np.ndarray, list[tuple[int, int]]]],
) -> tuple[int, int] | None:
    """The run ``box`` continues, if any (the nearest previous image's
    overlapping patch wins)."""
    for _, boxes, pairs, runs in reversed(recent):
        if not len(boxes):
            continue
        same = (pairs == pair).all(axis=1)
        overlap = box_iou(box, boxes) >= MIN_BOX_IOU
        match = np.flatnonzero(same & overlap)
        if match.size:
            return runs[int(match[0])]
    return None


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of an ``(x, y, w, h)`` box with ``(n, 4)``
    boxes."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y1 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter
    return inter / np.maximum(union, 1)
