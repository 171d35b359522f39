"""The error types read from the dataset's confusions."""

import numpy as np

from fixer_core import FinderConfig
from fixer_core.error_types import classify_error
from fixer_core.statistics import ClassStatistics

SKY, TREE, POLE, BUILDING = range(4)
INTERIOR = np.array([10_000, 8_000, 500, 20_000])


def _statistics(confused: dict[tuple[int, int], float]) -> ClassStatistics:
    """Statistics whose labels of ``i`` the model confidently calls ``j`` on
    the share ``confused[i, j]`` of their interior pixels."""
    k = len(INTERIOR)
    joint = np.zeros((k, k), np.int64)
    for (i, j), rate in confused.items():
        joint[i, j] = round(rate * INTERIOR[i])
    joint[np.arange(k), np.arange(k)] = INTERIOR - joint.sum(axis=1)
    return ClassStatistics(
        pixel_counts=INTERIOR * 2,
        thresholds=np.full(k, 0.9),
        confident_joint=joint,
        interior_counts=INTERIOR,
        background_probs=np.zeros(k),
        num_images=10,
    )


def _type(stats, given, suggested, given_prob=0.05, inside_share=0.0) -> str:
    return classify_error(
        given,
        suggested,
        given_prob=given_prob,
        inside_share=inside_share,
        statistics=stats,
        config=FinderConfig(),
    )


def test_a_pair_swapped_evenly_both_ways_is_ambiguous():
    """Sky and trees through branches, labelled either way where the model
    is sure: a labelling policy, even at rates under ambiguous_min_rate."""
    stats = _statistics(
        {(SKY, TREE): 0.004, (TREE, SKY): 0.003, (POLE, BUILDING): 0.3}
    )
    assert stats.swapped_evenly[SKY, TREE] and stats.swapped_evenly[TREE, SKY]
    assert _type(stats, SKY, TREE) == _type(stats, TREE, SKY) == "ambiguous"


def test_a_one_way_habit_is_not_ambiguous():
    """The model calls poles building; building is rarely called pole."""
    stats = _statistics({(POLE, BUILDING): 0.3, (BUILDING, POLE): 0.01})
    assert not stats.swapped_evenly.any()
    assert _type(stats, POLE, BUILDING) == "general"


def test_chance_confusions_do_not_make_a_pair_ambiguous():
    """A few pixels confused both ways, far under each class's usual
    confusion, are chance: the pair is not swapped evenly."""
    stats = _statistics(
        {
            (SKY, BUILDING): 0.02,
            (BUILDING, SKY): 0.02,
            (SKY, POLE): 0.0001,
            (POLE, SKY): 0.0001,
        }
    )
    assert stats.swapped_evenly[SKY, BUILDING]
    assert not stats.swapped_evenly[SKY, POLE]
    assert _type(stats, SKY, POLE) == "general"


def test_a_model_split_on_a_pair_confused_both_ways_is_ambiguous():
    """Unevenly confused pairs are ambiguous where the model is split."""
    stats = _statistics({(SKY, TREE): 0.1, (TREE, SKY): 0.02})
    assert not stats.swapped_evenly[SKY, TREE]
    assert _type(stats, SKY, TREE, given_prob=0.4) == "ambiguous"
    assert _type(stats, SKY, TREE, given_prob=0.05) == "general"


def test_a_rare_object_against_its_given_class_is_a_false_negative():
    """A pole labelled building (the pole holds 2.5% of building's pixels)
    is a missed object where its patch touches the building region, even
    when the model's blob of it reaches past the pole onto other classes;
    not where it lies wholly among other classes."""
    stats = _statistics({})
    assert _type(stats, BUILDING, POLE, inside_share=1.0) == "false_negative"
    assert _type(stats, BUILDING, POLE, inside_share=0.3) == "false_negative"
    assert _type(stats, BUILDING, POLE, inside_share=0.0) == "general"
    # not a much rarer class: a swap, whatever surrounds it
    assert _type(stats, SKY, BUILDING, inside_share=1.0) == "general"
