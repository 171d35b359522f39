"""A disagreement repeated in consecutive frames is one run, met once."""

import dataclasses

import numpy as np
import pytest
from fixer_testing import painted_over_frames

from fixer_core import (
    FinderConfig,
    LabelErrorFinder,
    Patch,
    apply_patches,
    discount_runs,
    error_map,
    find_label_errors,
)
from fixer_core.corrections import corrects, taken_back
from fixer_core.evidence import PatchEvidence, explain_patches
from fixer_core.patches import PatchGeometry
from fixer_core.repeats import (
    ExpectedErrors,
    RepeatLinker,
    box_iou,
    continue_runs,
    frame_probability,
    join_shards,
    run_of_length,
)


def _frames(squares, size=(64, 80), block=(12, 12), rise=6):
    """Frames labelled 0 with a ``block`` (height, width) of class 1 that
    the model sees as class 2, at the given (y, x) corners (None: no such
    block), over a ground of class 3 rising ``rise`` px a frame. At 6 px
    the frames are views of one scene whose labels still differ too much
    to vouch for each other's (see ``fixer_core.neighbours``); at 20 px
    they are not views of one scene."""
    n = len(squares)
    labels = np.zeros((n,) + size, np.int64)
    for i in range(n):
        labels[i, 60 - rise * i :, :] = 3
    probs = np.full((n, 4) + size, 0.02, np.float32)
    for i, corner in enumerate(squares):
        truth = labels[i].copy()
        if corner is not None:
            y, x = corner
            labels[i, y : y + block[0], x : x + block[1]] = 1
            truth[y : y + block[0], x : x + block[1]] = 2
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
    linked, shared = find_label_errors(labels, probs)
    assert shared.expected_errors == pytest.approx(
        sum(p.error_probability for p in linked)
    )
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
    # the probabilities are shared too, and the corrections follow them;
    # the error maps and scores, written as each image is scored, take
    # each image's own
    np.testing.assert_allclose(
        [p.error_probability for p in linked],
        [p.error_probability / np.sqrt(3) for p in alone],
    )
    np.testing.assert_allclose(
        [frame_probability(p) for p in linked],
        [p.error_probability for p in alone],
    )
    assert linked[0].error_probability < 0.5 <= alone[0].error_probability
    # as the first image was scored, before its run was known
    scored = run_of_length(linked[0], 1)
    assert taken_back([scored], {(0, 0): 3}, 0.5) == [scored]
    assert taken_back([scored], {}, 0.5) == []
    np.testing.assert_array_equal(
        apply_patches(labels[0], linked[:1], min_probability=0.5), labels[0]
    )
    np.testing.assert_array_equal(
        error_map(labels.shape[1:], linked[:1]),
        error_map(labels.shape[1:], alone[:1]),
    )


def test_a_thin_object_moving_past_its_width_stays_one_run():
    # a pole 3 px wide moving 4 px a frame: its boxes never overlap; taken
    # at least as wide as the camera's motion between views of one scene
    # (10 px in a 320 px wide image), they do. 9 px a frame is more than
    # the camera moves, and frames of other scenes are not moved views.
    cases = [(4, 6, [None, 0, 0]), (9, 6, [None] * 3), (4, 20, [None] * 3)]
    for step, rise, repeats in cases:
        corners = [(5, 20 + i * step) for i in range(3)]
        labels, probs = _frames(
            corners, size=(64, 320), block=(40, 3), rise=rise
        )
        patches, _ = find_label_errors(labels, probs)
        assert [p.repeat_of for p in patches] == repeats


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
            p,
            score=p.score * np.sqrt(p.run_length),
            error_probability=frame_probability(p),
            run_length=1,
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
    assert RepeatLinker(0).link(3, wide, image_shape=(8, 8)) == wide


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


def _shape(x: int, pair: tuple[int, int], width: int = 12) -> PatchGeometry:
    return PatchGeometry(
        box=(x, 5, width, 12),
        mask=np.ones((12, width), bool),
        given_label=pair[0],
        suggested_label=pair[1],
        area=12 * width,
        coverage=1.0,
        inside_share=1.0,
        suggested_share=0.0,
    )


