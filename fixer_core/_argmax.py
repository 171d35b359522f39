"""The model's argmax at chosen pixels, without a pass over every class
channel of every pixel when few pixels are asked for."""

from __future__ import annotations

from torch import Tensor

from ._checks import NEGATIVE_TOLERANCE, SUM_TOLERANCE

# Above this share of the pixels, one dense max over the channels is faster
# than gathering the asked-for pixels' channels first.
_DENSE_SHARE = 0.25


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
) -> tuple[Tensor, Tensor]:
    """Argmax class at pixels ``(n, y, x)`` of ``(N, K, H, W)``
    probabilities, and its probability. With ``(K,)`` ``weights`` the
    class maximizes ``weights * probability``."""
    pixels = pred_probs.shape[0] * pred_probs.shape[2] * pred_probs.shape[3]
    if n.numel() > _DENSE_SHARE * pixels:
        scores = pred_probs
        if weights is not None:
            scores = pred_probs * weights[:, None, None]
        # max() is several times faster than argmax() on the CPU
        argmax = scores.max(dim=1, keepdim=True).indices
        p_max = pred_probs.gather(1, argmax)[:, 0]
        return p_max[n, y, x], argmax[:, 0][n, y, x]
    return weighted_max(pred_probs[n, :, y, x], weights)


def weighted_max(
    probs: Tensor, weights: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Max over the last axis of ``(..., K)`` probabilities, the class
    maximizing ``weights * probability`` when ``weights`` are given."""
    if weights is None:
        return probs.max(dim=-1)
    argmax = (probs * weights).max(dim=-1, keepdim=True).indices
    return probs.gather(-1, argmax)[..., 0], argmax[..., 0]
