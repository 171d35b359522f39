"""Recovery of planted errors on generated scenes scored by trained models.

The generated scenes' own probabilities carry no class prior; these are
out-of-fold probabilities of 3-fold compact U-Nets trained on the noisy
labels (``fixer_core.training``, 30 epochs at 96x128, as ``scripts/demo.sh
--source train`` does), so the finder runs with its default config, prior
correction included. A held-out check for the defaults chosen on CamVid:
the probabilities are cached under ``--out`` and every ``--config`` is
scored on the same ones.

    python bench/bench_trained_demo.py --seeds 0 1 2 \\
        --config min_confidence=0.25 --config min_confidence=0.15
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fixer_core import FinderConfig, find_label_errors
from fixer_core.evaluation import recovery_by_type
from fixer_core.synthetic import IGNORE_VALUE, SyntheticScenes, make_scenes
from fixer_core.training import CrossValidationTrainer, TrainConfig

TRAINING = TrainConfig(
    folds=3, epochs=30, learning_rate=1e-2, train_size=(96, 128)
)


class _Scenes:
    """The scenes as training data."""

    def __init__(self, scenes: SyntheticScenes) -> None:
        self.scenes = scenes
        self.sample_ids = [f"scene{i}" for i in range(len(scenes.labels))]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.scenes.images[index], self.scenes.labels[index]


def out_of_fold_probs(scenes: SyntheticScenes, folder: Path) -> np.ndarray:
    """``(N, K, H, W)`` out-of-fold probabilities, trained once per folder
    (training resumes from its checkpoints)."""
    cached = folder / "probs.npy"
    if cached.is_file():
        return np.load(cached)
    trainer = CrossValidationTrainer(
        _Scenes(scenes),
        len(scenes.class_names),
        config=TRAINING,
        checkpoint_dir=folder,
        ignore_index=[IGNORE_VALUE],
        device="cpu",
    )
    trainer.fit(lambda p: print(f"  {p.label}", flush=True))
    indices = range(len(scenes.labels))
    probs = np.stack([p.cpu().numpy() for p in trainer.predict(indices)])
    np.save(cached, probs)
    return probs


def score(
    scenes: SyntheticScenes, probs: np.ndarray, config: FinderConfig
) -> dict[str, int]:
    """Planted errors found (with the right class, the right type) and
    patches mostly on planted errors."""
    patches, _ = find_label_errors(
        scenes.labels,
        probs,
        class_names=scenes.class_names,
        ignore_index=[IGNORE_VALUE],
        config=config,
    )
    errors = np.zeros(scenes.labels.shape, dtype=bool)
    for e in scenes.planted:
        errors[e.image_index] |= e.mask
    r = recovery_by_type(patches, scenes.known_errors())["all"]
    on_errors = sum(
        (p.full_mask() & errors[p.image_index]).sum() * 2 >= p.area
        for p in patches
    )
    return {
        "planted": r.total,
        "found": r.found,
        "right_class": r.suggested_right,
        "right_type": r.typed_right,
        "patches_on_errors": int(on_errors),
        "patches": len(patches),
    }


def parse_config(text: str) -> dict:
    """``"a=1,b=0.5"`` -> ``{"a": 1, "b": 0.5}``."""
    if not text:
        return {}
    pairs = (item.split("=", 1) for item in text.split(","))
    return {k: int(v) if v.isdigit() else float(v) for k, v in pairs}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument(
        "--config",
        action="append",
        default=None,
        help="FinderConfig fields, e.g. min_confidence=0.15 (repeatable; "
        "default: the defaults)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/trained-demo")
    )
    args = parser.parse_args(argv)

    print(
        "| config | seed | found (right class, right type) "
        "| patches on errors |"
    )
    print("| --- | --- | --- | --- |")
    for seed in args.seeds:
        scenes = make_scenes(args.images, height=240, width=320, seed=seed)
        folder = args.out / f"seed{seed}-n{args.images}"
        probs = out_of_fold_probs(scenes, folder)
        for text in args.config or [""]:
            r = score(scenes, probs, FinderConfig(**parse_config(text)))
            print(
                f"| {text or 'defaults'} | {seed} | {r['found']}/"
                f"{r['planted']} ({r['right_class']}, {r['right_type']}) | "
                f"{r['patches_on_errors']}/{r['patches']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
