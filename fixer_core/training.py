"""Cross-validated training of segmentation models on a dataset's labels.

A user without a model can still find label errors: K fold models are
trained on the dataset's own (noisy) labels, and each sample is scored only
by the model of its own fold, which never saw it during training
("out-of-fold" probabilities, like cleanlab's
``estimate_cv_predicted_probabilities``).
A model that memorised a wrong label would confirm it; a model that never
saw the sample predicts what the *other* samples teach.

Folds
    :func:`assign_folds` puts every sample id in one of ``folds`` folds,
    seeded, balanced (sizes differ by at most one) and independent of the
    order of the ids. Fold model ``k`` is trained on the samples of all
    folds but ``k`` and predicts the samples of fold ``k``.

Training
    Every fold model is trained from scratch (or from whatever
    ``model_factory`` returns) for ``epochs`` epochs:

    * Images and masks are resized to ``train_size`` (images bilinear or
      area, masks nearest) once and cached in memory when all of them fit
      in 1 GiB, else loaded and resized again each epoch. Mask values
      outside ``[0, num_classes)`` and values in ``ignore_index`` are
      ignored: they become -1 and add nothing to the loss.
    * Augmentation (``augment``): random horizontal flip; random scale in
      [0.75, 1.25], cropped or padded back to the training size at a random
      offset (padding is the mean colour in the image and ignored in the
      mask); brightness (+-0.1) and contrast (x0.8 to x1.2) jitter.
    * Images are scaled to [0, 1] and normalised with the ImageNet mean and
      standard deviation.
    * Loss: cross entropy, averaged over the pixels that are not ignored.
    * Optimiser: AdamW with a one-cycle schedule (30% warm-up, cosine
      decay) over ``epochs * ceil(n_train / batch_size)`` steps.
    * Each epoch visits the training samples once, in an order drawn from
      ``np.random.default_rng([seed, fold, epoch])``, which also draws the
      augmentations; ``torch.manual_seed`` is reset from the same triple
      (and model initialisation from ``[seed, fold]``). On the CPU, equal
      seeds give bitwise equal models, with or without interruptions; CUDA
      kernels are not all deterministic, so there runs agree only closely.
      The caller's global torch RNG state is restored after :meth:`fit`.
    * On CUDA, the forward pass runs under ``torch.autocast`` (float16) with
      a ``GradScaler``; elsewhere everything is float32.

Prediction
    A sample is resized to ``train_size``, run through its fold model (eval
    mode), the logits are resized bilinearly to the sample's original mask
    size and softmaxed.

Checkpoint directory
    ``checkpoint_dir/folds.json``
        the sample ids, their folds, ``num_classes``, ``ignore_index`` and
        the :class:`TrainConfig`. A trainer created on a directory whose
        ``folds.json`` differs raises ``ValueError``.
    ``checkpoint_dir/fold_{k}.pt``
        fold ``k``'s state, rewritten after every epoch: model, optimiser,
        scheduler and grad-scaler states, completed epochs, per-epoch
        losses, the ids of the samples it was trained on, and a
        ``complete`` flag. Once complete, the optimiser, scheduler and
        scaler states are dropped. An incomplete fold resumes after its
        last completed epoch; a complete one is never trained again. No
        RNG state is stored: each epoch reseeds from ``(seed, fold,
        epoch)``. Samples are known by id (training order follows the
        sorted ids), so ``data`` may list them in another order when a
        run is resumed.

    Files are written to a temporary name and renamed, so an interruption
    never leaves a half-written checkpoint. Everything a run produced lies
    in ``checkpoint_dir``: deleting it deletes the run. The model
    architecture is not stored; pass the same ``model_factory`` when
    resuming or predicting.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple, Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CrossValidationTrainer",
    "SegmentationData",
    "TrainConfig",
    "TrainProgress",
    "UNet",
    "assign_folds",
]

_FORMAT = 1
_FOLDS_FILE = "folds.json"
# Resized samples are cached in memory when all of them fit in this many
# bytes.
_CACHE_BUDGET = 1 << 30
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_PAD_COLOUR = tuple(round(255 * m) for m in _MEAN)
_SCALE_RANGE = (0.75, 1.25)
_CONTRAST_RANGE = (0.8, 1.2)
_BRIGHTNESS = 0.1
_WARMUP_SHARE = 0.3
_IGNORED = -1


class SegmentationData(Protocol):
    """What the trainer reads: a fixed, ordered list of samples.

    Attributes:
        sample_ids: unique ids of the samples; ``load(i)`` loads
            ``sample_ids[i]``.
    """

    sample_ids: Sequence[str]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns sample ``index``: an ``(H, W, 3)`` uint8 RGB image and
        its integer mask, ``(H', W')``. Mask values ``>= num_classes``,
        negative values and values in ``ignore_index`` are ignored."""
        ...


