"""Labels their neighbouring frames contradict: found without the model's
say-so, scored by the model, and nothing found where frames are not
views of one scene."""

import cv2
import numpy as np
import pytest

from fixer_core import FinderConfig, explain_patches, find_label_errors
from fixer_core.corrections import apply_patches
from fixer_core.issues import NEIGHBOURS_ISSUE
from fixer_core.neighbours import (
    NEIGHBOURS_CAUSE,
    began_with_relabel,
    doubt_with_testimony,
    file_signature,
    image_signature,
    lies_between,
    likelihood_ratios,
    neighbour_labels,
    odd_one_out,
    relabelled_share,
    same_view,
    vouched_for,
    vouched_where_moved,
)
from fixer_core.ordering import view_order

SIZE = (60, 80)


def _sequence(n=5, step=2):
    """Frames of class 0 with a 14x14 object of class 1 moving ``step`` px
    per frame, and a ground strip of class 2."""
    labels = np.zeros((n, *SIZE), np.int64)
    labels[:, 45:, :] = 2
    for i in range(n):
        labels[i, 10:24, 10 + step * i : 24 + step * i] = 1
    return labels


def _probs(truth, sure=0.9):
    k = 3
    probs = np.full((len(truth), k, *SIZE), (1 - sure) / (k - 1), np.float32)
    for c in range(k):
        probs[:, c][truth == c] = sure
    return probs


def _odd(previous, label, following):
    common = neighbour_labels(previous, label, following)
    return None if common is None else odd_one_out(common, label)


def test_a_slip_in_one_frame_is_the_odd_one_out():
    labels = _sequence()
    labels[2, 10:24, 14:28] = 0  # the object painted over in frame 2
    odd = _odd(labels[1], labels[2], labels[3])
    assert odd is not None
    # the pixels of the object that both neighbours label 1
    assert (odd[10:24, 16:26] == 1).all()
    assert (odd[odd >= 0] == 1).all()


def test_steady_motion_is_not_a_slip():
    labels = _sequence(step=3)
    assert _odd(labels[1], labels[2], labels[3]) is None


def test_frames_of_other_scenes_are_not_neighbours():
    labels = _sequence()
    # the frames before and after are of two other scenes
    before, after = np.full(SIZE, 2, np.int64), np.full(SIZE, 0, np.int64)
    assert _odd(before, labels[2], after) is None
    assert _odd(labels[1], labels[2], labels[3][:, :-1]) is None


def _painted_over(model: tuple[float, float, float]):
    """The sequence's labels with the object painted over in frame 2, and
    a model that gives the painted pixels these class probabilities (a
    faithful one elsewhere)."""
    truth = _sequence()
    labels = truth.copy()
    labels[2, 10:24, 14:28] = 0
    probs = _probs(truth)
    probs[2, :, 10:24, 14:28] = np.array(model)[:, None, None]
    return labels, probs


def test_the_finder_flags_a_slip_the_model_doubts_but_does_not_name():
    # the model doubts frame 2's label (background 0.7, under its usual
    # 0.9) but sees the object too faintly (0.2) to suggest it
    labels, probs = _painted_over((0.7, 0.2, 0.1))
    patches, summary = find_label_errors(labels, probs, batch_size=2)
    odd = [p for p in patches if p.cause == NEIGHBOURS_CAUSE]
    assert [
        (p.image_index, p.given_label, p.suggested_label) for p in odd
    ] == [(2, 0, 1)]
    assert odd[0].area >= 10 * 14
    assert all(p.image_index == 2 for p in patches)
    assert all(i.name != NEIGHBOURS_ISSUE for i in summary.issues)


def test_a_clean_sequence_with_a_faithful_model_gets_no_neighbour_patches():
    labels = _sequence()
    patches, _ = find_label_errors(labels, _probs(labels), batch_size=2)
    assert patches == []


def test_a_contradicted_label_the_model_backs_is_not_flagged():
    truth = _sequence()
    labels = truth.copy()
    labels[2, 10:24, 14:28] = 0
    # the model agrees with frame 2's label: the neighbours alone do not
    # flag it
    probs = _probs(labels)
    patches, _ = find_label_errors(labels, probs, batch_size=2)
    assert all(p.cause != NEIGHBOURS_CAUSE for p in patches)


