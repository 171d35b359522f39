"""Nearest correctly labelled examples by colour and texture."""

import numpy as np
import pytest

from fixer_core.examples import (
    DESCRIPTOR_SIZE,
    ExampleRegion,
    example_regions,
    nearest_examples,
    region_descriptor,
)


def _striped(colour, period, size=(32, 32)):
    """An image of ``colour`` stripes of ``period`` pixels on black."""
    image = np.zeros((*size, 3), np.uint8)
    for x in range(0, size[1], 2 * period):
        image[:, x : x + period] = colour
    return image


def test_descriptors_are_normalized_and_compare_looks():
    full = np.ones((32, 32), bool)
    red = region_descriptor(_striped((200, 30, 30), 2), full)
    red_again = region_descriptor(_striped((190, 35, 25), 2), full)
    blue = region_descriptor(_striped((30, 30, 200), 2), full)
    red_wide = region_descriptor(_striped((200, 30, 30), 8), full)
    assert red.shape == (DESCRIPTOR_SIZE,)
    assert float((red**2).sum()) == pytest.approx(1.0, abs=1e-5)
    near = np.linalg.norm(red - red_again)
    assert near < np.linalg.norm(red - blue)
    # same colours, another texture: further than a recoloured twin
    assert near < np.linalg.norm(red - red_wide)


def test_an_empty_region_is_refused():
    with pytest.raises(ValueError, match="empty"):
        region_descriptor(_striped((1, 2, 3), 2), np.zeros((32, 32), bool))


def test_nearest_examples_are_of_the_class_and_from_other_images():
    full = np.ones((32, 32), bool)
    query = region_descriptor(_striped((200, 30, 30), 2), full)

    def region(image, label, colour):
        descriptor = region_descriptor(_striped(colour, 2), full)
        return ExampleRegion(image, label, (0, 0, 32, 32), descriptor)

    bank = [
        region("same", 1, (200, 30, 30)),  # the patch's own image
        region("a", 1, (30, 30, 200)),
        region("b", 1, (195, 35, 30)),
        region("c", 2, (200, 30, 30)),  # another class
        region("d", 1, (30, 200, 30)),
    ]
    found = nearest_examples(query, 1, "same", bank, k=2)
    assert found[0][0].image == "b"  # the red twin
    assert len(found) == 2
    assert {r.label for r, _ in found} == {1}
    assert all(r.image != "same" for r, _ in found)
    distances = [d for _, d in found]
    assert distances == sorted(distances)
    assert nearest_examples(query, 3, "same", bank) == []


def test_example_regions_skip_flagged_pixels_and_small_regions():
    image = _striped((120, 120, 120), 2, size=(40, 40))
    label = np.zeros((40, 40), np.int64)
    label[:20, :20] = 1  # 400 px of class 1
    label[30:33, 30:33] = 1  # 9 px: too small
    flagged = np.zeros((40, 40), bool)
    flagged[:20, :10] = True  # half the big region is a patch
    regions = example_regions(image, label, flagged, {1, 5}, "img")
    assert [(r.label, r.box) for r in regions] == [(1, (10, 0, 10, 20))]
    assert regions[0].image == "img"
