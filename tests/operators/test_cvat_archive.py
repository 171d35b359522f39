"""The offline CVAT path: archive export, edits, import, review marks.

Round trips go through FiftyOne's own CVAT-for-images exporter and reader.
Polygon tolerance: none. Ground-truth regions are traced along pixel
edges, so their vertices are integers, which CVAT's XML stores exactly,
and rasterising them at pixel centres gives every pixel back.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fixer_testing import PLUGIN, detection_mask, write_scenes_dataset

from fixer_core.polygons import rasterize_polygon, region_outlines
from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
from fiftyone.operators.executor import ExecutionError  # noqa: E402

GT = "ground_truth"
REVIEW = {"confirmed": "fixer:confirmed", "rejected": "fixer:rejected"}


def _hashes(paths):
    return {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def run_operator(name, collection, **params):
    """Runs a FIXER operator on a dataset or view through FiftyOne."""
    key = "dataset" if isinstance(collection, fo.Dataset) else "view"
    return foo.execute_operator(
        f"{PLUGIN}/{name}", {key: collection, "params": params}
    )


def _export(collection, path, **params):
    return run_operator(
        "export_cvat_archive",
        collection,
        gt_field=GT,
        archive_path=str(path),
        **params,
    )


def _import(dataset, path, **params):
    return run_operator(
        "import_cvat_archive",
        dataset,
        gt_field=GT,
        archive_path=str(path),
        **params,
    )


@pytest.fixture(scope="module")
def found(fixer_plugin, tmp_path_factory):
    """Six scenes with masks on disk and a FIXER run "fixer"."""
    root = tmp_path_factory.mktemp("archive")
    dataset = fo.Dataset(f"archive-{uuid.uuid4().hex[:10]}")
    try:
        scenes = make_scenes(6, seed=0)
        write_scenes_dataset(dataset, scenes, root)
        result = foo.execute_operator(
            f"{PLUGIN}/find_label_errors",
            dict(
                dataset=dataset,
                params=dict(
                    gt_field=GT, probs_field="probs_path", **SIMULATED_MODEL
                ),
            ),
        )
        assert result.error is None, result.error
        yield SimpleNamespace(
            dataset=dataset, scenes=scenes, root=root, names=scenes.class_names
        )
    finally:
        dataset.delete()


@pytest.fixture(scope="module")
def archive(found):
    path = found.root / "task.zip"
    result = _export(found.dataset, path, run_key="fixer")
    assert result.error is None, result.error
    extracted = found.root / "extracted"
    with zipfile.ZipFile(path) as z:
        z.extractall(extracted)
    return SimpleNamespace(path=path, dir=extracted, counts=result.result)


def test_archive_holds_images_named_by_sample_xml_and_label_spec(
    found, archive
):
    ids = found.dataset.values("id")
    names = sorted(os.listdir(archive.dir / "images"))
    assert names == sorted(f"{i}.jpg" for i in ids)
    assert (archive.dir / "annotations.xml").is_file()
    assert (archive.dir / "cvat_labels.json").is_file()
    num_patches = sum(
        len(d.detections) for d in found.dataset.values("fixer_patches")
    )
    assert archive.counts["samples"] == len(ids)
    spec = json.loads((archive.dir / "cvat_labels.json").read_text())
    by_name = {label["name"]: label for label in spec}
    assert set(by_name) == {*found.names, "void", "fixer_patch"}
    review = by_name["fixer_patch"]["attributes"][-1]
    assert review["name"] == "review" and review["mutable"]
    assert review["values"] == ["unreviewed", "confirmed", "rejected"]
    assert archive.counts["patches"] == num_patches > 0


def test_fiftyone_importer_reads_polygons_and_patch_attributes(
    found, archive, dataset_factory
):
    imported = dataset_factory("imported")
    imported.add_dir(
        dataset_dir=str(archive.dir),
        dataset_type=fo.types.CVATImageDataset,
        data_path="images",
        labels_path="annotations.xml",
    )
    assert len(imported) == len(found.dataset)
    patches = {
        d.id: d
        for dets in found.dataset.values("fixer_patches")
        for d in dets.detections
    }
    seen = set()
    num_gt = 0
    for sample in imported:
        for poly in sample.polylines.polylines:
            assert poly.closed and poly.filled
            if poly.label != "fixer_patch":
                assert poly.label in (*found.names, "void")
                num_gt += 1
                continue
            det = patches[poly.patch_id.removeprefix("patch-")]
            seen.add(det.id)
            assert poly.suggested_label == det.suggested_label
            assert poly.given_label == det.given_label
            assert poly.error_type == det.error_type
            assert getattr(poly, "issue", None) == det.issue
            assert poly.score == pytest.approx(det.confidence, abs=1e-4)
            assert poly.review == "unreviewed"
    assert seen == set(patches)
    assert num_gt == archive.counts["polygons"]


def test_round_trip_is_pixel_identical_and_gt_untouched(found, archive):
    gt_paths = found.dataset.values(f"{GT}.mask_path")
    before = _hashes(gt_paths)
    result = _import(found.dataset, archive.path, dest_field="gt_roundtrip")
    assert result.error is None, result.error
    assert result.result["samples"] == len(found.dataset)
    assert result.result["unmatched_images"] == 0
    for sample, label in zip(
        found.dataset.iter_samples(), found.scenes.labels, strict=True
    ):
        seg = sample.gt_roundtrip
        assert seg.mask_path not in gt_paths
        np.testing.assert_array_equal(seg.get_mask(), label)
    assert _hashes(gt_paths) == before


def _hole_free_patches(dataset, shape, count):
    """Patches whose outline encloses exactly their own pixels."""
    out = []
    for sample in dataset.iter_samples():
        for det in sample.fixer_patches.detections:
            pixels = detection_mask(det, shape)
            outlines = region_outlines(pixels)
            if len(outlines) == 1 and np.array_equal(
                rasterize_polygon(outlines[0], shape), pixels
            ):
                out.append((sample.id, det, outlines[0], pixels))
            if len(out) == count:
                return out
    raise AssertionError("not enough hole-free patches")


def test_edited_archive_comes_back_with_edits_and_review_marks(found, archive):
    shape = found.scenes.labels.shape[1:]
    (sid, fixed, outline, pixels), (_, kept, _, _), (_, dropped, _, _) = (
        _hole_free_patches(found.dataset, shape, 3)
    )
    xml = (archive.dir / "annotations.xml").read_text()
    # The annotator confirms one patch, rejects one, and repaints the first
    # with its suggested class
    for det, verdict in ((kept, "confirmed"), (dropped, "rejected")):
        xml = _set_review(xml, det.id, verdict)
    points = ";".join(f"{x},{y}" for x, y in outline)
    xml = _add_polygon(xml, sid, fixed.suggested_label, points)
    edited = found.root / "edited.zip"
    with zipfile.ZipFile(edited, "w") as z:
        z.writestr("annotations.xml", xml)
    result = _import(found.dataset, edited, dest_field="gt_edited")
    assert result.error is None, result.error
    assert result.result["confirmed"] == 1
    assert result.result["rejected"] == 1
    assert result.result["unmatched"] == 0
    for sample, label in zip(
        found.dataset.iter_samples(), found.scenes.labels, strict=True
    ):
        expected = label.copy()
        if sample.id == sid:
            expected[pixels] = found.names.index(fixed.suggested_label)
        np.testing.assert_array_equal(sample.gt_edited.get_mask(), expected)
        for det in sample.fixer_patches.detections:
            want = (
                [REVIEW["confirmed"]]
                if det.id == kept.id
                else [REVIEW["rejected"]]
                if det.id == dropped.id
                else []
            )
            assert det.tags == want


def _set_review(xml, patch_id, verdict):
    ref = f'<attribute name="patch_id">patch-{patch_id}</attribute>'
    start = xml.rindex("<polygon", 0, xml.index(ref))
    end = xml.index("</polygon>", start)
    block = xml[start:end]
    assert block.count("unreviewed") == 1
    return xml[:start] + block.replace("unreviewed", verdict) + xml[end:]


def _add_polygon(xml, sample_id, label, points):
    start = xml.index(f'name="{sample_id}.jpg"')
    end = xml.index("</image>", start)
    polygon = f'<polygon label="{label}" points="{points}" occluded="0"/>\n'
    return xml[:end] + polygon + xml[end:]


def _delete_first_region(xml, sample_id):
    """Removes the first ground-truth polygon of a sample's image; returns
    the XML and the polygon's ``(P, 2)`` points."""
    image = xml.index(f'name="{sample_id}.jpg"')
    start = xml.index("<polygon", image)
    while 'label="fixer_patch"' in xml[start : xml.index(">", start)]:
        start = xml.index("<polygon", start + 1)
    end = xml.index("</polygon>", start) + len("</polygon>")
    tag = xml[start : xml.index(">", start)]
    points = tag.split('points="', 1)[1].split('"', 1)[0]
    outline = np.array(
        [[float(v) for v in p.split(",")] for p in points.split(";")]
    )
    return xml[:start] + xml[end:], outline


