"""Milliseconds per image of each step of ``fixer_core.find_label_errors``
(both passes, in memory) on cached CamVid probabilities, from timers
around the finder's functions (no profiler: its per-call overhead would
weigh on the many small calls of pass 2).

    python bench/bench_core_steps.py --images 96 \\
        --labels ../main/bench/results/rw-a \\
        --probs ../main/bench/results/realuse/probs/espnet

The functions are looked up by name in ``fixer_core.finder``, so the
script times any checkout first on ``PYTHONPATH``: alternate two
checkouts in one shell loop to compare them (the machine is shared).
``update`` and ``find`` are the two passes; ``_prepare`` (the input
checks) runs in both; the other steps are pass 2's.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "camvid"))
from compare_outputs import read_cell  # noqa: E402
from inject import VOID  # noqa: E402

import fixer_core  # noqa: E402
from fixer_core import finder  # noqa: E402

FUNCTIONS = (
    "_pixel_suggestions",
    "label_regions",
    "_apply_region_suggestions",
    "find_patch_geometry",
    "_mean_probs",
    "channel_argmax",
    "find_label_shift",
    "odd_one_out",
    "_with_shift_cause",
)
METHODS = ("find", "update", "_prepare", "_make_patches", "_odd_patches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--split", default="train")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--probs", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    labels, probs = read_cell(args.labels, args.probs, args.split, args.images)
    seconds: dict[str, float] = {}
    for name in FUNCTIONS:
        if hasattr(finder, name):
            _time(finder, name, name, seconds)
    for name in METHODS:
        _time(finder.LabelErrorFinder, name, name, seconds)
    _time(finder.RepeatLinker, "link", "repeats.link", seconds)
    start = time.perf_counter()
    patches, _ = fixer_core.find_label_errors(
        labels, probs, ignore_index=[VOID], batch_size=8
    )
    total = time.perf_counter() - start
    out = {"core": str(Path(fixer_core.__file__).parent)}
    out["ms_per_image"] = {
        k: round(1000 * v / len(labels), 2)
        for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])
    }
    out["ms_per_image"]["total"] = round(1000 * total / len(labels), 2)
    out["patches"] = len(patches)
    print(json.dumps(out), flush=True)


def _time(owner, name: str, key: str, seconds: dict) -> None:
    """Wraps ``owner.name`` to add its wall time to ``seconds[key]``."""
    function = getattr(owner, name)

    @functools.wraps(function)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start

    setattr(owner, name, timed)


if __name__ == "__main__":
    main()
