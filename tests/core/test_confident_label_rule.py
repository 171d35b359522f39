"""Confident learning's rule for pixels: a label the model is unsure of
everywhere is corrected only where another class reaches its own typical
confidence."""

import numpy as np

from fixer_core import FinderConfig, find_label_errors

BACKGROUND, WEAK, OTHER = 0, 1, 2
OBJECTS = [
    # rows, cols, label, probabilities of the three classes
    (slice(4, 16), slice(4, 16), WEAK, (0.5, 0.25, 0.25)),
    (slice(4, 16), slice(40, 52), WEAK, (0.5, 0.25, 0.25)),
    (slice(40, 52), slice(4, 16), OTHER, (0.3, 0.1, 0.6)),
    # an OTHER object labelled WEAK: the model gives WEAK its usual 0.25
    (slice(40, 52), slice(40, 52), WEAK, (0.125, 0.25, 0.625)),
]
MISLABELLED = (slice(40, 52), slice(40, 52))


def _scene():
    labels = np.zeros((4, 64, 64), np.int64)
    probs = np.empty((4, 3, 64, 64), np.float32)
    probs[:] = np.array([0.9, 0.05, 0.05], np.float32)[:, None, None]
    for rows, cols, label, p in OBJECTS:
        labels[:, rows, cols] = label
        probs[:, :, rows, cols] = np.array(p, np.float32)[:, None, None]
    return labels, probs


def test_confident_label_loses_to_a_class_at_its_own_threshold():
    labels, probs = _scene()
    patches, _ = find_label_errors(
        labels,
        probs,
        config=FinderConfig(prior_strength=0, min_error_probability=0),
    )
    # WEAK's threshold is 0.25, so no WEAK pixel is unconfident; the
    # mislabelled object's OTHER (0.625) reaches OTHER's threshold (0.6),
    # the true WEAK objects' background (0.5) does not reach its own (0.9).
    assert len(patches) == 4
    for p in patches:
        assert (p.given_label, p.suggested_label) == (WEAK, OTHER)
        assert p.full_mask()[MISLABELLED].all()
        assert p.area == 144


def test_a_class_the_model_barely_sees_is_doubted_little():
    # The model gives WEAK the same 0.25 on the mislabelled object as on
    # the true WEAK objects: its labels of WEAK say little either way, so
    # the patch's error probability stays under the reporting floor.
    labels, probs = _scene()
    config = FinderConfig(prior_strength=0)
    patches, summary = find_label_errors(labels, probs, config=config)
    assert patches == []
    assert summary.expected_errors == 0
    kept, _ = find_label_errors(
        labels,
        probs,
        config=FinderConfig(prior_strength=0, min_error_probability=0),
    )
    assert all(
        p.error_probability < config.min_error_probability < p.score
        for p in kept
    )
