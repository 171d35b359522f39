"""The whole ``find_label_errors`` operator run (reading every file, both
passes, every write) against cleanlab's ``find_label_issues`` on the same
CamVid inputs, interleaved in one process, as ratios.

Inputs: the first ``--images`` CamVid images of ``--splits`` (train
first, then val) with an injector's
noisy labels (``--labels``, e.g. ``bench/results/rw-a``) and a model's
cached float16 probabilities (``--probs``, e.g.
``bench/results/realuse/probs/espnet``). FiftyOne runs on a private
mongod (the tests' isolation). Each repeat runs, in rotating order:
cleanlab (reading the same files, then ``find_label_issues``, n_jobs=1),
and the operator with each ``--workers`` (1 = one process; 2 = rank 0 plus
one started rank), and with ``--one-thread`` also one process with one
thread (``num_threads=1``). A run's outputs are deleted after it, untimed.
Prints one JSON line per run, then the median ratios.

    python bench/bench_operator.py --images 233 --repeats 3 \\
        --labels ../main/bench/results/rw-a \\
        --probs ../main/bench/results/realuse/probs/espnet
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench" / "camvid")]

import conftest  # noqa: E402
from inject import NUM_CLASSES, VOID, read_png  # noqa: E402

CAMVID = REPO.parent / "shared" / "data" / "camvid"
FIND = "@fixer/fixer/find_label_errors"
DELETE = "@fixer/fixer/delete_label_error_run"


def main() -> None:
    args = _parse_args()
    conftest._setup_fiftyone_env()  # private mongod, before fiftyone
    import fiftyone as fo
    import fiftyone.operators as foo

    names = camvid_names(args)
    dataset = camvid_dataset(fo, args, names)
    runs = ["cleanlab"] + [f"workers={w}" for w in args.workers]
    if args.one_thread:
        runs.append("workers=1,threads=1")
    times: dict[str, list[float]] = {r: [] for r in runs}
    for rep in range(args.repeats):
        order = runs[rep % len(runs) :] + runs[: rep % len(runs)]
        for run in order:
            if run == "cleanlab":
                seconds, extra = _cleanlab(args, names)
            else:
                config = dict(c.split("=") for c in run.split(","))
                seconds, extra = _operator(
                    foo,
                    dataset,
                    int(config["workers"]),
                    int(config.get("threads", 0)) or None,
                    rep,
                )
            times[run].append(seconds)
            line = {"repeat": rep, "run": run, "seconds": round(seconds, 2)}
            print(json.dumps({**line, **extra}), flush=True)
    medians = {r: statistics.median(t) for r, t in times.items()}
    print(
        json.dumps(
            {
                "images": len(names),
                "median_seconds": {r: round(t, 2) for r, t in medians.items()},
                "cleanlab_over_operator": {
                    r: round(medians["cleanlab"] / medians[r], 2)
                    for r in runs[1:]
                },
                "scaling_1_to_2": round(
                    medians["workers=1"] / medians["workers=2"], 2
                )
                if {"workers=1", "workers=2"} <= medians.keys()
                else None,
            }
        ),
        flush=True,
    )


def camvid_names(args) -> list[str]:
    """``split/name`` of the first ``args.images`` images with
    probabilities in ``args.probs``, split by split."""
    return [
        f"{split}/{p.stem}"
        for split in args.splits
        for p in sorted((args.probs / split).glob("*.npy"))
    ][: args.images]


def camvid_dataset(fo, args, names: list[str]):
    """A new dataset of those CamVid images with ``args.labels``' noisy
    masks and the probability files."""
    dataset = fo.Dataset()
    dataset.add_samples(
        [
            fo.Sample(
                filepath=str(CAMVID / "images" / f"{n}.jpg"),
                metadata=fo.ImageMetadata(width=480, height=360),
                ground_truth=fo.Segmentation(
                    mask_path=str(args.labels / "noisy" / f"{n}.png")
                ),
                probs_path=str(args.probs / f"{n}.npy"),
            )
            for n in names
        ]
    )
    classes = json.loads((CAMVID / "classes.json").read_text())["classes"]
    dataset.default_mask_targets = {**dict(enumerate(classes)), VOID: "void"}
    dataset.save()
    return dataset


def _operator(
    foo, dataset, workers: int, threads: int | None, rep: int
) -> tuple[float, dict]:
    key = f"bench{rep}w{workers}t{threads or 0}"
    start = time.perf_counter()
    result = foo.execute_operator(
        FIND,
        dict(
            dataset=dataset,
            params={
                "gt_field": "ground_truth",
                "probs_field": "probs_path",
                "ignore_values": str(VOID),
                "run_key": key,
                "workers": workers,
                **({"num_threads": threads} if threads else {}),
            },
        ),
    )
    result.raise_exceptions()
    seconds = time.perf_counter() - start
    dataset.reload()
    summary = dataset.load_run_results(key).summary
    patches = sum(t.get("patches", 0) for t in summary["totals"].values())
    foo.execute_operator(
        DELETE, dict(dataset=dataset, params={"run_key": key})
    ).raise_exceptions()
    return seconds, {"patches": patches}


def _cleanlab(args, names: list[str]) -> tuple[float, dict]:
    from cleanlab.segmentation.filter import find_label_issues

    start = time.perf_counter()
    labels = np.stack(
        [read_png(args.labels / "noisy" / f"{n}.png") for n in names]
    )
    probs = np.stack([np.load(args.probs / f"{n}.npy") for n in names]).astype(
        np.float32
    )
    # cleanlab cannot ignore pixels: void takes the model's argmax
    labels = np.where(labels == VOID, probs.argmax(axis=1), labels)
    read = time.perf_counter() - start
    issues = find_label_issues(labels, probs, n_jobs=1, verbose=False)
    seconds = time.perf_counter() - start
    assert probs.shape[1] == NUM_CLASSES
    return seconds, {
        "reading_seconds": round(read, 2),
        "issue_pixels": int(issues.sum()),
    }


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=233)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--one-thread", action="store_true")
    parser.add_argument("--splits", nargs="+", default=["train"])
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--probs", type=Path, required=True)
    return parser.parse_args()


if __name__ == "__main__":
    main()
