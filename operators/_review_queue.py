"""The review panel's server side: the queue of FIXER patches of a view
with their evidence, a page at a time, and verdicts recorded as label
tags."""

from __future__ import annotations

import json
import re

import cv2
import fiftyone as fo
import numpy as np
from fiftyone import ViewField as F

from fixer_core import learned_order, pair_weights

from ._evidence import EVIDENCE_ATTRIBUTES, RUN_ATTRIBUTES
from ._pipeline import (
    list_fixer_runs,
    output_fields,
    output_views,
    review_view,
    stored_results,
)
from ._review import estimate_flag_precision
from ._review_tags import CONFIRMED_TAG, REJECTED_TAG, SAMPLED_TAG
from ._samples import LabelErrorInputError

VERDICTS = {"confirmed": CONFIRMED_TAG, "rejected": REJECTED_TAG}
# What a verdict tells the queue's order (a conflict tells nothing)
_VERDICT_VALUES = {"confirmed": True, "rejected": False}
# What the order learns a patch's pair and promise from
_PAIR_ATTRIBUTES = ("given_label", "suggested_label", "error_probability")
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
# The pairs the verdicts move down that the panel names, the most first
SINKING_SHOWN = 3
# Patches per page of the queue (the panel asks for the same)
PAGE_SIZE = 50
# The queue source that is the view open in the App
CURRENT_VIEW = "current view"


def review_runs(dataset: fo.Dataset) -> list[str]:
    """FIXER runs of the dataset with a review sample."""
    out = []
    for key in list_fixer_runs(dataset):
        results = dataset.load_run_results(key, cache=False)
        if results is not None and getattr(results, "review", None):
            out.append(key)
    return out


def review_sources(dataset: fo.Dataset) -> list[str]:
    """Saved views of FIXER runs' patches the panel offers (the review
    samples first); any other view is reviewed by opening it."""
    names = set(dataset.list_saved_views())
    out = [review_view(key) for key in review_runs(dataset)]
    for key in list_fixer_runs(dataset):
        out += [v for v in output_views(key).values() if v in names]
    return list(dict.fromkeys(v for v in out if v in names))


def default_source(dataset: fo.Dataset, view) -> str:
    """What the panel opens on: the view the user has open when it holds
    FIXER patches and is not the whole dataset, else the first review
    sample, else the current view."""
    whole = not view._is_patches and not getattr(view, "_stages", None)
    if not whole and _patches_field(view):
        return CURRENT_VIEW
    runs = review_runs(dataset)
    return review_view(runs[0]) if runs else CURRENT_VIEW


def review_queue(
    view: fo.core.collections.SampleCollection,
    *,
    page_size: int = PAGE_SIZE,
) -> dict:
    """The queue of FIXER patches of ``view``: every patch's id (the
    order) and the first page of rows (see :func:`review_rows`).

    ``view`` is a patches view of a run's ``<run_key>_patches`` field (such
    as the saved review sample) or any view of samples with that field
    (filtered or sorted as the user likes). The queue keeps the view's
    order, but once the run has verdicts, the patches still to review
    come first and those of a (given, suggested) pair the verdicts reject
    move down (:func:`fixer_core.learned_order`, with the weights of all
    the run's verdicts); a run's review sample, drawn to be reviewed
    whole, keeps its order.

    Returns:
        ``{"run_key", "ids", "done", "rows", "estimate", "places",
        "sinking"}``: ``done`` counts the patches with a verdict,
        ``estimate`` is the run's precision estimate (None without a
        review sample), ``places`` each patch's place in the view (1, 2,
        ...), for :func:`reorder_queue` as the review goes, or None where
        the order does not learn, and ``sinking`` the pairs the verdicts
        move down (see :func:`reorder_queue`).
    """
    run_key, field = _patches_field(view) or (None, None)
    if run_key is None:
        raise LabelErrorInputError(
            "This view holds no patches of a FIXER run; open a run's view "
            "(such as its review sample) or draw a review sample first"
        )
    path = field if view._is_patches else f"{field}.detections"
    ids = view.values(f"{path}.id")
    if not view._is_patches:
        ids = [i for sample in ids for i in sample or ()]
    dataset = view._root_dataset
    # (a saved patches view may hold stale tags: read the run's own)
    verdicts = _verdicts(dataset, field)
    done = sum(verdicts.get(i) in VERDICTS for i in ids)
    places, sinking = None, []
    if view.name != review_view(run_key):
        places = list(range(1, len(ids) + 1))
        if verdicts:
            order, sinking = _ordered(dataset, field, ids, places, verdicts)
            ids, places = [ids[i] for i in order], [places[i] for i in order]
    return {
        "run_key": run_key,
        "ids": ids,
        "done": done,
        "rows": review_rows(dataset, run_key, ids[:page_size]),
        "estimate": _estimate_summary(dataset, run_key),
        "places": places,
        "sinking": sinking,
    }


def reorder_queue(
    dataset: fo.Dataset,
    run_key: str,
    label_ids: list[str],
    places: list[float],
) -> dict:
    """The order of a queue's tail (``label_ids``, with their ``places``
    in the view the queue was opened on) learned from the run's verdicts
    so far (see :func:`review_queue`): the panel reorders what it has not
    fetched yet as the reviewer goes.

    Returns:
        ``{"order", "sinking"}``: indices into ``label_ids``, and the
        (given, suggested) pairs the verdicts move down, the most moved
        first (at most ``SINKING_SHOWN``), each ``{"given", "suggested",
        "weight"}`` (see :func:`fixer_core.pair_weights`).
    """
    if len(places) != len(label_ids):
        raise LabelErrorInputError(
            f"{len(label_ids)} patch ids but {len(places)} places"
        )
    field = output_fields(run_key)["patches"]
    verdicts = _verdicts(dataset, field)
    if not verdicts:
        return {"order": list(range(len(label_ids))), "sinking": []}
    order, sinking = _ordered(dataset, field, label_ids, places, verdicts)
    return {"order": [int(i) for i in order], "sinking": sinking}


