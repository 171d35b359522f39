"""FIXER vs cleanlab as a reviewer meets them, on one benchmark cell.

A cell is a model's cached probabilities (``model_probs.py`` or the
cross-validated U-Nets of ``bench/camvid/probabilities.py``, all at 360x480)
and a set of labels: an injector's noisy labels (``bench/camvid/inject.py
--factor 1`` or ``inject_b.py``), or the clean labels with nothing injected
(``--clean``). Both methods score exactly the same labels and
probabilities over all 468 images (class statistics come from the whole
dataset, as in real use); metrics are taken on one split.

* recall after N reviewed patches: share of the split's injected errors
  that the N best patches find (a patch finds the error it overlaps most
  when at least half its pixels are injected errors); FIXER's patches in
  its views' order (score order, repeats of the previous image's patches
  after the others), cleanlab's 8-connected components of its issue mask by
  their highest pixel score (1 - label quality);
* precision of the first 100 and 500 patches;
* expected error patches (the sum of FIXER's ``error_probability``) vs
  observed (its patches on injected errors);
* flagged share of the labelled pixels;
* label mIoU vs the clean labels: of the labels scored, and of the run's
  corrected labels (FIXER: patches scoring at least ``correct_min_score``;
  cleanlab: its flagged pixels set to the argmax).

FIXER meets the images as the operator does: in the order of their views
where that differs (``fixer_core.view_order``; ``--shuffle SEED`` feeds
them in a random order first, as a video stored out of time order), or
each on its own with ``--alone``, as in a dataset of photos.

cleanlab's results are cached beside the probabilities. Writes
``<out>/<cell>-<split>.json``::

    python bench/realuse/evaluate.py --labels bench/results/rw-b \\
        --probs bench/results/realuse/probs/espnet --split val
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "camvid"))
from inject import CAMVID, NUM_CLASSES, VOID, Layout, read_png  # noqa: E402

from fixer_core import (  # noqa: E402
    ERROR_TYPES,
    FinderConfig,
    LabelErrorFinder,
    Patch,
)
from fixer_core.corrections import apply_patches  # noqa: E402
from fixer_core.neighbours import file_signature  # noqa: E402
from fixer_core.ordering import view_order  # noqa: E402
from fixer_core.repeats import discount_runs  # noqa: E402

REVIEWED = (100, 500, 1000, 2000)
# ``correct_min_probability`` values whose corrected labels are scored too
CORRECTION_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
BATCH = 8


@dataclasses.dataclass
class Cell:
    """Labels, truth and probabilities of one benchmark cell."""

    name: str
    splits: list[str]
    names: list[str]
    labels: np.ndarray  # (N, H, W) uint8, the labels scored
    clean: np.ndarray  # (N, H, W) uint8
    error_ids: np.ndarray  # (N, H, W) int16, -1 off the errors
    error_types: dict[int, str]
    probs: np.ndarray  # (N, K, H, W) float16
    probs_dir: Path
    signatures: np.ndarray | None = None  # (N, D), None: images unused

    def images(self, split: str) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.splits) == split)

    def reordered(self, order: np.ndarray) -> Cell:
        """The cell with its images in ``order``."""
        return dataclasses.replace(
            self,
            splits=[self.splits[i] for i in order],
            names=[self.names[i] for i in order],
            labels=self.labels[order],
            clean=self.clean[order],
            error_ids=self.error_ids[order],
            probs=self.probs[order],
            signatures=None
            if self.signatures is None
            else self.signatures[order],
        )


def load_cell(
    labels_dir: Path,
    probs_dir: Path,
    clean: bool,
    split: str,
    with_images: bool = True,
) -> Cell:
    """Reads the images of one split of a cell into memory (probabilities
    as float16; with the images' signatures, unless ``with_images`` is
    false)."""
    layout = Layout(labels_dir)
    meta = json.loads(layout.meta.read_text())
    images = [im for im in meta["images"] if im["split"] == split]
    kind = "clean" if clean else "noisy"
    lab = np.stack(
        [
            read_png(layout.label(kind, im["split"], im["name"]))
            for im in images
        ]
    )
    ref = np.stack(
        [
            read_png(layout.label("clean", im["split"], im["name"]))
            for im in images
        ]
    )
    if clean:
        errors = np.full(lab.shape, -1, dtype=np.int16)
        types = {}
    else:
        errors = np.stack(
            [
                np.load(layout.error_map(im["split"], im["name"]))[2]
                for im in images
            ]
        )
        types = {
            r["id"]: r["type"] for r in json.loads(layout.errors.read_text())
        }
    probs = np.stack(
        [
            np.load(probs_dir / im["split"] / f"{im['name']}.npy")
            for im in images
        ]
    ).astype(np.float16, copy=False)
    name = f"{probs_dir.name}-{labels_dir.name}-{kind}-{split}"
    return Cell(
        name,
        [im["split"] for im in images],
        [im["name"] for im in images],
        lab,
        ref,
        errors,
        types,
        probs,
        probs_dir,
        signatures(images_of(images)) if with_images else None,
    )


def images_of(images: list[dict]) -> list[Path]:
    """The CamVid image files of a cell's images."""
    return [
        Path(CAMVID) / "images" / im["split"] / f"{im['name']}.jpg"
        for im in images
    ]