def _one_frame_mistake(step=2):
    """Correct labels; the model calls frame 2's object background. A
    thin post of class 2 passes 3 px a frame (no frame is a copy)."""
    labels = _sequence(step=step)
    for i in range(len(labels)):
        labels[i, 30:44, 50 + 3 * i : 53 + 3 * i] = 2
    seen = labels.copy()
    seen[2][seen[2] == 1] = 0
    return labels, _probs(seen)


def test_a_models_mistake_on_a_label_its_neighbours_repeat_is_not_flagged():
    labels, probs = _one_frame_mistake(step=0)  # a parked car
    patches, _ = find_label_errors(labels, probs, batch_size=2)
    assert patches == []
    # the same image without its neighbours is flagged
    order = [2, 0, 4, 1, 3]
    alone, _ = find_label_errors(labels[order], probs[order], batch_size=2)
    assert [
        (p.image_index, p.given_label, p.suggested_label) for p in alone
    ] == [(0, 1, 0)]
    assert alone[0].evidence.vouched is None


def test_only_the_part_the_neighbours_do_not_repeat_is_in_doubt():
    labels, probs = _one_frame_mistake()
    # frame 2's object is also drawn 10 px too wide (a slip): one patch,
    # whose object part the neighbours (2 px either side) label 1 too
    labels[2, 10:24, 28:38] = 1
    (patch,) = find_label_errors(labels, probs, batch_size=2)[0]
    assert (patch.image_index, patch.given_label, patch.suggested_label) == (
        2,
        1,
        0,
    )
    # in place, both neighbours label x 16-26 of the patch's x 14-38 as 1;
    # the previous frame aligned on its object's motion (2 px), x 16-28
    vouched = 14 * 12 / (14 * 24)
    assert patch.evidence.vouched == pytest.approx(vouched, abs=0.02)
    # scored as alone, times the share in doubt
    order = [2, 0, 4, 1, 3]
    (alone,) = find_label_errors(labels[order], probs[order])[0]
    assert alone.evidence.vouched is None
    assert patch.error_probability < alone.error_probability
    # the widened part past the next frame's object (x 30-38) is one
    # both neighbours label 0; the model confirms none of class 1 in this
    # frame, so nothing shows what their word is worth on it
    contradicted = 8 / 24
    assert patch.evidence.contradicted == pytest.approx(contradicted, abs=0.02)
    assert patch.score == pytest.approx(alone.score * (1 - vouched), abs=0.01)
    (reason,) = explain_patches([patch], ["a", "b", "c"])
    assert "the previous and next images label 50% of it b too" in reason
    assert "the previous and next images label 33% of it otherwise" in reason


def test_a_doubt_the_neighbours_testify_to_outranks_the_model_alone():
    # A weak model doubts two slips equally (given class 0.45); one is
    # where both neighbouring frames label the object, the other where
    # they are not views of the scene.
    truth = _sequence()
    labels = truth.copy()
    labels[2, 10:24, 14:28] = 0  # painted over in frame 2
    probs = _probs(truth, sure=0.55)
    probs[2, :, 10:24, 14:28] = np.array([0.45, 0.5, 0.05])[:, None, None]
    patches, _ = find_label_errors(labels, probs, batch_size=2)
    (testified,) = [p for p in patches if p.image_index == 2]
    assert testified.evidence.contradicted > 0.6
    order = [2, 0, 4, 1, 3]
    alone, _ = find_label_errors(labels[order], probs[order], batch_size=2)
    (model_only,) = [p for p in alone if p.image_index == 0]
    assert model_only.evidence.contradicted is None
    assert testified.score > 1.5 * model_only.score


def test_the_neighbours_weigh_less_on_objects_that_moved():
    # Frame of class 0 with two objects of class 1, all confirmed by the
    # model; the neighbours contradict one object (it drove on) and a
    # patch of class 0 the model does not confirm (a slip).
    label = np.zeros(SIZE, np.int64)
    label[10:20, 10:20] = 1
    label[30:40, 10:20] = 1
    contradicted = np.zeros(SIZE, bool)
    contradicted[10:20, 10:20] = True
    contradicted[40:50, 40:60] = True
    confirmed = np.ones(SIZE, bool)
    confirmed[40:50, 40:60] = False
    ratios = likelihood_ratios(contradicted, confirmed, label, 3)
    assert ratios[0] == SIZE[0] * SIZE[1] - 200 - 200 + 1
    assert ratios[1] == pytest.approx(201 / 101)
    assert ratios[2] == 1.0  # none confirmed: the neighbours' word is void
    assert doubt_with_testimony(0.3, ratios[0]) > 0.99
    assert doubt_with_testimony(0.3, ratios[1]) < 0.5
    assert doubt_with_testimony(0.3, 1.0) == pytest.approx(0.3)


