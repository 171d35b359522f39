"""Evidence on each patch, the error map field and the review panel's
operators, on real FiftyOne datasets."""

from __future__ import annotations

import os
import uuid
from collections import Counter

import cv2
import numpy as np
import pytest
from fixer_testing import PLUGIN, detection_mask, write_scenes_dataset

from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
from fiftyone import ViewField as F  # noqa: E402
from fiftyone.operators.executor import ExecutionError  # noqa: E402

GT, PROBS = "ground_truth", "probs_path"
CONFIRMED, REJECTED = "fixer:confirmed", "fixer:rejected"


def _execute(name, dataset, **params):
    result = foo.execute_operator(
        f"{PLUGIN}/{name}", dict(dataset=dataset, params=params)
    )
    result.raise_exceptions()
    return result.result


def _find(dataset, run_key="fixer"):
    params = {"gt_field": GT, "probs_field": PROBS, "run_key": run_key}
    _execute("find_label_errors", dataset, **params, **SIMULATED_MODEL)
    dataset.reload()


@pytest.fixture(scope="module", params=[False, True], ids=["files", "inline"])
def run(request, fixer_plugin, tmp_path_factory):
    scenes = make_scenes(10, seed=0)
    dataset = fo.Dataset(f"evidence-{uuid.uuid4().hex[:10]}")
    try:
        write_scenes_dataset(
            dataset,
            scenes,
            tmp_path_factory.mktemp("evidence"),
            inline_masks=request.param,
        )
        _find(dataset)
        yield dataset, scenes, request.param
    finally:
        dataset.delete()


def _detections(dataset):
    return [
        (sample, det)
        for sample in dataset.iter_samples()
        for det in sample["fixer_patches"].detections
    ]


def test_every_patch_carries_its_evidence_and_reason(run):
    dataset, _, _ = run
    rows = _detections(dataset)
    assert rows
    pairs = Counter((d.given_label, d.suggested_label) for _, d in rows)
    for _, d in rows:
        assert d.top_classes[0] == d.suggested_label
        assert len(d.top_classes) == len(d.top_probs) == 3
        assert d.top_probs == sorted(d.top_probs, reverse=True)
        assert 0 < d.given_threshold <= 1
        assert d.given_prob < d.top_probs[0]
        assert d.rule in ("pixel", "region")
        assert d.same_confusion == pairs[d.given_label, d.suggested_label] - 1
        assert d.reason.startswith(f"Labelled {d.given_label}; ")
        assert f"{d.suggested_label} ({d.top_probs[0]:.2f})" in d.reason
        if d.rule == "region":
            assert "over the whole region" in d.reason
        else:
            assert "on this part of the region" in d.reason
        if d.issue:
            assert f"(issue: {d.issue})" in d.reason


def test_the_error_map_is_high_inside_patches_and_low_outside(run):
    dataset, scenes, inline = run
    schema = dataset.get_field_schema()
    assert schema["fixer_error_map"].document_type is fo.Heatmap
    shape = scenes.labels.shape[1:]
    checked = 0
    for sample in dataset.iter_samples():
        heat = sample["fixer_error_map"]
        if inline:
            assert heat.map_path is None
            values = heat.map
        else:
            assert heat.map is None
            maps, corrected = (
                os.path.dirname(p)
                for p in (heat.map_path, sample["fixer_corrected"].mask_path)
            )
            assert os.path.dirname(maps) == os.path.dirname(corrected)
            assert os.path.basename(maps).startswith("error-maps-")
            values = cv2.imread(heat.map_path, cv2.IMREAD_UNCHANGED) / 255
            assert heat.range == [0, 255]
        inside = np.zeros(shape, bool)
        for det in sample["fixer_patches"].detections:
            mask = detection_mask(det, shape)
            inside |= mask
            assert values[mask].max() == pytest.approx(
                det.error_probability, abs=1 / 255
            )
            checked += 1
        assert not values[~inside].any()
        assert values.mean() == pytest.approx(
            sample["fixer_error_score"], abs=2e-3
        )
    assert checked


