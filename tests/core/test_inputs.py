"""Bad inputs to the core get clear errors."""

import numpy as np
import pytest

from fixer_core import FinderConfig, PredProbsError, find_label_errors
from fixer_core.issues import issue_name


def _probs(n=2, k=3, h=8, w=8):
    p = np.random.default_rng(0).random((n, k, h, w)).astype(np.float32)
    return p / p.sum(axis=1, keepdims=True)


def _labels(n=2, h=8, w=8):
    return np.zeros((n, h, w), dtype=np.uint8)


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


@pytest.mark.parametrize(
    ("labels", "probs", "error", "match"),
    [
        (_labels()[0], _probs(), ValueError, r"labels must have a shape of"),
        (_labels().astype(float), _probs(), TypeError, "integer array"),
        (_labels(), _probs()[0], ValueError, r"shape of \(N, K, H, W\)"),
        (_labels(), _probs().astype(int), TypeError, "float array"),
        (_labels(n=3), _probs(), ValueError, "3 images but pred_probs hold 2"),
        (
            _labels(),
            _with(_probs(), (1, 0, 0, 0), np.nan),
            PredProbsError,
            "image 1 hold NaN",
        ),
        (
            _labels(),
            _with(_probs(), (0, 0, 0, 0), -0.5),
            PredProbsError,
            "image 0 hold negative values.*logits=True",
        ),
        (
            _labels(),
            _probs() * 2,
            PredProbsError,
            "do not sum to 1.*logits=True",
        ),
    ],
    ids=[
        "labels-2d",
        "labels-float",
        "probs-3d",
        "probs-int",
        "image-count",
        "nan",
        "negative",
        "not-normalized",
    ],
)
def test_bad_arrays_are_rejected(labels, probs, error, match):
    with pytest.raises(error, match=match):
        find_label_errors(labels, probs)


def test_wrong_class_count_is_rejected():
    with pytest.raises(ValueError, match="3 class channels, expected 4"):
        find_label_errors(
            _labels(), _probs(), class_names=["a", "b", "c", "d"]
        )


def test_logits_are_accepted_when_declared():
    logits = np.log(_probs()) - 5.0
    patches, summary = find_label_errors(_labels(), logits, logits=True)
    assert summary.num_images == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_confidence": 1.5}, r"min_confidence must be in \[0, 1\]"),
        ({"min_area": -1}, "min_area must be a non-negative integer"),
        ({"min_area": 2.5}, "min_area must be a non-negative integer"),
        ({"score_area_scale": 0}, "score_area_scale must be positive"),
        ({"margin_classes": 1}, "margin_classes must be an integer >= 2"),
        ({"margin_classes": 2.5}, "margin_classes must be an integer >= 2"),
        (
            {"blur_reference": -1},
            "blur_reference must be non-negative",
        ),
    ],
    ids=[
        "confidence",
        "negative-area",
        "float-area",
        "area-scale",
        "one-margin-class",
        "float-margin-classes",
        "negative-reference",
    ],
)
def test_bad_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FinderConfig(**kwargs)


def test_config_round_trips_through_dict():
    config = FinderConfig(min_area=4, ambiguous_min_rate=0.05)
    assert FinderConfig.from_dict({**config.to_dict(), "x": 1}) == config


@pytest.mark.parametrize(
    ("error_type", "name"),
    [
        ("false_negative", "cushion missed in couch"),
        ("general", "cushion labelled as couch"),
        ("ambiguous", "couch vs cushion ambiguity"),
    ],
)
def test_issue_names(error_type, name):
    assert issue_name(0, 1, error_type, ["couch", "cushion"]) == name


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="batch_size must be positive"):
        find_label_errors(_labels(), _probs(), batch_size=0)


def test_spatial_thresholds_scale_with_the_model_blur():
    config = FinderConfig(min_area=16, boundary_width=2, speck_radius=1)
    reference = config.blur_reference
    assert config.at_blur(reference / 2) is config  # a sharp model
    blurry = config.at_blur(2 * reference)  # a band twice as wide
    assert blurry.min_area == 64
    assert blurry.boundary_width == 4
    assert blurry.score_area_scale == 4 * config.score_area_scale
    assert blurry.speck_radius == 1  # specks are pixel noise
    assert blurry.at_blur(2 * reference) == blurry  # scaled once
    fixed = FinderConfig(blur_reference=0)
    assert fixed.at_blur(10 * reference) is fixed
