"""The whole finder gives the same statistics and patches on the code paths
accelerators take -- torch's max over the class channels and the pooled
interior mask -- forced here on the CPU, since CI has no GPU."""

import pytest

from fixer_core import FinderConfig, LabelErrorFinder, _argmax, statistics
from fixer_core.synthetic import IGNORE_VALUE, SIMULATED_MODEL, make_scenes

CONFIGS = {
    "simulated model": FinderConfig(**SIMULATED_MODEL),
    "prior correction": FinderConfig(),
    "low confidence cap": FinderConfig(min_confidence=0.1),
}


@pytest.fixture(scope="module")
def scenes():
    # noisy probabilities, so that the dense argmax is taken in both passes
    return make_scenes(10, seed=3, noise=1.5)


def _find(scenes, config):
    """The class statistics and every patch's record."""
    finder = LabelErrorFinder(
        scenes.class_names, ignore_index=[IGNORE_VALUE], config=config
    )
    batches = [
        (scenes.labels[i : i + 4], scenes.pred_probs[i : i + 4])
        for i in range(0, len(scenes.labels), 4)
    ]
    for batch in batches:
        finder.update(*batch)
    patches = [
        p for batch in batches for ps in finder.find(*batch) for p in ps
    ]
    records = [
        (
            p.image_index,
            p.box,
            p.mask.tobytes(),
            p.given_label,
            p.suggested_label,
            p.score,
            p.error_type,
        )
        for p in patches
    ]
    return finder.statistics.to_dict(), records


@pytest.mark.parametrize("name", CONFIGS)
def test_accelerator_paths_give_the_same_results(scenes, name, monkeypatch):
    config = CONFIGS[name]
    expected = _find(scenes, config)
    assert expected[1], "the scenes should hold patches"

    calls = {"max": 0, "interior": 0}

    def channel_max(pred_probs, weights, cutoff=None):
        calls["max"] += 1
        return _argmax._channel_max(pred_probs, weights, cutoff)

    def pooled_interior(labels, width):
        calls["interior"] += 1
        return statistics._interior_mask_pooled(labels, width)

    monkeypatch.setattr(_argmax, "_dense_max", channel_max)
    monkeypatch.setattr(statistics, "interior_mask", pooled_interior)
    got = _find(scenes, config)
    assert calls["max"] > 0 and calls["interior"] > 0
    assert got == expected
