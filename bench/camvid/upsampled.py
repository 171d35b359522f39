"""The CamVid known-error benchmark at a higher resolution: a finished
run's labels and planted errors upsampled ``--up`` times (nearest) and its
probabilities upsampled bilinearly, as most segmentation models' outputs
are, so the model's blur grows with the image. FIXER (streamed, default
config unless ``--config`` overrides it) and cleanlab (all in memory) score
the same upsampled inputs; prints one markdown row per method and split
(the metrics of ``evaluate.py``).

    python bench/camvid/upsampled.py --factor 4 --epochs 12 --lr 5e-3 \\
        --out bench/results/camvid-f4 --up 4
    python bench/camvid/upsampled.py ... --up 4 --config spatial_reference=0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from evaluate import (
    Scorer,
    cleanlab_image,
    fixer_image,
    load_run,
    load_truth,
    recall_by_weak,
    require_cleanlab,
    run_cleanlab,
    run_fixer,
    weak_classes,
)
from inject import add_arguments as add_common_arguments
from probabilities import add_arguments as add_probability_arguments
from tune import parse_grid

from fixer_core import FinderConfig

BATCH = 8


def upsample_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """``labels`` resized to ``height x width``, nearest neighbour."""
    return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)


def upsample_probs(path: Path, height: int, width: int) -> np.ndarray:
    """The cached ``(K, h, w)`` probabilities at ``path`` resized bilinearly
    to ``(K, height, width)`` and renormalized."""
    small = np.load(path).astype(np.float32)
    large = cv2.resize(
        small.transpose(1, 2, 0),
        (width, height),
        interpolation=cv2.INTER_LINEAR,
    )
    large /= large.sum(axis=2, keepdims=True)
    return large.transpose(2, 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    add_probability_arguments(parser)
    parser.add_argument("--up", type=int, default=4, help="upsampling factor")
    parser.add_argument("--splits", default="val,train")
    parser.add_argument(
        "--config", nargs="*", default=[], help="FinderConfig overrides"
    )
    parser.add_argument("--no-cleanlab", action="store_true")
    args = parser.parse_args()
    if not args.no_cleanlab:
        require_cleanlab()

    run = load_run(args)
    height, width = (args.up * s for s in run.noisy.shape[1:])

    def labels(array: np.ndarray) -> np.ndarray:
        return upsample_labels(array, height, width)

    def load(paths: list) -> np.ndarray:
        return np.stack([upsample_probs(p, height, width) for p in paths])

    noisy = np.stack([labels(x) for x in run.noisy])
    overrides = parse_grid(args.config)[0] if args.config else {}
    config = FinderConfig(**overrides)
    patches, summary = run_fixer(
        noisy,
        run.paths,
        run.meta["class_names"],
        device="cpu",
        batch_size=BATCH,
        config=config,
        load=load,
    )
    if not args.no_cleanlab:
        issues, quality, argmax = run_cleanlab(noisy, run.paths, load)

    print(
        f"{height}x{width} (x{args.up}), {config}\n\n"
        "| split, method | recall general / ambiguous / false negative | "
        "patch precision all / 50+ px (patches) | top-100 precision | "
        "pixel F1 | AUPRC | suggestion accuracy | mIoU corrected | "
        "flagged |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    weak = weak_classes(summary, run.meta["class_names"])
    weak_lines = []
    for split in args.splits.split(","):
        evaluated, errors = run.evaluated(split)
        methods = ["fixer"] + ([] if args.no_cleanlab else ["cleanlab"])
        scorers = {m: Scorer(errors) for m in methods}
        for i in evaluated:
            small = load_truth(run.layout, run.images[i])
            truth = {
                "clean": labels(small["clean"]),
                "error_map": np.stack([labels(m) for m in small["error_map"]]),
            }
            scorers["fixer"].add(
                truth, **fixer_image(truth, noisy[i], patches[i])
            )
            if not args.no_cleanlab:
                scorers["cleanlab"].add(
                    truth,
                    **cleanlab_image(
                        truth, noisy[i], issues[i], quality[i], argmax[i]
                    ),
                )
        for method, scorer in scorers.items():
            r = scorer.result(typed=False)
            recall = " / ".join(
                f"{r['recall'][t]['num']}/{r['recall'][t]['den']}"
                for t in ("general", "ambiguous", "false_negative")
            )
            pp, large = r["patch_precision"], r["patch_precision_large"]
            top = r["top_patch_precision"]["value"]
            print(
                f"| {split}, {method} | {recall} | {pp['value']:.3f} / "
                f"{large['value']:.3f} ({pp['den']}) | "
                f"{top:.2f} | {r['pixel_f1']:.3f} | "
                f"{r['auprc']:.3f} | {r['suggestion_accuracy']:.3f} | "
                f"{r['corrected_miou']:.3f} | {r['flagged_share']:.3f} |",
                flush=True,
            )
            by_weak = recall_by_weak(r, weak)
            weak_lines.append(
                f"{split}, {method}: "
                + "; ".join(
                    f"{part} {c['num']}/{c['den']}"
                    for part, c in by_weak.items()
                )
            )
    print(
        "\nRecall of the errors involving classes the model barely predicts"
        f" ({', '.join(summary['weakly_predicted']) or 'none'}) and of the"
        " others:"
    )
    print("\n".join(weak_lines))


if __name__ == "__main__":
    main()
