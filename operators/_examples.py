"""Nearest correctly labelled examples of a patch's suggested class, from
other images of the dataset (see ``fixer_core.examples``).

Regions are described by the model's features (its class scores over the
region) wherever the run's model output can be had again: the stored
probability files, the probabilities a model run saved, or the run's
model itself (a TorchScript file, or an entry point the caller may run).
Otherwise (fold models whose output was not saved) by colour and texture.
Each answer names the descriptor it used.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import fiftyone as fo
import numpy as np
import torch

from ..fixer_core.examples import (
    COLOUR_TEXTURE,
    MODEL_FEATURES,
    ExampleRegion,
    example_regions,
    model_descriptor,
    nearest_examples,
    region_descriptor,
)
from ._pipeline import output_fields
from ._samples import LabelErrorInputError, load_image, load_mask, load_probs
from ._sources import ModelSpec, build_model_source

logger = logging.getLogger(__name__)

EXAMPLES_PER_PATCH = 3
# Images searched for examples (a seeded subset of larger datasets)
MAX_IMAGES = 200
# Banks of example regions kept in memory (one per run)
_BANKS_KEPT = 4
_banks: OrderedDict[tuple, _Bank] = OrderedDict()
_lock = threading.Lock()

# Patch attributes the examples need, read with values()
_PATCH_VALUES = ("id", "bounding_box", "mask", "suggested_label")
# (sample, (H, W)) -> (K, H, W) model output
Reader = Callable[[fo.Sample, tuple[int, int]], np.ndarray]


@dataclass(frozen=True)
class _Bank:
    """The example regions of a run, and how its regions are described."""

    descriptor: str
    regions: list[ExampleRegion]
    files: dict[str, tuple[str, int, int]]  # sample id -> path, W, H
    reader: Reader | None
    logits: bool
    fields: tuple[str, ...]  # sample fields the reader needs


def review_examples(
    dataset: fo.Dataset,
    run_key: str,
    patch_ids: list[str],
    *,
    may_run_model: Callable[[str], bool] = lambda spec: True,
    k: int = EXAMPLES_PER_PATCH,
    max_images: int = MAX_IMAGES,
) -> dict:
    """The ``k`` correctly labelled regions of each patch's suggested
    class, from other images, that are nearest the patch.

    A correctly labelled region is a connected region of the class in the
    ground truth outside every patch of the run, in a seeded subset of at
    most ``max_images`` images. The regions are described once per run
    and kept in memory, so each page of patches only describes its own.

    Args:
        patch_ids: ids of patches of the run.
        may_run_model: whether the run's model (its spec) may be run here
            (entry points are code: see ``_entry_points``).

    Returns:
        ``{"descriptor": "model features" | "colour/texture",
        "examples": {patch id: [{"sample_id", "filepath", "width",
        "height", "box", "distance"}, ...]}}``; a patch whose image or
        labels cannot be read has no examples.
    """
    bank = _bank(dataset, run_key, may_run_model, max_images)
    config = dataset.get_run_info(run_key).config
    names = list(config.class_names)
    field = output_fields(run_key)["patches"]
    # values(): many times faster than building each sample's Detections
    path = f"{field}.detections"
    columns = dataset.select_labels(ids=patch_ids, fields=field).values(
        ["id", *(f"{path}.{n}" for n in _PATCH_VALUES)]
    )
    patches = {sid: rows for sid, *rows in zip(*columns, strict=True)}
    view = dataset.select(list(patches)).select_fields(
        [config.gt_field, *bank.fields]
    )
    out: dict[str, list[dict]] = {i: [] for i in patch_ids}
    for sample in view.iter_samples():
        ids, boxes, masks, suggested = patches[sample.id]
        try:
            queries = _describe_patches(
                sample, boxes, masks, config.gt_field, bank
            )
        except LabelErrorInputError as e:
            logger.warning("No examples for patches of a sample: %s", e)
            continue
        for i, label, query in zip(ids, suggested, queries, strict=True):
            found = nearest_examples(
                query, names.index(label), sample.id, bank.regions, k=k
            )
            out[i] = [_example(bank, r, d) for r, d in found]
    return {"descriptor": bank.descriptor, "examples": out}


def _example(bank: _Bank, region: ExampleRegion, distance: float) -> dict:
    path, width, height = bank.files[region.image]
    return {
        "sample_id": region.image,
        "filepath": path,
        "width": width,
        "height": height,
        "box": list(region.box),
        "distance": round(distance, 4),
    }


def _describe_patches(sample, boxes, masks, gt_field, bank) -> list:
    shape = load_mask(sample, gt_field).shape
    regions = []
    for box, mask in zip(boxes, masks, strict=True):
        region = np.zeros(shape, bool)
        _paint(box, mask, region)
        regions.append(region)
    if bank.reader is None:
        image = load_image(sample)
        return [region_descriptor(image, r) for r in regions]
    probs = bank.reader(sample, shape)
    return [model_descriptor(probs, r, logits=bank.logits) for r in regions]


def _bank(
    dataset: fo.Dataset,
    run_key: str,
    may_run_model: Callable[[str], bool],
    max_images: int,
) -> _Bank:
    """The run's example regions, described once and cached."""
    info = dataset.get_run_info(run_key)
    model = getattr(info.config, "model", None)
    runnable = bool(model) and may_run_model(model["model"])
    key = (str(dataset._doc.id), run_key, str(info.timestamp))
    key += (runnable, max_images)
    with _lock:
        if key in _banks:
            _banks.move_to_end(key)
            return _banks[key]
        bank = _build_bank(dataset, run_key, info.config, runnable, max_images)
        _banks[key] = bank
        while len(_banks) > _BANKS_KEPT:
            _banks.popitem(last=False)
        return bank


