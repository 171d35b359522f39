"""The model's argmax at chosen pixels, without a pass over every class
channel of every pixel when few pixels are asked for."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from ._checks import NEGATIVE_TOLERANCE, SUM_TOLERANCE
from ._pixels import pixel_channels

# Above this share of the pixels, one dense max over the channels is faster
# than gathering the asked-for pixels' channels first.
_DENSE_SHARE = 0.25


def channel_argmax(pred_probs: Tensor) -> np.ndarray:
    """``(N, H, W)`` argmax over the channels of ``(N, K, H, W)`` finite
    probabilities, as NumPy (the first of equal maxima, as torch's)."""
    if pred_probs.device.type == "cpu":
        # a subsampled grid is read faster once packed
        return _first_max_channel(np.ascontiguousarray(pred_probs.numpy()))
    return pred_probs.argmax(dim=1).cpu().numpy()


def _first_max_channel(probs: np.ndarray) -> np.ndarray:
    """NumPy's ``probs.argmax(axis=1)`` of finite ``(N, K, H, W)`` values,
    several times faster: argmax over a leading axis copies the array
    with that axis last and scans each pixel's K values, whereas the
    index of the first maximum is the number of leading channels below
    the pixel's maximum, counted with whole-channel operations."""
    n, k = probs.shape[:2]
    shape = probs.shape[2:]
    out = np.empty((n, *shape), dtype=np.intp)
    before = np.empty(shape, dtype=bool)  # no maximum among channels so far
    below = np.empty(shape, dtype=bool)
    count = np.empty(shape, dtype=np.min_scalar_type(k))
    for image, index in zip(probs, out, strict=True):
        top = image.max(axis=0)
        before.fill(True)
        count.fill(0)
        for channel in image[:-1]:
            np.not_equal(channel, top, out=below)
            before &= below
            count += before.view(np.uint8)
        index[...] = count
    return out


def certain_argmax(
    num_classes: int, weights: Tensor | None = None
) -> float | Tensor:
    """A probability above this is the argmax of its pixel: the others sum
    to less, within the tolerances ``prepare_pred_probs`` accepts.

    With ``(K,)`` class ``weights`` (the argmax of ``weights *
    probability``), returns the ``(K,)`` level for each class ``g``: above
    it, ``w_g * p_g`` exceeds ``max(w) * (total - p_g)``, which bounds every
    other class's weighted probability.
    """
    total = 1.0 + SUM_TOLERANCE + NEGATIVE_TOLERANCE * num_classes
    if weights is None:
        return total / 2
    top = weights.max()
    return top * total / (weights + top)


def max_at(
    pred_probs: Tensor,
    n: Tensor,
    y: Tensor,
    x: Tensor,
    weights: Tensor | None = None,
    cutoff: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`weighted_max` of ``(N, K, H, W)`` probabilities at pixels
    ``(n, y, x)``: the class and its probability."""
    height, width = pred_probs.shape[2:]
    flat, order = ((n * height + y) * width + x).sort()
    p_max, argmax = max_at_pixels(pred_probs, flat, weights, cutoff)
    unsorted = torch.empty_like(order)
    unsorted[order] = torch.arange(len(order), device=order.device)
    return p_max[unsorted], argmax[unsorted]


def max_at_pixels(
    pred_probs: Tensor,
    flat: Tensor,
    weights: Tensor | None = None,
    cutoff: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`max_at` of the pixels at ``(P,)`` indices ``flat`` into the
    ``(N, H, W)`` pixels, sorted (by image at least)."""
    n, k, height, width = pred_probs.shape
    if flat.numel() > _DENSE_SHARE * n * height * width:
        p_max, argmax = _dense_max(pred_probs, weights, cutoff)
        return p_max.take(flat), argmax.take(flat)
    # (K, P): image by image, each channel's pixels are read in one pass,
    # several times faster than gathering (P, K) rows
    probs = pixel_channels(pred_probs, flat)
    if probs.device.type != "cpu":
        return weighted_max(probs.T, weights, cutoff)
    argmax = np.zeros((1, 1, probs.shape[1]), dtype=np.int32)
    _channel_scan(
        probs.numpy()[None, :, None],
        None if weights is None else weights.numpy(),
        None if cutoff is None else cutoff.numpy(),
        argmax,
    )
    argmax = torch.from_numpy(argmax.ravel()).long()
    return probs.gather(0, argmax[None])[0], argmax


def _dense_max(
    pred_probs: Tensor, weights: Tensor | None, cutoff: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """:func:`weighted_max` at every pixel of ``(N, K, H, W)``
    probabilities."""
    if pred_probs.device.type != "cpu":
        return _channel_max(pred_probs, weights, cutoff)
    argmax = _running_argmax(pred_probs, weights, cutoff)
    return pred_probs.gather(1, argmax[:, None])[:, 0], argmax


def _channel_max(
    pred_probs: Tensor, weights: Tensor | None, cutoff: Tensor | None
) -> tuple[Tensor, Tensor]:
    """:func:`_dense_max` by torch's max over the channels, image by image:
    one image's weighted scores are the only temporary (a batch-sized one
    costs more to allocate than to compute)."""
    argmax = torch.empty(
        pred_probs[:, 0].shape, dtype=torch.long, device=pred_probs.device
    )
    for i, probs in enumerate(pred_probs):
        scores = probs if weights is None else probs * weights[:, None, None]
        # max() is several times faster than argmax()
        argmax[i] = scores.max(dim=0).indices
    p_max = pred_probs.gather(1, argmax[:, None])[:, 0]
    if cutoff is not None:
        # A winner at or above its cutoff wins among the confident classes
        # too; the few others are searched again.
        n, y, x = (p_max < cutoff[argmax]).nonzero(as_tuple=True)
        p_max[n, y, x], argmax[n, y, x] = weighted_max(
            pred_probs[n, :, y, x], weights, cutoff
        )
    return p_max, argmax


def _running_argmax(
    pred_probs: Tensor, weights: Tensor | None, cutoff: Tensor | None
) -> Tensor:
    """``(N, H, W)`` argmax of :func:`weighted_max` on the CPU, by one pass
    over the class channels that keeps the running winner of each pixel.

    torch's max over the channel axis does not vectorize on the CPU; NumPy's
    element-wise kernels over one channel at a time do, and arithmetic on
    masks (rather than masked writes) keeps them branch-free. Exact, and
    ties go to the first class, as with ``max()``. The images are split
    over torch's CPU threads (NumPy releases the GIL in its kernels).
    """
    probs = pred_probs.detach().numpy()
    w = None if weights is None else weights.numpy()
    lowest = None if cutoff is None else cutoff.numpy()
    argmax = np.zeros(probs[:, 0].shape, dtype=np.int32)
    workers = max(min(torch.get_num_threads(), len(probs)), 1)
    bounds = np.linspace(0, len(probs), workers + 1).astype(int)

    def run(start: int, stop: int) -> None:
        if w is None and lowest is None:  # the plain argmax: counted faster
            argmax[start:stop] = _first_max_channel(probs[start:stop])
        else:
            _channel_scan(probs[start:stop], w, lowest, argmax[start:stop])

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, bounds[:-1], bounds[1:]))
    return torch.from_numpy(argmax).long()


def _channel_scan(
    probs: np.ndarray,
    weights: np.ndarray | None,
    cutoff: np.ndarray | None,
    argmax: np.ndarray,
) -> None:
    """Writes the argmax of ``(N, K, H, W)`` ``probs`` into ``(N, H, W)``
    ``argmax``."""
    shape = probs.shape[2:]
    best = np.empty(shape, dtype=probs.dtype)
    score = np.empty_like(best)
    better = np.empty(shape, dtype=bool)
    below = np.empty(shape, dtype=bool)
    step = np.empty(shape, dtype=argmax.dtype)
    for image, index in zip(probs, argmax, strict=True):
        best.fill(-np.inf)
        for k, channel in enumerate(image):
            if weights is None:
                np.copyto(score, channel)
            else:
                np.multiply(channel, weights[k], out=score)
            if cutoff is not None:
                # a class below its cutoff scores -1: it does not compete
                np.less(channel, cutoff[k], out=below)
                np.logical_not(below, out=better)
                score *= better
                score -= below
            np.greater(score, best, out=better)
            np.maximum(best, score, out=best)
            # index = k where better, branch-free
            np.subtract(k, index, out=step)
            step *= better
            index += step


def weighted_max(
    probs: Tensor, weights: Tensor | None = None, cutoff: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Max over the last axis of ``(..., K)`` probabilities, the class
    maximizing ``weights * probability`` when ``weights`` are given.

    With a ``(K,)`` ``cutoff``, only classes whose probability reaches
    their cutoff compete; where none does, the result is some class below
    its cutoff."""
    if weights is None and cutoff is None:
        return probs.max(dim=-1)
    scores = probs if weights is None else probs * weights
    if cutoff is not None:
        scores = scores.masked_fill(probs < cutoff, -1)
    argmax = scores.max(dim=-1, keepdim=True).indices
    return probs.gather(-1, argmax)[..., 0], argmax[..., 0]
