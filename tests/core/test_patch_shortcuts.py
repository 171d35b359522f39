"""The shortcuts that keep ``find_patch_geometry`` fast give exact results."""

import cv2
import numpy as np
import pytest

from fixer_core import FinderConfig
from fixer_core.patches import (
    _component_boxes,
    _drop_specks,
    _pair_windows,
    find_patch_geometry,
)
from fixer_core.regions import label_regions


def _blobs(rng, shape, classes, scale):
    """Random blobby class map: smooth noise cut into ``classes`` levels."""
    small = rng.random((shape[0] // scale + 2, shape[1] // scale + 2))
    smooth = cv2.resize(small, shape[::-1], interpolation=cv2.INTER_CUBIC)
    cuts = np.quantile(smooth, np.linspace(0, 1, classes + 1)[1:-1])
    return np.digitize(smooth, cuts).astype(np.int16)


def _flags(rng, label, classes):
    """Suggestions on blobs of pixels, -1 elsewhere and on ignored pixels."""
    suggested = _blobs(rng, label.shape, classes, 6)
    keep = (_blobs(rng, label.shape, 4, 5) == 0) & (suggested != label)
    return np.where(keep & (label >= 0), suggested, -1).astype(np.int16)


@pytest.mark.parametrize("seed", range(4))
def test_component_boxes_match_opencv_stats(seed):
    rng = np.random.default_rng(seed)
    for _ in range(50):
        h, w = rng.integers(1, 40, size=2)
        mask = (rng.random((h, w)) < rng.uniform(0.2, 0.8)).astype(np.uint8)
        if rng.random() < 0.5:  # holes with components inside them
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, None)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(
            mask, connectivity=8
        )
        min_area = int(rng.integers(0, 12))
        expected = [
            (i, tuple(int(v) for v in stats[i, :4]))
            for i in range(1, n)
            if stats[i, 2] * stats[i, 3] >= min_area
        ]
        got = _component_boxes(mask, comp, min_area)
        assert [(i, box) for i, box, _ in got] == expected
        for i, _, (px, py) in got:
            assert comp[py, px] == i


def test_pair_windows_bound_each_pair():
    rng = np.random.default_rng(0)
    label = _blobs(rng, (60, 80), 5, 10)
    suggested = _flags(rng, label, 5)
    margin = 3
    windows = _pair_windows(label, suggested, margin)
    flagged = suggested >= 0
    pairs = sorted(
        set(
            zip(
                label[flagged].tolist(),
                suggested[flagged].tolist(),
                strict=True,
            )
        )
    )
    assert [(g, s) for g, s, _ in windows] == pairs
    for g, s, (rows, cols) in windows:
        ys, xs = np.nonzero((label == g) & (suggested == s))
        assert rows == slice(
            max(ys.min() - margin, 0), min(ys.max() + margin + 1, 60)
        )
        assert cols == slice(
            max(xs.min() - margin, 0), min(xs.max() + margin + 1, 80)
        )


@pytest.mark.parametrize("radius", [1, 2])
def test_drop_specks_same_for_many_classes(radius):
    # With over 181 classes the pair ids leave int16 for float64.
    rng = np.random.default_rng(radius)
    label = _blobs(rng, (70, 90), 6, 8)
    suggested = _flags(rng, label, 6)
    region_flagged = (suggested >= 0) & (rng.random(label.shape) < 0.05)
    config = FinderConfig(speck_radius=radius)
    few = _drop_specks(label, suggested, region_flagged, config)
    shift = np.int16(300)
    many = _drop_specks(
        label + shift,
        np.where(suggested >= 0, suggested + shift, -1).astype(np.int16),
        region_flagged,
        config,
    )
    assert (few >= 0).sum() < (suggested >= 0).sum()
    np.testing.assert_array_equal(np.where(many >= 0, many - shift, -1), few)


@pytest.mark.parametrize("seed", range(3))
def test_patches_lie_in_one_region_each(seed):
    rng = np.random.default_rng(seed)
    label = _blobs(rng, (90, 120), 5, 12)
    label[:, :3] = -1
    suggested = _flags(rng, label, 5)
    regions = label_regions(label)
    patch_ids, patches = find_patch_geometry(
        label,
        suggested,
        np.zeros(label.shape, bool),
        regions,
        FinderConfig(min_area=4),
    )
    assert patches
    for i, p in enumerate(patches):
        x, y, w, h = p.box
        touched = np.unique(regions.ids[y : y + h, x : x + w][p.mask])
        assert len(touched) == 1
        assert p.coverage == p.area / regions.areas[touched[0]]
        assert p.area == p.mask.sum()
        assert (label[y : y + h, x : x + w][p.mask] == p.given_label).all()
        # Later pairs win the pixels two closings claim.
        assert (patch_ids[y : y + h, x : x + w][p.mask] >= i).all()
        full = np.zeros(label.shape, bool)
        full[y : y + h, x : x + w] = p.mask
        assert not (patch_ids[~full] == i).any()
