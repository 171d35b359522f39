"""FIXER vs cleanlab on errors repeated over consecutive frames
(``inject_c.py``), by the length of their runs.

Scores one cell as ``evaluate.py`` does (same labels and probabilities for
both methods, same patch order, same rule for a patch finding an error)
and reports, for each run length (the frames a run got):

* runs found after N reviewed patches: share of the runs with any
  frame's error found by the N best patches (a reviewer who meets one
  frame of a run, with FIXER's reason "the next images show the same
  disagreement", has found it);
* frames found after N: share of the runs' frames' errors found;
* frames found after 1000 by their place in the run (first, middle,
  last; runs of 3 frames or more).

The whole-cell numbers of ``evaluate.py`` come with it. cleanlab's
results are cached under ``<out>/cleanlab``. Writes
``<out>/<cell>.json``::

    python bench/realuse/evaluate_runs.py --labels bench/results/rw-c \\
        --probs bench/results/realuse/probs/espnet --split val

Two counterfactuals, for this benchmark only: ``--no-vouching`` runs
FIXER with nothing vouched for by the neighbouring frames (patched in);
``--onset`` scores a run as a run of one frame when its first patch's
previous frame labels the patch as FIXER suggests (at least
``ONSET_SHARE`` of its pixels): the label changed there and the model did
not, as where an annotator's repeated mistake begins. ``--clean`` scores
the clean labels (to count what ``--onset`` lifts there).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from unittest import mock

import numpy as np
from evaluate import (
    REVIEWED,
    VOID,
    Cell,
    Ranked,
    add_cell_arguments,
    evaluate_cleanlab,
    evaluate_fixer,
    load_cell,
    rank_cleanlab,
    rank_fixer,
    run_cleanlab,
    run_fixer,
    summarize,
)

from fixer_core import FinderConfig
from fixer_core.neighbours import MAX_VOUCHED, neighbour_labels, vouched_for
from fixer_core.patches import Patch
from fixer_core.repeats import run_score

ONSET_SHARE = 0.5
SCORE_BINS = (0.075, 0.2, 0.3, 0.4, 0.5, 0.6, 1.01)
LENGTH_BINS = {"1": (1, 1), "2": (2, 2), "3-4": (3, 4), "5-8": (5, 8)}


@dataclasses.dataclass(frozen=True)
class RunError:
    """One frame's error of a run."""

    run: int
    length: int
    frame: int


def load_runs(labels_dir: Path) -> dict[int, RunError]:
    """Each error's run, from ``inject_c.py``'s ``errors.json`` (other
    injectors' errors are runs of one frame)."""
    records = json.loads((labels_dir / "errors.json").read_text())
    return {
        r["id"]: RunError(
            r.get("run", -1 - r["id"]),
            r.get("run_length", 1),
            r.get("run_frame", 0),
        )
        for r in records
    }


def found_ranks(ranked: Ranked) -> dict[int, int]:
    """The rank of the first patch finding each error (``evaluate.curve``'s
    rule: at least half the patch's pixels are injected errors)."""
    hit = ranked.on_error >= 0.5 * np.maximum(ranked.area, 1)
    out: dict[int, int] = {}
    for rank, (h, e) in enumerate(zip(hit, ranked.error, strict=True)):
        if h and e >= 0 and int(e) not in out:
            out[int(e)] = rank
    return out


def _limit(reviewed: int | str) -> int:
    """Patches reviewed: a number, or ``"all"``."""
    return 10**8 if reviewed == "all" else int(reviewed)


def _share(found: int, total: int) -> float | None:
    return round(found / total, 3) if total else None


def recall_by_length(
    errors: Sequence[int], runs: dict[int, RunError], found: dict[int, int]
) -> dict:
    """Runs and frames found after N patches, by run length."""
    out = {}
    for name, (lo, hi) in LENGTH_BINS.items():
        ids = [e for e in errors if lo <= runs[e].length <= hi]
        first: dict[int, int] = {}
        for e in ids:
            rank = found.get(e, 10**9)
            run = runs[e].run
            first[run] = min(first.get(run, 10**9), rank)
        entry: dict = {"runs": len(first), "frames": len(ids)}
        for n in (*REVIEWED, "all"):
            entry[f"runs@{n}"] = _share(
                sum(r < _limit(n) for r in first.values()), len(first)
            )
            entry[f"frames@{n}"] = _share(
                sum(found.get(e, 10**9) < _limit(n) for e in ids), len(ids)
            )
        out[name] = entry
    return out


