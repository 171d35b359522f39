"""The torch finder agrees with slow numpy references of its rules."""

import cv2
import numpy as np
import pytest
import torch

from fixer_core._checks import prepare_labels, prepare_pred_probs
from fixer_core.finder import _apply_region_suggestions, _pixel_suggestions
from fixer_core.regions import label_regions
from fixer_core.statistics import (
    ClassStatisticsAccumulator,
    _interior_mask_pooled,
    interior_mask,
)
from fixer_core.synthetic import IGNORE_VALUE, make_scenes

MIN_CONFIDENCE = 0.5
WIDTH = 2


def _reference_interior(labels, width):
    n, h, w = labels.shape
    interior = np.ones(labels.shape, dtype=bool)
    for dy in range(-width, width + 1):
        for dx in range(-width, width + 1):
            shifted = np.full(labels.shape, -2)
            ys = slice(max(dy, 0), h + min(dy, 0))
            yd = slice(max(-dy, 0), h + min(-dy, 0))
            xs = slice(max(dx, 0), w + min(dx, 0))
            xd = slice(max(-dx, 0), w + min(-dx, 0))
            shifted[:, yd, xd] = labels[:, ys, xs]
            interior &= (shifted == labels) | (shifted == -2)
    return interior


def _reference_statistics(labels, probs, k):
    counts = np.zeros(k)
    sums = np.zeros(k)
    background = np.zeros(k)
    for c in range(k):
        where = labels == c
        counts[c] = where.sum()
        sums[c] = probs[:, c][where].sum()
        background[c] = probs[:, c][(labels >= 0) & ~where].mean()
    thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), 0.5)
    cutoff = np.minimum(thresholds, MIN_CONFIDENCE)
    interior = _reference_interior(labels, WIDTH) & (labels >= 0)
    argmax = probs.argmax(axis=1)
    p_max = probs.max(axis=1)
    joint = np.zeros((k, k), dtype=np.int64)
    for i, j, p in zip(
        labels[interior], argmax[interior], p_max[interior], strict=True
    ):
        bin_ = min(int(p * 100), 99)
        if bin_ >= int(np.floor(cutoff[j] * 100)):
            joint[i, j] += 1
    return counts, thresholds, joint, background


def _confident_argmax(p, cutoff):
    """The argmax among the classes at or above their cutoff, or None."""
    confident = np.flatnonzero(p >= cutoff)
    return int(confident[p[confident].argmax()]) if confident.size else None


def _reference_suggestions(labels, probs, thresholds):
    """Suggestions, and how many flags each rule's novelty decided: the
    suggestion is not the plain argmax; the label is confident."""
    out = np.full(labels.shape, -1)
    cutoff = np.minimum(thresholds, MIN_CONFIDENCE)
    not_argmax = confident_label = 0
    for index in np.ndindex(labels.shape):
        g = labels[index]
        if g < 0:
            continue
        p = probs[index[0], :, index[1], index[2]]
        s = _confident_argmax(p, cutoff)
        if s is None or s == g:
            continue
        if p[g] < thresholds[g] or p[s] >= thresholds[s]:
            out[index] = s
            not_argmax += s != p.argmax()
            confident_label += p[g] >= thresholds[g]
    return out, not_argmax, confident_label


@pytest.fixture(scope="module")
def inputs():
    scenes = make_scenes(3, height=48, width=64, seed=3)
    k = len(scenes.class_names)
    labels = prepare_labels(scenes.labels, k, [IGNORE_VALUE])
    probs = prepare_pred_probs(scenes.pred_probs, labels, k)
    return labels, probs, k


def test_statistics_match_reference(inputs):
    labels, probs, k = inputs
    acc = ClassStatisticsAccumulator(
        k, boundary_width=WIDTH, min_confidence=MIN_CONFIDENCE
    )
    acc.update(labels[:2], probs[:2])
    acc.update(labels[2:], probs[2:])
    stats = acc.compute()
    counts, thresholds, joint, background = _reference_statistics(
        labels.numpy(), probs.numpy(), k
    )
    np.testing.assert_array_equal(stats.pixel_counts, counts)
    np.testing.assert_allclose(stats.thresholds, thresholds, rtol=1e-5)
    np.testing.assert_array_equal(stats.confident_joint, joint)
    np.testing.assert_allclose(stats.background_probs, background, atol=1e-6)
    assert stats.num_images == 3


