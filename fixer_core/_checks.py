"""Validation and preparation of the finder's array inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ArrayLike = np.ndarray | Tensor

# float16 probabilities of 150 classes sum to 1 only within about 1e-2.
SUM_TOLERANCE = 2e-2
NEGATIVE_TOLERANCE = 1e-4
# Probabilities may be at most this many times smaller than their labels
# (a segmentation model's largest output stride)
MAX_DOWNSCALE = 32


class PredProbsError(ValueError):
    """Invalid probabilities of one image of a batch.

    Attributes:
        image_index: the image's index in the batch.
    """

    def __init__(self, message: str, image_index: int) -> None:
        super().__init__(message)
        self.image_index = image_index


def check_batch_size(batch_size: object) -> None:
    """Raises a TypeError or ValueError unless ``batch_size`` is a positive
    integer."""
    if isinstance(batch_size, bool) or not isinstance(
        batch_size, int | np.integer
    ):
        raise TypeError(
            "batch_size must be a positive integer, got "
            f"{type(batch_size).__name__} {batch_size!r}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")


def check_same_length(labels: ArrayLike, pred_probs: ArrayLike) -> None:
    """Raises a ValueError unless ``labels`` ``(N, H, W)`` and
    ``pred_probs`` ``(N, K, H', W')`` are shaped so and hold as many
    images, naming the shape that is wrong.

    Example:
        >>> check_same_length(np.zeros((2, 4, 4)), np.zeros((3, 2, 4, 4)))
        Traceback (most recent call last):
        ...
        ValueError: labels hold 2 images but pred_probs hold 3
    """
    for name, x in (("labels", labels), ("pred_probs", pred_probs)):
        if not isinstance(x, np.ndarray | Tensor):
            raise TypeError(
                f"{name} must be a numpy array or torch tensor, got "
                f"{type(x).__name__}"
            )
    labels_shape = tuple(labels.shape)
    probs_shape = tuple(pred_probs.shape)
    if len(labels_shape) != 3:
        raise ValueError(
            f"labels must have a shape of (N, H, W), got {labels_shape}"
        )
    if len(probs_shape) != 4:
        raise ValueError(
            f"pred_probs must have a shape of (N, K, H, W), got {probs_shape}"
        )
    if labels_shape[0] != probs_shape[0]:
        raise ValueError(
            f"labels hold {labels_shape[0]} images but pred_probs hold "
            f"{probs_shape[0]}"
        )
    if probs_shape[1] < 2:
        raise ValueError(
            f"pred_probs of shape {probs_shape} have {probs_shape[1]} class "
            "channel; (N, K, H, W) with K >= 2 is expected (channels-last "
            "arrays must be transposed)"
        )
    problem = layout_problem(probs_shape[-2:], labels_shape[-2:])
    if problem:
        raise ValueError(f"pred_probs {problem}")


def check_signatures(signatures: ArrayLike | None, num_images: int) -> None:
    """Raises a ValueError unless ``signatures``, if given, hold one row
    per image.

    Example:
        >>> check_signatures(np.zeros((2, 768)), 3)
        Traceback (most recent call last):
        ...
        ValueError: got 2 signatures for 3 images
    """
    if signatures is not None and len(signatures) != num_images:
        raise ValueError(
            f"got {len(signatures)} signatures for {num_images} images"
        )


def check_find_inputs(
    labels: ArrayLike, pred_probs: ArrayLike, batch_size: object
) -> None:
    """Checks the arguments of ``find_label_errors`` before any batching:
    the batch size, then the shapes (see :func:`check_same_length`)."""
    check_batch_size(batch_size)
    check_same_length(labels, pred_probs)


def layout_problem(
    probs_size: Sequence[int], labels_size: Sequence[int]
) -> str | None:
    """Why probabilities of spatial size ``(h, w)`` do not fit labels of
    ``(H, W)``, or None. They fit when equal, or when they are a model's
    lower (at most 32x) or higher resolution with the same aspect ratio
    (within one pixel of rounding); anything else (transposed arrays,
    another aspect ratio, a single pixel) is a layout error, never
    resized.

    Example:
        >>> layout_problem((24, 32), (48, 64)) is None
        True
        >>> layout_problem((64, 48), (48, 64)) is None  # transposed
        False
    """
    h, w = (int(v) for v in probs_size)
    big_h, big_w = (int(v) for v in labels_size)
    if (h, w) == (big_h, big_w):
        return None
    same_aspect = abs(h * big_w - w * big_h) <= max(big_h, big_w, h, w)
    not_tiny = h * MAX_DOWNSCALE >= big_h and w * MAX_DOWNSCALE >= big_w
    if same_aspect and not_tiny:
        return None
    return (
        f"are {w}x{h} (width x height) but the labels are {big_w}x{big_h}: "
        "only a lower resolution with the same aspect ratio (at most "
        f"{MAX_DOWNSCALE}x smaller) is resized; check the layout "
        "(K, H, W)"
    )


def as_tensor(x: ArrayLike, *, device: torch.device | None = None) -> Tensor:
    """Returns ``x`` as a tensor on ``device`` (default: where it lives)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, Tensor):
        raise TypeError(
            f"expected a numpy array or torch tensor, got {type(x).__name__}"
        )
    return x if device is None else x.to(device)


