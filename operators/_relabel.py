"""Pieces shared by the CVAT relabelling loop: names, masks, review marks."""

from __future__ import annotations

import os
import tempfile

import cv2
import fiftyone as fo
import fiftyone.core.fields as fof
import fiftyone.operators.types as types
import numpy as np
from bson import ObjectId
from fiftyone import ViewField as F

from ._pipeline import (
    fixer_dir,
    fixer_output_fields,
    integer_mask_targets,
    list_fixer_runs,
    output_fields,
    stored_results,
)
from ._review_tags import CONFIRMED_TAG, REJECTED_TAG
from ._samples import LabelErrorInputError

# Label of the read-only reference shapes that carry the patches
PATCH_LABEL = "fixer_patch"
UNREVIEWED, CONFIRMED, REJECTED = "unreviewed", "confirmed", "rejected"
REVIEW_VALUES = (UNREVIEWED, CONFIRMED, REJECTED)
_VERDICT_TAGS = {CONFIRMED: CONFIRMED_TAG, REJECTED: REJECTED_TAG}


def mask_targets(dataset: fo.Dataset, gt_field: str) -> dict[int, str]:
    """The ground truth's ``{mask value: class name}``."""
    targets = integer_mask_targets(dataset, gt_field)
    names = [str(v) for v in targets.values()]
    if len(set(names)) != len(names) or PATCH_LABEL in names:
        raise LabelErrorInputError(
            f"The mask targets of '{gt_field}' must name each value "
            f"uniquely, and not '{PATCH_LABEL}'"
        )
    return {int(k): str(v) for k, v in targets.items()}


def value_name(targets: dict[int, str], value: int) -> str:
    """A mask value's class name (its number if the targets miss it)."""
    return targets.get(value, str(value))


def name_value(targets: dict[int, str], name: str) -> int:
    """Inverse of :func:`value_name`."""
    for value, target in targets.items():
        if target == name:
            return value
    if name.isdigit():
        return int(name)
    raise LabelErrorInputError(
        f"Unknown class '{name}': it is not in the mask targets "
        f"{sorted(targets.values())}"
    )


def check_segmentation_field(
    dataset: fo.Dataset, name: str, *, new: bool = False
) -> None:
    """Checks that ``name`` is a Segmentation field (or, with ``new``, a
    name that is free or already a Segmentation field)."""
    schema = dataset.get_field_schema()
    if name not in schema:
        if new:
            if not name.isidentifier():
                raise LabelErrorInputError(
                    f"Field name '{name}' must be a valid variable name"
                )
            return
        raise LabelErrorInputError(
            f"Dataset '{dataset.name}' has no field '{name}'"
        )
    field = schema[name]
    if not (
        isinstance(field, fof.EmbeddedDocumentField)
        and issubclass(field.document_type, fo.Segmentation)
    ):
        raise LabelErrorInputError(f"Field '{name}' is not a Segmentation")


def check_destination(
    dataset: fo.Dataset, gt_field: str, dest_field: str
) -> None:
    """Checks that edited labels may be written to ``dest_field``: not the
    ground truth, not a field FIXER writes or backs up to, and a new or a
    Segmentation field."""
    if dest_field == gt_field:
        raise LabelErrorInputError(
            "Edited labels are never written over the ground truth; choose "
            "another destination field"
        )
    backup = f"{gt_field}_backup_"  # apply_corrections' backups
    if dest_field in fixer_output_fields(dataset) or dest_field.startswith(
        backup
    ):
        raise LabelErrorInputError(
            f"Field '{dest_field}' holds FIXER's own outputs or backups; "
            "choose another destination field"
        )
    check_segmentation_field(dataset, dest_field, new=True)


def mask_dir(dataset: fo.Dataset, *parts: str) -> str:
    """``<FiftyOne dataset dir>/fixer/<dataset id>/<parts>``, created."""
    path = fixer_dir(dataset, *parts)
    os.makedirs(path, exist_ok=True)
    return path


def mask_origin(detection: fo.Detection, shape: tuple[int, int]) -> tuple:
    """``(x, y)``: the pixel of an ``(H, W)`` image where a detection's
    box-sized mask starts."""
    height, width = shape
    x, y = detection.bounding_box[:2]
    return round(x * width), round(y * height)


def placed_mask(detection: fo.Detection, shape: tuple[int, int]) -> np.ndarray:
    """A detection's box-sized mask placed in an ``(H, W)`` bool image."""
    x0, y0 = mask_origin(detection, shape)
    height, width = shape
    out = np.zeros(shape, dtype=bool)
    out[
        y0 : y0 + detection.mask.shape[0], x0 : x0 + detection.mask.shape[1]
    ] = detection.mask[: height - y0, : width - x0]
    return out


