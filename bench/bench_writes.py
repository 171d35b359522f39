"""Seconds per 1000 samples of pass 2's write stage, on a private mongod:
FiftyOne label objects saved through ``save_context`` (the pipeline's
writes before issue 27's round 3) against the documents the pipeline
writes now (``operators/_documents.py``, one bulk write per batch).

The patches are the finder's on real CamVid inputs (``--labels`` noisy
masks, ``--probs`` a model's cached probabilities, the first
``--images`` train images, found untimed); ``--samples`` samples cycle
over them. Each way writes every sample's patches, error score, error
map and corrected mask, as PNG files as a run on masks stored on disk
does (both ways write the same files). Interleaved, ``--repeats`` times.

    python bench/bench_writes.py --samples 400 --repeats 3 \\
        --labels ../main/bench/results/rw-a \\
        --probs ../main/bench/results/realuse/probs/espnet
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench" / "camvid")]

import conftest  # noqa: E402
from inject import VOID, read_png  # noqa: E402

FIND = "@fixer/fixer/find_label_errors"


def main() -> None:
    args = _parse_args()
    conftest._setup_fiftyone_env()  # private mongod, before fiftyone
    import fiftyone as fo
    import fiftyone.operators as foo
    import fixer_testing

    operator = foo.get_operator(FIND)
    package = type(operator).__module__.rsplit(".", 2)[0]
    pipeline = importlib.import_module(f"{package}.operators._pipeline")
    fixer_core = importlib.import_module(f"{package}.fixer_core")

    names = sorted(p.stem for p in (args.probs / "train").glob("*.npy"))
    names = names[: args.images]
    masks = [
        read_png(args.labels / "noisy" / "train" / f"{n}.png") for n in names
    ]
    probs = np.stack(
        [np.load(args.probs / "train" / f"{n}.npy") for n in names]
    )
    patches, _ = fixer_core.find_label_errors(
        np.stack(masks), probs, ignore_index=[VOID], batch_size=8
    )
    per_image = [[] for _ in names]
    for p in patches:
        per_image[p.image_index].append(p)
    class_names = [str(k) for k in range(probs.shape[1])]
    labels = [masks[i % len(names)] for i in range(args.samples)]
    found = [per_image[i % len(names)] for i in range(args.samples)]

    dataset = fo.Dataset()
    dataset.add_samples(
        [fo.Sample(filepath=f"/tmp/{i}.jpg") for i in range(args.samples)]
    )
    ways = {
        "label_objects": fixer_testing.write_with_label_objects,
        "documents": fixer_testing.write_documents,
    }
    times: dict[str, list[float]] = {w: [] for w in ways}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            order = list(ways) if rep % 2 == 0 else list(ways)[::-1]
            for way in order:
                key = f"w{rep}{way[:3]}"
                fields = pipeline.output_fields(key)
                pipeline._declare_fields(dataset, fields, None)
                folder = Path(tmp) / f"corrected-{key}"
                folder.mkdir()
                start = time.perf_counter()
                ways[way](
                    package,
                    dataset,
                    labels,
                    found,
                    class_names,
                    fields,
                    str(folder),
                    batch_size=args.batch_size,
                )
                seconds = time.perf_counter() - start
                times[way].append(1000 * seconds / args.samples)
                for name in fields.values():
                    dataset.delete_sample_field(name)
    print(
        json.dumps(
            {
                "samples": args.samples,
                "patches_per_sample": round(
                    sum(map(len, found)) / args.samples, 1
                ),
                "seconds_per_1000_samples": {
                    w: round(statistics.median(t), 1) for w, t in times.items()
                },
                "all": {w: [round(x, 1) for x in t] for w, t in times.items()},
            }
        )
    )


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--probs", type=Path, required=True)
    return parser.parse_args()


if __name__ == "__main__":
    main()
