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
BENCHMARKS.md, "The queue learns from the verdicts").
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

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
    """Indices of a queue's patches (given in the queue's order): those
    still to review first, each at its place divided by its pair's weight
    (:func:`pair_weights`; ties keep the queue's order), then the reviewed
    ones in the queue's order."""
    weights = pair_weights(pairs, probabilities, verdicts, prior)
    todo = [i for i, v in enumerate(verdicts) if v is None]
    done = [i for i, v in enumerate(verdicts) if v is not None]
    place = np.array(
        [(i + 1) / weights.get(pairs[i], 1.0) for i in todo], dtype=float
    )
    todo = np.asarray(todo, dtype=int)[np.argsort(place, kind="stable")]
    return np.concatenate([todo, np.asarray(done, dtype=int)])
