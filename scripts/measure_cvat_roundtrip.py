"""Measures CVAT round trips of real label masks.

Without ``--live`` (no database, no server), for each mask
(single-channel PNGs, e.g. CamVid's ``labels/val``):

- ``archive``: FIXER's offline path. Mask -> pixel-edge polygons ->
  FiftyOne's ``CVATImage``/XML writer -> FiftyOne's CVAT XML reader ->
  FIXER's rasteriser. Counts differing pixels and times it.
- ``live``: the conversions around a CVAT server (its HTTP round trip
  left out), on FiftyOne 1.22's own code. ``segmentation field``: what
  FiftyOne does when a segmentation field is annotated:
  ``Segmentation.to_detections`` -> CVAT mask RLE as uploaded ->
  ``CVATShape.to_instance`` -> ``to_polyline(tolerance=2)`` ->
  ``Polylines.to_segmentation``. ``FIXER``: what ``send_to_cvat`` and
  ``load_from_cvat`` do: one mask per class (value 0 included) -> the same
  RLE -> ``CVATShape.to_instance`` -> FIXER's ``paint_detections``.

With ``--live IMAGES_DIR``: the masks and their images (``<stem>.jpg``
in ``IMAGES_DIR``) go to the CVAT server of ``FIFTYONE_CVAT_*`` through
``send_to_cvat`` and come back through ``load_from_cvat`` (which deletes
the task): times both, counts differing pixels and reports the server's
memory (RSS of the processes recorded under ``$CVAT_ROOT``, default
``/tmp/cvat``). It uses FiftyOne's database (a temporary dataset).

Usage::

    python scripts/measure_cvat_roundtrip.py ../shared/data/camvid/labels/val \
        --limit 20
    source /tmp/cvat/cvat.env
    python scripts/measure_cvat_roundtrip.py ../shared/data/camvid/labels/val \
        --limit 100 --live ../shared/data/camvid/images/val
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import fiftyone as fo  # noqa: E402
import fiftyone.utils.cvat as fouc  # noqa: E402

from fixer_core.polygons import mask_to_polygons, polygons_to_mask  # noqa: E402


def _load_cvat_module():
    """The plugin's ``operators/_cvat.py`` fix, without a database."""
    spec = importlib.util.spec_from_file_location(
        "fixer_plugin", os.path.join(ROOT, "__init__.py"),
        submodule_search_locations=[ROOT],
    )  # fmt: skip
    module = importlib.util.module_from_spec(spec)
    sys.modules["fixer_plugin"] = module
    spec.loader.exec_module(module)
    return sys.modules["fixer_plugin.operators._cvat"]


def archive_round_trip(mask: np.ndarray, tmp: str) -> np.ndarray:
    height, width = mask.shape
    polylines = fo.Polylines(
        polylines=[
            fo.Polyline(
                label=str(value),
                points=[[(x / width, y / height) for x, y in points]],
                closed=True,
                filled=True,
            )
            for value, points in mask_to_polygons(mask)
        ]
    )
    image = fouc.CVATImage.from_labels(
        {"gt": polylines}, fo.ImageMetadata(width=width, height=height)
    )
    image.id, image.name = 0, "image.png"
    path = os.path.join(tmp, "annotations.xml")
    fouc.CVATImageAnnotationWriter().write(
        fouc.CVATTaskLabels.from_cvat_images([image]), [image], path
    )
    _, _, (back,) = fouc.load_cvat_image_annotations(path)
    polygons = [
        (int(p.label), np.asarray(p.points[0]) * (width, height))
        for p in back.to_labels()["polylines"].polylines
    ]
    return polygons_to_mask(polygons, mask.shape, dtype=mask.dtype)


def _through_cvat(detection, frame_size) -> fo.Detection:
    """A detection's mask as FiftyOne uploads it and reads it back."""
    width, height = frame_size
    x, y, w, h = detection.bounding_box
    x0, y0 = round(x * width), round(y * height)
    x1, y1 = x0 + round(w * width), y0 + round(h * height)
    rle = fouc.HasCVATBinaryMask._mask_to_cvat_rle(detection.mask.astype(bool))
    shape = types.SimpleNamespace(
        points=rle + [x0, y0, x1 - 1, y1 - 1],
        frame_size=frame_size,
        label=detection.label,
        index=None,
        _set_attributes=lambda label: None,
    )
    return fouc.CVATShape.to_instance(shape)


def live_fixer(mask: np.ndarray, cvat) -> np.ndarray:
    height, width = mask.shape
    targets = {int(v): str(v) for v in np.unique(mask)}
    detections = cvat.class_detections(mask, targets).detections
    loaded = [_through_cvat(d, (width, height)) for d in detections]
    return cvat.paint_detections(loaded, mask.shape, targets, dtype=mask.dtype)


