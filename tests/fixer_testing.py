"""Builds real FiftyOne datasets (files on disk) for FIXER's tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fixer_core.synthetic import IGNORE_VALUE, SyntheticScenes

PLUGIN = "@fixer/fixer"


def write_scenes_dataset(
    dataset,
    scenes: SyntheticScenes,
    root: Path,
    *,
    inline_masks: bool = False,
    probs_format: str = "npy",
) -> list[str]:
    """Fills ``dataset`` with ``scenes`` written as real files.

    Images go to ``root/images`` (JPEG), masks to ``root/masks`` (PNG,
    referenced by ``mask_path`` unless ``inline_masks``), probabilities to
    ``root/probs`` (``.npy`` or ``.npz``). Fields: ``ground_truth``
    (Segmentation), ``probs_path`` (string). Mask targets name every class
    and ``255: "void"``.

    Returns:
        The sample ids, in scene order.
    """
    import fiftyone as fo

    for sub in ("images", "masks", "probs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    samples = []
    for i, label in enumerate(scenes.labels):
        image = root / "images" / f"{i:04d}.jpg"
        cv2.imwrite(str(image), scenes.images[i][:, :, ::-1])
        if inline_masks:
            gt = fo.Segmentation(mask=label.copy())
        else:
            mask = root / "masks" / f"{i:04d}.png"
            cv2.imwrite(str(mask), label)
            gt = fo.Segmentation(mask_path=str(mask))
        probs = root / "probs" / f"{i:04d}.{probs_format}"
        if probs_format == "npz":
            np.savez_compressed(probs, probs=scenes.pred_probs[i])
        else:
            np.save(probs, scenes.pred_probs[i])
        samples.append(
            fo.Sample(
                filepath=str(image), ground_truth=gt, probs_path=str(probs)
            )
        )
    targets = dict(enumerate(scenes.class_names))
    targets[IGNORE_VALUE] = "void"
    dataset.default_mask_targets = targets
    return dataset.add_samples(samples)


def detection_mask(detection, shape: tuple[int, int]) -> np.ndarray:
    """Places a detection's box-sized mask in an ``(H, W)`` image."""
    height, width = shape
    x, y = detection.bounding_box[:2]
    x0, y0 = round(x * width), round(y * height)
    h, w = detection.mask.shape
    out = np.zeros(shape, dtype=bool)
    out[y0 : y0 + h, x0 : x0 + w] = detection.mask
    return out
