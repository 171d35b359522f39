"""Applying suggested classes to labels."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .patches import Patch


def apply_patches(
    label: np.ndarray,
    patches: Iterable[Patch],
    *,
    min_probability: float = 0.0,
    skip_repeats: bool = False,
) -> np.ndarray:
    """Returns a copy of an ``(H, W)`` label map with the pixels of each
    patch whose ``error_probability`` is at least ``min_probability`` set
    to its suggested class. The input is never modified.

    ``skip_repeats`` leaves out the patches that repeat one of the
    previous image (``Patch.repeat_of``): frames whose labels agree with
    each other where the model disagrees with them all are left to the
    reviewer (BENCHMARKS.md, "Repeated patches")."""
    corrected = label.copy()
    for patch in patches:
        if patch.error_probability < min_probability or (
            skip_repeats and patch.repeat_of is not None
        ):
            continue
        x, y, w, h = patch.box
        corrected[y : y + h, x : x + w][patch.mask] = patch.suggested_label
    return corrected
