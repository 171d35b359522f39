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
(intersection over union at least ``MIN_BOX_IOU``). Where the previous
image is a view of the same scene, each box's sides are taken at least as
long as the camera's motion between them (``neighbours.MAX_MOTION`` of
the image): a thin pole's box moves past its own width. It links to the
run's first patch, so a run that moves slowly across the frames stays
one run.
Disagreements left unreported because the neighbouring frames vouch for
their labels (``fixer_core.neighbours``) still belong to their runs: they
link the frames around them and count in the run's length.
Over shards (one linker per process, each on its own contiguous share of
the images), a run that crosses a shard's edge begins again in the next
shard: :func:`join_shards` joins each shard's runs to the earlier shards'
runs they continue, as one linker over all the images would have linked
them.
The corrected labels leave repeats to the reviewer; the finder reports
how many there are, and FIXER's views show them after the first patches
of their runs. Once every image is scored, each patch of a run of ``L``
frames has its score and its ``error_probability`` divided by
``sqrt(L)`` (``discount_runs``): a long run is mostly the model's habit,
so its first patch ranks under a one-off disagreement, and the expected
count of errors (:class:`ExpectedErrors`) counts the run's evidence
once, not ``L`` times.
Unless the run began with a change of the label: where the previous
image labels most of the run's first patch as the model sees it, the
label changed there and the model's view did not, as where an
annotator's repeated mistake begins. Each of that run's patches is the
same label mistake again, to be fixed again: none is a repeat, each
keeps its score, and the neighbouring frames, which repeat the mistake,
vouch for none of them (:meth:`RepeatLinker.continue_changes`). A frame
of such a run is a label error only if the run is: each later patch
carries its run's first patch's probability (``Patch.run_probability``),
and the corrected labels take it only where both are high enough
(``fixer_core.corrections.corrects``). Over shards, a shard does not
know how a run of the previous shard began while it scores its images:
there the neighbours may vouch for the run's frames, as for a habit's.
On datasets that are not ordered in time nothing links, by the same rule.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, deque
from collections.abc import Mapping, Sequence

import numpy as np

from .neighbours import began_with_relabel
from .patches import Patch, PatchGeometry

# A run of repeats: (image index, position) of its first patch
Run = tuple[int, int]
# One linked image: (image index, boxes (n, 4) in units of the image's
# larger side, (given, suggested) pairs (n, 2), each of its patches' runs)
Linked = tuple[int, np.ndarray, np.ndarray, list[Run]]
# A run begun in a linker's first images: (image index, box, pair, run,
# the camera's motion since the previous image)
Head = tuple[int, np.ndarray, np.ndarray, Run, float]

# The boxes of a run's patches in consecutive frames overlap at least this
# much: a moving object's box shifts by a fraction of its size per frame
# (BENCHMARKS.md, "Repeated patches"), a thin one's by a fraction of the
# camera's motion (``_padded``; "Thin objects' runs").
MIN_BOX_IOU = 0.3