def recall_by_place(
    errors: Sequence[int],
    runs: dict[int, RunError],
    found: dict[int, int],
    reviewed: int = 1000,
) -> dict:
    """Frames found after ``reviewed`` patches by their place in runs of 3
    frames or more: ``[found, frames]``."""
    out = {"first": [0, 0], "middle": [0, 0], "last": [0, 0]}
    for e in errors:
        run = runs[e]
        if run.length < 3:
            continue
        place = (
            "first"
            if run.frame == 0
            else "last"
            if run.frame == run.length - 1
            else "middle"
        )
        out[place][0] += int(found.get(e, 10**9) < reviewed)
        out[place][1] += 1
    return out


def split_errors(cell: Cell, split: str) -> list[int]:
    """The ids of the split's injected errors."""
    ids = np.unique(cell.error_ids[cell.images(split)])
    return [int(e) for e in ids if e >= 0]


def by_runs(
    cell: Cell, ranked: Ranked, runs: dict[int, RunError], split: str
) -> dict:
    found = found_ranks(ranked)
    errors = split_errors(cell, split)
    return {
        "by_length": recall_by_length(errors, runs, found),
        "by_place@1000": recall_by_place(errors, runs, found),
    }


def vouched_shares(cell: Cell, patches, split: str) -> dict[int, float]:
    """The share of each patch's pixels its neighbouring frames vouch for
    (``fixer_core.neighbours``; by position in ``patches``)."""
    labels = np.where(cell.labels == VOID, -1, cell.labels)
    keep = set(cell.images(split).tolist())
    out = {}
    commons: dict[int, np.ndarray | None] = {}
    for position, p in enumerate(patches):
        i = p.image_index
        if i not in keep or not 0 < i < len(labels) - 1:
            continue
        if i not in commons:
            commons[i] = neighbour_labels(
                labels[i - 1], labels[i], labels[i + 1], (-1,)
            )
        if commons[i] is None:
            continue
        x, y, w, h = p.box
        flagged = np.zeros(labels[i].shape, dtype=bool)
        flagged[y : y + h, x : x + w] = p.mask
        vouched = vouched_for(commons[i], labels[i], flagged)
        out[position] = float(vouched[flagged].mean())
    return out


def _score_bin(score: float) -> str | None:
    """The name of the ``SCORE_BINS`` bin holding ``score``."""
    b = int(np.searchsorted(SCORE_BINS, score, side="right")) - 1
    if not 0 <= b < len(SCORE_BINS) - 1:
        return None
    return f"{SCORE_BINS[b]}-{SCORE_BINS[b + 1]}"


def vouched_hits(cell: Cell, patches, split: str) -> dict:
    """``[injected errors, patches]`` among the runs' first patches more
    than half vouched for, by score (meaningful with ``--no-vouching``:
    the finder drops them otherwise)."""
    shares = vouched_shares(cell, patches, split)
    out = {_score_bin(lo): [0, 0] for lo in SCORE_BINS[:-1]}
    for position, share in shares.items():
        p = patches[position]
        if share <= MAX_VOUCHED or p.repeat_of is not None:
            continue
        x, y, w, h = p.box
        ids = cell.error_ids[p.image_index, y : y + h, x : x + w][p.mask]
        key = _score_bin(p.score)
        if key is not None:
            out[key][0] += int((ids >= 0).sum() >= 0.5 * max(p.area, 1))
            out[key][1] += 1
    return out


@contextlib.contextmanager
def no_vouching(enabled: bool) -> Iterator[None]:
    """Within it, the finder finds nothing vouched for (when enabled)."""
    if not enabled:
        yield
        return
    with mock.patch(
        "fixer_core.finder.vouched_for",
        lambda common, label, flagged: np.zeros_like(flagged),
    ):
        yield


def onset_shares(
    cell: Cell, patches: Sequence[Patch], split: str
) -> dict[tuple[int, int], float]:
    """For each run of two frames or more that starts in ``split`` after
    its first image: the share of its first patch's pixels that the
    previous frame labels with the patch's suggested class."""
    keep = set(cell.images(split).tolist())
    out = {}
    for p in patches:
        i = p.image_index
        if p.repeat_of is not None or p.run_length < 2 or i not in keep:
            continue
        if i - 1 not in keep:
            continue
        x, y, w, h = p.box
        before = cell.labels[i - 1, y : y + h, x : x + w][p.mask]
        out[p.run] = float((before == p.suggested_label).mean())
    return out


