"""Nearest correctly labelled examples of a class, by the model's features
or by colour and texture.

With the model's output (its per-pixel class probabilities or logits), a
region is described by its mean centred log-probabilities: the model's
class scores up to a constant, which keep every class's margin where
probabilities saturate to one-hot (see :func:`model_descriptor`).
Without them, a region is described by what its pixels look like: a
hue-saturation-value histogram (colour) and histograms of its gradients'
strength and orientation (texture), each normalized and compared by the
Hellinger distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

HUE_BINS, SAT_BINS, VAL_BINS = 8, 3, 3
GRADIENT_BINS = 8
# Share of the descriptor's weight on colour (the rest is texture)
COLOUR_WEIGHT = 0.6
DESCRIPTOR_SIZE = HUE_BINS * SAT_BINS * VAL_BINS + 2 * GRADIENT_BINS
# Probabilities are floored here before the log (float16 files hold zeros)
PROB_FLOOR = 1e-4
# What the descriptors are, as the review panel names them
MODEL_FEATURES = "model features"
COLOUR_TEXTURE = "colour/texture"


@dataclass(frozen=True)
class ExampleRegion:
    """A correctly labelled region that can serve as an example.

    Attributes:
        image: key of its image (e.g. a sample id).
        label: its class.
        box: ``(x, y, w, h)`` in pixels.
        descriptor: float32, see :func:`region_descriptor` and
            :func:`model_descriptor`.
    """

    image: str
    label: int
    box: tuple[int, int, int, int]
    descriptor: np.ndarray


def region_descriptor(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(D,)`` float32 colour and texture descriptor of a region.

    Args:
        image: ``(H, W, 3)`` uint8 RGB image.
        mask: ``(H, W)`` bool mask of the region (not empty).

    Returns:
        The square roots of the weighted, normalized histograms, so that
        the Euclidean distance of two descriptors is their Hellinger
        distance (0 for equal histograms, at most sqrt(2)).

    Example:
        >>> image = np.zeros((8, 8, 3), np.uint8)
        >>> image[:, :4] = (255, 0, 0)  # red left half, black right half
        >>> left = np.zeros((8, 8), bool)
        >>> left[:, :4] = True
        >>> red = region_descriptor(image, left)
        >>> black = region_descriptor(image, ~left)
        >>> round(float(np.linalg.norm(red - black)), 2)
        1.1
    """
    if not mask.any():
        raise ValueError("the region's mask is empty")
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    inside = mask[y0:y1, x0:x1]
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)[inside].astype(np.int64)
    h = hsv[:, 0] * HUE_BINS // 180
    s = hsv[:, 1] * SAT_BINS // 256
    v = hsv[:, 2] * VAL_BINS // 256
    colour = np.bincount(
        (h * SAT_BINS + s) * VAL_BINS + v,
        minlength=HUE_BINS * SAT_BINS * VAL_BINS,
    ).astype(np.float64)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)[inside]
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)[inside]
    magnitude = np.hypot(gx, gy)
    # strength on a log scale (flat, soft, sharp ...), 0 to ~1000
    strength = np.minimum(
        (np.log1p(magnitude) / np.log1p(1024.0) * GRADIENT_BINS).astype(int),
        GRADIENT_BINS - 1,
    )
    strength_hist = np.bincount(strength, minlength=GRADIENT_BINS)
    angle = (np.arctan2(gy, gx) % np.pi) / np.pi * GRADIENT_BINS
    orientation = np.bincount(
        np.minimum(angle.astype(int), GRADIENT_BINS - 1),
        weights=magnitude,
        minlength=GRADIENT_BINS,
    )
    texture_weight = (1 - COLOUR_WEIGHT) / 2
    parts = [
        COLOUR_WEIGHT * _normalized(colour),
        texture_weight * _normalized(strength_hist.astype(np.float64)),
        texture_weight * _normalized(orientation),
    ]
    return np.sqrt(np.concatenate(parts)).astype(np.float32)


