"""Where one ``find_label_errors`` run spends its time, per stage, with
pass 1's batches kept for pass 2 (each file read once) and without
(``keep_bytes=0``: read in both passes), interleaved.

One process, one thread (``num_threads=1``), the pipeline called
directly on CamVid inputs (the first ``--images`` of ``--splits``:
noisy masks from ``--labels``, float16 probabilities from ``--probs``),
on a private mongod. Each run is profiled with cProfile; a stage's time
is the cumulative time of its functions:

- reading: the samples' documents, masks and probability files
  (``batches``), both passes;
- pass 1: ``LabelErrorFinder.update``; pass 2: ``LabelErrorFinder.find``;
- writes: pass 2's documents, PNGs and bulk writes (``_sample_values``,
  ``write_sample_fields``);
- tag and explain: each patch's issue, same_confusion and reason
  (``read_patches``, ``_explain``);
- the rest: setup, checks, the swap, views.

    python bench/bench_stages.py --images 96 --repeats 2 \\
        --labels ../main/bench/results/rw-a \\
        --probs ../main/bench/results/realuse/probs/espnet
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import json
import pstats
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

import conftest  # noqa: E402

FIND = "@fixer/fixer/find_label_errors"
DELETE = "@fixer/fixer/delete_label_error_run"
STAGES = {
    "reading": [("_samples.py", "batches"), ("_kept.py", "replay")],
    "pass 1": [("finder.py", "update")],
    "pass 2": [("finder.py", "find")],
    "writes": [
        ("_pipeline.py", "_sample_values"),
        ("_documents.py", "write_sample_fields", "_find_label_errors"),
    ],
    "tag and explain": [
        ("_evidence.py", "read_patches"),
        ("_pipeline.py", "_explain"),
    ],
}


def main() -> None:
    args = _parse_args()
    conftest._setup_fiftyone_env()  # private mongod, before fiftyone
    import fiftyone as fo
    import fiftyone.operators as foo
    from bench_operator import VOID, camvid_dataset, camvid_names

    operator = foo.get_operator(FIND)
    package = type(operator).__module__.rsplit(".", 2)[0]
    pipeline = importlib.import_module(f"{package}.operators._pipeline")
    names = camvid_names(args)
    dataset = camvid_dataset(fo, args, names)
    ways = {"read once": None, "read twice": 0}
    for rep in range(args.repeats):
        order = list(ways) if rep % 2 == 0 else list(ways)[::-1]
        for way in order:
            params = pipeline.FindParams(
                gt_field="ground_truth",
                probs_field="probs_path",
                ignore_values=(VOID,),
                run_key=f"stages{rep}",
                num_threads=1,
                keep_bytes=ways[way],
            )
            profile = cProfile.Profile()
            start = time.perf_counter()
            profile.enable()
            for _ in pipeline.run_find_label_errors(dataset, params):
                pass
            profile.disable()
            seconds = time.perf_counter() - start
            per_image = _stages(pstats.Stats(profile), seconds, len(names))
            print(
                json.dumps(
                    {
                        "repeat": rep,
                        "run": way,
                        "seconds": round(seconds, 2),
                        "ms_per_image": per_image,
                    }
                ),
                flush=True,
            )
            foo.execute_operator(
                DELETE,
                dict(dataset=dataset, params={"run_key": params.run_key}),
            ).raise_exceptions()


def _stages(stats: pstats.Stats, seconds: float, images: int) -> dict:
    """Milliseconds per image of each stage (cumulative time of its
    functions; with a third name, of their calls from that function),
    the rest and the total."""
    out = {}
    for stage, functions in STAGES.items():
        total = 0.0
        for (path, _, name), (
            _,
            _,
            _,
            cumulative,
            callers,
        ) in stats.stats.items():
            for function in functions:
                if function[:2] != (Path(path).name, name):
                    continue
                if len(function) == 2:
                    total += cumulative
                else:
                    total += sum(
                        c[3] for f, c in callers.items() if f[2] == function[2]
                    )
        out[stage] = round(1000 * total / images, 1)
    out["rest"] = round(1000 * seconds / images - sum(out.values()), 1)
    out["total"] = round(1000 * seconds / images, 1)
    return out


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--splits", nargs="+", default=["train"])
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--probs", type=Path, required=True)
    return parser.parse_args()


if __name__ == "__main__":
    main()
