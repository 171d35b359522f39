"""The class-prior correction: rare objects a weak model half sees are
found, the model's blur at the edge of a rare region is not."""

import numpy as np
import pytest
import torch

from fixer_core import FinderConfig, find_label_errors
from fixer_core._argmax import certain_argmax, max_at, weighted_max

SIZE = 64


def _scene():
    """Four images of a frequent class 0 holding a region labelled with a
    rare class 1 that a weak model gives only p = 0.3, ringed by 8 pixels
    of blur just as strong, and a hidden block of class 1 labelled 0 (p =
    0.3).
    """
    labels = np.zeros((4, SIZE, SIZE), np.int64)
    p1 = np.full(labels.shape, 0.02, np.float32)
    labels[:, 4:16, 4:16] = 1
    p1[:, 4:16, 4:16] = 0.3
    ring = np.zeros((SIZE, SIZE), bool)
    ring[0:24, 0:24] = True
    ring[4:16, 4:16] = False
    p1[:, ring] = 0.3
    p1[:, 40:52, 40:52] = 0.3  # the hidden rare object
    probs = np.stack([1 - p1, p1], axis=1)
    return labels, probs


def _patches(prior_strength, scene=_scene, **config):
    labels, probs = scene()
    # The scene's blur puts class 1 at 6% on average over class 0, so the
    # cap on the boost of a class's background level is lifted here
    config.setdefault("prior_max_background", 1.0)
    # The weak model is unsure over whole areas; the thresholds that would
    # grow with that blur are held fixed to test the prior alone
    config.setdefault("blur_reference", 0.0)
    # ... and so is the filter of the estimated share of label errors
    config.setdefault("min_error_probability", 0.0)
    patches, _ = find_label_errors(
        labels,
        probs,
        config=FinderConfig(prior_strength=prior_strength, **config),
    )
    return patches


def _noisy_scene():
    """A frequent class 0 over which a weak model half-sees a rare class 1
    (p = 0.3) in the lower two thirds of the image, a region labelled 1
    (p = 0.7) and a hidden object of class 1 labelled 0 (p = 0.6)."""
    labels = np.zeros((4, SIZE, SIZE), np.int64)
    p1 = np.full(labels.shape, 0.02, np.float32)
    p1[:, 20:] = 0.3
    labels[:, 4:12, 4:12] = 1
    p1[:, 4:12, 4:12] = 0.7
    p1[:, 40:52, 40:52] = 0.6
    return labels, np.stack([1 - p1, p1], axis=1)


def _covers(patch, ys, xs):
    return patch.full_mask()[ys, xs].mean() > 0.5


def test_hidden_rare_object_is_suggested_only_with_the_prior():
    hidden = (slice(40, 52), slice(40, 52))
    assert not any(_covers(p, *hidden) for p in _patches(0.0))
    found = [p for p in _patches(1.0) if _covers(p, *hidden)]
    assert len(found) == 4
    assert all(p.suggested_label == 1 and p.given_label == 0 for p in found)


def test_blur_around_a_rare_region_is_not_flagged():
    for p in _patches(1.0):
        box = p.full_mask()[:26, :26]
        assert not box.any(), p


def test_the_boost_of_a_rare_class_noise_is_capped():
    hidden = (slice(40, 52), slice(40, 52))
    # Weighted 1/f (about 60x) its noise of 0.3 beats class 0 throughout
    uncapped = _patches(1.0, _noisy_scene, prior_max_background=1.0)
    assert sum(p.area for p in uncapped) > 4 * SIZE * SIZE // 2
    capped = _patches(1.0, _noisy_scene, prior_max_background=0.15)
    assert len(capped) == 4
    assert all(_covers(p, *hidden) for p in capped)
    assert all(p.suggested_label == 1 for p in capped)


@pytest.mark.parametrize("weights", [None, torch.tensor([1.0, 7.0, 2.5])])
def test_above_the_certain_level_the_given_class_is_the_argmax(weights):
    rng = np.random.default_rng(0)
    probs = torch.from_numpy(rng.dirichlet([0.3] * 3, 20000)).float()
    certain = certain_argmax(3, weights)
    _, argmax = weighted_max(probs, weights)
    for g in range(3):
        level = certain if weights is None else certain[g]
        sure = probs[:, g] > level
        assert sure.any()
        assert (argmax[sure] == g).all()


@pytest.mark.parametrize("share", [0.05, 0.9])
@pytest.mark.parametrize(
    "cutoff", [None, torch.tensor([0.3, 0.1, 0.2, 0.25, 0.4])]
)
def test_max_at_dense_and_sparse_paths_agree(share, cutoff):
    gen = torch.Generator().manual_seed(0)
    probs = (torch.rand(3, 5, 16, 20, generator=gen) * 3).softmax(dim=1)
    mask = torch.rand(3, 16, 20, generator=gen) < share
    weights = torch.tensor([1.0, 4.0, 0.5, 2.0, 8.0])
    n, y, x = mask.nonzero(as_tuple=True)
    p_max, argmax = max_at(probs, n, y, x, weights, cutoff)
    expected_p, expected_k = weighted_max(probs[n, :, y, x], weights, cutoff)
    assert torch.equal(argmax, expected_k)
    assert torch.equal(p_max, expected_p)
    if cutoff is not None:
        # the plain weighted argmax is often below its cutoff here
        _, plain = weighted_max(probs[n, :, y, x], weights)
        assert (plain != expected_k).float().mean() > 0.05


def test_weighted_max_among_confident_classes():
    probs = torch.tensor([[0.6, 0.1, 0.3], [0.2, 0.05, 0.75], [0.5, 0.3, 0.2]])
    weights = torch.tensor([1.0, 20.0, 1.0])
    cutoff = torch.tensor([0.5, 0.25, 0.8])
    # row 0: class 1 wins weighted (2.0) but is below its cutoff
    # row 1: no class reaches its cutoff; row 2: class 1 is confident
    p_max, argmax = weighted_max(probs, weights, cutoff)
    assert argmax[0] == 0 and p_max[0] == pytest.approx(0.6)
    assert p_max[1] < cutoff[argmax[1]]
    assert argmax[2] == 1


def _tail_scene(num_classes):
    """Two frequent classes (left half 0, right half 1) with a block of
    class 1 labelled 0, scored by a model that gives the true class 0.6,
    the other 0.1 and spreads 0.3 over ``num_classes - 2`` classes that
    never occur in the labels."""
    labels = np.zeros((4, SIZE, SIZE), np.int64)
    labels[:, :, SIZE // 2 :] = 1
    truth = labels.copy()
    truth[:, 20:32, 8:20] = 1
    probs = np.full(
        (4, num_classes, SIZE, SIZE), 0.3 / (num_classes - 2), np.float32
    )
    probs[:, 0] = np.where(truth == 0, 0.6, 0.1)
    probs[:, 1] = np.where(truth == 1, 0.6, 0.1)
    return labels, probs


@pytest.mark.parametrize("num_classes", [4, 150])
def test_a_long_tail_of_classes_does_not_dilute_the_score(num_classes):
    labels, probs = _tail_scene(num_classes)
    patches, _ = find_label_errors(labels, probs)
    assert len(patches) == 4
    assert all(p.suggested_label == 1 and p.given_label == 0 for p in patches)
    assert all(_covers(p, slice(20, 32), slice(8, 20)) for p in patches)
    # The score is the model's doubt in the label: the 148 unused classes
    # leave it as it is
    assert {round(p.score, 6) for p in patches} == {
        round(p.score, 6) for p in find_label_errors(*_tail_scene(4))[0]
    }
