"""Every ``FinderConfig`` threshold, moved one way and the other (or its
rule turned off), on the native-resolution cells: does each default earn
its place on all three models?

Runs ``evaluate.py`` (FIXER only) for each variant on every model x
injector cell and the clean labels, then prints, per variant and model,
the worst of the three noisy cells: the change in recall (the mean over
500, 1000 and 2000 reviewed patches), in precision of the first 100, in
the corrected labels' mIoU (points), and in the share of the clean labels
flagged (points); and, for the typing thresholds, the patches of injector
A typed as their injected error::

    python bench/realuse/config_ablation.py --split val --jobs 2 \\
        --out bench/results/ablation
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parents[1] / "bench" / "results"
MODELS = ("espnet", "unet-clean", "unet-cv")
NOISY = ("rw-a", "rw-b", "rw-c")

# (name, FinderConfig changes): the defaults' neighbours, or a rule off
VARIANTS = {
    "base": {},
    "min_confidence off": {"min_confidence": 1.0},
    "min_area 8": {"min_area": 8},
    "min_area 32": {"min_area": 32},
    "speck_radius 0": {"speck_radius": 0},
    "boundary_width 0": {"boundary_width": 0},
    "boundary_width 4": {"boundary_width": 4},
    "score_area_scale 16": {"score_area_scale": 16.0},
    "score_area_scale 64": {"score_area_scale": 64.0},
    "prior_strength 0": {"prior_strength": 0.0},
    "prior_strength 0.5": {"prior_strength": 0.5},
    "prior_edge_share off": {"prior_edge_share": 1.0},
    "prior_max_background off": {"prior_max_background": 1.0},
    "min_score 0.05": {"min_score": 0.05},
    "min_score 0.1": {"min_score": 0.1},
    "min_error_probability 0": {"min_error_probability": 0.0},
    "min_error_probability 0.05": {"min_error_probability": 0.05},
    "fn_max_frequency_ratio 0.1": {"fn_max_frequency_ratio": 0.1},
    "fn_max_frequency_ratio 0.5": {"fn_max_frequency_ratio": 0.5},
    "blur_reference 0": {"blur_reference": 0.0},
    "repeat_window 0": {"repeat_window": 0},
    "repeat_window 2": {"repeat_window": 2},
}
# thresholds that only type the patches: injector A's cells
TYPING = {
    "fn_min_inside_share 0": {"fn_min_inside_share": 0.0},
    "fn_min_inside_share 0.2": {"fn_min_inside_share": 0.2},
    "fn_min_inside_share 0.3": {"fn_min_inside_share": 0.3},
    "fn_min_inside_share 0.4": {"fn_min_inside_share": 0.4},
    "fn_min_inside_share 0.5": {"fn_min_inside_share": 0.5},
    "ambiguous_min_rate off": {"ambiguous_min_rate": 1.0},
    "ambiguous_min_given_prob 0": {"ambiguous_min_given_prob": 0.0},
}


def folder(out: Path, name: str) -> Path:
    return out / name.replace(" ", "_")


def runs(args: argparse.Namespace) -> list[list[str]]:
    """The ``evaluate.py`` command lines still to run."""
    todo = []
    for name, changes in {**VARIANTS, **TYPING}.items():
        if name not in args.only:
            continue
        cells = (
            [("rw-a", False)]
            if name in TYPING
            else [(labels, False) for labels in NOISY] + [("rw-a", True)]
        )
        for model in MODELS:
            for labels, clean in cells:
                kind = "clean" if clean else "noisy"
                report = f"{model}-{labels}-{kind}-{args.split}.json"
                if (folder(args.out, name) / report).is_file():
                    continue
                todo.append(
                    [
                        sys.executable,
                        str(HERE / "evaluate.py"),
                        "--labels",
                        str(args.results / labels),
                        *(["--clean"] if clean else []),
                        "--probs",
                        str(args.results / "realuse" / "probs" / model),
                        "--split",
                        args.split,
                        "--no-cleanlab",
                        "--config",
                        json.dumps(changes),
                        "--out",
                        str(folder(args.out, name)),
                    ]
                )
    return todo


def fixer(out: Path, name: str, report: str) -> dict:
    return json.loads((folder(out, name) / report).read_text())["fixer"]


def typed_right(report: dict) -> str:
    """Patches on injector A's errors typed as their error, of all."""
    types = report["types"]
    right = sum(row.get(truth, 0) for truth, row in types.items())
    return f"{right}/{sum(sum(row.values()) for row in types.values())}"


def table(args: argparse.Namespace) -> None:
    print(
        "| variant | "
        + " | ".join(MODELS)
        + " |\n| --- |"
        + " --- |" * len(MODELS)
    )
    for name in VARIANTS:
        if name == "base" or name not in args.only:
            continue
        cells = []
        for model in MODELS:
            recall, first, corrected = [], [], []
            for labels in NOISY:
                report = f"{model}-{labels}-noisy-{args.split}.json"
                new = fixer(args.out, name, report)
                old = fixer(args.out, "base", report)
                recall.append(
                    sum(
                        new[f"recall@{n}"] - old[f"recall@{n}"]
                        for n in (500, 1000, 2000)
                    )
                    / 3
                )
                first.append(new["precision@100"] - old["precision@100"])
                corrected.append(
                    100 * (new["miou_corrected"] - old["miou_corrected"])
                )
            report = f"{model}-rw-a-clean-{args.split}.json"
            flagged = 100 * (
                fixer(args.out, name, report)["flagged_share"]
                - fixer(args.out, "base", report)["flagged_share"]
            )
            cells.append(
                f"{min(recall):+.3f} / {min(first):+.2f} / "
                f"{min(corrected):+.2f} / {flagged:+.1f}"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n| typing | " + " | ".join(MODELS) + " |")
    print("| --- |" + " --- |" * len(MODELS))
    for name in ("base", *TYPING):
        if name not in args.only:
            continue
        cells = [
            typed_right(
                fixer(args.out, name, f"{m}-rw-a-noisy-{args.split}.json")
            )
            for m in MODELS
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="val")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--only",
        nargs="+",
        default=[*VARIANTS, *TYPING],
        metavar="VARIANT",
        help='variants to run, e.g. "min_area 8" (base always)',
    )
    args = parser.parse_args()
    args.only = {"base", *args.only}
    todo = runs(args)
    print(
        f"{len(todo)} runs of evaluate.py, {args.jobs} at a time",
        file=sys.stderr,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one core per run

    def run(cmd: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, env=env)

    with ThreadPoolExecutor(args.jobs) as pool:
        for done, result in enumerate(pool.map(run, todo), start=1):
            if result.returncode:
                sys.exit(result.stderr.decode()[-2000:])
            print(f"\r{done}/{len(todo)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    table(args)


if __name__ == "__main__":
    main()
