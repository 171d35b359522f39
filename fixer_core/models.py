"""Per-pixel class probabilities from a user's segmentation model."""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

# File endings that make a model spec a path even when it does not exist.
_MODEL_SUFFIXES = (".pt", ".pth", ".ts", ".jit")
# Keys of a weights file that are listed in a mismatch message.
_KEYS_SHOWN = 5


class ModelError(ValueError):
    """A model that cannot be loaded or whose output does not fit the
    dataset."""


@dataclass(frozen=True)
class Preprocess:
    """How RGB uint8 images are turned into a model's input.

    Each image is resized to ``size``, multiplied by ``scale``, normalised
    with ``mean`` and ``std`` and, for a ``"BGR"`` model, has its channels
    reversed. ``mean`` and ``std`` are always given in RGB order: they are
    applied before the flip, as in torchvision's presets.

    Args:
        size: ``(H, W)`` of the model's input; ``None`` feeds images at
            their own size, which all images of a batch must then share.
        scale: factor applied to the uint8 values first (``1 / 255`` maps
            them to ``[0, 1]``; ``1.0`` keeps ``[0, 255]``).
        mean: per-channel value subtracted after scaling, RGB order.
        std: per-channel divisor applied after the mean, RGB order.
        channel_order: ``"RGB"`` or ``"BGR"``, what the model expects.

    Example:
        >>> settings = Preprocess(size=(512, 512), channel_order="BGR")
        >>> Preprocess.from_dict(settings.to_dict()) == settings
        True
    """

    size: tuple[int, int] | None = None
    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: str = "RGB"

    def __post_init__(self) -> None:
        if self.size is not None:
            size = _int_pair(self.size)
            if size is None:
                raise ValueError(
                    "size must be None or (H, W) with positive integers, "
                    f"got {self.size!r}"
                )
            object.__setattr__(self, "size", size)
        if not _is_real(self.scale) or not self.scale > 0:
            raise ValueError(
                f"scale must be a positive number, got {self.scale!r}"
            )
        mean = _real_triple(self.mean)
        if mean is None:
            raise ValueError(
                f"mean must be three finite numbers, got {self.mean!r}"
            )
        std = _real_triple(self.std)
        if std is None or min(std) <= 0:
            raise ValueError(
                f"std must be three positive numbers, got {self.std!r}"
            )
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(
                "channel_order must be 'RGB' or 'BGR', got "
                f"{self.channel_order!r}"
            )
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def to_dict(self) -> dict:
        """Returns the settings as a JSON-serializable dict."""
        values = asdict(self)
        values["size"] = None if self.size is None else list(self.size)
        values["mean"] = list(self.mean)
        values["std"] = list(self.std)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Preprocess:
        """Builds settings from a dict such as :meth:`to_dict` returns,
        ignoring keys that are not fields."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def _is_real(value: object) -> bool:
    return (
        isinstance(value, Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _int_pair(value: object) -> tuple[int, int] | None:
    """``value`` as ``(H, W)`` positive ints, or None if it is not one."""
    if not isinstance(value, Sequence) or len(value) != 2:
        return None
    if not all(
        isinstance(v, Integral) and not isinstance(v, bool) and v >= 1
        for v in value
    ):
        return None
    return int(value[0]), int(value[1])


def _real_triple(value: object) -> tuple[float, float, float] | None:
    if not isinstance(value, Sequence) or len(value) != 3:
        return None
    if not all(_is_real(v) for v in value):
        return None
    return float(value[0]), float(value[1]), float(value[2])


# -- loading ----------------------------------------------------------------


def resolve_entry_point(spec: str) -> Any:
    """Returns the object named by an entry point.

    Args:
        spec: ``"package.module:attribute"``; the attribute may be dotted
            (``"package.module:Class.factory"``).

    Raises:
        ModelError: when ``spec`` is not of that form, the module cannot be
            imported (the import error's text is included) or lacks the
            attribute.

    Example:
        >>> resolve_entry_point("math:pi")
        3.141592653589793
    """
    module_name, sep, attribute = spec.strip().partition(":")
    if not (
        sep and _is_dotted_name(module_name) and _is_dotted_name(attribute)
    ):
        raise ModelError(
            f"{spec!r} is not an entry point of the form "
            "'package.module:attribute'"
        )
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise ModelError(
            f"cannot import module {module_name!r} of entry point "
            f"{spec!r}: {e}"
        ) from e
    except Exception as e:
        raise ModelError(
            f"importing module {module_name!r} of entry point {spec!r} "
            f"failed: {type(e).__name__}: {e}"
        ) from e
    owner = module_name
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ModelError(
                f"{owner!r} has no attribute {part!r} (entry point {spec!r})"
            )
        obj = getattr(obj, part)
        owner = f"{owner}.{part}"
    return obj


def _is_dotted_name(name: str) -> bool:
    return bool(name) and all(p.isidentifier() for p in name.split("."))


def load_model(
    spec: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Loads a segmentation model, in eval mode, on ``device``.

    Args:
        spec: a TorchScript file (``torch.jit.save``), or an entry point
            ``"package.module:factory"`` whose call with no arguments
            returns an ``nn.Module``. A spec that exists as a file, contains
            a path separator or ends with ``.pt``, ``.pth``, ``.ts`` or
            ``.jit`` is a path.
        weights: optional ``state_dict`` file (``torch.save(
            model.state_dict(), path)``), loaded strictly into the model.
        device: where the model is put.

    Returns:
        The model, in eval mode, on ``device``.

    Raises:
        ModelError: when the file does not exist or is not TorchScript, the
            entry point does not resolve, is not callable, fails or returns
            something other than an ``nn.Module``, or the weights cannot be
            read or do not fit the model.
    """
    spec = os.fspath(spec)
    path = os.path.expanduser(spec)
    if _looks_like_path(spec, path):
        model = _load_torchscript(path, device)
    else:
        model = _call_factory(spec)
    if weights is not None:
        _load_weights(model, os.path.expanduser(os.fspath(weights)))
    return model.to(device).eval()


def _looks_like_path(spec: str, path: str) -> bool:
    return (
        os.path.exists(path)
        or "/" in spec
        or os.sep in spec
        or spec.lower().endswith(_MODEL_SUFFIXES)
    )


def _load_torchscript(path: str, device: str | torch.device) -> nn.Module:
    if not os.path.exists(path):
        raise ModelError(f"model file {path} does not exist")
    if not os.path.isfile(path):
        raise ModelError(f"model path {path} is not a file")
    try:
        with warnings.catch_warnings():
            # TorchScript is deprecated from torch 2.10 on but still loads.
            warnings.filterwarnings(
                "ignore", message=".*torch.jit", category=DeprecationWarning
            )
            return torch.jit.load(path, map_location=device)
    except Exception as e:
        raise ModelError(
            f"{path} is not a TorchScript archive ({_first_sentence(e)}); "
            "a plain state_dict needs an entry point "
            "'package.module:factory' as the model and the file as weights"
        ) from e


def _call_factory(spec: str) -> nn.Module:
    factory = resolve_entry_point(spec)
    if not callable(factory):
        raise ModelError(
            f"entry point {spec!r} is a {type(factory).__name__}, not a "
            "callable that returns a model"
        )
    try:
        model = factory()
    except Exception as e:
        raise ModelError(
            f"calling entry point {spec!r} failed: {type(e).__name__}: {e}"
        ) from e
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"entry point {spec!r} returned a {type(model).__name__}, not a "
            "torch.nn.Module"
        )
    return model