def _patch(index: int, shape: PatchGeometry) -> Patch:
    return Patch(
        image_index=index,
        box=shape.box,
        image_shape=(64, 80),
        mask=shape.mask,
        given_label=shape.given_label,
        suggested_label=shape.suggested_label,
        score=1.0,
        area=shape.area,
        coverage=1.0,
        inside_share=1.0,
        given_prob=0.1,
        suggested_prob=0.9,
        error_type="mislabel",
    )


def _random_frames(rng, n: int) -> list[tuple[list[Patch], list]]:
    """Each frame's reported patches and unreported shapes: 0-3 boxes,
    12 or 2 px wide, that drift by 2-6 px a frame or jump, two class
    pairs, gaps."""
    frames = []
    for i in range(n):
        shapes = [
            _shape(
                int(rng.choice([5, 7, 9, 11, 40])),
                (1, int(suggested)),
                int(rng.choice([12, 2])),
            )
            for suggested in rng.choice([2, 3], size=rng.integers(0, 4))
        ]
        reported = rng.random(len(shapes)) < 0.6
        frames.append(
            (
                [
                    dataclasses.replace(
                        _patch(i, s),
                        error_probability=float(rng.random()),
                        evidence=PatchEvidence(
                            (), (), 0.5, "pixels", relabelled=relabelled
                        ),
                    )
                    for s, r, relabelled in zip(
                        shapes,
                        reported,
                        rng.choice([None, 0.0, 1.0], size=len(shapes)),
                        strict=True,
                    )
                    if r
                ],
                [s for s, r in zip(shapes, reported, strict=True) if not r],
            )
        )
    return frames


def _linked(frames, indices, window: int, motions):
    """The frames' patches linked by one linker, each frame with the
    camera's motion since the previous one, which linker, and the
    expected count kept as they stream."""
    linker, count = RepeatLinker(window), ExpectedErrors()
    out = []
    for i in indices:
        found = linker.link(
            i, *frames[i], image_shape=(64, 80), motion=motions[i]
        )
        count.add(i, found, linker)
        out += found
    return out, linker, count


