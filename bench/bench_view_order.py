"""What putting the images in the order of their views costs
(``fixer_core.view_order``, run once per operator run before pass 1).

Reads the signatures of CamVid's 468 images (a quarter-size decode each,
as the operator does) and orders them; then orders shuffled synthetic
videos of ``--sizes`` frames (a random walk of signatures) and checks
that consecutive frames end up next to each other; with ``--fiftyone
N``, what iterating N samples in that order costs FiftyOne (an ordered
``select``, as the operator scores them; a temporary dataset in the
default database)::

    python bench/bench_view_order.py --sizes 5000 20000 50000 --fiftyone 20000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from fixer_core import view_order
from fixer_core.neighbours import SIGNATURE_SHAPE, file_signature

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"


def shuffled_video(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit signatures of a slowly changing scene, and the frames'
    times, both in a random order."""
    rng = np.random.default_rng(seed)
    width = SIGNATURE_SHAPE[0] * SIGNATURE_SHAPE[1]
    scene = rng.normal(size=width)
    frames = np.empty((n, width), np.float32)
    for t in range(n):
        scene += 0.15 * rng.normal(size=width)
        frames[t] = scene / np.linalg.norm(scene)
    times = rng.permutation(n)
    return frames[times], times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--fiftyone", type=int, metavar="N")
    args = parser.parse_args()
    paths = sorted(CAMVID.glob("images/*/*.jpg"))
    began = time.perf_counter()
    signatures = [file_signature(p) for p in paths]
    read = time.perf_counter() - began
    began = time.perf_counter()
    order = view_order(signatures)
    ordered = time.perf_counter() - began
    print(
        f"CamVid, {len(paths)} images: signatures {read:.2f} s "
        f"({1000 * read / len(paths):.2f} ms each), order {ordered:.3f} s "
        f"({'reordered' if order is not None else 'kept'})"
    )
    for n in args.sizes:
        frames, times = shuffled_video(n)
        began = time.perf_counter()
        order = view_order(frames)
        seconds = time.perf_counter() - began
        steps = np.abs(np.diff(times[order])) if order is not None else None
        share = float(np.mean(steps == 1)) if steps is not None else 0.0
        print(
            f"shuffled video, {n} frames: order {seconds:.1f} s, "
            f"consecutive frames next to each other: {share:.3f}"
        )

    if args.fiftyone:
        ordered_select(args.fiftyone)


def ordered_select(n: int) -> None:
    """Iterates ``n`` samples in the dataset's order and in a shuffled
    ordered ``select``; prints both times."""
    import fiftyone as fo

    dataset = fo.Dataset()
    try:
        dataset.add_samples(
            [fo.Sample(filepath=f"/tmp/frame-{i}.jpg") for i in range(n)],
            progress=False,
        )
        ids = dataset.values("id")
        order = np.random.default_rng(0).permutation(n)
        view = dataset.select([ids[i] for i in order], ordered=True)
        for name, samples in (
            ("the dataset's", dataset),
            ("the views'", view),
        ):
            began = time.perf_counter()
            count = sum(1 for _ in samples.select_fields().iter_samples())
            seconds = time.perf_counter() - began
            print(
                f"FiftyOne, {count} samples in {name} order: {seconds:.2f} s"
            )
    finally:
        dataset.delete()


if __name__ == "__main__":
    main()