def _load_weights(model: nn.Module, path: str) -> None:
    if not os.path.isfile(path):
        raise ModelError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(
            f"cannot read weights {path} ({_first_sentence(e)}); weights "
            "must be a state_dict saved with "
            "torch.save(model.state_dict(), path)"
        ) from e
    if not isinstance(state, Mapping):
        raise ModelError(
            f"weights {path} hold a {type(state).__name__}, not a state_dict"
        )
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise ModelError(
            f"weights {path} do not fit the model: "
            + "; ".join(
                f"{len(keys)} {what} key(s) {_some(keys)}"
                for what, keys in (
                    ("missing", missing),
                    ("unexpected", unexpected),
                )
                if keys
            )
            + _weights_hint(state)
        )
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as e:
        details = " ".join(str(e).split())
        raise ModelError(
            f"weights {path} do not fit the model: {details[:500]}"
        ) from e


def _some(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:_KEYS_SHOWN])
    return f"({shown}, ...)" if len(keys) > _KEYS_SHOWN else f"({shown})"


def _weights_hint(state: Mapping) -> str:
    if any(k in state for k in ("state_dict", "model", "model_state_dict")):
        return (
            "; the file looks like a training checkpoint: save its model "
            "state_dict alone"
        )
    keys = [k for k in state if isinstance(k, str)]
    if keys and all(k.startswith("module.") for k in keys):
        return (
            "; the keys start with 'module.' (a DataParallel model?): "
            "strip that prefix"
        )
    return ""


