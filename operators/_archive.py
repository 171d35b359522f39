"""Offline CVAT path: a CVAT-for-images archive of a view, and its import.

The archive is a zip holding ``annotations.xml`` (CVAT for images 1.1,
written by FiftyOne's ``CVATImageDatasetExporter``), the images as
``images/<sample id>.<ext>`` and ``cvat_labels.json`` (the labels and
attributes to paste into CVAT's label constructor when creating the task).
The ground truth travels as one polygon per 4-connected region, traced
along pixel edges (integer vertices, exact); the patches as
``fixer_patch`` polygons with their attributes and a ``review`` mark.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from xml.sax.saxutils import escape

import fiftyone as fo
import fiftyone.core.utils as fou
import fiftyone.utils.cvat as fouc
import numpy as np

from ..fixer_core.polygons import (
    mask_to_polygons,
    polygons_to_mask,
    region_outlines,
)
from ._archive_limits import (
    as_list,
    check_annotations,
    check_fill_value,
    check_shape_values,
    check_xml_file,
    extract_xml,
)
from ._relabel import (
    CONFIRMED,
    PATCH_LABEL,
    REJECTED,
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

ARCHIVE_XML = "annotations.xml"
ARCHIVE_IMAGES = "images"
ARCHIVE_LABELS = "cvat_labels.json"
# Patch ids are prefixed: FiftyOne's CVAT reader turns any attribute value
# that parses as a number (an id such as "6512e4...") into one
PATCH_REF = "patch-"
# Patch attributes shown to annotators (read-only) and the mutable mark
PATCH_ATTRIBUTES = (
    "patch_id",
    "suggested_label",
    "given_label",
    "error_type",
    "issue",
    "score",
)


def default_import_field(gt_field: str) -> str:
    """Where edited labels land unless named: ``<gt>_cvat``."""
    return f"{gt_field}_cvat"


def export_cvat_archive(
    view: fo.core.collections.SampleCollection,
    gt_field: str,
    archive_path: str,
    *,
    run_key: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Writes a CVAT-for-images zip of ``view``'s ground truth (and the
    patches of FIXER run ``run_key``, if given). An existing file is
    replaced only with ``overwrite``.

    Returns:
        counts: ``samples``, ``polygons`` (ground truth) and ``patches``.
    """
    dataset = view._root_dataset
    if os.path.exists(archive_path) and not overwrite:
        raise LabelErrorInputError(
            f"{archive_path} exists; choose another path or pass "
            "overwrite=True"
        )
    check_segmentation_field(dataset, gt_field)
    targets = mask_targets(dataset, gt_field)
    (patches_field,) = patch_fields(dataset, run_key) if run_key else (None,)
    view = sample_view(view, patches_field)
    if len(view) == 0:
        raise LabelErrorInputError("The target view holds no samples")
    fields = [gt_field] + ([patches_field] if patches_field else [])
    counts = {"samples": 0, "polygons": 0, "patches": 0}
    names = set(targets.values())  # and values the targets miss
    folder = os.path.dirname(os.path.abspath(archive_path))
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as stage:
        links = os.path.join(stage, "links")
        os.makedirs(links)
        exporter = fouc.CVATImageDatasetExporter(
            export_dir=os.path.join(stage, "out"),
            data_path=ARCHIVE_IMAGES,
            labels_path=ARCHIVE_XML,
            export_media=True,
        )
        with exporter:
            exporter.log_collection(view)
            for sample in view.select_fields(fields).iter_samples():
                mask = load_mask(sample, gt_field)
                height, width = mask.shape
                metadata = fo.ImageMetadata.build_for(sample.filepath)
                if (metadata.height, metadata.width) != (height, width):
                    raise LabelErrorInputError(
                        f"Mask of sample {sample.id} is {width}x{height} but "
                        f"its image is {metadata.width}x{metadata.height}"
                    )
                gt = _gt_polylines(mask, targets)
                labels = {"ground_truth": gt}
                counts["polygons"] += len(gt.polylines)
                names.update(
                    value_name(targets, int(v)) for v in np.unique(mask)
                )
                if patches_field and sample[patches_field] is not None:
                    refs = _patch_polylines(
                        sample[patches_field].detections, (height, width)
                    )
                    labels["patches"] = refs
                    counts["patches"] += len(sample[patches_field].detections)
                # Images are named by sample id so edits come back to it
                ext = os.path.splitext(sample.filepath)[1]
                link = os.path.join(links, f"{sample.id}{ext}")
                os.symlink(os.path.abspath(sample.filepath), link)
                exporter.export_sample(link, labels, metadata=metadata)
                counts["samples"] += 1
        with open(os.path.join(stage, "out", ARCHIVE_LABELS), "w") as f:
            json.dump(_cvat_labels(sorted(names)), f, indent=2)
        tmp_zip = os.path.join(stage, "archive.zip")
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as z:
            out = os.path.join(stage, "out")
            for root, _, files in os.walk(out):
                for name in sorted(files):
                    path = os.path.join(root, name)
                    z.write(path, os.path.relpath(path, out))
        os.replace(tmp_zip, archive_path)
    logger.info("CVAT archive written to %s", archive_path)
    return counts


