"""A model blind to a thin, rare class cannot testify against its labels:
correct labels of that class that the model calls the frequent class
around them are not corrected into it, while a real relabel still is."""

import dataclasses

import numpy as np
import pytest

import fixer_core.statistics
from fixer_core import FinderConfig, LabelErrorFinder
from fixer_core.corrections import apply_patches

SIZE, N = 128, 8
SURE = 0.95
# thin poles (class 1) on a wall (class 0), correctly labelled; the model
# never sees them
POLES = [(slice(10, 80), slice(x, x + 4)) for x in (10, 40)]
# a sign (class 2) labelled pole in every other image: a real relabel the
# model sees
RELABELLED = (slice(20, 44), slice(70, 94))
# a sign labelled sign, which shows the model's profile on signs
SIGN = (slice(50, 74), slice(70, 94))
# a thick pole that the model half sees
THICK = (slice(20, 80), slice(100, 110))
HALF = 0.55


def _scene():
    """``N`` images: a wall of class 0 above a road of class 3, with two
    signs and three poles (class 1); the model is sure of every class but
    the poles': it calls two thin ones the wall, and is only half sure of
    the thick one."""
    labels = np.zeros((N, SIZE, SIZE), np.int64)
    labels[:, 96:] = 3
    for ys, xs in POLES:
        labels[:, ys, xs] = 1
    labels[:, SIGN[0], SIGN[1]] = 2
    labels[:, RELABELLED[0], RELABELLED[1]] = 2
    seen = labels.copy()
    labels[::2, RELABELLED[0], RELABELLED[1]] = 1
    labels[:, THICK[0], THICK[1]] = 1
    for ys, xs in POLES:
        seen[:, ys, xs] = 0
    probs = np.full((N, 4, SIZE, SIZE), (1 - SURE) / 3, np.float32)
    np.put_along_axis(probs, seen[:, None], SURE, axis=1)
    probs[:, :, THICK[0], THICK[1]] = (1 - HALF) / 3
    probs[:, 1, THICK[0], THICK[1]] = HALF
    return labels, probs


def _corrected(labels, patches, config):
    out = labels.copy()
    for i in range(len(labels)):
        out[i] = apply_patches(
            labels[i],
            [p for p in patches if p.image_index == i],
            min_probability=config.correct_min_probability,
        )
    return out


def _run():
    """The labels, the reported patches (one image per batch, with indices
    far apart: no neighbouring frames, no repeats) and the corrected
    labels."""
    labels, probs = _scene()
    config = FinderConfig()
    finder = LabelErrorFinder([str(k) for k in range(4)], config=config)
    finder.update(labels, probs)
    patches = []
    for i in range(N):
        for image in finder.find(
            labels[i : i + 1], probs[i : i + 1], image_indices=[100 * i]
        ):
            patches += [dataclasses.replace(p, image_index=i) for p in image]
    return labels, patches, _corrected(labels, patches, config)


def test_blind_class_is_not_corrected_into_its_surroundings():
    labels, patches, corrected = _run()
    for ys, xs in POLES:
        # flagged for review, but not corrected
        assert any(p.full_mask()[ys, xs].any() for p in patches)
        np.testing.assert_array_equal(corrected[:, ys, xs], 1)
    # the relabelled sign is corrected: the model tells signs, as rare as
    # poles, from poles
    np.testing.assert_array_equal(
        corrected[::2, RELABELLED[0], RELABELLED[1]], 2
    )


def test_without_the_bound_the_poles_are_corrected(monkeypatch):
    """The mechanism: the label's doubt alone takes the poles' patches
    over the threshold."""
    monkeypatch.setattr(
        fixer_core.statistics.ClassStatistics,
        "miss_share",
        lambda self, given: 1.0,
    )
    _, _, corrected = _run()
    ys, xs = POLES[0]
    assert (corrected[:, ys, xs] == 0).any()


def test_miss_share():
    stats = fixer_core.statistics.ClassStatistics(
        pixel_counts=np.array([100, 10]),
        thresholds=np.array([0.9, 0.2], np.float32),
        confident_joint=np.zeros((2, 2), np.int64),
        interior_counts=np.array([100, 10]),
        background_probs=np.zeros(2, np.float32),
        num_images=1,
    )
    assert stats.miss_share(0) == 1.0
    assert stats.miss_share(1) == pytest.approx(0.5 / 0.8)


def _pole_scores(patches):
    ys, xs = POLES[0]
    return sorted(p.score for p in patches if p.full_mask()[ys, xs].any())


def test_a_blind_class_ranks_below_the_models_doubt_alone(monkeypatch):
    """The score takes the bound as it takes the label's doubt (its fourth
    root): a reviewer meets the poles later."""
    _, patches, _ = _run()
    bounded = _pole_scores(patches)
    monkeypatch.setattr(
        fixer_core.statistics.ClassStatistics,
        "miss_share",
        lambda self, given: 1.0,
    )
    _, patches, _ = _run()
    alone = _pole_scores(patches)
    assert len(bounded) == len(alone) > 0
    assert all(b < a for b, a in zip(bounded, alone, strict=True))
