"""The review panel in the real App: patches reviewed by keys, from the
review sample or any view of a run's patches.

Driven in headless Chromium on the CamVid subset of ``conftest.py``; the
run and its review sample are made from Python first.
"""

from __future__ import annotations

import math
import statistics
import time

import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed"
)
expect, PlaywrightTimeout = sync_api.expect, sync_api.TimeoutError
pytestmark = pytest.mark.e2e

CONFIRMED, REJECTED = "fixer:confirmed", "fixer:rejected"
KEYS = ("c", "r", "c", "s", "c")  # confirm, reject, confirm, skip, confirm
PAGE = 50  # patches per page (js/review_panel.js)
LOADED_MS = 60_000  # longest wait for an answer of the server


@pytest.fixture(scope="module")
def review_sample(camvid_run, run_operator):
    """The run's review sample, drawn from Python (up to 5 per class)."""
    import fiftyone as fo

    dataset = fo.load_dataset(camvid_run.name)
    run_operator(
        "draw_review_sample",
        dataset,
        run_key="fixer",
        per_class=5,
        stratify_by="given",
        seed=0,
    )
    dataset.reload()
    return dataset


def _stored(dataset) -> str:
    """The stored overall precision estimate, as the panel prints it."""
    dataset.reload()  # the server process wrote it
    precision = dataset.load_run_results("fixer", cache=False).precision
    return f"{precision['overall']['precision_patches'][0]:.2f}"


def _open_panel(app):
    """The review panel: opened, unless the App kept it open (its server
    remembers the dataset's spaces)."""
    panel = app.page.get_by_test_id("fixer-review-panel")
    try:
        panel.wait_for(timeout=3_000)
    except PlaywrightTimeout:
        app.open_panel("fixer_review")
    return panel


def _drawn(crop) -> str | None:
    return crop.get_attribute("data-drawn")