def test_a_rerun_replaces_the_error_maps_and_delete_removes_them(
    fixer_plugin, tmp_path
):
    dataset = fo.Dataset(f"evidence-rerun-{uuid.uuid4().hex[:10]}")
    try:
        write_scenes_dataset(dataset, make_scenes(4, seed=1), tmp_path)
        dataset.add_sample_field(
            "my_heat", fo.EmbeddedDocumentField, fo.Heatmap
        )
        _find(dataset)
        first = dataset.values("fixer_error_map.map_path")
        assert all(os.path.isfile(p) for p in first)
        _find(dataset)
        second = dataset.values("fixer_error_map.map_path")
        assert all(os.path.isfile(p) for p in second)
        assert not any(os.path.exists(p) for p in first)
        _execute("delete_label_error_run", dataset, run_key="fixer")
        dataset.reload()
        assert not dataset.has_sample_field("fixer_error_map")
        assert dataset.has_sample_field("my_heat")  # the user's stays
        assert not any(os.path.exists(p) for p in second)
    finally:
        dataset.delete()


# -- the review panel's operators ---------------------------------------------


@pytest.fixture
def reviewed(fixer_plugin, tmp_path):
    dataset = fo.Dataset(f"review-queue-{uuid.uuid4().hex[:10]}")
    try:
        write_scenes_dataset(dataset, make_scenes(10, seed=0), tmp_path)
        _find(dataset)
        _execute(
            "draw_review_sample",
            dataset,
            run_key="fixer",
            per_class=3,
            stratify_by="given",
            seed=0,
        )
        yield dataset
    finally:
        dataset.delete()


def _queue(dataset, **params):
    """The whole queue: its opening answer, with every page's rows."""
    queue = _execute("get_review_queue", dataset, **params)
    rows = list(queue["rows"])
    size = params.get("page_size") or len(rows) or 1
    for start in range(len(rows), len(queue["ids"]), size):
        page = queue["ids"][start : start + size]
        rows += _execute(
            "get_review_page", dataset, run_key=queue["run_key"], ids=page
        )["rows"]
    return {**queue, "rows": rows}


def _examples(dataset, ids):
    return _execute("get_review_examples", dataset, run_key="fixer", ids=ids)


def test_the_queue_holds_the_sample_with_outlines_and_evidence(reviewed):
    queue = _queue(reviewed)
    assert queue["run_key"] == "fixer"
    assert queue["source"] == "fixer-review"
    assert queue["sources"][:2] == ["current view", "fixer-review"]
    assert "fixer-patches" in queue["sources"]
    sampled = reviewed.count_label_tags("fixer_patches")["fixer:review"]
    rows = queue["rows"]
    assert len(rows) == len(queue["ids"]) == sampled
    assert [r["id"] for r in rows] == queue["ids"]
    assert queue["done"] == 0
    for p in rows:
        x, y, w, h = p["box"]
        points = np.concatenate([np.array(c) for c in p["outline"]])
        assert points[:, 0].min() >= x and points[:, 0].max() < x + w
        assert points[:, 1].min() >= y and points[:, 1].max() < y + h
        assert os.path.isfile(p["filepath"])
        assert p["reason"].startswith(f"Labelled {p['given_label']}")
        assert p["top_classes"][0] == p["suggested_label"]
        assert p["verdict"] is None and p["sampled"]
    assert queue["estimate"] == {
        "reviewed": 0,
        "missing": sampled,
        "precision": None,
        "low": None,
        "high": None,
    }


