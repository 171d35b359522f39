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

The patches of a FIXER run travel as reference shapes, one CVAT label
``fixer_patch`` (so annotators see each class once), copied into a field
``fixer_cvat_<anno key>_patches`` for the upload, with the ``suggested_label``,
``given_label``, ``error_type`` and ``issue`` attributes and a ``review``
mark (FiftyOne's own ``label_id`` attribute ties each shape to its patch).
CVAT has no read-only attributes or locked shapes: only the ``review``
marks are read back, any other change to a reference shape is ignored.

Loading reads the annotations FiftyOne's CVAT backend downloads and paints
them itself; nothing passes through FiftyOne's label merging.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import fiftyone as fo
import fiftyone.utils.cvat as fouc
import numpy as np
import requests

from ..fixer_core.polygons import polygons_to_mask
from ._relabel import (
    PATCH_LABEL,
    REVIEW_VALUES,
    UNREVIEWED,
    apply_review_marks,
    check_destination,
    check_segmentation_field,
    mask_origin,
    mask_targets,
    name_value,
    patch_fields,
    patch_review,
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
# Attributes of the reference shapes that annotators read
REFERENCE_ATTRIBUTES = (
    "suggested_label",
    "given_label",
    "error_type",
    "issue",
)


class CvatUnreachableError(RuntimeError):
    """The CVAT server did not answer, refused the login or failed."""


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


def reference_field(anno_key: str) -> str:
    """The instances field that carries the patches to CVAT (during the
    upload only)."""
    return f"fixer_cvat_{anno_key}_patches"


def cvat_label_schema(
    dataset: fo.Dataset,
    gt_field: str,
    anno_key: str,
    *,
    patches: bool = False,
    extra_classes: set[str] | frozenset[str] = frozenset(),
) -> dict:
    """The label schema for ``annotate``: the ground truth's masks to edit
    (in :func:`edit_field`) and, with ``patches``, the reference shapes
    of :func:`reference_field` with a ``review`` mark. ``extra_classes``
    names mask values that the mask targets miss."""
    names = set(mask_targets(dataset, gt_field).values()) | extra_classes
    classes = sorted(names)
    schema = {edit_field(anno_key): {"type": "instances", "classes": classes}}
    if patches:
        # CVAT >= 2.5 wants text attributes with an empty list of values.
        # FiftyOne ignores edits of read-only attributes and of the shapes
        # when loading; CVAT itself lets annotators change them.
        read_only = {"type": "text", "values": [], "read_only": True}
        schema[reference_field(anno_key)] = {
            "type": "instances",
            "classes": [PATCH_LABEL],
            "attributes": {
                **{name: read_only for name in REFERENCE_ATTRIBUTES},
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


def write_patch_references(
    samples: fo.core.collections.SampleCollection,
    patches_field: str,
    anno_key: str,
) -> None:
    """Copies the patches of ``samples`` into :func:`reference_field`:
    same ids, masks and boxes, labelled ``fixer_patch``, with their
    attributes and their current review mark."""
    values = {}
    for sample in samples.select_fields(patches_field).iter_samples():
        patches = sample[patches_field]
        values[sample.id] = fo.Detections(
            detections=[
                _reference(d) for d in (patches.detections if patches else [])
            ]
        )
    samples._root_dataset.set_values(
        reference_field(anno_key), values, key_field="id"
    )


def _reference(patch: fo.Detection) -> fo.Detection:
    attributes = {
        name: getattr(patch, name, None) for name in REFERENCE_ATTRIBUTES
    }
    return fo.Detection(
        _id=patch._id,
        label=PATCH_LABEL,
        bounding_box=patch.bounding_box,
        mask=patch.mask,
        review=patch_review(patch),
        **{k: v for k, v in attributes.items() if v is not None},
    )


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
    """Uploads ``view`` to CVAT as annotation run ``anno_key``, in one
    task named :func:`task_name`.

    Raises:
        CvatUnreachableError: when no server answers at the URL, the
            login fails or the upload fails; the annotation run the
            attempt registered and the fields it wrote are deleted (a task
            that CVAT made before the failure stays there; the message
            names it).
    """
    dataset = view._root_dataset
    _check_anno_key(dataset, anno_key)
    check_segmentation_field(dataset, gt_field)
    (patches_field,) = patch_fields(dataset, run_key) if run_key else (None,)
    check_login(credentials)
    samples = sample_view(view, patches_field)
    task = task_name(dataset, anno_key)
    try:
        names = write_edit_field(samples, gt_field, anno_key)
        if patches_field:
            write_patch_references(samples, patches_field, anno_key)
        schema = cvat_label_schema(
            dataset,
            gt_field,
            anno_key,
            patches=bool(patches_field),
            extra_classes=names,
        )
        with _cvat_call(
            "Uploading to CVAT after the login",
            credentials["url"],
            "No annotation run was kept. The CVAT task made so far, "
            f"'{task}', may remain on the server: delete it there.",
        ):
            results = samples.annotate(
                anno_key,
                backend="cvat",
                label_schema=schema,
                launch_editor=launch_editor,
                task_name=task,
                **credentials,
            )
    except BaseException:
        _forget_run(dataset, anno_key)
        raise
    if dataset.has_sample_field(reference_field(anno_key)):
        dataset.delete_sample_field(reference_field(anno_key))
    return results


def task_name(dataset: fo.Dataset, anno_key: str) -> str:
    """The name of the CVAT task that :func:`send_to_cvat` makes."""
    return f"FIXER {anno_key} ({dataset.name})"


def check_login(credentials: dict) -> None:
    """Logs in to the CVAT server of ``credentials`` once.

    Raises:
        LabelErrorInputError: when the URL, username or password is not
            set.
        CvatUnreachableError: when no server answers at the URL or it
            refuses the login.
    """
    url = credentials.get("url")
    user = credentials.get("username")
    if not (url and user and credentials.get("password")):
        raise LabelErrorInputError(
            "CVAT needs a URL, username and password: set the plugin "
            "secrets or the environment variables FIFTYONE_CVAT_URL, "
            "FIFTYONE_CVAT_USERNAME and FIFTYONE_CVAT_PASSWORD"
        )
    with _cvat_call(
        f"Logging in to CVAT as '{user}'",
        url,
        "Nothing was changed. Without a server, use 'Export CVAT "
        "archive' to write a CVAT task archive and 'Import CVAT archive' "
        "to read the edited one back.",
    ):
        api = fouc.CVATAnnotationAPI(
            "cvat",
            url,
            username=user,
            password=credentials["password"],
            email=credentials.get("email"),
        )
    api.close()


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

    Raises:
        CvatUnreachableError: when the server does not answer, refuses the
            login or fails; nothing is written then.
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
    check_login(credentials)
    url = credentials["url"]
    with _cvat_call(
        f"Loading annotation run '{anno_key}' from CVAT",
        url,
        "Nothing was written.",
    ):
        results = dataset.load_annotation_results(anno_key, **credentials)
        annotations = results.backend.download_annotations(results)
    edits = annotations.get(source, {}).get("detections", {})
    masks = {}
    for sample in (
        dataset.exists(source).select_fields(gt_field).iter_samples()
    ):
        gt = load_mask(sample, gt_field)
        masks[sample.id] = paint_detections(
            list(edits.get(sample.id, {}).values()),
            gt.shape,
            targets,
            fill_value=gt if fill_value is None else fill_value,
            dtype=gt.dtype,
        )
    if masks:
        write_segmentations(dataset, gt_field, dest_field, masks)
    counts = {
        "samples": len(masks),
        **apply_review_marks(dataset, review_marks(annotations, source), None),
    }
    if cleanup:
        with _cvat_call(
            "Deleting the CVAT task",
            url,
            f"The edits were loaded into '{dest_field}'; annotation run "
            f"'{anno_key}' was kept.",
        ):
            results.cleanup()
        dataset.delete_annotation_run(anno_key)
        dataset.delete_sample_field(source)
    return counts


def review_marks(annotations: dict, source: str) -> dict[str, str]:
    """``{patch id: review mark}`` of the downloaded reference shapes (of
    every field but the edited ground truth ``source``)."""
    marks = {}
    for field, by_type in annotations.items():
        if field == source:
            continue
        for shapes in by_type.get("detections", {}).values():
            for label_id, shape in shapes.items():
                marks[label_id] = getattr(shape, "review", None) or UNREVIEWED
    return marks


@contextmanager
def _cvat_call(action: str, url: str, outcome: str) -> Iterator[None]:
    """Turns a failed HTTP exchange into one :class:`CvatUnreachableError`
    that names the action, the URL, the failure and its ``outcome``."""
    try:
        yield
    except requests.exceptions.RequestException as e:
        response = getattr(e, "response", None)
        if response is None:
            what = f"did not answer ({type(e).__name__})"
        else:
            what = f"answered HTTP {response.status_code}"
            if response.status_code in (400, 401, 403):
                what += ": check the username and password"
        raise CvatUnreachableError(
            f"{action} failed: the CVAT server at {url} {what}. {outcome}"
        ) from e


def _check_anno_key(dataset: fo.Dataset, anno_key: str) -> None:
    if not anno_key.isidentifier():
        raise LabelErrorInputError(
            f"Annotation key '{anno_key}' must be a valid variable name"
        )
    if anno_key in dataset.list_annotation_runs():
        raise LabelErrorInputError(
            f"Annotation key '{anno_key}' already exists"
        )
    for name in (edit_field(anno_key), reference_field(anno_key)):
        if dataset.has_sample_field(name):
            raise LabelErrorInputError(
                f"Field '{name}' already exists; choose another annotation key"
            )


def _forget_run(dataset: fo.Dataset, anno_key: str) -> None:
    """Deletes what a failed send wrote: the annotation run ``annotate``
    registered and the two fields. (A task CVAT made stays there: FiftyOne
    saves task ids only once the upload finishes.)"""
    if anno_key in dataset.list_annotation_runs():
        dataset.delete_annotation_run(anno_key)
        logger.info("Deleted the unfinished annotation run '%s'", anno_key)
    for name in (edit_field(anno_key), reference_field(anno_key)):
        if dataset.has_sample_field(name):
            dataset.delete_sample_field(name)
