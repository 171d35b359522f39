"""The score's calibration: label-error rates estimated from the data, the
model's blur, and the cases a fixed size rule got wrong."""

import numpy as np
import pytest

from fixer_core import FinderConfig, LabelErrorFinder, find_label_errors
from fixer_core.statistics import (
    ERROR_RATE_BINS,
    label_doubts,
    label_error_rates,
)


def _hist(own_at, confusion_at, confusion_count, k=2, bins=100):
    """(K, K, bins) histogram: 10,000 pixels of each class called
    themselves at ``own_at``; ``confusion_count`` pixels labelled 0 that
    the model calls 1 at ``confusion_at``."""
    hist = np.zeros((k, k, bins))
    for c in range(k):
        hist[c, c, int(own_at * bins)] = 10_000
    hist[0, 1, int(confusion_at * bins)] = confusion_count
    return hist


def test_a_confusion_at_the_models_own_confidence_reads_as_errors():
    # the model calls class 1 at 0.95 where it is labelled 1; pixels
    # labelled 0 that it calls 1 just as surely are label errors
    rates = label_error_rates(_hist(0.95, 0.95, 500))
    assert rates[0, 1, -1] == pytest.approx(1.0)


def test_a_confusion_below_the_models_own_confidence_reads_as_its_mistake():
    # the same disagreement, at 0.55 only, where the model never is on its
    # own class: the model's confusion, not the labels'
    rates = label_error_rates(_hist(0.95, 0.55, 500))
    assert rates[0, 1].max() == pytest.approx(0.0)


def test_error_rates_are_monotone_in_the_confidence():
    rng = np.random.default_rng(0)
    hist = rng.integers(0, 50, size=(4, 4, 100)).astype(float)
    for c in range(4):
        hist[c, c, 60:] += 2_000
    rates = label_error_rates(hist)
    assert rates.shape == (4, 4, ERROR_RATE_BINS)
    assert (np.diff(rates, axis=-1) >= -1e-6).all()
    assert ((rates >= 0) & (rates <= 1)).all()


def _prob_hists(own, other=None, n=10_000, bins=100):
    """(2, 2, bins) histogram of (label, class, probability of the class):
    class 0's probability on its own labels and on class 1's, from
    ``{probability: share}`` (by default 95% of class 1's pixels give
    class 0 0.02 and 5% 0.5); class 1 is seen sharply."""
    other = other or {0.02: 0.95, 0.5: 0.05}
    hist = np.zeros((2, 2, bins))
    for label, shares in enumerate((own, other)):
        for prob, share in shares.items():
            hist[label, 0, int(prob * bins)] = n * share
    hist[1, 1, 95] = hist[0, 1, 2] = n
    return hist


def test_a_label_is_doubted_where_it_looks_like_the_other_classs():
    # 3% of class 0's labels get 0.02, as 95% of class 1's pixels do; the
    # rest get 0.9: those 3% are class 1 labelled 0
    doubts = label_doubts(_prob_hists({0.02: 0.03, 0.9: 0.97}))
    assert doubts[0, 1, 2] > 0.9
    assert doubts[0, 1, 90] < 0.1
    assert ((doubts >= 0) & (doubts <= 1)).all()


def test_a_class_the_model_barely_tells_apart_keeps_its_labels():
    # the model gives 60% of class 0's labels only 0.1, and class 1's
    # pixels 0.02: a low probability is what class 0 usually gets
    doubts = label_doubts(_prob_hists({0.1: 0.6, 0.9: 0.4}))
    assert doubts[0, 1, 10] < 0.1


def test_a_rare_class_the_model_cannot_tell_apart_casts_little_doubt():
    # class 1 has 2% of class 0's pixels, and the model gives class 0 the
    # same probabilities on both: at most that share of class 0's labels
    # can be class 1 (most of its pixels carry its label)
    hist = np.zeros((2, 2, 100))
    for label, n in enumerate((10_000, 200)):
        hist[label] = n / 100  # every probability alike
    doubts = label_doubts(hist)
    assert doubts[0, 1].max() < 0.05
    assert doubts[1, 0].max() > 0.3  # the rare class's own labels may be


