"""Live CVAT path: send a view through FiftyOne's annotation API, load the
edits back.

The ground truth travels as CVAT masks, one per class and sample, that
annotators edit: FIXER writes them to a field ``fixer_cvat_<anno key>`` of
``instances`` and sends that. It does not send the segmentation field
itself: FiftyOne 1.22 loads a segmentation back by tracing each CVAT mask
as a polygon with a 2-pixel tolerance (and squeezing it into a box one
pixel too small first), which moves about 2% of CamVid's pixels even where
nobody edited anything. Loaded as instances, masks come back bit for bit
and FIXER paints them into the new field itself.

The patches of a FIXER run travel as ``instances`` that annotators cannot
add, delete, move or relabel, with read-only ``given_label``,
``error_type`` and ``issue`` attributes and a mutable ``review`` mark
(FiftyOne's own ``label_id`` attribute ties each shape to its patch).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import fiftyone as fo
import fiftyone.utils.cvat as fouc
import numpy as np
import requests

from ..fixer_core.polygons import polygons_to_mask
from ._relabel import (
    REVIEW_VALUES,
    UNREVIEWED,
    apply_review_marks,
    check_destination,
    check_segmentation_field,
    mask_origin,
    mask_targets,
    name_value,
    patch_fields,
    sample_view,
    value_name,
    write_segmentations,
)
from ._samples import LabelErrorInputError, load_mask

logger = logging.getLogger(__name__)

SECRETS = (
    "FIFTYONE_CVAT_URL",
    "FIFTYONE_CVAT_USERNAME",
    "FIFTYONE_CVAT_PASSWORD",
    "FIFTYONE_CVAT_EMAIL",
)
_REVIEW_FIELD = "fixer_cvat_review_tmp"
_LOADED_FIELD = "fixer_cvat_loaded_tmp"


class CvatUnreachableError(RuntimeError):
    """The CVAT server did not answer or refused the login."""


def cvat_credentials(secrets: Mapping[str, str] | None = None) -> dict:
    """``url``, ``username``, ``password``, ``email`` from the plugin's
    secrets, else FiftyOne's CVAT settings (``FIFTYONE_CVAT_*``)."""
    config = fo.annotation_config.backends.get("cvat", {})
    out = {}
    for name in SECRETS:
        key = name[len("FIFTYONE_CVAT_") :].lower()
        value = (
            (secrets or {}).get(name)
            or os.environ.get(name)
            or config.get(key)
        )
        if value:
            out[key] = value
    return out


def edit_field(anno_key: str) -> str:
    """The instances field that carries a run's ground truth to CVAT."""
    return f"fixer_cvat_{anno_key}"


def cvat_label_schema(
    dataset: fo.Dataset,
    gt_field: str,
    anno_key: str,
    patches_field: str | None = None,
    *,
    extra_classes: set[str] | frozenset[str] = frozenset(),
) -> dict:
    """The label schema for ``annotate``: the ground truth's masks to edit
    (in :func:`edit_field`), and the patches as locked reference shapes
    with a ``review`` mark. ``extra_classes`` names mask values that the
    mask targets miss."""
    names = set(mask_targets(dataset, gt_field).values()) | extra_classes
    classes = sorted(names)
    schema = {edit_field(anno_key): {"type": "instances", "classes": classes}}
    if patches_field:
        # CVAT >= 2.5 wants text attributes with an empty list of values
        read_only = {"type": "text", "values": [], "read_only": True}
        schema[patches_field] = {
            "type": "instances",
            "classes": classes,
            "attributes": {
                "given_label": read_only,
                "error_type": read_only,
                "issue": read_only,
                "review": {
                    "type": "select",
                    "values": list(REVIEW_VALUES),
                    "default": UNREVIEWED,
                },
            },
            "allow_additions": False,
            "allow_deletions": False,
            "allow_label_edits": False,
            "allow_spatial_edits": False,
        }
    return schema


