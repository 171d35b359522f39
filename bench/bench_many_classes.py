"""The finder against the number of classes, at equal model accuracy.

With many classes a model spreads its probability thinner and the prior
correction lifts the noise of every rare class; ``margin_classes`` keeps
that tail out of each patch's margin. This measures the finder as classes
are added (``--config margin_classes=1000`` for margins over every class),
on generated data where the truth is known: Zipf-distributed classes on
blocky label maps (8x8 cells, 5% of the cells relabelled to another
class), scored by a simulated model that carries the labels' prior as a
trained one does (logits: smooth Gaussian noise + log class frequency +
``boost`` on the true class). For each number of classes the boost is set
so that the model's pixel accuracy reaches each ``--accuracy``; the finder
then runs with its defaults (and ``--config`` overrides).

    python bench/bench_many_classes.py --classes 11 40 150 \\
        --accuracy 0.6 0.78 0.9
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F
from bench_trained_demo import parse_config

from fixer_core import FinderConfig, find_label_errors
from fixer_core.evaluation import KnownError, recovery_by_type

CELLS = 8
WRONG_CELLS = 0.05


def make_data(
    seed: int, n: int, k: int, size: int, boost: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[KnownError]]:
    """Noisy labels, probabilities, true labels and the planted errors."""
    rng = np.random.default_rng(seed)
    freq = 1.0 / np.arange(1, k + 1)
    freq /= freq.sum()
    truth_cells = rng.choice(k, size=(n, CELLS, CELLS), p=freq)
    wrong = rng.random(truth_cells.shape) < WRONG_CELLS
    other = (truth_cells + rng.integers(1, k, size=truth_cells.shape)) % k
    label_cells = np.where(wrong, other, truth_cells)
    cell = size // CELLS

    def upsample(cells: np.ndarray) -> np.ndarray:
        return cells.repeat(cell, axis=1).repeat(cell, axis=2)

    truth, labels = upsample(truth_cells), upsample(label_cells)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, k, size // 8, size // 8, generator=generator)
    logits = F.interpolate(noise, size=(size, size), mode="bilinear")
    logits += torch.as_tensor(np.log(freq), dtype=torch.float32)[:, None, None]
    logits.scatter_add_(
        1,
        torch.as_tensor(truth)[:, None],
        torch.full((n, 1, size, size), boost),
    )
    known = []
    for i, y, x in zip(*np.nonzero(wrong), strict=True):
        mask = np.zeros((size, size), dtype=bool)
        mask[y * cell : (y + 1) * cell, x * cell : (x + 1) * cell] = True
        known.append(
            KnownError(int(i), mask, int(truth_cells[i, y, x]), "general")
        )
    return labels, logits.softmax(dim=1).numpy(), truth, known


def accuracy(boost: float, k: int, size: int) -> float:
    """The simulated model's pixel accuracy (against the true labels)."""
    _, probs, truth, _ = make_data(999, 16, k, size, boost)
    return float((probs.argmax(axis=1) == truth).mean())


def boost_for(target: float, k: int, size: int) -> float:
    """The true-class logit boost giving pixel accuracy ``target``."""
    low, high = 0.0, 12.0
    for _ in range(14):
        mid = (low + high) / 2
        low, high = (
            (mid, high) if accuracy(mid, k, size) < target else (low, mid)
        )
    return (low + high) / 2


def measure(
    k: int, target: float, config: FinderConfig, n: int, size: int, seed: int
) -> dict:
    """Recovery, precision and scores for ``k`` classes at model accuracy
    ``target``."""
    boost = boost_for(target, k, size)
    labels, probs, _, known = make_data(seed, n, k, size, boost)
    patches, _ = find_label_errors(
        labels,
        probs,
        class_names=[f"class{c}" for c in range(k)],
        config=config,
    )
    recovery = recovery_by_type(patches, known)["all"]
    errors = np.zeros(labels.shape, dtype=bool)
    for e in known:
        errors[e.image_index] |= e.mask
    flagged = sum(p.area for p in patches)
    on_errors = sum(
        int((p.full_mask() & errors[p.image_index]).sum()) for p in patches
    )
    scores = np.array([p.score for p in patches])
    return {
        "classes": k,
        "accuracy": round(accuracy(boost, k, size), 3),
        "boost": round(boost, 2),
        "errors": recovery.total,
        "recall": round(recovery.recall, 3),
        "right_class": round(
            recovery.suggested_right / max(recovery.found, 1), 3
        ),
        "pixel_precision": round(on_errors / max(flagged, 1), 3),
        "patches": len(patches),
        "median_score": round(
            float(np.median(scores)) if len(scores) else 0.0, 3
        ),
        "applied": round(
            float(
                np.mean(
                    [
                        p.error_probability >= config.correct_min_probability
                        for p in patches
                    ]
                )
            )
            if len(scores)
            else 0.0,
            3,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--classes", type=int, nargs="+", default=[11, 40, 150]
    )
    parser.add_argument(
        "--accuracy", type=float, nargs="+", default=[0.6, 0.78, 0.9]
    )
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        help="FinderConfig fields, e.g. min_score=0.05 or a=1,b=2 "
        "(repeatable, merged)",
    )
    args = parser.parse_args()
    overrides = {}
    for text in args.config:
        overrides |= parse_config(text)
    config = FinderConfig(**overrides)
    for target in args.accuracy:
        for k in args.classes:
            row = measure(k, target, config, args.images, args.size, args.seed)
            print(json.dumps({**row, "config": overrides}), flush=True)


if __name__ == "__main__":
    main()