def prepare_labels(
    labels: ArrayLike,
    num_classes: int,
    ignore_index: Sequence[int],
    *,
    device: torch.device | None = None,
) -> Tensor:
    """Validates ``(N, H, W)`` labels; returns int64 with -1 where ignored.

    Mask values without a probability channel (``>= num_classes``, such as
    255) and values in ``ignore_index`` are never scored.
    """
    labels = as_tensor(labels, device=device)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(
            f"labels must be an integer array, got dtype {labels.dtype}"
        )
    if labels.ndim != 3:
        raise ValueError(
            f"labels must have a shape of (N, H, W), got {tuple(labels.shape)}"
        )
    values = _lookup_size(labels)
    if values:
        # One lookup per pixel instead of a pass per rule.
        lookup = np.arange(values, dtype=np.int64)
        lookup[num_classes:] = -1
        for value in ignore_index:
            if 0 <= value < values:
                lookup[value] = -1
        return torch.from_numpy(np.take(lookup, labels.numpy()))
    labels = labels.long()
    ignored = (labels < 0) | (labels >= num_classes)
    for value in ignore_index:
        ignored |= labels == value
    return labels.masked_fill(ignored, -1)


def _lookup_size(labels: Tensor) -> int:
    """The size of a lookup table indexed by CPU ``labels`` (all values
    non-negative and below it), or 0 where a table does not fit."""
    if labels.device.type != "cpu" or not labels.numel():
        return 0
    if labels.dtype == torch.uint8:
        return 256
    if labels.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64):
        return 0
    lowest, highest = int(labels.amin()), int(labels.amax())
    return highest + 1 if lowest >= 0 and highest < 2**16 else 0


def prepare_pred_probs(
    pred_probs: ArrayLike,
    labels: Tensor,
    num_classes: int,
    *,
    logits: bool = False,
) -> Tensor:
    """Validates ``(N, K, H, W)`` probabilities against prepared labels.

    Returns float32 probabilities on the labels' device, resized
    (bilinearly) to the labels' ``(H, W)`` when they differ, and softmaxed
    first when ``logits`` is true.

    Raises:
        ValueError: on a wrong shape or number of classes.
        PredProbsError: on NaN or infinite values, negative probabilities
            or probabilities that do not sum to one, naming the image.
    """
    pred_probs = as_tensor(pred_probs, device=labels.device)
    if not pred_probs.dtype.is_floating_point:
        raise TypeError(
            f"pred_probs must be a float array, got dtype {pred_probs.dtype}"
        )
    if pred_probs.ndim != 4:
        raise ValueError(
            "pred_probs must have a shape of (N, K, H, W), got "
            f"{tuple(pred_probs.shape)}"
        )
    n, k = pred_probs.shape[:2]
    if n != labels.shape[0]:
        raise ValueError(
            f"pred_probs holds {n} images but labels hold {labels.shape[0]}"
        )
    if k != num_classes:
        raise ValueError(
            f"pred_probs has {k} class channels, expected {num_classes}"
        )
    problem = layout_problem(pred_probs.shape[-2:], labels.shape[-2:])
    if problem:
        raise ValueError(f"pred_probs {problem}")
    pred_probs = pred_probs.float()
    if logits:
        _check_finite(pred_probs.sum(dim=1))
    if pred_probs.shape[-2:] != labels.shape[-2:]:
        pred_probs = F.interpolate(
            pred_probs,
            size=tuple(labels.shape[-2:]),
            mode="bilinear",
            align_corners=False,
        )
    if logits:
        return pred_probs.softmax(dim=1)
    _check_probabilities(pred_probs)
    return pred_probs


def _check_finite(channel_sums: Tensor) -> tuple[Tensor, Tensor] | None:
    """NaN and infinities propagate into the ``(N, H, W)`` sums over the
    class channels, so checking the sums checks every value in 1/K of the
    time. Returns each image's smallest and largest sum (``None`` without
    pixels): NaN propagates into them too, so they are all that is
    checked."""
    if not channel_sums[0].numel():
        return None
    sums = channel_sums.flatten(1)
    # amin and amax are vectorized on the CPU, aminmax is not
    lowest, highest = sums.amin(dim=1), sums.amax(dim=1)
    finite = torch.isfinite(lowest) & torch.isfinite(highest)
    if not finite.all():
        i = int((~finite).nonzero()[0])
        raise PredProbsError(
            f"pred_probs of image {i} hold NaN or infinite values", i
        )
    return lowest, highest


def _check_probabilities(pred_probs: Tensor) -> None:
    extremes = _check_finite(pred_probs.sum(dim=1))
    if extremes is None:
        return
    minimum = pred_probs.flatten(1).amin(dim=1)
    if (minimum < -NEGATIVE_TOLERANCE).any():
        i = int((minimum < -NEGATIVE_TOLERANCE).nonzero()[0])
        raise PredProbsError(
            f"pred_probs of image {i} hold negative values (min "
            f"{float(minimum[i]):.3g}); pass logits=True if they are logits",
            i,
        )
    # |s - 1| is largest at the smallest or the largest sum s (exactly:
    # s - 1 rounds monotonically)
    lowest, highest = extremes
    error = torch.maximum((lowest - 1).abs(), (highest - 1).abs())
    if (error > SUM_TOLERANCE).any():
        i = int((error > SUM_TOLERANCE).nonzero()[0])
        raise PredProbsError(
            f"pred_probs of image {i} do not sum to 1 over classes (off by "
            f"up to {float(error[i]):.3g}); pass logits=True if they are "
            "logits",
            i,
        )
