"""Classes the model barely predicts are named in the summary."""

import numpy as np
import pytest

from fixer_core import FinderConfig, LabelErrorFinder
from fixer_core.config import WEAKLY_PREDICTED_BELOW
from fixer_core.quality import flag_shares, weakly_predicted_note
from fixer_core.synthetic import IGNORE_VALUE, SIMULATED_MODEL, make_scenes


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(12, seed=0)


def _summary(labels, pred_probs, class_names):
    finder = LabelErrorFinder(
        class_names,
        ignore_index=[IGNORE_VALUE],
        config=FinderConfig(**SIMULATED_MODEL),
    )
    finder.update(labels, pred_probs)
    finder.find(labels, pred_probs)
    return finder.summary(), finder.statistics


def _dimmed(pred_probs: np.ndarray, channel: int) -> np.ndarray:
    """The probabilities of a model that hardly ever predicts ``channel``."""
    probs = pred_probs.copy()
    probs[:, channel] *= 0.02
    return probs / probs.sum(axis=1, keepdims=True)


def test_a_model_that_sees_every_class_names_none(scenes):
    summary, _ = _summary(scenes.labels, scenes.pred_probs, scenes.class_names)
    assert summary.weakly_predicted == {}
    assert summary.to_dict()["weakly_predicted"] == {}


def test_a_barely_predicted_class_is_named_with_its_mean_probability(scenes):
    lamp = scenes.class_names.index("lamp")
    probs = _dimmed(scenes.pred_probs, lamp)
    summary, stats = _summary(scenes.labels, probs, scenes.class_names)
    assert list(summary.weakly_predicted) == ["lamp"]
    assert summary.weakly_predicted["lamp"] == pytest.approx(
        float(stats.thresholds[lamp]), abs=1e-4
    )
    assert summary.weakly_predicted["lamp"] < WEAKLY_PREDICTED_BELOW


def test_a_class_absent_from_the_labels_is_not_named(scenes):
    lamp = scenes.class_names.index("lamp")
    labels = np.where(scenes.labels == lamp, 0, scenes.labels)
    probs = _dimmed(scenes.pred_probs, lamp)
    summary, stats = _summary(labels, probs, scenes.class_names)
    assert stats.pixel_counts[lamp] == 0
    assert summary.weakly_predicted == {}


def test_flag_shares_and_note_carry_the_classes():
    summary = {
        "totals": {},
        "issues": [],
        "num_pixels": 100,
        "weakly_predicted": {"Pole": 0.024, "Bicyclist": 0.028},
    }
    assert flag_shares(summary)["weakly_predicted"] == {
        "Pole": 0.024,
        "Bicyclist": 0.028,
    }
    note = weakly_predicted_note(summary["weakly_predicted"])
    assert note.startswith(
        "The model barely predicts Pole (2.4%), Bicyclist (2.8%), under 10%"
    )  # weakest first
    assert "swaps between them go unflagged" in note
    one = weakly_predicted_note({"lamp": 0.044})
    assert one.startswith("The model barely predicts lamp (4.4%), under 10%")
    assert "its labels are checked weakly" in one


def test_runs_stored_without_the_field_have_no_note():
    shares = flag_shares({"totals": {}, "issues": [], "num_pixels": 0})
    assert shares["weakly_predicted"] == {}
    assert weakly_predicted_note(shares["weakly_predicted"]) is None


def test_a_long_list_is_cut_to_the_weakest():
    weak = {f"class{k}": 0.01 * k for k in range(1, 10)}  # 9 classes
    note = weakly_predicted_note(weak)
    assert "class1 (1.0%)" in note and "class8 (8.0%)" in note
    assert "class9" not in note and "and 1 more" in note
