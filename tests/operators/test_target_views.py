"""Targets ``find_label_errors`` cannot work on are refused before
anything is written: views built on the run's own outputs (a rerun
deletes them first), grouped datasets and their slices, patches views."""

from __future__ import annotations

import pytest
from fixer_testing import PLUGIN, write_scenes_dataset

from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
from fiftyone.operators.executor import ExecutionError  # noqa: E402

FIND = f"{PLUGIN}/find_label_errors"
GT = "ground_truth"
PARAMS = {"gt_field": GT, "probs_field": "probs_path", **SIMULATED_MODEL}


@pytest.fixture
def finished(fixer_plugin, dataset_factory, tmp_path):
    """A dataset with a finished run ``fixer``."""
    dataset = dataset_factory("targets")
    write_scenes_dataset(
        dataset, make_scenes(6, height=48, width=64, seed=0), tmp_path
    )
    foo.execute_operator(FIND, dict(dataset=dataset, params=PARAMS))
    dataset.reload()
    assert "fixer" in dataset.list_runs()
    return dataset


def _state(dataset) -> dict:
    dataset.reload()
    return {
        "fields": sorted(dataset.get_field_schema()),
        "views": sorted(dataset.list_saved_views()),
        "runs": sorted(dataset.list_runs()),
        "patches": dataset.values("fixer_patches"),
    }


@pytest.mark.parametrize(
    "make_view, names",
    [
        pytest.param(
            lambda ds: ds.load_saved_view("fixer-general"),
            "fixer-general",
            id="its-saved-view",
        ),
        pytest.param(
            lambda ds: ds.sort_by("fixer_error_score", reverse=True).limit(3),
            "fixer_error_score",
            id="sorted-by-its-score",
        ),
        pytest.param(
            lambda ds: ds.exists("fixer_corrected"),
            "fixer_corrected",
            id="filtered-on-its-corrected-field",
        ),
    ],
)
def test_rerun_on_a_view_of_its_own_outputs_keeps_the_previous_run(
    finished, make_view, names
):
    before = _state(finished)
    view = make_view(finished)
    with pytest.raises(ExecutionError, match="The target view is built on"):
        foo.execute_operator(FIND, dict(view=view, params=PARAMS))
    assert _state(finished) == before
    assert finished.load_run_results("fixer", cache=False) is not None


def test_a_view_of_another_runs_outputs_is_a_fine_target(finished):
    view = finished.sort_by("fixer_error_score", reverse=True).limit(3)
    foo.execute_operator(
        FIND, dict(view=view, params={**PARAMS, "run_key": "again"})
    )
    finished.reload()
    assert finished.count("again_error_score") == 3


def test_a_view_selecting_only_the_inputs_is_a_fine_target(finished):
    view = finished.select_fields([GT, "probs_path"])
    foo.execute_operator(
        FIND, dict(view=view, params={**PARAMS, "run_key": "inputs"})
    )
    finished.reload()
    assert finished.count("inputs_error_score") == len(finished)
    assert finished.load_run_results("inputs", cache=False) is not None


def test_a_patches_view_searches_the_whole_dataset(finished):
    # The App shows a run's patches after it; a new run from there covers
    # the dataset its patches come from (the form says so)
    foo.execute_operator(
        FIND,
        dict(
            view=finished.to_patches("fixer_patches"),
            params={**PARAMS, "run_key": "p"},
        ),
    )
    finished.reload()
    assert "p" in finished.list_runs()
    assert len(finished.exists("p_error_score")) == len(finished)


@pytest.fixture
def grouped(fixer_plugin, dataset_factory, tmp_path):
    """A grouped dataset of two image slices, ``left`` and ``right``."""
    flat = dataset_factory("flat")
    write_scenes_dataset(
        flat, make_scenes(4, height=48, width=64, seed=0), tmp_path
    )
    dataset = dataset_factory("grouped")
    dataset.add_group_field("group", default="left")
    samples = []
    for sample in flat.select_fields([GT, "probs_path"]):
        group = fo.Group()
        for name in ("left", "right"):
            samples.append(
                fo.Sample(
                    filepath=sample.filepath,
                    ground_truth=sample[GT],
                    probs_path=sample.probs_path,
                    group=group.element(name),
                )
            )
    dataset.add_samples(samples)
    dataset.default_mask_targets = flat.default_mask_targets
    dataset.save()
    return dataset


@pytest.mark.parametrize(
    "make_view",
    [
        pytest.param(lambda ds: ds.view(), id="dataset"),
        pytest.param(lambda ds: ds.select_group_slices("left"), id="slice"),
    ],
)
def test_grouped_dataset_is_refused_before_anything_is_written(
    grouped, make_view
):
    before = _state_without_patches(grouped)
    with pytest.raises(ExecutionError, match="is grouped; FIXER works on"):
        foo.execute_operator(
            FIND, dict(view=make_view(grouped), params=PARAMS)
        )
    assert _state_without_patches(grouped) == before


def _state_without_patches(dataset) -> dict:
    dataset.reload()
    return {
        "fields": sorted(dataset.get_field_schema()),
        "views": sorted(dataset.list_saved_views()),
        "runs": sorted(dataset.list_runs()),
    }
