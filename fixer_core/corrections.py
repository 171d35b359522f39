"""Applying suggested classes to labels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .patches import Patch
from .repeats import Run, continues_run, run_of_length
from .shift import SHIFTED_CAUSE, LabelShift


def apply_patches(
    label: np.ndarray,
    patches: Iterable[Patch],
    *,
    min_probability: float = 0.0,
    skip_repeats: bool = False,
    shift: LabelShift | None = None,
) -> np.ndarray:
    """Returns a copy of an ``(H, W)`` label map with the pixels of each
    patch whose ``error_probability`` is at least ``min_probability`` set
    to its suggested class. The input is never modified.

    ``skip_repeats`` leaves out the patches that continue a run begun in
    an earlier image (``fixer_core.repeats.continues_run``): frames whose
    labels agree with each other where the model disagrees with them all
    are left to the reviewer (BENCHMARKS.md, "Repeated patches"). Not
    where the run began with a change of the label: each of its frames is
    the same label mistake again, taken where its run's first patch
    (``Patch.run_probability``) reaches ``min_probability`` too.

    With the label's ``shift`` (``LabelErrorFinder.shift_of``), the label
    is first moved back into line with its image (keeping its own pixels
    where the moved label leaves a gap) and the patches the move explains
    are not applied."""
    corrected = label.copy()
    if shift is not None:
        moved = shift.moved(label.astype(np.int64))
        corrected[moved >= 0] = moved[moved >= 0]
    for patch in patches:
        if corrects(
            patch, min_probability, skip_repeats=skip_repeats, shift=shift
        ):
            x, y, w, h = patch.box
            window = corrected[y : y + h, x : x + w]
            window[patch.mask] = patch.suggested_label
    return corrected


def corrects(
    patch: Patch,
    min_probability: float,
    *,
    skip_repeats: bool = False,
    shift: LabelShift | None = None,
) -> bool:
    """Whether :func:`apply_patches` (with the same options) sets the
    patch's pixels to its suggested class."""
    return not (
        patch.error_probability < min_probability
        or (
            skip_repeats
            and continues_run(patch)
            and (
                patch.run_probability is None
                or patch.run_probability < min_probability
            )
        )
        or (shift is not None and patch.cause == SHIFTED_CAUSE)
    )


def taken_back(
    patches: Iterable[Patch],
    run_lengths: Mapping[Run, int],
    min_probability: float,
) -> list[Patch]:
    """The patches a corrected label took as its image was scored (their
    runs of one image so far; see :func:`apply_patches` with
    ``skip_repeats``) whose probability, shared by their runs' final
    ``run_lengths`` (``fixer_core.repeats.discount_runs``), falls under
    ``min_probability``: the corrected label takes them back."""
    return [
        p
        for p in patches
        if p.repeat_of is None
        and p.error_probability >= min_probability
        and run_of_length(p, run_lengths.get(p.run, 1)).error_probability
        < min_probability
    ]