def signatures(paths: Sequence[Path]) -> np.ndarray:
    """``(N, D)`` the images' signatures, as the operator reads them."""
    return np.stack([file_signature(p) for p in paths])


def run_fixer(
    cell: Cell, config: FinderConfig | None = None, alone: bool = False
):
    """FIXER's patches (all images, streamed in batches) and summary.
    ``alone``: each image scored without the images around it, as in a
    dataset of photos (no neighbouring frames, no runs of repeats): the
    finder meets the images out of turn (even positions, then odd), so
    none follows its neighbour, and links no repeats."""
    if alone:
        config = dataclasses.replace(config or FinderConfig(), repeat_window=0)
    finder = LabelErrorFinder(
        [str(k) for k in range(NUM_CLASSES)],
        ignore_index=[VOID],
        config=config,
    )
    n = len(cell.labels)
    batches = [range(i, min(i + BATCH, n)) for i in range(0, n, BATCH)]

    def batch(b):
        return cell.labels[b.start : b.stop], cell.probs[
            b.start : b.stop
        ].astype(np.float32)

    for b in batches:
        finder.update(*batch(b))
    patches = []
    if alone:
        for i in [*range(0, n, 2), *range(1, n, 2)]:
            for image in finder.find(
                *batch(range(i, i + 1)), image_indices=[i]
            ):
                patches += image
        return patches, finder
    sig = cell.signatures
    for b in batches:
        more = b.stop < n
        for image in finder.find(
            *batch(b),
            image_indices=list(b),
            following=cell.labels[b.stop] if more else None,
            signatures=None if sig is None else sig[b.start : b.stop],
            following_signature=sig[b.stop]
            if more and sig is not None
            else None,
        ):
            patches += image
    return discount_runs(patches, finder.run_lengths), finder


def run_cleanlab(cell: Cell) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's issue mask and pixel label quality, cached on disk."""
    cache = cell.probs_dir.parent / f"cleanlab-{cell.name}.npz"
    if cache.is_file():
        data = np.load(cache)
        return data["issues"], data["quality"]
    from cleanlab.segmentation.filter import find_label_issues
    from cleanlab.segmentation.rank import get_label_quality_scores

    probs = cell.probs.astype(np.float32)
    argmax = probs.argmax(axis=1)
    labels = np.where(cell.labels == VOID, argmax, cell.labels)
    issues = find_label_issues(labels, probs, n_jobs=1, verbose=False)
    _, quality = get_label_quality_scores(
        labels, probs, n_jobs=1, verbose=False
    )
    del probs
    np.savez_compressed(cache, issues=issues, quality=quality.astype("f2"))
    return issues, quality.astype(np.float16)


