"""Limits that keep a hostile or broken CVAT archive from exhausting the
server's memory or time, or reading a file outside the archive.

Checked before the XML is extracted (its uncompressed size, its entry
name) and before any shape is decoded (image entries, boxes, points).
"""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np

from ._samples import LabelErrorInputError

# Uncompressed size of the annotation XML
MAX_XML_BYTES = 128 * 2**20
# Vertices of one polygon or polyline
MAX_POINTS_PER_SHAPE = 100_000
_CHUNK = 2**20


def extract_xml(archive_path: str, name: str, folder: str) -> str:
    """Copies the XML entry ``name`` of a zip into ``folder`` under a name
    of its own, refusing unsafe entry names and, before and while copying,
    entries larger than :data:`MAX_XML_BYTES`. Returns the copy's path."""
    if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        raise LabelErrorInputError(
            f"{archive_path} holds an entry with an unsafe name: {name!r}"
        )
    out = os.path.join(folder, "annotations.xml")
    with zipfile.ZipFile(archive_path) as z:
        info = z.getinfo(name)
        _check_size(archive_path, name, info.file_size)
        with z.open(info) as src, open(out, "wb") as dst:
            copied = 0
            while chunk := src.read(_CHUNK):
                copied += len(chunk)
                _check_size(archive_path, name, copied)
                dst.write(chunk)
    return out


def check_xml_file(path: str) -> None:
    """Refuses a plain XML file larger than :data:`MAX_XML_BYTES`."""
    _check_size(path, os.path.basename(path), os.path.getsize(path))


def check_annotations(raw: dict) -> None:
    """Checks the parsed CVAT XML before any shape is decoded: image
    names are unique, brush masks lie inside their image, polygons have
    at most :data:`MAX_POINTS_PER_SHAPE` finite points."""
    seen = set()
    for image in as_list(raw.get("image")):
        name = image.get("@name")
        if name in seen:
            raise LabelErrorInputError(
                f"Image {name} appears twice in the archive"
            )
        seen.add(name)
        width, height = _ints(image, ("@width", "@height"), name, "image")
        for element in as_list(image.get("mask")):
            _check_mask_box(element, name, width, height)
        for kind in ("polygon", "polyline", "points"):
            for element in as_list(image.get(kind)):
                _check_points(element, name, kind)


def as_list(value) -> list:
    """An XML element that may repeat, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def check_fill_value(fill_value: int | None, dtype, targets: dict) -> None:
    """Refuses a fill value that the masks' dtype cannot hold or that the
    mask targets do not name."""
    if fill_value is None:
        return
    info = np.iinfo(dtype)
    if not info.min <= fill_value <= info.max or fill_value not in targets:
        raise LabelErrorInputError(
            f"fill_value {fill_value} is not a value of the mask targets "
            f"{sorted(targets)} that {np.dtype(dtype).name} masks can hold"
        )


def check_shape_values(
    image_name: str, values: set[int], gt: np.ndarray, targets: dict
) -> None:
    """Refuses shapes whose class value neither the mask targets name nor
    the sample's ground truth holds, or that the mask's dtype cannot
    hold."""
    info = np.iinfo(gt.dtype)
    unknown = sorted(
        v
        for v in values
        if v not in targets
        and not (info.min <= v <= info.max and (gt == v).any())
    )
    if unknown:
        raise LabelErrorInputError(
            f"Image {image_name} has shapes of class value(s) {unknown} that "
            f"the mask targets {sorted(targets)} do not name"
        )


def _check_size(path: str, name: str, size: int) -> None:
    if size > MAX_XML_BYTES:
        raise LabelErrorInputError(
            f"{name} in {path} is larger than {MAX_XML_BYTES // 2**20} MiB "
            "uncompressed; split the task into smaller archives"
        )


def _ints(element: dict, keys, image: str, what: str) -> list[int]:
    try:
        return [int(element[k]) for k in keys]
    except (KeyError, TypeError, ValueError) as e:
        raise LabelErrorInputError(
            f"Image {image}: a {what} has a missing or malformed "
            f"{', '.join(k.lstrip('@') for k in keys)}"
        ) from e


def _check_mask_box(element: dict, image: str, width: int, height: int):
    keys = ("@left", "@top", "@width", "@height")
    left, top, w, h = _ints(element, keys, image, "brush mask")
    if left < 0 or top < 0 or w < 1 or h < 1:
        raise LabelErrorInputError(
            f"Image {image}: brush mask '{element.get('@label')}' has the "
            f"box ({left}, {top}, {w}x{h})"
        )
    if left + w > width or top + h > height:
        raise LabelErrorInputError(
            f"Image {image}: brush mask '{element.get('@label')}' at "
            f"({left}, {top}) is {w}x{h}, outside the {width}x{height} image"
        )


def _check_points(element: dict, image: str, kind: str) -> None:
    text = element.get("@points") or ""
    label = element.get("@label")
    if text.count(";") + 1 > MAX_POINTS_PER_SHAPE:
        raise LabelErrorInputError(
            f"Image {image}: {kind} '{label}' has {text.count(';') + 1} "
            f"points; at most {MAX_POINTS_PER_SHAPE} are read"
        )
    for point in text.split(";"):
        try:
            x, y = (float(v) for v in point.split(","))
        except ValueError:
            x = y = math.nan
        if not (math.isfinite(x) and math.isfinite(y)):
            raise LabelErrorInputError(
                f"Image {image}: {kind} '{label}' has the malformed point "
                f"{point[:40]!r} (expected 'x,y' numbers)"
            )
