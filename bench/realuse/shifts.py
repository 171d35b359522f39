"""Does ``find_label_shift`` find the shifted labels of injector B, and
only those? Runs it on every image's noisy label and the model's argmax::

    python bench/realuse/shifts.py --probs bench/results/realuse/probs/espnet
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "camvid"))
from inject import VOID, Layout, read_png  # noqa: E402

from fixer_core.shift import find_label_shift  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--labels", type=Path, default=REPO / "bench/results/rw-b"
    )
    parser.add_argument("--probs", type=Path, required=True)
    args = parser.parse_args()
    layout = Layout(args.labels)
    meta = json.loads(layout.meta.read_text())
    shifted = {
        (e["split"], e["image"])
        for e in json.loads(layout.errors.read_text())
        if e["type"] == "shift"
    }
    began = time.perf_counter()
    found, false_alarms = 0, 0
    for im in meta["images"]:
        key = (im["split"], im["name"])
        label = read_png(layout.label("noisy", *key)).astype(np.int64)
        label[label == VOID] = -1
        argmax = np.load(args.probs / im["split"] / f"{im['name']}.npy")
        shift = find_label_shift(label, argmax.argmax(0))
        if shift is not None:
            found += key in shifted
            false_alarms += key not in shifted
            print(key, key in shifted, shift.to_dict())
    print(
        f"{found} of {len(shifted)} shifted labels found, {false_alarms} "
        f"other images reported, {len(meta['images'])} images in "
        f"{time.perf_counter() - began:.0f} s"
    )


if __name__ == "__main__":
    main()