@dataclasses.dataclass
class Ranked:
    """One method's patches on a split, best first."""

    score: np.ndarray
    area: np.ndarray
    on_error: np.ndarray
    error: np.ndarray  # error id the patch overlaps most, -1 if none


def _rank(rows: list[tuple[float, int, int, int]]) -> Ranked:
    rows.sort(key=lambda r: -r[0])
    a = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    return Ranked(a[:, 0], a[:, 1], a[:, 2], a[:, 3].astype(np.int64))


def _overlap(error_ids: np.ndarray) -> tuple[int, int]:
    ids = error_ids[error_ids >= 0]
    if not ids.size:
        return 0, -1
    values, counts = np.unique(ids, return_counts=True)
    return int(ids.size), int(values[counts.argmax()])


@dataclasses.dataclass
class Matched:
    """A patch of the split, against the injected errors under it."""

    patch: Patch
    on_error: int  # its pixels on injected errors
    error: int  # the error id it overlaps most, -1 if none

    @property
    def hit(self) -> bool:
        """Whether at least half its pixels are injected errors."""
        return self.on_error >= 0.5 * max(self.patch.area, 1)


def match(cell: Cell, patches, split: str) -> list[Matched]:
    """The split's patches, each with the injected errors under it."""
    keep = set(cell.images(split).tolist())
    out = []
    for p in patches:
        if p.image_index in keep:
            x, y, w, h = p.box
            ids = cell.error_ids[p.image_index, y : y + h, x : x + w]
            out.append(Matched(p, *_overlap(ids[p.mask])))
    return out


def rank_fixer(cell: Cell, patches, split: str) -> Ranked:
    return _rank_matched(match(cell, patches, split))


def _rank_matched(matched: list[Matched]) -> Ranked:
    # the reviewer's order, as in FIXER's views: each run's first patch by
    # score, then the repeats (keys below 0)
    return _rank(
        [
            (
                m.patch.score - (m.patch.repeat_of is not None),
                m.patch.area,
                m.on_error,
                m.error,
            )
            for m in matched
        ]
    )


def rank_cleanlab(
    cell: Cell, issues: np.ndarray, quality: np.ndarray, split: str
) -> Ranked:
    rows = []
    for i in cell.images(split):
        flagged = issues[i] & (cell.clean[i] != VOID)
        n, comp = cv2.connectedComponents(
            flagged.astype(np.uint8), connectivity=8
        )
        if n < 2:
            continue
        flat = comp.ravel()
        order = np.argsort(flat, kind="stable")
        starts = np.searchsorted(flat[order], np.arange(1, n + 1))
        score = 1.0 - quality[i].astype(np.float32).ravel()
        ids = cell.error_ids[i].ravel()
        for c in range(1, n):
            pix = order[starts[c - 1] : starts[c]]
            on, best = _overlap(ids[pix])
            rows.append((float(score[pix].max()), pix.size, on, best))
    return _rank(rows)


def curve(cell: Cell, ranked: Ranked, split: str) -> dict:
    """Recall after N reviewed patches and precision of the first N."""
    split_ids = set(
        int(e) for e in np.unique(cell.error_ids[cell.images(split)])
    ) - {-1}
    total = len(split_ids)
    hit = ranked.on_error >= 0.5 * np.maximum(ranked.area, 1)
    found_at = {}
    for rank, (h, e) in enumerate(zip(hit, ranked.error, strict=True)):
        if h and e >= 0 and e not in found_at:
            found_at[int(e)] = rank
    ranks = np.sort(np.fromiter(found_at.values(), dtype=np.int64))
    out = {"patches": len(hit), "errors": total}
    for n in REVIEWED:
        out[f"recall@{n}"] = (
            float(np.searchsorted(ranks, n) / total) if total else None
        )
        out[f"precision@{n}"] = (
            float(hit[:n].mean()) if len(hit) >= n else None
        )
    out["hits"] = int(hit.sum())
    by_type: dict[str, list[int]] = {}
    for e in split_ids:
        t = cell.error_types[e]
        by_type.setdefault(t, [0, 0])
        by_type[t][1] += 1
        by_type[t][0] += int(e in found_at and found_at[e] < 1000)
    out["recall@1000_by_type"] = {
        t: round(f / n, 3) for t, (f, n) in sorted(by_type.items())
    }
    out["curve"] = [int(np.searchsorted(ranks, n)) for n in range(0, 2001, 50)]
    return out


