"""The core finder on synthetic scenes with planted errors."""

import numpy as np
import pytest
import torch

from fixer_core import (
    ERROR_TYPES,
    FinderConfig,
    LabelErrorFinder,
    apply_patches,
    discount_runs,
    find_label_errors,
    image_error_score,
)
from fixer_core.evaluation import recovery_by_type
from fixer_core.synthetic import IGNORE_VALUE, SIMULATED_MODEL, make_scenes

# The scenes' simulated probabilities carry no class prior.
SIMULATED = FinderConfig(**SIMULATED_MODEL)


def _find(scenes, **kwargs):
    kwargs.setdefault("config", SIMULATED)
    return find_label_errors(
        scenes.labels,
        scenes.pred_probs,
        class_names=scenes.class_names,
        ignore_index=[IGNORE_VALUE],
        **kwargs,
    )


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(24, seed=0)


@pytest.fixture(scope="module")
def found(scenes):
    return _find(scenes)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_errors_are_found_typed_and_corrected(seed):
    scenes = make_scenes(24, seed=seed)
    patches, _ = _find(scenes)
    recovery = recovery_by_type(patches, scenes.known_errors())
    for error_type in ERROR_TYPES:
        r = recovery[error_type]
        assert r.total > 0
        assert r.found >= 0.8 * r.total, (error_type, r)
        assert r.suggested_right == r.found, (error_type, r)
        assert r.typed_right >= 0.9 * r.found, (error_type, r)


def test_patches_lie_on_planted_errors(scenes, found):
    patches, _ = found
    errors = np.zeros(scenes.labels.shape, dtype=bool)
    for e in scenes.planted:
        errors[e.image_index] |= e.mask
    on_errors = [
        (p.full_mask() & errors[p.image_index]).sum() >= p.area / 2
        for p in patches
    ]
    assert np.mean(on_errors) >= 0.95


def test_planted_error_outranks_clean_images(scenes, found):
    patches, _ = found
    scores = np.array(
        [
            image_error_score(p for p in patches if p.image_index == i)
            for i in range(len(scenes.labels))
        ]
    )
    planted = {e.image_index for e in scenes.planted}
    clean = [i for i in range(len(scores)) if i not in planted]
    assert clean
    assert scores[clean].max() < scores[sorted(planted)].min()


@pytest.mark.parametrize("seed", [0, 1])
def test_clean_labels_yield_no_patches(seed):
    scenes = make_scenes(24, seed=seed, error_rate=0.0)
    assert not scenes.planted
    patches, summary = _find(scenes)
    assert len(patches) <= 1
    assert summary.issues == []


def test_recurring_patterns_become_named_issues(found):
    patches, summary = found
    names = {i.name: i for i in summary.issues}
    assert set(names) == {
        "table labelled as chair",
        "cushion missed in couch",
        "floor vs rug ambiguity",
    }
    assert names["table labelled as chair"].error_type == "general"
    assert names["cushion missed in couch"].error_type == "false_negative"
    assert summary.issue_share > 0.9
    for p in patches:
        if p.issue is not None:
            assert names[p.issue].error_type == p.error_type
    issue = names["table labelled as chair"]
    members = [p for p in patches if p.issue == issue.name]
    assert issue.num_patches == len(members)
    assert issue.num_pixels == sum(p.area for p in members)
    assert issue.num_images == len({p.image_index for p in members})


def test_patch_records_are_consistent(scenes, found):
    patches, _ = found
    assert patches
    for p in patches:
        x, y, w, h = p.box
        assert p.mask.shape == (h, w)
        assert p.mask.any(axis=0).all() and p.mask.any(axis=1).all()
        assert p.area == p.mask.sum() >= FinderConfig().min_area
        assert 0.0 <= p.score <= 1.0
        assert 0.0 < p.coverage <= 1.0
        assert p.error_type in ERROR_TYPES
        label = scenes.labels[p.image_index]
        assert (label[p.full_mask()] == p.given_label).all()
        bx, by, bw, bh = p.bounding_box
        assert np.allclose(
            [bx * 128, by * 96, bw * 128, bh * 96], [x, y, w, h]
        )


