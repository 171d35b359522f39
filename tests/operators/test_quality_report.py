"""The label-quality report against hand computations and a real run."""

from __future__ import annotations

import importlib
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from fixer_testing import PLUGIN, write_scenes_dataset
from hand_runs import add_hand_run, hand_summary, patch

from fixer_core.quality import PixelConfusion
from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
from fiftyone.operators.executor import ExecutionError  # noqa: E402

REPORT = f"{PLUGIN}/label_quality_report"
NAMES = ["a", "b", "c", "d"]
V = 255  # void


def _report(dataset, run_key="fixer", **params):
    return foo.execute_operator(
        REPORT, dict(dataset=dataset, params={"run_key": run_key, **params})
    )


@pytest.fixture
def hand(fixer_plugin, dataset_factory):
    """Two 4 x 4 images with known corrections; d appears nowhere.

    Image 1: a -> c on two pixels (a false negative, a named issue).
    Image 2: b -> a on two pixels; a one-pixel a -> b patch is not applied.
    """
    gt1 = np.array([[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [2, 2, V, V]])
    fixed1 = gt1.copy()
    fixed1[0, 2:] = 2
    gt2 = np.array([[1] * 4, [1] * 4, [0] * 4, [0] * 4])
    fixed2 = gt2.copy()
    fixed2[1, :2] = 0
    patches1 = [
        patch("a", "c", area=2, error_type="false_negative", issue="c in a")
    ]
    patches2 = [patch("b", "a", area=2), patch("a", "b", area=1, score=0.2)]
    issues = [
        {
            "name": "c in a",
            "given_label": 0,
            "suggested_label": 2,
            "error_type": "false_negative",
            "num_patches": 1,
            "num_images": 1,
            "num_pixels": 2,
        }
    ]
    dataset = dataset_factory("quality")
    add_hand_run(
        dataset,
        NAMES,
        [(gt1, fixed1, patches1), (gt2, fixed2, patches2)],
        hand_summary(patches1 + patches2, issues, num_pixels=30),
    )
    return dataset


def test_report_numbers_match_hand_computation(hand, tmp_path):
    result = _report(hand, output_dir=str(tmp_path))
    report = hand.load_run_results("fixer", cache=False).quality
    # Pixels (void excluded): before a 16, b 12, c 2; after a 16, b 10,
    # c 4. Corrected x original: a/a 14, a/b 2, b/b 10, c/a 2, c/c 2.
    iou = {"a": 14 / 18, "b": 10 / 12, "c": 2 / 4, "d": None}
    assert report["iou"] == pytest.approx(list(iou.values()))
    assert report["miou"] == pytest.approx((14 / 18 + 10 / 12 + 0.5) / 3)
    assert report["absent"] == ["d"]
    assert report["pixels_before"] == [16, 12, 2, 0]
    assert report["pixels_after"] == [16, 10, 4, 0]
    rows = {r["class"]: r for r in report["classes"]}
    assert rows["a"]["ratio"] == 1.0
    assert rows["b"]["ratio"] == pytest.approx(10 / 12)
    assert rows["c"]["ratio"] == 2.0
    assert rows["d"]["ratio"] is None
    assert report["changed_pixels"] == 4 and report["total_pixels"] == 30
    flags = report["flags"]
    assert flags["flagged_share"] == pytest.approx(5 / 30)
    assert flags["issue_patch_share"] == pytest.approx(1 / 3)
    assert flags["issue_pixel_share"] == pytest.approx(2 / 5)
    assert flags["other_pixel_share"] == pytest.approx(3 / 5)
    assert flags["by_type"]["general"]["patches"] == 2
    assert flags["by_type"]["false_negative"]["pixel_share"] == 0.4
    # the operator's output carries the same numbers
    assert result.result["miou"] == report["miou"]
    assert result.result["classes"] == report["classes"]


def test_report_is_a_fiftyone_evaluation(hand, tmp_path):
    _report(hand, output_dir=str(tmp_path))
    assert "fixer_quality" in hand.list_evaluations()
    info = hand.get_evaluation_info("fixer_quality")
    assert info.config.pred_field == "ground_truth"
    assert info.config.gt_field == "fixer_corrected"
    results = hand.load_evaluation_results("fixer_quality")
    assert results.pixel_confusion_matrix.tolist() == [
        [14, 2, 0, 0],
        [0, 10, 0, 0],
        [2, 0, 2, 0],
        [0, 0, 0, 0],
    ]
    assert hand.has_sample_field("fixer_quality_accuracy")


def test_report_files_are_written(hand, tmp_path):
    out = tmp_path / "report"
    result = _report(hand, output_dir=str(out))
    files = result.result["files"]
    assert set(files) == {
        "json",
        "markdown",
        "iou_plot",
        "pixels_plot",
        "types_plot",
    }
    for path in files.values():
        assert Path(path).parent == out and os.path.getsize(path) > 0
    for key in ("iou_plot", "pixels_plot", "types_plot"):
        assert Path(files[key]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = json.loads(Path(files["json"]).read_text())
    assert stored["miou"] == pytest.approx((14 / 18 + 10 / 12 + 0.5) / 3)
    markdown = Path(files["markdown"]).read_text()
    assert "mIoU: **0.704**" in markdown
    assert "| c | 0.500 | 2 | 4 | 2.000 |" in markdown
    assert "| c in a | false_negative | 1 | 1 | 2 | 40.0% |" in markdown
    assert "(d absent from both, ignored)" in markdown
    assert "![Per-class IoU](iou.png)" in markdown


def test_default_report_folder_is_under_the_run_dir(hand):
    result = _report(hand)
    folder = Path(result.result["files"]["json"]).parent
    assert (
        folder
        == Path(fo.config.default_dataset_dir, "fixer", str(hand._doc.id))
        / "fixer"
        / "report"
    )
    foo.execute_operator(
        f"{PLUGIN}/delete_label_error_run",
        dict(dataset=hand, params={"run_key": "fixer"}),
    )
    assert not folder.parent.exists()  # the run's folder is gone too


def test_rerun_replaces_and_delete_removes_everything(hand, tmp_path):
    _report(hand, output_dir=str(tmp_path / "first"))
    result = _report(hand, output_dir=str(tmp_path / "r"))
    assert hand.list_evaluations() == ["fixer_quality"]
    assert not (tmp_path / "first").exists()  # replaced
    files = result.result["files"]
    foo.execute_operator(
        f"{PLUGIN}/delete_label_error_run",
        dict(dataset=hand, params={"run_key": "fixer"}),
    )
    assert hand.list_evaluations() == []
    assert not hand.has_sample_field("fixer_quality_accuracy")
    assert not any(os.path.exists(p) for p in files.values())
    assert not (tmp_path / "r").exists()


def test_foreign_evaluation_key_is_refused(hand):
    hand.evaluate_segmentations(
        "fixer_corrected", gt_field="ground_truth", eval_key="fixer_quality"
    )
    with pytest.raises(ExecutionError, match="did not write; delete it"):
        _report(hand)
    assert hand.list_evaluations() == ["fixer_quality"]


def test_unknown_and_unfinished_runs_name_dataset_and_run(fixer_plugin, hand):
    with pytest.raises(ExecutionError, match="run_key"):  # the form
        _report(hand, run_key="nope")
    quality = importlib.import_module(
        f"{fixer_plugin.module.__name__}.operators._quality"
    )
    with pytest.raises(ValueError, match=f"'{hand.name}' has no FIXER run"):
        quality.run_label_quality_report(hand, "nope")
    hand.register_run(
        "late", hand.init_run(method="fixer.find_label_errors", fields=[])
    )
    with pytest.raises(
        ExecutionError, match=f"'late' of dataset '{hand.name}' did not finish"
    ):
        _report(hand, run_key="late")


def test_python_entry_point(fixer_plugin, hand, tmp_path):
    op = fixer_plugin.get_operator("label_quality_report")
    result = op(hand, "fixer", output_dir=str(tmp_path))
    assert result.result["eval_key"] == "fixer_quality"


# -- on a real run -----------------------------------------------------------


def test_report_of_a_real_run_matches_its_masks(fixer_plugin, tmp_path):
    scenes = make_scenes(6, seed=1)
    dataset = fo.Dataset(f"quality-real-{uuid.uuid4().hex[:10]}")
    try:
        write_scenes_dataset(dataset, scenes, tmp_path)
        foo.execute_operator(
            f"{PLUGIN}/find_label_errors",
            dict(
                dataset=dataset,
                params=dict(
                    gt_field="ground_truth",
                    probs_field="probs_path",
                    **SIMULATED_MODEL,
                ),
            ),
        )
        _report(dataset, output_dir=str(tmp_path / "report"))
        report = dataset.load_run_results("fixer", cache=False).quality
        names = list(scenes.class_names)
        acc = PixelConfusion(len(names))
        for sample in dataset.iter_samples():
            acc.update(
                sample.ground_truth.get_mask(),
                sample.fixer_corrected.get_mask(),
            )
        assert report["class_names"] == names
        assert report["pixels_before"] == acc.matrix.sum(0).tolist()
        assert report["pixels_after"] == acc.matrix.sum(1).tolist()
        assert report["changed_pixels"] > 0
        summary = dataset.load_run_results("fixer", cache=False).summary
        assert report["flags"]["flagged_pixels"] == summary["flagged_pixels"]
        assert report["flags"]["issue_pixel_share"] == pytest.approx(
            summary["issue_share"]
        )
    finally:
        dataset.delete()


def test_delegated_report_completes(hand, tmp_path):
    from fiftyone.operators.delegated import DelegatedOperationService

    result = foo.execute_operator(
        REPORT,
        dict(
            dataset=hand,
            params={"run_key": "fixer", "output_dir": str(tmp_path)},
        ),
        request_delegation=True,
    )
    assert result.delegated
    DelegatedOperationService().execute_queued_operations(
        dataset_name=hand.name
    )
    report = hand.load_run_results("fixer", cache=False).quality
    assert report["miou"] == pytest.approx((14 / 18 + 10 / 12 + 0.5) / 3)