@pytest.mark.parametrize("fill_value", [None, 7])
def test_pixels_of_a_deleted_region_keep_the_ground_truth_or_fill(
    found, archive, fill_value
):
    sample = found.dataset.first()
    xml = (archive.dir / "annotations.xml").read_text()
    xml, outline = _delete_first_region(xml, sample.id)
    edited = found.root / f"deleted-{fill_value}.zip"
    with zipfile.ZipFile(edited, "w") as z:
        z.writestr("annotations.xml", xml)
    params = {} if fill_value is None else {"fill_value": fill_value}
    dest = f"gt_deleted_{fill_value}"
    result = _import(found.dataset, edited, dest_field=dest, **params)
    assert result.error is None, result.error
    sample.reload()
    gt, imported = sample[GT].get_mask(), sample[dest].get_mask()
    deleted = rasterize_polygon(outline, gt.shape)
    if fill_value is None:
        # Nothing is lost: uncovered pixels keep their label
        np.testing.assert_array_equal(imported, gt)
    else:
        changed = imported != gt
        assert changed.any() and not (changed & ~deleted).any()
        assert (imported[changed] == fill_value).all()


def test_inline_masks_and_xml_special_class_names(
    fixer_plugin, dataset_factory, tmp_path
):
    scenes = make_scenes(2, seed=1)
    dataset = dataset_factory("inline")
    write_scenes_dataset(dataset, scenes, tmp_path, inline_masks=True)
    targets = dict(dataset.default_mask_targets)
    targets[0] = 'wall & "door"'
    targets[1] = "<floor>"
    dataset.mask_targets = {GT: targets}
    dataset.save()
    path = tmp_path / "inline.zip"
    # The Python entry points
    export = fixer_plugin.get_operator("export_cvat_archive")
    assert export(dataset, GT, str(path)).error is None
    result = fixer_plugin.get_operator("import_cvat_archive")(
        dataset, str(path), GT
    )
    assert result.error is None, result.error
    assert result.result["dest_field"] == "ground_truth_cvat"
    for sample, label in zip(
        dataset.iter_samples(), scenes.labels, strict=True
    ):
        assert sample.ground_truth_cvat.mask_path is None
        np.testing.assert_array_equal(sample.ground_truth_cvat.mask, label)
    assert dataset.mask_targets["ground_truth_cvat"] == targets


