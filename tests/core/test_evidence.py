"""Each patch's evidence, its reason in words and the error map."""

import numpy as np
import pytest
import torch

from fixer_core import (
    FinderConfig,
    error_map,
    explain_patches,
    find_label_errors,
    image_error_score,
    reason_text,
    same_confusion,
)
from fixer_core._pixels import LOG_FLOOR
from fixer_core.evidence import PIXEL_RULE, REGION_RULE, patch_evidence
from fixer_core.finder import SHIFTED_CAUSE
from fixer_core.synthetic import IGNORE_VALUE, SIMULATED_MODEL, make_scenes


@pytest.fixture(scope="module")
def found():
    scenes = make_scenes(24, seed=0)
    patches, summary = find_label_errors(
        scenes.labels,
        scenes.pred_probs,
        class_names=scenes.class_names,
        ignore_index=[IGNORE_VALUE],
        config=FinderConfig(**SIMULATED_MODEL),
    )
    return scenes, patches, summary


def test_every_patch_carries_evidence_consistent_with_it(found):
    scenes, patches, _ = found
    assert patches
    for p in patches:
        e = p.evidence
        assert e is not None
        # probabilities without a class prior: the suggestion is the
        # model's most likely class on the patch
        assert e.top_labels[0] == p.suggested_label
        assert len(e.top_labels) == len(e.top_probs) == 3
        assert list(e.top_probs) == sorted(e.top_probs, reverse=True)
        assert e.top_probs[0] == pytest.approx(p.suggested_prob, abs=1e-3)
        assert e.rule in (PIXEL_RULE, REGION_RULE)
        x, y, w, h = p.box
        region = scenes.pred_probs[p.image_index][:, y : y + h, x : x + w]
        # pooled in the logs: the normalised geometric mean of its pixels
        logs = np.log(np.maximum(region[:, p.mask], LOG_FLOOR)).mean(axis=1)
        pooled = np.exp(logs) / np.exp(logs).sum()
        assert np.argsort(-pooled)[:3].tolist() == list(e.top_labels)
        assert e.top_probs[0] == pytest.approx(pooled.max(), abs=1e-3)


def test_the_given_threshold_is_the_classes_threshold():
    scenes = make_scenes(8, seed=1)
    from fixer_core import LabelErrorFinder

    finder = LabelErrorFinder(
        scenes.class_names,
        ignore_index=[IGNORE_VALUE],
        config=FinderConfig(**SIMULATED_MODEL),
    )
    finder.update(scenes.labels, scenes.pred_probs)
    thresholds = finder.statistics.thresholds
    found = [
        p for ps in finder.find(scenes.labels, scenes.pred_probs) for p in ps
    ]
    assert found
    for p in found:
        expected = float(thresholds[p.given_label])
        assert p.evidence.given_threshold == pytest.approx(expected, abs=1e-4)


def test_whole_regions_and_parts_of_regions_name_their_rule(found):
    _, patches, _ = found
    rules = {p.evidence.rule for p in patches}
    assert rules == {PIXEL_RULE, REGION_RULE}
    for p in patches:
        if p.evidence.rule == REGION_RULE:
            assert p.coverage > 0.9  # the whole labelled region


def test_rule_follows_the_majority_of_the_patch_pixels():
    probs = torch.tensor([0.1, 0.8, 0.1]).view(3, 1, 1).expand(3, 4, 4)
    mask = torch.ones(4, 4, dtype=torch.bool)
    region = torch.zeros(4, 4, dtype=torch.bool)
    assert patch_evidence(probs, mask, region, 0.5).rule == PIXEL_RULE
    region[:3] = True
    assert patch_evidence(probs, mask, region, 0.5).rule == REGION_RULE


def test_same_confusion_counts_the_other_patches_of_a_pair():
    assert same_confusion([(1, 2), (2, 1), (1, 2), (1, 2)]) == [2, 0, 2, 2]
    assert same_confusion([]) == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            dict(rule=REGION_RULE, others=23),
            "Labelled Building; the model sees Pole (0.81) over the whole "
            "region; 23 other patches show the same confusion.",
        ),
        (
            dict(
                rule=PIXEL_RULE,
                given_prob=0.12,
                given_threshold=0.85,
                others=1,
            ),
            "Labelled Building; the model sees Pole (0.81) on this part of "
            "the region and gives Building only 0.12 (usually 0.85 on its "
            "pixels); 1 other patch shows the same confusion.",
        ),
        (
            dict(rule=PIXEL_RULE, cause=SHIFTED_CAUSE, others=0),
            "Labelled Building; label shifted against its image: the "
            "model sees Pole (0.81) here; no other patch shows this "
            "confusion.",
        ),
        (
            dict(
                rule=REGION_RULE, others=4, issue="Pole labelled as Building"
            ),
            "Labelled Building; the model sees Pole (0.81) over the whole "
            "region; 4 other patches show the same confusion (issue: Pole "
            "labelled as Building).",
        ),
    ],
    ids=["region", "pixel", "shifted", "issue"],
)
def test_the_reason_names_the_rule_in_words(kwargs, expected):
    top = [("Pole", 0.81), ("Building", 0.12), ("Tree", 0.03)]
    text = reason_text("Building", "Pole", top=top, **kwargs)
    assert text == expected


def test_explain_patches_reads_each_rule_and_the_shift():
    rows = np.zeros((96, 128), np.int64)
    rows[:40] = 1
    rows[50:80, 10:40] = 2
    rows[20:70, 70:90] = 3
    truth = np.stack([rows] * 4)
    labels = truth.copy()
    labels[2] = np.roll(truth[2], (8, 8), axis=(0, 1))
    probs = np.full((4, 4, *rows.shape), 0.02, np.float32)
    for c in range(4):
        probs[:, c][truth == c] = 0.94
    names = ["road", "sky", "car", "pole"]
    patches, _ = find_label_errors(labels, probs, class_names=names)
    reasons = explain_patches(patches, names)
    pairs = list(zip(patches, reasons, strict=True))
    shifted = [r for p, r in pairs if p.image_index == 2]
    assert shifted
    assert all("label shifted against its image" in r for r in shifted)
    for p, r in pairs:
        assert r.startswith(f"Labelled {names[p.given_label]}; ")
        assert names[p.suggested_label] in r


def test_the_error_map_is_high_inside_patches_and_zero_outside(found):
    scenes, patches, _ = found
    image = patches[0].image_index
    mine = [p for p in patches if p.image_index == image]
    heat = error_map(scenes.labels.shape[1:], mine)
    inside = np.zeros(heat.shape, bool)
    for p in mine:
        inside |= p.full_mask()
        assert heat[p.full_mask()].max() == pytest.approx(p.error_probability)
    assert heat[inside].min() > 0
    assert not heat[~inside].any()
    # its mean is the image's error score
    assert heat.mean() == pytest.approx(image_error_score(mine), rel=1e-4)