def test_a_slip_the_neighbours_name_is_corrected_to_their_class():
    # A weak model doubts frame 2's label but calls the object the ground
    # (2); both neighbouring frames label it 1, as the truth does.
    labels, probs = _painted_over((0.3, 0.2, 0.5))
    patches, _ = find_label_errors(labels, probs, batch_size=2)
    (patch,) = patches
    assert (patch.image_index, patch.cause, patch.suggested_label) == (
        2,
        NEIGHBOURS_CAUSE,
        1,
    )
    # the neighbours' testimony makes it likely enough to correct
    threshold = FinderConfig().correct_min_probability
    assert patch.error_probability >= threshold
    corrected = [
        apply_patches(
            labels[i],
            [p for p in patches if p.image_index == i],
            min_probability=threshold,
            skip_repeats=True,
        )
        for i in range(len(labels))
    ]
    # the part both neighbours label 1 takes their class ...
    assert (corrected[2][10:24, 16:26] == 1).all()
    assert (corrected[2] != labels[2]).sum() == patch.area
    # ... and the other frames are left as they are
    for i in (0, 1, 3, 4):
        assert np.array_equal(corrected[i], labels[i])
    # the same frame without its neighbours: the model's doubt alone
    # leaves it to the reviewer
    order = [2, 0, 4, 1, 3]
    alone, _ = find_label_errors(labels[order], probs[order], batch_size=2)
    assert all(p.error_probability < threshold for p in alone)
    assert np.array_equal(
        apply_patches(
            labels[2],
            [p for p in alone if p.image_index == 0],
            min_probability=threshold,
            skip_repeats=True,
        ),
        labels[2],
    )


def _texture(width, seed):
    """A smooth grey texture ``SIZE[0]`` rows high."""
    noise = np.random.default_rng(seed).uniform(0, 255, (SIZE[0], width))
    return cv2.GaussianBlur(noise, (0, 0), 20)


def _frames(n=5, step=2, seed=0):
    """The camera's images of ``_sequence``'s scene, panning ``step`` px a
    frame."""
    wide = _texture(SIZE[1] + step * n, seed)
    return np.stack([wide[:, step * i : step * i + SIZE[1]] for i in range(n)])


def _noisy_neighbours():
    """``_painted_over``'s frames, whose neighbours of frame 2 each have
    a sixth of their ground relabelled: their labels agree on too little
    to pass for views of one scene by the labels alone."""
    labels, probs = _painted_over((0.7, 0.2, 0.1))
    labels[1, 45:, :40] = 0
    labels[3, 45:, 40:] = 0
    assert neighbour_labels(labels[1], labels[2], labels[3]) is None
    return labels, probs


def _neighbour_patches(patches):
    return [
        (p.image_index, p.given_label, p.suggested_label)
        for p in patches
        if p.cause == NEIGHBOURS_CAUSE
    ]


def test_near_duplicate_images_are_neighbours_whose_labels_disagree():
    labels, probs = _noisy_neighbours()
    signatures = np.stack([image_signature(im) for im in _frames()])
    assert same_view(signatures[1], signatures[3])
    found, _ = find_label_errors(labels, probs, batch_size=2)
    assert (2, 0, 1) not in _neighbour_patches(found)
    found, _ = find_label_errors(
        labels, probs, batch_size=2, signatures=signatures
    )
    assert (2, 0, 1) in _neighbour_patches(found)


def test_images_of_other_scenes_do_not_make_neighbours():
    labels, probs = _noisy_neighbours()
    signatures = np.stack(
        [image_signature(_texture(SIZE[1], seed)) for seed in range(5)]
    )
    assert not same_view(signatures[1], signatures[3])
    found, _ = find_label_errors(
        labels, probs, batch_size=2, signatures=signatures
    )
    assert _neighbour_patches(found) == []


