"""The FIXER panel through FiftyOne's Python panel machinery."""

from __future__ import annotations

import numpy as np
import pytest
from fixer_testing import PLUGIN
from hand_runs import add_hand_run, hand_summary, patch

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")

PANEL = f"{PLUGIN}/fixer_panel"


def _event(dataset, method, state=None, **params):
    """Runs a panel event as the App does; returns the requests it made
    (``{operator: [params, ...]}``) and the rendered panel."""
    result = foo.execute_operator(
        PANEL,
        dict(
            dataset=dataset,
            params={
                "panel_id": "panel-1",
                "__method__": method,
                "panel_state": state or {},
                **params,
            },
        ),
    )
    assert result.error is None, result.error_message
    requests = {}
    for request in result.executor._requests:
        requests.setdefault(request.operator_uri, []).append(request.params)
    output = requests.pop("show_panel_output")[0]["output"]
    return requests, output


def _patched(requests, kind):
    merged = {}
    for params in requests.get(f"patch_panel_{kind}", []):
        merged.update(params[kind])
    return merged


@pytest.fixture
def run(fixer_plugin, dataset_factory):
    """A run with two issues: 3 general 'a labelled as b' patches (30 px)
    and 1 ambiguous 'a vs c' patch (5 px)."""
    general = [
        patch("b", "a", area=10, issue="a labelled as b") for _ in range(3)
    ]
    ambiguous = [
        patch("a", "c", area=5, error_type="ambiguous", issue="a vs c")
    ]
    issues = [
        {
            "name": "a vs c",
            "given_label": 0,
            "suggested_label": 2,
            "error_type": "ambiguous",
            "num_patches": 1,
            "num_images": 1,
            "num_pixels": 5,
        },
        {
            "name": "a labelled as b",
            "given_label": 1,
            "suggested_label": 0,
            "error_type": "general",
            "num_patches": 3,
            "num_images": 2,
            "num_pixels": 30,
        },
    ]
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    fixed = gt.copy()
    fixed[0, 2] = 0
    dataset = dataset_factory("panel")
    add_hand_run(
        dataset,
        ["a", "b", "c"],
        [(gt, fixed, general[:2]), (gt, gt, general[2:] + ambiguous)],
        hand_summary(general + ambiguous, issues, num_pixels=32),
    )
    return dataset


def test_headline_names_classes_the_model_barely_predicts(run):
    results = run.load_run_results("fixer", cache=False)
    stored = {a: getattr(results, a) for a in results.attributes()}
    stored.pop("cls")
    stored["summary"] = {**stored["summary"], "weakly_predicted": {"c": 0.031}}
    run.save_run_results(
        "fixer", run.init_run_results("fixer", **stored), cache=False
    )
    requests, _ = _event(run, "on_load")
    headline = _patched(requests, "state")["headline"]
    assert headline.startswith("**4 patches**")
    assert "The model barely predicts c (3.1%)" in headline


def test_panel_is_registered(fixer_plugin):
    panel = fixer_plugin.operators["fixer_panel"]
    assert isinstance(panel, foo.Panel)
    config = panel.resolve_panel_config()
    assert config["name"] == "fixer_panel"
    assert config["on_load"] == f"{PANEL}#on_load"


def test_on_load_reads_the_stored_run(run):
    requests, output = _event(run, "on_load")
    state, data = _patched(requests, "state"), _patched(requests, "data")
    assert state["run_key"] == "fixer" and state["runs"] == ["fixer"]
    assert state["error"] is None
    assert state["headline"].startswith("**4 patches**, 35 pixels")
    # issues, largest first
    assert [row["name"] for row in data["issues"]] == [
        "a labelled as b",
        "a vs c",
    ]
    assert data["issues"][0] == {
        "name": "a labelled as b",
        "error_type": "general",
        "num_patches": 3,
        "num_images": 2,
        "num_pixels": 30,
    }
    assert data["by_type"][0]["x"] == [
        "general",
        "ambiguous",
        "false_negative",
    ]
    assert data["by_type"][0]["y"] == [3, 1, 0]
    by_class = {trace["name"]: trace for trace in data["by_class"]}
    assert by_class["general"]["x"] == ["a", "b"]
    assert by_class["general"]["y"] == [0, 3]
    assert by_class["ambiguous"]["y"] == [1, 0]
    # no report or review yet: a button and messages, no pixel change
    assert state["has_report"] is False and "pixel_change" not in data
    assert "No review sample yet" in state["review"]
    props = output["type"]["properties"]
    assert {"headline", "issues", "by_type", "by_class"} <= set(props)
    assert "compute_report" in props and "pixel_change" not in props
    assert props["issues"]["view"]["on_click_row"] == (
        f"{PANEL}#on_click_issue"
    )