def _first_sentence(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text.split(". ")[0].rstrip(".")


# -- prediction -------------------------------------------------------------


class SegmentationPredictor:
    """Runs a segmentation model on batches of images and returns
    per-pixel class probabilities in mask-value order.

    N - number of images, K - classes of the dataset (mask values
    ``0 .. K-1``), C - output channels of the model, H, W - mask size.

    Args:
        model: the segmentation model; moved to ``device`` and put in eval
            mode. It takes ``(N, 3, h, w)`` float images and returns
            ``(N, C, h', w')`` scores as a tensor, a dict with key ``"out"``
            (torchvision style) or a tuple or list whose first item is the
            tensor.
        num_classes: K.
        preprocess: how images are fed to the model (default:
            :class:`Preprocess`, ImageNet normalisation at native size).
        output_classes: the mask value predicted by each of the C output
            channels. Channels mapped outside ``[0, K)`` (such as ``-1``)
            are dropped; every class needs exactly one channel. Default:
            channel k is class k, and the model must output K channels.
        outputs_logits: whether the model outputs logits (softmaxed over the
            kept channels) rather than probabilities (renormalised over the
            kept channels).
        device: where the model runs and the probabilities are returned.
        amp: run the model under float16 autocast on CUDA (no effect on
            other devices).

    Raises:
        ModelError: when ``output_classes`` leaves a class without a channel
            or gives one class several channels.

    Example:
        >>> model = torch.nn.Conv2d(3, 4, kernel_size=1)
        >>> predictor = SegmentationPredictor(model, 4)
        >>> images = [np.zeros((20, 30, 3), dtype=np.uint8)] * 2
        >>> predictor.predict(images, (10, 15)).shape
        torch.Size([2, 4, 10, 15])
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
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"model must be a torch.nn.Module, got {type(model).__name__}"
            )
        if isinstance(num_classes, bool) or not isinstance(
            num_classes, Integral
        ):
            raise TypeError(
                f"num_classes must be an integer, got {num_classes!r}"
            )
        if num_classes < 1:
            raise ValueError(
                f"num_classes must be at least 1, got {num_classes}"
            )
        self.num_classes = int(num_classes)
        self.preprocess = preprocess or Preprocess()
        self.output_classes = (
            None if output_classes is None else tuple(output_classes)
        )
        self.outputs_logits = outputs_logits
        self.device = torch.device(device)
        self.amp = amp
        self.model = model.to(self.device).eval()
        channels = _channels_of_classes(self.output_classes, self.num_classes)
        self._channels = (
            None
            if channels is None
            else torch.tensor(channels, dtype=torch.long, device=self.device)
        )
        self._input_dtype = next(
            (p.dtype for p in model.parameters() if p.is_floating_point()),
            torch.float32,
        )
        p = self.preprocess
        self._mean = torch.tensor(p.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(p.std, device=self.device).view(1, 3, 1, 1)

    def predict(
        self, images: Sequence[np.ndarray], size: tuple[int, int]
    ) -> Tensor:
        """Returns the probabilities of a batch of images at mask size.

        The model's scores are resized (bilinearly) to ``size`` before the
        softmax or renormalisation.

        Args:
            images: N RGB uint8 ``(H_i, W_i, 3)`` arrays.
            size: ``(H, W)`` of the masks being scored.

        Returns:
            ``(N, K, H, W)`` float32 probabilities on the predictor's
            device, summing to 1 over K; channel k is mask value k.

        Raises:
            TypeError: when an image is not a uint8 array.
            ValueError: when an image is not ``(H, W, 3)``, or images of
                different sizes meet ``Preprocess.size=None``.
            ModelError: when the model's output is not a ``(N, C, h, w)``
                tensor with the expected number of channels.
        """
        out_size = _int_pair(size)
        if out_size is None:
            raise ValueError(
                f"size must be (H, W) with positive integers, got {size!r}"
            )
        x = self._inputs(images)
        with torch.inference_mode(), self._autocast():
            out = self.model(x)
        out = self._select_channels(_output_tensor(out), len(images))
        out = out.float()
        if tuple(out.shape[-2:]) != out_size:
            out = F.interpolate(
                out, size=out_size, mode="bilinear", align_corners=False
            )
        if self.outputs_logits:
            return out.softmax(dim=1)
        probs = out.clamp(min=0)
        total = probs.sum(dim=1, keepdim=True)
        tiny = torch.finfo(probs.dtype).tiny
        # Pixels whose mass lies only in dropped channels become uniform.
        return torch.where(
            total > tiny,
            probs / total.clamp(min=tiny),
            1.0 / self.num_classes,
        )

    def _inputs(self, images: Sequence[np.ndarray]) -> Tensor:
        """``(N, 3, h, w)`` normalised model input from RGB uint8 images."""
        if len(images) == 0:
            raise ValueError("images must hold at least one image")
        for i, image in enumerate(images):
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
                kind = getattr(image, "dtype", type(image).__name__)
                raise TypeError(
                    f"images must be uint8 numpy arrays, image {i} is {kind}"
                )
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(
                    f"images must be RGB arrays of shape (H, W, 3), image "
                    f"{i} has shape {image.shape}"
                )
        p = self.preprocess
        if p.size is None:
            shapes = sorted({image.shape[:2] for image in images})
            if len(shapes) > 1:
                raise ValueError(
                    f"images have different sizes {shapes[:3]}: set "
                    "Preprocess.size to feed the model one size"
                )
            x = torch.from_numpy(np.stack(images)).to(self.device)
            x = x.permute(0, 3, 1, 2).float()
        else:
            x = torch.cat([self._resized(image, p.size) for image in images])
        x = (x * p.scale - self._mean) / self._std
        if p.channel_order == "BGR":
            x = x.flip(1)
        return x.to(self._input_dtype)

    def _resized(self, image: np.ndarray, size: tuple[int, int]) -> Tensor:
        t = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        t = t.permute(2, 0, 1)[None].float()
        if tuple(t.shape[-2:]) == size:
            return t
        return F.interpolate(
            t, size=size, mode="bilinear", align_corners=False
        )

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _select_channels(self, out: Tensor, n: int) -> Tensor:
        """Checks ``(N, C, h, w)`` scores; returns ``(N, K, h, w)``."""
        if out.ndim != 4 or out.shape[0] != n:
            raise ModelError(
                f"model output has shape {tuple(out.shape)}, expected "
                f"(N, C, H, W) with N = {n}"
            )
        c = out.shape[1]
        if self._channels is None:
            if c != self.num_classes:
                raise ModelError(
                    f"model outputs {c} channels, the dataset has "
                    f"{self.num_classes} classes: pass output_classes"
                )
            return out
        if c != len(self.output_classes):
            raise ModelError(
                f"model outputs {c} channels but output_classes names "
                f"{len(self.output_classes)}"
            )
        return out.index_select(1, self._channels)


def _channels_of_classes(
    output_classes: Sequence[int] | None, num_classes: int
) -> list[int] | None:
    """The output channel of each class ``0 .. K-1``; None for identity."""
    if output_classes is None:
        return None
    channels_of: dict[int, list[int]] = {}
    for channel, value in enumerate(output_classes):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise TypeError(
                f"output_classes must hold integers, got {value!r} for "
                f"channel {channel}"
            )
        if 0 <= value < num_classes:
            channels_of.setdefault(int(value), []).append(channel)
    duplicates = {k: c for k, c in sorted(channels_of.items()) if len(c) > 1}
    if duplicates:
        named = ", ".join(
            f"class {k} (channels {c})" for k, c in duplicates.items()
        )
        raise ModelError(
            f"output_classes gives several channels to one class: {named}"
        )
    uncovered = [k for k in range(num_classes) if k not in channels_of]
    if uncovered:
        shown = uncovered[:10]
        more = (
            f" and {len(uncovered) - 10} more" if len(uncovered) > 10 else ""
        )
        raise ModelError(
            f"output_classes gives no channel to class(es) {shown}{more}"
        )
    return [channels_of[k][0] for k in range(num_classes)]


def _output_tensor(out: object) -> Tensor:
    """The score tensor of a model's output."""
    if isinstance(out, Mapping):
        if "out" not in out:
            raise ModelError(
                "model returned a dict without key 'out' (keys: "
                f"{list(out)[:5]})"
            )
        out = out["out"]
    elif isinstance(out, tuple | list):
        if not out:
            raise ModelError(f"model returned an empty {type(out).__name__}")
        out = out[0]
    if not isinstance(out, Tensor):
        raise ModelError(
            f"model returned a {type(out).__name__}, not a tensor"
        )
    return out
