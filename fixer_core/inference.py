"""Per-pixel probabilities from a user's segmentation model."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ModelError(ValueError):
    """A model that cannot be loaded or whose output does not fit."""


@dataclass(frozen=True)
class Preprocess:
    """How images are fed to a model.

    Args:
        size: ``(H, W)`` the model takes; ``None`` feeds images at their
            own size (a batch must then share one size).
        scale: multiplies the uint8 pixel values first.
        mean: subtracted per channel, after scaling.
        std: divides per channel, after the mean.
        channel_order: ``"RGB"`` or ``"BGR"``, what the model expects
            (images arrive as RGB).
    """

    size: tuple[int, int] | None = None
    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: str = "RGB"

    def __post_init__(self) -> None:
        if self.size is not None and (
            len(self.size) != 2 or min(self.size) < 1
        ):
            raise ValueError(
                f"size must be two positive integers (H, W), got {self.size}"
            )
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std must have three values")
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(
                "channel_order must be 'RGB' or 'BGR', got "
                f"{self.channel_order!r}"
            )

    def to_dict(self) -> dict:
        """Returns the settings as JSON-serializable data."""
        out = asdict(self)
        out["size"] = list(self.size) if self.size else None
        return out

    @classmethod
    def from_dict(cls, values: dict) -> Preprocess:
        """Builds settings from :meth:`to_dict` output."""
        values = dict(values)
        if values.get("size"):
            values["size"] = tuple(values["size"])
        return cls(**values)


def resolve_entry_point(spec: str) -> Callable:
    """Returns the object named by ``"package.module:attribute"``."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ModelError(
            f"'{spec}' is not an entry point of the form "
            "package.module:attribute"
        )
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise ModelError(f"cannot import '{module_name}': {e}") from e
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"'{module_name}' has no attribute '{attribute}'")
        obj = getattr(obj, part)
    return obj