def write_edit_field(
    samples: fo.core.collections.SampleCollection,
    gt_field: str,
    anno_key: str,
) -> set[str]:
    """Writes the ground truth of ``samples`` as one mask per class and
    sample into :func:`edit_field`; records ``gt_field`` in its info.
    Returns the class names written."""
    dataset = samples._root_dataset
    targets = mask_targets(dataset, gt_field)
    name = edit_field(anno_key)
    values, written = {}, set()
    for sample in samples.select_fields(gt_field).iter_samples():
        mask = load_mask(sample, gt_field)
        detections = class_detections(mask, targets)
        written.update(d.label for d in detections.detections)
        values[sample.id] = detections
    dataset.set_values(name, values, key_field="id")
    field = dataset.get_field(name)
    field.info = {"fixer_gt_field": gt_field}
    field.save()
    return written


def class_detections(
    mask: np.ndarray, targets: dict[int, str]
) -> fo.Detections:
    """One detection per mask value, its mask cropped to its box. Unlike
    ``Segmentation.to_detections``, value 0 is a class too."""
    height, width = mask.shape
    detections = []
    for value in np.unique(mask):
        region = mask == value
        rows = np.flatnonzero(region.any(axis=1))
        cols = np.flatnonzero(region.any(axis=0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        detections.append(
            fo.Detection(
                label=value_name(targets, int(value)),
                bounding_box=[
                    x0 / width,
                    y0 / height,
                    (x1 - x0) / width,
                    (y1 - y0) / height,
                ],
                mask=region[y0:y1, x0:x1],
            )
        )
    return fo.Detections(detections=detections)


def paint_detections(
    detections: list[fo.Detection],
    shape: tuple[int, int],
    targets: dict[int, str],
    *,
    fill_value: int | np.ndarray = 0,
    dtype: np.dtype | type = np.uint8,
) -> np.ndarray:
    """Paints instance masks into an ``(H, W)`` label map, largest first
    (so a region drawn inside another wins); uncovered pixels get
    ``fill_value`` (a value, or an ``(H, W)`` map whose values they
    keep).

    Each mask is placed at its box's top-left pixel with its own size,
    never resized to the box: FiftyOne 1.22's ``CVATShape.to_instance()``
    returns masks of ``xbr - xtl + 1`` columns (CVAT boxes are inclusive)
    in boxes of ``xbr - xtl``, and FiftyOne's own rendering squeezes each
    mask into its box, losing the right-most column (and bottom row).
    """
    bitmaps = [
        (name_value(targets, d.label), *mask_origin(d, shape), d.mask)
        for d in detections
        if d.mask is not None
    ]
    return polygons_to_mask(
        [], shape, bitmaps=bitmaps, fill_value=fill_value, dtype=dtype
    )


def send_to_cvat(
    view: fo.core.collections.SampleCollection,
    anno_key: str,
    gt_field: str,
    *,
    run_key: str | None = None,
    credentials: dict,
    launch_editor: bool = False,
) -> fouc.CVATAnnotationResults:
    """Uploads ``view`` to CVAT as annotation run ``anno_key``.

    Raises:
        CvatUnreachableError: when no server answers at the URL or the
            login fails; the annotation run the attempt registered and the
            field it wrote are deleted.
    """
    dataset = view._root_dataset
    _check_anno_key(dataset, anno_key)
    check_segmentation_field(dataset, gt_field)
    (patches_field,) = patch_fields(dataset, run_key) if run_key else (None,)
    url = credentials.get("url")
    if not (
        url and credentials.get("username") and credentials.get("password")
    ):
        raise LabelErrorInputError(
            "CVAT needs a URL, username and password: set the plugin "
            "secrets or the environment variables FIFTYONE_CVAT_URL, "
            "FIFTYONE_CVAT_USERNAME and FIFTYONE_CVAT_PASSWORD"
        )
    samples = sample_view(view, patches_field)
    try:
        names = write_edit_field(samples, gt_field, anno_key)
        schema = cvat_label_schema(
            dataset, gt_field, anno_key, patches_field, extra_classes=names
        )
        return samples.annotate(
            anno_key,
            backend="cvat",
            label_schema=schema,
            launch_editor=launch_editor,
            **credentials,
        )
    except requests.exceptions.RequestException as e:
        _forget_run(dataset, anno_key)
        raise CvatUnreachableError(
            f"Could not reach or log in to the CVAT server at {url} "
            f"({type(e).__name__}). No annotation run was kept. Without a "
            "server, use 'Export CVAT archive' to write a CVAT task archive "
            "and 'Import CVAT archive' to read the edited one back."
        ) from e
    except BaseException:
        _forget_run(dataset, anno_key)
        raise


def load_from_cvat(
    dataset: fo.Dataset,
    anno_key: str,
    *,
    dest_field: str | None = None,
    credentials: dict,
    fill_value: int | None = None,
    cleanup: bool = False,
) -> dict:
    """Loads a CVAT run's edited ground truth into ``dest_field`` (default
    ``<gt>_cvat``, never the ground truth) and its review marks into the
    patches' review tags.

    With ``cleanup``, the CVAT tasks, the annotation run and its
    ``fixer_cvat_<anno key>`` field are deleted afterwards.

    Returns:
        counts: ``samples`` written and ``confirmed``, ``rejected`` and
        ``unmatched`` marks.
    """
    if anno_key not in dataset.list_annotation_runs():
        raise LabelErrorInputError(
            f"Dataset '{dataset.name}' has no annotation run '{anno_key}'"
        )
    schema = dataset.get_annotation_info(anno_key).config.label_schema
    source = edit_field(anno_key)
    if source not in schema or not dataset.has_sample_field(source):
        raise LabelErrorInputError(
            f"Annotation run '{anno_key}' was not sent by 'Send to CVAT'"
        )
    gt_field = dataset.get_field(source).info["fixer_gt_field"]
    targets = mask_targets(dataset, gt_field)
    dest_field = dest_field or f"{gt_field}_cvat"
    check_destination(dataset, gt_field, dest_field)
    destinations = {source: _LOADED_FIELD}
    destinations.update({f: _REVIEW_FIELD for f in schema if f != source})
    try:
        dataset.load_annotations(
            anno_key,
            dest_field=destinations,
            unexpected="ignore",
            cleanup=cleanup,
            **credentials,
        )
        masks = {}
        samples = dataset.exists(source).select_fields(
            [gt_field, _LOADED_FIELD]
        )
        for sample in samples.iter_samples():
            gt = load_mask(sample, gt_field)
            loaded = sample[_LOADED_FIELD]
            masks[sample.id] = paint_detections(
                loaded.detections if loaded else [],
                gt.shape,
                targets,
                fill_value=gt if fill_value is None else fill_value,
                dtype=gt.dtype,
            )
        if masks:
            write_segmentations(dataset, gt_field, dest_field, masks)
        verdicts = {}
        if dataset.has_sample_field(_REVIEW_FIELD):
            for dets in dataset.values(_REVIEW_FIELD):
                for det in dets.detections if dets else []:
                    verdicts[det.id] = det["review"] or UNREVIEWED
    finally:
        for name in (_LOADED_FIELD, _REVIEW_FIELD):
            if dataset.has_sample_field(name):
                dataset.delete_sample_field(name)
    if cleanup:
        dataset.delete_annotation_run(anno_key)
        dataset.delete_sample_field(source)
    return {
        "samples": len(masks),
        **apply_review_marks(dataset, verdicts, None),
    }


def _check_anno_key(dataset: fo.Dataset, anno_key: str) -> None:
    if not anno_key.isidentifier():
        raise LabelErrorInputError(
            f"Annotation key '{anno_key}' must be a valid variable name"
        )
    if anno_key in dataset.list_annotation_runs():
        raise LabelErrorInputError(
            f"Annotation key '{anno_key}' already exists"
        )
    if dataset.has_sample_field(edit_field(anno_key)):
        raise LabelErrorInputError(
            f"Field '{edit_field(anno_key)}' already exists; choose another "
            "annotation key"
        )


def _forget_run(dataset: fo.Dataset, anno_key: str) -> None:
    """Deletes what a failed send wrote: the annotation run ``annotate``
    registered and the edit field. (A failure after the login may leave
    tasks on the server; FiftyOne saves their ids only once the upload
    finishes.)"""
    if anno_key in dataset.list_annotation_runs():
        dataset.delete_annotation_run(anno_key)
        logger.info("Deleted the unfinished annotation run '%s'", anno_key)
    if dataset.has_sample_field(edit_field(anno_key)):
        dataset.delete_sample_field(edit_field(anno_key))
