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
) -> np.ndarray:
    """Returns a copy of an ``(H, W)`` label map with the pixels of each
    patch whose ``error_probability`` is at least ``min_probability`` set
    to its suggested class. The input is never modified."""
    corrected = label.copy()
    for patch in patches:
        if patch.error_probability < min_probability:
            continue
        x, y, w, h = patch.box
        corrected[y : y + h, x : x + w][patch.mask] = patch.suggested_label
    return corrected
