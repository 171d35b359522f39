"""Checks that two checkouts of FIXER give the same output on cached
CamVid probabilities: ``find_label_errors``' patches (every field), its
summary and the class statistics, compared exactly (tolerance 0: every
float must be equal).

    git archive 18f9226 | tar -x -C /tmp/base
    python bench/compare_outputs.py --base /tmp/base --images 40 \\
        --labels ../main/bench/results/rw-a \\
        --probs ../main/bench/results/realuse/probs/espnet

Each checkout runs in a subprocess with it first on ``PYTHONPATH``; the
probabilities are passed as stored (float16), in batches of 8.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def dumps_of_checkouts(
    script: str, base: Path, extra: tuple[list[str], list[str]] = ([], [])
) -> tuple:
    """Runs ``script --dump FILE`` (with this process's arguments, and
    each run's ``extra`` ones) once with ``base`` and once with this
    checkout on ``PYTHONPATH``; returns the two pickled dumps, base
    first."""
    outputs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, checkout in enumerate((base, REPO)):
            out = Path(tmp) / f"{i}.pkl"
            env = {**os.environ, "PYTHONPATH": str(checkout)}
            subprocess.run(
                [sys.executable, script, "--dump", str(out)]
                + [a for a in sys.argv[1:] if a != "--dump"]
                + extra[i],
                env=env,
                check=True,
            )
            outputs.append(pickle.loads(out.read_bytes()))
    return tuple(outputs)


def main() -> None:
    args = _parse_args()
    if args.dump:
        _dump(args)
        return
    base, new = dumps_of_checkouts(__file__, args.base)
    differences = _differences(base, new, "")
    print(
        f"{len(new['patches'])} patches over {args.images} {args.split} "
        f"images, threads {args.threads}: "
        + ("identical" if not differences else f"{len(differences)} differ")
    )
    for line in differences[:20]:
        print(" ", line)
    sys.exit(1 if differences else 0)


def read_cell(
    labels_dir: Path, probs_dir: Path, split: str, images: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``images`` noisy labels of ``split`` (``bench/camvid/
    inject.py``'s layout) and their cached probabilities, as stored."""
    sys.path.insert(0, str(REPO / "bench" / "camvid"))
    from inject import read_png

    folder = probs_dir / split
    names = sorted(p.stem for p in folder.glob("*.npy"))[:images]
    labels = np.stack(
        [read_png(labels_dir / "noisy" / split / f"{n}.png") for n in names]
    )
    return labels, np.stack([np.load(folder / f"{n}.npy") for n in names])


def _dump(args) -> None:
    import torch

    import fixer_core

    sys.path.insert(0, str(REPO / "bench" / "camvid"))
    from inject import VOID

    torch.set_num_threads(args.threads)
    labels, probs = read_cell(args.labels, args.probs, args.split, args.images)
    patches, summary = fixer_core.find_label_errors(
        labels, probs, ignore_index=[VOID], batch_size=8
    )
    finder = fixer_core.LabelErrorFinder(
        [str(k) for k in range(probs.shape[1])], ignore_index=[VOID]
    )
    for i in range(0, len(labels), 8):
        finder.update(labels[i : i + 8], probs[i : i + 8])
    stats = finder.statistics
    result = {
        "patches": [dataclasses.asdict(p) for p in patches],
        "summary": summary.to_dict(),
        "statistics": {
            f.name: getattr(stats, f.name) for f in dataclasses.fields(stats)
        },
    }
    Path(args.dump).write_bytes(pickle.dumps(result))


def _differences(a, b, path: str) -> list[str]:
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} vs {sorted(b)}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, np.ndarray):
        same = a.shape == b.shape and a.dtype == b.dtype
        return [] if same and np.array_equal(a, b) else [f"{path}: arrays"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--split", default="train")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--probs", type=Path, required=True)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