def mean_iou(reference: np.ndarray, labels: np.ndarray) -> float:
    valid = reference != VOID
    conf = np.bincount(
        reference[valid].astype(np.int64) * NUM_CLASSES
        + np.minimum(labels[valid], NUM_CLASSES - 1),
        minlength=NUM_CLASSES**2,
    ).reshape(NUM_CLASSES, NUM_CLASSES)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    present = conf.sum(1) > 0
    return float(np.mean(inter[present] / np.maximum(union[present], 1)))


def evaluate_fixer(cell: Cell, patches, finder, split: str) -> dict:
    idx = cell.images(split)
    matched = match(cell, patches, split)
    ranked = _rank_matched(matched)
    by_image: dict[int, list] = {}
    for p in patches:
        by_image.setdefault(p.image_index, []).append(p)
    images = [by_image.get(int(i), []) for i in idx]
    flagged = sum(p.area for image in images for p in image)
    first = sum(
        p.area for image in images for p in image if p.repeat_of is None
    )

    def corrected_miou(min_probability: float) -> float:
        corrected = np.stack(
            [
                apply_patches(
                    cell.labels[i],
                    image,
                    min_probability=min_probability,
                    skip_repeats=True,
                    shift=finder.shift_of(int(i)),
                )
                for i, image in zip(idx, images, strict=True)
            ]
        )
        return mean_iou(cell.clean[idx], corrected)

    labelled = int((cell.clean[idx] != VOID).sum())
    threshold = finder.config.correct_min_probability
    corrected_at = {
        str(t): corrected_miou(t)
        for t in sorted({*CORRECTION_THRESHOLDS, threshold})
    }
    out = curve(cell, ranked, split)
    hit = ranked.on_error >= 0.5 * np.maximum(ranked.area, 1)
    out.update(
        expected=float(sum(p.error_probability for p in patches)),
        observed=int(hit.sum()),
        flagged_share=flagged / labelled,
        flagged_share_first=first / labelled,
        repeats=sum(p.repeat_of is not None for p in patches),
        miou_labels=mean_iou(cell.clean[idx], cell.labels[idx]),
        miou_corrected=corrected_at[str(threshold)],
        miou_corrected_at=corrected_at,
        hits_by_run_length=_hits_by_run_length(matched),
        hits_by_cause=_hits_by_cause(matched),
        types=_types(cell, matched),
    )
    return out


def _hits_by_cause(matched: list[Matched]) -> dict:
    """``[injected errors, patches]`` among the patches of each cause."""
    out: dict[str, list[int]] = {}
    for m in matched:
        if m.patch.cause is not None:
            entry = out.setdefault(m.patch.cause, [0, 0])
            entry[0] += int(m.hit)
            entry[1] += 1
    return out


def _types(cell: Cell, matched: list[Matched]) -> dict:
    """``{injected type: {patch type: patches}}`` among the patches on an
    injected error (the error they overlap most) whose type is one of
    FIXER's (injector A's general, ambiguous and false negative errors)."""
    out: dict[str, dict[str, int]] = {}
    for m in matched:
        truth = cell.error_types.get(m.error)
        if m.hit and truth in ERROR_TYPES:
            row = out.setdefault(truth, {})
            row[m.patch.error_type] = row.get(m.patch.error_type, 0) + 1
    return out


RUN_LENGTHS = {"1": (1, 1), "2": (2, 2), "3-5": (3, 5), "6+": (6, 10**9)}


