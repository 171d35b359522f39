"""Corrections that runs of repeats change once they are known.

Pass 2 writes each image's corrected mask as soon as the image is scored,
with each patch's probability as its own image shows it. A run of repeats
shares its patches' probabilities once its length is known
(``fixer_core.repeats.discount_runs``), so a run's first patch that the
mask took may fall under ``correct_min_probability`` then
(``fixer_core.corrections.taken_back``). :class:`HeldCorrections` keeps
those patches while their runs may still grow, and
:func:`write_taken_back` restores their pixels in the written masks, so
that the corrected masks are those of the final probabilities, as
``apply_patches`` gives them on ``find_label_errors``' patches.

Over ranks, a shard's runs that continue the previous shard's are known
once the shards' runs are joined. Where such a run began with a change of
the label, each of its frames is corrected (``fixer_core.corrections``),
which the later shard's masks, written as repeats, left out:
:class:`HeldCorrections` keeps the patches that would then be taken,
and :func:`write_continued_corrections` sets them in the written masks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import cv2
import fiftyone as fo

from ..fixer_core import LabelErrorFinder, Patch, apply_patches
from ..fixer_core.corrections import corrects, taken_back
from ..fixer_core.repeats import (
    JoinedRuns,
    continue_runs,
    patch_keeps_score,
)
from ._documents import label_document, write_sample_fields
from ._samples import load_mask

# (sample id, image index, the patches whose correction its runs change)
Held = tuple[str, int, list[Patch]]


class HeldCorrections:
    """The patches whose corrections a rank's runs change once they are
    known, in image order:

    - those its corrected masks took that their runs may take back. An
      image leaves the last ``window`` images with its runs' length known
      to be one (then nothing is taken back, and it is dropped) or more
      (then it is held to the end): memory holds the images of runs of
      more than one image.
    - past the shard's first images (up to ``first_end``; ``None`` for
      the first shard, which continues no run), those of runs begun in
      them that its masks left out as repeats and that a run begun with a
      change of the label, in an earlier shard, would correct. The first
      images are written again whole (``_write_continued_runs``).
    """

    def __init__(
        self,
        min_probability: float,
        window: int,
        first_end: int | None = None,
    ) -> None:
        self.min_probability = min_probability
        self.window = window
        self.first_end = first_end
        self._recent: deque[Held] = deque()
        self._in_runs: list[Held] = []
        self._continuing: list[Held] = []

    def hold(
        self,
        sample_id: str,
        index: int,
        patches: list[Patch],
        finder: LabelErrorFinder,
    ) -> None:
        """Holds the image's first patches of runs that its corrected
        mask took (see ``apply_patches``), and its repeats that a
        continued run begun with a change of the label would correct."""
        shift = finder.shift_of(index)
        if self.first_end is not None and index >= self.first_end:
            continuing = [
                p
                for p in patches
                if p.run is not None
                and p.run[0] < self.first_end
                and p.repeat_of is not None
                and corrects(p, self.min_probability, shift=shift)
            ]
            if continuing:
                self._continuing.append((sample_id, index, continuing))
        if self.min_probability <= 0:
            return  # every patch is corrected, whatever its run
        held = [
            p
            for p in patches
            if p.run is not None
            and corrects(
                p, self.min_probability, skip_repeats=True, shift=shift
            )
            # one that keeps its probability whatever its run's length
            and not patch_keeps_score(p)
        ]
        if held:
            self._recent.append((sample_id, index, held))
        while self._recent and self._recent[0][1] <= index - self.window:
            image = self._recent.popleft()
            if any(p.run in finder.run_lengths for p in image[2]):
                self._in_runs.append(image)

    def taken_back(self, joined: JoinedRuns) -> list[Held]:
        """The held images whose patches the runs over all shards
        (``joined``) take back, with those patches. The patches that
        continue an earlier shard's run are left out: they are repeats,
        which the masks the continued runs rewrite leave out already."""
        out = []
        for sample_id, index, patches in [*self._in_runs, *self._recent]:
            back = taken_back(
                [p for p in patches if p.run not in joined.runs],
                joined.run_lengths,
                self.min_probability,
            )
            if back:
                out.append((sample_id, index, back))
        return out

    def continued(
        self, joined: JoinedRuns, finder: LabelErrorFinder
    ) -> list[Held]:
        """The held images whose repeats the runs over all shards
        (``joined``) correct, with those patches: frames of a run begun
        with a change of the label in an earlier shard."""
        out = []
        for sample_id, index, patches in self._continuing:
            shift = finder.shift_of(index)
            taken = [
                p
                for p in continue_runs(patches, joined)
                if corrects(
                    p, self.min_probability, skip_repeats=True, shift=shift
                )
            ]
            if taken:
                out.append((sample_id, index, taken))
        return out


def write_continued_corrections(
    dataset: fo.Dataset, images: list[Held], corrected_field: str
) -> None:
    """Sets each patch's suggested class in its image's written corrected
    mask (see :meth:`HeldCorrections.continued`)."""

    def paint(sample, index, patches, corrected):
        return apply_patches(corrected, patches)

    _rewrite_masks(dataset, images, [corrected_field], corrected_field, paint)


def write_taken_back(
    dataset: fo.Dataset,
    images: list[Held],
    gt_field: str,
    corrected_field: str,
    finder: LabelErrorFinder,
) -> None:
    """Restores, in each image's written corrected mask, the pixels of
    the patches taken back: the ground truth's, moved back into line with
    the image where its label was found shifted."""

    def paint(sample, index, patches, corrected):
        base = apply_patches(
            load_mask(sample, gt_field), [], shift=finder.shift_of(index)
        )
        for p in patches:
            x, y, w, h = p.box
            window = corrected[y : y + h, x : x + w]
            window[p.mask] = base[y : y + h, x : x + w][p.mask]
        return corrected

    _rewrite_masks(
        dataset, images, [gt_field, corrected_field], corrected_field, paint
    )


def _rewrite_masks(
    dataset: fo.Dataset,
    images: list[Held],
    fields: list[str],
    corrected_field: str,
    paint: Callable,
) -> None:
    """Rewrites each image's corrected mask as ``paint(sample, index,
    patches, mask)`` returns it (``sample`` with ``fields``)."""
    if not images:
        return
    ids = [sample_id for sample_id, _, _ in images]
    samples = dataset.select(ids, ordered=True).select_fields(fields)
    inline_ids, inline = [], []
    for sample, (sample_id, index, patches) in zip(
        samples, images, strict=True
    ):
        segmentation = sample[corrected_field]
        corrected = paint(sample, index, patches, segmentation.get_mask())
        if segmentation.mask_path is None:
            inline_ids.append(sample_id)
            inline.append(
                {
                    corrected_field: label_document(
                        fo.Segmentation(mask=corrected)
                    )
                }
            )
        elif not cv2.imwrite(segmentation.mask_path, corrected):
            raise OSError(
                f"Could not write corrected mask {segmentation.mask_path}"
            )
    write_sample_fields(dataset, inline_ids, inline)
