"""Tunes the finder's defaults on the CamVid known-error benchmark's TRAIN
split (``--split val`` reports a setting chosen there; never choose on it).

Loads the noisy labels, cached out-of-fold probabilities and planted
errors of a finished run once, then scores FIXER under each setting of a
small grid of ``FinderConfig`` fields and prints one line of metrics per
setting (JSON with ``--json``). Every setting runs the whole dataset
(class statistics come from all images, as in real use); the metrics are
computed on the images of one split.

    python bench/camvid/tune.py --factor 4 --epochs 12 --lr 5e-3 \\
        --out bench/results/camvid-f4 \\
        --grid min_score=0,0.2,0.4 speck_radius=0,1
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json

import numpy as np
from evaluate import Scorer, fixer_image, load_run, load_truth, run_fixer
from inject import add_arguments as add_common_arguments
from probabilities import add_arguments as add_probability_arguments

from fixer_core import FinderConfig


def parse_grid(items: list[str]) -> list[dict]:
    """``["a=1,2", "b=x"]`` -> every combination as ``{"a": 1, "b": "x"}``."""
    axes = []
    for item in items:
        name, values = item.split("=", 1)
        axes.append([(name, _number(v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)]


def _number(text: str) -> int | float:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def print_false_flags(
    patches: list[list], truths: dict, class_names: list[str], top: int
) -> None:
    """Prints the patterns whose patches hold the most pixels that are not
    planted errors."""
    tally = collections.defaultdict(lambda: np.zeros(4, np.int64))
    for i, truth in truths.items():
        error_ids = truth["error_map"][2]
        for p in patches[i]:
            x, y, w, h = p.box
            on_error = int(
                (error_ids[y : y + h, x : x + w][p.mask] >= 0).sum()
            )
            whole = "whole" if p.coverage > 0.9 else "part"
            key = (class_names[p.given_label], class_names[p.suggested_label])
            tally[(*key, p.error_type, whole)] += (
                on_error * 2 >= p.area,
                1,
                on_error,
                p.area,
            )
    rows = sorted(tally.items(), key=lambda kv: kv[1][2] - kv[1][3])
    for (given, sugg, kind, whole), (right, n, on, area) in rows[:top]:
        print(
            f"  {given:>10} -> {sugg:<10} {kind:<14} {whole:<5} right "
            f"patches {right}/{n}, false pixels {area - on}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    add_probability_arguments(parser)
    parser.add_argument("--grid", nargs="*", default=[])
    parser.add_argument("--split", choices=("train", "val"), default="train")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="also print the N (given, suggested, type) patterns with the "
        "most falsely flagged pixels",
    )
    args = parser.parse_args()

    run = load_run(args)
    meta, noisy = run.meta, run.noisy
    evaluated, errors = run.evaluated(args.split)
    truths = {i: load_truth(run.layout, run.images[i]) for i in evaluated}

    for setting in parse_grid(args.grid) or [{}]:
        config = FinderConfig(**setting)
        patches, _ = run_fixer(
            noisy,
            run.paths,
            meta["class_names"],
            device="cpu",
            batch_size=16,
            config=config,
        )
        scorer = Scorer(errors)
        for i in evaluated:
            scorer.add(
                truths[i], **fixer_image(truths[i], noisy[i], patches[i])
            )
        r = scorer.result(typed=True)
        if args.pairs:
            print_false_flags(patches, truths, meta["class_names"], args.pairs)
        row = {
            "setting": setting,
            "recall": {k: v["value"] for k, v in r["recall"].items()},
            "found": {k: v["num"] for k, v in r["recall"].items()},
            "patch_precision": r["patch_precision"]["value"],
            "patch_precision_large": r["patch_precision_large"]["value"],
            "top_patch_precision": r["top_patch_precision"]["value"],
            "pixel_f1": r["pixel_f1"],
            "auprc": r["auprc"],
            "suggestion_accuracy": r["suggestion_accuracy"],
            "type_accuracy": r["type_accuracy"]["all"]["value"],
            "flagged_share": r["flagged_share"],
            "corrected_miou": r["corrected_miou"],
        }
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        found = " ".join(
            f"{r['recall'][t]['num']}/{r['recall'][t]['den']}"
            for t in ("general", "ambiguous", "false_negative")
        )
        print(
            f"{setting} | found {found} | pp "
            f"{row['patch_precision']:.3f}/{row['patch_precision_large']:.3f}"
            f" top-100 {row['top_patch_precision']:.2f} | F1 "
            f"{row['pixel_f1']:.3f} AP {row['auprc']:.3f} | sugg "
            f"{row['suggestion_accuracy']:.3f} types "
            f"{row['type_accuracy']:.2f} | flagged "
            f"{row['flagged_share']:.3f} | mIoU {row['corrected_miou']:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
