"""A disagreement repeated in consecutive frames is one run, met once."""

import dataclasses

import numpy as np

from fixer_core import (
    FinderConfig,
    apply_patches,
    discount_runs,
    find_label_errors,
)
from fixer_core.evidence import explain_patches
from fixer_core.repeats import RepeatLinker, box_iou


def _frames(squares, size=(64, 80)):
    """Frames labelled 0 with a block of class 1 that the model sees as
    class 2, at the given (y, x) corners (None: no such block), over a
    ground of class 3 rising 6 px a frame: the frames' labels differ too
    much to vouch for each other's (see ``fixer_core.neighbours``)."""
    n = len(squares)
    labels = np.zeros((n,) + size, np.int64)
    for i in range(n):
        labels[i, 60 - 6 * i :, :] = 3
    probs = np.full((n, 4) + size, 0.02, np.float32)
    for i, corner in enumerate(squares):
        truth = labels[i].copy()
        if corner is not None:
            y, x = corner
            labels[i, y : y + 12, x : x + 12] = 1
            truth[y : y + 12, x : x + 12] = 2
        for c in range(4):
            probs[i, c][truth == c] = 0.94
    return labels, probs


def test_a_run_of_frames_links_to_its_first_patch():
    # an object drifting 2 px per frame, then gone, then elsewhere
    labels, probs = _frames([(5, 5), (5, 7), (6, 9), None, (5, 50)])
    patches, summary = find_label_errors(labels, probs)
    by_image = {p.image_index: p for p in patches}
    assert sorted(by_image) == [0, 1, 2, 4]
    assert by_image[0].repeat_of is None
    assert by_image[1].repeat_of == 0
    assert by_image[2].repeat_of == 0
    # a gap ends the run; elsewhere in the image is another finding
    assert by_image[4].repeat_of is None
    assert summary.repeats == 2
    assert summary.to_dict()["repeats"] == 2


def test_a_run_shares_its_score_and_the_window_can_be_off():
    labels, probs = _frames([(5, 5), (5, 5), (5, 5)])
    linked, _ = find_label_errors(labels, probs)
    alone, summary = find_label_errors(
        labels, probs, config=FinderConfig(repeat_window=0)
    )
    assert [p.repeat_of for p in linked] == [None, 0, 0]
    assert [p.run for p in linked] == [(0, 0)] * 3
    assert [p.run_length for p in linked] == [3, 3, 3]
    assert [p.repeat_of for p in alone] == [None, None, None]
    assert [p.run_length for p in alone] == [1, 1, 1]
    assert summary.repeats == 0
    np.testing.assert_allclose(
        [p.score for p in linked], [p.score / np.sqrt(3) for p in alone]
    )
    # the probabilities and corrections do not wait for the run's end
    assert [p.error_probability for p in linked] == [
        p.error_probability for p in alone
    ]


def test_a_long_run_ranks_under_a_one_off_disagreement():
    # frames 0-3: one object in every frame; frame 5: a one-off elsewhere
    labels, probs = _frames([(5, 5), (5, 5), (5, 5), (5, 5), None, (5, 50)])
    patches, _ = find_label_errors(labels, probs)
    first = {p.image_index: p for p in patches if p.repeat_of is None}
    assert sorted(first) == [0, 5]
    assert first[0].run_length == 4 and first[5].run_length == 1
    assert first[5].score > first[0].score
    assert discount_runs(patches) == patches
    undiscounted = [
        dataclasses.replace(
            p, score=p.score * np.sqrt(p.run_length), run_length=1
        )
        for p in patches
    ]
    assert discount_runs(undiscounted) == patches


def test_other_classes_at_the_same_place_are_not_a_repeat():
    labels, probs = _frames([(5, 5), (5, 5)])
    probs[1, 2], probs[1, 3] = probs[1, 3].copy(), probs[1, 2].copy()
    patches, _ = find_label_errors(labels, probs)
    suggested = {p.image_index: p.suggested_label for p in patches}
    assert suggested == {0: 2, 1: 3}
    assert all(p.repeat_of is None for p in patches)


def test_the_linker_compares_the_window_of_previous_images_only():
    labels, probs = _frames([(5, 5), None, (5, 5)])
    patches, _ = find_label_errors(labels, probs)
    assert all(p.repeat_of is None for p in patches)
    wide, _ = find_label_errors(
        labels, probs, config=FinderConfig(repeat_window=2)
    )
    assert [p.repeat_of for p in wide] == [None, 0]
    assert RepeatLinker(0).link(3, wide) == wide


def test_box_iou():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]])
    iou = box_iou(np.array([0, 0, 10, 10]), boxes)
    np.testing.assert_allclose(iou, [1.0, 50 / 150, 0.0])


def test_the_corrected_labels_leave_repeats_to_the_reviewer():
    labels, probs = _frames([(5, 5), (5, 5)])
    patches, _ = find_label_errors(labels, probs)
    first, repeat = patches
    assert repeat.repeat_of == 0
    fixed = apply_patches(labels[0], [first], skip_repeats=True)
    kept = apply_patches(labels[1], [repeat], skip_repeats=True)
    assert (fixed[first.full_mask()] == 2).all()
    assert np.array_equal(kept, labels[1])
    assert (apply_patches(labels[1], [repeat])[repeat.full_mask()] == 2).all()


def test_the_reason_of_a_repeat_says_so():
    labels, probs = _frames([(5, 5), (5, 5)])
    patches, _ = find_label_errors(labels, probs)
    first, repeat = explain_patches(patches, ["a", "b", "c", "d"])
    assert "previous image" not in first
    assert "the next image shows the same disagreement" in first
    assert "previous image shows the same disagreement" in repeat