def test_panel_shows_report_and_review_once_stored(fixer_plugin, run):
    _event(run, "on_compute_report", state={"run_key": "fixer"})
    foo.execute_operator(
        f"{PLUGIN}/draw_review_sample",
        dict(
            dataset=run,
            params={"run_key": "fixer", "per_class": 25, "seed": 0},
        ),
    )
    ids = run.values("fixer_patches.detections.id", unwind=True)
    run.select_labels(ids=ids, fields="fixer_patches").tag_labels(
        "fixer:confirmed", label_fields="fixer_patches"
    )
    requests, output = _event(run, "on_estimate", state={"run_key": "fixer"})
    state, data = _patched(requests, "state"), _patched(requests, "data")
    report = run.load_run_results("fixer", cache=False).quality
    assert state["has_report"] is True
    assert f"mIoU {report['miou']:.3f}" in state["quality"]
    # b lost one pixel to a: after / before per class
    assert data["pixel_change"][0]["x"] == ["a", "b", "c"]
    assert data["pixel_change"][0]["y"] == pytest.approx([9 / 8, 7 / 8, 1])
    assert state["has_estimate"] is True
    assert "Reviewed 4, missing 0" in state["review"]
    assert "**Precision 1.000**" in state["review"]
    assert {row["class"]: row["precision"] for row in data["precision"]} == {
        "b": 1.0,
        "a": 1.0,
    }
    assert {"pixel_change", "precision"} <= set(output["type"]["properties"])


def test_clicks_load_views_in_the_grid(run):
    state = {"run_key": "fixer"}
    requests, _ = _event(run, "on_click_type", state=state, x="ambiguous")
    assert requests["set_view"] == [{"name": "fixer-ambiguous"}]
    requests, _ = _event(run, "on_click_issue", state=state, row=1)
    view = fo.DatasetView._build(run, requests["set_view"][0]["view"])
    assert view.count("fixer_patches.detections") == 1
    assert view.distinct("fixer_patches.detections.issue") == ["a vs c"]
    requests, _ = _event(run, "on_click_class", state=state, x="b")
    view = fo.DatasetView._build(run, requests["set_view"][0]["view"])
    assert view.distinct("fixer_patches.detections.given_label") == ["b"]


def test_dataset_without_runs_says_so(fixer_plugin, dataset_factory):
    dataset = dataset_factory("panel-empty")
    requests, output = _event(dataset, "on_load")
    assert _patched(requests, "state")["run_key"] is None
    props = output["type"]["properties"]
    assert list(props) == ["no_runs"]


def test_unfinished_run_shows_an_error(run):
    run.register_run(
        "late", run.init_run(method="fixer.find_label_errors", fields=[])
    )
    requests, output = _event(run, "on_load", state={"run_key": "late"})
    state = _patched(requests, "state")
    assert f"'late' of dataset '{run.name}' did not finish" in state["error"]
    props = output["type"]["properties"]
    assert "run_key" in props and "error" in props  # can switch runs


def test_run_selector_switches_runs(run):
    run.register_run(
        "late", run.init_run(method="fixer.find_label_errors", fields=[])
    )
    requests, output = _event(
        run, "on_change_run", state={"run_key": "fixer"}, value="late"
    )
    state = _patched(requests, "state")
    assert state["run_key"] == "late" and state["runs"] == ["fixer", "late"]
    choices = output["type"]["properties"]["run_key"]["type"]["values"]
    assert choices == ["fixer", "late"]