def test_the_queue_comes_a_page_at_a_time(reviewed):
    whole = _queue(reviewed, page_size=1000)
    first = _execute("get_review_queue", reviewed, page_size=2)
    assert first["ids"] == whole["ids"]
    assert [r["id"] for r in first["rows"]] == whole["ids"][:2]
    paged = _queue(reviewed, page_size=2)
    assert paged["rows"] == whole["rows"]
    # a page is answered in the order asked, unknown ids left out
    asked = [whole["ids"][3], "0" * 24, whole["ids"][1]]
    page = _execute("get_review_page", reviewed, run_key="fixer", ids=asked)
    assert [r["id"] for r in page["rows"]] == [asked[0], asked[2]]


def test_the_queue_reads_any_view_of_patches_in_its_order(reviewed):
    # a run's saved view of one error type: samples, filtered patches
    name = "fixer-general"
    queue = _queue(reviewed, source=name, page_size=3)
    view = reviewed.load_saved_view(name)
    expected = view.values("fixer_patches.detections.id", unwind=True)
    assert queue["source"] == name and queue["ids"] == expected
    assert {r["error_type"] for r in queue["rows"]} == {"general"}
    assert [r["id"] for r in queue["rows"]] == expected
    # every patch of the run, highest score first (a patches view)
    queue = _queue(reviewed, source="fixer-patches")
    scores = [r["score"] for r in queue["rows"]]
    assert len(scores) == reviewed.count("fixer_patches.detections")
    assert not all(r["sampled"] for r in queue["rows"])
    # the view open in the App: any filter and order
    view = reviewed.filter_labels("fixer_patches", F("area") > 20).sort_by(
        "filepath", reverse=True
    )
    result = foo.execute_operator(
        f"{PLUGIN}/get_review_queue", dict(view=view, params={})
    )
    result.raise_exceptions()
    queue = result.result
    assert queue["source"] == "current view"
    assert queue["ids"] == view.values(
        "fixer_patches.detections.id", unwind=True
    )
    # a view without patches says so (by default the review sample opens)
    no_patches = reviewed.select_fields("ground_truth").limit(2)
    result = foo.execute_operator(
        f"{PLUGIN}/get_review_queue",
        dict(view=no_patches, params={"source": "current view"}),
    )
    assert result.result["run_key"] is None
    assert "no patches of a FIXER run" in result.result["message"]


def test_with_two_runs_the_queue_is_of_the_run_the_view_filters(reviewed):
    _find(reviewed, run_key="second")
    view = reviewed.filter_labels("second_patches", F("area") > 0)
    result = foo.execute_operator(
        f"{PLUGIN}/get_review_queue",
        dict(view=view, params={"source": "current view"}),
    )
    result.raise_exceptions()
    assert result.result["run_key"] == "second"
    assert result.result["ids"] == view.values(
        "second_patches.detections.id", unwind=True
    )


def test_examples_are_of_the_suggested_class_from_other_images(reviewed):
    queue = _queue(reviewed)
    answer = _examples(reviewed, queue["ids"])
    # the run's probabilities are stored: the model's own features
    assert answer["descriptor"] == "model features"
    _assert_examples(reviewed, queue["rows"], answer["examples"])
    # a page's answer is the whole queue's for its patches (one bank)
    page = _examples(reviewed, queue["ids"][2:4])["examples"]
    assert page == {i: answer["examples"][i] for i in queue["ids"][2:4]}


def _assert_examples(dataset, rows, examples, run_key="fixer"):
    masks = {
        s.id: s["ground_truth"].get_mask()
        for s in dataset.select_fields("ground_truth")
    }
    names = dataset.get_run_info(run_key).config.class_names
    with_examples = 0
    for p in rows:
        found = examples[p["id"]]
        assert len(found) <= 3
        with_examples += bool(found)
        distances = [e["distance"] for e in found]
        assert distances == sorted(distances)
        for e in found:
            assert e["sample_id"] != p["sample_id"]
            x, y, w, h = e["box"]
            region = masks[e["sample_id"]][y : y + h, x : x + w]
            suggested = names.index(p["suggested_label"])
            # the box holds a region of the suggested class
            assert (region == suggested).mean() > 0.3
    assert with_examples >= len(rows) // 2


