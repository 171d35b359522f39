"""Builds real FiftyOne datasets (files on disk) for FIXER's tests."""

from __future__ import annotations

import importlib
import os
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


def write_frames_dataset(
    dataset,
    root: Path,
    labels: np.ndarray,
    truth: np.ndarray,
    probs: np.ndarray,
    *,
    inline_masks: bool = False,
    images: np.ndarray | None = None,
) -> list[str]:
    """Fills ``dataset`` with consecutive frames, in order, from arrays
    (``(N, H, W, 3)`` RGB ``images``, black by default; see
    :func:`write_scenes_dataset`)."""
    scenes = SyntheticScenes(
        images=np.zeros((*labels.shape, 3), np.uint8)
        if images is None
        else images,
        clean_labels=truth,
        labels=labels,
        pred_probs=probs,
        planted=[],
        class_names=tuple("abcd"[: probs.shape[1]]),
    )
    return write_scenes_dataset(
        dataset, scenes, root, inline_masks=inline_masks
    )


def painted_over_frames(
    num_frames: int, painted: int, size: tuple[int, int] = (60, 80)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, truth, probs)`` of frames of an object (class 1) moving 2
    px a frame above a ground (class 2), painted over with the background
    (class 0) in frame ``painted``; the model is sure of every class (0.9)
    but there, where it doubts the label (0.7) but sees the object too
    faintly (0.2) to suggest it."""
    truth = np.zeros((num_frames, *size), np.uint8)
    truth[:, 45:, :] = 2
    for i in range(num_frames):
        truth[i, 10:24, 10 + 2 * i : 24 + 2 * i] = 1
    labels = truth.copy()
    x = 10 + 2 * painted
    labels[painted, 10:24, x : x + 14] = 0
    probs = np.where(
        truth[:, None] == np.arange(3)[None, :, None, None], 0.9, 0.05
    ).astype(np.float32)
    probs[painted, :, 10:24, x : x + 14] = np.array([0.7, 0.2, 0.1])[
        :, None, None
    ]
    return labels, truth, probs


def panning_images(
    num_frames: int, size: tuple[int, int] = (60, 80)
) -> np.ndarray:
    """``(N, H, W, 3)`` images of a smooth texture the camera pans across
    by 1 px a frame: near-duplicate views of one scene."""
    rows, columns = size
    noise = np.random.default_rng(0).uniform(
        0, 255, (rows, columns + num_frames)
    )
    wide = cv2.GaussianBlur(noise, (0, 0), 20).astype(np.uint8)
    return np.stack(
        [np.dstack([wide[:, i : i + columns]] * 3) for i in range(num_frames)]
    )


def detection_mask(detection, shape: tuple[int, int]) -> np.ndarray:
    """Places a detection's box-sized mask in an ``(H, W)`` image."""
    height, width = shape
    x, y = detection.bounding_box[:2]
    x0, y0 = round(x * width), round(y * height)
    h, w = detection.mask.shape
    out = np.zeros(shape, dtype=bool)
    out[y0 : y0 + h, x0 : x0 + w] = detection.mask
    return out


def write_with_label_objects(
    package: str,
    dataset,
    labels: list[np.ndarray],
    found: list[list],
    class_names: list[str],
    fields: dict[str, str],
    corrected_dir: str | None,
    batch_size: int = 8,
) -> None:
    """Pass 2's writes as the pipeline did them before it wrote documents
    directly: an ``fo.Detection`` per patch, each sample's fields set and
    saved through ``save_context``. The reference for its documents.

    Args:
        package: the plugin package, as FiftyOne loaded it.
        dataset: samples in the order of ``labels`` and ``found``.
        labels: each sample's ``(H, W)`` mask.
        found: each sample's patches.
        class_names: the run's classes.
        fields: the run's output fields (``output_fields``).
        corrected_dir: where corrected masks go; None keeps them inline.
        batch_size: samples per bulk write.
    """
    import fiftyone as fo

    core = importlib.import_module(f"{package}.fixer_core")
    evidence = importlib.import_module(f"{package}.operators._evidence")
    documents = importlib.import_module(f"{package}.operators._documents")
    with dataset.save_context(batch_size=batch_size) as context:
        samples = dataset.iter_samples()
        for sample, mask, patches in zip(samples, labels, found, strict=True):
            sample[fields["patches"]] = fo.Detections(
                detections=[
                    fo.Detection(
                        label=class_names[p.suggested_label],
                        bounding_box=p.bounding_box,
                        mask=p.mask,
                        confidence=p.score,
                        error_probability=p.error_probability,
                        cause=p.cause,
                        repeat=p.repeat_of is not None,
                        run=documents.run_attribute(p),
                        run_length=p.run_length,
                        given_label=class_names[p.given_label],
                        suggested_label=class_names[p.suggested_label],
                        error_type=p.error_type,
                        issue=None,
                        area=p.area,
                        coverage=p.coverage,
                        **evidence.evidence_attributes(p, class_names),
                    )
                    for p in patches
                ]
            )
            sample[fields["score"]] = core.image_error_score(patches)
            sample[fields["error_map"]] = evidence.error_heatmap(
                sample.id, mask.shape, patches, corrected_dir
            )
            corrected = core.apply_patches(
                mask, patches, min_probability=0.0, skip_repeats=True
            )
            if corrected_dir is None:
                sample[fields["corrected"]] = fo.Segmentation(mask=corrected)
            else:
                path = os.path.join(corrected_dir, f"{sample.id}.png")
                cv2.imwrite(path, corrected)
                sample[fields["corrected"]] = fo.Segmentation(mask_path=path)
            context.save(sample)


def write_documents(
    package: str,
    dataset,
    labels: list[np.ndarray],
    found: list[list],
    class_names: list[str],
    fields: dict[str, str],
    corrected_dir: str | None,
    batch_size: int = 8,
) -> None:
    """Pass 2's writes as the pipeline does them (same arguments as
    :func:`write_with_label_objects`)."""
    pipeline = importlib.import_module(f"{package}.operators._pipeline")
    documents = importlib.import_module(f"{package}.operators._documents")
    ids = dataset.values("id")
    for start in range(0, len(ids), batch_size):
        batch = range(start, min(start + batch_size, len(ids)))
        values = [
            pipeline._sample_values(
                ids[i],
                labels[i],
                found[i],
                class_names,
                fields,
                corrected_dir,
                0.0,
                None,
            )
            for i in batch
        ]
        documents.write_sample_fields(dataset, [ids[i] for i in batch], values)


def stored_form(value, replace: dict[str, str] | None = None):
    """A value read from the database, for ``==``: types and key order
    kept, ObjectIds (label ids) hidden, and in strings each ``replace``
    key replaced by its value (folders that differ between runs)."""
    from bson import ObjectId

    if isinstance(value, dict):
        return [(k, stored_form(v, replace)) for k, v in value.items()]
    if isinstance(value, list):
        return [stored_form(v, replace) for v in value]
    if isinstance(value, ObjectId):
        return "<id>"
    if isinstance(value, str):
        for old, new in (replace or {}).items():
            value = value.replace(old, new)
    return (type(value).__name__, value)
