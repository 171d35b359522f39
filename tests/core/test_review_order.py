"""The review queue's order learned from verdicts (fixer_core.review_order)."""

import numpy as np

from fixer_core import learned_order, pair_weights, verdict_order

WALL = ("Building", "Fence")
CAR = ("Road", "Car")


def test_without_verdicts_the_queue_keeps_its_order():
    pairs = [WALL, CAR, WALL, CAR]
    order = verdict_order(pairs, [0.5] * 4, [None] * 4)
    assert order.tolist() == [0, 1, 2, 3]


def test_a_pair_the_reviewer_rejects_sinks_and_one_confirmed_keeps_its_place():
    # a model's habit (a wall called a fence in every frame) above real errors
    pairs = [WALL] * 6 + [CAR] * 4
    verdicts = [False, False, False] + [None] * 7
    order = verdict_order(pairs, [0.9] * 10, verdicts)
    todo = order[:7].tolist()
    assert sorted(order[7:].tolist()) == [0, 1, 2]  # reviewed ones last
    # the walls left move down among the cars, in their own order
    assert todo == [6, 7, 8, 3, 9, 4, 5]
    # confirmed as promised: the same queue, reviewed ones aside
    confirmed = [True, True, True] + [None] * 7
    order = verdict_order(pairs, [0.9] * 10, confirmed)
    assert order.tolist() == [3, 4, 5, 6, 7, 8, 9, 0, 1, 2]


def test_the_weight_falls_with_each_rejection_and_follows_the_promise():
    rejected = [
        pair_weights([WALL] * n, [0.9] * n, [False] * n)[WALL]
        for n in range(1, 6)
    ]
    assert np.all(np.diff(rejected) < 0) and rejected[0] < 1
    # a rejection of a patch promised as unlikely tells less
    unlikely = pair_weights([WALL], [0.1], [False])[WALL]
    assert rejected[0] < unlikely < 1
    # a pair whose patches are errors as often as promised keeps weight 1
    kept = pair_weights([CAR] * 4, [0.5] * 4, [True, False, True, False])
    assert kept[CAR] == 1.0


def test_a_tail_reordered_as_the_review_goes_moves_from_the_views_places():
    # a queue already reordered once: reordering its tail again from the
    # view's places gives the order of the whole queue learned at once,
    # and weights learned elsewhere (a run's verdicts) apply the same
    pairs = [WALL] * 8 + [CAR] * 8
    verdicts = [False, False, False, False] + [None] * 12
    weights = pair_weights(pairs, [0.9] * 16, verdicts)
    whole = verdict_order(pairs, [0.9] * 16, verdicts)
    head, tail = whole[:4], whole[4:12]  # the tail: still to review
    order = learned_order(
        [pairs[i] for i in tail],
        [None] * len(tail),
        weights,
        places=[i + 1 for i in tail],
    )
    assert [int(tail[k]) for k in order] == tail.tolist()
    # from the tail's own places the walls would sink a second time
    again = learned_order([pairs[i] for i in tail], [None] * 8, weights)
    assert [int(tail[k]) for k in again] != tail.tolist()
    assert head.tolist() == [8, 9, 10, 11]