def test_an_unreadable_image_leaves_its_patches_without_examples(reviewed):
    reviewed.compute_metadata()  # the sizes stay known
    lost = reviewed.first()
    os.remove(lost.filepath)
    os.remove(lost[PROBS])
    queue = _queue(reviewed, source="fixer-patches")
    examples = _examples(reviewed, queue["ids"])["examples"]
    assert queue["rows"]
    for p in queue["rows"]:
        if p["sample_id"] == lost.id:
            assert examples[p["id"]] == []
        assert all(e["sample_id"] != lost.id for e in examples[p["id"]])
    assert any(examples.values())


def test_verdicts_tag_the_patch_and_update_the_estimate(reviewed):
    patches = _queue(reviewed)["rows"]
    first, second = patches[0]["id"], patches[1]["id"]

    def verdict(label_id, value):
        return _execute(
            "set_review_verdict",
            reviewed,
            run_key="fixer",
            label_id=label_id,
            verdict=value,
        )["estimate"]

    estimate = verdict(first, "confirmed")
    assert estimate["reviewed"] == 1 and estimate["precision"] == 1.0
    estimate = verdict(second, "rejected")
    assert estimate["reviewed"] == 2 and 0 < estimate["precision"] < 1
    assert _queue(reviewed)["done"] == 2
    tags = reviewed.count_label_tags("fixer_patches")
    assert tags[CONFIRMED] == 1 and tags[REJECTED] == 1
    # changing one's mind replaces the tag; None clears it
    estimate = verdict(first, "rejected")
    assert estimate["precision"] == 0.0
    estimate = verdict(second, None)
    assert estimate["reviewed"] == 1
    tags = reviewed.count_label_tags("fixer_patches")
    assert tags[REJECTED] == 1 and CONFIRMED not in tags
    queue = _queue(reviewed)
    verdicts = {p["id"]: p["verdict"] for p in queue["rows"]}
    assert verdicts[first] == "rejected" and verdicts[second] is None
    assert queue["done"] == 1
    # the stored estimate is the panel's
    stored = reviewed.load_run_results("fixer", cache=False).precision
    assert stored["overall"]["reviewed"] == 1


def _reject_a_habit(dataset, queue, rejected: int = 3) -> list[str]:
    """Rejects the first patches of the (given, suggested) pair with the
    most patches in ``queue`` (a model's habit); returns that pair's
    patches in the queue's order."""
    pair = {
        r["id"]: (r["given_label"], r["suggested_label"])
        for r in queue["rows"]
    }
    counts = Counter(pair.values())
    habit = max(counts, key=counts.get)
    of_habit = [i for i in queue["ids"] if pair[i] == habit]
    assert len(of_habit) > rejected
    for label_id in of_habit[:rejected]:
        _execute(
            "set_review_verdict",
            dataset,
            run_key="fixer",
            label_id=label_id,
            verdict="rejected",
        )
    return of_habit


def test_the_queue_sinks_the_pairs_the_reviewer_rejects(reviewed):
    before = _queue(reviewed, source="fixer-patches")
    of_habit = _reject_a_habit(reviewed, before)
    rejected = of_habit[:3]
    after = _queue(reviewed, source="fixer-patches")
    ids = after["ids"]
    assert sorted(ids) == sorted(before["ids"]) and after["done"] == 3
    # what is left to review comes first; the reviewed patches last
    assert ids[-3:] == rejected
    left = [i for i in before["ids"] if i not in rejected]
    place = {i: k for k, i in enumerate(ids)}
    rest = [i for i in left if i not in of_habit]
    # the habit's other patches move down, the rest keep their order
    assert [i for i in ids if i in rest] == rest
    assert all(place[i] > left.index(i) for i in of_habit[3:]), (
        "the rejected pair's patches should move down the queue"
    )
    # the review sample keeps its order (it is drawn to be reviewed whole)
    sample = _queue(reviewed)
    assert sample["ids"] == _queue(reviewed)["ids"]
    assert sample["ids"] == reviewed.load_saved_view("fixer-review").values(
        "fixer_patches.id"
    )


