"""Runs FIXER once on a cell and pickles its patches and label shifts, for
offline study of the corrected labels (``corrections_study.py``)::

    python bench/realuse/cache_patches.py --labels bench/results/rw-a \\
        --probs bench/results/realuse/probs/unet-cv --split val --out DIR
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import add_cell_arguments, load_cell, run_fixer  # noqa: E402

from fixer_core import FinderConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_cell_arguments(parser)
    parser.add_argument("--config", default="{}", help="FinderConfig JSON")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    cell = load_cell(args.labels, args.probs, args.clean, args.split)
    config = FinderConfig.from_dict(json.loads(args.config))
    patches, finder = run_fixer(cell, config)
    shifts = {i: finder.shift_of(i) for i in range(len(cell.labels))}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{cell.name}.pkl"
    with path.open("wb") as f:
        pickle.dump(
            {
                "patches": patches,
                "shifts": shifts,
                "statistics": finder.statistics.to_dict(),
                "config": config.to_dict(),
                "labels_dir": str(args.labels),
                "probs_dir": str(args.probs),
                "clean": args.clean,
                "split": args.split,
            },
            f,
        )
    print(path, len(patches))


if __name__ == "__main__":
    main()
