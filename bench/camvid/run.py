"""CamVid known-error benchmark, FIXER vs cleanlab: all three stages.

1. ``inject.py``: plant general, ambiguous and false-negative errors into
   real CamVid labels (train + val, downscaled by ``--factor``, seeded);
2. ``probabilities.py``: out-of-fold probabilities from cross-validated
   U-Nets trained on the noisy labels, cached as float16 ``.npy``;
3. ``evaluate.py``: FIXER and cleanlab on the same labels and
   probabilities, scored against the planted errors on one split.

Every stage skips what is already done (and training resumes from its
checkpoints), so re-running a command continues it. Everything lands in
``--out`` (default ``bench/results/camvid``, git-ignored); the report is
``<out>/runs/<tag>/report-<split>.md`` (and ``.json``). From the
repository root (``pip install -e ".[bench]"`` for cleanlab):

    # the benchmark: 468 images at 180x240, 5 folds x 30 epochs (training
    # runs at about 10 img/s on a 2-core CPU: some 1.5 hours there)
    python bench/camvid/run.py --epochs 30

    # metrics on the train split (where thresholds may be tuned)
    python bench/camvid/run.py --epochs 30 --split train

    # smoke run (seconds on a CPU; the numbers mean nothing)
    python bench/camvid/run.py --factor 4 --limit 40 --epochs 1 --folds 2 \\
        --out bench/results/camvid-smoke

Each stage also runs on its own with the same options, e.g.
``python bench/camvid/evaluate.py --epochs 30 --split train``.
"""

from __future__ import annotations

import argparse
import time

import evaluate
import inject
import probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    inject.add_arguments(parser)
    probabilities.add_arguments(parser)
    evaluate.add_arguments(parser)
    args = parser.parse_args()
    evaluate.require_cleanlab()
    times = {}
    began = time.perf_counter()
    inject.inject(
        camvid=args.camvid, out=args.out, factor=args.factor, seed=args.seed
    )
    times["inject"] = time.perf_counter() - began
    began = time.perf_counter()
    probabilities.compute_probabilities(args)
    times["probabilities"] = time.perf_counter() - began
    began = time.perf_counter()
    evaluate.evaluate(args)
    times["evaluate"] = time.perf_counter() - began
    print(
        "run: stage wall times "
        + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
    )


if __name__ == "__main__":
    main()
