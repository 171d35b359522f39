"""Pass 1: per-class statistics of the labels and the model's predictions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_CONFIDENCE_BINS = 100


@dataclass(frozen=True)
class ClassStatistics:
    """Dataset-wide statistics that calibrate the finder's rules.

    K - number of classes.

    Attributes:
        pixel_counts: ``(K,)`` scored pixels labelled with each class.
        thresholds: ``(K,)`` confident-learning thresholds: the mean
            predicted probability of class ``k`` over pixels labelled ``k``
            (0.5 for classes that never occur).
        confident_joint: ``(K, K)`` interior pixels labelled ``i`` whose
            argmax class ``j`` is confidently predicted, i.e. ``p_j >=
            min(t_j, min_confidence)`` (resolved to 1/100). Pixels near a
            label boundary are left out: boundary confusion says nothing
            about labelling policy.
        interior_counts: ``(K,)`` interior pixels labelled with each class.
        num_images: images seen.
    """

    pixel_counts: np.ndarray
    thresholds: np.ndarray
    confident_joint: np.ndarray
    interior_counts: np.ndarray
    num_images: int

    @property
    def frequencies(self) -> np.ndarray:
        """``(K,)`` share of scored pixels labelled with each class."""
        return self.pixel_counts / max(int(self.pixel_counts.sum()), 1)

    @property
    def confusion_rates(self) -> np.ndarray:
        """``(K, K)`` share of interior pixels of ``i`` confidently ``j``."""
        return (
            self.confident_joint / np.maximum(self.interior_counts, 1)[:, None]
        )

    def to_dict(self) -> dict:
        """Returns the statistics as JSON-serializable lists."""
        return {
            "pixel_counts": self.pixel_counts.tolist(),
            "thresholds": self.thresholds.round(6).tolist(),
            "confident_joint": self.confident_joint.tolist(),
            "interior_counts": self.interior_counts.tolist(),
            "num_images": self.num_images,
        }


class ClassStatisticsAccumulator:
    """Streams batches and accumulates :class:`ClassStatistics`.

    Memory is bounded by the batch plus ``K * K * 100`` counters; nothing of
    a batch is kept after :meth:`update` returns.

    Args:
        num_classes: K.
        boundary_width: pixels closer than this to another label are not
            interior (they do not enter the confident joint).
        min_confidence: the cap on the thresholds, see ``ClassStatistics``.
        device: where the counters live.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        boundary_width: int,
        min_confidence: float,
        device: torch.device | str = "cpu",
    ) -> None:
        k = num_classes
        self.num_classes = k
        self.boundary_width = boundary_width
        self.min_confidence = min_confidence
        device = torch.device(device)
        self._counts = torch.zeros(k, dtype=torch.float64, device=device)
        self._prob_sums = torch.zeros(k, dtype=torch.float64, device=device)
        self._interior = torch.zeros(k, dtype=torch.float64, device=device)
        self._argmax_hist = torch.zeros(
            k * k * _CONFIDENCE_BINS, dtype=torch.float64, device=device
        )
        self._num_images = 0

    def update(self, labels: Tensor, pred_probs: Tensor) -> None:
        """Adds a batch of prepared ``(N, H, W)`` labels (-1 = ignored) and
        ``(N, K, H, W)`` probabilities."""
        k = self.num_classes
        valid = labels >= 0
        given = labels[valid]
        self._counts += torch.bincount(given, minlength=k)
        p_given = pred_probs.gather(1, labels.clamp(min=0)[:, None])[:, 0]
        self._prob_sums += torch.bincount(
            given, weights=p_given[valid].double(), minlength=k
        )

        interior = valid & interior_mask(labels, self.boundary_width)
        given = labels[interior]
        self._interior += torch.bincount(given, minlength=k)
        p_max, argmax = pred_probs.max(dim=1)
        bins = (p_max[interior] * _CONFIDENCE_BINS).long()
        bins = bins.clamp(max=_CONFIDENCE_BINS - 1)
        index = (given * k + argmax[interior]) * _CONFIDENCE_BINS + bins
        self._argmax_hist += torch.bincount(
            index, minlength=self._argmax_hist.numel()
        )
        self._num_images += labels.shape[0]

    def compute(self) -> ClassStatistics:
        """Returns the statistics of everything seen so far."""
        k = self.num_classes
        counts = self._counts.cpu().numpy()
        sums = self._prob_sums.cpu().numpy()
        thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), 0.5)
        cutoff = np.minimum(thresholds, self.min_confidence)
        first_bin = np.floor(cutoff * _CONFIDENCE_BINS).astype(int)
        hist = self._argmax_hist.cpu().numpy().reshape(k, k, -1)
        cumulative = hist[:, :, ::-1].cumsum(axis=2)[:, :, ::-1]
        joint = cumulative[:, np.arange(k), first_bin]
        return ClassStatistics(
            pixel_counts=counts.astype(np.int64),
            thresholds=thresholds.astype(np.float32),
            confident_joint=joint.astype(np.int64),
            interior_counts=self._interior.cpu().numpy().astype(np.int64),
            num_images=self._num_images,
        )


def interior_mask(labels: Tensor, width: int) -> Tensor:
    """``(N, H, W)`` true where all labels within ``width`` pixels agree."""
    if width == 0:
        return torch.ones_like(labels, dtype=torch.bool)
    x = labels[:, None].float()
    size = 2 * width + 1
    high = F.max_pool2d(x, size, stride=1, padding=width)
    low = -F.max_pool2d(-x, size, stride=1, padding=width)
    return (high == low)[:, 0]
