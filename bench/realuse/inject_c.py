"""A third error injector for CamVid: one annotator's mistake repeated
over consecutive frames.

Injectors A and B plant each frame's errors on their own, so an error's
neighbouring frames never repeat it. Here a whole object of 200-3000 px
is relabelled to a confusable class (``inject_b.RELABEL_TARGETS``) in a
run of ``k`` consecutive frames of one sequence, as when labels are
propagated or an annotator keeps a mistake:

* ``k`` is drawn from ``RUN_LENGTHS`` with ``RUN_WEIGHTS`` (equal
  shares of 1, 2, 3, 5 and 8 frames);
* the object is tracked: in the next frame the run relabels the
  connected component of the same class that overlaps the previous
  frame's relabelled region most, if their intersection over union is at
  least ``TRACK_IOU``; otherwise (or at the sequence's end, or on a
  component already holding an error) the run stops short;
* a run keeps its target class in all its frames;
* ``RUN_SHARE`` of the eligible objects (in a seeded random order) start
  a run; errors never overlap.

Each frame of a run is an error of its own (type ``repeated``); its
``errors.json`` record adds ``run`` (the run's id), ``run_length`` (the
frames the run got), ``drawn_length`` (the ``k`` drawn) and
``run_frame`` (the frame's position in the run, from 0). The output has
the layout of the other injectors (``Layout``)::

    python bench/realuse/inject_c.py --out bench/results/rw-c
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "camvid"))
from inject import (  # noqa: E402
    CAMVID,
    NUM_CLASSES,
    VOID,
    Error,
    Layout,
    Sample,
    components,
    error_maps,
    error_records,
    write_labels,
    write_meta,
)
from inject_b import (  # noqa: E402
    RELABEL_TARGETS,
    clean_labels,
    injector_cli,
    prepared_meta,
)

ERROR_TYPES = ("repeated",)
RELABEL_AREA = (200, 3000)
RUN_LENGTHS = (1, 2, 3, 5, 8)
RUN_WEIGHTS = (0.2, 0.2, 0.2, 0.2, 0.2)
RUN_SHARE = 0.12
TRACK_IOU = 0.3


@dataclasses.dataclass
class Run:
    """One repeated mistake: its frames' errors and the ``k`` drawn."""

    errors: list[Error]
    drawn: int


def sequence_of(sample: Sample) -> tuple[str, str]:
    """The split and video sequence (name prefix) of a frame."""
    return sample.split, sample.name.split("_")[0]


def next_frame(samples: list[Sample], index: int) -> int | None:
    """The next frame of the same sequence, ``None`` at its end."""
    following = index + 1
    if following < len(samples) and sequence_of(
        samples[following]
    ) == sequence_of(samples[index]):
        return following
    return None


def track(
    clean: np.ndarray, touched: np.ndarray, region: np.ndarray, k: int
) -> np.ndarray | None:
    """The untouched component of class ``k`` in ``clean`` that overlaps
    ``region`` most, if their IoU is at least ``TRACK_IOU``."""
    free = (clean == k) & ~touched
    if not (free & region).any():
        return None
    best = max(components(free), key=lambda c: int((c & region).sum()))
    iou = (best & region).sum() / (best | region).sum()
    return best if iou >= TRACK_IOU else None


def plant_run(
    clean: np.ndarray,
    noisy: np.ndarray,
    touched: np.ndarray,
    samples: list[Sample],
    start: tuple[int, int, np.ndarray],
    target: int,
    drawn: int,
) -> Run:
    """Relabels one object to ``target`` in up to ``drawn`` frames."""
    index, k, region = start
    errors: list[Error] = []
    while region is not None:
        noisy[index][region] = target
        touched[index] |= region
        errors.append(Error(index, region, "repeated", target, k))
        following = next_frame(samples, index)
        if len(errors) == drawn or following is None:
            break
        index = following
        region = track(clean[index], touched[index], region, k)
    return Run(errors, drawn)


def plant_runs(
    clean: np.ndarray, samples: list[Sample], rng: np.random.Generator
) -> tuple[np.ndarray, list[Run]]:
    """Plants the runs into a copy of ``(N, H, W)`` labels."""
    noisy = clean.copy()
    touched = clean == VOID
    objects = [
        (i, k, c)
        for i in range(len(clean))
        for k in range(NUM_CLASSES)
        if k in RELABEL_TARGETS
        for c in components(clean[i] == k)
        if RELABEL_AREA[0] <= c.sum() <= RELABEL_AREA[1]
    ]
    rng.shuffle(objects)
    runs = []
    for i, k, c in objects:
        # every object takes the same draws, started or not
        start, target, drawn = rng.random(), rng.integers(2), rng.random()
        if start >= RUN_SHARE or (c & touched[i]).any():
            continue
        targets = RELABEL_TARGETS[k]
        length = RUN_LENGTHS[np.searchsorted(np.cumsum(RUN_WEIGHTS), drawn)]
        runs.append(
            plant_run(
                clean,
                noisy,
                touched,
                samples,
                (i, k, c),
                targets[target % len(targets)],
                length,
            )
        )
    return noisy, runs


def run_records(
    samples: list[Sample], runs: list[Run]
) -> tuple[list[Error], list[dict], dict]:
    """The errors in id order, their ``errors.json`` records (with their
    runs) and the counts by split and type."""
    errors = [e for run in runs for e in run.errors]
    records, counts = error_records(samples, errors, ERROR_TYPES)
    position = 0
    for run_id, run in enumerate(runs):
        for frame in range(len(run.errors)):
            records[position].update(
                run=run_id,
                run_length=len(run.errors),
                drawn_length=run.drawn,
                run_frame=frame,
            )
            position += 1
    return errors, records, counts


def run_counts(runs: list[Run], samples: list[Sample]) -> dict:
    """How many runs of each length each split got."""
    out: dict[str, dict[int, int]] = {}
    for run in runs:
        split = samples[run.errors[0].index].split
        length = len(run.errors)
        out.setdefault(split, {}).setdefault(length, 0)
        out[split][length] += 1
    return {s: dict(sorted(c.items())) for s, c in out.items()}


def inject(out: Path, seed: int = 0) -> dict:
    """Plants the runs; returns the metadata (skips a finished folder)."""
    layout = Layout(out)
    if (meta := prepared_meta(layout, "inject_c")) is not None:
        return meta
    began = time.perf_counter()
    samples, clean = clean_labels()
    noisy, runs = plant_runs(clean, samples, np.random.default_rng(seed))
    errors, records, counts = run_records(samples, runs)
    write_labels(
        layout, samples, clean, noisy, error_maps(clean, errors, ERROR_TYPES)
    )
    layout.errors.write_text(json.dumps(records, indent=1))
    meta = write_meta(
        layout,
        samples,
        clean,
        noisy,
        counts,
        settings={
            "injector": "c",
            "seed": seed,
            "factor": 1,
            "run_lengths": RUN_LENGTHS,
            "run_weights": RUN_WEIGHTS,
            "run_share": RUN_SHARE,
            "track_iou": TRACK_IOU,
            "relabel_area": RELABEL_AREA,
        },
        camvid=CAMVID,
        error_types=list(ERROR_TYPES),
        runs=run_counts(runs, samples),
    )
    print(
        f"inject_c: {len(runs)} runs, {len(records)} errors {counts}, "
        f"runs by length {meta['runs']}, "
        f"{100 * meta['error_pixel_share']:.2f}% of labelled pixels wrong, "
        f"{time.perf_counter() - began:.0f} s"
    )
    return meta


def main() -> None:
    injector_cli(inject, __doc__)


if __name__ == "__main__":
    main()
