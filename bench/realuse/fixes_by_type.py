"""What a run's corrected labels do to each kind of injected error, on one
val cell::

    python bench/realuse/fixes_by_type.py --labels bench/results/rw-b \\
        --probs bench/results/realuse/probs/espnet [--threshold 0.7]

Per kind: the share of its pixels set to the true class ("fixed") and to
another wrong class, the mIoU the labels gain with the corrections
applied to that kind's pixels alone, and the ceiling (every pixel of that
kind set right); then the clean pixels the corrections change and what
they cost. "neighbours": the share of its pixels that the previous and
next labels agree to give the true class, against this label
(``neighbours.odd_one_out``), and the clean pixels they contradict.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corrections_study import odd_maps  # noqa: E402
from evaluate import VOID, load_cell, mean_iou, run_fixer  # noqa: E402

from fixer_core.corrections import apply_patches  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--probs", type=Path, required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--threshold", type=float, default=None)
    args = parser.parse_args()
    cell = load_cell(args.labels, args.probs, False, args.split)
    patches, finder = run_fixer(cell)
    threshold = args.threshold
    if threshold is None:
        threshold = finder.config.correct_min_probability
    idx = cell.images(args.split)
    by_image: dict[int, list] = {}
    for p in patches:
        by_image.setdefault(p.image_index, []).append(p)
    corrected = np.stack(
        [
            apply_patches(
                cell.labels[i],
                by_image.get(int(i), []),
                min_probability=threshold,
                skip_repeats=True,
                shift=finder.shift_of(int(i)),
            )
            for i in idx
        ]
    )
    labels, clean = cell.labels[idx], cell.clean[idx]
    errors = cell.error_ids[idx]
    kinds = sorted(set(cell.error_types.values()))
    kind_of = np.full(max(cell.error_types) + 2, -1, np.int16)
    for e, t in cell.error_types.items():
        kind_of[e] = kinds.index(t)
    kind = np.where(errors >= 0, kind_of[errors], -1)
    valid = clean != VOID
    odd = np.stack(
        [
            np.full(m.shape, -1) if o is None else o
            for m, o in zip(labels, odd_maps(labels), strict=True)
        ]
    )
    base = mean_iou(clean, labels)
    print(
        f"{cell.name}: labels {base:.4f}, corrected "
        f"{mean_iou(clean, corrected):.4f} at {threshold}"
    )
    for k, name in enumerate(kinds):
        m = (kind == k) & valid
        n = int(m.sum())
        fixed = int((corrected[m] == clean[m]).sum())
        kept = int((corrected[m] == labels[m]).sum())
        only = mean_iou(clean, np.where(kind == k, corrected, labels))
        ceiling = mean_iou(clean, np.where(kind == k, clean, labels))
        named = int((odd[m] == clean[m]).sum())
        print(
            f"  {name:15s} {n:8d} px  fixed {fixed / n:.3f}  wrong "
            f"{(n - fixed - kept) / n:.3f}  alone {100 * (only - base):+.2f}"
            f"  ceiling {100 * (ceiling - base):+.2f}"
            f"  neighbours {named / n:.3f}"
        )
    m = (kind < 0) & valid
    cost = mean_iou(clean, np.where(kind < 0, corrected, labels)) - base
    print(
        f"  clean pixels changed {int((corrected[m] != labels[m]).sum())}"
        f"  cost {100 * cost:+.2f}  neighbours contradict "
        f"{int((odd[m] >= 0).sum())}"
    )


if __name__ == "__main__":
    main()