def _build_bank(dataset, run_key, config, runnable, max_images) -> _Bank:
    reader, logits, fields = _model_output(config, runnable)
    descriptor = COLOUR_TEXTURE if reader is None else MODEL_FEATURES
    gt, field = config.gt_field, output_fields(run_key)["patches"]
    ids = sorted(dataset.exists(field).values("id"))
    if len(ids) > max_images:
        ids = random.Random(0).sample(ids, max_images)
    chosen = dataset.select(ids)
    path = f"{field}.detections"
    columns = chosen.values(["id", f"{path}.bounding_box", f"{path}.mask"])
    patches = {sid: rows for sid, *rows in zip(*columns, strict=True)}
    view = chosen.select_fields([gt, *fields])
    logger.info(
        "Describing regions of %d images for examples (%s)",
        len(view),
        descriptor,
    )
    regions, files = [], {}
    for sample in view.iter_samples():
        try:
            label = load_mask(sample, gt)
            probs = image = None
            if reader is None:
                image = load_image(sample)
            else:
                probs = reader(sample, label.shape)
        except LabelErrorInputError as e:
            logger.warning("Image left out of the examples: %s", e)
            continue
        files[sample.id] = (sample.filepath, label.shape[1], label.shape[0])
        flagged = np.zeros(label.shape, bool)
        for box, mask in zip(*patches[sample.id], strict=True):
            _paint(box, mask, flagged)
        regions += example_regions(
            image,
            label,
            flagged,
            set(np.unique(label).tolist()),
            sample.id,
            pred_probs=probs,
            logits=logits,
        )
    return _Bank(descriptor, regions, files, reader, logits, fields)


def _model_output(config, runnable: bool) -> tuple:
    """``(reader, logits, fields)`` of the run's model output, or
    ``(None, False, ())`` when it cannot be had again."""
    source = config.probs_source
    saved = getattr(config, "save_probs_field", None)
    if source == "stored" or saved:
        name = config.probs_field if source == "stored" else saved
        logits = bool(config.logits) and source == "stored"

        def read(sample, shape):
            return _resized(load_probs(sample, name), shape)

        return read, logits, (name,)
    if source == "model" and runnable:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            model = build_model_source(
                ModelSpec.from_dict(config.model),
                len(config.class_names),
                device,
            )
        except LabelErrorInputError as e:
            logger.warning("Examples by colour/texture: %s", e)
            return None, False, ()

        def predict(sample, shape):
            probs = model([sample], [np.zeros(shape, np.uint8)])[0]
            return probs.float().cpu().numpy()

        return predict, False, ()
    return None, False, ()


def _resized(probs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(K, H, W)`` float32 probabilities at the labels' size."""
    probs = probs.astype(np.float32)
    if probs.shape[1:] == tuple(shape):
        return probs
    size = (shape[1], shape[0])
    return np.stack(
        [cv2.resize(c, size, interpolation=cv2.INTER_LINEAR) for c in probs]
    )


def _paint(box: list[float], mask: np.ndarray, out: np.ndarray) -> None:
    """Sets the pixels of a patch (its normalized box and box-sized mask)
    in the ``(H, W)`` bool image."""
    height, width = out.shape
    x0, y0 = round(box[0] * width), round(box[1] * height)
    h, w = mask.shape
    out[y0 : y0 + h, x0 : x0 + w] |= mask[: height - y0, : width - x0] != 0