def rescore_onsets(
    patches: Sequence[Patch], shares: dict[tuple[int, int], float]
) -> list[Patch]:
    """The patches, those of runs with an onset scored as a run of one."""
    out = []
    for p in patches:
        if shares.get(p.run, 0.0) >= ONSET_SHARE:
            p = dataclasses.replace(
                p, score=run_score(p.score, 1, p.run_length)
            )
        out.append(p)
    return out


def onset_summary(cell: Cell, patches: Sequence[Patch], split: str) -> dict:
    """The rescored runs' first patches: how many, how many on injected
    errors, and how many of each among the N best first patches."""
    keep = set(cell.images(split).tolist())
    firsts = [
        p for p in patches if p.repeat_of is None and p.image_index in keep
    ]
    scores = np.sort([p.score for p in firsts])[::-1]
    shares = onset_shares(cell, patches, split)
    out: dict = {}
    for p in firsts:
        if shares.get(p.run, 0.0) < ONSET_SHARE:
            continue
        x, y, w, h = p.box
        ids = cell.error_ids[p.image_index, y : y + h, x : x + w][p.mask]
        hit = int((ids >= 0).sum() >= 0.5 * max(p.area, 1))
        rank = int((scores > p.score).sum())
        for n in (*REVIEWED, "all"):
            entry = out.setdefault(f"top{n}", [0, 0])
            if rank < _limit(n):
                entry[0] += hit
                entry[1] += 1
    return out


def cached_cleanlab_cell(cell: Cell, cache: Path) -> Cell:
    """The cell with ``evaluate.run_cleanlab``'s cache moved into
    ``cache`` (it caches beside the probabilities' folder)."""
    cache.mkdir(parents=True, exist_ok=True)
    return dataclasses.replace(cell, probs_dir=cache / cell.probs_dir.name)


def print_table(name: str, fixer: dict, cleanlab: dict) -> None:
    print(f"{name}: runs found / frames found, FIXER vs cleanlab")
    for length, f in fixer["by_length"].items():
        c = cleanlab["by_length"][length]
        cols = "  ".join(
            f"@{n} {f[f'runs@{n}']}/{f[f'frames@{n}']} vs "
            f"{c[f'runs@{n}']}/{c[f'frames@{n}']}"
            for n in REVIEWED
        )
        print(f"  k={length} ({f['runs']} runs, {f['frames']} frames) {cols}")
    print(
        f"  by place @1000: FIXER {fixer['by_place@1000']} "
        f"cleanlab {cleanlab['by_place@1000']}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_cell_arguments(parser)
    parser.add_argument("--no-vouching", action="store_true")
    parser.add_argument("--onset", action="store_true")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench/results/realuse/reports-repeated"),
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    cell = load_cell(args.labels, args.probs, args.clean, args.split)
    cell = cached_cleanlab_cell(cell, args.out / "cleanlab")
    runs = load_runs(args.labels)
    with no_vouching(args.no_vouching):
        patches, finder = run_fixer(cell, FinderConfig())
    if args.onset:
        shares = onset_shares(cell, patches, args.split)
        patches = rescore_onsets(patches, shares)
    fixer = evaluate_fixer(cell, patches, finder, args.split)
    fixer["runs"] = by_runs(
        cell, rank_fixer(cell, patches, args.split), runs, args.split
    )
    fixer["vouched_hits"] = vouched_hits(cell, patches, args.split)
    fixer["onsets"] = onset_summary(cell, patches, args.split)
    cleanlab = evaluate_cleanlab(cell, args.split)
    ranked = rank_cleanlab(cell, *run_cleanlab(cell), args.split)
    cleanlab["runs"] = by_runs(cell, ranked, runs, args.split)
    flags = (("no-vouching", args.no_vouching), ("onset", args.onset))
    name = cell.name + "".join(f"-{flag}" for flag, on in flags if on)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "cell": name,
        "split": args.split,
        "fixer": fixer,
        "cleanlab": cleanlab,
        "seconds": time.perf_counter() - began,
    }
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1))
    print_table(name, fixer["runs"], cleanlab["runs"])
    print(f"  vouched first patches by score: {fixer['vouched_hits']}")
    print(f"  first patches with an onset (hits, patches): {fixer['onsets']}")
    print("  whole cell (FIXER/cleanlab): " + summarize(fixer, cleanlab))


if __name__ == "__main__":
    main()