def import_cvat_archive(
    view: fo.core.collections.SampleCollection,
    archive_path: str,
    gt_field: str,
    *,
    dest_field: str | None = None,
    run_key: str | None = None,
    fill_value: int | None = None,
) -> dict:
    """Reads an edited CVAT-for-images archive (or its XML) back.

    Each image named ``<sample id>.<ext>`` that belongs to ``view`` gets
    its polygons and brush masks painted into ``dest_field`` (default
    ``<gt>_cvat``, never the ground truth): smaller shapes over larger
    ones; pixels no shape covers keep the ground truth's label, or get
    ``fill_value`` when it is given. ``review`` marks of
    ``fixer_patch`` shapes set the verdict tags of the patches they name
    (those of run ``run_key``, or of any FIXER run).

    Returns:
        counts: ``samples`` written, ``unmatched_images``,
        ``skipped_shapes`` (open polylines, boxes, points) and
        ``confirmed``/``rejected``/``unmatched`` marks.
    """
    dataset = view._root_dataset
    view = sample_view(view)
    dest_field = dest_field or default_import_field(gt_field)
    check_segmentation_field(dataset, gt_field)
    check_destination(dataset, gt_field, dest_field)
    targets = mask_targets(dataset, gt_field)
    cvat_images = _read_cvat_images(archive_path)
    by_id = {
        os.path.splitext(os.path.basename(i.name))[0]: i for i in cvat_images
    }
    samples = view.select(list(by_id)).select_fields(gt_field)
    counts = {"samples": 0, "skipped_shapes": 0}
    counts["unmatched_images"] = len(by_id) - len(samples)
    if len(samples) == 0:
        raise LabelErrorInputError(
            f"No image of {archive_path} is named after a sample of the "
            "target view (images must be named <sample id>.<ext>)"
        )
    verdicts: dict[str, str] = {}
    new_masks = {}
    for sample in samples.iter_samples():
        gt = load_mask(sample, gt_field)
        check_fill_value(fill_value, gt.dtype, targets)
        cvat_image = by_id[sample.id]
        if (cvat_image.height, cvat_image.width) != gt.shape:
            raise LabelErrorInputError(
                f"Image {cvat_image.name} is {cvat_image.width}x"
                f"{cvat_image.height} in the archive but the mask of sample "
                f"{sample.id} is {gt.shape[1]}x{gt.shape[0]}"
            )
        polygons, bitmaps, skipped = _read_shapes(
            cvat_image, targets, verdicts
        )
        counts["skipped_shapes"] += skipped
        values = {v for v, _ in polygons} | {b[0] for b in bitmaps}
        check_shape_values(cvat_image.name, values, gt, targets)
        new_masks[sample.id] = polygons_to_mask(
            polygons,
            gt.shape,
            bitmaps=bitmaps,
            fill_value=gt if fill_value is None else fill_value,
            dtype=gt.dtype,
        )
    write_segmentations(dataset, gt_field, dest_field, new_masks)
    counts["samples"] = len(new_masks)
    counts.update(apply_review_marks(dataset, verdicts, run_key))
    logger.info("Imported %d samples into '%s'", len(new_masks), dest_field)
    return counts


# -- export ------------------------------------------------------------------


def _xml(text) -> str:
    """FiftyOne's XML template does not escape; escape here (the parser
    unescapes)."""
    return escape(str(text), {'"': "&quot;"})


def _rel_points(points: np.ndarray, shape: tuple[int, int]) -> list:
    height, width = shape
    return [(float(x) / width, float(y) / height) for x, y in points]


def _gt_polylines(mask: np.ndarray, targets: dict[int, str]) -> fo.Polylines:
    return fo.Polylines(
        polylines=[
            fo.Polyline(
                label=_xml(value_name(targets, value)),
                points=[_rel_points(points, mask.shape)],
                closed=True,
                filled=True,
            )
            for value, points in mask_to_polygons(mask)
        ]
    )


def _patch_polylines(detections, shape: tuple[int, int]) -> fo.Polylines:
    out = []
    for det in detections:
        offset = np.array(mask_origin(det, shape))
        attributes = {
            "patch_id": PATCH_REF + det.id,
            "suggested_label": det["suggested_label"],
            "given_label": det["given_label"],
            "error_type": det["error_type"],
            "issue": det["issue"],
            "score": round(float(det.confidence), 4),
        }
        attributes = {
            k: _xml(v) if isinstance(v, str) else v
            for k, v in attributes.items()
            if v is not None
        }
        for outline in region_outlines(det.mask):
            out.append(
                fo.Polyline(
                    label=PATCH_LABEL,
                    points=[_rel_points(outline + offset, shape)],
                    closed=True,
                    filled=True,
                    review=patch_review(det),
                    **attributes,
                )
            )
    return fo.Polylines(polylines=out)


