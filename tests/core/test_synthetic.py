"""Tests of the synthetic scenes with planted label errors."""

import numpy as np
import pytest

from fixer_core.synthetic import (
    CLASS_NAMES,
    ERROR_TYPES,
    IGNORE_VALUE,
    SyntheticScenes,
    make_scenes,
    planted_error_map,
)

NUM_IMAGES, HEIGHT, WIDTH = 24, 96, 128
RUG, FLOOR = CLASS_NAMES.index("rug"), CLASS_NAMES.index("floor")


@pytest.fixture(scope="module")
def scenes() -> SyntheticScenes:
    return make_scenes(NUM_IMAGES, height=HEIGHT, width=WIDTH, seed=0)


def _expected_labels(scenes: SyntheticScenes) -> np.ndarray:
    labels = scenes.clean_labels.copy()
    for error in scenes.planted:
        labels[error.image_index][error.mask] = error.given_label
    return labels


def test_shapes_and_dtypes(scenes: SyntheticScenes) -> None:
    k = len(CLASS_NAMES)
    assert scenes.class_names == CLASS_NAMES
    assert scenes.images.shape == (NUM_IMAGES, HEIGHT, WIDTH, 3)
    assert scenes.images.dtype == np.uint8
    for labels in (scenes.clean_labels, scenes.labels):
        assert labels.shape == (NUM_IMAGES, HEIGHT, WIDTH)
        assert labels.dtype == np.uint8
    assert scenes.pred_probs.shape == (NUM_IMAGES, k, HEIGHT, WIDTH)
    assert scenes.pred_probs.dtype == np.float32
    for error in scenes.planted:
        assert error.mask.shape == (HEIGHT, WIDTH)
        assert error.mask.dtype == bool
        assert error.error_type in ERROR_TYPES


def test_pred_probs_are_normalised(scenes: SyntheticScenes) -> None:
    probs = scenes.pred_probs
    assert np.isfinite(probs).all()
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_pred_probs_follow_clean_labels(scenes: SyntheticScenes) -> None:
    clean = scenes.clean_labels
    predicted = scenes.pred_probs.argmax(axis=1)
    scored = (clean != IGNORE_VALUE) & (clean != RUG)
    assert (predicted[scored] == clean[scored]).mean() > 0.95
    rug_probs = scenes.pred_probs.transpose(0, 2, 3, 1)[clean == RUG]
    assert 0.45 < rug_probs[:, RUG].mean() < 0.65
    assert 0.25 < rug_probs[:, FLOOR].mean() < 0.45


def test_labels_change_only_at_planted_errors(
    scenes: SyntheticScenes,
) -> None:
    for error in scenes.planted:
        assert error.mask.any()
        assert error.given_label != error.true_label
        clean = scenes.clean_labels[error.image_index]
        assert (clean[error.mask] == error.true_label).all()
        noisy = scenes.labels[error.image_index]
        assert (noisy[error.mask] == error.given_label).all()
    np.testing.assert_array_equal(scenes.labels, _expected_labels(scenes))


def test_planted_masks_exclude_void(scenes: SyntheticScenes) -> None:
    for error in scenes.planted:
        void = scenes.clean_labels[error.image_index] == IGNORE_VALUE
        assert not (error.mask & void).any()


def test_all_error_types_and_both_ambiguous_directions(
    scenes: SyntheticScenes,
) -> None:
    kinds = {
        (error.error_type, error.given_label, error.true_label)
        for error in scenes.planted
    }
    assert kinds == {
        ("general", CLASS_NAMES.index("chair"), CLASS_NAMES.index("table")),
        ("ambiguous", FLOOR, RUG),
        ("ambiguous", RUG, FLOOR),
        (
            "false_negative",
            CLASS_NAMES.index("couch"),
            CLASS_NAMES.index("cushion"),
        ),
    }


def test_some_images_are_clean(scenes: SyntheticScenes) -> None:
    noisy = {error.image_index for error in scenes.planted}
    assert NUM_IMAGES - len(noisy) >= 0.2 * NUM_IMAGES


def test_border_is_void(scenes: SyntheticScenes) -> None:
    for labels in (scenes.clean_labels, scenes.labels):
        border = np.ones((HEIGHT, WIDTH), dtype=bool)
        border[1:-1, 1:-1] = False
        assert (labels[:, border] == IGNORE_VALUE).all()
        assert (labels[:, ~border] != IGNORE_VALUE).all()
    assert (scenes.images[:, 0] == 0).all()


def test_planted_error_map(scenes: SyntheticScenes) -> None:
    error_map = planted_error_map(scenes)
    assert error_map.shape == scenes.labels.shape
    assert error_map.dtype == np.int8
    expected = np.full(scenes.labels.shape, -1, dtype=np.int8)
    for error in scenes.planted:
        assert (expected[error.image_index][error.mask] == -1).all()
        expected[error.image_index][error.mask] = ERROR_TYPES.index(
            error.error_type
        )
    np.testing.assert_array_equal(error_map, expected)
    np.testing.assert_array_equal(
        error_map == -1, scenes.labels == scenes.clean_labels
    )


def test_deterministic_for_a_seed(scenes: SyntheticScenes) -> None:
    again = make_scenes(NUM_IMAGES, height=HEIGHT, width=WIDTH, seed=0)
    np.testing.assert_array_equal(again.images, scenes.images)
    np.testing.assert_array_equal(again.labels, scenes.labels)
    np.testing.assert_array_equal(again.pred_probs, scenes.pred_probs)
    assert len(again.planted) == len(scenes.planted)


def test_different_across_seeds(scenes: SyntheticScenes) -> None:
    other = make_scenes(NUM_IMAGES, height=HEIGHT, width=WIDTH, seed=1)
    assert not np.array_equal(other.clean_labels, scenes.clean_labels)
    assert not np.array_equal(other.pred_probs, scenes.pred_probs)


def test_low_error_rate_still_plants_each_kind() -> None:
    scenes = make_scenes(8, height=48, width=64, seed=3, error_rate=0.01)
    kinds = {(error.error_type, error.given_label) for error in scenes.planted}
    assert {kind for kind, _ in kinds} == set(ERROR_TYPES)
    assert {("ambiguous", FLOOR), ("ambiguous", RUG)} <= kinds
    np.testing.assert_array_equal(scenes.labels, _expected_labels(scenes))


def test_zero_error_rate_plants_nothing() -> None:
    scenes = make_scenes(4, height=48, width=48, error_rate=0.0)
    assert scenes.planted == []
    np.testing.assert_array_equal(scenes.labels, scenes.clean_labels)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_images": 0},
        {"height": 16},
        {"error_rate": 1.5},
        {"noise": -1.0},
    ],
)
def test_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        make_scenes(**kwargs)
