"""Label quality and reviewed-sample precision of a finder run.

Pure numpy: the numbers of the label-quality report (original labels
scored against the corrected ones, per-class pixel counts before and after
correction, shares of flagged pixels and patches) and the study's review
method (a stratified seeded sample of flagged patches, per-class precision
with Wilson intervals, a stratified overall estimate).

K - number of classes, H, W - mask size.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .config import ERROR_TYPES, WEAKLY_PREDICTED_BELOW

Z_95 = 1.959963984540054  # standard normal quantile of 0.975


# -- label quality -----------------------------------------------------------


class PixelConfusion:
    """Streams ``(original, corrected)`` masks into a pixel confusion matrix.

    Rows are the corrected (reference) classes, columns the original ones,
    as in FiftyOne's segmentation evaluation with the corrected labels as
    ground truth. Mask values outside ``0 .. K - 1`` (void) are skipped.

    Args:
        num_classes: K.

    Example:
        >>> acc = PixelConfusion(2)
        >>> original = np.array([[0, 0], [1, 255]])
        >>> acc.update(original, np.array([[0, 1], [1, 255]]))
        >>> acc.matrix.tolist()
        [[1, 0], [1, 1]]
    """

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ValueError(
                f"num_classes must be positive, got {num_classes}"
            )
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, original: np.ndarray, corrected: np.ndarray) -> None:
        """Adds one image's ``(H, W)`` integer masks."""
        original, corrected = np.asarray(original), np.asarray(corrected)
        if original.shape != corrected.shape or original.ndim != 2:
            raise ValueError(
                "original and corrected must be (H, W) masks of one shape, "
                f"got {original.shape} and {corrected.shape}"
            )
        k = self.num_classes
        orig = original.ravel().astype(np.int64)
        corr = corrected.ravel().astype(np.int64)
        keep = (orig >= 0) & (orig < k) & (corr >= 0) & (corr < k)
        counts = np.bincount(corr[keep] * k + orig[keep], minlength=k * k)
        self.matrix += counts.reshape(k, k)


@dataclass(frozen=True)
class LabelQuality:
    """Original labels scored as predictions of the corrected labels.

    Attributes:
        class_names: the K class names.
        iou: per-class IoU; ``None`` for a class absent from both.
        miou: mean IoU over the classes present in either.
        absent: classes absent from both (ignored by ``miou``).
        pixels_before: per-class pixels in the original labels.
        pixels_after: per-class pixels in the corrected labels.
        changed_pixels: pixels whose class the correction changed.
        total_pixels: pixels counted (void excluded).
    """

    class_names: list[str]
    iou: list[float | None]
    miou: float | None
    absent: list[str]
    pixels_before: list[int]
    pixels_after: list[int]
    changed_pixels: int
    total_pixels: int

    @property
    def ratios(self) -> list[float | None]:
        """After / before per class; ``None`` where there was none before."""
        return [
            a / b if b else None
            for b, a in zip(self.pixels_before, self.pixels_after, strict=True)
        ]

    def classes(self) -> list[dict]:
        """One row per class: IoU, pixels before and after, their ratio."""
        total = max(self.total_pixels, 1)
        return [
            {
                "class": name,
                "iou": iou,
                "pixels_before": before,
                "pixels_after": after,
                "share_before": before / total,
                "ratio": ratio,
            }
            for name, iou, before, after, ratio in zip(
                self.class_names,
                self.iou,
                self.pixels_before,
                self.pixels_after,
                self.ratios,
                strict=True,
            )
        ]

    def rare_growth(self, max_share: float = 0.01) -> dict:
        """How the classes holding under ``max_share`` of the original
        pixels each grew together (the study: 8 classes holding 0.7% of
        pixels grew about 250%)."""
        rare = [
            i
            for i, before in enumerate(self.pixels_before)
            if before < max_share * self.total_pixels
            and (before or self.pixels_after[i])
        ]
        before = sum(self.pixels_before[i] for i in rare)
        after = sum(self.pixels_after[i] for i in rare)
        return {
            "max_share": max_share,
            "classes": [self.class_names[i] for i in rare],
            "share_before": _share(before, self.total_pixels),
            "share_after": _share(after, self.total_pixels),
            "ratio": after / before if before else None,
        }

    def to_dict(self) -> dict:
        """Returns the quality as JSON-serializable data."""
        return {
            **asdict(self),
            "changed_share": _share(self.changed_pixels, self.total_pixels),
            "classes": self.classes(),
            "rare_growth": self.rare_growth(),
        }