def load_model(
    spec: str,
    *,
    weights: str | None = None,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Loads a model in eval mode.

    Args:
        spec: a TorchScript file, or ``"package.module:factory"`` whose call
            with no arguments returns an ``nn.Module``.
        weights: an optional ``state_dict`` file, loaded strictly.
        device: where the model goes.

    Raises:
        ModelError: when the file is missing or not TorchScript, the entry
            point does not resolve or returns no module, or the weights do
            not match.
    """
    if _looks_like_path(spec):
        model = _load_torchscript(spec, device)
    else:
        factory = resolve_entry_point(spec)
        if not callable(factory):
            raise ModelError(f"'{spec}' is not callable")
        model = factory()
        if not isinstance(model, nn.Module):
            raise ModelError(
                f"'{spec}' returned {type(model).__name__}, not a "
                "torch.nn.Module"
            )
    if weights is not None:
        _load_weights(model, weights)
    return model.to(device).eval()


def _looks_like_path(spec: str) -> bool:
    return (
        os.path.exists(spec)
        or os.sep in spec
        or spec.endswith((".pt", ".pth", ".ts", ".jit"))
    )


def _load_torchscript(path: str, device) -> nn.Module:
    if not os.path.isfile(path):
        raise ModelError(f"model file does not exist: {path}")
    try:
        return torch.jit.load(path, map_location=device)
    except Exception as e:
        raise ModelError(
            f"{path} is not a TorchScript model ({e}); a plain state_dict "
            "needs an entry point (package.module:factory) plus weights"
        ) from e


def _load_weights(model: nn.Module, path: str) -> None:
    if not os.path.isfile(path):
        raise ModelError(f"weights file does not exist: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"cannot read weights {path}: {e}") from e
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        first = str(e).splitlines()[:3]
        raise ModelError(
            f"weights {path} do not fit the model: {' '.join(first)}"
        ) from e


class SegmentationPredictor:
    """Runs a model on batches of images; returns probabilities in
    mask-value order.

    Args:
        model: the model, in eval mode.
        num_classes: K, the dataset's classes.
        preprocess: how images are fed to the model.
        output_classes: the mask value each output channel predicts
            (default: channel k is class k). Channels mapped outside
            ``[0, K)`` are dropped; every class needs exactly one channel.
        outputs_logits: whether the model outputs logits (softmaxed here)
            or probabilities (renormalised over the kept channels).
        device: where to run.
        amp: use float16 autocast on CUDA.
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        *,
        preprocess: Preprocess | None = None,
        output_classes: Sequence[int] | None = None,
        outputs_logits: bool = True,
        device: str | torch.device = "cpu",
        amp: bool = True,
    ) -> None:
        self.model = model
        self.num_classes = num_classes
        self.preprocess = preprocess or Preprocess()
        self.outputs_logits = outputs_logits
        self.device = torch.device(device)
        self.amp = amp and self.device.type == "cuda"
        self._channels = _channel_order(output_classes, num_classes)
        self._expected = (
            len(output_classes) if output_classes is not None else num_classes
        )
        p = self.preprocess
        shape = (1, 3, 1, 1)
        self._mean = torch.tensor(p.mean, device=self.device).view(shape)
        self._std = torch.tensor(p.std, device=self.device).view(shape)

    def predict(
        self, images: Sequence[np.ndarray], size: tuple[int, int]
    ) -> Tensor:
        """Returns ``(N, K, H, W)`` float32 probabilities at ``size``.

        Args:
            images: N RGB uint8 ``(H_i, W_i, 3)`` arrays.
            size: ``(H, W)`` of the masks being scored.
        """
        x = self._inputs(images)
        with (
            torch.inference_mode(),
            torch.autocast("cuda", dtype=torch.float16, enabled=self.amp),
        ):
            out = self.model(x)
        out = _output_tensor(out)
        if out.ndim != 4 or out.shape[0] != x.shape[0]:
            raise ModelError(
                f"model output has shape {tuple(out.shape)}; expected "
                f"(N={x.shape[0]}, C, H, W)"
            )
        if out.shape[1] != self._expected:
            raise ModelError(
                f"model outputs {out.shape[1]} channels, expected "
                f"{self._expected}"
                + (
                    f" (the dataset has {self.num_classes} classes: pass "
                    "output_classes)"
                    if self._channels is None
                    else " (one per output_classes entry)"
                )
            )
        if self._channels is not None:
            out = out[:, self._channels]
        out = F.interpolate(
            out.float(), size=tuple(size), mode="bilinear", align_corners=False
        )
        if self.outputs_logits:
            return out.softmax(dim=1)
        out = out.clamp(min=0)
        return out / out.sum(dim=1, keepdim=True).clamp(min=1e-12)

    def _inputs(self, images: Sequence[np.ndarray]) -> Tensor:
        p = self.preprocess
        tensors = []
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(
                    f"images must be RGB (H, W, 3), got {image.shape}"
                )
            t = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
            t = t.permute(2, 0, 1)[None].float()
            if p.size is not None:
                t = F.interpolate(
                    t, size=p.size, mode="bilinear", align_corners=False
                )
            tensors.append(t)
        if len({t.shape for t in tensors}) > 1:
            raise ValueError(
                "images of different sizes need Preprocess.size to be set"
            )
        x = torch.cat(tensors) * p.scale
        if p.channel_order == "BGR":
            x = x.flip(1)
            return (x - self._mean.flip(1)) / self._std.flip(1)
        return (x - self._mean) / self._std


def _channel_order(
    output_classes: Sequence[int] | None, num_classes: int
) -> list[int] | None:
    """Output channel index of each class, or None for the identity."""
    if output_classes is None:
        return None
    channel_of: dict[int, int] = {}
    for channel, value in enumerate(output_classes):
        if 0 <= value < num_classes:
            if value in channel_of:
                raise ModelError(
                    f"output_classes maps channels {channel_of[value]} and "
                    f"{channel} to the same class {value}"
                )
            channel_of[value] = channel
    missing = [k for k in range(num_classes) if k not in channel_of]
    if missing:
        raise ModelError(
            f"output_classes gives no channel for class(es) {missing[:10]}"
        )
    return [channel_of[k] for k in range(num_classes)]


def _output_tensor(out) -> Tensor:
    if isinstance(out, dict):
        if "out" not in out:
            raise ModelError(
                f"model returned a dict without 'out' (keys {list(out)})"
            )
        return out["out"]
    if isinstance(out, tuple | list):
        return out[0]
    if not isinstance(out, Tensor):
        raise ModelError(f"model returned {type(out).__name__}, not a tensor")
    return out