def test_pixel_suggestions_match_reference(inputs):
    labels, probs, k = inputs
    # Some low thresholds, as a model unsure of a class gives it
    gen = torch.Generator().manual_seed(1)
    thresholds = torch.rand(k, generator=gen) * 0.85 + 0.05
    p_given = probs.gather(1, labels.clamp(min=0)[:, None])[:, 0]
    got = _pixel_suggestions(
        labels, probs, p_given, thresholds, MIN_CONFIDENCE
    )
    want, not_argmax, confident_label = _reference_suggestions(
        labels.numpy(), probs.numpy(), thresholds.numpy()
    )
    assert not_argmax > 0 and confident_label > 0
    np.testing.assert_array_equal(got.numpy(), want)


def test_device_and_dtype_do_not_change_statistics(inputs, device):
    labels, probs, k = inputs
    stats = []
    for dev, dtype in (("cpu", torch.float32), (device, torch.float64)):
        acc = ClassStatisticsAccumulator(
            k, boundary_width=WIDTH, min_confidence=MIN_CONFIDENCE, device=dev
        )
        acc.update(labels.to(dev), probs.to(dev, dtype))
        stats.append(acc.compute())
    np.testing.assert_array_equal(stats[0].pixel_counts, stats[1].pixel_counts)
    np.testing.assert_allclose(
        stats[0].thresholds, stats[1].thresholds, rtol=1e-5
    )


def _reference_regions(label):
    """Per class connected components on the whole map."""
    ids = np.full(label.shape, -1)
    labels = []
    for value in np.unique(label[label >= 0]):
        n, comp = cv2.connectedComponents(
            (label == value).astype(np.uint8), connectivity=8
        )
        ids[comp > 0] = comp[comp > 0] + len(labels) - 1
        labels.extend([value] * (n - 1))
    return ids, np.asarray(labels)


def test_label_regions_match_reference(inputs):
    labels, _, _ = inputs
    for label in labels.numpy():
        regions = label_regions(label)
        ids, region_labels = _reference_regions(label)
        np.testing.assert_array_equal(regions.ids, ids)
        np.testing.assert_array_equal(regions.labels, region_labels)
        np.testing.assert_array_equal(
            regions.areas, np.bincount(ids[ids >= 0])
        )


def test_region_suggestions_match_reference(inputs):
    labels, probs, k = inputs
    thresholds = torch.rand(k, generator=torch.Generator().manual_seed(0))
    thresholds = thresholds * 0.5 + 0.4
    p_given = probs.gather(1, labels.clamp(min=0)[:, None])[:, 0]
    none = torch.full_like(labels, -1)
    regions = [label_regions(label) for label in labels.numpy()]
    got, got_flagged = _apply_region_suggestions(
        none, probs, p_given, regions, thresholds, MIN_CONFIDENCE
    )
    want = np.full(labels.shape, -1)
    cutoff = np.minimum(thresholds.numpy(), MIN_CONFIDENCE)
    for i, r in enumerate(regions):
        for index, given in enumerate(r.labels):
            where = r.ids == index
            mean = probs[i].numpy()[:, where].mean(axis=1)
            s = _confident_argmax(mean, cutoff)
            if s not in (None, given) and mean[given] < thresholds[given]:
                want[i][where] = s
    assert (want >= 0).any()
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(got_flagged.numpy(), want >= 0)


@pytest.mark.parametrize("width", [1, 2, 3])
def test_interior_mask_paths_agree(inputs, width):
    labels, _, _ = inputs
    want = _reference_interior(labels.numpy(), width)
    np.testing.assert_array_equal(interior_mask(labels, width).numpy(), want)
    # The pooling path runs wherever the labels are not on the CPU.
    np.testing.assert_array_equal(
        _interior_mask_pooled(labels, width).numpy(), want
    )
