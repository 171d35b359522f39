"""Sorting patches into the three error types."""

from __future__ import annotations

import numpy as np

from .config import FinderConfig
from .statistics import ClassStatistics


def classify_error(
    given: int,
    suggested: int,
    *,
    given_prob: float,
    inside_share: float,
    statistics: ClassStatistics,
    config: FinderConfig,
) -> str:
    """Returns the error type of a patch.

    The rules, checked in this order:

    - ``"ambiguous"``: an inconsistent labelling policy for the team to
      settle, such as rug vs floor. Either labels and model swap the pair
      about equally in both directions across the dataset
      (``ClassStatistics.swapped_evenly``), or they confuse it both ways
      often (at least ``ambiguous_min_rate`` of the interior pixels of
      each class are confidently predicted as the other) and the model
      itself is split on the patch (mean given-class probability at least
      ``ambiguous_min_given_prob``).
    - ``"false_negative"``: the suggested class is much rarer than the given
      one (at most ``fn_max_frequency_ratio`` of its pixels) and the patch
      lies in or against a region of the given class (at least
      ``fn_min_inside_share`` of its outline): a rare object missed in
      favour of a common one, such as a cushion labelled couch.
    - ``"general"``: everything else.
    """
    rates = statistics.confusion_rates
    if statistics.swapped_evenly[given, suggested] or (
        min(rates[given, suggested], rates[suggested, given])
        >= config.ambiguous_min_rate
        and given_prob >= config.ambiguous_min_given_prob
    ):
        return "ambiguous"
    if (
        much_rarer(suggested, given, statistics.pixel_counts, config)
        and inside_share >= config.fn_min_inside_share
    ):
        return "false_negative"
    return "general"


def much_rarer(
    rare: int, common: int, counts: np.ndarray, config: FinderConfig
) -> bool:
    """Whether class ``rare`` holds at most ``fn_max_frequency_ratio`` of
    the pixels of class ``common`` across the dataset."""
    return counts[rare] <= config.fn_max_frequency_ratio * counts[common]