def model_descriptor(
    pred_probs: np.ndarray, mask: np.ndarray, *, logits: bool = False
) -> np.ndarray:
    """``(K,)`` float32 descriptor of a region from the model's output.

    The mean over the region of the centred log-probabilities
    ``log p_k - mean_j log p_j`` (the model's logits up to a per-pixel
    constant). Unlike the probabilities, which saturate to one-hot on
    every confidently predicted region, they keep how far each other
    class is, so regions the model sees alike are near.

    Args:
        pred_probs: ``(K, H, W)`` probabilities (or logits, see below).
        mask: ``(H, W)`` bool mask of the region (not empty).
        logits: ``pred_probs`` holds logits, not probabilities.

    Example:
        >>> probs = np.zeros((2, 4, 4), np.float32)
        >>> probs[0], probs[1] = 0.9, 0.1
        >>> model_descriptor(probs, np.ones((4, 4), bool)).round(2)
        array([ 1.1, -1.1], dtype=float32)
    """
    if not mask.any():
        raise ValueError("the region's mask is empty")
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    values = pred_probs[:, y0:y1, x0:x1][:, mask[y0:y1, x0:x1]]
    values = values.astype(np.float64)
    if not logits:
        values = np.log(np.maximum(values, PROB_FLOOR))
    centred = values - values.mean(axis=0)
    return centred.mean(axis=1).astype(np.float32)


def _normalized(hist: np.ndarray) -> np.ndarray:
    total = hist.sum()
    if total == 0:
        return np.full(hist.shape, 1.0 / hist.size)
    return hist / total


def nearest_examples(
    query: np.ndarray,
    label: int,
    image: str,
    bank: list[ExampleRegion],
    *,
    k: int = 3,
) -> list[tuple[ExampleRegion, float]]:
    """The ``k`` regions of ``bank`` of class ``label`` from other images
    than ``image`` whose descriptors are nearest ``query``, nearest first,
    with their distances."""
    candidates = [r for r in bank if r.label == label and r.image != image]
    if not candidates:
        return []
    descriptors = np.stack([r.descriptor for r in candidates])
    distances = np.linalg.norm(descriptors - query, axis=1)
    order = np.argsort(distances, kind="stable")[:k]
    return [(candidates[i], float(distances[i])) for i in order]


def example_regions(
    image: np.ndarray,
    label: np.ndarray,
    flagged: np.ndarray,
    classes: set[int],
    image_key: str,
    *,
    pred_probs: np.ndarray | None = None,
    logits: bool = False,
    min_area: int = 64,
    per_class: int = 5,
) -> list[ExampleRegion]:
    """The correctly labelled regions of an image that can serve as
    examples: connected regions of each of ``classes`` outside the flagged
    pixels, at least ``min_area`` pixels, the ``per_class`` largest per
    class. Described by :func:`model_descriptor` when ``pred_probs`` is
    given, else by :func:`region_descriptor`.

    Args:
        image: ``(H, W, 3)`` uint8 RGB image.
        label: ``(H, W)`` int labels.
        flagged: ``(H, W)`` bool, pixels in any patch of the run.
        classes: the classes wanted.
        image_key: stored in each region.
        pred_probs: ``(K, H, W)`` model output on the image, if any.
        logits: ``pred_probs`` holds logits.
        min_area: smallest region kept.
        per_class: regions kept per class.
    """
    out = []
    for c in sorted(classes):
        mask = ((label == c) & ~flagged).view(np.uint8)
        if not mask.any():
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats(
            mask, connectivity=8
        )
        areas = stats[1:, cv2.CC_STAT_AREA]
        for i in np.argsort(-areas, kind="stable")[:per_class] + 1:
            if stats[i, cv2.CC_STAT_AREA] < min_area:
                break
            x, y, w, h = (int(v) for v in stats[i, :4])
            region = comp[y : y + h, x : x + w] == i
            if pred_probs is None:
                descriptor = region_descriptor(
                    image[y : y + h, x : x + w], region
                )
            else:
                descriptor = model_descriptor(
                    pred_probs[:, y : y + h, x : x + w], region, logits=logits
                )
            out.append(ExampleRegion(image_key, c, (x, y, w, h), descriptor))
    return out
