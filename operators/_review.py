"""Review of a FIXER run: a stratified sample of its flagged patches and
the precision estimate from the reviewers' tags."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

import fiftyone as fo
import fiftyone.core.utils as fou
from fiftyone import ViewField as F

from ..fixer_core.quality import (
    StratumReview,
    estimate_precision,
    stratified_sample,
)
from ._pipeline import (
    output_fields,
    review_view,
    stored_results,
    update_run_results,
)
from ._review_tags import CONFIRMED_TAG, REJECTED_TAG, SAMPLED_TAG
from ._samples import LabelErrorInputError

logger = logging.getLogger(__name__)

STRATIFY_BY = ("given", "suggested")


@dataclass(frozen=True)
class _PatchRow:
    id: str
    given: str
    suggested: str
    area: int
    tags: frozenset[str]

    def stratum(self, stratify_by: str) -> str:
        return self.given if stratify_by == "given" else self.suggested


def draw_review_sample(
    dataset: fo.Dataset,
    run_key: str,
    *,
    per_class: int = 25,
    stratify_by: str = "given",
    seed: int = 0,
) -> dict:
    """Tags a stratified random sample of a run's patches for review.

    At most ``per_class`` patches per class (the given or the suggested
    class of the patch), seeded. The previous sample's ``fixer:review``
    tags are cleared first; verdict tags are kept (a redrawn sample with
    the same seed finds its verdicts again). The saved view
    ``<run_key>-review`` shows the sampled patches one by one.

    Returns:
        What was drawn (also stored as ``review`` in the run's results).
    """
    if per_class < 1:
        raise LabelErrorInputError(
            f"per_class must be positive, got {per_class}"
        )
    if stratify_by not in STRATIFY_BY:
        raise LabelErrorInputError(
            f"stratify_by must be one of {STRATIFY_BY}, got {stratify_by!r}"
        )
    name = review_view(run_key)
    if not stored_results(dataset, run_key).get("review"):
        taken = [
            v
            for v in dataset.list_saved_views()
            if fou.to_slug(v) == fou.to_slug(name)
        ]
        if taken:
            raise LabelErrorInputError(
                f"Dataset '{dataset.name}' has a saved view '{taken[0]}' "
                f"that FIXER run '{run_key}' did not write; rename or "
                "delete it first"
            )
    patches = output_fields(run_key)["patches"]
    rows = _patch_rows(dataset, patches)
    picked = stratified_sample(
        [r.stratum(stratify_by) for r in rows], per_class, seed=seed
    )
    dataset.untag_labels(SAMPLED_TAG, label_fields=[patches])
    if picked:
        dataset.select_labels(
            ids=[rows[i].id for i in picked], fields=patches
        ).tag_labels(SAMPLED_TAG, label_fields=[patches])
    dataset.save_view(
        name,
        dataset.filter_labels(
            patches, F("tags").contains(SAMPLED_TAG)
        ).to_patches(patches),
        description=f"FIXER: patches of run '{run_key}' sampled for review "
        f"(tag them '{CONFIRMED_TAG}' or '{REJECTED_TAG}')",
        overwrite=True,
    )
    sampled = Counter(rows[i].stratum(stratify_by) for i in picked)
    review = {
        "created": _now(),
        "stratify_by": stratify_by,
        "per_class": per_class,
        "seed": seed,
        "view": name,
        "num_sampled": len(picked),
        "classes": [
            {
                "class": c,
                "flagged_patches": n,
                "flagged_pixels": pixels,
                "sampled": sampled.get(c, 0),
            }
            for c, (n, pixels) in _totals(rows, stratify_by).items()
        ],
    }
    # A new sample makes the previous estimate stale.
    update_run_results(dataset, run_key, review=review, precision=None)
    logger.info("Sampled %d patches for review", len(picked))
    return review


def estimate_flag_precision(dataset: fo.Dataset, run_key: str) -> dict:
    """Estimates the precision of a run's flags from its review tags.

    Only sampled patches (tagged ``fixer:review``) count: confirmed ones
    carry ``fixer:confirmed``, rejected ones ``fixer:rejected``; a patch
    with both is a conflict and counts as missing. Classes are the strata
    of the stored sample.

    Returns:
        Per-class and overall estimates (also stored as ``precision`` in
        the run's results); see ``fixer_core.quality.estimate_precision``.
    """
    review = stored_results(dataset, run_key).get("review")
    if not review:
        raise LabelErrorInputError(
            f"FIXER run '{run_key}' of dataset '{dataset.name}' has no "
            "review sample; draw one first (draw_review_sample)"
        )
    stratify_by = review["stratify_by"]
    rows = _patch_rows(dataset, output_fields(run_key)["patches"])
    marks: dict[str, list[int]] = {}  # class -> [sampled, yes, no, both]
    for row in rows:
        if SAMPLED_TAG not in row.tags:
            continue
        counts = marks.setdefault(row.stratum(stratify_by), [0, 0, 0, 0])
        yes, no = CONFIRMED_TAG in row.tags, REJECTED_TAG in row.tags
        counts[0] += 1
        counts[1] += yes and not no
        counts[2] += no and not yes
        counts[3] += yes and no
    strata = [
        StratumReview(c, n, pixels, *marks.get(c, [0, 0, 0])[:3])
        for c, (n, pixels) in _totals(rows, stratify_by).items()
    ]
    estimate = estimate_precision(strata)
    estimate["overall"]["conflicting"] = sum(m[3] for m in marks.values())
    estimate.update(created=_now(), stratify_by=stratify_by)
    update_run_results(dataset, run_key, precision=estimate)
    return estimate


def _patch_rows(dataset: fo.Dataset, patches: str) -> list[_PatchRow]:
    """Every patch of the run, in sample then detection order."""
    prefix = f"{patches}.detections"
    columns = dataset.values(
        [
            f"{prefix}.id",
            f"{prefix}.given_label",
            f"{prefix}.suggested_label",
            f"{prefix}.area",
            f"{prefix}.tags",
        ]
    )
    rows = []
    for sample in zip(*columns, strict=True):
        for ident, given, suggested, area, tags in zip(
            *(c or [] for c in sample), strict=True
        ):
            rows.append(
                _PatchRow(
                    ident, given, suggested, int(area), frozenset(tags or ())
                )
            )
    return rows


def _totals(
    rows: list[_PatchRow], stratify_by: str
) -> dict[str, tuple[int, int]]:
    """Flagged patches and pixels per class, most patches first."""
    totals: dict[str, list[int]] = {}
    for row in rows:
        t = totals.setdefault(row.stratum(stratify_by), [0, 0])
        t[0] += 1
        t[1] += row.area
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return {c: (n, pixels) for c, (n, pixels) in ordered}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
