"""Reading samples' masks and probabilities, in batches."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
import PIL.Image
import torch

from ..fixer_core import PredProbsError


class LabelErrorInputError(ValueError):
    """Raised when a dataset, field or file cannot be used by the finder."""


def describe(sample) -> str:
    """Names a sample in messages: its file name, then its id."""
    return f"'{os.path.basename(sample.filepath)}' [id {sample.id}]"


@dataclass
class Batch:
    """Samples scored together: their masks share a shape."""

    samples: list
    indices: list[int]
    masks: list[np.ndarray]
    labels: np.ndarray
    pred_probs: np.ndarray | torch.Tensor


def batches(
    samples, gt_field: str, probabilities, batch_size: int, start: int = 0
) -> Iterator[Batch]:
    """Yields batches of samples whose masks share a shape, with their
    probabilities from ``probabilities(samples, masks)``; the samples'
    indices count from ``start``."""
    pending: list = []
    for index, sample in enumerate(samples.iter_samples(), start):
        mask = load_mask(sample, gt_field)
        if pending and (
            len(pending) == batch_size or pending[-1][2].shape != mask.shape
        ):
            yield _make_batch(pending, probabilities)
            pending = []
        pending.append((sample, index, mask))
    if pending:
        yield _make_batch(pending, probabilities)


def _make_batch(pending, probabilities) -> Batch:
    samples, indices, masks = map(list, zip(*pending, strict=True))
    return Batch(
        samples=samples,
        indices=indices,
        masks=masks,
        labels=stack_labels(masks),
        pred_probs=probabilities(samples, masks),
    )


def stack_labels(masks: list[np.ndarray]) -> np.ndarray:
    """A batch's masks as one ``(N, H, W)`` int64 array."""
    return np.stack(masks).astype(np.int64)


@contextmanager
def naming_sample(batch: Batch, where: str):
    """Turns the core's per-image errors into errors naming the sample."""
    try:
        yield
    except PredProbsError as e:
        sample = batch.samples[e.image_index]
        message = str(e).replace(f"pred_probs of image {e.image_index}", "")
        raise LabelErrorInputError(
            f"Probabilities of sample {describe(sample)} ({where}){message}"
        ) from e


def load_image(sample) -> np.ndarray:
    """Reads a sample's image as RGB uint8 ``(H, W, 3)``."""
    image = cv2.imread(sample.filepath, cv2.IMREAD_COLOR)
    if image is None:
        raise LabelErrorInputError(
            f"Image of sample {describe(sample)} could not be read: "
            f"{sample.filepath}"
        )
    return image[:, :, ::-1]


def load_mask(sample, gt_field: str) -> np.ndarray:
    seg = sample[gt_field]
    if seg is None:
        raise LabelErrorInputError(
            f"Sample {describe(sample)} has no '{gt_field}' segmentation"
        )
    try:
        mask = seg.get_mask()
    except Exception as e:
        raise LabelErrorInputError(
            f"Mask of sample {describe(sample)} (field '{gt_field}', "
            f"{seg.mask_path}) could not be read: {e}"
        ) from e
    if mask is None:
        raise LabelErrorInputError(
            f"Sample {describe(sample)}: field '{gt_field}' has no mask"
            + (f" (file {seg.mask_path} unreadable)" if seg.mask_path else "")
        )
    if mask.ndim != 2:
        raise LabelErrorInputError(
            f"Mask of sample {describe(sample)} (field '{gt_field}') has "
            f"shape {mask.shape}; FIXER needs (H, W) integer class masks"
        )
    if not np.issubdtype(mask.dtype, np.integer):
        raise LabelErrorInputError(
            f"Mask of sample {describe(sample)} (field '{gt_field}') holds "
            f"{mask.dtype} values; FIXER needs integer class masks"
        )
    size = image_size(sample)
    if size is not None and size != mask.shape:
        raise LabelErrorInputError(
            f"Mask of sample {describe(sample)} (field '{gt_field}') is "
            f"{mask.shape[1]}x{mask.shape[0]} but its image is "
            f"{size[1]}x{size[0]}"
        )
    return mask


def image_size(sample) -> tuple[int, int] | None:
    """The ``(height, width)`` of a sample's image: from its metadata, or
    else from the image file's header (nothing is written); None when
    neither is available."""
    meta = sample.metadata
    if meta is not None and None not in (meta.height, meta.width):
        return meta.height, meta.width
    try:
        with PIL.Image.open(sample.filepath) as image:
            width, height = image.size
    except (OSError, ValueError):
        return None
    return height, width


def load_probs(
    sample, probs_field: str, out: np.ndarray | None = None
) -> np.ndarray:
    """Reads a sample's probability file; an ``.npy`` file of ``out``'s
    shape and dtype is read straight into ``out`` (a batch's slot: no
    copy), which is returned."""
    path = sample[probs_field]
    where = f"sample {describe(sample)} (field '{probs_field}')"
    if not path:
        raise LabelErrorInputError(f"No probability file for {where}")
    if not os.path.isfile(path):
        raise LabelErrorInputError(
            f"Probability file of {where} does not exist: {path}"
        )
    try:
        if out is not None and _read_npy_into(path, out):
            return out
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                key = "probs" if "probs" in loaded.files else loaded.files[0]
                loaded = loaded[key]
    except Exception as e:
        raise LabelErrorInputError(
            f"Probability file of {where} could not be read: {path} ({e})"
        ) from e
    if not np.issubdtype(loaded.dtype, np.floating):
        raise LabelErrorInputError(
            f"Probability file of {where} holds {loaded.dtype} values; "
            "expected float16 or float32 probabilities (or logits)"
        )
    if loaded.ndim != 3:
        raise LabelErrorInputError(
            f"Probability file of {where} holds an array of shape "
            f"{loaded.shape}; expected (K, H, W)"
        )
    return loaded


def npy_layout(path: str | None) -> tuple[tuple[int, ...], np.dtype] | None:
    """The shape and dtype of the C-ordered array in an ``.npy`` file,
    from its header; None for any other file, or none."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return _npy_header(f)
    except OSError:
        return None


def _npy_header(f) -> tuple[tuple[int, ...], np.dtype] | None:
    """Reads an open ``.npy`` file's header (format 1.0 or 2.0, C order):
    the array's shape and dtype, the file left at its data; None for any
    other file."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            return None
    except ValueError:
        return None
    return None if fortran or dtype.hasobject else (shape, dtype)


def _read_npy_into(path: str, out: np.ndarray) -> bool:
    """Reads an ``.npy`` file holding an array of ``out``'s (C-contiguous)
    shape and dtype into ``out``; False for any other file (``out`` may
    then hold part of it)."""
    with open(path, "rb") as f:
        if _npy_header(f) != (out.shape, out.dtype):
            return False
        return f.readinto(memoryview(out).cast("B")) == out.nbytes
