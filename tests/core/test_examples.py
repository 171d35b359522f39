"""Nearest correctly labelled examples by colour and texture, or by the
model's features."""

import numpy as np
import pytest

from fixer_core.examples import (
    DESCRIPTOR_SIZE,
    ExampleRegion,
    example_regions,
    model_descriptor,
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


def _probs(*values, size=(8, 8)):
    """``(K, H, W)`` probabilities equal to ``values`` at every pixel."""
    return np.broadcast_to(
        np.array(values, np.float32)[:, None, None], (len(values), *size)
    ).copy()


def test_model_descriptors_keep_the_margins_probabilities_lose():
    full = np.ones((8, 8), bool)
    # a patch the model calls class 1 but finds class 0-like, and two
    # confident class 1 regions: one a little class 0-like, one class 2-like
    query = model_descriptor(_probs(0.15, 0.8, 0.05), full)
    like = model_descriptor(_probs(0.01, 0.985, 0.005), full)
    unlike = model_descriptor(_probs(0.005, 0.985, 0.01), full)
    assert query.shape == (3,) and query.sum() == pytest.approx(0, abs=1e-5)
    assert np.linalg.norm(query - like) < np.linalg.norm(query - unlike)
    # logits give the same descriptor as their softmax
    logits = np.log(_probs(0.15, 0.8, 0.05)) + 3.0
    assert model_descriptor(logits, full, logits=True) == pytest.approx(
        query, abs=1e-5
    )
    with pytest.raises(ValueError, match="empty"):
        model_descriptor(_probs(0.5, 0.5), np.zeros((8, 8), bool))


def test_example_regions_by_the_model_are_described_by_its_output():
    image = np.zeros((20, 20, 3), np.uint8)
    label = np.zeros((20, 20), np.int64)
    label[:, 10:] = 1
    probs = _probs(0.9, 0.1, size=(20, 20))
    probs[:, :, 10:] = np.array([0.2, 0.8])[:, None, None]
    found = example_regions(
        image,
        label,
        np.zeros((20, 20), bool),
        {0, 1},
        "img",
        pred_probs=probs,
    )
    assert [r.label for r in found] == [0, 1]
    for region in found:
        x, y, w, h = region.box
        inside = np.zeros((20, 20), bool)
        inside[y : y + h, x : x + w] = True
        assert region.descriptor == pytest.approx(
            model_descriptor(probs, inside)
        )


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
