"""A patch's error probability and the model's habits: a disagreement the
model shows in every image at the same share is less likely a label error
than the same disagreement concentrated in a few images."""

import numpy as np
import pytest
import torch

import fixer_core.finder
import fixer_core.statistics
from fixer_core import FinderConfig, LabelErrorFinder
from fixer_core.statistics import (
    ClassStatisticsAccumulator,
    image_disagreement,
)

SIZE, SQUARE = 64, 6
# five places for a square, inside class 0 and apart
PLACES = [(6, 6), (6, 24), (24, 6), (24, 24), (40, 14)]
# the habit's probabilities fall under this floor, the patches stay
FLOOR = FinderConfig(min_error_probability=0.3)


def _scenes(squares_per_image):
    """Labels (class 0 left, class 1 right) and a model 95% sure of them,
    but for 6x6 squares labelled 0 that it calls class 1 as surely (label
    errors by the rates), and in every image 36 single pixels of class 0
    it calls class 1 at 0.75 (its own confusion: a habit)."""
    n = len(squares_per_image)
    labels = np.zeros((n, SIZE, SIZE), np.int64)
    labels[:, :, 48:] = 1
    p1 = np.where(labels == 1, 0.95, 0.05)
    p1[:, 48:60:2, 32:44:2] = 0.75
    for i, count in enumerate(squares_per_image):
        for y, x in PLACES[:count]:
            p1[i, y : y + SQUARE, x : x + SQUARE] = 0.95
    probs = np.stack([1 - p1, p1], axis=1).astype(np.float32)
    return labels, probs


def _run(squares_per_image, config=FLOOR):
    """The reported patches, one image per batch with indices far apart
    (no neighbouring frames, no repeats), and the finder."""
    labels, probs = _scenes(squares_per_image)
    finder = LabelErrorFinder(["a", "b"], config=config)
    finder.update(labels, probs)
    patches = []
    for i in range(len(labels)):
        for image in finder.find(
            labels[i : i + 1], probs[i : i + 1], image_indices=[100 * i]
        ):
            patches += image
    return patches, finder


# ten squares either way: one per image, or five in each of two images
HABIT = [1] * 10
CONCENTRATED = [5, 5] + [0] * 8


def test_a_habit_is_less_likely_an_error_than_a_concentrated_disagreement():
    habit, finder = _run(HABIT)
    concentrated, other = _run(CONCENTRATED)
    assert len(habit) == len(concentrated) == 10
    # the same pixels overall: the same rates and doubts
    np.testing.assert_array_equal(
        finder.statistics.error_rates, other.statistics.error_rates
    )
    assert finder.statistics.habits[0, 1] > 0
    p_habit = [p.error_probability for p in habit]
    p_concentrated = [p.error_probability for p in concentrated]
    assert max(p_habit) < min(p_concentrated)
    # and ranks below it: the score takes the excess as it takes the doubt
    assert max(p.score for p in habit) < min(p.score for p in concentrated)
    # half of an image's disagreement is the habit's: the excess is half
    size = SQUARE**2 / (SQUARE**2 + FLOOR.score_area_scale)
    assert p_habit == pytest.approx([0.5 * size] * 10)


def test_the_factor_leaves_the_reported_patches(monkeypatch):
    found, _ = _run(HABIT)
    monkeypatch.setattr(fixer_core.finder, "_calibrated", lambda *_: 1.0)
    monkeypatch.setattr(
        fixer_core.statistics.ClassStatistics,
        "excess_share",
        lambda *_: 1.0,
    )
    unchanged, _ = _run(HABIT)

    def key(p):
        return p.image_index, p.box

    assert [key(p) for p in found] == [key(p) for p in unchanged]
    # the excess lowers the scores, after the report's choice
    assert all(
        a.score < b.score for a, b in zip(found, unchanged, strict=True)
    )
    # under the report's floor, still reported
    assert all(
        p.error_probability < FLOOR.min_error_probability for p in found
    )
    assert all(
        p.error_probability >= FLOOR.min_error_probability for p in unchanged
    )


def _accumulator(labels, probs):
    acc = ClassStatisticsAccumulator(2, boundary_width=2, min_confidence=0.25)
    acc.update(torch.as_tensor(labels), torch.as_tensor(probs))
    return acc


def test_the_shares_histogram_sums_over_shards():
    labels, probs = _scenes([1, 5, 0, 2, 3, 1, 0, 4])
    whole = _accumulator(labels, probs)
    first, second = (
        _accumulator(labels[:3], probs[:3]),
        _accumulator(labels[3:], probs[3:]),
    )
    # two ranks' all_reduce: each adds the other's counters
    flats = {}
    second.reduce(lambda t: flats.setdefault("second", t.clone()))
    first.reduce(lambda t: t.add_(flats["second"]))
    torch.testing.assert_close(first._share_hist, whole._share_hist)
    torch.testing.assert_close(first._label_images, whole._label_images)
    np.testing.assert_array_equal(
        first.compute().habits, whole.compute().habits
    )


def test_pass_2_counts_the_disagreement_as_pass_1_does():
    labels, probs = _scenes([1, 5, 0, 2])
    acc = _accumulator(labels, probs)
    labels, probs = torch.as_tensor(labels), torch.as_tensor(probs)
    p_given = probs.gather(1, labels[:, None])[:, 0]
    pixels, pairs = image_disagreement(labels, probs, p_given, 2)
    hist = acc._argmax_hist.view(2, 2, -1).sum(dim=-1).numpy()
    assert pairs[:, 0, 1].sum() == hist[0, 1] == 36 * (8 + 4)
    np.testing.assert_array_equal(pixels.sum(axis=0), acc._interior.numpy())
    # the images' counts of the histogram: images, d, n_g
    counts, d, n_g = acc._share_hist.view(3, 2, 2, -1).sum(dim=-1)[:, 0, 1]
    assert (counts, d, n_g) == (4, 36 * (8 + 4), pixels[:, 0].sum())