def _wait_drawn(page, crop, patch_id: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _drawn(crop) != patch_id:
        if time.monotonic() > deadline:
            raise AssertionError(f"patch {patch_id} was never drawn")
        page.wait_for_timeout(5)


def test_review_five_patches_by_keys(
    app, review_sample, run_operator, record_property
):
    dataset = review_sample
    sampled = dataset.count_label_tags("fixer_patches")["fixer:review"]
    assert sampled >= len(KEYS) + 1

    app.open(dataset.name)
    panel = _open_panel(app)
    crop = panel.get_by_test_id("fixer-review-crop")
    counts = panel.get_by_test_id("fixer-review-counts")
    estimate = panel.get_by_test_id("fixer-review-estimate")
    expect(counts).to_have_text(f"0 done, {sampled} left")
    expect(estimate).to_contain_text("No estimate")
    expect(panel.get_by_test_id("fixer-review-position")).to_have_text(
        f"Patch 1 of {sampled}"
    )

    ids, seconds = [], []
    for i, key in enumerate(KEYS):
        patch_id = crop.get_attribute("data-patch-id")
        _wait_drawn(app.page, crop, patch_id)
        ids.append(patch_id)
        # the evidence of the patch on screen is the stored one
        det = dataset.select_labels(ids=[patch_id]).first()
        det = det["fixer_patches"].detections[0]
        expect(panel.get_by_test_id("fixer-review-reason")).to_have_text(
            det.reason
        )
        expect(panel.get_by_test_id("fixer-review-given")).to_contain_text(
            det.given_label
        )
        expect(panel.get_by_test_id("fixer-review-suggested")).to_contain_text(
            det.suggested_label
        )
        start = time.perf_counter()
        app.page.keyboard.press(key)
        # auto-advance: the next patch is drawn
        expect(crop).not_to_have_attribute("data-patch-id", patch_id)
        _wait_drawn(app.page, crop, crop.get_attribute("data-patch-id"))
        seconds.append(time.perf_counter() - start)
        expect(panel.get_by_test_id("fixer-review-position")).to_have_text(
            f"Patch {i + 2} of {sampled}"
        )

    done = sum(k in "cr" for k in KEYS)
    expect(counts).to_have_text(f"{done} done, {sampled - done} left")
    # every verdict is saved (reading the run's results while the server
    # rewrites them is a race)
    expect(panel).to_have_attribute("data-pending", "0")

    # the nearest examples of the suggested class are drawn, and what they
    # are nearest by (the run's probabilities are stored: model features)
    shown = crop.get_attribute("data-patch-id")
    answer = run_operator(
        "get_review_examples",
        dataset,
        run_key="fixer",
        ids=[shown],
    )
    expect(panel.get_by_test_id("fixer-review-example")).to_have_count(
        len(answer["examples"][shown])
    )
    assert answer["descriptor"] == "model features"
    descriptor = panel.get_by_test_id("fixer-review-descriptor")
    expect(descriptor).to_have_attribute("data-descriptor", "model features")
    if answer["examples"][shown]:
        expect(descriptor).to_contain_text("by the model's features")
    expect(estimate).to_contain_text(f"from {done} reviewed patches")
    expect(estimate).to_contain_text(f"Flag precision {_stored(dataset)}")

    # The verdicts are the patches' label tags in the database
    tags = dataset.count_label_tags("fixer_patches")
    assert tags.get(CONFIRMED) == 3 and tags.get(REJECTED) == 1
    marked = {
        key: set(
            dataset.select_labels(tags=tag).values(
                "fixer_patches.detections.id", unwind=True
            )
        )
        for key, tag in (("c", CONFIRMED), ("r", REJECTED))
    }
    for patch_id, key in zip(ids, KEYS, strict=True):
        if key in marked:
            assert patch_id in marked[key]
    stored = dataset.load_run_results("fixer", cache=False).precision
    assert stored["overall"]["reviewed"] == done
    before = _stored(dataset)

    # Previous goes back; a new verdict replaces the old one
    app.page.keyboard.press("ArrowLeft")
    expect(crop).to_have_attribute("data-patch-id", ids[-1])
    expect(panel.get_by_test_id("fixer-review-verdict")).to_have_text(
        "Verdict: confirmed"
    )
    app.page.keyboard.press("r")
    # the answer carries the new estimate (saved by then)
    expect(estimate).not_to_contain_text(f"Flag precision {before}")
    expect(panel).to_have_attribute("data-pending", "0")
    expect(estimate).to_contain_text(f"Flag precision {_stored(dataset)}")
    assert dataset.count_label_tags("fixer_patches").get(REJECTED) == 2

    median = statistics.median(seconds)
    record_property("median_seconds_per_patch", round(median, 3))
    print(
        f"\nreview panel: median {median:.3f} s per patch by keys "
        f"({', '.join(f'{s:.3f}' for s in seconds)})"
    )


def test_the_panel_reviews_the_view_open_in_the_app(app, review_sample):
    """A run's saved view of general errors, opened in the App: the panel
    queues its patches in the view's order, and follows the App back to
    the whole dataset (the review sample)."""
    dataset = review_sample
    name = "fixer-general"
    order = dataset.load_saved_view(name).values(
        "fixer_patches.detections.id", unwind=True
    )
    assert len(order) > 2
    app.open(dataset.name)
    app.open_saved_view(name)
    panel = _open_panel(app)
    crop = panel.get_by_test_id("fixer-review-crop")
    position = panel.get_by_test_id("fixer-review-position")
    expect(position).to_have_text(
        f"Patch 1 of {len(order)}", timeout=LOADED_MS
    )
    expect(panel.get_by_test_id("fixer-review-source")).to_have_value(
        "current view"
    )
    for i, patch_id in enumerate(order[:3]):
        expect(crop).to_have_attribute("data-patch-id", patch_id)
        _wait_drawn(app.page, crop, patch_id)
        app.page.keyboard.press("ArrowRight")
        expect(position).to_have_text(f"Patch {i + 2} of {len(order)}")
    # a saved view picked in the panel
    panel.get_by_test_id("fixer-review-source").select_option("fixer-review")
    sampled = dataset.count_label_tags("fixer_patches")["fixer:review"]
    expect(position).to_have_text(f"Patch 1 of {sampled}", timeout=LOADED_MS)


BIG = 10_000  # patches in the big queue
REJECTED_ON_PAGE = 10  # verdicts that reorder the big queue's tail


@pytest.fixture(scope="module")
def big_queue(review_sample):
    """A clone of the reviewed dataset whose run holds at least ``BIG``
    patches: each patch repeated (new ids, no tags)."""
    import fiftyone as fo

    dataset = review_sample.clone("e2e-camvid-big", persistent=True)
    try:
        copies = math.ceil(BIG / dataset.count("fixer_patches.detections"))
        for sample in dataset.iter_samples(autosave=True):
            dets = sample["fixer_patches"].detections
            extra = []
            for det in dets:
                values = {
                    n: det[n]
                    for n in det.field_names
                    if n not in ("id", "tags")
                }
                extra += [fo.Detection(**values) for _ in range(copies - 1)]
            sample["fixer_patches"].detections = dets + extra
        yield dataset
    finally:
        dataset.delete()


def _open_seconds(app, panel, crop, source: str) -> float:
    """Seconds from picking a queue in the panel to its first patch drawn."""
    picker = panel.get_by_test_id("fixer-review-source")
    # the previous queue's first examples are in (the server is idle)
    expect(
        panel.get_by_test_id("fixer-review-descriptor")
    ).not_to_have_attribute("data-descriptor", "", timeout=LOADED_MS)
    start = time.perf_counter()
    picker.select_option(source)
    # the queue's answer replaces the position (waits, never a time limit)
    expect(panel).to_have_attribute("data-source", source, timeout=LOADED_MS)
    _wait_drawn(app.page, crop, crop.get_attribute("data-patch-id"))
    return time.perf_counter() - start


def _patches(dataset):
    """Every patch of the run, in the dataset's order: ids, (given,
    suggested) pairs, probabilities and verdicts."""
    names = ("id", "given_label", "suggested_label", "error_probability")
    ids, given, suggested, probability, tags = (
        [v for sample in values for v in sample or ()]
        for values in dataset.values(
            [f"fixer_patches.detections.{a}" for a in (*names, "tags")]
        )
    )
    verdicts = [
        True if CONFIRMED in t else False if REJECTED in t else None
        for t in tags
    ]
    return ids, list(zip(given, suggested, strict=True)), probability, verdicts


def _queue_order(dataset) -> list[str]:
    """The whole dataset's patches in the queue's order: what is left to
    review first, the pairs the verdicts reject moved down."""
    from fixer_core import verdict_order

    ids, pairs, probability, verdicts = _patches(dataset)
    return [ids[i] for i in verdict_order(pairs, probability, verdicts)]


def _relearned(dataset, order: list[str], start: int) -> list[str]:
    """``order`` with its tail from ``start`` in the order the run's
    verdicts now teach, from each patch's place in the dataset's order
    (what the panel asks the server before it fetches a page)."""
    from fixer_core import learned_order, pair_weights

    ids, pairs, probability, verdicts = _patches(dataset)
    done = [k for k, v in enumerate(verdicts) if v is not None]
    weights = pair_weights(
        [pairs[k] for k in done],
        [probability[k] for k in done],
        [verdicts[k] for k in done],
    )
    at = {i: k for k, i in enumerate(ids)}
    tail = [at[i] for i in order[start:]]
    moved = learned_order(
        [pairs[k] for k in tail],
        [verdicts[k] for k in tail],
        weights,
        [k + 1 for k in tail],
    )
    return order[:start] + [order[start + k] for k in moved]


def test_a_big_queue_comes_a_page_at_a_time(app, big_queue, record_property):
    dataset = big_queue
    order = _queue_order(dataset)
    total = len(order)
    sampled = dataset.count_label_tags("fixer_patches")["fixer:review"]
    done = sum(
        dataset.count_label_tags("fixer_patches").get(t, 0)
        for t in (CONFIRMED, REJECTED)
    )
    assert total >= BIG
    app.open(dataset.name)
    panel = _open_panel(app)
    crop = panel.get_by_test_id("fixer-review-crop")
    position = panel.get_by_test_id("fixer-review-position")
    counts = panel.get_by_test_id("fixer-review-counts")
    # (waits on the server, which also serves the grid's 10,000 masks)
    expect(panel).to_have_attribute(
        "data-source", "fixer-review", timeout=LOADED_MS
    )
    big = _open_seconds(app, panel, crop, "current view")
    expect(position).to_have_text(f"Patch 1 of {total}")
    expect(counts).to_have_text(f"{done} done, {total - done} left")
    # the first page, not the whole queue
    expect(panel).to_have_attribute("data-pages", "1", timeout=LOADED_MS)
    expect(crop).to_have_attribute("data-patch-id", order[0])

    app.page.keyboard.press("c")  # not reviewed before
    expect(counts).to_have_text(f"{done + 1} done, {total - done - 1} left")
    expect(panel).to_have_attribute("data-pending", "0")
    assert (
        CONFIRMED
        in dataset.select_labels(ids=[order[0]])
        .first()["fixer_patches"]
        .detections[0]
        .tags
    )
    # The next page comes near this one's end, in the order the verdicts
    # so far teach (what follows the pages fetched is reordered first)
    learned = _relearned(dataset, order, PAGE)
    for _ in range(PAGE - 1):
        app.page.keyboard.press("ArrowRight")
    expect(position).to_have_text(f"Patch {PAGE + 1} of {total}")
    expect(crop).to_have_attribute("data-patch-id", learned[PAGE])
    _wait_drawn(app.page, crop, learned[PAGE])
    expect(panel).to_have_attribute("data-pages", "2", timeout=LOADED_MS)
    expect(panel).to_have_attribute("data-relearned", "1")
    expect(counts).to_have_text(f"{done + 1} done, {total - done - 1} left")

    # Rejections on this page reorder the next one
    for _ in range(REJECTED_ON_PAGE):  # auto-advance moves on
        app.page.keyboard.press("r")
    expect(panel).to_have_attribute("data-pending", "0", timeout=LOADED_MS)
    relearned = _relearned(dataset, learned, 2 * PAGE)
    assert relearned[2 * PAGE :] != learned[2 * PAGE :], (
        "the rejections should move patches of the queue's tail"
    )
    for _ in range(PAGE - REJECTED_ON_PAGE):
        app.page.keyboard.press("ArrowRight")
    expect(position).to_have_text(f"Patch {2 * PAGE + 1} of {total}")
    expect(crop).to_have_attribute("data-patch-id", relearned[2 * PAGE])
    expect(panel).to_have_attribute("data-relearned", "2")
    expect(panel).to_have_attribute("data-pages", "3")
    # and the panel names the pairs it moved down
    expect(panel.get_by_test_id("fixer-review-sinking")).to_contain_text(
        "Moved down after your verdicts: "
    )

    small = _open_seconds(app, panel, crop, "fixer-review")
    expect(position).to_have_text(f"Patch 1 of {sampled}")
    record_property("open_seconds_review_sample", round(small, 3))
    record_property("open_seconds_big_queue", round(big, 3))
    print(
        f"\nreview panel: {sampled} patches open in {small:.2f} s, "
        f"{total} in {big:.2f} s"
    )