def review_rows(
    dataset: fo.Dataset, run_key: str, label_ids: list[str]
) -> list[dict]:
    """What the panel shows of each patch, in the order of ``label_ids``:
    its image, outline, classes, evidence, reason and verdict.

    Each row has ``id``, ``sample_id``, ``filepath``, ``width``,
    ``height``, ``box`` (pixels ``[x, y, w, h]``), ``outline`` (pixel
    ``[x, y]`` points), its attributes, ``sampled`` (in the review
    sample) and ``verdict`` (``"confirmed"``, ``"rejected"``,
    ``"conflict"`` or None). Unknown ids are left out.
    """
    field = output_fields(run_key)["patches"]
    view = dataset.select_labels(ids=label_ids, fields=field).select_fields(
        [field, "metadata"]
    )
    rows = {}
    for sample in view.iter_samples():
        width, height = _image_size(sample)
        for det in sample[field].detections:
            rows[det.id] = _patch_row(sample, det, width, height)
    return [rows[i] for i in label_ids if i in rows]


def _ordered(
    dataset: fo.Dataset,
    field: str,
    ids: list[str],
    places: list[float],
    verdicts: dict[str, str],
) -> tuple[np.ndarray, list[dict]]:
    """Indices of ``ids`` in :func:`fixer_core.learned_order`'s order,
    with the weights of the run's verdicts, and the pairs they move down
    (see :func:`reorder_queue`)."""
    patches = _run_pairs(dataset, field)
    reviewed = [
        i for i, v in verdicts.items() if v in _VERDICT_VALUES and i in patches
    ]
    weights = pair_weights(
        [patches[i][:2] for i in reviewed],
        [patches[i][2] for i in reviewed],
        [_VERDICT_VALUES[verdicts[i]] for i in reviewed],
    )
    pairs = [patches.get(i, (None, None))[:2] for i in ids]
    verdict = [_VERDICT_VALUES.get(verdicts.get(i)) for i in ids]
    order = learned_order(pairs, verdict, weights, places)
    # (the pairs still to review here only: what the reviewer will meet)
    present = {p for p, v in zip(pairs, verdict, strict=True) if v is None}
    sinking = sorted(
        (pair for pair, w in weights.items() if w < 1 and pair in present),
        key=weights.get,
    )
    return order, [
        {"given": g, "suggested": s, "weight": round(weights[g, s], 3)}
        for g, s in sinking[:SINKING_SHOWN]
    ]


def _run_pairs(dataset: fo.Dataset, field: str) -> dict[str, tuple]:
    """``{patch id: (given, suggested, error_probability)}`` of a run's
    patches (a missing probability reads 1): one pass over the field,
    many times faster than selecting the patches by id."""
    prefix = f"{field}.detections"
    ids, given, suggested, probability = dataset.values(
        [f"{prefix}.{a}" for a in ("id", *_PAIR_ATTRIBUTES)], unwind=True
    )
    return {
        i: (g, s, 1.0 if p is None else p)
        for i, g, s, p in zip(ids, given, suggested, probability, strict=True)
    }


def _verdicts(dataset: fo.Dataset, field: str) -> dict[str, str]:
    """``{patch id: verdict}`` of the run's patches that have one."""
    marked = dataset.filter_labels(
        field, F("tags").contains(list(VERDICTS.values()))
    )
    prefix = f"{field}.detections"
    ids, tags = marked.values([f"{prefix}.id", f"{prefix}.tags"])
    return {
        i: _verdict(t)
        for sample in zip(ids, tags, strict=True)
        for i, t in zip(*sample, strict=True)
    }


def _patches_field(view) -> tuple[str, str] | None:
    """``(run_key, field)`` of the FIXER patches a view holds: of the run
    whose patches it filters or sorts by, when it holds several runs'."""
    dataset = view._root_dataset
    fields = {output_fields(k)["patches"]: k for k in list_fixer_runs(dataset)}
    if view._is_patches:
        name = view.patches_field
        return (fields[name], name) if name in fields else None
    schema = view.get_field_schema()
    held = [(key, name) for name, key in fields.items() if name in schema]
    if len(held) > 1:
        stages = json.dumps(view._serialize())
        named = [
            (key, name)
            for key, name in held
            if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", stages)
        ]
        held = named or held
    return held[0] if held else None


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


def _estimate_summary(dataset: fo.Dataset, run_key: str) -> dict | None:
    """The overall precision estimate from the review tags, in the panel's
    terms (None without a review sample)."""
    if not stored_results(dataset, run_key).get("review"):
        return None
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
    tags = det.tags or ()
    row = {
        "id": det.id,
        "sample_id": sample.id,
        "filepath": sample.filepath,
        "width": width,
        "height": height,
        "box": [x0, y0, round(bw * width), round(bh * height)],
        "outline": _outline(det.mask, x0, y0),
        "score": det.confidence,
        "sampled": SAMPLED_TAG in tags,
        "verdict": _verdict(tags),
    }
    for name in _ATTRIBUTES:
        row[name] = det[name] if det.has_field(name) else None
    return row


def _verdict(tags) -> str | None:
    """A patch's verdict from its label tags."""
    marks = [v for v, tag in VERDICTS.items() if tag in (tags or ())]
    return marks[0] if len(marks) == 1 else ("conflict" if marks else None)


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
