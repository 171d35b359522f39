"""Seconds per 1000 samples written: pass 2's writes as the pipeline does
them (each sample's fields set, ``save_context`` bulk-writing a batch)
against one ``set_values`` per field and batch, on a private mongod.

Each sample gets ``--patches`` detections with 32x32 masks, an error
score and an in-memory corrected mask (CamVid's 360x480), as a run
writes them. Interleaved, ``--repeats`` times.

    python bench/bench_writes.py --samples 500 --repeats 3
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
sys.path[:0] = [str(REPO / "tests")]

import conftest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--patches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    conftest._setup_fiftyone_env()
    import fiftyone as fo

    dataset = fo.Dataset()
    dataset.add_samples(
        [fo.Sample(filepath=f"/tmp/{i}.jpg") for i in range(args.samples)]
    )
    rng = np.random.default_rng(0)
    masks = rng.random((args.patches, 32, 32)) < 0.5
    corrected = rng.integers(0, 11, (360, 480), dtype=np.uint8)

    def detections():
        return fo.Detections(
            detections=[
                fo.Detection(
                    label="car",
                    bounding_box=[0.1, 0.1, 0.05, 0.05],
                    mask=m,
                    confidence=0.5,
                    error_probability=0.4,
                    given_label="road",
                    suggested_label="car",
                    error_type="general",
                    issue=None,
                    area=int(m.sum()),
                )
                for m in masks
            ]
        )

    def per_sample(key: str) -> None:
        with dataset.save_context(batch_size=args.batch_size) as context:
            for sample in dataset.iter_samples():
                sample[f"{key}_patches"] = detections()
                sample[f"{key}_score"] = 0.1
                sample[f"{key}_corrected"] = fo.Segmentation(mask=corrected)
                context.save(sample)

    def set_values(key: str) -> None:
        ids = dataset.values("id")
        for i in range(0, len(ids), args.batch_size):
            batch = ids[i : i + args.batch_size]
            n = len(batch)
            values = {
                f"{key}_patches": [detections() for _ in range(n)],
                f"{key}_score": [0.1] * n,
                f"{key}_corrected": [
                    fo.Segmentation(mask=corrected) for _ in range(n)
                ],
            }
            view = dataset.select(batch, ordered=True)
            for field, vals in values.items():
                view.set_values(field, vals, validate=False)

    ways = {"save_context": per_sample, "set_values": set_values}
    times: dict[str, list[float]] = {w: [] for w in ways}
    for rep in range(args.repeats):
        for way, write in ways.items():
            key = f"w{rep}{way[:3]}"
            start = time.perf_counter()
            write(key)
            seconds = time.perf_counter() - start
            times[way].append(1000 * seconds / args.samples)
            for suffix in ("patches", "score", "corrected"):
                dataset.delete_sample_field(f"{key}_{suffix}")
    print(
        json.dumps(
            {
                "samples": args.samples,
                "patches_per_sample": args.patches,
                "seconds_per_1000_samples": {
                    w: round(statistics.median(t), 1) for w, t in times.items()
                },
                "all": {w: [round(x, 1) for x in t] for w, t in times.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