@pytest.mark.parametrize("window", [1, 2, 3], ids=["w1", "w2", "w3"])
def test_shards_joined_link_as_one_linker_over_all_frames(window):
    rng = np.random.default_rng(window)
    for _ in range(40):
        n = int(rng.integers(2, 12))
        frames = _random_frames(rng, n)
        # 0, or more than a box's side: frames of one scene
        motions = rng.choice([0.0, 0.25], size=n)
        whole, linker, _ = _linked(frames, range(n), window, motions)
        # 1 to 4 shards, some shorter than the window, some empty
        edges = np.sort(rng.integers(0, n + 1, size=int(rng.integers(1, 4))))
        bounds = [0, *edges.tolist(), n]
        shards = [
            _linked(frames, range(a, b), window, motions)
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        joined = join_shards([s.shard_runs() for _, s, _ in shards])
        patches = [p for found, _, _ in shards for p in found]
        assert continue_runs(patches, joined) == whole
        assert joined.run_lengths == linker.run_lengths
        repeats = sum(p.repeat_of is not None for p in patches)
        assert repeats + joined.repeats == sum(
            p.repeat_of is not None for p in whole
        )
        # the expected count, kept per shard and merged, is the sum of
        # the probabilities the runs share
        first, *others = [count for _, _, count in shards]
        for count in others:
            first.merge(count, joined)
        final = discount_runs(whole, linker.run_lengths)
        mean, variance = first.estimate(linker.run_lengths)
        q = np.array([p.error_probability for p in final])
        assert mean == pytest.approx(q.sum())
        assert variance == pytest.approx((q * (1 - q)).sum())


@pytest.mark.parametrize("changed", [False, True], ids=["habit", "changed"])
def test_a_run_across_shards_is_one_run_for_the_finders(changed):
    """Two finders, each scoring one shard of the frames (the statistics
    of all of them), summarize and score a run that crosses the shards'
    edge as one finder does: a run of the model's habit, and one that
    began with a change of the label (frame 0 labels the block as the
    model sees it)."""
    labels, probs = _frames([(5, 3), (5, 5), (5, 7), (6, 9), (5, 11), None])
    if changed:
        labels[0][labels[0] == 1] = 2
    else:
        labels[0], probs[0] = labels[5], probs[5]
    whole, summary = find_label_errors(labels, probs)
    assert [p.run_length for p in whole] == [4] * 4
    assert summary.repeats == (0 if changed else 3)

    finders = [LabelErrorFinder(["a", "b", "c", "d"]) for _ in range(2)]
    found = []
    for finder, (start, stop) in zip(finders, [(0, 3), (3, 6)], strict=True):
        finder.update(labels, probs)
        for image in finder.find(
            labels[start:stop],
            probs[start:stop],
            image_indices=range(start, stop),
            following=labels[stop] if stop < len(labels) else None,
            preceding=labels[start - 1] if start else None,
        ):
            found += image
    first, second = finders
    joined = join_shards([f.findings()["runs"] for f in finders])
    first.merge_findings([second.findings()])
    found = discount_runs(continue_runs(found, joined), first.run_lengths)
    assert [(p.run, p.repeat_of, p.run_length) for p in found] == [
        (p.run, p.repeat_of, p.run_length) for p in whole
    ]
    assert [p.score for p in found] == pytest.approx([p.score for p in whole])
    assert first.summary().repeats == summary.repeats
    # the run's probabilities are shared in the expected count as one
    # finder shares them
    assert sum(p.error_probability for p in whole) == pytest.approx(
        summary.expected_errors
    )
    assert first.summary().expected_errors == pytest.approx(
        summary.expected_errors
    )
    assert first.summary().expected_errors_interval == pytest.approx(
        summary.expected_errors_interval
    )


def _scored_runs(labels, probs):
    """Each image's patches as the finder scores them, and with their
    runs' final scores (``discount_runs``)."""
    finder = LabelErrorFinder(["a", "b", "c", "d"])
    finder.update(labels, probs)
    raw = [p for image in finder.find(labels, probs) for p in image]
    return raw, discount_runs(raw, finder.run_lengths)


def test_a_run_that_began_with_a_change_of_its_label_keeps_its_score():
    # The block is labelled as the model sees it (2) in frames 0-1, then
    # 1 in frames 2-5: an annotator's mistake kept over four frames.
    labels, probs = _frames(
        [(5, 5), (5, 7), (6, 9), (6, 11), (7, 13), (7, 15)]
    )
    labels[:2][labels[:2] == 1] = 2
    raw, final = _scored_runs(labels, probs)
    # each frame repeats the label's mistake: none is a repeat, and each
    # keeps the score its own frame gives it
    assert [(p.image_index, p.run, p.repeat_of) for p in final] == [
        (i, (2, 0), None) for i in range(2, 6)
    ]
    assert [p.run_length for p in final] == [4] * 4
    assert [p.score for p in final] == [p.score for p in raw]
    assert [p.error_probability for p in final] == [
        p.error_probability for p in raw
    ]
    head = final[0]
    assert head.evidence.relabelled > 0.5
    assert final[1].evidence.relabelled == 0
    reasons = explain_patches(final, ["a", "b", "c", "d"])
    assert "the label changed here" in reasons[0]
    assert all("repeats the label's mistake" in r for r in reasons[1:])
    # each later frame carries the first frame's probability, and the
    # corrected labels take the mistake in every frame
    assert head.run_probability is None
    assert [p.run_probability for p in final[1:]] == [
        head.error_probability
    ] * 3
    for i in range(2, 6):
        corrected = apply_patches(
            labels[i],
            [p for p in final if p.image_index == i],
            skip_repeats=True,
        )
        assert (corrected == 2).sum() == (labels[i] == 1).sum() + (
            labels[i] == 2
        ).sum()


def test_a_frame_of_a_repeated_mistake_is_corrected_only_with_its_run():
    labels, probs = _frames(
        [(5, 5), (5, 7), (6, 9), (6, 11), (7, 13), (7, 15)]
    )
    labels[:2][labels[:2] == 1] = 2
    _, final = _scored_runs(labels, probs)
    later = final[1]

    def corrected(own: float, first: float) -> bool:
        patch = dataclasses.replace(
            later, error_probability=own, run_probability=first
        )
        return corrects(patch, 0.7, skip_repeats=True)

    assert corrected(0.9, 0.8)
    # a frame is a label error only if its run is
    assert not corrected(0.9, 0.5)
    assert not corrected(0.5, 0.9)
    # a habit's repeat carries no run probability: left to the reviewer
    assert not corrected(0.9, None)


def test_a_run_that_began_with_a_change_of_the_models_view_shares_its_score():
    # The same frames labelled 1 throughout; the model sees the block as
    # 1 in frames 0-1 and as 2 from frame 2 on: its habit, not a slip.
    labels, probs = _frames(
        [(5, 5), (5, 7), (6, 9), (6, 11), (7, 13), (7, 15)]
    )
    for i in (0, 1):
        block = labels[i] == 1
        probs[i, 1][block], probs[i, 2][block] = 0.94, 0.02
    raw, final = _scored_runs(labels, probs)
    (head,) = [p for p in final if p.repeat_of is None]
    (before,) = [p for p in raw if p.image_index == head.image_index]
    assert (head.image_index, head.run_length) == (2, 4)
    assert head.evidence.relabelled == 0
    assert head.score == pytest.approx(before.score / 2)
    assert head.error_probability == pytest.approx(
        before.error_probability / 2
    )
    (reason,) = explain_patches([head], ["a", "b", "c", "d"])
    assert "more likely the model's habit" in reason


def test_an_object_outlined_first_inside_a_larger_region_is_a_habits_run():
    # A large region of class 2 (a tree) in every frame; from frame 2 on a
    # block inside it is labelled 1 (a sign come near enough to be
    # outlined), which the model sees as the tree throughout. The previous
    # frame labels the block's place 2 as part of the whole tree: the
    # label did not relabel an object, and the run shares its score.
    labels, probs = _frames([None, None, (5, 5), (5, 7), (6, 9), (6, 11)])
    tree = np.zeros(labels.shape[1:], bool)
    tree[:30, :50] = True
    for i in range(len(labels)):
        canopy = tree & (labels[i] == 0)
        labels[i][canopy] = 2
        probs[i, 0][canopy], probs[i, 2][canopy] = 0.02, 0.94
    raw, final = _scored_runs(labels, probs)
    (head,) = [p for p in final if p.repeat_of is None]
    (before,) = [p for p in raw if p.image_index == head.image_index]
    assert (head.image_index, head.run_length) == (2, 4)
    assert (head.given_label, head.suggested_label) == (1, 2)
    assert head.evidence.relabelled == 0
    assert head.score == pytest.approx(before.score / 2)
    assert [p.repeat_of for p in final if p is not head] == [2, 2, 2]


def _moving_object(mistake: bool):
    """Ten frames of an object (class 1) moving 2 px a frame above a
    ground (class 2), near-identical labels (each frame the other's
    neighbour). Frames 3-7 label the object's top half 0: an annotator's
    mistake kept over five frames (``mistake``), or the model's habit (it
    sees it as 0 there, the labels right)."""
    labels, truth, probs = painted_over_frames(10, 0)
    labels[0] = truth[0]
    probs = np.where(
        truth[:, None] == np.arange(3)[None, :, None, None], 0.9, 0.05
    ).astype(np.float32)
    for i in range(3, 8):
        block = truth[i] == 1
        block[17:] = False
        if mistake:
            labels[i][block] = 0
        else:
            probs[i, 0][block], probs[i, 1][block] = 0.9, 0.05
    return labels, probs


def test_the_neighbours_of_a_repeated_mistake_do_not_vouch_for_it():
    # the frames around each of a run's later frames repeat its label:
    # where the run began with a change of the label, that is the same
    # mistake again, and every frame is reported with its own score
    labels, probs = _moving_object(mistake=True)
    patches, summary = find_label_errors(labels, probs)
    assert [p.image_index for p in patches] == [3, 4, 5, 6, 7]
    assert [p.run for p in patches] == [(3, 0)] * 5
    assert all(p.repeat_of is None for p in patches)
    assert summary.repeats == 0
    assert min(p.error_probability for p in patches) > 0.5


def test_the_neighbours_of_a_habit_vouch_for_its_labels():
    labels, probs = _moving_object(mistake=False)
    patches, summary = find_label_errors(labels, probs)
    # the run's middle frames are vouched for by their neighbours
    assert {p.image_index for p in patches} <= {3, 7}
    assert summary.vouched >= 3
