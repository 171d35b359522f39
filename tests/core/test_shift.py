"""Labels shifted against their images are found and named."""

import numpy as np

from fixer_core import apply_patches, find_label_errors
from fixer_core.finder import SHIFTED_CAUSE
from fixer_core.issues import SHIFTED, SHIFTED_ISSUE
from fixer_core.shift import find_label_shift


def _street(size=(96, 128)):
    """A scene of blocks of four classes."""
    truth = np.zeros(size, np.int64)
    truth[:40] = 1
    truth[50:80, 10:40] = 2
    truth[20:70, 70:90] = 3
    truth[60:, 100:] = 2
    return truth


def _moved(label, dy, dx):
    out = np.roll(label, (dy, dx), axis=(0, 1))
    return out


def test_a_shifted_label_is_found_with_its_move():
    truth = _street()
    label = _moved(truth, 6, -9)
    shift = find_label_shift(label, truth)
    assert shift is not None
    assert (shift.dy, shift.dx) == (-6, 9)
    assert shift.explained > 0.8


def test_a_right_label_and_a_little_jitter_are_not_shifts():
    truth = _street()
    assert find_label_shift(truth, truth) is None
    assert find_label_shift(_moved(truth, 1, 0), truth) is None


def _run_with_a_shifted_label():
    """The finder on four frames of a street, the third one's label moved
    by (8, 8) px."""
    truth = np.stack([_street()] * 4)
    labels = truth.copy()
    labels[2] = _moved(truth[2], 8, 8)
    probs = np.full((4, 4) + truth.shape[1:], 0.02, np.float32)
    for c in range(4):
        probs[:, c][truth == c] = 0.94
    return find_label_errors(labels, probs)


def test_the_finder_names_the_shift_and_its_patches():
    patches, summary = _run_with_a_shifted_label()
    assert list(summary.shifted_labels) == [2]
    assert summary.to_dict()["shifted_labels"]["2"]["dy"] == -8
    on_shifted = [p for p in patches if p.image_index == 2]
    assert on_shifted
    assert all(p.cause == SHIFTED_CAUSE for p in on_shifted)
    assert all(p.cause is None for p in patches if p.image_index != 2)


def test_a_shifted_label_is_a_specific_issue_of_its_own():
    patches, summary = _run_with_a_shifted_label()
    shifted = [i for i in summary.issues if i.name == SHIFTED_ISSUE]
    assert len(shifted) == 1
    issue = shifted[0]
    assert issue.given_label == issue.suggested_label == SHIFTED
    assert (issue.num_images, issue.error_type) == (1, "general")
    on_shifted = [p for p in patches if p.image_index == 2]
    assert issue.num_patches == len(on_shifted)
    assert {summary.issue_of(p) for p in on_shifted} == {SHIFTED_ISSUE}
    # its patches are not counted in the class pairs' issues
    assert sum(i.num_patches for i in summary.issues) == len(patches)


def test_the_corrected_label_is_moved_back_into_line():
    truth = np.stack([_street()] * 4)
    patches, summary = _run_with_a_shifted_label()
    shift = summary.shifted_labels[2]
    label = _moved(truth[2], 8, 8)
    corrected = apply_patches(
        label, [p for p in patches if p.image_index == 2], shift=shift
    )
    landed = shift.moved(label) >= 0
    assert (corrected[landed] == truth[2][landed]).all()
    # where nothing lands, the label's own pixels stay
    assert (corrected[~landed] == label[~landed]).all()
    assert (corrected == truth[2]).mean() > (label == truth[2]).mean()


def _panning_video(num_frames=5):
    """Frames of a street the camera pans across, 1 px a frame."""
    wide = np.zeros((96, 128 + num_frames), np.int64)
    wide[:, :128] = _street()
    wide[:, 128:] = _street()[:, -num_frames:]
    return np.stack([wide[:, k : k + 128] for k in range(num_frames)])


def _blind_model(labels):
    """Probabilities of a model that sees nothing: every class alike, up
    to noise."""
    rng = np.random.default_rng(0)
    probs = rng.uniform(0.2, 0.3, (len(labels), 4) + labels.shape[1:])
    return (probs / probs.sum(1, keepdims=True)).astype(np.float32)


def test_the_neighbouring_frames_show_a_shift_a_blind_model_cannot():
    truth = _panning_video()
    labels = truth.copy()
    labels[2] = _moved(truth[2], 8, -8)
    probs = _blind_model(labels)
    argmax = probs[2].argmax(0)
    assert find_label_shift(labels[2], argmax) is None
    patches, summary = find_label_errors(labels, probs)
    assert list(summary.shifted_labels) == [2]
    shift = summary.shifted_labels[2]
    assert (shift.dy, shift.dx) == (-8, 8)
    corrected = apply_patches(
        labels[2], [p for p in patches if p.image_index == 2], shift=shift
    )
    landed = shift.moved(labels[2]) >= 0
    assert (corrected[landed] == truth[2][landed]).mean() > 0.99
    assert (corrected == truth[2]).mean() > (labels[2] == truth[2]).mean()


def test_a_clean_panning_video_has_no_shifts_with_a_blind_model():
    labels = _panning_video()
    _, summary = find_label_errors(labels, _blind_model(labels))
    assert summary.shifted_labels == {}


def test_unknown_reference_pixels_do_not_count_against_a_move():
    truth = _street()
    reference = truth.copy()
    reference[:, 64:] = -1  # the neighbours disagree on the right half
    label = _moved(truth, 6, -9)
    shift = find_label_shift(label, reference)
    assert shift is not None
    assert (shift.dy, shift.dx) == (-6, 9)
    assert shift.disagreement_shifted < 0.02
