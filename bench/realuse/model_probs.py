"""Probabilities of the shared third-party CamVid model, cached per image.

Runs ``../shared/models/espnet_camvid.pt`` (ESPNet, TorchScript, trained by
its authors on CamVid train) at CamVid's native 360x480 with the exact
preprocessing of ``../shared/models/README.md``, on the 468 train and val
images, and caches each image's ``(11, 360, 480)`` probabilities as float16
``.npy``. The model never sees the labels, so one cache serves every
injector and the clean labels. Also prints the model's val mIoU against
the clean labels (the README says 69.0)::

    python bench/realuse/model_probs.py --out bench/results/realuse
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "camvid"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from fixer_data import ESPNET_PREPROCESS  # noqa: E402
from inject import CAMVID, NUM_CLASSES, VOID, list_samples  # noqa: E402

from fixer_core.models import (  # noqa: E402
    Preprocess,
    SegmentationPredictor,
    load_model,
)

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO.parent / "shared" / "models" / "espnet_camvid.pt"
PREPROCESS = Preprocess(**ESPNET_PREPROCESS)


def cache_espnet(out: Path, batch: int = 4) -> Path:
    """Caches the shared model's probabilities; returns their folder."""
    folder = out / "probs" / "espnet"
    samples = list_samples(CAMVID)
    todo = [
        s for s in samples if not (folder / s.split / f"{s.name}.npy").exists()
    ]
    if todo:
        model = load_model(str(MODEL))
        predictor = SegmentationPredictor(
            model, NUM_CLASSES, preprocess=PREPROCESS
        )
        began = time.perf_counter()
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            images = [
                cv2.cvtColor(cv2.imread(str(s.image)), cv2.COLOR_BGR2RGB)
                for s in chunk
            ]
            with torch.inference_mode():
                probs = predictor.predict(images, (360, 480))
            for s, p in zip(chunk, probs, strict=True):
                path = folder / s.split / f"{s.name}.npy"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, np.asarray(p, dtype=np.float16))
        print(
            f"espnet: {len(todo)} images in "
            f"{time.perf_counter() - began:.0f} s"
        )
    return folder


def miou(folder: Path, split: str = "val") -> float:
    """The cached model's mIoU against the clean labels of a split."""
    inter = np.zeros(NUM_CLASSES)
    union = np.zeros(NUM_CLASSES)
    for s in list_samples(CAMVID):
        if s.split != split:
            continue
        label = cv2.imread(str(s.label), cv2.IMREAD_UNCHANGED)
        pred = np.load(folder / split / f"{s.name}.npy").argmax(0)
        valid = label != VOID
        for k in range(NUM_CLASSES):
            a, b = (label == k) & valid, (pred == k) & valid
            inter[k] += np.count_nonzero(a & b)
            union[k] += np.count_nonzero(a | b)
    return float(np.mean(inter / np.maximum(union, 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "realuse"
    )
    args = parser.parse_args()
    folder = cache_espnet(args.out)
    for split in ("train", "val"):
        print(
            f"espnet {split} mIoU vs clean labels: {miou(folder, split):.3f}"
        )


if __name__ == "__main__":
    main()