def live_segmentation(mask: np.ndarray) -> np.ndarray:
    height, width = mask.shape
    targets = {int(v): str(v) for v in np.unique(mask)}
    detections = fo.Segmentation(mask=mask).to_detections(mask_targets=targets)
    merged: dict[str, fo.Polyline] = {}
    for det in detections.detections:
        instance = _through_cvat(det, (width, height))
        poly = instance.to_polyline(tolerance=2, filled=True)
        if poly.label in merged:
            merged[poly.label].points.extend(poly.points)
        else:
            merged[poly.label] = poly
    seg = fo.Polylines(polylines=list(merged.values())).to_segmentation(
        frame_size=(width, height),
        mask_targets={v: k for k, v in {s: int(s) for s in merged}.items()},
    )
    return seg.mask


def live_round_trip(labels_dir: str, images_dir: str, names: list, cvat):
    """Send -> CVAT server -> load, timed, on a temporary dataset."""
    credentials = cvat.cvat_credentials()
    masks = [cv2.imread(os.path.join(labels_dir, n), 0) for n in names]
    dataset = fo.Dataset()
    dataset.add_samples(
        fo.Sample(
            filepath=os.path.join(images_dir, f"{os.path.splitext(n)[0]}.jpg"),
            ground_truth=fo.Segmentation(
                mask_path=os.path.join(labels_dir, n)
            ),
        )
        for n in names
    )
    values = np.unique(np.concatenate([np.unique(m) for m in masks]))
    dataset.default_mask_targets = {int(v): f"class{v}" for v in values}
    dataset.save()
    out_dir = sys.modules["fixer_plugin.operators._pipeline"].fixer_dir(
        dataset
    )
    try:
        start = time.perf_counter()
        cvat.send_to_cvat(
            dataset.view(), "measure", "ground_truth", credentials=credentials
        )
        sent = time.perf_counter()
        memory = cvat_memory_mib()
        cvat.load_from_cvat(
            dataset, "measure", credentials=credentials, cleanup=True
        )
        loaded = time.perf_counter()
        differing = sum(
            int(
                (
                    s.ground_truth_cvat.get_mask() != s.ground_truth.get_mask()
                ).sum()
            )
            for s in dataset.iter_samples()
        )
    finally:
        dataset.delete()
        shutil.rmtree(out_dir, ignore_errors=True)
    print(f"live, {len(names)} images, {len(values)} classes, server "
          f"{credentials['url']}: send {sent - start:.1f} s, load (with "
          f"cleanup) {loaded - sent:.1f} s, differing pixels {differing}; "
          f"CVAT server RSS {memory:.0f} MiB after the send")  # fmt: skip


def cvat_memory_mib() -> float:
    """RSS of the CVAT server's processes (those recorded in
    ``$CVAT_ROOT/run/*.pid`` and PostgreSQL's, with their children)."""
    root = os.environ.get("CVAT_ROOT", "/tmp/cvat")
    pid_files = glob.glob(os.path.join(root, "run", "*.pid"))
    pid_files.append(os.path.join(root, "pgdata", "postmaster.pid"))
    roots = set()
    for path in pid_files:
        with open(path) as f:
            roots.add(int(f.readline()))
    table = subprocess.run(
        ["ps", "-eo", "pid=,ppid=,rss="], capture_output=True, text=True
    ).stdout.split()
    rows = [tuple(map(int, table[i : i + 3])) for i in range(0, len(table), 3)]
    members, grown = set(roots), True
    while grown:
        new = {pid for pid, ppid, _ in rows if ppid in members} - members
        members |= new
        grown = bool(new)
    return sum(rss for pid, _, rss in rows if pid in members) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labels_dir")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument(
        "--live",
        metavar="IMAGES_DIR",
        help="send the masks and these images to the CVAT server instead",
    )
    args = parser.parse_args()
    cvat = _load_cvat_module()
    names = sorted(os.listdir(args.labels_dir))[: args.limit]
    if args.live:
        live_round_trip(args.labels_dir, args.live, names, cvat)
        return
    stats = {"archive": [], "live, segmentation field": [], "live, FIXER": []}
    seconds = 0.0
    num_polygons = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            mask = cv2.imread(os.path.join(args.labels_dir, name), 0)
            start = time.perf_counter()
            back = archive_round_trip(mask, tmp)
            seconds += time.perf_counter() - start
            num_polygons += len(mask_to_polygons(mask))
            stats["archive"].append(int((back != mask).sum()))
            live = live_segmentation(mask)
            stats["live, segmentation field"].append(int((live != mask).sum()))
            live = live_fixer(mask, cvat)
            stats["live, FIXER"].append(int((live != mask).sum()))
    pixels = mask.size
    print(f"{len(names)} masks of {mask.shape[1]}x{mask.shape[0]} from "
          f"{args.labels_dir}; {num_polygons / len(names):.0f} polygons "
          "per mask")  # fmt: skip
    print(f"archive round trip: {seconds:.2f} s in all, "
          f"{1000 * seconds / len(names):.0f} ms per mask")  # fmt: skip
    for key, diffs in stats.items():
        print(f"{key:>24}: differing pixels per mask mean "
              f"{np.mean(diffs):.0f} ({100 * np.mean(diffs) / pixels:.2f}%), "
              f"max {max(diffs)}")  # fmt: skip


if __name__ == "__main__":
    main()
