"""Argument checks of the finder's array inputs (``fixer_core._checks``):
lengths, layouts and batch sizes are refused with a message naming what
is wrong, before any batching or resizing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixer_core import LabelErrorFinder
from fixer_core._checks import (
    check_batch_size,
    check_find_inputs,
    check_same_length,
    layout_problem,
)


def _probs(n, k, h, w):
    return np.full((n, k, h, w), 1.0 / k, dtype=np.float32)


@pytest.mark.parametrize(
    "labels, pred_probs, pattern",
    [
        pytest.param(
            np.zeros((16, 8, 8), np.int64),
            _probs(20, 2, 8, 8),
            r"labels hold 16 images but pred_probs hold 20",
            id="surplus-pred-probs",
        ),
        pytest.param(
            np.zeros((4, 8, 8), np.int64),
            _probs(2, 2, 8, 8),
            r"labels hold 4 images but pred_probs hold 2",
            id="missing-pred-probs",
        ),
        pytest.param(
            np.zeros((1, 1, 1), np.int64),
            np.ones((1, 1, 1, 3), np.float32),
            r"pred_probs of shape \(1, 1, 1, 3\) have 1 class channel.*"
            r"channels-last",
            id="channels-last",
        ),
        pytest.param(
            np.zeros((2, 48, 64), np.int64),
            _probs(2, 3, 64, 48),
            r"pred_probs are 48x64 \(width x height\) but the labels are "
            r"64x48",
            id="transposed",
        ),
        pytest.param(
            np.zeros((2, 48, 64), np.int64),
            _probs(2, 3, 1, 1),
            r"pred_probs are 1x1",
            id="one-pixel",
        ),
        pytest.param(
            np.zeros((2, 48, 64), np.int64),
            _probs(2, 3, 48, 48),
            r"same aspect ratio",
            id="other-aspect-ratio",
        ),
        pytest.param(
            np.zeros((2, 48), np.int64),
            _probs(2, 3, 48, 48),
            r"labels must have a shape of \(N, H, W\), got \(2, 48\)",
            id="labels-2d",
        ),
    ],
)
def test_check_same_length_names_the_wrong_shape(labels, pred_probs, pattern):
    with pytest.raises(ValueError, match=pattern):
        check_same_length(labels, pred_probs)


@pytest.mark.parametrize(
    "probs_size, labels_size",
    [((48, 64), (48, 64)), ((24, 32), (48, 64)), ((45, 60), (360, 480))]
    + [((46, 60), (360, 480)), ((96, 128), (48, 64))],
    ids=["same", "half", "eighth", "eighth-rounded-up", "double"],
)
def test_lower_resolution_with_the_same_aspect_ratio_fits(
    probs_size, labels_size
):
    assert layout_problem(probs_size, labels_size) is None


@pytest.mark.parametrize(
    "batch_size, error, pattern",
    [
        (None, TypeError, r"batch_size must be a positive integer, got "),
        (2.5, TypeError, r"got float 2\.5"),
        (True, TypeError, r"got bool"),
        (0, ValueError, r"batch_size must be positive, got 0"),
    ],
    ids=["none", "float", "bool", "zero"],
)
def test_check_batch_size_refuses_clearly(batch_size, error, pattern):
    with pytest.raises(error, match=pattern):
        check_batch_size(batch_size)


def test_check_same_length_refuses_non_arrays():
    with pytest.raises(TypeError, match=r"labels must be a numpy array"):
        check_same_length([[[0]]], _probs(1, 2, 1, 1))


def test_check_find_inputs_accepts_good_inputs():
    check_find_inputs(np.zeros((3, 8, 8), np.int64), _probs(3, 2, 4, 4), 2)


def test_finder_refuses_transposed_probabilities_instead_of_resizing():
    finder = LabelErrorFinder(["a", "b", "c"])
    labels = torch.zeros((1, 48, 64), dtype=torch.int64)
    with pytest.raises(ValueError, match=r"are 48x64 .* labels are 64x48"):
        finder.update(labels, torch.from_numpy(_probs(1, 3, 64, 48)))
