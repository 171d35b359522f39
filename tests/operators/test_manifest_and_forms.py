"""The plugin manifest and the operators' input forms."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest
import yaml
from fixer_testing import PLUGIN, write_scenes_dataset

from fixer_core import FinderConfig
from fixer_core.synthetic import make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
types = pytest.importorskip("fiftyone.operators.types")

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_OPERATORS = (
    "load_label_error_view",
    "get_label_error_run_info",
    "delete_label_error_run",
)


def _manifest():
    return yaml.safe_load((REPO_ROOT / "fiftyone.yml").read_text())


def _context(dataset, **params):
    return foo.ExecutionContext(
        request_params={
            "dataset_name": dataset.name,
            "dataset_id": str(dataset._doc.id),
            "params": params,
        }
    )


def _form(fixer_plugin, name, dataset, **params):
    """Resolves an operator's form; returns its properties by name."""
    op = fixer_plugin.get_operator(name)
    prop = op.resolve_input(_context(dataset, **params))
    return prop.type.properties


def _invalid(props):
    return {k: p.view.label for k, p in props.items() if p.invalid}


def _scenes_dataset(dataset_factory, root, num_images=4):
    dataset = dataset_factory("forms")
    write_scenes_dataset(dataset, make_scenes(num_images, seed=0), root)
    return dataset


@pytest.fixture(scope="module")
def with_runs(fixer_plugin, tmp_path_factory):
    """A small dataset with a FIXER run "fixer" and another run "other"."""
    dataset = fo.Dataset(f"forms-runs-{uuid.uuid4().hex[:10]}")
    try:
        write_scenes_dataset(
            dataset, make_scenes(4, seed=0), tmp_path_factory.mktemp("runs")
        )
        foo.execute_operator(
            f"{PLUGIN}/find_label_errors",
            dict(
                dataset=dataset,
                params=dict(gt_field="ground_truth", probs_field="probs_path"),
            ),
        )
        dataset.register_run("other", dataset.init_run(method="x"))
        yield dataset
    finally:
        dataset.delete()


# -- manifest ----------------------------------------------------------------


def test_manifest_names_the_plugin(fixer_plugin):
    manifest = _manifest()
    assert manifest["name"] == PLUGIN == fixer_plugin.name


def test_manifest_operators_equal_registered_operators(fixer_plugin):
    manifest = _manifest()
    listed = manifest["operators"] + manifest.get("panels", [])
    assert len(listed) == len(set(listed))
    assert set(listed) == set(fixer_plugin.operators)


def test_registered_operators_resolve_by_uri(fixer_plugin):
    for name, op in fixer_plugin.operators.items():
        assert op.config.name == name
        resolved = fixer_plugin.get_operator(name)
        assert resolved.uri == f"{PLUGIN}/{name}"
        assert type(resolved).__name__ == type(op).__name__


# -- find_label_errors -------------------------------------------------------


def test_find_form_offers_segmentation_and_string_fields(
    fixer_plugin, dataset_factory, tmp_path
):
    dataset = _scenes_dataset(dataset_factory, tmp_path)
    dataset.add_sample_field(
        "pred_seg",
        fo.EmbeddedDocumentField,
        embedded_doc_type=fo.Segmentation,
    )
    dataset.add_sample_field("notes", fo.StringField)
    props = _form(fixer_plugin, "find_label_errors", dataset)
    assert _invalid(props) == {}
    gt = props["gt_field"]
    assert gt.type.values == ["ground_truth", "pred_seg"]
    assert [c.value for c in gt.view.choices] == gt.type.values
    assert gt.required and gt.default == "ground_truth"
    probs = props["probs_field"]
    assert probs.type.values == ["notes", "probs_path"]
    assert "filepath" not in probs.type.values
    assert props["run_key"].default == "fixer"
    notice = props["outputs"].view.label
    for name in ("fixer_patches", "fixer_error_score", "fixer_corrected"):
        assert name in notice
    for name in ("fixer-general", "fixer-false-negative", "fixer-patches"):
        assert name in notice


def test_find_form_has_every_finder_threshold(
    fixer_plugin, dataset_factory, tmp_path
):
    dataset = _scenes_dataset(dataset_factory, tmp_path)
    props = _form(fixer_plugin, "find_label_errors", dataset)
    assert props["device"].type.values == ["auto", "cpu", "cuda"]
    assert props["batch_size"].type.int and props["batch_size"].default == 8
    for f in dataclasses.fields(FinderConfig):
        prop = props[f.name]
        assert isinstance(prop.type, types.Number), f.name
        assert prop.default == f.default
        assert prop.type.int == isinstance(f.default, int), f.name


