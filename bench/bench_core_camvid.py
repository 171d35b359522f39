"""Seconds per image of ``fixer_core.find_label_errors`` (both passes, in
memory) on cached CamVid probabilities, with a per-stage profile.

    python bench/bench_core_camvid.py --images 48 --threads 1 \\
        --labels ../main/bench/results/rw-a \\
        --probs ../main/bench/results/realuse/probs/espnet

Run it with another checkout first on ``PYTHONPATH`` to compare
versions (interleave the runs: the machine is shared).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "camvid"))
from inject import VOID, read_png  # noqa: E402

import fixer_core  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--probs", type=Path, required=True)
    parser.add_argument(
        "--split",
        default="train",
        help="train (frames 1 s apart) or val (a 15 fps sequence: the "
        "neighbouring frames' rules run)",
    )
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument(
        "--float16",
        action="store_true",
        help="pass the probabilities as stored (float16), as the operator "
        "reads them, instead of float32",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = sorted(p.stem for p in (args.probs / args.split).glob("*.npy"))
    names = names[: args.images]
    labels = np.stack(
        [
            read_png(args.labels / "noisy" / args.split / f"{n}.png")
            for n in names
        ]
    )
    probs = np.stack(
        [np.load(args.probs / args.split / f"{n}.npy") for n in names]
    )
    if not args.float16:
        probs = probs.astype(np.float32)
    profile = cProfile.Profile() if args.profile else None
    start, cpu = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    patches, _ = fixer_core.find_label_errors(
        labels, probs, ignore_index=[VOID], batch_size=8
    )
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    print(
        json.dumps(
            {
                "core": str(Path(fixer_core.__file__).parent),
                "images": len(names),
                "ms_per_image": round(1000 * seconds / len(names), 1),
                "cpu_ms_per_image": round(1000 * cpu / len(names), 1),
                "patches": len(patches),
                "score_sum": round(sum(p.score for p in patches), 6),
            }
        ),
        flush=True,
    )
    if profile:
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()