def write_mask_file(path: str, mask: np.ndarray) -> None:
    """Writes a PNG atomically (a temporary file, then a rename)."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=folder)
    os.close(fd)
    try:
        if not cv2.imwrite(tmp, mask):
            raise OSError(f"Could not write mask {path}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_segmentations(
    dataset: fo.Dataset,
    gt_field: str,
    dest_field: str,
    masks: dict[str, np.ndarray],
) -> None:
    """Writes ``{sample id: mask}`` to ``dest_field`` like the ground truth
    stores its masks: inline, or as new PNG files (never the originals)
    under ``<dataset dir>/fixer/<dataset id>/cvat/<dest_field>``. The
    field gets the ground truth's mask targets."""
    first = dataset.select(next(iter(masks))).first()[gt_field]
    out_dir = None
    if first.mask_path is not None:
        out_dir = mask_dir(dataset, "cvat", dest_field)
    values = {}
    for sample_id, mask in masks.items():
        if out_dir is None:
            values[sample_id] = fo.Segmentation(mask=mask)
            continue
        path = os.path.join(out_dir, f"{sample_id}.png")
        write_mask_file(path, mask)
        values[sample_id] = fo.Segmentation(mask_path=path)
    dataset.set_values(dest_field, values, key_field="id")
    if gt_field in dataset.mask_targets:
        dataset.mask_targets[dest_field] = dataset.mask_targets[gt_field]
        dataset.save()


def patch_fields(dataset: fo.Dataset, run_key: str | None) -> list[str]:
    """Patches fields of one FIXER run, or of every run if None."""
    keys = list_fixer_runs(dataset)
    if run_key is not None:
        if run_key not in keys:
            raise LabelErrorInputError(
                f"Dataset '{dataset.name}' has no FIXER run '{run_key}'"
            )
        stored_results(dataset, run_key)  # refuses an unfinished run
        keys = [run_key]
    fields = [output_fields(k)["patches"] for k in keys]
    return [f for f in fields if dataset.has_sample_field(f)]


def patch_review(detection: fo.Detection) -> str:
    """The verdict a patch's label tags hold."""
    tags = detection.tags or []
    if CONFIRMED_TAG in tags:
        return CONFIRMED
    if REJECTED_TAG in tags:
        return REJECTED
    return UNREVIEWED


def apply_review_marks(
    dataset: fo.Dataset, verdicts: dict[str, str], run_key: str | None
) -> dict[str, int]:
    """Sets the verdict tags of patches from review marks.

    ``verdicts`` maps patch ids to ``confirmed``/``rejected``/
    ``unreviewed``; an ``unreviewed`` mark leaves the patch's tags alone.
    Returns counts of confirmed, rejected and unmatched marks.
    """
    counts = {CONFIRMED: 0, REJECTED: 0, "unmatched": 0}
    marked = {k: v for k, v in verdicts.items() if v in _VERDICT_TAGS}
    unknown = {v for v in verdicts.values() if v not in REVIEW_VALUES}
    if unknown:
        raise LabelErrorInputError(
            f"Unknown review values {sorted(unknown)}; expected one of "
            f"{list(REVIEW_VALUES)}"
        )
    found = set()
    for field in patch_fields(dataset, run_key):
        ids = set(dataset.values(f"{field}.detections.id", unwind=True))
        for verdict, tag in _VERDICT_TAGS.items():
            other = _VERDICT_TAGS[
                REJECTED if verdict == CONFIRMED else CONFIRMED
            ]
            chosen = [
                i for i, v in marked.items() if v == verdict and i in ids
            ]
            if not chosen:
                continue
            view = dataset.select_labels(ids=chosen, fields=field)
            view.untag_labels(other, label_fields=field)
            view.tag_labels(tag, label_fields=field)
            counts[verdict] += len(chosen)
            found.update(chosen)
    counts["unmatched"] = len(set(marked) - found)
    return counts


def patches_run_input(ctx, inputs) -> None:
    """Adds an optional picker of the FIXER run whose patches travel."""
    run_keys = list_fixer_runs(ctx.dataset)
    if not run_keys:
        return
    view = types.Dropdown(label="Patches of run")
    for key in run_keys:
        view.add_choice(key, label=key)
    inputs.enum(
        "run_key",
        view.values(),
        default=run_keys[-1],
        label="Patches of run",
        description="The FIXER run whose patches travel as reference "
        "shapes with a review mark",
        view=view,
    )


def sample_view(view, patches_field: str | None = None):
    """The samples a view shows: a patches view (such as a run's
    ``<k>-patches``) becomes its samples with only its patches kept; any
    other view is returned as is."""
    if not view._is_patches:
        return view
    field = view.patches_field
    ids = [ObjectId(i) for i in view.values(f"{field}.id")]
    samples = view._root_dataset.select(view.distinct("sample_id"))
    if patches_field and field != patches_field:
        return samples
    return samples.filter_labels(
        field, F("_id").is_in(ids), only_matches=False
    )