def test_import_refuses_the_ground_truth_as_destination(found, archive):
    with pytest.raises(ExecutionError, match="never written over the ground"):
        _import(found.dataset, archive.path, dest_field=GT)


def test_import_refuses_archives_of_other_samples(
    found, dataset_factory, tmp_path
):
    other = dataset_factory("other")
    write_scenes_dataset(other, make_scenes(1, seed=3), tmp_path)
    with pytest.raises(ExecutionError, match="No image of"):
        _import(other, found.root / "task.zip")


def test_import_refuses_unknown_class_names(found, archive):
    xml = (archive.dir / "annotations.xml").read_text()
    sid = found.dataset.first().id
    xml = _add_polygon(xml, sid, "unicorn", "0,0;4,0;4,4")
    path = found.root / "unknown.xml"
    path.write_text(xml)
    with pytest.raises(ExecutionError, match="Unknown class 'unicorn'"):
        _import(found.dataset, path, dest_field="gt_unknown")
    assert not found.dataset.has_sample_field("gt_unknown")


def test_review_marks_from_cvat_feed_the_precision_estimate(
    fixer_plugin, dataset_factory, tmp_path
):
    dataset = dataset_factory("review")
    write_scenes_dataset(dataset, make_scenes(6, seed=2), tmp_path)
    run_operator(
        "find_label_errors",
        dataset,
        gt_field=GT,
        probs_field="probs_path",
        **SIMULATED_MODEL,
    )
    run_operator(
        "draw_review_sample",
        dataset,
        run_key="fixer",
        per_class=2,
        stratify_by="given",
        seed=0,
    )
    sampled = dataset.filter_labels(
        "fixer_patches", fo.ViewField("tags").contains("fixer:review")
    ).values("fixer_patches.detections.id", unwind=True)
    assert sampled
    # The review sample (a patches view) goes to CVAT with only its patches
    path = tmp_path / "review.zip"
    view = dataset.load_saved_view("fixer-review")
    counts = _export(view, path, run_key="fixer").result
    assert counts["patches"] == len(sampled)
    with zipfile.ZipFile(path) as z:
        xml = z.read("annotations.xml").decode()
    confirmed = sampled[::2]
    for patch_id in sampled:
        verdict = "confirmed" if patch_id in confirmed else "rejected"
        xml = _set_review(xml, patch_id, verdict)
    edited = tmp_path / "reviewed.xml"
    edited.write_text(xml)
    result = _import(dataset, edited).result
    assert result["confirmed"] == len(confirmed)
    assert result["rejected"] == len(sampled) - len(confirmed)
    estimate = run_operator(
        "estimate_flag_precision", dataset, run_key="fixer"
    ).result
    assert estimate["reviewed"] == len(sampled)
    assert estimate["missing"] == 0 and estimate["conflicting"] == 0


