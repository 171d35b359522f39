"""Stage 2 of the CamVid known-error benchmark: out-of-fold probabilities.

Trains ``fixer_core.training.CrossValidationTrainer`` fold models (the
default compact U-Net, from scratch) on the NOISY labels of stage 1, train
and val images together, at the working resolution (``train_size`` = the
downscaled label size; the full-size JPEGs are resized by the trainer),
and predicts every image with the model of the fold that never saw it.
``--train-labels clean`` trains the folds on the clean labels instead:
models independent of the planted errors, like a pretrained model the
user brings (its runs are tagged ``-clean``).
Each image's ``(11, H, W)`` probabilities are cached as float16 ``.npy``::

    <out>/runs/<tag>/checkpoints/           the trainer's (resumable)
    <out>/runs/<tag>/probs/<split>/<name>.npy

``<tag>`` names the image count and training settings, so runs with
other settings (a smoke run) never mix with the full one. An interrupted
run resumes from the trainer's last finished epoch; images whose
probabilities are cached are not predicted again.

    python bench/camvid/probabilities.py --epochs 30
    python bench/camvid/probabilities.py --limit 40 --epochs 1 --folds 2
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from inject import (
    NUM_CLASSES,
    VOID,
    Layout,
    load_meta,
    read_png,
    select_images,
)
from inject import add_arguments as add_common_arguments

from fixer_core.training import (
    CrossValidationTrainer,
    TrainConfig,
    TrainProgress,
)

PREDICT_CHUNK = 16  # images predicted (and held) at a time


class CamVidLabels:
    """The trainer's data: full-size RGB images and the ``kind``
    (``"noisy"`` or ``"clean"``) labels at the working resolution
    (``SegmentationData``)."""

    def __init__(
        self, layout: Layout, images: list[dict], kind: str = "noisy"
    ) -> None:
        self.layout = layout
        self.images = images
        self.kind = kind
        self.sample_ids = [f"{im['split']}/{im['name']}" for im in images]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        im = self.images[index]
        image = cv2.imread(im["image"], cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(im["image"])
        label = read_png(self.layout.label(self.kind, im["split"], im["name"]))
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), label


def resolve_device(device: str) -> str:
    """``"auto"`` is CUDA when torch sees a GPU, else the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def train_config(args: argparse.Namespace, meta: dict) -> TrainConfig:
    """The training settings of a run."""
    h, w = meta["settings"]["size"]
    return TrainConfig(
        folds=args.folds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        train_size=(h, w),
        seed=args.train_seed,
        width=args.width,
    )


def run_tag(args: argparse.Namespace, num_images: int) -> str:
    """Names a probability run by its images and training settings."""
    tag = (
        f"n{num_images}-folds{args.folds}-epochs{args.epochs}"
        f"-lr{args.lr:g}-bs{args.batch_size}-w{args.width}"
        f"-seed{args.train_seed}"
    )
    return tag if args.train_labels == "noisy" else f"{tag}-clean"


def probs_path(run_dir: Path, image: dict) -> Path:
    """Where one image's cached probabilities live."""
    return run_dir / "probs" / image["split"] / f"{image['name']}.npy"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def compute_probabilities(args: argparse.Namespace) -> Path:
    """Runs stage 2; returns the run folder."""
    meta = load_meta(args.out, factor=args.factor, seed=args.seed)
    layout = Layout(args.out)
    images = select_images(meta, args.limit)
    run_dir = layout.run_dir(run_tag(args, len(images)))
    missing = [
        i
        for i, im in enumerate(images)
        if not probs_path(run_dir, im).is_file()
    ]
    if not missing:
        print(f"probabilities: all {len(images)} cached in {run_dir}")
        return run_dir
    device = resolve_device(args.device)
    config = train_config(args, meta)
    trainer = CrossValidationTrainer(
        CamVidLabels(layout, images, args.train_labels),
        NUM_CLASSES,
        config=config,
        checkpoint_dir=run_dir / "checkpoints",
        ignore_index=[VOID],
        device=device,
    )
    print(
        f"probabilities: {len(images)} images, {config.folds} folds x "
        f"{config.epochs} epochs on the {args.train_labels} labels at "
        f"{config.train_size[0]}x{config.train_size[1]} on {device}, "
        f"run {run_dir}",
        flush=True,
    )
    began = time.perf_counter()
    trainer.fit(lambda p: _report(p, began))
    began = time.perf_counter()
    for start in range(0, len(missing), PREDICT_CHUNK):
        chunk = missing[start : start + PREDICT_CHUNK]
        for i, probs in zip(chunk, trainer.predict(chunk), strict=True):
            array = probs.to(torch.float16).cpu().numpy()
            _save_atomic(probs_path(run_dir, images[i]), array)
    seconds = time.perf_counter() - began
    print(
        f"probabilities: predicted {len(missing)} images out-of-fold in "
        f"{seconds:.1f} s ({len(missing) / max(seconds, 1e-9):.1f} img/s)",
        flush=True,
    )
    return run_dir


def _report(progress: TrainProgress, began: float) -> None:
    elapsed = time.perf_counter() - began
    print(f"  {progress.label} ({elapsed:.0f} s)", flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of stage 2 (they also name the run that stage 3 reads)."""
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only the first N images (split proportionally between "
        "train and val), for smoke runs",
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--width", type=int, default=16, help="U-Net width")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument(
        "--train-labels",
        choices=("noisy", "clean"),
        default="noisy",
        help="labels the fold models learn from: the noisy ones (default), "
        "or the clean ones for models independent of the planted errors",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu, cuda"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    add_arguments(parser)
    compute_probabilities(parser.parse_args())


if __name__ == "__main__":
    main()
