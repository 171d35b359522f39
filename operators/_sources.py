"""Where a run's probabilities come from: files, a model, or fold models
trained on the dataset itself."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import queue
import shutil
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..fixer_core._checks import layout_problem
from ..fixer_core.models import (
    ModelError,
    Preprocess,
    SegmentationPredictor,
    load_model,
    resolve_entry_point,
)
from ..fixer_core.training import (
    CrossValidationTrainer,
    TrainConfig,
    TrainProgress,
)
from ._samples import (
    LabelErrorInputError,
    describe,
    load_image,
    load_mask,
    load_probs,
    npy_layout,
)

SOURCES = ("stored", "model", "cross_validation")
# In a checkpoint folder: the fingerprint of the labels it was trained on
LABELS_FILE = "fixer_labels.json"


@dataclass(frozen=True)
class ModelSpec:
    """A user's model: a TorchScript file or an entry point, and how to
    feed it."""

    model: str
    weights: str | None = None
    preprocess: Preprocess = field(default_factory=Preprocess)
    output_classes: tuple[int, ...] | None = None
    outputs_logits: bool = True

    def to_dict(self) -> dict:
        """Returns the spec as JSON-serializable data."""
        return {
            "model": self.model,
            "weights": self.weights,
            "preprocess": self.preprocess.to_dict(),
            "output_classes": self.output_classes,
            "outputs_logits": self.outputs_logits,
        }

    @classmethod
    def from_dict(cls, values: dict) -> ModelSpec:
        """Builds the spec from :meth:`to_dict`'s data (a run's record)."""
        classes = values.get("output_classes")
        return cls(
            model=values["model"],
            weights=values.get("weights"),
            preprocess=Preprocess.from_dict(values.get("preprocess") or {}),
            output_classes=None if classes is None else tuple(classes),
            outputs_logits=values.get("outputs_logits", True),
        )


@dataclass(frozen=True)
class TrainingSpec:
    """Cross-validated training of fold models on the target samples."""

    config: TrainConfig = field(default_factory=TrainConfig)
    checkpoint_dir: str | None = None
    architecture: str | None = None  # entry point: factory(num_classes)

    def to_dict(self) -> dict:
        """Returns the spec as JSON-serializable data."""
        return {
            "config": self.config.to_dict(),
            "checkpoint_dir": self.checkpoint_dir,
            "architecture": self.architecture,
        }


class StoredProbabilities:
    """Probabilities from the ``.npy``/``.npz`` files a field points to."""

    def __init__(self, probs_field: str) -> None:
        self.probs_field = probs_field
        self.where = f"field '{probs_field}'"
        self._first: tuple[str, int] | None = None

    def __call__(self, samples: list, masks: list[np.ndarray]) -> np.ndarray:
        batch = self._empty_batch(samples)
        slots = [None] * len(samples) if batch is None else list(batch)
        arrays = [
            load_probs(s, self.probs_field, out=slot)
            for s, slot in zip(samples, slots, strict=True)
        ]
        for sample, probs, mask in zip(samples, arrays, masks, strict=True):
            self._check_channels(sample, probs)
            problem = layout_problem(probs.shape[-2:], mask.shape)
            if problem:
                raise LabelErrorInputError(
                    f"Probabilities of sample {describe(sample)} "
                    f"({self.where}) {problem}"
                )
        if len({a.shape for a in arrays}) == 1:
            if all(a is slot for a, slot in zip(arrays, slots, strict=True)):
                return batch  # every file was read into its slot
            return np.stack(arrays)
        size = masks[0].shape
        return torch.cat(
            [
                F.interpolate(
                    torch.from_numpy(a[None]).float(),
                    size=size,
                    mode="bilinear",
                    align_corners=False,
                )
                for a in arrays
            ]
        ).numpy()

    def _empty_batch(self, samples: list) -> np.ndarray | None:
        """A batch of the first sample's ``.npy`` file's shape and dtype
        (from its header), for the files to be read into; None for other
        files."""
        layout = npy_layout(samples[0][self.probs_field])
        if layout is None:
            return None
        shape, dtype = layout
        return np.empty((len(samples), *shape), dtype)

    def _check_channels(self, sample, probs: np.ndarray) -> None:
        if self._first is None:
            self._first = (describe(sample), probs.shape[0])
        first_id, k = self._first
        if probs.shape[0] != k:
            raise LabelErrorInputError(
                f"Probabilities of sample {describe(sample)} ({self.where}) "
                f"have {probs.shape[0]} channels but those of sample "
                f"{first_id} have {k}"
            )


class ModelProbabilities:
    """Probabilities computed by a model from each sample's image."""

    where = "model output"

    def __init__(self, predictor, name: str) -> None:
        self.predictor = predictor
        self.name = name

    def __call__(self, samples: list, masks: list[np.ndarray]) -> Tensor:
        images = [load_image(s) for s in samples]
        try:
            return self.predictor.predict(images, masks[0].shape)
        except ModelError as e:
            raise LabelErrorInputError(f"Model '{self.name}': {e}") from e


class OutOfFoldProbabilities:
    """Probabilities of each sample from the fold model that never saw it."""

    where = "cross-validated model output"

    def __init__(self, trainer, sample_ids: list[str]) -> None:
        self.trainer = trainer
        self._index = {sid: i for i, sid in enumerate(sample_ids)}

    def __call__(self, samples: list, masks: list[np.ndarray]) -> Tensor:
        indices = [self._index[s.id] for s in samples]
        return torch.stack(self.trainer.predict(indices))