def _two_class_scene(n=4, size=64):
    """Left half class 0, right half class 1; a sharp model (0.95)."""
    labels = np.zeros((n, size, size), np.int64)
    labels[:, :, size // 2 :] = 1
    truth = labels.copy()
    return labels, truth


def _probs(truth, sure=0.95):
    k = int(truth.max()) + 1
    probs = np.full(
        (truth.shape[0], k) + truth.shape[1:], (1 - sure) / (k - 1)
    )
    for c in range(k):
        probs[:, c][truth == c] = sure
    return probs.astype(np.float32)


def test_a_thin_object_labelled_wrong_as_a_whole_is_flagged():
    # a 4x40 strip of class 0 labelled 1 inside class 0: a pole labelled
    # as its surroundings' neighbour, the model 95% sure
    labels, truth = _two_class_scene()
    labels[:, 10:50, 10:14] = 1
    patches, _ = find_label_errors(labels, _probs(truth))
    strips = [p for p in patches if p.box == (10, 10, 4, 40)]
    assert len(strips) == 4
    assert all(p.suggested_label == 0 and p.given_label == 1 for p in strips)


def test_boundary_slivers_are_still_dropped():
    # a 2-pixel fringe of class 1 along the border labelled 0
    labels, truth = _two_class_scene()
    labels[:, :, 32:34] = 0
    patches, _ = find_label_errors(labels, _probs(truth))
    assert not patches


def test_ignored_values_are_never_suggested():
    labels, truth = _two_class_scene()
    probs = _probs(truth)  # the model calls the right half class 1
    labels[:, :, 32:] = 0  # ... which is labelled 0
    patches, _ = find_label_errors(labels, probs, ignore_index=[1])
    assert all(p.suggested_label != 1 for p in patches)


def test_a_clean_dataset_with_a_weak_model_is_barely_flagged():
    # labels right; the model gives the true class only 0.3-0.7 and is
    # wrong on 10% of each image in scattered blobs
    rng = np.random.default_rng(0)
    labels, truth = _two_class_scene(n=8)
    p1 = np.where(truth == 1, 0.6, 0.4) + rng.normal(0, 0.1, truth.shape)
    p1 = np.clip(p1, 0.01, 0.99).astype(np.float32)
    patches, summary = find_label_errors(
        labels, np.stack([1 - p1, p1], axis=1)
    )
    flagged = sum(p.area for p in patches)
    assert flagged < 0.03 * labels.size
    assert summary.expected_errors < 3


def test_spatial_thresholds_stay_for_a_sharp_model():
    labels, truth = _two_class_scene()
    labels[:, 20:26, 5:11] = 1  # a 6x6 block: 36 px, over min_area 16
    patches, _ = find_label_errors(
        labels, _probs(truth), config=FinderConfig(min_area=16)
    )
    assert [p.area for p in patches] == [36] * 4


def _overconfident(with_mistakes=3, n=8, size=64):
    """Images of class 0 with a class-1 object (labelled 1); an
    overconfident model that calls a 16x16 block of class 0 class 1 in
    the first ``with_mistakes`` images, giving class 0 1e-3 there, and gives
    class 0 1e-6 on class 1's pixels. Image 0 also labels a class-1
    object 0: a label error."""
    labels = np.zeros((n, size, size), np.int64)
    labels[:, 40:56, 40:56] = 1
    truth = labels.copy()
    truth[0, 8:24, 40:56] = 1  # labelled 0: the error
    p0 = np.where(truth == 0, 0.98, 1e-6)
    p0[:with_mistakes, 8:24, 8:24] = 1e-3  # class 0, called 1
    probs = np.stack([p0, 1 - p0], axis=1).astype(np.float32)
    return labels, probs


def test_an_overconfident_models_confident_mistakes_sit_apart_finer():
    # At 1% resolution the model's confident mistakes (class 0 given 1e-3)
    # share a bin with class 1's pixels (1e-6): the label's doubt reads 1
    # for both. On the log scale only the label error looks like class 1:
    # at 1e-3 or below, a quarter of the labels are errors.
    labels, probs = _overconfident()
    finder = LabelErrorFinder(["a", "b"])
    finder.update(labels, probs)
    stats = finder.statistics
    assert stats.label_doubt(0, 1, 1e-3) > 0.9
    assert stats.label_doubt(0, 1, 1e-3, fine=True) == pytest.approx(
        0.25, abs=0.02
    )
    assert stats.label_doubt(0, 1, 1e-6, fine=True) > 0.9


def test_a_photo_keeps_its_labels_where_the_model_is_confidently_wrong():
    # Each image scored alone, as in a dataset of photos: the label error
    # is still applied to the corrected labels, the model's confident
    # mistakes are reported but not applied.
    labels, probs = _overconfident()
    finder = LabelErrorFinder(["a", "b"])
    finder.update(labels, probs)
    patches = [
        p
        for i in range(len(labels))
        for p in finder.find(
            labels[i : i + 1], probs[i : i + 1], image_indices=[i]
        )[0]
    ]
    threshold = finder.config.correct_min_probability
    error = [
        p
        for p in patches
        if p.image_index == 0 and p.box[1] == 8 and p.box[0] == 40
    ]
    mistakes = [p for p in patches if p.box[:2] == (8, 8)]
    assert len(error) == 1 and error[0].error_probability >= threshold
    assert len(mistakes) == 3
    assert all(p.error_probability < threshold for p in mistakes)
