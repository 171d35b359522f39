"""What ``get_label_error_run_info`` shows in the App: tables of text and
shares as percentages, not raw data trees (issue 26)."""

from __future__ import annotations

import pytest
from fixer_testing import PLUGIN, write_scenes_dataset

from fixer_core.synthetic import make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
types = pytest.importorskip("fiftyone.operators.types")


def test_run_info_shows_tables_and_percentages(
    fixer_plugin, dataset_factory, tmp_path
):
    dataset = dataset_factory("info")
    write_scenes_dataset(dataset, make_scenes(6, seed=0), tmp_path)
    foo.execute_operator(
        f"{PLUGIN}/find_label_errors",
        dict(
            dataset=dataset,
            params=dict(gt_field="ground_truth", probs_field="probs_path"),
        ),
    )
    result = foo.execute_operator(
        f"{PLUGIN}/get_label_error_run_info",
        dict(dataset=dataset, params=dict(run_key="fixer")),
    ).result
    summary = dataset.load_run_results("fixer").summary
    share = summary["issue_share"]
    assert result["share_in_issues"] == f"{round(share * 100)}%"
    rows = {r["error_type"]: r for r in result["by_type"]}
    assert (
        rows["false negative"]["patches"]
        == (summary["totals"]["false_negative"]["patches"])
    )
    params = {r["name"]: r["value"] for r in result["parameters"]}
    assert params["gt_field"] == "ground_truth"
    assert "finder.min_area" in params
    assert all(isinstance(v, str) for v in params.values())

    op = fixer_plugin.get_operator("get_label_error_run_info")
    ctx = foo.ExecutionContext(
        request_params={
            "dataset_name": dataset.name,
            "params": {"run_key": "fixer"},
        }
    )
    shown = op.resolve_output(ctx).type.properties
    assert "config" not in shown and "totals" not in shown
    for name in ("by_type", "issues", "weak_classes", "parameters"):
        assert isinstance(shown[name].view, types.TableView), name
    assert not any(isinstance(p.view, types.JSONView) for p in shown.values())
