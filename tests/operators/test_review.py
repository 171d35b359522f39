"""Review sampling and the flag precision estimate on a hand-made run."""

from __future__ import annotations

import importlib
from collections import Counter

import numpy as np
import pytest
from fixer_testing import PLUGIN
from hand_runs import add_hand_run, hand_summary, patch

from fixer_core.quality import StratumReview, estimate_precision

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
from fiftyone.operators.executor import ExecutionError  # noqa: E402

SAMPLED, CONFIRMED, REJECTED = (
    "fixer:review",
    "fixer:confirmed",
    "fixer:rejected",
)
FIELD = "fixer_patches"


def _execute(name, dataset, **params):
    return foo.execute_operator(
        f"{PLUGIN}/{name}",
        dict(dataset=dataset, params={"run_key": "fixer", **params}),
    )


def _draw(dataset, per_class=25, stratify_by="given", seed=0):
    return _execute(
        "draw_review_sample",
        dataset,
        per_class=per_class,
        stratify_by=stratify_by,
        seed=seed,
    )


def _patches(dataset):
    """(id, given, suggested, tags) of every patch, in order."""
    return [
        (d.id, d.given_label, d.suggested_label, set(d.tags))
        for sample in dataset.iter_samples()
        for d in sample[FIELD].detections
    ]


def _sampled(dataset):
    return [p for p in _patches(dataset) if SAMPLED in p[3]]


@pytest.fixture
def run(fixer_plugin, dataset_factory):
    """30 patches given 'a' (10 px each: 20 suggest b, 10 suggest c) and
    4 given 'b' (50 px each, suggesting a), spread over 4 images."""
    a_patches = [
        patch("a", "b" if i < 20 else "c", area=10) for i in range(30)
    ]
    b_patches = [patch("b", "a", area=50) for _ in range(4)]
    everything = a_patches + b_patches
    mask = np.zeros((4, 4), dtype=np.uint8)
    samples = [(mask, mask, everything[i::4]) for i in range(4)]
    dataset = dataset_factory("review")
    add_hand_run(
        dataset,
        ["a", "b", "c"],
        samples,
        hand_summary(everything, [], num_pixels=10_000),
    )
    return dataset


def test_sample_is_stratified_and_capped_per_class(run):
    result = _draw(run)
    counts = Counter(p[1] for p in _sampled(run))
    assert counts == {"a": 25, "b": 4}
    assert result.result["num_sampled"] == 29
    assert result.result["classes"] == [
        {"class": "a", "flagged_patches": 30, "flagged_pixels": 300,
         "sampled": 25},
        {"class": "b", "flagged_patches": 4, "flagged_pixels": 200,
         "sampled": 4},
    ]  # fmt: skip


def test_sample_by_suggested_class(run):
    _draw(run, per_class=5, stratify_by="suggested")
    assert Counter(p[2] for p in _sampled(run)) == {"a": 4, "b": 5, "c": 5}
    review = run.load_run_results("fixer", cache=False).review
    assert review["stratify_by"] == "suggested" and review["per_class"] == 5


def test_sample_is_seeded_and_a_redraw_clears_the_old_tags(run):
    _draw(run, per_class=5, seed=7)
    first = {p[0] for p in _sampled(run)}
    _draw(run, per_class=5, seed=7)
    assert {p[0] for p in _sampled(run)} == first
    _draw(run, per_class=5, seed=8)
    second = {p[0] for p in _sampled(run)}
    assert second != first and len(second) == 9  # 5 a + 4 b


def test_review_view_holds_only_the_sampled_patches(run):
    _draw(run, per_class=3)
    view = run.load_saved_view("fixer-review")
    assert len(view) == 6  # one sample per patch: 3 a + 3 b
    assert set(view.values(f"{FIELD}.id")) == {p[0] for p in _sampled(run)}