def _stale_frame():
    """Five frames of an object moving 3 px a frame, correct but for the
    last, whose object is drawn about where it stood three frames before (a
    label made for another frame), the model right everywhere; and the
    images' signatures."""
    truth = _sequence(step=3)
    labels = truth.copy()
    labels[4, 10:24, :] = 0
    labels[4, 10:24, 14:28] = 1
    signatures = np.stack([image_signature(im) for im in _frames(step=3)])
    return labels, _probs(truth), signatures


def _slips(patches, order):
    return sorted((order[p.image_index], p.given_label) for p in patches)


def test_frames_out_of_time_order_vouch_for_nothing():
    """Between frames 0 and 1, as a shuffled dataset may put it, the
    stale frame agrees with both: they would vouch for its slip. It does
    not lie between them, so it is scored alone, as in time order."""
    labels, probs, signatures = _stale_frame()
    in_time, _ = find_label_errors(
        labels, probs, batch_size=2, signatures=signatures
    )
    assert _slips(in_time, range(5)) == [(4, 0), (4, 1)]
    order = [0, 4, 1, 2, 3]
    assert not lies_between(*signatures[order[:3]])
    assert lies_between(*signatures[:3])
    shuffled, _ = find_label_errors(
        labels[order], probs[order], batch_size=2, signatures=signatures[order]
    )
    assert _slips(shuffled, order) == [(4, 0), (4, 1)]
    # without the images, the order is trusted
    trusted, _ = find_label_errors(labels[order], probs[order], batch_size=2)
    assert trusted == []


def test_a_shuffled_video_is_put_back_in_the_order_of_its_views():
    labels, probs = _painted_over((0.3, 0.2, 0.5))
    signatures = np.stack([image_signature(im) for im in _frames()])
    assert view_order(signatures) is None  # in time order already
    shuffled = [3, 0, 4, 2, 1]
    order = view_order(signatures[shuffled])
    frames = np.asarray(shuffled)[order]
    assert np.abs(np.diff(frames)).tolist() == [1, 1, 1, 1]
    # in that order the neighbours name frame 2's slip, as in time order
    patches, summary = find_label_errors(
        labels[frames],
        probs[frames],
        batch_size=2,
        signatures=signatures[frames],
    )
    assert [
        (frames[p.image_index], p.cause, p.suggested_label) for p in patches
    ] == [(2, NEIGHBOURS_CAUSE, 1)]
    assert summary.framed == 3  # the frames between two others
    # as stored, only frame 2 lies between its neighbours (frames 4, 1)
    _, stored = find_label_errors(
        labels[shuffled],
        probs[shuffled],
        batch_size=2,
        signatures=signatures[shuffled],
    )
    assert stored.framed == 1


def test_images_of_no_shared_scene_keep_their_order():
    unrelated = [image_signature(_texture(SIZE[1], seed)) for seed in range(6)]
    assert view_order(unrelated) is None
    assert view_order([None, *unrelated[:2], None]) is None
    assert view_order([]) is None


def test_an_image_file_signature(tmp_path):
    image = _frames()[0].astype(np.uint8)
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), np.dstack([image] * 3))
    assert same_view(file_signature(path), image_signature(image))
    assert np.linalg.norm(file_signature(path)) == pytest.approx(1, abs=1e-5)
    assert file_signature(tmp_path / "missing.png") is None
    flat = image_signature(np.full(SIZE, 7, np.uint8))
    assert not flat.any() and not same_view(flat, flat)


def _pole_scene(pan: int) -> tuple[np.ndarray, np.ndarray, tuple, np.ndarray]:
    """Two frames of a facade (1) with a doorway (3) over a road (0) and a
    pole (2), 5 x 40 px, the camera panned ``pan`` px between them: both
    frames, and the pole's box and mask in the second."""
    previous = np.ones((120, 160), np.int64)
    previous[80:] = 0
    previous[40:80, 75:90] = 3
    previous[30:70, 60:65] = 2
    label = np.roll(previous, pan, axis=1)
    box = (60 + pan, 30, 5, 40)
    return previous, label, box, np.ones((40, 5), bool)