def test_the_panel_reorders_what_it_has_not_fetched_as_verdicts_come(
    reviewed,
):
    before = _queue(reviewed, source="fixer-patches")
    ids, places = before["ids"], before["places"]
    assert places == list(range(1, len(ids) + 1))
    # the reviewer rejects the habit's first patches, then the panel
    # asks for the order of what it has not fetched
    of_habit = _reject_a_habit(reviewed, before)
    start = ids.index(of_habit[2]) + 1
    tail = ids[start:]
    assert any(i in of_habit for i in tail)
    answer = _execute(
        "get_review_order",
        reviewed,
        run_key="fixer",
        ids=tail,
        places=places[start:],
    )
    reordered = [tail[k] for k in answer["order"]]
    # the panel names the pair it moves down
    habit = next(r for r in before["rows"] if r["id"] == of_habit[0])
    sinking = answer["sinking"][0]
    assert sinking["given"] == habit["given_label"]
    assert sinking["suggested"] == habit["suggested_label"]
    assert 0 < sinking["weight"] < 1
    assert _queue(reviewed, source="fixer-patches")["sinking"] == [sinking]
    # a pair is named only where some of its patches are left
    others = [k for k, i in enumerate(tail) if i not in of_habit]
    assert not _execute(
        "get_review_order",
        reviewed,
        run_key="fixer",
        ids=[tail[k] for k in others],
        places=[places[start + k] for k in others],
    )["sinking"]
    assert sorted(reordered) == sorted(tail)
    # as the queue opened now orders them, from the view's places
    opened = _queue(reviewed, source="fixer-patches")["ids"]
    assert reordered == [i for i in opened if i in set(tail)]
    assert reordered != tail
    assert all(
        reordered.index(i) >= tail.index(i) for i in tail if i in of_habit
    )
    # the review sample keeps its order: nothing to reorder
    assert _queue(reviewed)["places"] is None
    with pytest.raises(ExecutionError, match="2 patch ids but 1 places"):
        _execute(
            "get_review_order",
            reviewed,
            run_key="fixer",
            ids=tail[:2],
            places=[1],
        )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(verdict="maybe"), "Invalid enum value"),
        (dict(label_id="0" * 24, verdict="confirmed"), "has no patch"),
    ],
    ids=["bad-verdict", "unknown-patch"],
)
def test_a_bad_verdict_or_patch_is_refused(reviewed, params, message):
    label_id = _queue(reviewed)["ids"][0]
    params = {"run_key": "fixer", "label_id": label_id, **params}
    with pytest.raises(ExecutionError, match=message):
        foo.execute_operator(
            f"{PLUGIN}/set_review_verdict",
            dict(dataset=reviewed, params=params),
        )
    assert not reviewed.count_label_tags("fixer_patches").get(CONFIRMED)


def test_without_a_review_sample_the_queue_is_every_patch(
    fixer_plugin, tmp_path
):
    dataset = fo.Dataset(f"review-none-{uuid.uuid4().hex[:10]}")
    try:
        write_scenes_dataset(dataset, make_scenes(3, seed=0), tmp_path)
        _find(dataset)
        queue = _queue(dataset)
        assert queue["source"] == "current view"
        assert queue["sources"][0] == "current view"
        assert "fixer-patches" in queue["sources"]
        assert "fixer-review" not in queue["sources"]
        assert queue["ids"] == dataset.values(
            "fixer_patches.detections.id", unwind=True
        )
        assert queue["estimate"] is None
        with pytest.raises(ExecutionError, match="not a saved view"):
            _execute("get_review_queue", dataset, source="fixer-review")
    finally:
        dataset.delete()