def test_import_refuses_fixer_outputs_as_destination(found, archive):
    with pytest.raises(ExecutionError, match="FIXER's own outputs"):
        _import(found.dataset, archive.path, dest_field="fixer_corrected")


def _rle(bitmap):
    """CVAT's ``<mask>`` run lengths: row by row, background first."""
    flat = bitmap.ravel().astype(int)
    edges = np.flatnonzero(np.diff(np.r_[0, flat, 1 - flat[-1]]))
    return ", ".join(map(str, np.diff(np.r_[0, edges])))


def test_brush_masks_are_painted_and_boxes_counted(found, archive):
    sid = found.dataset.first().id
    brush = np.zeros((4, 5), dtype=bool)
    brush[1:3, 1:4] = True
    brush[0, 0] = True
    xml = (archive.dir / "annotations.xml").read_text()
    start = xml.index(f'name="{sid}.jpg"')
    end = xml.index("</image>", start)
    shapes = (
        f'<mask label="lamp" source="manual" occluded="0" rle="{_rle(brush)}"'
        ' left="10" top="20" width="5" height="4" z_order="0"></mask>\n'
        '<box label="lamp" xtl="1" ytl="1" xbr="5" ybr="5" occluded="0"/>\n'
    )
    xml = xml[:end] + shapes + xml[end:]
    path = found.root / "brush.xml"
    path.write_text(xml)
    result = _import(found.dataset, path, dest_field="gt_brush").result
    assert result["skipped_shapes"] == 1
    lamp = found.names.index("lamp")
    for sample, label in zip(
        found.dataset.iter_samples(), found.scenes.labels, strict=True
    ):
        expected = label.copy()
        if sample.id == sid:
            expected[20:24, 10:15][brush] = lamp
        np.testing.assert_array_equal(sample.gt_brush.get_mask(), expected)