@dataclass(frozen=True)
class TrainConfig:
    """How :class:`CrossValidationTrainer` trains its fold models.

    Args:
        folds: number of folds ``F``, at least 2; each fold model trains on
            ``(F - 1) / F`` of the samples.
        epochs: passes over the training samples of each fold.
        batch_size: samples per optimiser step (and per prediction batch).
        learning_rate: peak learning rate of the one-cycle schedule.
        weight_decay: AdamW weight decay.
        train_size: ``(H, W)`` that images and masks are resized to for
            training and prediction; ``None`` keeps the native size, which
            all images (and masks) must then share.
        augment: whether to flip, rescale and jitter training samples.
        seed: seed of fold assignment, initialisation, data order and
            augmentation.
        width: base number of channels of the default :class:`UNet`.
    """

    folds: int = 5
    epochs: int = 30
    batch_size: int = 8
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    train_size: tuple[int, int] | None = None
    augment: bool = True
    seed: int = 0
    width: int = 16

    def __post_init__(self) -> None:
        for name, low in (
            ("folds", 2),
            ("epochs", 1),
            ("batch_size", 1),
            ("seed", 0),
            ("width", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, got {value!r}")
            if value < low:
                raise ValueError(f"{name} must be at least {low}, got {value}")
        if not self.learning_rate > 0:
            raise ValueError(
                f"learning_rate must be positive, got {self.learning_rate}"
            )
        if not self.weight_decay >= 0:
            raise ValueError(
                f"weight_decay must be non-negative, got {self.weight_decay}"
            )
        if not isinstance(self.augment, bool):
            raise TypeError(f"augment must be a bool, got {self.augment!r}")
        if self.train_size is not None:
            size = tuple(self.train_size)
            if len(size) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1
                for v in size
            ):
                raise ValueError(
                    "train_size must be None or (H, W) with positive "
                    f"integers, got {self.train_size!r}"
                )
            object.__setattr__(self, "train_size", size)

    def to_dict(self) -> dict:
        """Returns the config as a JSON-serializable dict."""
        values = asdict(self)
        if self.train_size is not None:
            values["train_size"] = list(self.train_size)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Builds a config from a dict, ignoring keys that are not fields."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True)
class TrainProgress:
    """Progress of :meth:`CrossValidationTrainer.fit`, after each epoch.

    Attributes:
        fold: index of the fold being trained, ``0 <= fold < folds``.
        folds: number of folds.
        epoch: epochs of this fold completed, ``1 <= epoch <= epochs``.
        epochs: epochs per fold.
        loss: mean training loss over the epoch.
        images_per_second: training samples per second over the epoch,
            loading and augmentation included.
    """

    fold: int
    folds: int
    epoch: int
    epochs: int
    loss: float
    images_per_second: float

    @property
    def label(self) -> str:
        """One line, e.g. ``"fold 2/5, epoch 7/30, loss 0.412, 35.1 img/s"``
        (folds counted from 1)."""
        return (
            f"fold {self.fold + 1}/{self.folds}, epoch {self.epoch}/"
            f"{self.epochs}, loss {self.loss:.3f}, "
            f"{self.images_per_second:.1f} img/s"
        )


def assign_folds(
    sample_ids: Sequence[str], folds: int, *, seed: int
) -> dict[str, int]:
    """Assigns each sample to one of ``folds`` folds at random.

    The ids are sorted and then permuted with
    ``np.random.default_rng(seed)``; the i-th id of the permutation goes to
    fold ``i % folds``. Fold sizes thus differ by at most one, and equal ids
    and seeds give equal folds whatever the order of the ids.

    Args:
        sample_ids: unique sample ids.
        folds: number of folds, at least 2 and at most ``len(sample_ids)``.
        seed: seed of the permutation.

    Returns:
        ``{sample_id: fold}``.

    Raises:
        ValueError: if ids repeat or there are fewer ids than folds.

    Example:
        >>> folds = assign_folds(["a", "b", "c", "d", "e"], 2, seed=0)
        >>> sorted(list(folds.values()).count(k) for k in (0, 1))
        [2, 3]
    """
    ids = sorted(str(i) for i in sample_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("sample ids must be unique")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if len(ids) < folds:
        raise ValueError(f"cannot split {len(ids)} samples into {folds} folds")
    order = np.random.default_rng(seed).permutation(len(ids))
    return {ids[j]: i % folds for i, j in enumerate(order.tolist())}


# -- model -----------------------------------------------------------------


class _ConvBlock(nn.Sequential):
    """Two 3x3 Conv-BN-ReLU layers."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """A compact U-Net, trained from scratch.

    Three 2x down-sampling levels (max pooling) and three up-sampling levels
    (bilinear up-sampling, concatenation with the skip connection), each
    level a block of two 3x3 Conv-BN-ReLU layers with ``width``, 2x, 4x and
    8x ``width`` channels; a 1x1 convolution gives the logits. About 0.49 M
    parameters at width 16. Inputs of any size work: they are zero-padded
    to a multiple of 8 (at least 16) and the output is cropped back.

    N - batch size, K - number of classes, H, W - image size.

    Args:
        num_classes: number of output channels ``K``.
        width: channels of the first level.
        in_channels: channels of the input.

    Example:
        >>> model = UNet(3, width=4)
        >>> model(torch.zeros(2, 3, 37, 50)).shape
        torch.Size([2, 3, 37, 50])
    """

    def __init__(
        self, num_classes: int, *, width: int = 16, in_channels: int = 3
    ) -> None:
        super().__init__()
        w = width
        self.down = nn.ModuleList(
            [
                _ConvBlock(in_channels, w),
                _ConvBlock(w, 2 * w),
                _ConvBlock(2 * w, 4 * w),
                _ConvBlock(4 * w, 8 * w),
            ]
        )
        self.up = nn.ModuleList(
            [
                _ConvBlock(8 * w + 4 * w, 4 * w),
                _ConvBlock(4 * w + 2 * w, 2 * w),
                _ConvBlock(2 * w + w, w),
            ]
        )
        self.head = nn.Conv2d(w, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Maps ``(N, C, H, W)`` images to ``(N, K, H, W)`` logits."""
        h, w = x.shape[-2:]
        # A multiple of 8, and at least 2x2 at the bottom (batch norm needs
        # more than one value per channel when training on one image).
        multiple = 2 ** (len(self.down) - 1)
        size_h = max(h + -h % multiple, 2 * multiple)
        size_w = max(w + -w % multiple, 2 * multiple)
        x = F.pad(x, (0, size_w - w, 0, size_h - h))
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(
                x, size=skip.shape[-2:], mode="bilinear", align_corners=False
            )
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)[..., :h, :w]


# -- trainer ---------------------------------------------------------------


class _Sample(NamedTuple):
    """A sample resized for the model."""

    image: np.ndarray  # (h, w, 3) uint8
    mask: np.ndarray  # (h, w) int16/int32, -1 where ignored
    mask_size: tuple[int, int]  # original (H, W) of the mask


class CrossValidationTrainer:
    """Trains K fold models and predicts every sample out-of-fold.

    See the module docstring for the training recipe and the checkpoint
    files. Creating a trainer assigns the folds and writes (or checks)
    ``checkpoint_dir/folds.json``; :meth:`fit` trains, resuming whatever an
    earlier run on the same directory left; :meth:`predict` gives each
    sample the probabilities of the fold model that never trained on it.

    K - number of classes, H, W - a sample's mask size.

    Args:
        data: the samples.
        num_classes: number of classes ``K``; channel ``k`` of the
            predictions is mask value ``k``.
        config: training settings (default :class:`TrainConfig`).
        checkpoint_dir: where fold assignments and fold models are kept.
        ignore_index: mask values that are not trained on.
        model_factory: ``num_classes -> nn.Module`` mapping
            ``(N, 3, H, W)`` normalised images to ``(N, K, h, w)`` logits
            (a ``{"out": logits}`` dict, as torchvision's models return,
            works too; logits of another size are resized bilinearly).
            Default: ``UNet(num_classes, width=config.width)``.
        device: where to train and predict.

    Attributes:
        folds: ``{sample_id: fold}``.

    Raises:
        ValueError: if ``checkpoint_dir`` holds another run's folds, or an
            argument is invalid.

    Example:
        >>> trainer = CrossValidationTrainer(  # doctest: +SKIP
        ...     data, 8, config=TrainConfig(train_size=(256, 256)),
        ...     checkpoint_dir="runs/cv", ignore_index=[255], device="cuda",
        ... )
        >>> trainer.fit(lambda p: print(p.label))  # doctest: +SKIP
        >>> probs = trainer.predict(range(16))  # doctest: +SKIP
    """

    def __init__(
        self,
        data: SegmentationData,
        num_classes: int,
        *,
        config: TrainConfig | None = None,
        checkpoint_dir: str | os.PathLike,
        ignore_index: Sequence[int] = (),
        model_factory: Callable[[int], nn.Module] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int):
            raise TypeError(
                f"num_classes must be an integer, got {num_classes!r}"
            )
        if num_classes < 2:
            raise ValueError(
                f"num_classes must be at least 2, got {num_classes}"
            )
        self.data = data
        self.num_classes = num_classes
        self.config = config or TrainConfig()
        self.checkpoint_dir = Path(checkpoint_dir)
        self.ignore_index = tuple(sorted({int(i) for i in ignore_index}))
        self.device = torch.device(device)
        self._factory = model_factory
        self._ids = [str(i) for i in data.sample_ids]
        self._index_of = {
            sample_id: i for i, sample_id in enumerate(self._ids)
        }
        self.folds = assign_folds(
            self._ids, self.config.folds, seed=self.config.seed
        )
        self._mask_dtype = np.int16 if num_classes <= 2**15 else np.int32
        self._native_size: tuple[int, int] | None = None
        self._cache: dict[int, _Sample] | None = None
        self._cache_decided = False
        self._models: dict[int, nn.Module] = {}
        self._init_checkpoint_dir()

    # -- public -----------------------------------------------------------

    def fit(
        self,
        progress: Callable[[TrainProgress], None] | None = None,
        *,
        folds: Iterable[int] | None = None,
    ) -> None:
        """Trains each fold's model on the samples of the other folds.

        Resumable: a complete fold (``fold_{k}.pt`` flagged complete) is
        skipped, an incomplete one continues after its last completed
        epoch, so an interrupted run (even by an exception raised in
        ``progress``) continues where it stopped.

        Args:
            progress: called after every epoch, once its checkpoint is
                written.
            folds: train only these folds (default: all). A fold's
                training depends on its own seed only, so folds trained
                by separate processes on the same ``checkpoint_dir`` give
                the models one process would.
        """
        folds = range(self.config.folds) if folds is None else list(folds)
        for fold in folds:
            if not 0 <= fold < self.config.folds:
                raise ValueError(
                    f"fold must be in [0, {self.config.folds}), got {fold}"
                )
        with torch.random.fork_rng(devices=self._rng_devices()):
            for fold in folds:
                self._fit_fold(fold, progress)

    def fold_model(self, fold: int) -> nn.Module:
        """Returns fold ``fold``'s trained model, in eval mode on the
        trainer's device (loaded once, then cached).

        Raises:
            RuntimeError: if the fold has not finished training.
        """
        if fold not in self._models:
            state = self._load(fold)
            if state is None or not state["complete"]:
                raise RuntimeError(
                    f"fold {fold} is not trained yet in "
                    f"{self.checkpoint_dir}; call fit() first"
                )
            model = self._new_model(seed=None)
            model.load_state_dict(state["model"])
            self._models[fold] = model.eval()
        return self._models[fold]

    def training_indices(self, fold: int) -> list[int]:
        """Returns the indices of the samples fold ``fold``'s model was
        actually trained on so far, as recorded in its checkpoint.

        Raises:
            RuntimeError: if the fold has no checkpoint yet.
        """
        state = self._load(fold)
        if state is None:
            raise RuntimeError(
                f"fold {fold} has no checkpoint in {self.checkpoint_dir}"
            )
        return sorted(self._index_of[i] for i in state["trained_on"])

    def fold_of(self, index: int) -> int:
        """Returns the fold of sample ``index``: the fold whose model
        predicts it."""
        return self.folds[self._ids[index]]

    @torch.no_grad()
    def predict(
        self, indices: Sequence[int], *, fold: int | None = None
    ) -> list[Tensor]:
        """Returns out-of-fold class probabilities of some samples.

        Each sample is predicted by the model of its own fold, which was
        trained without it.

        Args:
            indices: indices of the samples.
            fold: predict every sample with this fold's model instead (for
                diagnostics: on samples of other folds, this is in-fold
                prediction on training data).

        Returns:
            per sample, in the order of ``indices``, a ``(K, H, W)`` float32
            tensor of probabilities at the size of its mask, on the
            trainer's device.
        """
        indices = [int(i) for i in indices]
        for i in indices:
            if not 0 <= i < len(self._ids):
                raise IndexError(
                    f"sample index {i} out of range for {len(self._ids)} "
                    "samples"
                )
        if fold is not None and not 0 <= fold < self.config.folds:
            raise ValueError(
                f"fold must be in [0, {self.config.folds}), got {fold}"
            )
        by_fold: dict[int, list[int]] = {}
        for position, i in enumerate(indices):
            model_fold = self.fold_of(i) if fold is None else fold
            by_fold.setdefault(model_fold, []).append(position)
        out: list[Tensor | None] = [None] * len(indices)
        for model_fold, positions in sorted(by_fold.items()):
            model = self.fold_model(model_fold)
            for chunk in _chunks(positions, self.config.batch_size):
                samples = [self._sample(indices[p]) for p in chunk]
                images = self._to_input(np.stack([s.image for s in samples]))
                with self._autocast():
                    logits = self._forward(model, images).float()
                for p, sample, logit in zip(
                    chunk, samples, logits, strict=True
                ):
                    if tuple(logit.shape[-2:]) != sample.mask_size:
                        logit = F.interpolate(
                            logit[None],
                            size=sample.mask_size,
                            mode="bilinear",
                            align_corners=False,
                        )[0]
                    out[p] = logit.softmax(dim=0)
        return out

    # -- checkpoint files -------------------------------------------------

    def _init_checkpoint_dir(self) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "format": _FORMAT,
            "num_classes": self.num_classes,
            "ignore_index": list(self.ignore_index),
            "config": self.config.to_dict(),
            "sample_ids": sorted(self._ids),
            "folds": dict(sorted(self.folds.items())),
        }
        path = self.checkpoint_dir / _FOLDS_FILE
        if not path.exists():
            _write_atomic(path, lambda f: f.write(json.dumps(record)), "w")
            return
        with open(path) as f:
            stored = json.load(f)
        record = json.loads(json.dumps(record))
        differ = [
            name
            for name, key in (
                ("sample ids", "sample_ids"),
                ("config", "config"),
                ("num_classes", "num_classes"),
                ("ignore_index", "ignore_index"),
                ("folds", "folds"),
                ("format", "format"),
            )
            if stored.get(key) != record[key]
        ]
        if differ:
            raise ValueError(
                f"checkpoint dir {str(self.checkpoint_dir)!r} belongs to "
                f"another run (its {', '.join(differ)} differ); use another "
                "checkpoint_dir or delete this one"
            )

    def _fold_path(self, fold: int) -> Path:
        return self.checkpoint_dir / f"fold_{fold}.pt"

    def _load(self, fold: int) -> dict | None:
        path = self._fold_path(fold)
        if not path.exists():
            return None
        return torch.load(path, map_location=self.device, weights_only=True)

    def _save(self, fold: int, state: dict) -> None:
        _write_atomic(
            self._fold_path(fold), lambda f: torch.save(state, f), "wb"
        )

    # -- training ---------------------------------------------------------

    def _fit_fold(
        self, fold: int, progress: Callable[[TrainProgress], None] | None
    ) -> None:
        cfg = self.config
        state = self._load(fold)
        if state is not None and state["complete"]:
            return
        train_ids = sorted(i for i, k in self.folds.items() if k != fold)
        steps = math.ceil(len(train_ids) / cfg.batch_size)
        model = self._new_model(seed=_seed(cfg.seed, fold))
        optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=cfg.learning_rate,
            weight_decay=cfg.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=cfg.learning_rate,
            total_steps=cfg.epochs * steps,
            pct_start=_WARMUP_SHARE,
        )
        scaler = torch.amp.GradScaler("cuda", enabled=self._mixed)
        start, losses, trained_on = 0, [], set()
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            start = state["epoch"]
            losses = list(state["losses"])
            trained_on = set(state["trained_on"])
        for epoch in range(start, cfg.epochs):
            began = time.perf_counter()
            loss_value, fed = self._train_epoch(
                model,
                (optimizer, scheduler, scaler),
                train_ids,
                fold=fold,
                epoch=epoch,
            )
            seconds = time.perf_counter() - began
            trained_on.update(fed)
            losses.append(loss_value)
            complete = epoch + 1 == cfg.epochs
            self._save(
                fold,
                {
                    "format": _FORMAT,
                    "fold": fold,
                    "complete": complete,
                    "epoch": epoch + 1,
                    "losses": losses,
                    "trained_on": sorted(trained_on),
                    "model": model.state_dict(),
                    **(
                        {}
                        if complete
                        else {
                            "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(),
                            "scaler": scaler.state_dict(),
                        }
                    ),
                },
            )
            if progress is not None:
                progress(
                    TrainProgress(
                        fold=fold,
                        folds=cfg.folds,
                        epoch=epoch + 1,
                        epochs=cfg.epochs,
                        loss=loss_value,
                        images_per_second=len(train_ids) / max(seconds, 1e-9),
                    )
                )

    def _train_epoch(
        self,
        model: nn.Module,
        stepping: tuple,
        train_ids: Sequence[str],
        *,
        fold: int,
        epoch: int,
    ) -> tuple[float, set[str]]:
        """Trains one epoch (0-based) of one fold.

        Returns the mean loss and the ids of the samples fed to the model.

        ``stepping`` is ``(optimizer, scheduler, grad_scaler)``.
        """
        cfg = self.config
        optimizer, scheduler, scaler = stepping
        rng = np.random.default_rng([cfg.seed, fold, epoch])
        torch.manual_seed(_seed(cfg.seed, fold, epoch))
        model.train()
        total = torch.zeros((), device=self.device)
        fed = set()
        order = [train_ids[j] for j in rng.permutation(len(train_ids))]
        for batch in _chunks(order, cfg.batch_size):
            images, masks = self._training_batch(batch, rng)
            with self._autocast():
                logits = self._forward(model, images)
            loss = _masked_cross_entropy(logits.float(), masks)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            total += loss.detach() * len(batch)
            fed.update(batch)
        return float(total) / len(order), fed

    def _training_batch(
        self, batch: Sequence[str], rng: np.random.Generator
    ) -> tuple[Tensor, Tensor]:
        """Loads, augments and stacks samples: ``(N, 3, h, w)`` normalised
        images and ``(N, h, w)`` int64 masks on the device."""
        images, masks, jitter = [], [], []
        for sample_id in batch:
            sample = self._sample(self._index_of[sample_id])
            image, mask = sample.image, sample.mask
            if self.config.augment:
                image, mask, contrast, brightness = _augment(image, mask, rng)
                jitter.append((contrast, brightness))
            images.append(image)
            masks.append(mask)
        factors = None
        if jitter:
            factors = torch.tensor(jitter, dtype=torch.float32)
            factors = factors.to(self.device)[:, :, None, None, None]
        images = self._to_input(np.stack(images), jitter=factors)
        masks = torch.from_numpy(np.stack(masks)).to(self.device).long()
        return images, masks

    def _to_input(
        self, images: np.ndarray, *, jitter: Tensor | None = None
    ) -> Tensor:
        """Maps ``(N, h, w, 3)`` uint8 images to normalised ``(N, 3, h, w)``
        float32, applying ``(N, 2, 1, 1, 1)`` contrast and brightness."""
        x = torch.from_numpy(images).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        if jitter is not None:
            x = (x * jitter[:, 0] + jitter[:, 1]).clamp_(0.0, 1.0)
        mean = torch.tensor(_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def _forward(self, model: nn.Module, images: Tensor) -> Tensor:
        out = model(images)
        if isinstance(out, Mapping):
            out = out["out"]
        if out.ndim != 4 or out.shape[1] != self.num_classes:
            raise ValueError(
                f"the model must return (N, {self.num_classes}, H, W) "
                f"logits, got shape {tuple(out.shape)}"
            )
        if out.shape[-2:] != images.shape[-2:]:
            out = F.interpolate(
                out,
                size=images.shape[-2:],
                mode="bilinear",
                align_corners=False,
            )
        return out

    def _new_model(self, *, seed: int | None) -> nn.Module:
        context = (
            torch.random.fork_rng(devices=self._rng_devices())
            if seed is None
            else contextlib.nullcontext()
        )
        with context:
            if seed is not None:
                torch.manual_seed(seed)
            if self._factory is None:
                model = UNet(self.num_classes, width=self.config.width)
            else:
                model = self._factory(self.num_classes)
        return model.to(self.device)

    @property
    def _mixed(self) -> bool:
        return self.device.type == "cuda"

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self._mixed:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _rng_devices(self) -> list[int]:
        if self.device.type != "cuda":
            return []
        index = self.device.index
        return [torch.cuda.current_device() if index is None else index]

    # -- data -------------------------------------------------------------

    def _sample(self, index: int) -> _Sample:
        """Sample ``index`` at the training size, from the cache if any."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        sample = self._prepare(index)
        if not self._cache_decided:
            per_sample = sample.image.nbytes + sample.mask.nbytes
            if per_sample * len(self._ids) <= _CACHE_BUDGET:
                self._cache = {}
            self._cache_decided = True
        if self._cache is not None:
            self._cache[index] = sample
        return sample

    def _prepare(self, index: int) -> _Sample:
        sample_id = self._ids[index]
        image, mask = self.data.load(index)
        image, mask = np.asarray(image), np.asarray(mask)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"sample {sample_id!r}: the image must be (H, W, 3) uint8, "
                f"got {image.shape} {image.dtype}"
            )
        if mask.ndim != 2 or not (
            np.issubdtype(mask.dtype, np.integer) or mask.dtype == bool
        ):
            raise ValueError(
                f"sample {sample_id!r}: the mask must be (H, W) integer, "
                f"got {mask.shape} {mask.dtype}"
            )
        mask_size = (int(mask.shape[0]), int(mask.shape[1]))
        size = self.config.train_size
        if size is None:
            if image.shape[:2] != mask.shape:
                raise ValueError(
                    f"sample {sample_id!r}: image {image.shape[:2]} and mask "
                    f"{mask.shape} sizes differ; set train_size"
                )
            if self._native_size is None:
                self._native_size = mask_size
            elif mask_size != self._native_size:
                raise ValueError(
                    f"sample {sample_id!r} is {mask_size[0]}x{mask_size[1]}, "
                    f"others are {self._native_size[0]}x"
                    f"{self._native_size[1]}; images of different sizes "
                    "need a train_size"
                )
            size = mask_size
        labels = mask.astype(np.int64)
        valid = (labels >= 0) & (labels < self.num_classes)
        if self.ignore_index:
            valid &= ~np.isin(labels, self.ignore_index)
        labels = np.where(valid, labels, _IGNORED).astype(self._mask_dtype)
        h, w = size
        if image.shape[:2] != (h, w):
            shrink = h * w < image.shape[0] * image.shape[1]
            image = cv2.resize(
                image,
                (w, h),
                interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
            )
        if labels.shape != (h, w):
            labels = cv2.resize(
                labels, (w, h), interpolation=cv2.INTER_NEAREST_EXACT
            )
        return _Sample(
            np.ascontiguousarray(image),
            np.ascontiguousarray(labels),
            mask_size,
        )


# -- helpers ---------------------------------------------------------------


def _seed(*values: int) -> int:
    """A 32-bit torch seed derived from a tuple of non-negative ints."""
    return int(np.random.SeedSequence(list(values)).generate_state(1)[0])


def _masked_cross_entropy(logits: Tensor, masks: Tensor) -> Tensor:
    """Mean cross entropy of ``(N, K, h, w)`` logits over the pixels of the
    ``(N, h, w)`` masks that are not ignored (0 when all are)."""
    total = F.cross_entropy(
        logits, masks, ignore_index=_IGNORED, reduction="sum"
    )
    return total / (masks != _IGNORED).sum().clamp(min=1)


def _augment(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Flips and rescales one ``(h, w, 3)`` image and its ``(h, w)`` mask,
    cropping or padding back to ``(h, w)``; also draws its contrast and
    brightness jitter. Draws the same numbers whatever the branches."""
    h, w = mask.shape
    flip, scale, offset_y, offset_x, contrast, brightness = rng.random(6)
    if flip < 0.5:
        image, mask = cv2.flip(image, 1), cv2.flip(mask, 1)
    low, high = _SCALE_RANGE
    scale = low + (high - low) * scale
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    image = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_NEAREST_EXACT)
    out_image = np.empty((h, w, 3), dtype=np.uint8)
    out_image[:] = _PAD_COLOUR
    out_mask = np.full((h, w), _IGNORED, dtype=mask.dtype)
    (src_y, dst_y, n_y), (src_x, dst_x, n_x) = (
        _crop_or_pad(sh, h, offset_y),
        _crop_or_pad(sw, w, offset_x),
    )
    out_image[dst_y : dst_y + n_y, dst_x : dst_x + n_x] = image[
        src_y : src_y + n_y, src_x : src_x + n_x
    ]
    out_mask[dst_y : dst_y + n_y, dst_x : dst_x + n_x] = mask[
        src_y : src_y + n_y, src_x : src_x + n_x
    ]
    low, high = _CONTRAST_RANGE
    contrast = low + (high - low) * contrast
    brightness = _BRIGHTNESS * (2.0 * brightness - 1.0)
    return out_image, out_mask, float(contrast), float(brightness)


def _crop_or_pad(
    size: int, target: int, offset: float
) -> tuple[int, int, int]:
    """Returns ``(source start, target start, length)`` of a random crop
    (``size >= target``) or placement (``size < target``) along one axis,
    ``offset`` in [0, 1)."""
    shift = min(int(offset * (abs(size - target) + 1)), abs(size - target))
    if size >= target:
        return shift, 0, target
    return 0, shift, size


def _write_atomic(
    path: Path, write: Callable[[object], object], mode: str
) -> None:
    """Writes a file under a temporary name, then renames it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode) as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _chunks(values: Sequence, size: int) -> Iterator[Sequence]:
    """Yields consecutive slices of ``values`` of ``size`` items (the last
    may be shorter)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
