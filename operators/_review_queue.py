"""The review panel's server side: the queue of sampled patches with their
evidence, and verdicts recorded as label tags."""

from __future__ import annotations

import logging

import cv2
import fiftyone as fo
import numpy as np
from fiftyone import ViewField as F

from ._evidence import EVIDENCE_ATTRIBUTES, RUN_ATTRIBUTES
from ._examples import review_examples
from ._pipeline import list_fixer_runs, output_fields, stored_results
from ._review import estimate_flag_precision
from ._review_tags import CONFIRMED_TAG, REJECTED_TAG, SAMPLED_TAG
from ._samples import LabelErrorInputError

logger = logging.getLogger(__name__)

VERDICTS = {"confirmed": CONFIRMED_TAG, "rejected": REJECTED_TAG}
# Outline points kept per patch (the contour is simplified to about this)
MAX_OUTLINE_POINTS = 200
_ATTRIBUTES = (
    "given_label",
    "suggested_label",
    "error_type",
    "error_probability",
    "issue",
    "cause",
    "area",
    *EVIDENCE_ATTRIBUTES,
    *RUN_ATTRIBUTES,
)


def review_runs(dataset: fo.Dataset) -> list[str]:
    """FIXER runs of the dataset with a review sample."""
    out = []
    for key in list_fixer_runs(dataset):
        results = dataset.load_run_results(key, cache=False)
        if results is not None and getattr(results, "review", None):
            out.append(key)
    return out


def review_queue(dataset: fo.Dataset, run_key: str) -> dict:
    """The patches of a run's review sample, in dataset order, each with
    what the panel shows: its image, outline, classes, evidence, reason
    and verdict; and the current precision estimate.

    Returns:
        ``{"run_key", "patches": [...], "estimate": {...}}``; each patch
        has ``id``, ``sample_id``, ``filepath``, ``width``, ``height``,
        ``box`` (pixels ``[x, y, w, h]``), ``outline`` (pixel ``[x, y]``
        points), its attributes, ``verdict`` (``"confirmed"``,
        ``"rejected"``, ``"conflict"`` or None) and ``examples`` (see
        ``review_examples``).
    """
    if not stored_results(dataset, run_key).get("review"):
        raise LabelErrorInputError(
            f"FIXER run '{run_key}' of dataset '{dataset.name}' has no "
            "review sample; draw one first (draw_review_sample)"
        )
    field = output_fields(run_key)["patches"]
    view = dataset.filter_labels(
        field, F("tags").contains(SAMPLED_TAG)
    ).select_fields([field, "metadata"])
    patches = []
    for sample in view.iter_samples():
        width, height = _image_size(sample)
        for det in sample[field].detections:
            patches.append(_patch_row(sample, det, width, height))
    try:
        examples = review_examples(dataset, run_key, patches)
    except LabelErrorInputError as e:  # an unreadable image or mask
        logger.warning("No examples for the review panel: %s", e)
        examples = {}
    for p in patches:
        p["examples"] = examples.get(p["id"], [])
    return {
        "run_key": run_key,
        "patches": patches,
        "estimate": _estimate_summary(dataset, run_key),
    }


def set_verdict(
    dataset: fo.Dataset, run_key: str, label_id: str, verdict: str | None
) -> dict:
    """Records a reviewer's verdict on one sampled patch as its label tag
    (``fixer:confirmed`` or ``fixer:rejected``; None clears it) and
    returns the updated estimate (from the tags; the run is not
    recomputed)."""
    if verdict is not None and verdict not in VERDICTS:
        raise LabelErrorInputError(
            f"verdict must be one of {sorted(VERDICTS)} or None, got "
            f"{verdict!r}"
        )
    field = output_fields(run_key)["patches"]
    label = dataset.select_labels(ids=[label_id], fields=field)
    if not label.count(f"{field}.detections"):
        raise LabelErrorInputError(
            f"FIXER run '{run_key}' has no patch with id '{label_id}'"
        )
    label.untag_labels(list(VERDICTS.values()), label_fields=[field])
    if verdict is not None:
        label.tag_labels(VERDICTS[verdict], label_fields=[field])
    return _estimate_summary(dataset, run_key)


def _estimate_summary(dataset: fo.Dataset, run_key: str) -> dict:
    """The overall precision estimate from the review tags, in the panel's
    terms."""
    overall = estimate_flag_precision(dataset, run_key)["overall"]
    precision = overall["precision_patches"]
    return {
        "reviewed": overall["reviewed"],
        "missing": overall["missing"],
        "precision": None if precision is None else precision[0],
        "low": None if precision is None else precision[1],
        "high": None if precision is None else precision[2],
    }


def _image_size(sample) -> tuple[int, int]:
    metadata = sample.metadata
    if metadata is not None and metadata.width and metadata.height:
        return int(metadata.width), int(metadata.height)
    metadata = fo.ImageMetadata.build_for(sample.filepath)
    return int(metadata.width), int(metadata.height)


def _patch_row(sample, det, width: int, height: int) -> dict:
    bx, by, bw, bh = det.bounding_box
    x0, y0 = round(bx * width), round(by * height)
    tags = set(det.tags or ())
    marks = [v for v, tag in VERDICTS.items() if tag in tags]
    verdict = marks[0] if len(marks) == 1 else ("conflict" if marks else None)
    row = {
        "id": det.id,
        "sample_id": sample.id,
        "filepath": sample.filepath,
        "width": width,
        "height": height,
        "box": [x0, y0, round(bw * width), round(bh * height)],
        "outline": _outline(det.mask, x0, y0),
        "score": det.confidence,
        "verdict": verdict,
    }
    for name in _ATTRIBUTES:
        row[name] = det[name] if det.has_field(name) else None
    return row


def _outline(mask: np.ndarray | None, x0: int, y0: int) -> list[list]:
    """The outer contours of a patch's mask, in image pixels, as one list
    of ``[x, y]`` points per contour."""
    if mask is None:
        return []
    contours, _ = cv2.findContours(
        np.ascontiguousarray(mask, dtype=np.uint8),
        cv2.RETR_EXTERNAL,
        cv2.CHAIN_APPROX_SIMPLE,
    )
    out = []
    for c in contours:
        step = max(len(c) // MAX_OUTLINE_POINTS, 1)
        points = c[::step, 0] + (x0, y0)
        out.append(points.tolist())
    return out
