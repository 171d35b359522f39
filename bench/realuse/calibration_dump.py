"""Runs FIXER once on a cell and writes what the calibration study of
issue 23 reads (``calibration_study.py``)::

    python bench/realuse/calibration_dump.py --labels bench/results/rw-a \\
        --probs bench/results/realuse/probs/espnet --split val --out DIR

(``--alone``: each image scored on its own, as in a dataset of photos.)

``DIR/<cell>.json`` is ``evaluate.py --no-cleanlab``'s report of FIXER
(with ``--variant NAME``, of FIXER with the probabilities of that variant
of ``calibration_study.py``; nothing else is written).
``DIR/<cell>.npz`` holds:

* one row per patch: classes, area, score, the parts of its
  ``error_probability`` (size factor, pair rate, label's doubt), its run,
  and whether it is on an injected error (as ``evaluate.py`` counts it);
  ``conf_hist``: its pixels whose argmax is the suggested class, by
  confidence (10 bins);
* pass 1's histograms (``argmax_hist``, ``prob_hist``);
* ``blob_hist``: ``argmax_hist`` with each interior pixel weighted by one
  over the area of its connected disagreement (argmax != label), i.e. in
  units of disagreements rather than pixels;
* ``image_disagreement`` ``(N, K, K)`` and ``image_labels`` ``(N, K)``:
  each image's interior pixels by (label, argmax), and by label;
* ``region_label``, ``region_pixels`` and ``region_disagreement``
  ``(R, K)``: the same for each connected region of the labels (its
  class, its interior pixels, those by argmax); each patch's ``region``
  is the one that holds most of its pixels.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import (  # noqa: E402
    VOID,
    _overlap,
    add_cell_arguments,
    evaluate_fixer,
    load_cell,
    run_fixer,
)

from fixer_core import FinderConfig  # noqa: E402
from fixer_core.neighbours import NEIGHBOURS_CAUSE  # noqa: E402
from fixer_core.regions import label_regions  # noqa: E402
from fixer_core.statistics import interior_mask, percent_bins  # noqa: E402

BINS = 100


def patch_rows(cell, patches, finder, region_ids) -> dict[str, np.ndarray]:
    """One row per patch: what its probability is made of, its region of
    the label (most of its pixels) and its hit."""
    stats = finder.statistics
    scale = finder.spatial_config.score_area_scale
    rows: dict[str, list] = {}
    for p in patches:
        x, y, w, h = p.box
        ids = cell.error_ids[p.image_index, y : y + h, x : x + w][p.mask]
        on, best = _overlap(ids)
        probs = cell.probs[p.image_index, :, y : y + h, x : x + w][:, p.mask]
        probs = probs.astype(np.float32)
        suggested = probs.argmax(axis=0) == p.suggested_label
        conf = probs[p.suggested_label][suggested]
        ev = p.evidence
        regions = region_ids[p.image_index][y : y + h, x : x + w][p.mask]
        regions = regions[regions >= 0]
        row = dict(
            image=p.image_index,
            given=p.given_label,
            suggested=p.suggested_label,
            area=p.area,
            given_prob=p.given_prob,
            suggested_prob=p.suggested_prob,
            score=p.score,
            probability=p.error_probability,
            size=p.area / (p.area + scale),
            rate=stats.error_rate(
                p.given_label, p.suggested_label, p.suggested_prob
            ),
            doubt=stats.label_doubt(
                p.given_label, p.suggested_label, p.given_prob
            ),
            repeat=p.repeat_of is not None,
            run_length=p.run_length,
            neighbours=p.cause == NEIGHBOURS_CAUSE,
            vouched=np.nan if ev.vouched is None else ev.vouched,
            coverage=p.coverage,
            on_error=on / max(p.area, 1),
            error_id=best,
            region=np.bincount(regions).argmax() if regions.size else -1,
            conf_hist=np.bincount(
                np.minimum((conf * 10).astype(int), 9), minlength=10
            ),
        )
        for k, v in row.items():
            rows.setdefault(k, []).append(v)
    return {k: np.asarray(v) for k, v in rows.items()}


def pixel_counts(cell, boundary_width: int) -> tuple[dict, list]:
    """Per-image and per-region interior counts and the
    disagreement-weighted histogram (see the module docstring), and each
    image's region ids (numbered over all images)."""
    n, k = cell.probs.shape[:2]
    blob = np.zeros(k * k * BINS)
    image_disagreement = np.zeros((n, k, k))
    image_labels = np.zeros((n, k))
    region_ids, region_label, region_pixels, region_pairs = [], [], [], []
    for i in range(n):
        label = cell.labels[i].astype(np.int64)
        probs = cell.probs[i].astype(np.float32)
        valid = label != VOID
        argmax, top = probs.argmax(axis=0), probs.max(axis=0)
        prepared = torch.from_numpy(np.where(valid, label, -1))[None]
        inside = interior_mask(prepared, boundary_width)[0].numpy() & valid
        apart = (argmax != label) & valid
        _, comp, st, _ = cv2.connectedComponentsWithStats(
            apart.view(np.uint8), connectivity=8
        )
        area = st[:, cv2.CC_STAT_AREA][comp[inside]]
        g, s = label[inside], argmax[inside]
        b = np.minimum((top[inside] * BINS).astype(int), BINS - 1)
        weight = np.where(apart[inside], 1.0 / area, 1.0)
        blob += np.bincount((g * k + s) * BINS + b, weight, k * k * BINS)
        pairs = np.bincount(g * k + s, minlength=k * k)
        image_disagreement[i] = pairs.reshape(k, k)
        image_labels[i] = np.bincount(g, minlength=k)
        regions = label_regions(np.where(valid, label, -1))
        first = len(region_label)
        region_ids.append(np.where(regions.ids >= 0, regions.ids + first, -1))
        r = regions.ids[inside]
        count = len(regions.labels)
        region_label.extend(regions.labels.tolist())
        region_pixels.extend(np.bincount(r, minlength=count).tolist())
        per_class = np.bincount(r * k + s, minlength=count * k)
        region_pairs.extend(per_class.reshape(count, k).tolist())
    tables = {
        "blob_hist": blob.reshape(k, k, BINS),
        "image_disagreement": image_disagreement,
        "image_labels": image_labels,
        "region_label": np.asarray(region_label),
        "region_pixels": np.asarray(region_pixels),
        "region_disagreement": np.asarray(region_pairs).reshape(-1, k),
    }
    return tables, region_ids


