"""Nearest correctly labelled examples of each sampled patch's suggested
class, from other images of the dataset (by colour and texture: see
``fixer_core.examples``)."""

from __future__ import annotations

import json
import logging
import random

import fiftyone as fo
import numpy as np

from ..fixer_core.examples import (
    example_regions,
    nearest_examples,
    region_descriptor,
)
from ._pipeline import output_fields, stored_results, update_run_results
from ._samples import load_image, load_mask

logger = logging.getLogger(__name__)

EXAMPLES_PER_PATCH = 3
# Images searched for examples (a seeded subset of larger datasets)
MAX_IMAGES = 200


def review_examples(
    dataset: fo.Dataset,
    run_key: str,
    patches: list[dict],
    *,
    k: int = EXAMPLES_PER_PATCH,
    max_images: int = MAX_IMAGES,
) -> dict[str, list[dict]]:
    """``{patch id: examples}`` for the sampled patches (rows of
    ``review_queue``): the ``k`` correctly labelled regions of the patch's
    suggested class, from other images, that look most like the patch.

    A correctly labelled region is a connected region of the class in the
    ground truth outside every patch of the run. Computed once per review
    sample and kept in the run's results (``review_examples``).
    """
    stored = stored_results(dataset, run_key)
    key = json.dumps(stored.get("review"), sort_keys=True)
    cached = stored.get("review_examples") or {}
    if cached.get("review") == key:
        return cached["examples"]
    examples = _compute(dataset, run_key, patches, k, max_images)
    update_run_results(
        dataset, run_key, review_examples={"review": key, "examples": examples}
    )
    return examples


def _compute(dataset, run_key, patches, k, max_images) -> dict:
    config = dataset.get_run_info(run_key).config
    gt, field = config.gt_field, output_fields(run_key)["patches"]
    names = list(config.class_names)
    wanted = {names.index(p["suggested_label"]) for p in patches}
    queries = {p["sample_id"] for p in patches}
    ids = dataset.exists(field).values("id")
    others = sorted(set(ids) - queries)
    room = max(max_images - len(queries), 0)
    if len(others) > room:
        others = random.Random(0).sample(others, room)
    by_id = {p["id"]: p for p in patches}
    bank, descriptors, files = [], {}, {}
    view = dataset.select([*queries, *others]).select_fields(
        [gt, field, "metadata"]
    )
    logger.info("Describing regions of %d images for examples", len(view))
    for sample in view.iter_samples():
        image, label = load_image(sample), load_mask(sample, gt)
        files[sample.id] = (sample.filepath, label.shape)
        flagged = np.zeros(label.shape, bool)
        for det in sample[field].detections:
            mask = _full_mask(det, label.shape)
            flagged |= mask
            if det.id in by_id:
                descriptors[det.id] = region_descriptor(image, mask)
        bank += example_regions(image, label, flagged, wanted, sample.id)
    out = {}
    for p in patches:
        label = names.index(p["suggested_label"])
        found = nearest_examples(
            descriptors[p["id"]], label, p["sample_id"], bank, k=k
        )
        out[p["id"]] = [
            {
                "sample_id": region.image,
                "filepath": files[region.image][0],
                "width": files[region.image][1][1],
                "height": files[region.image][1][0],
                "box": list(region.box),
                "distance": round(distance, 4),
            }
            for region, distance in found
        ]
    return out


def _full_mask(det, shape: tuple[int, int]) -> np.ndarray:
    """A detection's mask placed in its ``(H, W)`` image."""
    height, width = shape
    x, y = det.bounding_box[:2]
    x0, y0 = round(x * width), round(y * height)
    out = np.zeros(shape, bool)
    h, w = det.mask.shape
    out[y0 : y0 + h, x0 : x0 + w] = det.mask[: height - y0, : width - x0]
    return out
