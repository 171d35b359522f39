"""The finder's fast array paths against the plain torch code they
replace: the same values, bit for bit (``fixer_core._checks``,
``fixer_core._pixels``, ``fixer_core._argmax``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixer_core._argmax import max_at_pixels, weighted_max
from fixer_core._checks import PredProbsError, prepare_pred_probs
from fixer_core._checks import prepare_labels as prepare
from fixer_core._pixels import (
    LOG_FLOOR,
    labelled_pixels,
    pixel_channels,
    pixel_means,
    top_two,
)


def _rule_labels(labels, num_classes, ignore_index):
    """prepare_labels' rule, one pass per rule."""
    labels = torch.as_tensor(labels).long()
    ignored = (labels < 0) | (labels >= num_classes)
    for value in ignore_index:
        ignored |= labels == value
    return labels.masked_fill(ignored, -1)


@pytest.mark.parametrize(
    "dtype, low, high, num_classes, ignore",
    [
        (np.uint8, 0, 256, 11, [11]),
        (np.uint8, 0, 256, 300, [255, 3]),
        (np.int16, -3, 40, 30, [7]),
        (np.int32, 0, 70000, 150, [0]),
        (np.int64, 0, 151, 150, [255]),
        (np.int64, -1, 12, 11, []),
        (np.int8, 0, 100, 11, [11, 2]),
    ],
    ids=[
        "uint8",
        "uint8-many",
        "int16-negative",
        "int32-large",
        "int64",
        "int64-minus-one",
        "int8",
    ],
)
def test_prepared_labels_match_the_rule(dtype, low, high, num_classes, ignore):
    rng = np.random.default_rng(0)
    labels = rng.integers(low, high, size=(3, 17, 23)).astype(dtype)
    sliced = labels[:, ::2, 1::3]  # not contiguous
    for given in (labels, torch.from_numpy(labels), sliced):
        got = prepare(given, num_classes, ignore)
        assert got.dtype == torch.int64
        assert torch.equal(got, _rule_labels(given, num_classes, ignore))


def test_sums_are_checked_by_their_extremes():
    probs = torch.full((3, 4, 5, 6), 0.25)
    prepare_pred_probs(probs, torch.zeros(3, 5, 6, dtype=torch.long), 4)
    for value, pattern in (
        (float("nan"), "image 1 hold NaN"),
        (float("inf"), "image 1 hold NaN or infinite"),
        (0.3, r"image 1 do not sum to 1 .*off by up to 0\.05"),
        (0.2, r"image 1 do not sum to 1 .*off by up to 0\.05"),
    ):
        bad = probs.clone()
        bad[1, 2, 3, 4] = value
        with pytest.raises(PredProbsError, match=pattern):
            prepare_pred_probs(bad, torch.zeros(3, 5, 6, dtype=torch.long), 4)


def _probs(n=3, k=7, h=9, w=11, seed=0):
    generator = torch.Generator().manual_seed(seed)
    probs = torch.rand(n, k, h, w, generator=generator)
    probs[:, :, :2, :2] = 0.5  # ties
    return probs / probs.sum(dim=1, keepdim=True)


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weights"])
def test_max_at_pixels_matches_weighted_max(dense, weighted):
    probs = _probs()
    n, k, h, w = probs.shape
    weights = torch.linspace(0.5, 3, k) if weighted else None
    cutoff = torch.linspace(0.05, 0.3, k, dtype=torch.float64)
    keep = torch.rand(n * h * w, generator=torch.Generator().manual_seed(1))
    flat = (keep < (0.9 if dense else 0.1)).nonzero()[:, 0]
    p_max, argmax = max_at_pixels(probs, flat, weights, cutoff)
    rows = probs.permute(0, 2, 3, 1).reshape(-1, k)[flat]
    want_p, want_k = weighted_max(rows, weights, cutoff)
    assert torch.equal(argmax, want_k)
    assert torch.equal(p_max, want_p)


def test_pixel_channels_and_top_two():
    probs = _probs()
    n, k, h, w = probs.shape
    flat = torch.arange(0, n * h * w, 3)
    columns = pixel_channels(probs, flat)
    rows = probs.permute(0, 2, 3, 1).reshape(-1, k)[flat]
    assert torch.equal(columns, rows.T)
    first, second = top_two(columns)
    top = rows.topk(2, dim=1).values
    assert torch.equal(first, top[:, 0])
    assert torch.equal(second, top[:, 1])


@pytest.mark.parametrize("log", [False, True], ids=["means", "log-means"])
def test_pixel_means_of_labelled_pixels(log):
    probs = _probs()
    probs[0, 0, 3:, 3:] = 0  # ruled out: the log's floor
    n, k, h, w = probs.shape
    rng = np.random.default_rng(2)
    ids = [rng.integers(-1, 4, size=(h, w)).astype(np.int32) for _ in range(n)]
    ids[1][:] = -1  # an image without any
    flat, numbered, count = labelled_pixels(ids)
    assert count == 8
    means = pixel_means(
        probs, torch.as_tensor(flat), torch.as_tensor(numbered), count, log=log
    )
    values = probs.clamp(min=LOG_FLOOR).log() if log else probs
    offset = 0
    for image, image_ids in zip(values, ids, strict=True):
        for i in range(int(image_ids.max()) + 1):
            mask = torch.as_tensor(image_ids == i)
            want = image[:, mask].mean(dim=1)
            torch.testing.assert_close(means[offset + i], want)
        offset += int(image_ids.max()) + 1