class RepeatLinker:
    """Streams each image's patches, in input order, and marks repeats.

    Every patch gets its run (``Patch.run``: the image index and position
    of the run's first patch); repeats also get ``repeat_of``, unless
    their run began with a change of the label. Memory holds the patches'
    boxes of the last ``window`` images, and the length of each run of
    more than one image (:attr:`run_lengths`).

    Args:
        window: how many previous images a patch is compared with (0 links
            nothing).
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self._recent: deque[Linked] = deque(maxlen=max(window, 1))
        self.run_lengths: Counter[Run] = Counter()
        """The images each run of more than one image spans, so far."""
        # the recent images' runs whose first patch was reported and began
        # with a change of the label: their first patch's probability
        self._changed: dict[Run, float] = {}
        self._first: int | None = None  # the first image linked
        # runs begun in the first ``window`` images (see ``shard_runs``)
        self._heads: list[Head] = []
        # their reported patches and repeats among them
        self._head_counts: dict[Run, list[int]] = {}

    def link(
        self,
        image_index: int,
        patches: list[Patch],
        unreported: Sequence[PatchGeometry] = (),
        *,
        image_shape: tuple[int, int],
        motion: float = 0.0,
    ) -> list[Patch]:
        """Returns the image's patches with their runs, repeats with
        ``repeat_of`` set to the image index where their run began.
        ``unreported`` disagreements (their boxes and classes) join runs,
        and may begin one. ``image_shape`` is the image's ``(H, W)``;
        ``motion`` how far the camera may have moved since the previous
        image, in units of its larger side (``MAX_MOTION`` where that
        image is a view of the same scene, else 0)."""
        if not self.window:
            return patches
        if self._first is None:
            self._first = image_index
        recent = [r for r in self._recent if r[0] >= image_index - self.window]
        both = [*patches, *unreported]
        boxes = _scaled_boxes(both, image_shape)
        pairs = np.array([(p.given_label, p.suggested_label) for p in both])
        out, runs = [], []
        for j, (patch, run) in enumerate(
            zip(both, _runs_of(boxes, pairs, recent, motion), strict=True)
        ):
            reported = j < len(patches)
            if run is None:
                run = (image_index, j)
                if self.begins(run):
                    self._heads.append(
                        (image_index, boxes[j], pairs[j], run, motion)
                    )
                    self._head_counts[run] = [0, 0]
                if reported and patch_keeps_score(patch):
                    self._changed[run] = patch.error_probability
            else:
                self.run_lengths[run] = self.run_lengths.get(run, 1) + 1
            if reported:
                continues = run[0] != image_index
                changed = self._changed.get(run) if continues else None
                repeat = continues and changed is None
                out.append(
                    dataclasses.replace(
                        patch,
                        run=run,
                        repeat_of=run[0] if repeat else None,
                        run_probability=changed,
                    )
                )
                if run in self._head_counts:
                    self._head_counts[run][0] += 1
                    self._head_counts[run][1] += repeat
            runs.append(run)
        self._recent.append((image_index, boxes, pairs, runs))
        if self._changed:
            alive = {r for linked in self._recent for r in linked[3]}
            self._changed = {
                r: q for r, q in self._changed.items() if r in alive
            }
        return out

    def continue_changes(
        self,
        image_index: int,
        shapes: Sequence[PatchGeometry],
        image_shape: tuple[int, int],
        motion: float = 0.0,
    ) -> list[bool]:
        """Whether each of an image's shapes, linked now (see
        :meth:`link`), would continue a run that began with a change of the
        label: the neighbouring frames of such a run repeat the label's
        mistake, they do not vouch for it."""
        if not self._changed or not shapes:
            return [False] * len(shapes)
        recent = [r for r in self._recent if r[0] >= image_index - self.window]
        boxes = _scaled_boxes(shapes, image_shape)
        pairs = np.array([(s.given_label, s.suggested_label) for s in shapes])
        runs = _runs_of(boxes, pairs, recent, motion)
        return [run in self._changed for run in runs]

    def begins(self, run: Run) -> bool:
        """Whether ``run`` began in the first ``window`` images this linker
        linked: a run of the images before them may continue it."""
        return self._first is not None and run[0] < self._first + self.window

    def shard_runs(self) -> ShardRuns:
        """What this linker knows of the runs at the edges of the images
        it linked (a shard of them), for :func:`join_shards`."""
        return ShardRuns(
            self.window,
            list(self._heads),
            list(self._recent),
            Counter(self.run_lengths),
            dict(self._changed),
            {run: tuple(n) for run, n in self._head_counts.items()},
        )


@dataclasses.dataclass(frozen=True)
class ShardRuns:
    """The runs at the edges of one shard's images (picklable).

    Attributes:
        window: the linker's window.
        heads: the runs begun in the shard's first ``window`` images, which
            may continue a run of the images before the shard: (image
            index, box, (given, suggested), run, the camera's motion since
            the previous image).
        tail: the shard's last ``window`` linked images, which runs of the
            next shard may continue.
        run_lengths: the images each run of more than one image spans
            within the shard.
        changed: the tail's runs that began with a change of the label,
            with their first patch's probability.
        head_counts: the reported patches of each of ``heads``' runs, and
            the repeats among them.
    """

    window: int
    heads: list[Head]
    tail: list[Linked]
    run_lengths: Counter[Run]
    changed: dict[Run, float]
    head_counts: dict[Run, tuple[int, int]]


@dataclasses.dataclass(frozen=True)
class JoinedRuns:
    """The runs of all shards, joined where they cross a shard's edge.

    Attributes:
        runs: ``{run begun in a shard: the earlier shard's run it
            continues}``.
        run_lengths: the images each run of more than one image spans,
            over all shards.
        repeats: the repeats among the reported patches of the runs that
            continue an earlier shard's, less those the shards' own
            linkers counted.
        changed: the runs in ``runs``' values that began with a change of
            the label, with their first patch's probability: their patches
            in the later shards are not repeats (see :func:`continue_runs`).
    """

    runs: dict[Run, Run]
    run_lengths: Counter[Run]
    repeats: int
    changed: dict[Run, float]


def join_shards(shards: Sequence[ShardRuns]) -> JoinedRuns:
    """Joins the runs of consecutive shards of the images (their linkers'
    :meth:`RepeatLinker.shard_runs`, in image order): each run begun in a
    shard's first images links, by the linker's rule, to the runs of the
    images just before the shard (of one or more earlier shards), as one
    linker over all the images links them.

    Within a shard its linker links as one linker over all the images
    would, the nearer images first: only a patch that found no run there
    may continue an earlier shard's.
    """
    runs: dict[Run, Run] = {}
    lengths: Counter[Run] = Counter()
    repeats = 0
    tail: list[Linked] = []  # the last images before the next shard
    changed: dict[Run, float] = {}  # the tail's runs begun with a change
    continued: dict[Run, float] = {}
    for shard in shards:
        for index, box, pair, head, motion in shard.heads:
            recent = [t for t in tail if t[0] >= index - shard.window]
            run = _run_of(box, pair, recent, motion)
            if run is not None:
                runs[head] = run
                own = shard.run_lengths.get(head, 1)
                lengths[run] = lengths.get(run, 1) + own
                reported, counted = shard.head_counts[head]
                if run in changed:
                    continued[run] = changed[run]
                    repeats -= counted
                else:
                    repeats += reported - counted
        lengths.update(
            {r: n for r, n in shard.run_lengths.items() if r not in runs}
        )
        changed.update(
            {r: q for r, q in shard.changed.items() if r not in runs}
        )
        joined = [
            (index, boxes, pairs, [runs.get(r, r) for r in linked])
            for index, boxes, pairs, linked in shard.tail
        ]
        tail = [*tail, *joined][-max(shard.window, 1) :]
        alive = {run for linked in tail for run in linked[3]}
        changed = {r: q for r, q in changed.items() if r in alive}
    return JoinedRuns(runs, lengths, repeats, continued)


def continue_runs(patches: Sequence[Patch], joined: JoinedRuns) -> list[Patch]:
    """The patches with the runs their runs continue (see
    :attr:`JoinedRuns.runs`): repeats of the earlier run, unless it began
    with a change of the label (then with its ``run_probability``)."""
    out = []
    for p in patches:
        if p.run in joined.runs:
            run = joined.runs[p.run]
            changed = joined.changed.get(run)
            p = dataclasses.replace(
                p,
                run=run,
                repeat_of=None if changed is not None else run[0],
                run_probability=changed,
            )
        out.append(p)
    return out


def continues_run(patch: Patch) -> bool:
    """Whether a patch continues a run begun in an earlier image: a
    repeat, or the same label mistake again in a run that began with a
    change of the label."""
    return patch.run is not None and patch.run[0] != patch.image_index


class ExpectedErrors:
    """The expected number of label errors among the reported patches (the
    sum of their final ``error_probability``) and its variance, as the
    images stream in, before the runs' lengths are known.

    A run's patches share its evidence: their probabilities are divided as
    their scores are (:func:`run_score`, with the runs' final lengths), so
    the sums of each run's patches are kept until it can no longer grow:
    a run of one image is dropped once the linker's window has passed,
    unless it begins the stream (a run of an earlier shard may continue
    it; see :meth:`merge`). Memory holds the runs of more than one
    image, as :attr:`RepeatLinker.run_lengths` does."""

    def __init__(self) -> None:
        self.total = 0.0  # sum of the patches' probabilities
        self.squares = 0.0  # sum of their squares
        # run -> [sum, sum of squares] of its patches that share its score
        self.runs: dict[Run, list[float]] = {}
        # the runs the stream begins with whose patches keep their score:
        # [sum, sum of squares] of those patches (repeats if an earlier
        # shard's run continues there, unless it began with a change)
        self.kept: dict[Run, list[float]] = {}
        # (image index, the runs it began) of the images a run may continue
        self._open: deque[tuple[int, list[Run]]] = deque()
        # the earlier shards' runs begun with a change of the label that
        # the merged shards continue: their patches keep their
        # probabilities (``merge``)
        self._changed: set[Run] = set()

    def add(
        self, image_index: int, patches: Sequence[Patch], linker: RepeatLinker
    ) -> None:
        """Counts one image's patches, as ``linker`` linked them."""
        for p in patches:
            q = p.error_probability
            self.total += q
            self.squares += q * q
            if p.run is None:
                continue
            keeps = patch_keeps_score(p)
            if keeps and not linker.begins(p.run):
                continue
            sums = (self.kept if keeps else self.runs).setdefault(
                p.run, [0.0, 0.0]
            )
            sums[0] += q
            sums[1] += q * q
        begun = [p.run for p in patches if p.run and not continues_run(p)]
        self._open.append((image_index, begun))
        while self._open and self._open[0][0] <= image_index - linker.window:
            for run in self._open.popleft()[1]:
                if run not in linker.run_lengths and not linker.begins(run):
                    self.runs.pop(run, None)

    def merge(self, other: ExpectedErrors, joined: JoinedRuns) -> None:
        """Adds the next shard's sums (``joined``: the runs it began that
        continue an earlier shard's; their patches are that run's)."""
        self.total += other.total
        self.squares += other.squares
        self._changed |= set(joined.changed)
        for run, (total, squares) in other.runs.items():
            sums = self.runs.setdefault(joined.runs.get(run, run), [0.0, 0.0])
            sums[0] += total
            sums[1] += squares
        for run, (total, squares) in other.kept.items():
            if run in joined.runs:
                sums = self.runs.setdefault(joined.runs[run], [0.0, 0.0])
                sums[0] += total
                sums[1] += squares

    def estimate(self, run_lengths: Mapping[Run, int]) -> tuple[float, float]:
        """The expected count and its variance (the patches taken as
        independent), with the runs' final ``run_lengths``."""
        mean, squares = self.total, self.squares
        for run, (total, run_squares) in self.runs.items():
            if run in self._changed:
                continue
            share = run_score(1.0, run_lengths.get(run, 1))
            mean -= total * (1.0 - share)
            squares -= run_squares * (1.0 - share * share)
        return mean, max(mean - squares, 0.0)


def run_score(score: float, run_length: int, scored_as: int = 1) -> float:
    """The score of a patch of a run of ``run_length`` images, from its
    score as a patch of a run of ``scored_as`` (1: the finder's score):
    the run's evidence is shared, ``1 / sqrt(run_length)``."""
    return score * math.sqrt(scored_as / run_length)


def discount_runs(
    patches: Sequence[Patch],
    run_lengths: Mapping[Run, int] | None = None,
) -> list[Patch]:
    """Returns the patches with their runs' lengths, scores and
    probabilities (see :func:`run_score`; once: a second call changes
    nothing).

    ``run_lengths`` (e.g. ``LabelErrorFinder.run_lengths``) gives the
    images each run spans, its unreported patches included (runs not
    listed span one image); by default, the patches of each run are
    counted.

    A disagreement that one object shows in ``L`` consecutive frames, each
    labelled on its own, is mostly the model's habit: a label error would
    have to recur in every frame. On CamVid's val sequence, the first
    patches of runs of 1, 2, 3-5 and 6+ frames were label errors 19-26%,
    10-14%, 4-7% and 2-4% of the time (BENCHMARKS.md, "The label's doubt
    in the score, and runs of frames"). A run's first patch whose label
    changed from the previous image (``PatchEvidence.relabelled``; see
    ``fixer_core.neighbours.began_with_relabel``) keeps its score and
    probability, and so does each patch of its run.
    """
    if run_lengths is None:
        run_lengths = Counter(p.run for p in patches if p.run is not None)
    return [
        run_of_length(p, 1 if p.run is None else run_lengths.get(p.run, 1))
        for p in patches
    ]


def run_of_length(patch: Patch, length: int) -> Patch:
    """The patch as one of a run of ``length`` images: its score and
    probability shared by the run (:func:`run_score`), unless it keeps its
    score (:func:`patch_keeps_score`)."""
    if length == patch.run_length:
        return patch
    score, probability = patch.score, patch.error_probability
    if not patch_keeps_score(patch):
        score = run_score(score, length, patch.run_length)
        probability = run_score(probability, length, patch.run_length)
    return dataclasses.replace(
        patch, score=score, error_probability=probability, run_length=length
    )


def frame_probability(patch: Patch) -> float:
    """A patch's ``error_probability`` as its own image shows it, before
    its run shared it (:func:`discount_runs`). The image's error map and
    error score take it: they are written as each image is scored, before
    its runs end."""
    return run_of_length(patch, 1).error_probability


def patch_keeps_score(patch: Patch) -> bool:
    """Whether a patch keeps its score whatever its run's length: the
    patches of a run that began with a change of its label, that is the
    first patch (not a repeat) where the label changed
    (``PatchEvidence.relabelled``, see ``began_with_relabel``), and the
    run's patches that continue it without being repeats."""
    if patch.repeat_of is not None:
        return False
    relabelled = None if patch.evidence is None else patch.evidence.relabelled
    return continues_run(patch) or began_with_relabel(relabelled)


def _run_of(
    box: np.ndarray,
    pair: np.ndarray,
    recent: Sequence[Linked],
    motion: float,
) -> Run | None:
    """The run ``box`` continues, if any (the nearest previous image's
    overlapping patch wins)."""
    return _runs_of(box[None], pair[None], recent, motion)[0]


def _runs_of(
    boxes: np.ndarray,
    pairs: np.ndarray,
    recent: Sequence[Linked],
    motion: float,
) -> list[Run | None]:
    """The run each of ``boxes`` (with its ``pairs``) continues, if any
    (the nearest previous image's first overlapping patch wins), from one
    overlap matrix per previous image, the boxes' sides taken at least
    ``motion`` long (``_padded``)."""
    found: list[Run | None] = [None] * len(boxes)
    left = np.arange(len(boxes))
    boxes = _padded(boxes, motion)
    for _, old_boxes, old_pairs, runs in reversed(recent):
        if not left.size:
            break
        if not len(old_boxes):
            continue
        same = (pairs[left, None] == old_pairs).all(axis=2)
        iou = box_iou(boxes[left], _padded(old_boxes, motion))
        match = same & (iou >= MIN_BOX_IOU)
        hit = match.any(axis=1)
        firsts = match[hit].argmax(axis=1)
        for j, first in zip(left[hit].tolist(), firsts.tolist(), strict=True):
            found[j] = runs[first]
        left = left[~hit]
    return found


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of ``(..., 4)`` boxes ``(x, y, w, h)`` with
    ``(n, 4)`` boxes: ``(..., n)``."""
    box = box[..., None, :]
    x0 = np.maximum(box[..., 0], boxes[:, 0])
    y0 = np.maximum(box[..., 1], boxes[:, 1])
    x1 = np.minimum(box[..., 0] + box[..., 2], boxes[:, 0] + boxes[:, 2])
    y1 = np.minimum(box[..., 1] + box[..., 3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = box[..., 2] * box[..., 3] + boxes[:, 2] * boxes[:, 3] - inter
    out = np.zeros(np.shape(inter))
    return np.divide(inter, union, out=out, where=union > 0)


def _scaled_boxes(
    shapes: Sequence[PatchGeometry | Patch], image_shape: tuple[int, int]
) -> np.ndarray:
    """The shapes' boxes ``(n, 4)`` in units of the image's larger side."""
    boxes = np.array([s.box for s in shapes], dtype=np.float64)
    return boxes.reshape(-1, 4) / max(image_shape)


def _padded(boxes: np.ndarray, motion: float) -> np.ndarray:
    """``(n, 4)`` boxes with each side at least ``motion`` long, about its
    centre: the camera's motion between frames moves a thin object's box
    past its own width."""
    if motion <= 0:
        return boxes
    sides = np.maximum(boxes[:, 2:], motion)
    return np.concatenate(
        [boxes[:, :2] - (sides - boxes[:, 2:]) / 2, sides], 1
    )