def _cvat_labels(names: list[str]) -> list[dict]:
    """CVAT's raw label specification for a task of this archive."""

    def text(name):
        return {
            "name": name,
            "input_type": "text",
            "mutable": False,
            "values": [""],
        }

    labels = [
        {"name": name, "type": "any", "attributes": []} for name in names
    ]
    labels.append(
        {
            "name": PATCH_LABEL,
            "type": "polygon",
            "attributes": [
                *(text(a) for a in PATCH_ATTRIBUTES),
                {
                    "name": "review",
                    "input_type": "select",
                    "mutable": True,
                    "values": list(REVIEW_VALUES),
                    "default_value": UNREVIEWED,
                },
            ],
        }
    )
    return labels


# -- import ------------------------------------------------------------------


def _read_cvat_images(archive_path: str) -> list:
    """Parses the archive's XML with FiftyOne's CVAT image reader; adds
    each image's brush masks as ``image.masks`` (FiftyOne's reader skips
    ``<mask>`` elements)."""
    if not os.path.isfile(archive_path):
        raise LabelErrorInputError(f"No such archive: {archive_path}")
    if not zipfile.is_zipfile(archive_path):
        return _read_xml(archive_path)
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(archive_path) as z:
            xmls = [n for n in z.namelist() if n.endswith(".xml")]
        if not xmls:
            raise LabelErrorInputError(
                f"{archive_path} holds no CVAT XML file"
            )
        name = ARCHIVE_XML if ARCHIVE_XML in xmls else xmls[0]
        return _read_xml(extract_xml(archive_path, name, tmp))


def _read_xml(path: str) -> list:
    check_xml_file(path)
    raw = fou.load_xml_as_json_dict(path).get("annotations", {})
    check_annotations(raw)
    _, _, images = fouc.load_cvat_image_annotations(path)
    masks = {}
    for image in as_list(raw.get("image")):
        masks[image["@name"]] = [
            _decode_mask(m) for m in as_list(image.get("mask"))
        ]
    for image in images:
        image.masks = masks.get(image.name, [])
    return images


def _decode_mask(element: dict) -> tuple[str, int, int, np.ndarray]:
    """A CVAT ``<mask>``: run lengths over its box, row by row, starting
    with a run of background. Returns ``(label, left, top, bool mask)``."""
    left, top = int(element["@left"]), int(element["@top"])
    width, height = int(element["@width"]), int(element["@height"])
    runs = [int(float(c)) for c in element["@rle"].split(",") if c.strip()]
    if sum(runs) != width * height:
        raise LabelErrorInputError(
            f"Mask '{element['@label']}' at ({left}, {top}) has runs of "
            f"{sum(runs)} pixels for a {width}x{height} box"
        )
    values = np.arange(len(runs)) % 2 == 1
    bitmap = np.repeat(values, runs).reshape(height, width)
    return element["@label"], left, top, bitmap


# A patch of several regions comes back as one polygon per region, each
# with its own mark: whatever the order, a verdict beats "unreviewed" and
# "rejected" beats "confirmed" (an unknown mark is kept, to be refused)
_MARK_RANKS = {UNREVIEWED: 0, CONFIRMED: 1, REJECTED: 2}


def _merge_mark(verdicts: dict[str, str], patch_id: str, mark: str) -> None:
    old = verdicts.get(patch_id)
    if old is None or _MARK_RANKS.get(mark, 3) > _MARK_RANKS.get(old, 3):
        verdicts[patch_id] = mark


def _read_shapes(cvat_image, targets, verdicts: dict[str, str]):
    """Ground-truth polygons ``(value, points)`` and brush masks ``(value,
    x, y, mask)`` of one image; collects the patches' review marks into
    ``verdicts``. Returns them and the number of shapes skipped (open
    polylines, boxes, points)."""
    shape = (cvat_image.height, cvat_image.width)
    polygons = []
    skipped = len(cvat_image.boxes) + len(cvat_image.points)
    labels = cvat_image.to_labels().get("polylines")
    for polyline in labels.polylines if labels else []:
        if polyline.label == PATCH_LABEL:
            ref = str(polyline["patch_id"] or "")
            if ref.startswith(PATCH_REF) and polyline["review"] is not None:
                _merge_mark(
                    verdicts, ref[len(PATCH_REF) :], str(polyline["review"])
                )
            continue
        if not polyline.closed:
            skipped += 1
            continue
        value = name_value(targets, polyline.label)
        for points in polyline.points:
            xy = np.asarray(points, dtype=np.float64) * (shape[1], shape[0])
            polygons.append((value, np.round(xy, 6)))
    bitmaps = [
        (name_value(targets, label), x, y, bitmap)
        for label, x, y, bitmap in cvat_image.masks
        if label != PATCH_LABEL
    ]
    return polygons, bitmaps, skipped
