"""The offline CVAT round trip on real CamVid labels.

Ten CamVid val images and their labels, used in place from
``../shared/data/camvid`` (nothing is copied or written there), go through
``export_cvat_archive`` and ``import_cvat_archive``: every pixel must come
back (polygon tolerance: none).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
from fixer_testing import PLUGIN

CAMVID = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CAMVID = CAMVID / "camvid"
NUM_IMAGES = 10
VOID = 11

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")

pytestmark = pytest.mark.skipif(
    not CAMVID.is_dir(), reason=f"CamVid not found at {CAMVID}"
)


def test_camvid_archive_round_trip_is_pixel_identical(
    fixer_plugin, dataset_factory, tmp_path
):
    names = json.loads((CAMVID / "classes.json").read_text())["classes"]
    images = sorted((CAMVID / "images" / "val").glob("*"))[:NUM_IMAGES]
    labels = [CAMVID / "labels" / "val" / f"{p.stem}.png" for p in images]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in labels}
    dataset = dataset_factory("camvid-cvat")
    dataset.add_samples(
        fo.Sample(
            filepath=str(image),
            ground_truth=fo.Segmentation(mask_path=str(label)),
        )
        for image, label in zip(images, labels, strict=True)
    )
    dataset.default_mask_targets = {**dict(enumerate(names)), VOID: "Void"}
    dataset.save()
    archive = tmp_path / "camvid.zip"
    start = time.perf_counter()
    exported = foo.execute_operator(
        f"{PLUGIN}/export_cvat_archive",
        dict(
            dataset=dataset,
            params=dict(gt_field="ground_truth", archive_path=str(archive)),
        ),
    ).result
    middle = time.perf_counter()
    imported = foo.execute_operator(
        f"{PLUGIN}/import_cvat_archive",
        dict(
            dataset=dataset,
            params=dict(gt_field="ground_truth", archive_path=str(archive)),
        ),
    ).result
    end = time.perf_counter()
    print(
        f"{NUM_IMAGES} CamVid images, {exported['polygons']} polygons: "
        f"export {middle - start:.1f} s, import {end - middle:.1f} s"
    )
    assert exported["samples"] == imported["samples"] == NUM_IMAGES
    for sample in dataset.iter_samples():
        np.testing.assert_array_equal(
            sample.ground_truth_cvat.get_mask(), sample.ground_truth.get_mask()
        )
    assert {
        p: hashlib.sha256(p.read_bytes()).hexdigest() for p in labels
    } == before
