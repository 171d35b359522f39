"""apply_corrections and undo_corrections on real datasets."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from fixer_testing import PLUGIN, detection_mask, write_scenes_dataset

from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
from fiftyone.operators.executor import ExecutionError  # noqa: E402

GT = "ground_truth"
CONFIRMED = "fixer:confirmed"
NUM_IMAGES = 6


def _run(name, dataset, **params):
    return foo.execute_operator(
        f"{PLUGIN}/{name}", dict(dataset=dataset, params=params)
    )


def _make(dataset_factory, root, **kwargs):
    scenes = make_scenes(NUM_IMAGES, seed=0)
    dataset = dataset_factory("apply")
    write_scenes_dataset(dataset, scenes, Path(root), **kwargs)
    result = _run(
        "find_label_errors",
        dataset,
        gt_field=GT,
        probs_field="probs_path",
        **SIMULATED_MODEL,
    )
    assert result.error is None, result.error
    return dataset, scenes


def _snapshot(dataset):
    """Everything an apply could touch: documents, schema, runs, files,
    and every ground-truth pixel. FiftyOne's own ``last_modified_at``
    bookkeeping stamp is left out: every write moves it."""
    docs = {
        s.id: {k: v for k, v in s.to_dict().items() if k != "last_modified_at"}
        for s in dataset.iter_samples()
    }
    masks = {s.id: s[GT].get_mask() for s in dataset.iter_samples()}
    files = {
        p: hashlib.sha256(Path(p).read_bytes()).hexdigest()
        for p in dataset.values(f"{GT}.mask_path")
        if p
    }
    return (
        docs,
        masks,
        files,
        set(dataset.get_field_schema()),
        set(dataset.list_runs()),
    )


def _assert_same(before, after):
    docs0, masks0, files0, schema0, runs0 = before
    docs1, masks1, files1, schema1, runs1 = after
    assert set(masks1) == set(masks0)
    for sid, mask in masks0.items():
        np.testing.assert_array_equal(masks1[sid], mask)
        assert masks1[sid].dtype == mask.dtype
    assert docs1 == docs0
    assert files1 == files0
    assert schema1 == schema0
    assert runs1 == runs0


def _applied_dir(dataset, apply_key):
    return os.path.join(
        fo.config.default_dataset_dir,
        "fixer",
        str(dataset._doc.id),
        "applied",
        apply_key,
    )


def _expected(dataset, accept):
    """Ground truth with the accepted patches painted, lowest score first."""
    names = list(make_scenes(1, seed=0).class_names)
    out = {}
    for sample in dataset.iter_samples():
        mask = sample[GT].get_mask().copy()
        dets = sorted(
            (d for d in sample.fixer_patches.detections if accept(d)),
            key=lambda d: d.confidence,
        )
        for det in dets:
            mask[detection_mask(det, mask.shape)] = names.index(
                det.suggested_label
            )
        out[sample.id] = mask
    return out


def test_apply_score_suggestions_then_undo_restores_everything(
    fixer_plugin, dataset_factory, tmp_path
):
    dataset, _ = _make(dataset_factory, tmp_path)
    before = _snapshot(dataset)
    originals = dataset.values(f"{GT}.mask_path")
    expected = _expected(dataset, lambda d: d.confidence >= 0.6)
    result = _run(
        "apply_corrections",
        dataset,
        gt_field=GT,
        source="suggestions",
        run_key="fixer",
        selection="score",
        min_score=0.6,
    )
    assert result.error is None, result.error
    changed = 0
    for sample in dataset.iter_samples():
        mask = sample[GT].get_mask()
        np.testing.assert_array_equal(mask, expected[sample.id])
        backup = sample[f"{GT}_backup_fixer_apply"]
        np.testing.assert_array_equal(backup.get_mask(), before[1][sample.id])
        diff = int((mask != before[1][sample.id]).sum())
        records = sample.fixer_applied or []
        if not diff:
            assert records == [] and sample[GT].mask_path in originals
            continue
        changed += 1
        assert sample[GT].mask_path not in originals
        (record,) = records
        assert record["apply_key"] == "fixer_apply"
        assert record["run_key"] == "fixer"
        assert record["source"] == "suggestions"
        assert record["changed_pixels"] == diff == sum(record["patch_pixels"])
        patch_ids = {
            d.id
            for d in sample.fixer_patches.detections
            if d.confidence >= 0.6
        }
        assert set(record["patch_ids"]) <= patch_ids
        x, y, w, h = record["changed_box"]
        rows, cols = np.nonzero(mask != before[1][sample.id])
        assert (x, y, w, h) == (
            cols.min(),
            rows.min(),
            cols.max() - cols.min() + 1,
            rows.max() - rows.min() + 1,
        )
    assert changed > 0
    info = dataset.load_run_results("fixer_apply")
    assert info.changed_samples == changed
    # The original mask files were never written
    assert {
        p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in originals
    } == before[2]

    result = _run("undo_corrections", dataset, apply_key="fixer_apply")
    assert result.result["restored_samples"] == changed
    _assert_same(before, _snapshot(dataset))
    assert not os.path.exists(_applied_dir(dataset, "fixer_apply"))


def test_apply_confirmed_applies_only_confirmed_patches(
    fixer_plugin, dataset_factory, tmp_path
):
    dataset, _ = _make(dataset_factory, tmp_path, inline_masks=True)
    before = _snapshot(dataset)
    ids = dataset.values("fixer_patches.detections.id", unwind=True)[:3]
    dataset.select_labels(ids=ids, fields="fixer_patches").tag_labels(
        CONFIRMED, label_fields="fixer_patches"
    )
    tagged = _snapshot(dataset)
    expected = _expected(dataset, lambda d: d.id in ids)
    _run("apply_corrections", dataset, gt_field=GT, source="suggestions",
         run_key="fixer")  # fmt: skip
    credited = set()
    for sample in dataset.iter_samples():
        assert sample[GT].mask_path is None
        np.testing.assert_array_equal(sample[GT].mask, expected[sample.id])
        for record in sample.fixer_applied or []:
            credited.update(record["patch_ids"])
    assert credited == set(ids)
    _run("undo_corrections", dataset, apply_key="fixer_apply")
    _assert_same(tagged, _snapshot(dataset))
    assert before[1].keys() == tagged[1].keys()


def test_apply_annotations_takes_the_edited_masks(
    fixer_plugin, dataset_factory, tmp_path
):
    dataset, scenes = _make(dataset_factory, tmp_path, inline_masks=True)
    dataset.set_values(
        "edited", [fo.Segmentation(mask=m) for m in scenes.clean_labels]
    )
    before = _snapshot(dataset)
    result = _run(
        "apply_corrections",
        dataset,
        gt_field=GT,
        source="annotations",
        annotations_field="edited",
        run_key="fixer",
        apply_key="from_cvat",
    )
    assert result.error is None, result.error
    for sample, clean, label in zip(
        dataset.iter_samples(),
        scenes.clean_labels,
        scenes.labels,
        strict=True,
    ):
        np.testing.assert_array_equal(sample[GT].mask, clean)
        records = sample.fixer_applied or []
        assert len(records) == int((clean != label).any())
        for record in records:
            assert record["source"] == "annotations"
            assert record["annotations_field"] == "edited"
            assert record["changed_pixels"] == int((clean != label).sum())
            assert sum(record["patch_pixels"]) <= record["changed_pixels"]
    _run("undo_corrections", dataset, apply_key="from_cvat")
    _assert_same(before, _snapshot(dataset))


def test_interrupted_apply_leaves_old_or_new_labels_and_undoes(
    fixer_plugin, dataset_factory, tmp_path
):
    dataset, _ = _make(dataset_factory, tmp_path)
    before = _snapshot(dataset)
    expected = _expected(dataset, lambda d: d.confidence >= 0.5)
    to_change = [
        sid for sid, m in expected.items() if (m != before[1][sid]).any()
    ]
    assert len(to_change) >= 2
    # A real failure mid-way: the new mask file of a later sample cannot be
    # written because a folder sits where it goes
    out_dir = _applied_dir(dataset, "fixer_apply")
    blocked = to_change[-1]
    os.makedirs(os.path.join(out_dir, f"{blocked}.png"))
    with pytest.raises(ExecutionError, match="Is a directory"):
        _run(
            "apply_corrections",
            dataset,
            gt_field=GT,
            source="suggestions",
            run_key="fixer",
            selection="score",
        )
    assert dataset.load_run_results("fixer_apply") is None  # unfinished
    backup = f"{GT}_backup_fixer_apply"
    assert dataset.count(backup) == NUM_IMAGES
    states = []
    for sample in dataset.iter_samples():
        mask = sample[GT].get_mask()
        np.testing.assert_array_equal(
            sample[backup].get_mask(), before[1][sample.id]
        )
        if sample.fixer_applied:
            np.testing.assert_array_equal(mask, expected[sample.id])
            states.append("new")
        else:
            assert sample[GT].to_dict() == sample[backup].to_dict()
            states.append("old")
    assert states[dataset.values("id").index(blocked)] == "old"
    assert "new" in states  # it did stop mid-way
    # A second apply with the same key is refused until undone
    with pytest.raises(ExecutionError, match="already exists"):
        _run("apply_corrections", dataset, gt_field=GT,
             source="suggestions", run_key="fixer")  # fmt: skip
    _run("undo_corrections", dataset, apply_key="fixer_apply")
    _assert_same(before, _snapshot(dataset))


def test_undo_refuses_out_of_order_and_stacks_in_order(
    fixer_plugin, dataset_factory, tmp_path
):
    dataset, _ = _make(dataset_factory, tmp_path, inline_masks=True)
    before = _snapshot(dataset)
    apply = fixer_plugin.get_operator("apply_corrections")
    for key, score in (("first", 0.6), ("second", 0.3)):
        apply(dataset, GT, "suggestions", run_key="fixer", selection="score",
              min_score=score, apply_key=key)  # fmt: skip
    with pytest.raises(ExecutionError, match=r"Undo the later correction"):
        _run("undo_corrections", dataset, apply_key="first")
    # The Python entry points
    fixer_plugin.get_operator("undo_corrections")(dataset, "second")
    fixer_plugin.get_operator("undo_corrections")(dataset, "first")
    _assert_same(before, _snapshot(dataset))


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"source": "suggestions"}, "needs the run_key"),
        (
            {"source": "annotations", "annotations_field": GT},
            "Path: annotations_field",  # the form's own check
        ),
        ({"source": "annotations"}, "Path: annotations_field"),
        ({"source": "magic", "run_key": "fixer"}, "Path: source"),
        (
            {"source": "suggestions", "run_key": "fixer", "apply_key": "a b"},
            "must be a valid variable name",
        ),
        (
            {"source": "suggestions", "run_key": "nope"},
            "Path: run_key",
        ),
    ],
    ids=[
        "no-run",
        "gt-as-edits",
        "no-edits",
        "bad-source",
        "bad-key",
        "unknown-run",
    ],  # fmt: skip
)
def test_bad_apply_parameters_change_nothing(
    fixer_plugin, dataset_factory, tmp_path, params, pattern
):
    dataset, _ = _make(dataset_factory, tmp_path, inline_masks=True)
    before = _snapshot(dataset)
    with pytest.raises(ExecutionError, match=pattern):
        _run("apply_corrections", dataset, gt_field=GT, **params)
    _assert_same(before, _snapshot(dataset))


def _form(fixer_plugin, name, dataset, **params):
    ctx = foo.ExecutionContext(
        request_params={
            "dataset_name": dataset.name,
            "dataset_id": str(dataset._doc.id),
            "params": params,
        }
    )
    return fixer_plugin.get_operator(name).resolve_input(ctx).type.properties


def test_forms_offer_sources_runs_and_corrections(
    fixer_plugin, dataset_factory, tmp_path
):
    dataset, scenes = _make(dataset_factory, tmp_path, inline_masks=True)
    props = _form(fixer_plugin, "apply_corrections", dataset)
    assert props["source"].type.values == ["suggestions", "annotations"]
    assert props["run_key"].type.values == ["fixer"]
    assert props["selection"].type.values == ["confirmed", "score"]
    assert props["apply_key"].default == "fixer_apply"
    assert "ground_truth_backup_fixer_apply" in props["outputs"].view.label
    props = _form(
        fixer_plugin, "apply_corrections", dataset, source="annotations"
    )
    assert props["annotations_field"].type.values == ["fixer_corrected"]
    dataset.set_values(
        "edited", [fo.Segmentation(mask=m) for m in scenes.clean_labels]
    )
    props = _form(
        fixer_plugin,
        "apply_corrections",
        dataset,
        gt_field=GT,
        source="annotations",
    )
    assert "ground_truth" not in props["annotations_field"].type.values
    assert "edited" in props["annotations_field"].type.values
    undo = _form(fixer_plugin, "undo_corrections", dataset)
    assert undo["no_applies"].invalid
    _run("apply_corrections", dataset, gt_field=GT, source="suggestions",
         run_key="fixer", selection="score")  # fmt: skip
    undo = _form(fixer_plugin, "undo_corrections", dataset)
    assert undo["apply_key"].type.values == ["fixer_apply"]
    props = _form(fixer_plugin, "apply_corrections", dataset)
    assert props["apply_key"].default == "fixer_apply2"
