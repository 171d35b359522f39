"""The order of a review queue, learned from the reviewer's verdicts.

A model's habit shows as many patches of one (given, suggested) pair: a
wall it calls a fence in every frame of a scene, a class it confuses
everywhere. A reviewer who rejects a few of them has told FIXER more
than its statistics could. Each pair's patches move down the queue by
how far its verdicts fall short of what their ``error_probability``
promised::

    weight = min(1, (confirmed + PRIOR) / (expected + PRIOR))

with ``expected`` the sum of the reviewed patches' probabilities: a pair
whose verdicts keep the promise keeps its place, one whose patches are
all rejected sinks as the rejections grow. ``PRIOR`` reads as that many
expected errors' worth of trust in the finder before any verdict (the
benchmark's review simulation gains about as much from 1 to 4;
BENCHMARKS.md, "The queue learns from the verdicts"). The weights may
be learned from more verdicts than the queue's own (a run's, the review
sample's included), and a queue's tail reordered as the review goes
(:func:`learned_order` with the patches' places in the view).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

# Expected errors' worth of trust in the finder's probabilities per pair
PRIOR = 2.0


def pair_weights(
    pairs: Sequence[Hashable],
    probabilities: Sequence[float],
    verdicts: Sequence[bool | None],
    prior: float = PRIOR,
) -> dict[Hashable, float]:
    """``{pair: weight}`` in ``(0, 1]`` from the reviewed patches
    (``verdicts``: True confirmed, False rejected, None not reviewed) and
    their ``probabilities`` of being errors (see the module)."""
    confirmed: dict[Hashable, float] = {}
    expected: dict[Hashable, float] = {}
    for pair, p, verdict in zip(pairs, probabilities, verdicts, strict=True):
        if verdict is None:
            continue
        confirmed[pair] = confirmed.get(pair, 0.0) + bool(verdict)
        expected[pair] = expected.get(pair, 0.0) + float(p)
    return {
        pair: min(1.0, (confirmed[pair] + prior) / (expected[pair] + prior))
        for pair in expected
    }


def verdict_order(
    pairs: Sequence[Hashable],
    probabilities: Sequence[float],
    verdicts: Sequence[bool | None],
    prior: float = PRIOR,
) -> np.ndarray:
    """Indices of a queue's patches (given in the queue's order) in the
    order :func:`learned_order` gives them with the weights their own
    verdicts teach (:func:`pair_weights`)."""
    weights = pair_weights(pairs, probabilities, verdicts, prior)
    return learned_order(pairs, verdicts, weights)


def learned_order(
    pairs: Sequence[Hashable],
    verdicts: Sequence[bool | None],
    weights: Mapping[Hashable, float],
    places: Sequence[float] | None = None,
) -> np.ndarray:
    """Indices of a queue's patches: those still to review first, each at
    its place divided by its pair's weight (ties keep the given order),
    then the reviewed ones in the given order.

    ``places`` are the patches' places in the view the queue was opened
    on (default: 1, 2, ... in the given order). A queue reordered as the
    review goes passes them so that a pair's weight moves its patches
    from where the view put them, not again from where it last moved
    them."""
    if places is None:
        places = range(1, len(pairs) + 1)
    todo = [i for i, v in enumerate(verdicts) if v is None]
    done = [i for i, v in enumerate(verdicts) if v is not None]
    place = np.array(
        [float(places[i]) / weights.get(pairs[i], 1.0) for i in todo],
        dtype=float,
    )
    todo = np.asarray(todo, dtype=int)[np.argsort(place, kind="stable")]
    return np.concatenate([todo, np.asarray(done, dtype=int)])
