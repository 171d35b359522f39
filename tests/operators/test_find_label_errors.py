"""The FIXER operators end to end on real FiftyOne datasets."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fixer_testing import PLUGIN, detection_mask, write_scenes_dataset

from fixer_core import ERROR_TYPES, FinderConfig
from fixer_core.synthetic import IGNORE_VALUE, SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
from fiftyone import ViewField as F  # noqa: E402
from fiftyone.operators.delegated import (  # noqa: E402
    DelegatedOperationService,
)
from fiftyone.operators.executor import (  # noqa: E402
    ExecutionError,
    ExecutionRunState,
)

FIND = f"{PLUGIN}/find_label_errors"
GT = "ground_truth"
PROBS = "probs_path"
NUM_IMAGES = 12
PLANTED_ISSUES = {
    "general": "table labelled as chair",
    "ambiguous": "floor vs rug ambiguity",
    "false_negative": "cushion missed in couch",
}


# -- helpers -----------------------------------------------------------------


def _find(collection, *, delegate=False, **params):
    """Runs find_label_errors on a dataset or a view through FiftyOne."""
    key = "dataset" if isinstance(collection, fo.Dataset) else "view"
    params = {
        "gt_field": GT,
        "probs_field": PROBS,
        **SIMULATED_MODEL,
        **params,
    }
    return foo.execute_operator(
        FIND,
        {key: collection, "params": params},
        request_delegation=delegate,
    )


def _execute(name, dataset, **params):
    return foo.execute_operator(
        f"{PLUGIN}/{name}", dict(dataset=dataset, params=params)
    )


def _fields(run_key):
    return [
        f"{run_key}_{s}"
        for s in ("patches", "error_score", "corrected", "error_map")
    ]


def _views(run_key):
    return [
        f"{run_key}-{s}"
        for s in ("general", "ambiguous", "false-negative", "patches")
    ]


def _make(dataset_factory, root, num_images=NUM_IMAGES, **kwargs):
    scenes = make_scenes(num_images, seed=0)
    dataset = dataset_factory("find")
    write_scenes_dataset(dataset, scenes, Path(root), **kwargs)
    return dataset, scenes


def _gt_files(dataset):
    return {
        p: hashlib.sha256(Path(p).read_bytes()).hexdigest()
        for p in dataset.values(f"{GT}.mask_path")
    }


def _patch_counts(dataset, run_key="fixer"):
    return [
        None if d is None else len(d.detections)
        for d in dataset.values(f"{run_key}_patches")
    ]


def _expected_correction(label, detections, class_names):
    """The ground truth with the suggestions of the patches at least
    ``correct_min_probability`` (of the simulated model's config) likely to
    be errors applied."""
    least = FinderConfig(**SIMULATED_MODEL).correct_min_probability
    expected = label.copy()
    for det in detections:
        if det.error_probability < least:
            continue
        expected[detection_mask(det, label.shape)] = class_names.index(
            det.suggested_label
        )
    return expected


# -- one shared run ----------------------------------------------------------


@pytest.fixture(scope="module")
def found(fixer_plugin, tmp_path_factory):
    """A 12-scene dataset (masks on disk) after one default run."""
    scenes = make_scenes(NUM_IMAGES, seed=0)
    dataset = fo.Dataset(f"find-shared-{uuid.uuid4().hex[:10]}")
    try:
        ids = write_scenes_dataset(
            dataset, scenes, tmp_path_factory.mktemp("found")
        )
        before = _gt_files(dataset)
        result = _find(dataset)
        yield SimpleNamespace(
            dataset=dataset,
            scenes=scenes,
            ids=ids,
            before=before,
            result=result,
            samples=list(dataset.iter_samples()),
            names=list(scenes.class_names),
        )
    finally:
        dataset.delete()


def test_immediate_run_succeeds_and_writes_its_fields(found):
    assert found.result.error is None
    schema = found.dataset.get_field_schema()
    assert isinstance(schema["fixer_error_score"], fo.FloatField)
    assert schema["fixer_patches"].document_type is fo.Detections
    assert schema["fixer_corrected"].document_type is fo.Segmentation
    assert [s.id for s in found.samples] == found.ids


# The patches' custom attributes and their declared field types
DECLARED_ATTRIBUTES = {
    "error_probability": fo.FloatField,
    "cause": fo.StringField,
    "repeat": fo.BooleanField,
    "run": fo.StringField,
    "run_length": fo.IntField,
    "given_label": fo.StringField,
    "suggested_label": fo.StringField,
    "error_type": fo.StringField,
    "issue": fo.StringField,
    "area": fo.IntField,
    "coverage": fo.FloatField,
    "top_classes": fo.ListField,
    "top_probs": fo.ListField,
    "given_prob": fo.FloatField,
    "given_threshold": fo.FloatField,
    "rule": fo.StringField,
    "vouched": fo.FloatField,
    "contradicted": fo.FloatField,
    "relabelled": fo.FloatField,
    "same_confusion": fo.IntField,
    "reason": fo.StringField,
}


def _assert_attributes_declared(dataset, patches="fixer_patches"):
    schema = dataset.get_field_schema(flat=True)
    prefix = f"{patches}.detections."
    for name, ftype in DECLARED_ATTRIBUTES.items():
        assert type(schema.get(prefix + name)) is ftype, name
    assert type(schema[prefix + "top_classes"].field) is fo.StringField
    assert type(schema[prefix + "top_probs"].field) is fo.FloatField
    # every attribute a stored patch holds is in the schema
    for sample in dataset.exists(patches).select_fields(patches):
        for det in sample[patches].detections:
            for key in det.to_dict():
                if key not in ("_id", "_cls"):
                    assert prefix + key in schema, key


def test_patch_attributes_are_declared_and_filter(found):
    dataset = found.dataset
    _assert_attributes_declared(dataset)
    path = "fixer_patches.detections.suggested_label"
    counts = dataset.count_values(path)
    label = max((c for c in counts if c), key=counts.get)
    view = dataset.filter_labels(
        "fixer_patches", F("suggested_label") == label
    )
    assert view.count("fixer_patches.detections") == counts[label]
    assert view.distinct(path) == [label]
    # a numeric attribute filters too, as the App's sidebar range does
    low, high = dataset.bounds("fixer_patches.detections.error_probability")
    assert 0 <= low <= high <= 1
    likely = dataset.filter_labels(
        "fixer_patches", F("error_probability") >= high
    )
    assert likely.count("fixer_patches.detections") >= 1
    assert (
        min(
            likely.values(
                "fixer_patches.detections.error_probability", unwind=True
            )
        )
        >= high
    )


def test_patches_are_valid_detections(found):
    shape = found.scenes.labels.shape[1:]
    height, width = shape
    total = 0
    for sample, label in zip(found.samples, found.scenes.labels, strict=True):
        assert isinstance(sample.fixer_patches, fo.Detections)
        for det in sample.fixer_patches.detections:
            total += 1
            assert det.label == det.suggested_label
            assert det.given_label in found.names
            assert det.suggested_label in found.names
            assert det.given_label != det.suggested_label
            assert det.error_type in ERROR_TYPES
            assert det.issue is None or isinstance(det.issue, str)
            assert 0.0 <= det.confidence <= 1.0
            x, y, w, h = det.bounding_box
            assert min(x, y) >= 0 and w > 0 and h > 0
            assert x + w <= 1 + 1e-9 and y + h <= 1 + 1e-9
            assert det.mask.dtype == bool
            assert det.mask.shape == (round(h * height), round(w * width))
            assert det.mask.any()
            # Every pixel of a patch carries its given label in the GT
            pixels = label[detection_mask(det, shape)]
            given = found.names.index(det.given_label)
            assert (pixels == given).all()
    assert total > 0


def test_recurring_planted_patterns_are_named_issues(found):
    summary = found.dataset.load_run_results("fixer").summary
    assert {i["name"] for i in summary["issues"]} >= set(
        PLANTED_ISSUES.values()
    )
    names = {}
    for issue in summary["issues"]:
        g = found.names[issue["given_label"]]
        s = found.names[issue["suggested_label"]]
        names[(g, s, issue["error_type"])] = issue["name"]
        if issue["error_type"] == "ambiguous":
            names[(s, g, issue["error_type"])] = issue["name"]
    seen = set()
    for sample in found.samples:
        for det in sample.fixer_patches.detections:
            key = (det.given_label, det.suggested_label, det.error_type)
            assert det.issue == names.get(key)
            seen.add(det.issue)
    assert seen >= set(PLANTED_ISSUES.values())


def test_error_score_ranks_planted_above_clean(found):
    planted = {e.image_index for e in found.scenes.planted}
    scores = [s.fixer_error_score for s in found.samples]
    for sample, score in zip(found.samples, scores, strict=True):
        assert isinstance(score, float)
        assert 0.0 <= score <= 1.0
        # the expected share of the image's pixels whose label is wrong
        wrong = sum(
            d.error_probability * d.area
            for d in sample.fixer_patches.detections
        )
        assert score == pytest.approx(wrong / found.scenes.labels[0].size)
    dirty = [scores[i] for i in planted]
    clean = [s for i, s in enumerate(scores) if i not in planted]
    assert clean and dirty
    assert min(dirty) > max(clean)


def test_planted_errors_are_recovered_with_the_true_class(found):
    shape = found.scenes.labels.shape[1:]
    hits = {t: [] for t in ERROR_TYPES}
    for error in found.scenes.planted:
        sample = found.samples[error.image_index]
        true_name = found.names[error.true_label]
        covered = np.zeros(shape, dtype=bool)
        for det in sample.fixer_patches.detections:
            if det.suggested_label == true_name:
                covered |= detection_mask(det, shape)
        share = (covered & error.mask).sum() / error.mask.sum()
        hits[error.error_type].append(share >= 0.5)
    for error_type, found_ in hits.items():
        assert found_, error_type
        assert np.mean(found_) >= 0.8, (error_type, found_)


def test_corrected_masks_are_pngs_equal_to_gt_but_in_patches(found):
    corrected_dir = found.dataset.get_run_info("fixer").config.corrected_dir
    assert os.path.isdir(corrected_dir)
    differs_before = differs_after = 0
    for sample, label, clean in zip(
        found.samples,
        found.scenes.labels,
        found.scenes.clean_labels,
        strict=True,
    ):
        seg = sample.fixer_corrected
        assert seg.mask is None
        assert seg.mask_path.endswith(".png")
        assert os.path.dirname(seg.mask_path) == corrected_dir
        assert os.path.isfile(seg.mask_path)
        corrected = seg.get_mask()
        expected = _expected_correction(
            label, sample.fixer_patches.detections, found.names
        )
        np.testing.assert_array_equal(corrected, expected)
        assert (corrected[label == IGNORE_VALUE] == IGNORE_VALUE).all()
        differs_before += int((label != clean).sum())
        differs_after += int((corrected != clean).sum())
    assert len(os.listdir(corrected_dir)) == NUM_IMAGES
    # The confident corrections undo a good part of the planted errors
    assert differs_after < 0.8 * differs_before


def test_ground_truth_files_are_unchanged(found):
    assert _gt_files(found.dataset) == found.before
    for sample, label in zip(found.samples, found.scenes.labels, strict=True):
        assert sample[GT].mask is None
        np.testing.assert_array_equal(sample[GT].get_mask(), label)


def test_type_views_hold_only_their_type_sorted_by_best_patch(found):
    dataset = found.dataset
    for error_type, name in zip(ERROR_TYPES, _views("fixer")[:3], strict=True):
        view = dataset.load_saved_view(name)
        expected_ids = {
            s.id
            for s in found.samples
            if any(
                d.error_type == error_type for d in s.fixer_patches.detections
            )
        }
        assert expected_ids, error_type
        assert set(view.values("id")) == expected_ids
        best = []
        for sample in view:
            types = {d.error_type for d in sample.fixer_patches.detections}
            assert types == {error_type}
            best.append(
                max(d.confidence for d in sample.fixer_patches.detections)
            )
        assert best == sorted(best, reverse=True)


def test_patches_view_lists_every_patch_by_confidence(found):
    view = found.dataset.load_saved_view("fixer-patches")
    assert view._is_patches
    total = sum(len(s.fixer_patches.detections) for s in found.samples)
    assert len(view) == total
    confidences = view.values("fixer_patches.confidence")
    assert confidences == sorted(confidences, reverse=True)


def test_run_record_describes_the_run(found):
    dataset = found.dataset
    assert dataset.list_runs() == ["fixer"]
    config = dataset.get_run_info("fixer").config
    assert config.method == "fixer.find_label_errors"
    assert config.gt_field == GT
    assert config.probs_field == PROBS
    assert config.fields == _fields("fixer")
    assert config.views == _views("fixer")
    assert config.class_names == found.names
    assert sorted(dataset.list_saved_views()) == sorted(_views("fixer"))
    summary = dataset.load_run_results("fixer").summary
    assert summary["num_images"] == NUM_IMAGES
    assert summary["num_pixels"] > 0
    by_type = {t: 0 for t in ERROR_TYPES}
    pixels = {t: 0 for t in ERROR_TYPES}
    for sample in found.samples:
        for det in sample.fixer_patches.detections:
            by_type[det.error_type] += 1
            pixels[det.error_type] += int(det.mask.sum())
    for error_type in ERROR_TYPES:
        totals = summary["totals"][error_type]
        assert totals["patches"] == by_type[error_type]
        assert totals["pixels"] == pixels[error_type]
    assert summary["flagged_pixels"] == sum(pixels.values())
    assert 0.0 <= summary["issue_share"] <= 1.0
    assert summary["weakly_predicted"] == {}  # the model sees every class
    assert summary["framed"] == 0  # generated scenes, not a video


def test_classes_the_model_barely_predicts_are_named(
    fixer_plugin, dataset_factory, tmp_path
):
    scenes = make_scenes(NUM_IMAGES, seed=0)
    lamp = scenes.class_names.index("lamp")
    probs = scenes.pred_probs.copy()
    probs[:, lamp] *= 0.02
    probs /= probs.sum(axis=1, keepdims=True)
    dataset = dataset_factory("weak")
    write_scenes_dataset(
        dataset, dataclasses.replace(scenes, pred_probs=probs), tmp_path
    )
    _find(dataset)
    summary = dataset.load_run_results("fixer").summary
    assert list(summary["weakly_predicted"]) == ["lamp"]
    info = _execute("get_label_error_run_info", dataset, run_key="fixer")
    assert info.result["weakly_predicted"] == summary["weakly_predicted"]
    report = fixer_plugin.get_operator("label_quality_report")(
        dataset, "fixer", output_dir=str(tmp_path / "report")
    ).result
    markdown = Path(report["files"]["markdown"]).read_text()
    assert "The model barely predicts lamp (" in markdown


def test_get_run_info_returns_counts_and_issues(found):
    result = _execute(
        "get_label_error_run_info", found.dataset, run_key="fixer"
    ).result
    summary = found.dataset.load_run_results("fixer").summary
    assert result["run_key"] == "fixer"
    assert isinstance(result["timestamp"], str) and result["timestamp"]
    assert result["totals"] == summary["totals"]
    assert result["issue_share"] == summary["issue_share"]
    assert result["weakly_predicted"] == {}
    assert result["config"]["gt_field"] == GT
    assert result["config"]["method"] == "fixer.find_label_errors"
    keys = ("name", "num_patches", "num_images", "num_pixels")
    assert result["issues"] == [
        {k: i[k] for k in keys} for i in summary["issues"]
    ]
    assert {i["name"] for i in result["issues"]} >= set(
        PLANTED_ISSUES.values()
    )


@pytest.mark.parametrize("error_type", ["all", *ERROR_TYPES])
def test_load_label_error_view_sets_the_saved_view(found, error_type):
    result = _execute(
        "load_label_error_view",
        found.dataset,
        run_key="fixer",
        error_type=error_type,
    )
    suffix = "patches" if error_type == "all" else error_type
    name = f"fixer-{suffix.replace('_', '-')}"
    assert result.error is None
    assert result.result == {"view": name}
    requests = [(r.operator_uri, r.params) for r in result.executor._requests]
    assert ("set_view", {"name": name}) in requests


def test_load_label_error_view_of_unknown_run_fails(found):
    with pytest.raises(ExecutionError):
        _execute(
            "load_label_error_view",
            found.dataset,
            run_key="nope",
            error_type="all",
        )


# -- runs on their own datasets ---------------------------------------------


def test_load_label_error_view_of_missing_view_fails(
    dataset_factory, fixer_plugin, tmp_path
):
    dataset, _ = _make(dataset_factory, tmp_path, num_images=4)
    _find(dataset)
    dataset.delete_saved_view("fixer-general")
    with pytest.raises(ExecutionError, match="does not exist"):
        _execute(
            "load_label_error_view",
            dataset,
            run_key="fixer",
            error_type="general",
        )


def test_inline_masks_give_inline_corrections(
    dataset_factory, fixer_plugin, tmp_path
):
    dataset, scenes = _make(dataset_factory, tmp_path, inline_masks=True)
    _find(dataset)
    assert dataset.get_run_info("fixer").config.corrected_dir is None
    names = list(scenes.class_names)
    patched = 0
    for sample, label in zip(dataset, scenes.labels, strict=True):
        # The ground truth is untouched
        np.testing.assert_array_equal(sample[GT].mask, label)
        assert sample[GT].mask_path is None
        seg = sample.fixer_corrected
        assert seg.mask_path is None
        assert seg.mask is not None
        detections = sample.fixer_patches.detections
        patched += len(detections)
        np.testing.assert_array_equal(
            seg.mask, _expected_correction(label, detections, names)
        )
    assert patched > 0


def test_delegated_run_completes_with_the_same_outputs(
    dataset_factory, fixer_plugin, tmp_path, found
):
    dataset, _ = _make(dataset_factory, tmp_path)
    service = DelegatedOperationService()
    try:
        queued = _find(dataset, delegate=True)
        assert queued.delegated
        assert not dataset.has_sample_field("fixer_patches")
        results = service.execute_queued_operations(dataset_name=dataset.name)
        assert [r.error for r in results] == [None]
        operation = service.get(queued.result["id"])
        assert operation.run_state == ExecutionRunState.COMPLETED
        assert operation.status.progress == pytest.approx(1.0)
        listed = service.list_operations(dataset_name=dataset.name)
        assert [o.run_state for o in listed] == [ExecutionRunState.COMPLETED]
        dataset.reload()
        assert dataset.list_runs() == ["fixer"]
        assert sorted(dataset.list_saved_views()) == sorted(_views("fixer"))
        assert _patch_counts(dataset) == _patch_counts(found.dataset)
        assert dataset.values("fixer_error_score") == pytest.approx(
            found.dataset.values("fixer_error_score")
        )
    finally:
        service.delete_for_dataset(dataset._doc.id)


@pytest.mark.parametrize(
    "make_view",
    [
        lambda ds: ds.take(5, seed=1),
        lambda ds: ds.match(F("filepath").re_match(r".*000[2-6]\.jpg$")),
    ],
    ids=["take", "match"],
)
def test_run_on_a_view_only_touches_its_samples(
    dataset_factory, fixer_plugin, tmp_path, make_view
):
    dataset, _ = _make(dataset_factory, tmp_path)
    view = make_view(dataset)
    inside = set(view.values("id"))
    assert len(inside) == 5
    _find(view)
    for sample in dataset:
        values = [sample[f] for f in _fields("fixer")]
        if sample.id in inside:
            assert isinstance(values[0], fo.Detections)
            assert isinstance(values[1], float)
            assert isinstance(values[2], fo.Segmentation)
            assert isinstance(values[3], fo.Heatmap)
        else:
            assert values == [None, None, None, None]
    summary = dataset.load_run_results("fixer").summary
    assert summary["num_images"] == 5
    patches = dataset.load_saved_view("fixer-patches")
    assert set(patches.values("sample_id")) <= inside
    corrected_dir = dataset.get_run_info("fixer").config.corrected_dir
    assert len(os.listdir(corrected_dir)) == 5


def test_custom_run_key_coexists_with_the_default(
    dataset_factory, fixer_plugin, tmp_path
):
    dataset, _ = _make(dataset_factory, tmp_path)
    _find(dataset)
    scores = dataset.values("fixer_error_score")
    _find(dataset, run_key="second")
    assert sorted(dataset.list_runs()) == ["fixer", "second"]
    for field in _fields("fixer") + _fields("second"):
        assert dataset.has_sample_field(field), field
    assert sorted(dataset.list_saved_views()) == sorted(
        _views("fixer") + _views("second")
    )
    assert dataset.values("fixer_error_score") == scores
    assert _patch_counts(dataset, "second") == _patch_counts(dataset)
    dirs = {
        k: dataset.get_run_info(k).config.corrected_dir
        for k in ("fixer", "second")
    }
    assert dirs["fixer"] != dirs["second"]
    assert all(len(os.listdir(d)) == NUM_IMAGES for d in dirs.values())
    result = _execute(
        "load_label_error_view", dataset, run_key="second", error_type="all"
    )
    assert result.result == {"view": "second-patches"}


def test_run_keys_differing_in_case_keep_their_own_views(
    dataset_factory, fixer_plugin, tmp_path
):
    # Saved view names are unique up to their slug (case-insensitive), so
    # "Fixer-general" takes the slot of "fixer-general"
    dataset, _ = _make(dataset_factory, tmp_path, num_images=6)
    _find(dataset)
    try:
        _find(dataset, run_key="Fixer")
    except ExecutionError:
        assert "Fixer" not in dataset.list_runs()
    for name in _views("fixer"):
        assert dataset.has_saved_view(name), name
    if "Fixer" in dataset.list_runs():
        for name in _views("Fixer"):
            assert dataset.has_saved_view(name), name


def test_rerun_replaces_outputs_cleanly(
    dataset_factory, fixer_plugin, tmp_path
):
    dataset, _ = _make(dataset_factory, tmp_path)
    _find(dataset)
    first = _patch_counts(dataset)
    scores = dataset.values("fixer_error_score")
    _find(dataset)
    assert dataset.list_runs() == ["fixer"]
    assert sorted(dataset.list_saved_views()) == sorted(_views("fixer"))
    assert _patch_counts(dataset) == first
    _assert_attributes_declared(dataset)  # declared again, without error
    assert dataset.values("fixer_error_score") == pytest.approx(scores)
    assert len(dataset.load_saved_view("fixer-patches")) == sum(first)
    corrected_dir = dataset.get_run_info("fixer").config.corrected_dir
    assert len(os.listdir(corrected_dir)) == NUM_IMAGES

    # A smaller target: samples outside it lose their old outputs
    view = dataset.take(3, seed=2)
    inside = set(view.values("id"))
    _find(view)
    assert dataset.list_runs() == ["fixer"]
    assert sorted(dataset.list_saved_views()) == sorted(_views("fixer"))
    ids = dataset.values("id")
    counts = dict(zip(ids, _patch_counts(dataset), strict=True))
    for sample_id, count in counts.items():
        assert (count is not None) == (sample_id in inside)
    assert dataset.count_values("fixer_error_score")[None] == NUM_IMAGES - 3
    assert len(dataset.load_saved_view("fixer-patches")) == sum(
        c for c in counts.values() if c
    )
    # The rerun wrote a folder of its own and deleted the previous one
    assert not os.path.exists(corrected_dir)
    corrected_dir = dataset.get_run_info("fixer").config.corrected_dir
    assert len(os.listdir(corrected_dir)) == 3
    summary = dataset.load_run_results("fixer").summary
    assert summary["num_images"] == 3


def test_python_entry_points_run_and_delete(
    dataset_factory, fixer_plugin, tmp_path, found
):
    dataset, _ = _make(dataset_factory, tmp_path)
    find = fixer_plugin.get_operator("find_label_errors")
    config = FinderConfig(**SIMULATED_MODEL)
    find(dataset, GT, PROBS, run_key="py", config=config)
    assert dataset.list_runs() == ["py"]
    assert sorted(dataset.list_saved_views()) == sorted(_views("py"))
    assert _patch_counts(dataset, "py") == _patch_counts(found.dataset)
    find(dataset.take(4, seed=0), GT, PROBS, run_key="py_view", config=config)
    assert dataset.load_run_results("py_view").summary["num_images"] == 4
    delete = fixer_plugin.get_operator("delete_label_error_run")
    result = delete(dataset, "py")
    assert result.result == {"run_key": "py", "deleted": True}
    assert dataset.list_runs() == ["py_view"]


def test_delete_run_removes_only_that_run(
    dataset_factory, fixer_plugin, tmp_path
):
    dataset, _ = _make(dataset_factory, tmp_path, num_images=6)
    before = _gt_files(dataset)
    _find(dataset)
    _find(dataset, run_key="second")
    dataset.register_run("other", dataset.init_run(method="x"))
    corrected_dir = dataset.get_run_info("fixer").config.corrected_dir
    second_dir = dataset.get_run_info("second").config.corrected_dir
    second_counts = _patch_counts(dataset, "second")

    result = _execute("delete_label_error_run", dataset, run_key="fixer")
    assert result.result == {"run_key": "fixer", "deleted": True}
    dataset.reload()
    for field in _fields("fixer"):
        assert not dataset.has_sample_field(field), field
    assert sorted(dataset.list_saved_views()) == sorted(_views("second"))
    assert sorted(dataset.list_runs()) == ["other", "second"]
    assert not os.path.exists(corrected_dir)
    # Its patch colour goes too; the other run's stays
    colored = [f["path"] for f in dataset.app_config.color_scheme.fields]
    assert colored == ["second_patches"]

    # The ground truth and the other runs are intact
    assert _gt_files(dataset) == before
    assert dataset.has_sample_field(GT)
    assert _patch_counts(dataset, "second") == second_counts
    assert len(os.listdir(second_dir)) == 6
    assert dataset.get_run_info("other").config.method == "x"