def test_whole_object_relabel_covers_its_region(scenes, found):
    patches, _ = found
    general = [p for p in patches if p.error_type == "general"]
    assert general
    assert min(p.coverage for p in general) > 0.9


def test_ignored_values_are_never_flagged(scenes):
    labels = scenes.labels.copy()
    labels[:, 10:30, 10:30] = 200  # no channel: never scored
    patches, summary = find_label_errors(
        labels,
        scenes.pred_probs,
        class_names=scenes.class_names,
        ignore_index=[IGNORE_VALUE, 0],  # wall ignored as well
        config=SIMULATED,
    )
    ignored = (labels >= len(scenes.class_names)) | (labels == 0)
    for p in patches:
        assert not (p.full_mask() & ignored[p.image_index]).any()
        assert p.given_label != 0
    assert summary.num_pixels == int((~ignored).sum())


@pytest.mark.parametrize("batch_size", [1, 5, 24])
def test_results_do_not_depend_on_batch_size(scenes, found, batch_size):
    expected, expected_summary = found
    patches, summary = _find(scenes, batch_size=batch_size)
    assert _keys(patches) == _keys(expected)
    assert summary.issues == expected_summary.issues


def test_tensor_float16_and_logit_inputs_agree(scenes, found):
    expected, _ = found
    as_tensor, _ = find_label_errors(
        torch.from_numpy(scenes.labels),
        torch.from_numpy(scenes.pred_probs),
        class_names=scenes.class_names,
        ignore_index=[IGNORE_VALUE],
        config=SIMULATED,
    )
    assert _keys(as_tensor) == _keys(expected)
    half, _ = find_label_errors(
        scenes.labels,
        scenes.pred_probs.astype(np.float16),
        class_names=scenes.class_names,
        ignore_index=[IGNORE_VALUE],
        config=SIMULATED,
    )
    assert _overlap(half, expected) > 0.95
    logits = np.log(scenes.pred_probs) + 3.0  # softmax-invariant shift
    from_logits, _ = _find_logits(scenes, logits)
    assert _overlap(from_logits, expected) > 0.99


def test_low_resolution_probabilities_are_resized(scenes, found):
    expected, _ = found
    small = torch.nn.functional.interpolate(
        torch.from_numpy(scenes.pred_probs), scale_factor=0.5, mode="bilinear"
    )
    patches, _ = find_label_errors(
        scenes.labels,
        small,
        class_names=scenes.class_names,
        ignore_index=[IGNORE_VALUE],
        config=SIMULATED,
    )
    assert _overlap(patches, expected) > 0.8


def test_streaming_object_matches_functional_api(scenes, found):
    expected, _ = found
    finder = LabelErrorFinder(
        scenes.class_names, ignore_index=[IGNORE_VALUE], config=SIMULATED
    )
    halves = [slice(0, 10), slice(10, 24)]
    for part in halves:
        finder.update(scenes.labels[part], scenes.pred_probs[part])
    patches = []
    for part in halves:
        indices = list(range(part.start, part.stop))
        for image in finder.find(
            scenes.labels[part], scenes.pred_probs[part], image_indices=indices
        ):
            patches.extend(image)
    patches = discount_runs(patches)
    assert sorted(_keys(patches)) == sorted(_keys(expected))
    with pytest.raises(RuntimeError, match="statistics are final"):
        finder.update(scenes.labels, scenes.pred_probs)


def test_apply_patches_sets_suggestions_on_a_copy(scenes, found):
    patches, _ = found
    i = patches[0].image_index
    label = scenes.labels[i]
    before = label.copy()
    corrected = apply_patches(
        label, [p for p in patches if p.image_index == i]
    )
    assert np.array_equal(label, before)
    for p in patches:
        if p.image_index == i:
            assert (corrected[p.full_mask()] == p.suggested_label).all()
    fixed = (corrected != label).sum()
    assert fixed == sum(p.area for p in patches if p.image_index == i)