def with_variant(patches, tables: dict, name: str, floor: float) -> list:
    """The patches with the probabilities of a variant of
    ``calibration_study.py``; those it puts under the report floor
    ``floor`` are dropped, as the finder would not report them (a floor
    of 0 keeps them all: the variant applied after the report's choice,
    as a run's discount is)."""
    from calibration_study import VARIANTS

    new = VARIANTS[name](tables)
    return [
        dataclasses.replace(p, error_probability=float(q))
        for p, q in zip(patches, new, strict=True)
        if q >= floor or p.error_probability < floor
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_cell_arguments(parser)
    parser.add_argument("--config", default="{}", help="FinderConfig JSON")
    parser.add_argument(
        "--variant",
        help="evaluate this variant of calibration_study.py instead "
        "(writes the report only)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="the variant drops no reported patch",
    )
    parser.add_argument(
        "--alone",
        action="store_true",
        help="each image scored on its own, as in a dataset of photos",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    cell = load_cell(args.labels, args.probs, args.clean, args.split)
    config = FinderConfig.from_dict(json.loads(args.config))
    patches, finder = run_fixer(cell, config, alone=args.alone)
    acc = finder._accumulator
    k = finder.num_classes
    counts, region_ids = pixel_counts(cell, finder.config.boundary_width)
    tables = {
        "argmax_hist": acc._argmax_hist.numpy().reshape(k, k, -1),
        "prob_hist": percent_bins(acc._prob_hist.numpy().reshape(k, k, -1)),
        "correct_min_probability": config.correct_min_probability,
        "min_error_probability": config.min_error_probability,
        **counts,
        **patch_rows(cell, patches, finder, region_ids),
    }
    if args.variant:
        floor = 0.0 if args.keep else config.min_error_probability
        patches = with_variant(patches, tables, args.variant, floor)
    fixer = evaluate_fixer(cell, patches, finder, args.split)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "cell": cell.name,
        "split": args.split,
        "variant": args.variant,
        "keep": args.keep,
        "fixer": fixer,
    }
    (args.out / f"{cell.name}.json").write_text(json.dumps(report, indent=1))
    if not args.variant:
        np.savez_compressed(args.out / f"{cell.name}.npz", **tables)
    keys = ["recall@500", "recall@1000", "recall@2000", "precision@100"]
    print(
        cell.name,
        " ".join(f"{k} {fixer[k]}" for k in keys),
        f"flagged {fixer['flagged_share']:.4f}",
        f"corrected {fixer['miou_corrected']:.4f}",
        f"expected {fixer['expected']:.0f} observed {fixer['observed']}",
    )


if __name__ == "__main__":
    main()
