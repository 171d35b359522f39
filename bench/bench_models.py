"""Throughput of the model paths: inference + scoring, and training.

Inference + scoring runs a compact U-Net (random weights: speed only) over
generated scenes through both of the finder's passes, two ways:
``recompute`` runs the model in each pass; ``cache`` runs it once, keeps
float16 probabilities on disk and reads them back in pass 2. Training runs
the cross-validated trainer. Prints one JSON line per measurement.

    python bench/bench_models.py --images 64 --size 240 320
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fixer_core import LabelErrorFinder
from fixer_core.models import Preprocess, SegmentationPredictor
from fixer_core.synthetic import IGNORE_VALUE, make_scenes
from fixer_core.training import CrossValidationTrainer, TrainConfig, UNet


class _Scenes:
    def __init__(self, scenes):
        self.scenes = scenes
        self.sample_ids = [f"s{i:05d}" for i in range(len(scenes.labels))]

    def load(self, index):
        return self.scenes.images[index], self.scenes.labels[index]


def scoring(scenes, device, batch_size, mode) -> float:
    k = len(scenes.class_names)
    predictor = SegmentationPredictor(
        UNet(k).to(device).eval(), k, preprocess=Preprocess(), device=device
    )
    finder = LabelErrorFinder(
        scenes.class_names, ignore_index=[IGNORE_VALUE], device=device
    )
    n, size = len(scenes.labels), scenes.labels.shape[1:]
    batches = [slice(i, i + batch_size) for i in range(0, n, batch_size)]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for b in batches:
            probs = predictor.predict(list(scenes.images[b]), size)
            finder.update(scenes.labels[b], probs)
            if mode == "cache":
                np.save(
                    Path(tmp) / f"{b.start}.npy",
                    probs.to("cpu", torch.float16).numpy(),
                )
        for b in batches:
            if mode == "cache":
                probs = np.load(Path(tmp) / f"{b.start}.npy")
            else:
                probs = predictor.predict(list(scenes.images[b]), size)
            finder.find(scenes.labels[b], probs)
    return n / (time.perf_counter() - start)


def training(scenes, device, train_size) -> float:
    data = _Scenes(scenes)
    config = TrainConfig(folds=2, epochs=2, train_size=train_size)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = CrossValidationTrainer(
            data,
            len(scenes.class_names),
            config=config,
            checkpoint_dir=tmp,
            ignore_index=[IGNORE_VALUE],
            device=device,
        )
        rates = []
        trainer.fit(progress=lambda p: rates.append(p.images_per_second))
    return float(np.median(rates[1:] or rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, nargs=2, default=[240, 320])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    args = parser.parse_args()
    h, w = args.size
    scenes = make_scenes(args.images, height=h, width=w, seed=0)
    machine = {
        "device": args.device,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    for mode in ("recompute", "cache"):
        rate = scoring(scenes, args.device, args.batch_size, mode)
        print(
            json.dumps(
                {
                    "measure": f"inference+scoring ({mode})",
                    "images": args.images,
                    "size": [h, w],
                    "images_per_s": round(rate, 2),
                    **machine,
                }
            ),
            flush=True,
        )
    rate = training(scenes, args.device, (h, w))
    print(
        json.dumps(
            {
                "measure": "training (per epoch, median)",
                "images": args.images,
                "size": [h, w],
                "images_per_s": round(rate, 2),
                **machine,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
