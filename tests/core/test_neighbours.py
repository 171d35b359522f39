"""Labels their neighbouring frames contradict: found without the model's
say-so, scored by the model, and nothing found where frames are not
views of one scene."""

import numpy as np

from fixer_core import find_label_errors
from fixer_core.issues import NEIGHBOURS_ISSUE
from fixer_core.neighbours import NEIGHBOURS_CAUSE, odd_one_out

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


def test_a_slip_in_one_frame_is_the_odd_one_out():
    labels = _sequence()
    labels[2, 10:24, 14:28] = 0  # the object painted over in frame 2
    odd = odd_one_out(labels[1], labels[2], labels[3])
    assert odd is not None
    # the pixels of the object that both neighbours label 1
    assert (odd[10:24, 16:26] == 1).all()
    assert (odd[odd >= 0] == 1).all()


def test_steady_motion_is_not_a_slip():
    labels = _sequence(step=3)
    assert odd_one_out(labels[1], labels[2], labels[3]) is None


def test_frames_of_other_scenes_are_not_neighbours():
    labels = _sequence()
    # the frames before and after are of two other scenes
    before, after = np.full(SIZE, 2, np.int64), np.full(SIZE, 0, np.int64)
    assert odd_one_out(before, labels[2], after) is None
    assert odd_one_out(labels[1], labels[2], labels[3][:, :-1]) is None


def test_the_finder_flags_a_slip_the_model_doubts_but_does_not_name():
    truth = _sequence()
    labels = truth.copy()
    labels[2, 10:24, 14:28] = 0  # painted over in frame 2
    probs = _probs(truth)
    # the model doubts frame 2's label (background 0.7, under its usual
    # 0.9) but sees the object too faintly (0.2) to suggest it
    probs[2, :, 10:24, 14:28] = np.array([0.7, 0.2, 0.1])[:, None, None]
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