def label_quality(
    confusion: np.ndarray, class_names: Sequence[str]
) -> LabelQuality:
    """Per-class IoU, mIoU and pixel counts from a ``(K, K)`` confusion
    matrix (rows corrected, columns original).

    Example:
        >>> q = label_quality(np.array([[3, 1], [0, 4]]), ["a", "b"])
        >>> q.iou, q.miou, q.pixels_before, q.pixels_after
        ([0.75, 0.8], 0.775, [3, 5], [4, 4])
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    if confusion.shape != (k, k):
        raise ValueError(
            f"confusion must have a shape of ({k}, {k}), got {confusion.shape}"
        )
    tp = np.diag(confusion)
    after = confusion.sum(axis=1)
    before = confusion.sum(axis=0)
    union = after + before - tp
    iou = [
        int(t) / int(u) if u else None for t, u in zip(tp, union, strict=True)
    ]
    present = [v for v in iou if v is not None]
    return LabelQuality(
        class_names=[str(n) for n in class_names],
        iou=iou,
        miou=float(np.mean(present)) if present else None,
        absent=[
            str(n) for n, u in zip(class_names, union, strict=True) if not u
        ],
        pixels_before=before.tolist(),
        pixels_after=after.tolist(),
        changed_pixels=int(confusion.sum() - tp.sum()),
        total_pixels=int(confusion.sum()),
    )


def flag_shares(summary: Mapping) -> dict:
    """Shares of a run's flags, from a ``FinderSummary.to_dict()``.

    Returns the flagged share of scored pixels, the shares of flagged
    patches and pixels in specific issues and outside them (``other_*``:
    the study's general errors, whatever their error type), totals by
    error type with their shares, and the issues sorted by pixels, largest
    first, and the classes the model barely predicts.
    """
    totals = summary["totals"]
    patches = sum(t.get("patches", 0) for t in totals.values())
    pixels = sum(t.get("pixels", 0) for t in totals.values())
    issues = sorted(
        summary["issues"], key=lambda i: (-i["num_pixels"], i["name"])
    )
    issue_patches = sum(i["num_patches"] for i in issues)
    issue_pixels = sum(i["num_pixels"] for i in issues)
    return {
        "num_patches": patches,
        "flagged_pixels": pixels,
        "scored_pixels": summary["num_pixels"],
        "flagged_share": _share(pixels, summary["num_pixels"]),
        "issue_patch_share": _share(issue_patches, patches),
        "issue_pixel_share": _share(issue_pixels, pixels),
        "other_patch_share": _share(patches - issue_patches, patches),
        "other_pixel_share": _share(pixels - issue_pixels, pixels),
        "by_type": {
            t: {
                "patches": totals.get(t, {}).get("patches", 0),
                "pixels": totals.get(t, {}).get("pixels", 0),
                "patch_share": _share(
                    totals.get(t, {}).get("patches", 0), patches
                ),
                "pixel_share": _share(
                    totals.get(t, {}).get("pixels", 0), pixels
                ),
            }
            for t in ERROR_TYPES
        },
        "issues": [
            {**i, "pixel_share": _share(i["num_pixels"], pixels)}
            for i in issues
        ],
        # runs stored before the field existed have none
        "weakly_predicted": dict(summary.get("weakly_predicted", {})),
    }


_NOTE_NAMES = 8  # classes named in the note, weakest first


def weakly_predicted_note(weakly_predicted: Mapping[str, float]) -> str | None:
    """One sentence naming the classes the model barely predicts (see
    ``ClassStatistics.weakly_predicted``), weakest first, or ``None`` when
    there are none."""
    if not weakly_predicted:
        return None
    weakest = sorted(weakly_predicted.items(), key=lambda item: item[1])
    names = ", ".join(
        f"{name} ({100 * p:.1f}%)" for name, p in weakest[:_NOTE_NAMES]
    )
    if len(weakest) > _NOTE_NAMES:
        names += f" and {len(weakest) - _NOTE_NAMES} more"
    level = f"{100 * WEAKLY_PREDICTED_BELOW:.0f}%"
    if len(weakly_predicted) == 1:
        return (
            f"The model barely predicts {names}, under {level} on average "
            "on its pixels: its labels are checked weakly, and suggestions "
            "of it rest on thin evidence. A stronger model would check it."
        )
    return (
        f"The model barely predicts {names}, under {level} on average on "
        "their pixels: their labels are checked weakly (swaps between them "
        "go unflagged), and suggestions of them rest on thin evidence. A "
        "stronger model would check them."
    )


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


# -- review ------------------------------------------------------------------


def wilson_interval(
    successes: float, n: float, *, z: float = Z_95
) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n``.

    ``n`` may be an effective (non-integer) sample size.

    Example:
        >>> [round(v, 4) for v in wilson_interval(1, 1)]
        [0.2065, 1.0]
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n], got {successes}")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def stratified_sample(
    strata: Sequence[str], per_stratum: int, *, seed: int
) -> list[int]:
    """Seeded random sample of indices, at most ``per_stratum`` per stratum.

    Each stratum draws from its own generator seeded by ``seed`` and the
    stratum's name, so a stratum's sample does not depend on the others.

    Args:
        strata: the stratum (class name) of each item.
        per_stratum: cap per stratum; smaller strata are taken whole.
        seed: the sample's seed.

    Returns:
        The sampled indices into ``strata``, sorted.

    Example:
        >>> stratified_sample(["a", "a", "b"], 5, seed=0)
        [0, 1, 2]
    """
    if per_stratum < 1:
        raise ValueError(f"per_stratum must be positive, got {per_stratum}")
    members: dict[str, list[int]] = {}
    for i, name in enumerate(strata):
        members.setdefault(str(name), []).append(i)
    picked: list[int] = []
    for name, idx in members.items():
        if len(idx) <= per_stratum:
            picked.extend(idx)
            continue
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        chosen = rng.choice(len(idx), size=per_stratum, replace=False)
        picked.extend(idx[j] for j in chosen)
    return sorted(picked)


@dataclass(frozen=True)
class StratumReview:
    """Flags and review marks of one stratum (class).

    Attributes:
        name: the class.
        flagged_patches: patches the run flagged in it.
        flagged_pixels: their pixels.
        sampled: patches sampled for review.
        confirmed: sampled patches marked as real errors.
        rejected: sampled patches marked as not errors.
    """

    name: str
    flagged_patches: int
    flagged_pixels: int
    sampled: int
    confirmed: int
    rejected: int

    def __post_init__(self) -> None:
        if min(self.confirmed, self.rejected) < 0:
            raise ValueError(f"{self.name}: negative review counts")
        if self.reviewed > self.sampled:
            raise ValueError(
                f"{self.name}: {self.reviewed} reviews exceed the "
                f"{self.sampled} sampled patches"
            )
        if self.sampled > self.flagged_patches:
            raise ValueError(
                f"{self.name}: {self.sampled} sampled patches exceed the "
                f"{self.flagged_patches} flagged ones"
            )

    @property
    def reviewed(self) -> int:
        """Sampled patches with a verdict."""
        return self.confirmed + self.rejected

    @property
    def missing(self) -> int:
        """Sampled patches still without a verdict."""
        return self.sampled - self.reviewed


def estimate_precision(
    strata: Sequence[StratumReview], *, z: float = Z_95
) -> dict:
    """Stratified estimate of the precision of a run's flags.

    Per class: ``confirmed / reviewed`` with its Wilson interval. Overall,
    the class precisions are weighted by each class's flagged patches (or
    pixels): ``p = sum_h W_h p_h`` with variance ``sum_h W_h^2 p_h (1 -
    p_h) / n_h`` times the finite population correction ``(N_h - n_h) /
    (N_h - 1)``. The interval is Wilson's at the effective sample size
    ``p (1 - p) / variance`` (the plain Wilson interval for one class);
    when every class is reviewed whole the estimate is exact, and when the
    variance vanishes otherwise (all confirmed or none) the effective size
    is the number of reviews. Classes without reviews are left out of the
    weights, i.e. assumed to share the reviewed classes' precision; they
    are listed in ``unreviewed``. Expected true error patches (pixels) are
    the overall precision times all flagged patches (pixels).

    Returns:
        ``{"classes": [...], "overall": {...}}``; estimates are ``None``
        while no patch has been reviewed.
    """
    classes = []
    for s in strata:
        row = {
            "class": s.name,
            "flagged_patches": s.flagged_patches,
            "flagged_pixels": s.flagged_pixels,
            "sampled": s.sampled,
            "reviewed": s.reviewed,
            "confirmed": s.confirmed,
            "rejected": s.rejected,
            "missing": s.missing,
            "precision": None,
            "low": None,
            "high": None,
        }
        if s.reviewed:
            low, high = wilson_interval(s.confirmed, s.reviewed, z=z)
            row.update(precision=s.confirmed / s.reviewed, low=low, high=high)
        classes.append(row)
    reviewed = [s for s in strata if s.reviewed]
    overall = {
        "flagged_patches": sum(s.flagged_patches for s in strata),
        "flagged_pixels": sum(s.flagged_pixels for s in strata),
        "sampled": sum(s.sampled for s in strata),
        "reviewed": sum(s.reviewed for s in strata),
        "confirmed": sum(s.confirmed for s in strata),
        "missing": sum(s.missing for s in strata),
        "unreviewed": [
            s.name for s in strata if s.flagged_patches and not s.reviewed
        ],
    }
    for unit, weight in (
        ("patches", lambda s: s.flagged_patches),
        ("pixels", lambda s: s.flagged_pixels),
    ):
        est = _stratified(reviewed, weight, z)
        total = overall[f"flagged_{unit}"]
        overall[f"precision_{unit}"] = est
        overall[f"expected_true_{unit}"] = (
            None if est is None else [total * v for v in est]
        )
    return {"classes": classes, "overall": overall}


def _stratified(strata, weight, z) -> list[float] | None:
    """``[estimate, low, high]`` of the weighted precision, or None."""
    total = sum(weight(s) for s in strata)
    if not total:
        return None
    p = var = 0.0
    for s in strata:
        w = weight(s) / total
        p_h = s.confirmed / s.reviewed
        n, big_n = s.reviewed, s.flagged_patches
        fpc = (big_n - n) / (big_n - 1) if big_n > 1 else 0.0
        p += w * p_h
        var += w * w * p_h * (1 - p_h) / n * fpc
    p = min(max(p, 0.0), 1.0)
    if var > 0:
        n_eff = p * (1 - p) / var
    elif all(s.reviewed == s.flagged_patches for s in strata):
        return [p, p, p]
    else:
        n_eff = sum(s.reviewed for s in strata)
    low, high = wilson_interval(p * n_eff, n_eff, z=z)
    return [p, low, high]