def _hits_by_run_length(matched: list[Matched]) -> dict:
    """``[injected errors, patches]`` among the runs' first patches, by
    the length of their run of repeats."""
    out = {name: [0, 0] for name in RUN_LENGTHS}
    for m in matched:
        if m.patch.repeat_of is not None:
            continue
        for name, (lo, hi) in RUN_LENGTHS.items():
            if lo <= m.patch.run_length <= hi:
                out[name][0] += int(m.hit)
                out[name][1] += 1
    return out


def evaluate_cleanlab(cell: Cell, split: str) -> dict:
    idx = cell.images(split)
    issues, quality = run_cleanlab(cell)
    ranked = rank_cleanlab(cell, issues, quality, split)
    argmax = cell.probs[idx].argmax(axis=1)
    flagged = issues[idx] & (cell.clean[idx] != VOID)
    out = curve(cell, ranked, split)
    out.update(
        flagged_share=float(flagged.sum() / (cell.clean[idx] != VOID).sum()),
        miou_corrected=mean_iou(
            cell.clean[idx], np.where(flagged, argmax, cell.labels[idx])
        ),
    )
    return out


def summarize(fixer: dict, cleanlab: dict | None) -> str:
    keys = [f"recall@{n}" for n in REVIEWED] + [
        "precision@100",
        "precision@500",
        "flagged_share",
        "miou_corrected",
    ]
    parts = []
    for k in keys:
        f = fixer.get(k)
        c = cleanlab.get(k) if cleanlab else None
        fs = "-" if f is None else f"{f:.3f}"
        cs = "-" if c is None else f"{c:.3f}"
        parts.append(f"{k} {fs}/{cs}")
    parts.append(
        f"expected {fixer['expected']:.0f} observed {fixer['observed']}"
    )
    parts.append(f"mIoU labels {fixer['miou_labels']:.3f}")
    parts.append(
        f"repeats {fixer['repeats']} "
        f"(first patches flag {fixer['flagged_share_first']:.3f})"
    )
    return "  ".join(parts)


def add_cell_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that name a cell (see :func:`load_cell`)."""
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--probs", type=Path, required=True)
    parser.add_argument("--clean", action="store_true")
    parser.add_argument("--split", default="val")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_cell_arguments(parser)
    parser.add_argument("--no-cleanlab", action="store_true")
    parser.add_argument(
        "--no-images",
        action="store_true",
        help="neighbouring frames told by their labels alone",
    )
    parser.add_argument("--config", default="{}", help="FinderConfig JSON")
    parser.add_argument(
        "--shuffle",
        type=int,
        metavar="SEED",
        help="the images in a random order, as a dataset not in time order",
    )
    parser.add_argument(
        "--alone",
        action="store_true",
        help="each image scored on its own, as in a dataset of photos",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/realuse/reports")
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    cell = load_cell(
        args.labels, args.probs, args.clean, args.split, not args.no_images
    )
    given = cell  # cleanlab's cache holds the given order
    if args.shuffle is not None:
        rng = np.random.default_rng(args.shuffle)
        cell = cell.reordered(rng.permutation(len(cell.labels)))
    # the operator's order: near-duplicate views next to each other
    order = None if cell.signatures is None else view_order(cell.signatures)
    if order is not None:
        cell = cell.reordered(order)
    config = FinderConfig.from_dict(json.loads(args.config))
    patches, finder = run_fixer(cell, config, alone=args.alone)
    t_fixer = time.perf_counter() - began
    fixer = evaluate_fixer(cell, patches, finder, args.split)
    cleanlab = (
        None if args.no_cleanlab else evaluate_cleanlab(given, args.split)
    )
    report = {
        "cell": cell.name,
        "split": args.split,
        "config": config.to_dict(),
        "images": cell.signatures is not None,
        "order": "shuffled" if args.shuffle is not None else "given",
        "views_ordered": order is not None,
        "alone": args.alone,
        "fixer": fixer,
        "cleanlab": cleanlab,
        "fixer_seconds": t_fixer,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{cell.name}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"{cell.name} {args.split} (FIXER/cleanlab)")
    print(summarize(fixer, cleanlab))


if __name__ == "__main__":
    main()