def test_estimate_equals_hand_computation(run):
    _draw(run)
    sampled = _sampled(run)
    a_ids = [p[0] for p in sampled if p[1] == "a"]
    b_ids = [p[0] for p in sampled if p[1] == "b"]
    # Reviewers tag in the review view (patches), as in the App:
    # a: 20 confirmed, 5 rejected; b: 1 confirmed, 1 rejected, 1 both
    # (a conflict, so missing), 1 not reviewed.
    view = run.load_saved_view("fixer-review")
    marks = {
        CONFIRMED: a_ids[:20] + b_ids[:1] + b_ids[2:3],
        REJECTED: a_ids[20:] + b_ids[1:3],
    }
    for tag, ids in marks.items():
        view.select_labels(ids=ids, fields=FIELD).tag_labels(
            tag, label_fields=FIELD
        )
    result = _execute("estimate_flag_precision", run).result
    classes = {r["class"]: r for r in result_classes(run)}
    assert classes["a"]["precision"] == 0.8
    assert classes["b"]["precision"] == 0.5
    assert classes["b"]["missing"] == 2
    assert result["missing"] == 2 and result["conflicting"] == 1
    assert result["reviewed"] == 27
    patches_row, pixels_row = result["overall"]
    p = (30 * 0.8 + 4 * 0.5) / 34
    assert patches_row["precision"] == pytest.approx(p)
    assert patches_row["expected_true"] == pytest.approx(34 * p)
    p_pix = (300 * 0.8 + 200 * 0.5) / 500
    assert pixels_row["precision"] == pytest.approx(p_pix)
    assert pixels_row["expected_true"] == pytest.approx(500 * p_pix)
    expected = estimate_precision(
        [
            StratumReview("a", 30, 300, 25, 20, 5),
            StratumReview("b", 4, 200, 4, 1, 1),
        ]
    )
    low, high = expected["overall"]["precision_patches"][1:]
    assert (patches_row["low"], patches_row["high"]) == pytest.approx(
        (low, high)
    )
    assert low < p < high


def result_classes(dataset):
    return dataset.load_run_results("fixer", cache=False).precision["classes"]


def test_verdicts_outside_the_sample_do_not_count(run):
    _draw(run, per_class=1)
    outside = [p[0] for p in _patches(run) if SAMPLED not in p[3]]
    run.select_labels(ids=outside, fields=FIELD).tag_labels(
        CONFIRMED, label_fields=FIELD
    )
    result = _execute("estimate_flag_precision", run).result
    assert result["reviewed"] == 0 and result["missing"] == 2
    assert result["overall"][0]["precision"] is None
    assert result["unreviewed"] == ["a", "b"]


def test_estimate_needs_a_sample(run):
    with pytest.raises(ExecutionError, match="has no review sample"):
        _execute("estimate_flag_precision", run)


def test_redraw_drops_the_stale_estimate(run):
    _draw(run, per_class=2)
    _execute("estimate_flag_precision", run)
    _draw(run, per_class=3)
    assert run.load_run_results("fixer", cache=False).precision is None


def test_bad_parameters_are_refused(fixer_plugin, run):
    review = importlib.import_module(
        f"{fixer_plugin.module.__name__}.operators._review"
    )
    with pytest.raises(ValueError, match="per_class must be positive"):
        review.draw_review_sample(run, "fixer", per_class=0)
    with pytest.raises(ValueError, match="stratify_by must be one of"):
        review.draw_review_sample(run, "fixer", stratify_by="image")
    with pytest.raises(ValueError, match=f"'{run.name}' has no FIXER run"):
        review.estimate_flag_precision(run, "nope")


def test_python_entry_points(fixer_plugin, run):
    draw = fixer_plugin.get_operator("draw_review_sample")
    assert draw(run, per_class=2, seed=3).result["num_sampled"] == 4
    estimate = fixer_plugin.get_operator("estimate_flag_precision")
    assert estimate(run).result["missing"] == 4


def test_delete_run_removes_the_review_view(run):
    _draw(run, per_class=2)
    _execute("delete_label_error_run", run)
    assert not run.has_saved_view("fixer-review")


def test_draw_form_offers_the_strata(fixer_plugin, run):
    ctx = foo.ExecutionContext(
        request_params={
            "dataset_name": run.name,
            "dataset_id": str(run._doc.id),
            "params": {"run_key": "fixer"},
        }
    )
    props = (
        fixer_plugin.get_operator("draw_review_sample")
        .resolve_input(ctx)
        .type.properties
    )
    assert props["per_class"].default == 25
    assert props["stratify_by"].type.values == ["given", "suggested"]
    assert props["seed"].default == 0
    assert "fixer-review" in props["notice"].view.label


def test_a_foreign_review_view_is_neither_replaced_nor_deleted(run):
    run.save_view("fixer-review", run.limit(1))
    with pytest.raises(ExecutionError, match="did not write; rename"):
        _draw(run)
    _execute("delete_label_error_run", run)
    assert len(run.load_saved_view("fixer-review")) == 1