@pytest.mark.parametrize("pan", [4, 5])
def test_an_object_the_camera_moved_was_not_relabelled(pan):
    """The pole a few px further right with everything around it: the
    previous frame labels its place as the facade the model calls it, but
    the pole is there, moved with its surroundings (odd shifts too)."""
    previous, label, box, mask = _pole_scene(pan)
    x, y, w, h = box
    assert (previous[y : y + h, x : x + w] == 1).mean() >= 0.5
    assert relabelled_share(previous, label, 1, box, mask) == 0.0


def test_an_object_labelled_otherwise_in_place_was_relabelled():
    """The same frames, but the previous one labels the pole where it
    stands as a sign (4), the class the model names: the object was
    there, labelled otherwise, as where an annotator's mistake begins."""
    previous, label, box, mask = _pole_scene(pan=4)
    previous[previous == 2] = 1
    previous[30:70, 64:69] = 4
    assert began_with_relabel(relabelled_share(previous, label, 4, box, mask))


def test_an_object_outlined_first_inside_a_larger_region_was_not():
    """The pole labelled only in the second frame: the previous frame
    labels its place facade wherever it is aligned, as part of the whole
    facade. The pole was outlined for the first time, not relabelled."""
    previous, label, box, mask = _pole_scene(pan=4)
    previous[30:70, 60:65] = 1
    x, y, w, h = box
    assert (previous[y : y + h, x : x + w] == 1).all()
    assert relabelled_share(previous, label, 1, box, mask) == 0.0


def _panned(pan: int, steps: tuple[int, ...] = (-1, 0, 1)) -> np.ndarray:
    """Frames of ``_pole_scene``'s facade, the camera panned ``pan`` px
    further at each step."""
    scene, *_ = _pole_scene(0)
    return np.stack([np.roll(scene, pan * step, axis=1) for step in steps])


def test_a_pole_the_camera_panned_past_is_vouched_for_where_it_moved():
    """In place, the neighbours label the pole's pixels facade: they vouch
    for none of it. Aligned on its surroundings, they label it pole."""
    previous, label, following = _panned(4)
    _, _, box, mask = _pole_scene(0)
    common = neighbour_labels(previous, label, following)
    assert not vouched_for(common, label, label == 2).any()
    assert vouched_where_moved(previous, label, following, box, mask) == 1.0


def test_neighbours_that_did_not_move_steadily_vouch_for_nothing():
    """Both neighbours panned the same way (the middle frame does not sit
    between them): the alignment is not the motion of one scene."""
    previous, label, _ = _panned(4)
    _, _, box, mask = _pole_scene(0)
    assert vouched_where_moved(previous, label, previous, box, mask) == 0.0


def test_a_pole_labelled_in_one_frame_only_is_not_vouched_for():
    previous, label, following = _panned(4)
    previous[previous == 2] = 1
    following[following == 2] = 1
    _, _, box, mask = _pole_scene(0)
    assert vouched_where_moved(previous, label, following, box, mask) == 0.0


def test_a_models_mistake_on_a_pole_the_camera_panned_past_is_not_flagged():
    """A model blind to the pole in the middle frame of a pan: the frames
    around vouch for its label where it moved; alone, it is flagged."""
    labels = _panned(4, steps=(-2, -1, 0, 1, 2))
    seen = labels.copy()
    seen[2][seen[2] == 2] = 1
    probs = np.full((5, 4, *labels.shape[1:]), 0.02, np.float32)
    for c in range(4):
        probs[:, c][seen == c] = 0.94
    patches, _ = find_label_errors(labels, probs, batch_size=2)
    assert [p for p in patches if p.given_label == 2] == []
    order = [2, 0, 4, 1, 3]
    alone, _ = find_label_errors(labels[order], probs[order], batch_size=2)
    assert [
        (p.image_index, p.given_label, p.suggested_label) for p in alone
    ] == [(0, 2, 1)]


def test_a_patch_with_nothing_scored_around_it_is_not_aligned():
    """Surroundings all unscored (-1): nothing to align on, so the
    neighbours vouch for nothing where it moved, and the previous frame's
    share is read in place."""
    previous, label, following = _panned(4)
    _, _, box, mask = _pole_scene(0)
    for frame in (previous, label, following):
        frame[frame != 2] = -1
    assert vouched_where_moved(previous, label, following, box, mask) == 0.0
    previous[30:70, 60:65] = 1  # the pole's place labelled facade before
    assert relabelled_share(previous, label, 1, box, mask) == 1.0
