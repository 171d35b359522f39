"""Files FIXER writes stay its own and its dataset's: a clone never deletes
its source's files, user files are never overwritten without an explicit
overwrite, and unfinished runs are not used."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from fixer_testing import PLUGIN, write_scenes_dataset

from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
from fiftyone.operators.executor import ExecutionError  # noqa: E402

GT = "ground_truth"
FIND = {"gt_field": GT, "probs_field": "probs_path", **SIMULATED_MODEL}
APPLY = {
    "gt_field": GT,
    "source": "suggestions",
    "run_key": "fixer",
    "selection": "score",
    "min_score": 0.3,
}


def _run(name, dataset, **params):
    result = foo.execute_operator(
        f"{PLUGIN}/{name}", dict(dataset=dataset, params=params)
    )
    assert result.error is None, result.error
    return result


@pytest.fixture
def found(fixer_plugin, dataset_factory, tmp_path):
    dataset = dataset_factory("files")
    write_scenes_dataset(
        dataset, make_scenes(6, height=48, width=64, seed=0), tmp_path
    )
    _run("find_label_errors", dataset, **FIND)
    return dataset


def _files(dataset, *fields) -> list[str]:
    return [p for f in fields for p in dataset.values(f"{f}.mask_path") if p]


def test_clone_undo_and_delete_leave_the_sources_files(found):
    _run("apply_corrections", found, **APPLY, apply_key="a1")
    found.reload()
    applied = _files(found, GT)
    corrected = _files(found, "fixer_corrected")
    masks = {s.id: s[GT].get_mask() for s in found.iter_samples()}
    assert corrected and applied

    clone = found.clone()
    try:
        _run("undo_corrections", clone, apply_key="a1")
        _run("delete_label_error_run", clone, run_key="fixer")
    finally:
        clone.delete()

    assert all(Path(p).is_file() for p in applied + corrected)
    found.reload()
    for sample in found.iter_samples():
        np.testing.assert_array_equal(sample[GT].get_mask(), masks[sample.id])
    _run("undo_corrections", found, apply_key="a1")  # the source's own


def test_source_undo_and_delete_leave_the_clones_files(found):
    _run("apply_corrections", found, **APPLY, apply_key="a1")
    clone = found.clone()
    try:
        applied = _files(clone, GT)
        corrected = _files(clone, "fixer_corrected")
        masks = {s.id: s[GT].get_mask() for s in clone.iter_samples()}
        _run("undo_corrections", found, apply_key="a1")
        _run("delete_label_error_run", found, run_key="fixer")
        assert all(Path(p).is_file() for p in applied + corrected)
        for sample in clone.iter_samples():
            np.testing.assert_array_equal(
                sample[GT].get_mask(), masks[sample.id]
            )
    finally:
        clone.delete()


def test_report_never_overwrites_a_users_file(found, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    mine = folder / "report.md"
    mine.write_text("my notes")
    with pytest.raises(ExecutionError, match="FIXER did not write them"):
        _run(
            "label_quality_report",
            found,
            run_key="fixer",
            output_dir=str(folder),
        )
    assert mine.read_text() == "my notes"
    found.reload()
    assert "fixer_quality" not in found.list_evaluations()

    _run(
        "label_quality_report",
        found,
        run_key="fixer",
        output_dir=str(folder),
        overwrite=True,
    )
    assert mine.read_text() != "my notes"


def test_report_rerun_replaces_its_own_files(found, tmp_path):
    folder = tmp_path / "reports"
    _run(
        "label_quality_report", found, run_key="fixer", output_dir=str(folder)
    )
    (folder / "other.txt").write_text("mine")
    _run(
        "label_quality_report", found, run_key="fixer", output_dir=str(folder)
    )
    _run("delete_label_error_run", found, run_key="fixer")
    assert (folder / "other.txt").read_text() == "mine"
    assert not (folder / "report.md").exists()


def test_export_never_replaces_an_existing_file(found, tmp_path):
    path = tmp_path / "task.zip"
    path.write_bytes(b"my archive")
    with pytest.raises(ExecutionError, match="exists; choose another path"):
        _run("export_cvat_archive", found, gt_field=GT, archive_path=str(path))
    assert path.read_bytes() == b"my archive"
    _run(
        "export_cvat_archive",
        found,
        gt_field=GT,
        archive_path=str(path),
        overwrite=True,
    )
    assert path.read_bytes() != b"my archive"


def _stop_in_pass_2(dataset, fixer_plugin, run_key: str) -> None:
    """Runs the finder and stops it in pass 2, as a killed run stops."""
    pipeline = importlib.import_module(
        f"{fixer_plugin.module.__name__}.operators._pipeline"
    )
    run = pipeline.run_find_label_errors(
        dataset,
        pipeline.FindParams(
            gt_field=GT,
            probs_field="probs_path",
            batch_size=2,
            run_key=run_key,
            config=pipeline.FinderConfig(**SIMULATED_MODEL),
        ),
    )
    for update in run:
        if update.label.startswith("Finding errors"):
            break
    run.close()
    dataset.reload()


@pytest.fixture
def unfinished(found, fixer_plugin):
    """A run ``u`` stopped in pass 2: it is left as ``u_pending``."""
    _stop_in_pass_2(found, fixer_plugin, "u")
    assert "u" not in found.list_runs()
    assert found.load_run_results("u_pending", cache=False) is None
    return found


@pytest.mark.parametrize("run_key", ["u", "u_pending"])
def test_apply_refuses_an_unfinished_run(unfinished, run_key):
    with pytest.raises(
        ExecutionError, match="did not finish|has no FIXER|Invalid enum"
    ):
        _run("apply_corrections", unfinished, **{**APPLY, "run_key": run_key})
    unfinished.reload()
    assert not [k for k in unfinished.list_runs() if k.startswith("fixer_a")]


@pytest.mark.parametrize("run_key", ["u", "u_pending"])
def test_export_refuses_an_unfinished_run(unfinished, tmp_path, run_key):
    path = tmp_path / "u.zip"
    with pytest.raises(
        ExecutionError, match="did not finish|has no FIXER|Invalid enum"
    ):
        _run(
            "export_cvat_archive",
            unfinished,
            gt_field=GT,
            archive_path=str(path),
            run_key=run_key,
        )
    assert not path.exists()


def test_rerun_stopped_in_pass_2_keeps_the_previous_run(found, fixer_plugin):
    found.reload()
    patches = found.values("fixer_patches")
    scores = found.values("fixer_error_score")
    views = sorted(found.list_saved_views())
    corrected = found.values("fixer_corrected.mask_path")
    _stop_in_pass_2(found, fixer_plugin, "fixer")

    assert found.values("fixer_patches") == patches
    assert found.values("fixer_error_score") == scores
    assert sorted(found.list_saved_views()) == views
    assert all(Path(p).is_file() for p in corrected)
    assert found.load_run_results("fixer", cache=False) is not None
    for name in views:
        found.load_saved_view(name).count()
    _run("apply_corrections", found, **APPLY, apply_key="a1")  # still usable

    # The next complete rerun replaces both, leaving one run
    _run("find_label_errors", found, **FIND)
    found.reload()
    assert "fixer_pending" not in found.list_runs()
    assert not [f for f in found.get_field_schema() if "_pending" in f]
    assert found.count("fixer_error_score") == len(found)


CV = {
    "gt_field": GT,
    "probs_source": "cross_validation",
    "folds": 2,
    "epochs": 1,
    **SIMULATED_MODEL,
}


def _checkpoints(dataset, run_key) -> Path:
    return (
        Path(fo.config.default_dataset_dir)
        / "fixer"
        / str(dataset._doc.id)
        / run_key
        / "checkpoints"
    )


def _fold_times(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("fold_*.pt")}


def test_fold_models_are_trained_again_after_the_labels_change(found):
    _run("find_label_errors", found, **CV, run_key="cv")
    folder = _checkpoints(found, "cv")
    first = _fold_times(folder)
    assert len(first) == 2
    _run("find_label_errors", found, **CV, run_key="cv")
    assert _fold_times(folder) == first  # same labels: reused

    _run("apply_corrections", found, **APPLY, apply_key="a1")
    found.reload()
    assert found.count("fixer_applied") > 0
    _run("find_label_errors", found, **CV, run_key="cv")
    again = _fold_times(folder)
    assert again.keys() == first.keys()
    assert all(again[k] != first[k] for k in first)


def test_deleting_a_run_deletes_its_fold_models(found):
    _run("find_label_errors", found, **CV, run_key="cv")
    assert _checkpoints(found, "cv").is_dir()
    _run("delete_label_error_run", found, run_key="cv")
    assert not _checkpoints(found, "cv").exists()
    # Another config under the same key is no longer "another run's"
    _run("find_label_errors", found, **{**CV, "folds": 3}, run_key="cv")


def test_a_users_checkpoint_folder_of_other_labels_is_refused(found, tmp_path):
    folder = tmp_path / "ck"
    params = {**CV, "checkpoint_dir": str(folder)}
    _run("find_label_errors", found, **params, run_key="cv")
    first = _fold_times(folder)
    _run("apply_corrections", found, **APPLY, apply_key="a1")
    with pytest.raises(ExecutionError, match="trained on other labels"):
        _run("find_label_errors", found, **params, run_key="cv")
    assert _fold_times(folder) == first


def test_delete_orphaned_files_removes_only_deleted_datasets_folders(
    found, tmp_path
):
    kept = Path(fo.config.default_dataset_dir) / "fixer" / str(found._doc.id)
    assert kept.is_dir()
    gone = fo.Dataset()
    write_scenes_dataset(
        gone, make_scenes(2, height=48, width=64, seed=1), tmp_path / "gone"
    )
    _run("find_label_errors", gone, **FIND)
    orphan = kept.parent / str(gone._doc.id)
    assert orphan.is_dir()
    fo.delete_dataset(gone.name)
    assert orphan.is_dir()  # FiftyOne leaves it

    result = foo.execute_operator(f"{PLUGIN}/delete_orphaned_files", {})
    assert result.error is None, result.error
    assert str(orphan) in result.result["deleted"]
    assert not orphan.exists()
    assert kept.is_dir()


def test_delete_orphaned_files_keeps_folders_a_clone_uses(found):
    _run("apply_corrections", found, **APPLY, apply_key="a1")
    clone = found.clone()
    try:
        folder = Path(fo.config.default_dataset_dir) / "fixer"
        folder = folder / str(found._doc.id)
        fo.delete_dataset(found.name)
        result = foo.execute_operator(f"{PLUGIN}/delete_orphaned_files", {})
        assert str(folder) not in result.result["deleted"]
        assert all(Path(p).is_file() for p in _files(clone, GT))
    finally:
        clone.delete()


def test_a_taken_pending_key_is_refused_before_writing(found):
    found.register_run("fixer_pending", found.init_run(method="other"))
    with pytest.raises(ExecutionError, match="run 'fixer_pending'"):
        _run("find_label_errors", found, **FIND)
    found.reload()
    assert found.load_run_results("fixer", cache=False) is not None