def test_find_form_without_segmentation_field_is_invalid(
    fixer_plugin, dataset_factory
):
    dataset = dataset_factory("forms")
    dataset.add_sample(
        fo.Sample(filepath="/tmp/none.jpg", probs_path="/tmp/p.npy")
    )
    props = _form(fixer_plugin, "find_label_errors", dataset)
    missing = props["gt_field_missing"]
    assert missing.invalid
    assert isinstance(missing.view, types.Warning)
    assert "no Segmentation field" in missing.view.label
    assert "gt_field" not in props


def test_find_form_without_string_field_is_invalid(
    fixer_plugin, dataset_factory
):
    dataset = dataset_factory("forms")
    dataset.add_sample(
        fo.Sample(filepath="/tmp/none.jpg", ground_truth=fo.Segmentation())
    )
    props = _form(fixer_plugin, "find_label_errors", dataset)
    assert props["probs_field_missing"].invalid
    assert "probs_field" not in props


def test_find_form_refuses_invalid_run_key(
    fixer_plugin, dataset_factory, tmp_path
):
    dataset = _scenes_dataset(dataset_factory, tmp_path)
    props = _form(
        fixer_plugin, "find_label_errors", dataset, run_key="not valid!"
    )
    invalid = _invalid(props)
    assert list(invalid) == ["run_key_error"]
    assert "must be a valid variable name" in invalid["run_key_error"]
    assert isinstance(props["run_key_error"].view, types.Error)


def test_find_form_refuses_run_key_of_another_run(fixer_plugin, with_runs):
    props = _form(
        fixer_plugin, "find_label_errors", with_runs, run_key="other"
    )
    invalid = _invalid(props)
    assert list(invalid) == ["run_key_error"]
    assert "already exists" in invalid["run_key_error"]


def test_find_form_notes_existing_fixer_run_is_replaced(
    fixer_plugin, with_runs
):
    props = _form(
        fixer_plugin, "find_label_errors", with_runs, run_key="fixer"
    )
    assert _invalid(props) == {}
    notice = props["run_key_notice"]
    assert isinstance(notice.view, types.Notice)
    assert "will be replaced" in notice.view.label
    new = _form(fixer_plugin, "find_label_errors", with_runs, run_key="new")
    assert "run_key_notice" not in new
    assert _invalid(new) == {}


def test_find_form_default_gt_field_is_not_a_fixer_output(
    fixer_plugin, with_runs
):
    # After a run, fixer_corrected sorts before ground_truth; with the
    # default run key it is also the field the run would overwrite
    props = _form(fixer_plugin, "find_label_errors", with_runs)
    assert "fixer_corrected" in props["gt_field"].type.values
    assert props["gt_field"].default == "ground_truth"


# -- operators on existing runs ----------------------------------------------


@pytest.mark.parametrize("name", RUN_OPERATORS)
def test_run_forms_without_fixer_runs_are_invalid(
    fixer_plugin, dataset_factory, tmp_path, name
):
    dataset = _scenes_dataset(dataset_factory, tmp_path)
    dataset.register_run("other", dataset.init_run(method="x"))
    props = _form(fixer_plugin, name, dataset)
    invalid = _invalid(props)
    assert list(invalid) == ["no_runs"]
    assert "no FIXER runs" in invalid["no_runs"]
    assert "run_key" not in props


@pytest.mark.parametrize("name", RUN_OPERATORS)
def test_run_forms_offer_only_fixer_runs(fixer_plugin, with_runs, name):
    props = _form(fixer_plugin, name, with_runs)
    assert _invalid(props) == {}
    assert props["run_key"].type.values == ["fixer"]
    assert props["run_key"].default == "fixer"


def test_load_view_form_offers_every_view(fixer_plugin, with_runs):
    props = _form(fixer_plugin, "load_label_error_view", with_runs)
    error_type = props["error_type"]
    assert error_type.type.values == [
        "all",
        "general",
        "ambiguous",
        "false_negative",
    ]
    assert error_type.default == "all"


def test_delete_form_lists_what_is_deleted(fixer_plugin, with_runs):
    props = _form(fixer_plugin, "delete_label_error_run", with_runs)
    warning = props["deletes"].view.label
    config = with_runs.get_run_info("fixer").config
    for name in config.fields + config.views:
        assert name in warning


def test_forms_serialize_for_the_app(fixer_plugin, with_runs):
    for name in fixer_plugin.operators:
        op = fixer_plugin.get_operator(name)
        resolved = op.resolve_type(_context(with_runs), "inputs")
        assert json.loads(json.dumps(resolved.to_json()))