class DatasetSegmentationData:
    """The target samples as the trainer reads them: image and mask."""

    def __init__(self, view, gt_field: str) -> None:
        self._view = view.select_fields(gt_field)
        self._gt_field = gt_field
        self.sample_ids = self._view.values("id")

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        sample = self._view[self.sample_ids[index]]
        return load_image(sample), load_mask(sample, self._gt_field)


def build_model_source(
    spec: ModelSpec, num_classes: int, device: str
) -> ModelProbabilities:
    """Loads the user's model; raises LabelErrorInputError when it does
    not load."""
    try:
        model = load_model(spec.model, weights=spec.weights, device=device)
        predictor = SegmentationPredictor(
            model,
            num_classes,
            preprocess=spec.preprocess,
            output_classes=spec.output_classes,
            outputs_logits=spec.outputs_logits,
            device=device,
        )
    except ValueError as e:
        raise LabelErrorInputError(f"Model '{spec.model}': {e}") from e
    return ModelProbabilities(predictor, spec.model)


def fold_trainer(
    view,
    gt_field: str,
    spec: TrainingSpec,
    num_classes: int,
    ignore_index: tuple[int, ...],
    checkpoint_dir: str,
    device: str,
) -> CrossValidationTrainer:
    """The cross-validation trainer of the target samples; writes (or
    checks) the checkpoint folder's fold assignment."""
    factory: Callable | None = None
    if spec.architecture:
        try:
            factory = resolve_entry_point(spec.architecture)
        except ValueError as e:
            raise LabelErrorInputError(
                f"Architecture '{spec.architecture}': {e}"
            ) from e
    try:
        return CrossValidationTrainer(
            DatasetSegmentationData(view, gt_field),
            num_classes,
            config=spec.config,
            checkpoint_dir=checkpoint_dir,
            ignore_index=ignore_index,
            model_factory=factory,
            device=device,
        )
    except ValueError as e:
        raise LabelErrorInputError(str(e)) from e


def train_fold_models(
    trainer: CrossValidationTrainer, folds: Iterable[int] | None = None
) -> Generator[TrainProgress, None, OutOfFoldProbabilities]:
    """Trains (or resumes) the fold models (``folds``, default all),
    yielding the trainer's progress as it comes; returns the out-of-fold
    probability source (which needs every fold trained)."""
    yield from _in_background(functools.partial(trainer.fit, folds=folds))
    return OutOfFoldProbabilities(trainer, list(trainer.data.sample_ids))


def tie_to_labels(
    checkpoint_dir: str, view, gt_field: str, *, owned: bool
) -> None:
    """Ties a checkpoint folder to the labels its fold models learn from.

    The folder records a fingerprint of the target samples' ground truth
    (ids, mask files' paths, sizes and times, inline masks' bytes). When
    the labels changed since (an ``apply_corrections``, an edit), FIXER's
    own folder is emptied so the folds are trained again; a user's folder
    is refused.
    """
    marker = os.path.join(checkpoint_dir, LABELS_FILE)
    fingerprint = labels_fingerprint(view, gt_field)
    stored = None
    if os.path.isfile(marker):
        with open(marker) as f:
            stored = json.load(f).get("fingerprint")
    elif os.path.isdir(checkpoint_dir) and os.listdir(checkpoint_dir):
        stored = "unknown"  # written before folders were tied to labels
    if stored == fingerprint:
        return
    if stored is not None:
        if not owned:
            raise LabelErrorInputError(
                f"Checkpoint folder {checkpoint_dir} holds fold models "
                f"trained on other labels of '{gt_field}' (they changed "
                "since); delete it or choose another checkpoint_dir"
            )
        shutil.rmtree(checkpoint_dir)
    os.makedirs(checkpoint_dir, exist_ok=True)
    with open(marker, "w") as f:
        json.dump({"gt_field": gt_field, "fingerprint": fingerprint}, f)


def labels_fingerprint(view, gt_field: str) -> str:
    """A hash of the target samples' ground truth as training reads it."""
    digest = hashlib.sha256()
    samples = view.select_fields(gt_field).sort_by("id")
    for sample in samples.iter_samples():
        seg = sample[gt_field]
        digest.update(sample.id.encode())
        if seg is None:
            continue
        if seg.mask_path:
            try:
                stat = os.stat(seg.mask_path)
                state = f"{seg.mask_path}:{stat.st_size}:{stat.st_mtime_ns}"
            except OSError:
                state = f"{seg.mask_path}:missing"
            digest.update(state.encode())
        elif seg.mask is not None:
            digest.update(np.ascontiguousarray(seg.mask).tobytes())
    return digest.hexdigest()


def _in_background(fit: Callable) -> Iterator[TrainProgress]:
    """Runs ``fit(progress=callback)`` in a thread and yields each
    progress update as it arrives, so a generator operator can report
    it; re-raises the thread's exception."""
    updates: queue.Queue = queue.Queue()
    done = object()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            fit(progress=updates.put)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            failure.append(e)
        finally:
            updates.put(done)

    thread = threading.Thread(target=work, name="fixer-training")
    thread.start()
    while (update := updates.get()) is not done:
        yield update
    thread.join()
    if failure:
        raise failure[0]


def save_probabilities(
    samples: list, probs: np.ndarray | Tensor, directory: str
) -> list[str]:
    """Writes each sample's probabilities as float16 ``.npy``; returns the
    paths."""
    os.makedirs(directory, exist_ok=True)
    if isinstance(probs, Tensor):
        probs = probs.detach().to("cpu", torch.float16).numpy()
    paths = []
    for sample, array in zip(samples, probs, strict=True):
        path = os.path.join(directory, f"{sample.id}.npy")
        np.save(path, array.astype(np.float16))
        paths.append(path)
    return paths
