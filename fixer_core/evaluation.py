"""Scoring a run against known (planted) errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import ERROR_TYPES
from .patches import Patch


@dataclass(frozen=True)
class KnownError:
    """A label error whose truth is known.

    Attributes:
        image_index: the image it is in.
        mask: ``(H, W)`` bool, the mislabelled pixels.
        true_label: the class those pixels really show.
        error_type: ``"general"``, ``"ambiguous"`` or ``"false_negative"``.
    """

    image_index: int
    mask: np.ndarray
    true_label: int
    error_type: str


@dataclass(frozen=True)
class Recovery:
    """How many known errors of one type a run recovered.

    An error is found when at least half its pixels lie in patches; its
    suggestion is right when most of those pixels are suggested its true
    class; its type is right when the patch covering most of it has its
    type.
    """

    total: int
    found: int
    suggested_right: int
    typed_right: int

    @property
    def recall(self) -> float:
        """Share of the errors found."""
        return self.found / self.total if self.total else float("nan")


def recovery_by_type(
    patches: Sequence[Patch], known: Sequence[KnownError]
) -> dict[str, Recovery]:
    """Returns the recovery of known errors, by error type and ``"all"``."""
    by_image: dict[int, list[Patch]] = {}
    for p in patches:
        by_image.setdefault(p.image_index, []).append(p)
    rows = [_recover(by_image.get(e.image_index, []), e) for e in known]
    out = {}
    for error_type in (*ERROR_TYPES, "all"):
        picked = [
            r
            for r, e in zip(rows, known, strict=True)
            if error_type in ("all", e.error_type)
        ]
        out[error_type] = Recovery(
            total=len(picked),
            found=sum(r[0] for r in picked),
            suggested_right=sum(r[1] for r in picked),
            typed_right=sum(r[2] for r in picked),
        )
    return out


def _recover(patches: list[Patch], error: KnownError) -> tuple[bool, ...]:
    area = int(error.mask.sum())
    covered = np.zeros_like(error.mask)
    right = np.zeros_like(error.mask)
    best, best_overlap = None, 0
    for p in patches:
        full = p.full_mask() & error.mask
        overlap = int(full.sum())
        covered |= full
        if p.suggested_label == error.true_label:
            right |= full
        if overlap > best_overlap:
            best, best_overlap = p, overlap
    found = bool(area > 0 and covered.sum() >= area / 2)
    suggested = found and right.sum() > covered.sum() / 2
    typed = bool(
        found and best is not None and best.error_type == error.error_type
    )
    return found, bool(suggested), typed
