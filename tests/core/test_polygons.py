"""Tests of the exact mask <-> pixel-edge polygon conversion."""

import cv2
import numpy as np
import pytest

from fixer_core.polygons import (
    mask_to_polygons,
    polygon_area,
    polygons_to_mask,
    rasterize_polygon,
    region_outlines,
)
from fixer_core.synthetic import make_scenes


def _reference_rasterize(points, shape):
    """Slow even-odd ray casting at pixel centres."""
    height, width = shape
    out = np.zeros(shape, dtype=bool)
    pts = [tuple(map(float, p)) for p in points]
    for r in range(height):
        for c in range(width):
            x, y = c + 0.5, r + 0.5
            inside = False
            for (xa, ya), (xb, yb) in zip(pts, pts[1:] + pts[:1], strict=True):
                if (ya <= y < yb) or (yb <= y < ya):
                    xc = xa + (y - ya) * (xb - xa) / (yb - ya)
                    if xc <= x:
                        inside = not inside
            out[r, c] = inside
    return out


def test_rectangle_outline_is_its_four_corners():
    region = np.zeros((5, 6), dtype=bool)
    region[1:4, 2:5] = True
    (outline,) = region_outlines(region)
    assert outline.tolist() == [[2, 1], [5, 1], [5, 4], [2, 4]]
    assert polygon_area(outline) == region.sum()


def test_ring_outline_is_outer_boundary_only():
    region = np.ones((5, 5), dtype=bool)
    region[2, 2] = False
    (outline,) = region_outlines(region)
    assert polygon_area(outline) == 25
    assert rasterize_polygon(outline, region.shape).all()


def test_diagonal_pixels_are_two_regions():
    region = np.array([[1, 0], [0, 1]], dtype=bool)
    outlines = region_outlines(region)
    assert [polygon_area(o) for o in outlines] == [1, 1]
    painted = np.zeros_like(region)
    for outline in outlines:
        painted |= rasterize_polygon(outline, region.shape)
    np.testing.assert_array_equal(painted, region)


@pytest.mark.parametrize("seed", range(20))
def test_random_label_maps_round_trip_exactly(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 24, size=2)
    num_values = int(rng.integers(1, 6))
    mask = rng.integers(0, num_values, (height, width)).astype(np.uint8)
    polygons = mask_to_polygons(mask)
    rebuilt = polygons_to_mask(polygons, mask.shape, fill_value=200)
    np.testing.assert_array_equal(rebuilt, mask)
    for value in range(num_values):
        n, _ = cv2.connectedComponents(
            (mask == value).astype(np.uint8), connectivity=4
        )
        assert sum(v == value for v, _ in polygons) == n - 1


def test_synthetic_scene_round_trips_exactly_with_integer_vertices():
    labels = make_scenes(2, seed=0).labels
    for label in labels:
        polygons = mask_to_polygons(label)
        assert all(p.dtype.kind == "i" for _, p in polygons)
        np.testing.assert_array_equal(
            polygons_to_mask(polygons, label.shape), label
        )


def test_uint16_values_survive():
    mask = np.array([[0, 300], [300, 1000]], dtype=np.uint16)
    rebuilt = polygons_to_mask(
        mask_to_polygons(mask), mask.shape, dtype=np.uint16
    )
    np.testing.assert_array_equal(rebuilt, mask)


@pytest.mark.parametrize("seed", range(10))
def test_rasterize_matches_reference_on_arbitrary_polygons(seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-4, 20, size=(int(rng.integers(3, 9)), 2))
    shape = (15, 17)
    np.testing.assert_array_equal(
        rasterize_polygon(points, shape), _reference_rasterize(points, shape)
    )


def test_smaller_polygon_is_painted_on_top():
    big = np.array([[0, 0], [6, 0], [6, 6], [0, 6]])
    small = np.array([[2, 2], [4, 2], [4, 4], [2, 4]])
    mask = polygons_to_mask([(7, small), (1, big)], (6, 6))
    assert (mask[2:4, 2:4] == 7).all()
    assert (mask == 1).sum() == 32


def test_uncovered_pixels_get_the_fill_value():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]])
    mask = polygons_to_mask([(3, square)], (3, 3), fill_value=9)
    assert (mask[:2, :2] == 3).all() and (mask == 9).sum() == 5


def test_uncovered_pixels_keep_a_fill_map():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]])
    base = np.arange(9, dtype=np.uint8).reshape(3, 3)
    mask = polygons_to_mask([(30, square)], (3, 3), fill_value=base)
    assert (mask[:2, :2] == 30).all()
    np.testing.assert_array_equal(mask[2], base[2])
    assert base[0, 0] == 0  # the map itself is not painted on
    with pytest.raises(ValueError, match="fill_value map has a shape"):
        polygons_to_mask([(3, square)], (4, 4), fill_value=base)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 2, 2), dtype=bool), np.zeros(4, dtype=bool)],
    ids=["3d", "1d"],
)
def test_bad_shapes_are_refused(bad):
    with pytest.raises(ValueError, match=r"must have a shape of \(H, W\)"):
        region_outlines(bad)
    with pytest.raises(ValueError, match=r"must have a shape of \(H, W\)"):
        mask_to_polygons(bad)


def test_degenerate_polygons_paint_nothing():
    assert not rasterize_polygon(np.array([[0, 0], [3, 0]]), (3, 3)).any()
    assert not rasterize_polygon(
        np.array([[0, 1], [3, 1], [2, 1]]), (3, 3)
    ).any()
    assert region_outlines(np.zeros((3, 3), dtype=bool)) == []


def test_bitmaps_paint_with_polygons_by_area():
    big = np.array([[0, 0], [6, 0], [6, 6], [0, 6]])
    brush = np.zeros((3, 3), dtype=bool)
    brush[1, :] = brush[:, 1] = True  # a plus sign, 5 pixels
    mask = polygons_to_mask([(1, big)], (6, 6), bitmaps=[(4, 2, 1, brush)])
    expected = np.ones((6, 6), dtype=np.uint8)
    expected[1:4, 2:5][brush] = 4
    np.testing.assert_array_equal(mask, expected)


def test_bitmaps_are_cut_to_the_image():
    brush = np.ones((4, 4), dtype=bool)
    mask = polygons_to_mask([], (3, 3), bitmaps=[(5, -2, 1, brush)])
    assert (mask[1:, :2] == 5).all() and (mask == 5).sum() == 4
    outside = polygons_to_mask([], (3, 3), bitmaps=[(5, 9, 9, brush)])
    assert not outside.any()
