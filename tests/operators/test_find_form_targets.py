"""The target of ``find_label_errors`` in the App: the whole dataset by
default, whatever view the App shows (issue 26)."""

from __future__ import annotations

import pytest
from fixer_testing import PLUGIN, write_scenes_dataset

from fixer_core.synthetic import make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")

FIND = f"{PLUGIN}/find_label_errors"
PARAMS = dict(gt_field="ground_truth", probs_field="probs_path")


@pytest.fixture
def with_run(fixer_plugin, dataset_factory, tmp_path):
    dataset = dataset_factory("targets")
    write_scenes_dataset(dataset, make_scenes(6, seed=0), tmp_path)
    foo.execute_operator(FIND, dict(dataset=dataset, params=PARAMS))
    return dataset


def _form(fixer_plugin, dataset, view_name=None, stages=None, **params):
    request = {
        "dataset_name": dataset.name,
        "dataset_id": str(dataset._doc.id),
        "params": {**PARAMS, **params},
    }
    if view_name:
        request["view_name"] = view_name
    if stages is not None:
        request["view"] = stages
    op = fixer_plugin.get_operator("find_label_errors")
    props = op.resolve_input(foo.ExecutionContext(request_params=request))
    return props.type.properties


def _invalid(props):
    return {k: p.view.label for k, p in props.items() if p.invalid}


def test_on_the_patches_view_the_form_targets_the_images(
    fixer_plugin, with_run
):
    props = _form(fixer_plugin, with_run, view_name="fixer-patches")
    assert _invalid(props) == {}
    assert "will be replaced" in props["run_key_notice"].view.label
    notice = props["target_notice"].view.label
    assert notice.startswith("The App shows patches: the run searches all 6")


@pytest.mark.parametrize("target", [None, "CURRENT_VIEW", "BASE_VIEW"])
def test_run_from_the_patches_view_replaces_the_whole_run(with_run, target):
    patches = with_run.load_saved_view("fixer-patches").limit(3)
    params = dict(PARAMS)
    if target:
        params["view_target"] = target
    result = foo.execute_operator(FIND, dict(view=patches, params=params))
    result.raise_exceptions()
    summary = with_run.load_run_results("fixer", cache=False).summary
    assert summary["num_images"] == len(with_run)


def test_a_run_on_a_subset_is_said(fixer_plugin, with_run):
    subset = with_run.limit(2)._serialize()
    props = _form(fixer_plugin, with_run, stages=subset)
    assert props["view_target"].default == "DATASET"
    props = _form(
        fixer_plugin, with_run, stages=subset, view_target="CURRENT_VIEW"
    )
    notice = props["target_notice"].view.label
    assert notice.startswith("Searches 2 of the dataset's 6 samples")
    props = _form(fixer_plugin, with_run, stages=subset, view_target="DATASET")
    assert "target_notice" not in props