def test_corrections_bring_labels_closer_to_the_truth(scenes, found):
    patches, _ = found
    wrong_before = wrong_after = 0
    for i, label in enumerate(scenes.labels):
        corrected = apply_patches(
            label, [p for p in patches if p.image_index == i]
        )
        wrong_before += (label != scenes.clean_labels[i]).sum()
        wrong_after += (corrected != scenes.clean_labels[i]).sum()
    assert wrong_after < 0.3 * wrong_before


def test_image_error_score_is_the_expected_wrong_share(found):
    patches, _ = found
    a, b = patches[:2]
    assert image_error_score([]) == 0.0
    pixels = a.image_shape[0] * a.image_shape[1]
    expected = (
        a.error_probability * a.area + b.error_probability * b.area
    ) / pixels
    assert image_error_score([a, b]) == pytest.approx(expected)
    # more wrong pixels rank higher, without saturating
    assert image_error_score([a]) < image_error_score([a, b]) < 1


def test_expected_errors_sum_the_patch_probabilities(found):
    patches, summary = found
    total = sum(p.error_probability for p in patches)
    assert summary.expected_errors == pytest.approx(total)
    low, high = summary.expected_errors_interval
    assert low <= summary.expected_errors <= high
    assert all(0 <= p.error_probability <= 1 for p in patches)


def _find_logits(scenes, logits):
    return find_label_errors(
        scenes.labels,
        logits,
        class_names=scenes.class_names,
        ignore_index=[IGNORE_VALUE],
        logits=True,
        config=SIMULATED,
    )


def _keys(patches):
    return [
        (
            p.image_index,
            p.box,
            p.given_label,
            p.suggested_label,
            p.error_type,
            round(p.score, 5),
        )
        for p in patches
    ]


def _overlap(patches, expected):
    """Share of the expected patches' pixels also flagged, same suggestion."""

    def flagged(ps):
        out = {}
        for p in ps:
            key = (p.image_index, p.suggested_label)
            out[key] = out.get(key, 0) | p.full_mask()
        return out

    got, want = flagged(patches), flagged(expected)
    total = sum(m.sum() for m in want.values())
    hit = sum((m & got.get(k, False)).sum() for k, m in want.items())
    return hit / total


def test_device_gives_the_same_patches(scenes, found, device):
    expected, _ = found
    patches, _ = _find(scenes, device=device)
    assert _overlap(patches, expected) > 0.99
    assert _overlap(expected, patches) > 0.99


def test_patches_never_overlap(found):
    patches, _ = found
    by_image = {}
    for p in patches:
        covered = by_image.setdefault(p.image_index, np.zeros((96, 128), int))
        covered += p.full_mask()
    assert max(c.max() for c in by_image.values()) == 1


@pytest.mark.parametrize("blurry", [False, True])
def test_min_area_grows_with_the_model_blur(blurry):
    # a 6x6 mislabelled block: 36 pixels pass min_area 16 with a sharp
    # model, not the area it grows to when the model blurs every boundary
    labels = np.zeros((1, 128, 128), dtype=np.int64)
    labels[:, :, 64:] = 1
    probs = np.zeros((1, 2, 128, 128), dtype=np.float32)
    probs[:, 0] = np.where(labels[0] == 0, 0.95, 0.05)
    probs[:, 1] = 1 - probs[:, 0]
    if blurry:  # an unsure band 16 px wide along the boundary
        probs[:, :, :, 56:72] = 0.5
    probs[:, :, 20:26, 20:26] = np.array([0.05, 0.95])[:, None, None]
    config = FinderConfig(**SIMULATED_MODEL, min_area=16, min_score=0.0)
    patches, _ = find_label_errors(
        labels, probs, class_names=["a", "b"], config=config
    )
    areas = [p.area for p in patches if p.box[0] < 40]
    assert areas == ([] if blurry else [36])
